"""What bench/run.py runs in child processes: the pyperf benchmarks and the handlers' DynamoDB calls.

    workers.py modules NAME       the third-party modules importing functions.NAME.app loads (JSON)
    workers.py dynamodb OUT.json  the handlers against DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB) or else moto:
                                  prints round trips and capacity units per request; writes the warm scenarios'
                                  DynamoDB calls (parameters and raw HTTP answers) and the target rows to OUT
    workers.py --kinds cold|first|warm --answers F --modules F [pyperf options]
- `cold NAME` (--warmups 1 --values 1): the warm-up is the floor (the third-party modules the handler's
  import loads, then what any handler on them builds at init), the value the handler's import on top of it.
- `first NAME` (--warmups 21 --values 30): primed at init; the first warm-up is the first request after init
  (its event built before init, decoded after it, as a Lambda runtime does), the values later requests.
- `floor S`, `handler S`, `handler/floor S`: one invocation per value; the last one's values are the handler's
  time over the floor's on the same request, just before it, in the same process. The floor: a Powertools
  resolver in the handlers' Logger/Tracer/Metrics decorators making the same DynamoDB calls with the same
  parameters (answered from the same recording) and answering json.dumps of the same body.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

HANDLERS = {"payment_progress": "progress_3", "swap": "swap_success"}
SCENARIOS = {"progress_3": "payment progress, 3 listed", "progress_30": "payment progress, 30 listed"}
SCENARIOS |= {"swap_success": "swap, success", "swap_refused": "swap, refused at the balances step"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
STATE: dict[str, Any] = {}


def floor(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)
    import boto3
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from pydantic import create_model

    boto3.client("dynamodb")
    Logger(service="floor"), Tracer(service="floor"), Metrics(namespace="Floor", service="floor")
    APIGatewayRestResolver().post("/floor")(lambda: {"floor": True})
    create_model("Floor", value=(int, ...)).model_validate({"value": 1})


def cold(loops: int, name: str, args: Any) -> float:
    modules, started = json.loads(Path(args.modules).read_text(encoding="utf-8"))[name], time.process_time()
    if STATE.get("floor"):
        importlib.import_module(f"functions.{name}.app")
    else:
        STATE["floor"] = floor(modules) or True
    return time.process_time() - started


def timed(handler: Any, request: dict[str, Any], status: int) -> float:
    started = time.thread_time()
    response = handler(request, common.LambdaContext())
    spent = time.thread_time() - started
    if response["statusCode"] != status:
        raise RuntimeError(f"answered {response['statusCode']}: {response['body']}")
    return spent


def first(loops: int, name: str, args: Any) -> float:
    if not STATE:
        from payments.aws import dynamodb_client

        os.environ["PAYMENTS_PRIME_AT_INIT"] = "true"
        recorded = json.loads(Path(args.answers).read_text(encoding="utf-8"))[HANDLERS[name]]
        memory = common.MemoryAnswers(dynamodb_client(), recorded["calls"], replaying=False)
        STATE.update(text=json.dumps(common.event(recorded)), status=recorded["status"])
        STATE["handler"] = importlib.import_module(f"functions.{name}.app").lambda_handler
        memory.replaying = True
    return timed(STATE["handler"], json.loads(STATE["text"]), STATE["status"])


def floor_handler(recorded: dict[str, Any]) -> Any:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.logging.correlation_paths import API_GATEWAY_REST
    from botocore import xform_name

    from payments.aws import dynamodb_client
    from payments.observability import logger, metrics, tracer

    app, client, body = APIGatewayRestResolver(), dynamodb_client(), json.loads(recorded["body"])
    calls = [(getattr(client, xform_name(call["operation"])), call["params"]) for call in recorded["calls"]]

    @app.post(common.SWAP_PATH if "otp_secret" in recorded else common.PROGRESS_PATH)
    def route() -> Response[str]:
        app.current_event.json_body  # noqa: B018 - parse the request body, as any handler does
        for method, params in calls:
            method(**params)
        metrics.add_metric(name="FloorServed", unit="Count", value=1)
        return Response(recorded["status"], "application/json", json.dumps(body, ensure_ascii=False))

    @logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


def warm(loops: int, kind: str, scenario: str, args: Any) -> float:
    if not STATE:
        from payments.aws import dynamodb_client

        recorded = json.loads(Path(args.answers).read_text(encoding="utf-8"))[scenario]
        if kind != "floor":
            module = "payment_progress" if scenario.startswith("progress") else "swap"
            STATE["handler"] = importlib.import_module(f"functions.{module}.app").lambda_handler
        if kind != "handler":
            STATE["floor"] = floor_handler(recorded)
        STATE.update(recorded=recorded, step=None, memory=common.MemoryAnswers(dynamodb_client(), recorded["calls"]))
    if STATE["step"] != int(time.time()) // 30:  # a swap's OTP code follows the clock: a new event per step
        STATE.update(step=int(time.time()) // 30, event=common.event(STATE["recorded"]))
    parts = [part for part in ("floor", "handler") if part in STATE]
    spent = {part: timed(STATE[part], STATE["event"], STATE["recorded"]["status"]) for part in parts}
    return spent["handler"] / spent["floor"] if kind == "handler/floor" else spent[kind]


class Calls:
    """While open, every DynamoDB call of a client: operation, parameters, raw HTTP answer, capacity units
    (ReturnConsumedCapacity=TOTAL is added to each call once its parameters are recorded)."""

    def __init__(self, client: Any) -> None:
        self.events, self.calls = client.meta.events, []
        self.hooks = {"before-parameter-build.dynamodb": self.params, "after-call.dynamodb": self.answer}

    def params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append({"operation": model.name, "params": json.loads(json.dumps(params, default=str))})
        params["ReturnConsumedCapacity"] = "TOTAL"

    def answer(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        units = sum(c.get("CapacityUnits", 0) for c in ([consumed] if isinstance(consumed, dict) else consumed))
        self.calls[-1] |= {"status": http_response.status_code, "headers": dict(http_response.headers), "units": units}
        self.calls[-1]["body"] = http_response.content.decode()

    def __enter__(self) -> Calls:
        for event, hook in self.hooks.items():
            self.events.register(event, hook, unique_id=event)
        return self

    def __exit__(self, *_: object) -> None:
        for event in self.hooks:
            self.events.unregister(event, unique_id=event)

    def __str__(self) -> str:
        writes = sum(c["units"] for c in self.calls if c["operation"] in WRITES)
        counts = Counter(c["operation"] for c in self.calls)
        operations = ", ".join(f"{n} {operation}" for operation, n in sorted(counts.items()))
        return (
            f"{len(self.calls)} ({operations}); {sum(c['units'] for c in self.calls) - writes:g} RCU / {writes:g} WCU"
        )


def dynamodb(client: Any, handlers: dict[str, Any], answers: dict[str, Any], targets: list[list[Any]]) -> None:
    import pyotp

    def case(name: str, scenario: dict[str, Any], status: int, event: Any = None) -> tuple[Any, Calls]:
        event = event or common.event(scenario)
        with Calls(client) as calls, contextlib.redirect_stdout(None):
            response = handlers["swap" if "otp_secret" in scenario else "progress"](event, common.LambdaContext())
        if response["statusCode"] != status:
            raise RuntimeError(f"{name} answered {response['statusCode']}: {response['body']}")
        answers[name] = scenario | {"calls": calls.calls, "status": status, "body": response["body"]}
        return json.loads(response["body"]), calls

    swaps = [{"au_id": 900_000 + n, "otp_secret": pyotp.random_base32()} for n in range(3)]
    common.load(
        client, {"accounts": [common.account(*s.values(), 50 if n == 1 else 10**6) for n, s in enumerate(swaps)]}
    )
    success, wrong = common.event(swaps[0]), common.event(swaps[2])
    code = json.loads(wrong["body"])["otp_code"]
    wrong["body"] = wrong["body"].replace(code, f"{(int(code) + 500_000) % 10**6:06d}")  # valid in no step near now
    rows = [["success", *case("swap_success", swaps[0], 200, success)]]
    rows += [["identical retry of that success", *case("retry", swaps[0], 200, success)]]
    rows += [["refused at the balances step", *case("swap_refused", swaps[1], 409)]]
    rows += [["refused, wrong OTP code", *case("wrong", swaps[2], 401, wrong)]]
    twi, calls = sum(c["operation"] == "TransactWriteItems" for c in rows[0][2].calls), len(rows[0][2].calls)
    measure = "uncontended successful swap: TransactWriteItems / all DynamoDB requests"
    targets.append(common.target(measure, f"{twi} / {calls}", "1 / ≤ 4", twi == 1 and calls <= 4))
    backend = "DynamoDB Local" if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") else "moto"
    print(f"### 1. DynamoDB cost per request ({backend}, ReturnConsumedCapacity=TOTAL)\n")
    print(common.table(["swap", "return", "requests; capacity units"], [[n, a["return"], c] for n, a, c in rows]))
    rows, loaded = [], 4  # the demo data has 4 willsoners; 3 of them are listed for concern 1577
    for size in (4, 1000, 10_000):
        common.load(client, common.willsoners(loaded - 4, size - loaded)) if size > loaded else None
        loaded, named = size, {4: "progress_3", 1000: "progress_30"}.get(size, "progress")
        for match_type, label in ((None, "absent (all)"), (2, "2 (different)"), (1, "1 (same)")):
            request = {"concern_idx": 1577} | ({"match_type": match_type} if match_type else {})
            answer, calls = case(named if match_type is None else "progress", {"au_id": 149, "request": request}, 200)
            scan = any(c["operation"] == "Scan" for c in calls.calls)
            rows.append([f"{size:,}", label, len(answer["data"]["willsoners"]), calls, "yes" if scan else "no"])
            measure = f"payment progress DynamoDB requests, {size:,} willsoners, match_type {label}"
            if size == 10_000:
                targets.append(
                    common.target(measure, len(calls.calls), "≤ 3, no Scan", len(calls.calls) <= 3 and not scan)
                )
    print("Payment progress, caller 149, concern 1577 (the willsoners added share its subcategory, 90 % complete):\n")
    print(common.table(["willsoners", "match_type", "listed", "requests; capacity units", "Scan"], rows))


def main() -> None:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    common.use_test_env(**({"AWS_ENDPOINT_URL_DYNAMODB": endpoint} if endpoint else {}))
    if sys.argv[1] == "modules":
        importlib.import_module(f"functions.{sys.argv[2]}.app")
        own = {*sys.stdlib_module_names, "payments", "functions", "payments_cli", "common"}
        print(json.dumps([m for m in sys.modules if m.partition(".")[0] not in own and m[0] != "_"]))
    elif sys.argv[1] == "dynamodb":
        answers: dict[str, Any] = {}
        targets: list[list[Any]] = []
        with contextlib.nullcontext() if endpoint else __import__("moto").mock_aws():
            from payments.aws import dynamodb_client
            from payments_cli.tables import create_tables

            handlers = {"progress": importlib.import_module("functions.payment_progress.app").lambda_handler}
            handlers["swap"] = importlib.import_module("functions.swap.app").lambda_handler
            create_tables(client := dynamodb_client())
            common.load(client, json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8")))
            dynamodb(client, handlers, answers, targets)
        output = {"answers": {name: answers[name] for name in SCENARIOS}, "targets": targets}
        Path(sys.argv[2]).write_text(json.dumps(output, ensure_ascii=False), encoding="utf-8")
    else:
        import pyperf

        def pass_args(cmd: list[str], args: Any) -> None:
            cmd.extend(("--kinds", args.kinds, "--answers", args.answers, "--modules", args.modules))

        runner = pyperf.Runner(add_cmdline_args=pass_args)
        for option in ("--kinds", "--answers", "--modules"):
            runner.argparser.add_argument(option, required=True)
        args = runner.parse_args()
        for name in HANDLERS if args.kinds in ("cold", "first") else ():
            runner.bench_time_func(f"{args.kinds} {name}", cold if args.kinds == "cold" else first, name, args)
        for scenario in SCENARIOS if args.kinds == "warm" else ():
            for kind in ("floor", "handler", "handler/floor"):
                runner.bench_time_func(f"{kind} {scenario}", warm, kind, scenario, args)


if __name__ == "__main__":
    main()
