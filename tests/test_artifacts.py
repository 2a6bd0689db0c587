"""The built artifacts, not the source tree: the same Makefile build as `make build`, for this machine's platform.

The Makefile's build-<LogicalId> targets (those `sam build` runs) build the layer from its hashed lock for this
machine (manylinux2014_<machine>, this Python) and copy each function, into a temporary directory laid out as
Lambda lays it out: the layer where /opt would be (its python/ directory is /opt/python), each function's directory
as its task root. An isolated interpreter (`python -I -S`: no site-packages, no PYTHONPATH; tests/artifact_runner.py)
sees only those two directories and the standard library: it imports each handler and drives it with API Gateway
events against moto's server on loopback (AWS_ENDPOINT_URL_DYNAMODB). This process seeds the tables and checks
the answers, the stored state and that no module came from anywhere else.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from conftest import DEMO_FIXTURE, EVENTS, LEDGER_TABLE, ROOT, load
from helpers import DEMO_SECRET, api_event, token, wait_for_calm_otp_step
from helpers.processes import dynamodb_at, moto_server
from payments.repositories import codec
from payments_cli.tables import create_tables
from seed_values import SEED_SWAP_VALUE

BUILD_TIMEOUT = 600
RUN_TIMEOUT = 120
FUNCTIONS = {"PaymentProgressFunction": "payment_progress", "SwapFunction": "swap", "AuditFunction": "audit"}
SEED_FIXTURE = ROOT / "tests" / "data" / "seed_payment_progress_fixture.json"
SEED_RESPONSE = json.loads(
    (ROOT / "tests" / "data" / "seed_payment_progress_response.json").read_text(encoding="utf-8")
)


def make(target: str, artifacts_dir: Path, cwd: Path) -> None:
    """One of the Makefile's build targets, as SAM runs it (ARTIFACTS_DIR, a working directory of its own)."""
    pip = ROOT / ".venv-sam" / "bin" / "python"
    if not pip.exists():
        pytest.skip("no .venv-sam (the build's pip): `make test` installs it with `make dev-tools`")
    command = [
        shutil.which("make") or "make",
        "--no-print-directory",
        "--makefile",
        str(ROOT / "Makefile"),
        target,
        f"ARTIFACTS_DIR={artifacts_dir}",
        f"LAYER_PLATFORM=manylinux2014_{platform.machine()}",
        f"LAYER_PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor}",
    ]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """/opt (the layer) and one task root per function, built by the Makefile into a fresh directory."""
    root = tmp_path_factory.mktemp("lambda")
    scratch = tmp_path_factory.mktemp("scratch")
    make("build-SharedLayer", root / "opt", scratch)
    for logical_id, directory in FUNCTIONS.items():
        make(f"build-{logical_id}", root / directory, scratch)
    return root


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def seeded_client(endpoint: str, fixture: Path) -> Any:
    client = dynamodb_at(endpoint)
    create_tables(client)
    load(client, fixture)
    return client


def run_isolated(
    task_root: Path, opt_dir: Path, events: list[dict[str, Any]], environment: dict[str, Any], workdir: Path
) -> tuple[dict[str, Any], str]:
    """Each event through the handler under `task_root`, with the layer under `opt_dir`, in one isolated interpreter
    (`python -I -S`: one execution environment); returns the runner's output and the handler's stdout."""
    events_file, output_file = workdir / f"{task_root.name}-events.json", workdir / f"{task_root.name}-output.json"
    events_file.write_text(json.dumps(events), encoding="utf-8")
    # The runner runs from a copy beside the artifacts (standing in for the Lambda runtime's bootstrap).
    runtime = workdir / "runtime"
    runtime.mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "artifact_runner.py", runtime / "artifact_runner.py")
    interpreter = getattr(sys, "_base_executable", None) or sys.executable
    runner = [str(runtime / "artifact_runner.py"), str(task_root), str(opt_dir), str(events_file), str(output_file)]
    result = subprocess.run(
        [interpreter, "-I", "-S", *runner],
        cwd=workdir,
        env={key: str(value) for key, value in environment.items()},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = json.loads(output_file.read_text(encoding="utf-8"))
    assert "error" not in output, output["error"] + result.stderr
    return output, result.stdout


def invoke(built: Path, logical_id: str, endpoint: str, events: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """Each event through the built handler of `logical_id`, in one isolated interpreter (one execution environment)."""
    task_root = built / FUNCTIONS[logical_id]
    # The function's environment: what events/env.json gives `sam local invoke`, pointed at moto's server.
    environment = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))[logical_id]
    environment.update(
        {
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "LAMBDA_TASK_ROOT": str(task_root),
            "PATH": "/usr/bin:/bin",
            "HOME": str(built),
            "LANG": "C.UTF-8",
        }
    )
    output, _ = run_isolated(task_root, built / "opt", events, environment, built)
    # Only the artifacts and the standard library were imported: nothing of the source tree or any virtualenv.
    assert output["foreign_modules"] == [], output["foreign_modules"]
    assert Path(output["handler_file"]).resolve() == (task_root / "app.py").resolve()
    assert not any(str(ROOT) in entry for entry in output["sys_path"]), output["sys_path"]
    return [(response["statusCode"], json.loads(response["body"])) for response in output["responses"]]


