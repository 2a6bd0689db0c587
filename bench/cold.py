"""Cold-start child: one fresh interpreter measures one import, then exits (run by bench/run.py).

    cold.py handler payment_progress|swap [--answers FILE]   import functions.<name>.app (+ first requests)
    cold.py floor payment_progress|swap                      the third-party packages that handler needs

Times are taken inside the process around the import, both elapsed (perf_counter) and CPU time of
the process (process_time, which other work on a shared machine does not inflate), so the
interpreter's own start (the same for every child) is left out; run.py also takes the wall clock
of the whole child.
"""
from __future__ import annotations

import resource
import sys
import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402  (stdlib only before the measured imports)
import json  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (stdlib only)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_handler(name: str, answers_file: str | None) -> dict:
    started, started_cpu = time.perf_counter(), time.process_time()
    module = __import__(f"functions.{name}.app", fromlist=["lambda_handler"])
    imported, imported_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    result = {"import_s": imported, "import_cpu_s": imported_cpu, "modules": len(sys.modules),
              "module_names": sorted(sys.modules), "rss_after_import_mb": _rss_mb()}
    if answers_file:
        result.update(_first_requests(name, module, json.loads(Path(answers_file).read_text(encoding="utf-8"))))
    result["rss_mb"] = _rss_mb()
    return result


def _first_requests(name: str, module, recorded: dict) -> dict:
    """The first and second request of this fresh process, DynamoDB answered from memory."""
    import contextlib
    import io

    import pyotp

    from payments.auth import issue_access_token
    from payments.aws import dynamodb_client

    scenario = recorded["payment_progress" if name == "payment_progress" else "swap_success"]
    token = issue_access_token(scenario["au_id"], common.JWT_SECRET, 3600)
    if name == "payment_progress":
        event = common.api_event(common.PAYMENT_PROGRESS_PATH, scenario["body"], {"x-token": token})
    else:
        code = pyotp.TOTP(scenario["otp_secret"]).now()
        event = common.api_event(common.SWAP_PATH, common.swap_body(code), {"Authorization": f"Bearer {token}"})
    timings, cpu = [], []
    with common.MemoryAnswers(dynamodb_client(), scenario["answers"]), contextlib.redirect_stdout(io.StringIO()):
        for _ in range(2):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = module.lambda_handler(event, common.LambdaContext())
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            if response["statusCode"] != 200:
                raise RuntimeError(f"{name} answered {response['statusCode']}: {response['body']}")
    return {"first_request_s": timings[0], "second_request_s": timings[1],
            "first_request_cpu_s": cpu[0], "second_request_cpu_s": cpu[1]}


def _has_cryptography() -> bool:
    import importlib.util

    return importlib.util.find_spec("cryptography") is not None


