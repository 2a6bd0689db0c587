"""The continuous auditor on real stream records: DynamoDB Local's (and the embedded emulator's, for `audit --follow`).

One DynamoDB Local and one `payments serve` in front of it for the module (the demo data, and accounts 30-45 copies
of the demo's account 19). Swaps go through serve over HTTP, the adjustment through the adjustment path; the records
are read from DynamoDB Local's stream (DynamoDB Streams API) and given to the audit function's handler in-process,
in batches of any size and order, its entries read from DynamoDB Local.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pyotp
import pytest

from conftest import LEDGER_TABLE, demo_fixture
from helpers import DEMO_SECRET, LambdaContext, exact_json, rated_swap_body, token, wait_for_calm_otp_step
from helpers.processes import PAYMENTS, LocalStack, dynamodb_at
from payments.audit import LedgerAuditor
from payments.repositories import codec
from payments.repositories.adjustments import AdjustmentRepository, BalanceSetting, WalletTarget
from payments.repositories.audit_reader import LedgerEntryReader
from payments_cli.audit_follow import StreamFollower
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

pytestmark = [
    pytest.mark.slow,
    pytest.mark.local_stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]
CONCURRENT_ACCOUNTS = tuple(range(30, 46))  # 16 accounts, one swap each, all at once


class Stack(NamedTuple):
    local: LocalStack
    endpoint: str
    client: Any
    stream: StreamFollower


def streams_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodbstreams",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def fixture_with_accounts(directory: Path, accounts: tuple[int, ...]) -> Path:
    fixture = demo_fixture()
    [demo] = [account for account in fixture["accounts"] if account["au_id"] == 19]
    for au_id in accounts:
        fixture["accounts"].append(
            {
                **demo,
                "au_id": au_id,
                "points": [{**demo["points"][0], "mu_id": 100_000 + au_id}],
                "wallets": [{**demo["wallets"][0], "walletaddress": f"0xfa{au_id:038x}"}],
            }
        )
    path = directory / "fixture.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    return path


def follower(client: Any, endpoint: str) -> StreamFollower:
    arn = client.describe_table(TableName=LEDGER_TABLE)["Table"]["LatestStreamArn"]
    stream = StreamFollower(streams_client(endpoint), arn, from_start=True)
    stream.refresh()
    return stream


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not is_installed():
        pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
    fixture = fixture_with_accounts(tmp_path_factory.mktemp("audit"), CONCURRENT_ACCOUNTS)
    with ExitStack() as exits:
        endpoint = exits.enter_context(DynamoDBLocal()).endpoint
        local = exits.enter_context(
            LocalStack("--dynamodb-endpoint", endpoint, "--fixture", str(fixture), "--concurrent-dynamodb")
        )
        client = dynamodb_at(endpoint)
        yield Stack(local, endpoint, client, follower(client, endpoint))


def new_records(stream: StreamFollower, quiet_seconds: float = 0.5) -> list[dict[str, Any]]:
    """Everything the stream received since the last call: read until nothing came for `quiet_seconds`."""
    records: list[dict[str, Any]] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_seconds:
        batch = stream.read()
        if batch:
            records += batch
            quiet_since = time.monotonic()
        else:
            time.sleep(0.05)
    # as Lambda delivers them: the creation time in epoch seconds
    return json.loads(json.dumps(records, default=lambda value: value.timestamp()))


@pytest.fixture
def handler(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The audit function's handler, its entries read from DynamoDB Local; its breaks and metrics recorded."""
    from functions.audit import app

    monkeypatch.setattr(app, "auditor", LedgerAuditor(LedgerEntryReader(stack.client, LEDGER_TABLE)))
    app.logged = []  # type: ignore[attr-defined]
    app.published = []  # type: ignore[attr-defined]
    monkeypatch.setattr(app.logger, "warning", lambda message, extra: app.logged.append({"message": message, **extra}))
    monkeypatch.setattr(app.metrics, "add_metric", lambda name, unit, value: app.published.append((name, value)))
    return app


def audit(handler: Any, records: list[dict[str, Any]], batch_size: int | None = None) -> list[dict[str, Any]]:
    """The records through the handler in batches of `batch_size` (all at once by default); the failures."""
    failures: list[dict[str, Any]] = []
    size = batch_size or max(len(records), 1)
    for start in range(0, len(records), size):
        response = handler.lambda_handler({"Records": records[start : start + size]}, LambdaContext(60_000))
        failures += response["batchItemFailures"]
    return failures