# --- what was built ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_layer_is_laid_out_as_lambda_expects(built):
    layer = built / "opt" / "python"
    assert (layer / "payments" / "__init__.py").is_file()
    assert not list(layer.rglob("__pycache__")), "no bytecode of the build machine's Python in the artifact"
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}-linux-gnu"
    assert list(layer.glob(f"pydantic_core/_pydantic_core.{tag}.so")), "pydantic-core wheel of the target platform"
    for logical_id, directory in FUNCTIONS.items():
        task_root = built / directory
        assert (task_root / "app.py").is_file(), logical_id
        assert not (task_root / "payments").exists(), f"{logical_id}: the domain code comes from the layer only"


def test_the_lock_pins_every_package_with_hashes():
    lock = (ROOT / "layers" / "shared" / "requirements.lock").read_text(encoding="utf-8")
    requirements = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
    assert requirements, "empty lock"
    for requirement in requirements:
        assert "==" in requirement and requirement.endswith("\\"), f"not pinned with hashes: {requirement}"
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in requirements}
    # boto3 and botocore ship together, so aws-xray-sdk's botocore never meets the runtime's older boto3
    assert {"boto3", "botocore", "aws-lambda-powertools", "aws-xray-sdk", "pydantic-core"} <= pinned
    dev = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    for requirement in requirements:
        name, version = requirement.split(" ")[0].split("==")
        key = name.lower().replace("_", "-")
        if key in dev:
            assert dev[key] == version, f"{name}: the layer ships {version}, the tests run {dev[key]}"


# --- both routes through the built handlers ---------------------------------------------------------


@pytest.mark.slow
def test_payment_progress_artifact_serves_the_seed_and_its_errors(built, endpoint):
    seeded_client(endpoint, SEED_FIXTURE)
    path = "/api/v1/asker/payment/progress"
    answers = invoke(
        built,
        "PaymentProgressFunction",
        endpoint,
        [
            api_event(path, {"concern_idx": 1577}, {"x-token": token(149)}),
            api_event(path, {"concern_idx": 1577}, {"x-token": token(149, ttl=-1)}),
            api_event(path, {"concern_idx": 424242}, {"x-token": token(149)}),
            api_event(path, None, {"x-token": token(149)}, raw="{not json"),
        ],
    )
    assert answers[0] == (200, SEED_RESPONSE)
    assert answers[1] == (401, {"code": "access_token_expired", "message": "Access token expired"})
    assert answers[2] == (404, {"code": "not_found", "message": "Result not found"})
    assert answers[3] == (400, {"code": "invalid_parameter", "message": "Request body must be a JSON object"})


@pytest.mark.slow
def test_swap_artifact_swaps_and_refuses(built, endpoint):
    client = seeded_client(endpoint, DEMO_FIXTURE)
    path = "/v1.0/db/swap"
    bearer = {"Authorization": f"Bearer {token(19)}"}

    def body(otp_code: str, app_id: int = 1, event_id: int = 3) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "otp_code": otp_code,
            "point": {"app_id": app_id, "point_id": 1, "adjust_point_quantity": -110},
            "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
        }

    now = wait_for_calm_otp_step(margin=10.0)
    code = pyotp.TOTP(DEMO_SECRET).at(now)
    answers = invoke(
        built,
        "SwapFunction",
        endpoint,
        [
            api_event(path, body(code), {"Authorization": f"Bearer {token(19, ttl=-1)}"}),
            api_event(path, body(code, app_id=99), bearer),
            api_event(path, body(code), bearer),
        ],
    )
    assert answers[0] == (401, {"return": 30002, "message": "Access token expired"})
    assert answers[1] == (400, {"return": 32101, "message": "AppID is invalid"})
    assert answers[2] == (200, {"return": 0, "message": "success", "value": SEED_SWAP_VALUE})
    # and the built function wrote the swap where this process reads it
    account = client.query(
        TableName=LEDGER_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "ACCOUNT#19"}},
        ConsistentRead=True,
    )["Items"]
    stored = {item["sk"]: item for item in (codec.from_item(i) for i in account)}
    assert stored["POINT#1#1"]["quantity"] == 1990
    assert str(stored["WALLET#2"]["quantity"]) == "11"
    assert [sk for sk in stored if sk.startswith("SWAPLOG#")] and len(
        [sk for sk in stored if sk.startswith("SWAPLOG#")]
    ) == 1


def test_build_sizes_are_checked_against_lambdas_limits(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import artifact_sizes
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (tmp_path / "SharedLayer" / "python").mkdir(parents=True)
    (tmp_path / "SharedLayer" / "python" / "blob.bin").write_bytes(os.urandom(300_000))  # does not deflate
    (tmp_path / "SwapFunction").mkdir()
    (tmp_path / "SwapFunction" / "app.py").write_text("x = 1\n" * 1000)
    (tmp_path / "template.yaml").write_text("")  # the built template beside them is not an artifact
    assert artifact_sizes.main(str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "SwapFunction + SharedLayer:" in out and "OVER" not in out
    monkeypatch.setattr(artifact_sizes, "UNZIPPED_LIMIT", 300_000)  # function + layer is just above it
    assert artifact_sizes.main(str(tmp_path)) == 1
    assert "SwapFunction + SharedLayer" in (out := capsys.readouterr().out) and "OVER" in out
    monkeypatch.setattr(artifact_sizes, "UNZIPPED_LIMIT", 10**9)
    monkeypatch.setattr(artifact_sizes, "ZIPPED_DIRECT_LIMIT", 200_000)  # the layer's zip is above it
    assert artifact_sizes.main(str(tmp_path)) == 1
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("SharedLayer") and "OVER" in line]
