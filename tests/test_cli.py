"""The `payments` console script, run as a user would, against moto's server in another process."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pyotp
import pytest

from conftest import DEMO_FIXTURE
from helpers import DEMO_SECRET, SECRET
from helpers.processes import PAYMENTS, LocalStack, dynamodb_at, moto_server

pytestmark = pytest.mark.slow


def run(*args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    command = [str(PAYMENTS), *args] + (["--dynamodb-endpoint", endpoint] if endpoint else [])
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=120)


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def scan_all(endpoint: str) -> dict[str, list]:
    client = dynamodb_at(endpoint)
    return {
        table: sorted(json.dumps(item, sort_keys=True) for item in client.scan(TableName=table)["Items"])
        for table in ("WillsonTable", "LedgerTable", "OtpSecretTable")
    }


def test_help_lists_every_subcommand():
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "create-tables", "load-fixture", "token", "otp", "reconcile"):
        assert command in result.stdout
    assert all(command in run("otp", "--help").stdout for command in ("enroll", "code", "unlock"))


def test_token_is_a_valid_access_token():
    result = run("token", "--au-id", "19", "--ttl", "60")
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["au_id"] == 19 and claims["exp"] > time.time()
    result = run("token", "--au-id", "19", "--milliseconds")
    assert jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])["exp"] > 10**12


def test_tables_fixture_otp_and_reconcile(endpoint, tmp_path):
    assert "WillsonTable" in run("create-tables", endpoint=endpoint).stdout
    assert "nothing" in run("create-tables", endpoint=endpoint).stdout

    # a broken fixture is refused with its path and nothing is written
    broken = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    broken["concerns"][0]["subcategory_idx"] = 999
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    result = run("load-fixture", str(tmp_path / "broken.json"), endpoint=endpoint)
    assert result.returncode == 2
    assert "concerns[0].subcategory_idx" in result.stderr
    assert scan_all(endpoint) == {"WillsonTable": [], "LedgerTable": [], "OtpSecretTable": []}

    # loading twice leaves the same state
    assert run("load-fixture", str(DEMO_FIXTURE), endpoint=endpoint).returncode == 0
    first = scan_all(endpoint)
    assert run("load-fixture", str(DEMO_FIXTURE), endpoint=endpoint).returncode == 0
    assert scan_all(endpoint) == first

    enrolled = run("otp", "enroll", "--au-id", "19", endpoint=endpoint)
    assert enrolled.returncode == 0
    uri = enrolled.stdout.splitlines()[0]
    assert uri.startswith("otpauth://totp/")
    assert "█" in enrolled.stdout or "▀" in enrolled.stdout or "▄" in enrolled.stdout
    code = run("otp", "code", "--au-id", "19", endpoint=endpoint).stdout.strip()
    assert code == pyotp.parse_uri(uri).now() or code == pyotp.parse_uri(uri).at(time.time() - 1)

    # ops lift a lock: the guard is replaced by an empty one whose version is newer than any before
    client = dynamodb_at(endpoint)
    now_ms = int(time.time() * 1000)
    client.put_item(
        TableName="LedgerTable",
        Item={
            "pk": {"S": "ACCOUNT#19"},
            "sk": {"S": "OTP_GUARD"},
            "version": {"N": "5"},
            "failures": {"L": [{"M": {"id": {"S": str(n)}, "at_ms": {"N": str(now_ms)}}} for n in range(5)]},
            "locked_until_ms": {"N": str(now_ms + 900_000)},
        },
    )
    unlocked = run("otp", "unlock", "--au-id", "19", endpoint=endpoint)
    assert unlocked.returncode == 0
    assert unlocked.stdout == "au_id 19: OTP unlocked (was locked; 5 recent wrong codes forgotten)\n"
    guard = client.get_item(TableName="LedgerTable", Key={"pk": {"S": "ACCOUNT#19"}, "sk": {"S": "OTP_GUARD"}})["Item"]
    assert guard["failures"] == {"L": []} and guard["locked_until_ms"] == {"N": "0"}
    assert int(guard["version"]["N"]) >= now_ms

    result = run("reconcile", endpoint=endpoint)
    assert result.returncode == 0
    assert "broken accounts: 0" in result.stdout


# --- failures: one clear line on stderr, a non-zero exit, never a traceback --------------------------


def run_with(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    full.update({"AWS_MAX_ATTEMPTS": "1", **env})
    return subprocess.run([str(PAYMENTS), *args], capture_output=True, text=True, env=full, cwd="/", timeout=120)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], status: int, *fragments: str) -> None:
    assert result.returncode == status, result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith("payments") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def state_home(tmp_path: Path) -> dict[str, str]:
    """An empty per-user state directory: no `serve` recorded."""
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


@pytest.fixture
def nothing_listening() -> str:
    from payments_cli.dynamodb_local import free_port

    return f"http://127.0.0.1:{free_port()}"


def test_bad_arguments_are_one_line(state_home: dict[str, str]) -> None:
    cases = [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["token"], "the following arguments are required: --au-id"),
        (["token", "--au-id", "nineteen"], "argument --au-id: not an integer: 'nineteen'"),
        (["token", "--au-id", "19", "--ttl", "-5"], "argument --ttl: must be positive: '-5'"),
        (["otp"], "the following arguments are required: OTP_COMMAND"),
        (["otp", "code", "--au-id", "0"], "argument --au-id: must be positive: '0'"),
        (["otp", "enroll"], "the following arguments are required: --au-id"),
        (["load-fixture"], "the following arguments are required: PATH"),
        (["serve", "--port", "70000"], "argument --port: not a port number: '70000'"),
        (["serve", "--cors-origin", "*"], "CORS origin refused: not an origin (scheme://host[:port]): '*'"),
        (["reconcile", "--verbose"], "unrecognized arguments: --verbose"),
    ]
    for args, fragment in cases:
        assert_one_line_failure(run_with(args, state_home), 2, fragment)


def test_nothing_reachable_is_one_line(state_home: dict[str, str], nothing_listening: str) -> None:
    runs: list[tuple[list[str], dict[str, str]]] = []
    for args in (
        ["create-tables"],
        ["load-fixture", str(DEMO_FIXTURE)],
        ["otp", "enroll", "--au-id", "19"],
        ["otp", "code", "--au-id", "19"],
        ["otp", "unlock", "--au-id", "19"],
        ["reconcile"],
        ["serve", "--port", "0"],
    ):
        runs.append(([*args, "--dynamodb-endpoint", nothing_listening], state_home))
        runs.append((args, {**state_home, "AWS_ENDPOINT_URL_DYNAMODB": nothing_listening}))
    # the runs are independent (each waits on its own start-up, not on DynamoDB): side by side
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda run: run_with(*run), runs))
    for result in results:
        assert_one_line_failure(result, 1, f"cannot reach DynamoDB at {nothing_listening}")
    result = run_with(["create-tables", "--dynamodb-endpoint", "not-a-url"], state_home)
    assert_one_line_failure(result, 1, "Invalid endpoint: not-a-url")


def test_refusals_are_one_line(endpoint: str, state_home: dict[str, str], tmp_path: Path) -> None:
    flag = ["--dynamodb-endpoint", endpoint]
    # no tables yet
    assert_one_line_failure(
        run_with(["reconcile", *flag], state_home), 1, "payments reconcile: DynamoDB:", "payments create-tables"
    )
    assert_one_line_failure(
        run_with(["otp", "code", "--au-id", "19", *flag], state_home),
        1,
        "payments otp code: DynamoDB:",
        "payments create-tables",
    )
    assert run_with(["create-tables", *flag], state_home).returncode == 0

    broken = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    broken["accounts"][0]["points"][0]["quantity"] = "many"
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "not-json.json").write_text("{", encoding="utf-8")
    for path in (tmp_path / "broken.json", tmp_path / "not-json.json"):
        for args in (["load-fixture", str(path), *flag], ["serve", "--port", "0", "--fixture", str(path), *flag]):
            assert_one_line_failure(run_with(args, state_home), 2, "fixture refused, nothing written")
    assert_one_line_failure(
        run_with(["load-fixture", str(tmp_path / "missing.json"), *flag], state_home),
        2,
        f"cannot read {tmp_path / 'missing.json'}: No such file or directory",
    )
    assert_one_line_failure(run_with(["load-fixture", str(tmp_path), *flag], state_home), 2, "cannot read")

    # unknown account, and an account without OTP
    assert_one_line_failure(
        run_with(["otp", "code", "--au-id", "424242", *flag], state_home),
        1,
        "payments otp code: au_id 424242 has no OTP enrolled (an unknown account",
    )
    fixture = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    without_otp = next(account["au_id"] for account in fixture["accounts"] if not account.get("otp_secret"))
    assert run_with(["load-fixture", str(DEMO_FIXTURE), *flag], state_home).returncode == 0
    assert_one_line_failure(
        run_with(["otp", "code", "--au-id", str(without_otp), *flag], state_home),
        1,
        f"au_id {without_otp} has no OTP enrolled",
    )
    assert scan_all(endpoint)["WillsonTable"]  # the demo fixture loaded; the refused ones wrote nothing before it


def test_serve_refuses_a_port_in_use(state_home: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_with(["serve", "--port", str(port)], state_home)
    assert_one_line_failure(result, 1, f"payments serve: cannot listen on 127.0.0.1:{port}: Address already in use")


def test_commands_find_the_running_serve_and_an_explicit_endpoint_wins(
    state_home: dict[str, str], nothing_listening: str
) -> None:
    stack = LocalStack(env=state_home).start()
    try:
        # no flag, no AWS_ENDPOINT_URL_DYNAMODB: the running serve's embedded DynamoDB
        result = run_with(["otp", "code", "--au-id", "19"], state_home)
        assert result.returncode == 0 and result.stderr == ""
        assert result.stdout.strip() in {pyotp.TOTP(DEMO_SECRET).at(time.time() + delta) for delta in (-30, 0)}
        assert "broken accounts: 0" in run_with(["reconcile"], state_home).stdout
        # an explicit endpoint wins over the record, flag or environment
        assert_one_line_failure(
            run_with(["otp", "code", "--au-id", "19", "--dynamodb-endpoint", nothing_listening], state_home),
            1,
            f"cannot reach DynamoDB at {nothing_listening}",
        )
        assert_one_line_failure(
            run_with(["otp", "code", "--au-id", "19"], {**state_home, "AWS_ENDPOINT_URL_DYNAMODB": nothing_listening}),
            1,
            f"cannot reach DynamoDB at {nothing_listening}",
        )
    finally:
        stack.stop()
    # (serve gone, several at once, none live: test_local_stacks.py)