def breaks(handler: Any) -> list[tuple[int, str, str]]:
    return [(line["au_id"], line["item"], line["reason"]) for line in handler.logged]


def keys_of(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records]


def swap_now(local: LocalStack, au_id: int, points: int) -> tuple[int, Any]:
    code = pyotp.TOTP(DEMO_SECRET).now()
    headers = {"Authorization": f"Bearer {token(au_id)}"}
    return local.post("/v1.0/db/swap", raw=exact_json(rated_swap_body(code, points)), headers=headers)


def test_a_swap_an_adjustment_and_16_concurrent_swaps_raise_no_alarm(stack, handler):
    # the fixture's load (opening entries and balances)
    loaded = new_records(stack.stream)
    assert audit(handler, loaded) == [] and breaks(handler) == []
    # Given a swap
    wait_for_calm_otp_step()
    status, body = swap_now(stack.local, 19, -100)
    assert status == 200, body
    swap = new_records(stack.stream)
    assert ("ACCOUNT#19", "SWAPLOG#00000000000000000001") in keys_of(swap)
    # its records alone, together, and one per batch: no alarm
    assert audit(handler, swap) == []
    assert audit(handler, swap, batch_size=1) == []
    assert breaks(handler) == []
    # Given an adjustment (the ops path: entry, marker and balance in one transaction)
    adjustments = AdjustmentRepository(stack.client, LEDGER_TABLE)
    [result] = adjustments.set_balances(19, [BalanceSetting("audit-test-1", WalletTarget(2), Decimal("50"))], "t", "t")
    assert result.adjustment is not None
    adjusted = new_records(stack.stream)
    assert any(sk.startswith("ADJUSTMENT#") for _, sk in keys_of(adjusted))
    assert audit(handler, adjusted) == [] and audit(handler, adjusted, batch_size=1) == []
    assert breaks(handler) == []
    # Given 16 swaps at once, one per account
    wait_for_calm_otp_step()
    with ThreadPoolExecutor(max_workers=len(CONCURRENT_ACCOUNTS)) as pool:
        answers = list(pool.map(lambda au_id: swap_now(stack.local, au_id, -10), CONCURRENT_ACCOUNTS))
    assert [status for status, _ in answers] == [200] * 16, answers
    concurrent = new_records(stack.stream)
    assert sum(sk.startswith("SWAPLOG#") for _, sk in keys_of(concurrent)) == 16
    # interleaved, apart: shuffled into batches of 7, the log often in another batch than its balances
    shuffled = concurrent[:]
    random.Random(18).shuffle(shuffled)
    assert audit(handler, shuffled, batch_size=7) == []
    assert audit(handler, concurrent) == []
    # Then no alarm: no break logged, and the metric published 0 every time
    assert breaks(handler) == []
    assert handler.published and all(value == 0 for name, value in handler.published if name == "LedgerAuditBreak")


def edit_directly(client: Any, au_id: int, quantity: int) -> None:
    """Someone sets a balance in the table directly (no entry, no stamp)."""
    client.update_item(
        TableName=LEDGER_TABLE,
        Key=codec.to_item({"pk": f"ACCOUNT#{au_id}", "sk": "POINT#1#1"}),
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": str(quantity)}},
    )


def test_a_balance_edited_directly_raises_an_alarm_naming_the_account(stack, handler):
    new_records(stack.stream)  # what came before
    edit_directly(stack.client, 31, 1_000_000)
    records = new_records(stack.stream)
    assert audit(handler, records) == []
    [(au_id, item, reason)] = breaks(handler)
    assert (au_id, item) == (31, "POINT#1#1")
    assert reason.startswith("balance changed without an entry") and "-> 1000000" in reason
    assert ("LedgerAuditBreak", 1) in handler.published


def test_a_poison_record_does_not_block_the_shard(stack, handler):
    new_records(stack.stream)
    edit_directly(stack.client, 32, 5)
    wait_for_calm_otp_step()
    status, _ = swap_now(stack.local, 33, -10)
    assert status == 200
    records = new_records(stack.stream)
    poison = json.loads(json.dumps(records[0]))
    poison["dynamodb"]["SequenceNumber"] = "poison-1"
    poison["dynamodb"]["NewImage"] = {"quantity": {"S": "not a number"}}
    poison["dynamodb"]["Keys"] = {"pk": {"S": "ACCOUNT#32"}, "sk": {"S": "POINT#1#1"}}
    batch = [poison, *records]
    response = handler.lambda_handler({"Records": batch}, LambdaContext(60_000))
    # only the poison record is reported; every other record was checked (the edit is found, the swap is clean)
    assert response == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert [(au_id, item) for au_id, item, _ in breaks(handler)] == [(32, "POINT#1#1")]