def measure_floor(name: str) -> dict:
    """Import what the handler needs from third parties, then build what any such handler builds at init.

    `imports_s` is the floor proper (packages only). `init_s` adds the objects every handler on
    these packages creates in its init phase: one DynamoDB client, Logger/Tracer/Metrics, a
    resolver with one route, one pydantic model (pydantic's first model loads its plugin
    machinery), and for swap the idempotency persistence layer. `laps` splits both.
    `own_on_floor_s` is the handler's import in the same process once floor B is loaded.
    """
    laps: dict[str, float] = {}
    cpu_laps: dict[str, float] = {}
    mark, cpu_mark = time.perf_counter(), time.process_time()

    def lap(label: str) -> None:
        nonlocal mark, cpu_mark
        now, cpu_now = time.perf_counter(), time.process_time()
        laps[label] = now - mark
        cpu_laps[label] = cpu_now - cpu_mark
        mark, cpu_mark = now, cpu_now

    import botocore.client  # noqa: F401
    import botocore.config
    import botocore.exceptions  # noqa: F401
    import botocore.session  # noqa: F401
    lap("import botocore")
    import boto3
    import boto3.dynamodb.types  # noqa: F401
    lap("import boto3 on top of botocore (its package init imports s3transfer)")
    import pydantic
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator  # noqa: F401
    lap("import pydantic")
    if _has_cryptography():
        import cryptography.exceptions  # noqa: F401
        import cryptography.hazmat.backends  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.utils  # noqa: F401
        import cryptography.x509  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.ed448  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.padding  # noqa: F401
        import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
        import cryptography.hazmat.primitives.hashes  # noqa: F401
        import cryptography.hazmat.primitives.serialization  # noqa: F401
        lap("import cryptography (PyJWT's optional backend; installed here, not in the layer)")
    import jwt  # noqa: F401
    lap("import jwt (PyJWT)")
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types  # noqa: F401
    from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent  # noqa: F401
    lap("import powertools event_handler")
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.logging import correlation_paths  # noqa: F401
    from aws_lambda_powertools.metrics import MetricUnit  # noqa: F401
    lap("import powertools logging/metrics/tracing")
    import aws_xray_sdk.core  # noqa: F401  (Tracer() imports it whenever it is built, even with tracing disabled)
    lap("import aws_xray_sdk.core (via Tracer)")
    if name == "swap":
        import pyotp  # noqa: F401
        import pyotp.utils  # noqa: F401
        lap("import pyotp")
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: F401
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: F401
            IdempotencyAlreadyInProgressError,
        )
        lap("import powertools idempotency")
    imports, imports_cpu = sum(laps.values()), sum(cpu_laps.values())

    client = boto3.client("dynamodb", config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}))
    lap("init: DynamoDB client")
    Logger(service="bench")
    Tracer(service="bench")
    Metrics(namespace="Bench", service="bench")
    app = APIGatewayRestResolver()

    @app.post("/hello")
    def hello() -> dict:
        return {"hello": "world"}

    if name == "swap":
        IdempotencyConfig(expires_after_seconds=600)
        DynamoDBPersistenceLayer(table_name="IdempotencyTable", boto3_client=client)
    lap("init: Logger/Tracer/Metrics, resolver (swap: + idempotency layer)")

    class Hello(BaseModel):
        value: int = 0

    Hello.model_validate({"value": 1})
    lap("init: first pydantic model")
    init, init_cpu = sum(laps.values()), sum(cpu_laps.values())
    modules = sorted(sys.modules)

    # The handler itself on top of floor B, in this same process: its own modules, its settings and
    # its own DynamoDB client (botocore has the DynamoDB model cached by now, as a second client would).
    own_started, own_started_cpu = time.perf_counter(), time.process_time()
    __import__(f"functions.{name}.app")
    own, own_cpu = time.perf_counter() - own_started, time.process_time() - own_started_cpu
    mark, cpu_mark = time.perf_counter(), time.process_time()

    # Only in the deployed stack (JWT_SECRET_ARN set): the first request reads the secret through
    # Powertools parameters, which the handler imports lazily, with a Secrets Manager client.
    from aws_lambda_powertools.utilities import parameters

    parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    lap("deployed 1st request: parameters + Secrets Manager client")
    return {"imports_s": imports, "init_s": init, "own_on_floor_s": own, "laps": laps,
            "imports_cpu_s": imports_cpu, "init_cpu_s": init_cpu, "own_on_floor_cpu_s": own_cpu,
            "cpu_laps": cpu_laps, "rss_mb": _rss_mb(), "modules": len(modules), "module_names": modules,
            "pydantic": pydantic.VERSION}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["handler", "floor"])
    parser.add_argument("name", choices=["payment_progress", "swap"])
    parser.add_argument("--answers")
    args = parser.parse_args()
    result = measure_handler(args.name, args.answers) if args.kind == "handler" else measure_floor(args.name)
    result["process_s"] = time.perf_counter() - _STARTED
    common.emit_result(result)


if __name__ == "__main__":
    main()