# --- payments audit --follow ----------------------------------------------------------------------------------


class Follower:
    """`payments audit --follow` in its own process; its stdout lines with the time each arrived."""

    def __init__(self, endpoint: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
        self.process = subprocess.Popen(
            [str(PAYMENTS), "audit", "--follow", "--dynamodb-endpoint", endpoint],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd="/",
        )
        self.lines: list[tuple[float, str]] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.process.stderr is not None
        banner = self.process.stderr.readline()
        assert banner.startswith("following LedgerTable's stream"), banner

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in self.lines:
                if text in line:
                    return at
            time.sleep(0.01)
        raise AssertionError(f"no line with {text!r}: {self.lines}")

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=20)
        return self.process.returncode, err


@pytest.fixture(params=["dynamodb-local", "embedded"])
def follow_endpoint(request: pytest.FixtureRequest, stack: Stack, tmp_path: Path) -> Iterator[str]:
    if request.param == "dynamodb-local":
        yield stack.endpoint
        return
    # the embedded emulator of a `payments serve` of its own
    fixture = fixture_with_accounts(tmp_path, CONCURRENT_ACCOUNTS)
    with LocalStack("--fixture", str(fixture)) as local:
        yield local.dynamodb_endpoint


def test_audit_follow_names_a_tampered_account_and_stops_on_ctrl_c(follow_endpoint, capsys):
    client = dynamodb_at(follow_endpoint)
    follower = Follower(follow_endpoint)
    try:
        delays = []
        for n, au_id in enumerate((34, 35, 36, 37, 38)):
            written = time.monotonic()
            edit_directly(client, au_id, 7_000_000 + n)
            seen = follower.wait_for(f"break au_id {au_id} POINT#1#1: balance changed without an entry")
            delays.append(seen - written)
    finally:
        status, err = follower.interrupt()
    assert status == 0, err
    assert "stopped:" in err and "5 breaks" in err
    assert "Traceback" not in err
    with capsys.disabled():
        seconds = [round(delay, 3) for delay in delays]
        print(f"\naudit --follow on {follow_endpoint}: tampered write to break line, s: {seconds}")
    assert max(delays) < 5.0


# --- the built artifact -----------------------------------------------------------------------------------------


def test_the_built_audit_function_reports_breaks_and_a_poison_record_in_lambdas_shapes(tmp_path):
    """`make build`'s targets (the layer and AuditFunction, for this machine), imported in an isolated interpreter as
    Lambda would: the partial batch response, the break's log line and the EMF metric on stdout."""
    from test_artifacts import make, run_isolated
    from test_audit import point, stream_record, swap_records, wallet

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    make("build-SharedLayer", tmp_path / "opt", scratch)
    make("build-AuditFunction", tmp_path / "audit", scratch)
    poison = stream_record("MODIFY", point(10, 1), point(5))
    poison["dynamodb"]["NewImage"]["quantity"] = {"S": "lots"}
    tampered = stream_record("MODIFY", wallet("999", 1), wallet("11", 1))
    event = {"Records": [*swap_records(1, (2100, 1990), ("0", "11")), poison, tampered]}
    environment = {
        "LEDGER_TABLE_NAME": "LedgerTable",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "payments",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    output, stdout = run_isolated(tmp_path / "audit", tmp_path / "opt", [event], environment, tmp_path)
    assert output["foreign_modules"] == [], output["foreign_modules"]
    assert output["responses"] == [{"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}]
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    [logged] = [line for line in lines if line.get("message") == "ledger audit break"]
    assert (logged["au_id"], logged["item"], logged["level"]) == (19, "WALLET#2", "WARNING")
    assert "quantity" not in json.dumps(logged), "no image is logged"
    [emf] = [line for line in lines if "_aws" in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "WillsonPayments"
    assert ["service"] in directive["Dimensions"] and emf["service"] == "payments"
    assert emf["LedgerAuditBreak"] in (1, [1])
