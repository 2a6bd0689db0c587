"""DynamoDB faults on every call of both request paths: the answer is catalogued, the ledger stays whole.

Faults are injected at botocore's `before-send.dynamodb.<Operation>` event of the handlers' own
client. That event fires inside botocore's retry loop, once per attempt, so the client's real
retry policy (standard mode, 3 retries: 4 attempts) runs as it would against DynamoDB; and a hook on the
operation's own event runs before moto's mock, which listens on the generic `before-send`.
A fault either answers with DynamoDB's own error document (throttling, InternalServerError,
TransactionCanceledException for a transaction conflict, keys left unprocessed) or raises what
botocore raises on the wire (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError).
`lost` lets the request reach the database and then raises ReadTimeoutError: the write happened,
its answer did not come back.

Each fault is injected either on the first attempt only (botocore's retry must then give the
right answer) or on every attempt (the answer must be a catalogued error, nothing half-done, a
committed swap never reported as failed, and the same request sent again once the database is
back must get the committed answer or be judged normally).

After every test, `payments_cli.reconcile.reconcile` checks the chain of the account it used; the
data is shared by the module (one moto for all tests, a fresh dashboard account per swap test)
and the whole ledger is reconciled at its end.
Backoff delays are computed but not slept, and each test starts with a full retry quota, as a
fresh Lambda environment would.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import standard
from moto.core.models import botocore_stubber

from conftest import LEDGER_TABLE, OTP_SECRET_TABLE, moto_tables
from functions.swap import app as swap_app
from helpers import DEMO_SECRET, T0, LambdaContext, account_items, balances, code_at, ledger_items, wrong_code
from helpers import progress as progress_route
from helpers import swap as swap_route
from helpers import swap_logs as logs
from payments.aws import dynamodb_client
from payments.repositories import batch as batch_module
from payments.repositories import codec, keys
from payments.repositories.ledger import LedgerRepository
from payments.repositories.ledger_items import PointBalanceItem, WalletItem
from payments.repositories.shared_items import forget_all
from payments.services import swap as swap_service
from payments_cli.reconcile import reconcile

# payments.aws: standard retry mode; botocore's `max_attempts` counts the retries after the first
# attempt (`total_max_attempts` counts them all).
_RETRIES = dynamodb_client().meta.config.retries
BOTOCORE_ATTEMPTS = _RETRIES.get("total_max_attempts") or _RETRIES["max_attempts"] + 1
# Lambda's remaining time when the handler starts (it stays there: every call fits the budget).
REMAINING_MS = 10_000

INTERNAL_WILLSON = (500, {"code": "internal_error", "message": "Internal server error"})
UNKNOWN_SWAP = (500, {"return": 32202, "message": "Unknown swap error"})
MEMBER_READ = (500, {"return": 34005, "message": "GetListMembers DB Scan Error"})
SWAP_CONFLICT = (409, {"return": 32203, "message": "Swap conflict, try again"})
OTP_INVALID = (401, {"return": 32107, "message": "OTP code is invalid"})
BUSY_WILLSON = (503, {"code": "service_busy", "message": "Service busy, try again"})
BUSY_SWAP = (503, {"return": 32204, "message": "Service busy, try again"})


# --- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    status: int = 0  # answer DynamoDB's error document with this status...
    error_type: str = ""
    document: dict[str, Any] = field(default_factory=dict)
    raises: Callable[[str], Exception] | None = None  # ...or raise this on the wire
    applied: bool = False  # the request reaches the database first

    def __str__(self) -> str:
        return self.name


def _error_type(name: str) -> str:
    return f"com.amazonaws.dynamodb.v20120810#{name}"


THROTTLED = Fault(
    "ProvisionedThroughputExceeded",
    400,
    _error_type("ProvisionedThroughputExceededException"),
    {"message": "The level of configured provisioned throughput for the table was exceeded."},
)
THROTTLING = Fault(
    "Throttling",
    400,
    "com.amazon.coral.availability#ThrottlingException",
    {"message": "Throughput exceeds the current capacity for one or more global secondary indexes."},
)
INTERNAL = Fault("InternalServerError", 500, _error_type("InternalServerError"), {"message": "Internal server error"})
CONNECTION = Fault("EndpointConnectionError", raises=lambda url: EndpointConnectionError(endpoint_url=url))
CLOSED = Fault("ConnectionClosedError", raises=lambda url: ConnectionClosedError(endpoint_url=url))
TIMEOUT = Fault("ReadTimeoutError", raises=lambda url: ReadTimeoutError(endpoint_url=url))
LOST = Fault("ResponseLost", raises=lambda url: ReadTimeoutError(endpoint_url=url), applied=True)
CONFLICT = Fault(
    "TransactionConflict",
    400,
    _error_type("TransactionCanceledException"),
    {
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, TransactionConflict, None, None]",
        "CancellationReasons": [
            {"Code": "None"},
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
            {"Code": "None"},
            {"Code": "None"},
        ],
    },
)


def _cancelled_for(reason: str) -> Fault:
    """A transaction cancelled because one of its items was refused for throughput (botocore does not retry it)."""
    return Fault(
        f"TransactionCanceled-{reason}",
        400,
        _error_type("TransactionCanceledException"),
        {
            "message": f"Transaction cancelled, please refer cancellation reasons [None, {reason}]",
            "CancellationReasons": [{"Code": "None"}, {"Code": reason, "Message": "Throughput exceeds the capacity"}],
        },
    )


CANCELLED_FOR_THROUGHPUT = [_cancelled_for("ThrottlingError"), _cancelled_for("ProvisionedThroughputExceeded")]
UNPROCESSED = Fault("UnprocessedKeys")  # BatchGetItem answers 200 and leaves every key unprocessed

FAULTS = [THROTTLED, THROTTLING, INTERNAL, CONNECTION, CLOSED, TIMEOUT]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _answer(url: str, status: int, document: dict[str, Any]) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault-injection"}
    return AWSResponse(url, status, headers, _Raw(json.dumps(document).encode()))


def _tables(operation: str, body: dict[str, Any]) -> set[str]:
    if operation == "BatchGetItem":
        return set(body.get("RequestItems", {}))
    if operation == "TransactWriteItems":
        return {next(iter(item.values()))["TableName"] for item in body.get("TransactItems", [])}
    return {body.get("TableName", "")}


@dataclass
class Rule:
    operation: str
    fault: Fault
    table: str | None = None
    call: int = 1  # which API call of that operation (and table) it hits, 1-based
    every_attempt: bool = False  # every attempt of that call, and of the calls after it...
    last_call: int | None = None  # ...up to this one
    meanwhile: Callable[[], None] | None = None  # runs once, at the first injection (another writer, say)


class FaultInjector:
    """Hooks `before-send.dynamodb.<Operation>` of the handlers' client; counts every attempt."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.rules: list[Rule] = []
        self.sent: list[tuple[str, frozenset[str], str, int]] = []  # operation, tables, invocation, attempt
        self.client_tokens: list[str] = []  # the ClientRequestToken of every TransactWriteItems attempt
        self.injected = 0
        self._registered: list[str] = []

    def arm(
        self,
        operation: str,
        fault: Fault,
        table: str | None = None,
        call: int = 1,
        every_attempt: bool = False,
        last_call: int | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self.rules.append(Rule(operation, fault, table, call, every_attempt, last_call, meanwhile))

    def disarm(self) -> None:
        self.rules.clear()

    def start(self) -> FaultInjector:
        for operation in (
            "BatchGetItem",
            "Query",
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "TransactWriteItems",
        ):
            name = f"before-send.dynamodb.{operation}"
            self._client.meta.events.register(name, self._before_send, unique_id=f"fault-{operation}")
            self._registered.append(name)
        return self

    def stop(self) -> None:
        for name in self._registered:
            operation = name.rsplit(".", 1)[1]
            self._client.meta.events.unregister(name, unique_id=f"fault-{operation}")

    def attempts(self, operation: str, table: str | None = None) -> int:
        return sum(1 for op, tables, _, _ in self.sent if op == operation and (table is None or table in tables))

    def calls(self, operation: str, table: str | None = None) -> int:
        return len({inv for op, tables, inv, _ in self.sent if op == operation and (table is None or table in tables)})

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[1]
        body = json.loads(request.body or b"{}")
        tables = frozenset(_tables(operation, body))
        invocation = _header(request, "amz-sdk-invocation-id")
        attempt = int(_header(request, "amz-sdk-request").split(";")[0].split("=")[1])
        self.sent.append((operation, tables, invocation, attempt))
        if operation == "TransactWriteItems":
            self.client_tokens.append(body.get("ClientRequestToken", ""))
        for rule in self.rules:
            if rule.operation != operation or (rule.table is not None and rule.table not in tables):
                continue
            call_number = len(
                {inv for op, tbl, inv, _ in self.sent if op == operation and (rule.table is None or rule.table in tbl)}
            )
            if call_number < rule.call or (not rule.every_attempt and (call_number > rule.call or attempt > 1)):
                continue
            if rule.last_call is not None and call_number > rule.last_call:
                continue
            if rule.meanwhile is not None:
                rule.meanwhile()
                rule.meanwhile = None
            self.injected += 1
            answer = self._inject(rule.fault, request, event_name, body)
            self._hide_from_moto(request)
            return answer
        return None

    @staticmethod
    def _inject(fault: Fault, request: Any, event_name: str, body: dict[str, Any]) -> AWSResponse:
        if fault is UNPROCESSED:
            return _answer(request.url, 200, {"Responses": {}, "UnprocessedKeys": body["RequestItems"]})
        if fault.applied:
            botocore_stubber(event_name, request)  # the database does the work...
        if fault.raises is not None:
            raise fault.raises(request.url)  # ...and the answer never arrives
        return _answer(request.url, fault.status, {"__type": fault.error_type, **fault.document})

    @staticmethod
    def _hide_from_moto(request: Any) -> None:
        """Every `before-send` handler runs, the first answer wins: moto's mock (the generic
        `before-send`) would still execute the request. Pointed at a host moto does not mock,
        it leaves this attempt alone (botocore builds a new request for each attempt)."""
        request.url = "https://fault-injection.invalid/"


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, b"")
    return value.decode() if isinstance(value, bytes) else str(value)


# --- the shared database and per-test plumbing --------------------------------------------------

FIRST_ACCOUNT = 5001


def _account(au_id: int) -> Account:
    return Account(au_id=au_id, mu_id=au_id + 100_000, walletaddress=f"0xfa{au_id:038x}")


@pytest.fixture(scope="module")
def database(table_snapshots: dict[str, Any]) -> Iterator[Any]:
    """One moto for the module: the demo data (read by payment progress); each swap test adds its own account.

    The tables stay small (moto copies every table on each transaction): a swap test's account is removed once its
    chain has been reconciled.
    """
    with moto_tables(table_snapshots["demo"]) as client:
        yield client
        # every chain of the module's ledger, after every fault the module tried
        assert reconcile(ledger_items(client)).problems == []


@pytest.fixture
def faults(database: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultInjector]:
    # A fresh Lambda environment's retry quota, and no real backoff sleeps (the delays botocore
    # chose are still computed, and kept for the assertions).
    delays: list[float] = []
    original_delay = standard.ExponentialBackoff.delay_amount

    def no_sleep(self: Any, context: Any) -> float:
        delays.append(original_delay(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", no_sleep)
    _refill_retry_quota(database)
    forget_all()  # and its empty caches: every shared item is read, so every call can be faulted
    batch_pauses: list[float] = []
    monkeypatch.setattr(batch_module, "time", SimpleNamespace(sleep=batch_pauses.append))
    # nor the swap's own pauses (its back-off after throttling, its jitter between optimistic attempts)
    monkeypatch.setattr(swap_service, "time", SimpleNamespace(time=time.time, sleep=batch_pauses.append))
    monkeypatch.setattr(swap_app, "clock", lambda: T0)
    injector = FaultInjector(database).start()
    injector.delays = delays  # type: ignore[attr-defined]
    try:
        yield injector
    finally:
        injector.stop()


def _refill_retry_quota(client: Any) -> None:
    """botocore's retry quota (500 units, 14 per retry) is per client: start each test full."""
    emitter = client.meta.events._emitter
    for handler in emitter._handlers.prefix_search("after-call.dynamodb.GetItem"):
        checker = getattr(handler, "__self__", None)
        if isinstance(checker, standard.RetryQuotaChecker):
            quota = checker._quota
            quota._available_capacity = quota._max_capacity


CONTEXT = LambdaContext(remaining_ms=REMAINING_MS)


def progress(body: dict[str, Any]) -> tuple[int, Any]:
    return progress_route(body, au_id=149, context=CONTEXT)


def swap(au_id: int, body: dict[str, Any]) -> tuple[int, Any]:
    return swap_route(body, au_id=au_id, context=CONTEXT)


# --- payment progress: BatchGetItem, Query, BatchGetItem of cards (match_type 1) ------------------

PROGRESS_CALLS = [
    pytest.param("BatchGetItem", 1, {"concern_idx": 1577}, id="BatchGetItem-context"),
    pytest.param("Query", 1, {"concern_idx": 1577}, id="Query-listing"),
    pytest.param("BatchGetItem", 2, {"concern_idx": 1577, "match_type": 1}, id="BatchGetItem-cards"),
]


@pytest.fixture(scope="module")
def progress_baselines(database: Any) -> dict[str, tuple[int, Any]]:
    answers = {
        json.dumps(body): progress(body) for body in ({"concern_idx": 1577}, {"concern_idx": 1577, "match_type": 1})
    }
    assert all(status == 200 for status, _ in answers.values())
    return answers


def _no_writes(injector: FaultInjector) -> None:
    assert {op for op, *_ in injector.sent} <= {"BatchGetItem", "Query"}


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("operation, call, body", PROGRESS_CALLS)
def test_progress_transient_fault_is_retried(faults, progress_baselines, operation, call, body, fault):
    before = account_items(faults._client, 149)
    faults.sent.clear()
    faults.arm(operation, fault, call=call)
    # one failed attempt, then botocore's retry answers exactly what a calm database would
    assert progress(body) == progress_baselines[json.dumps(body)]
    assert faults.injected == 1
    assert faults.calls(operation) == call
    assert faults.attempts(operation) == call + 1
    assert len(faults.delays) == 1
    _no_writes(faults)
    assert account_items(faults._client, 149) == before


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("operation, call, body", PROGRESS_CALLS)
def test_progress_persistent_fault_is_a_catalogued_500(faults, progress_baselines, operation, call, body, fault):
    faults.arm(operation, fault, call=call, every_attempt=True)
    # throttling past botocore's retries is "busy, retry after"; any other failure an internal error
    assert progress(body) == (BUSY_WILLSON if fault.name in REFUSED_BY_DYNAMODB else INTERNAL_WILLSON)
    # bounded: botocore's attempts, then the handler's catalogued answer
    assert faults.attempts(operation) == (call - 1) + BOTOCORE_ATTEMPTS
    _no_writes(faults)
    faults.disarm()
    assert progress(body) == progress_baselines[json.dumps(body)]


def test_progress_unprocessed_keys_are_asked_again(faults, progress_baselines):
    body = {"concern_idx": 1577}
    faults.arm("BatchGetItem", UNPROCESSED)
    assert progress(body) == progress_baselines[json.dumps(body)]
    assert faults.calls("BatchGetItem") == 2


def test_progress_keys_never_processed_is_busy(faults, progress_baselines):
    body = {"concern_idx": 1577}
    faults.arm("BatchGetItem", UNPROCESSED, every_attempt=True)
    assert progress(body) == BUSY_WILLSON
    assert faults.calls("BatchGetItem") == 4  # payments.repositories.batch: bounded re-asks
    faults.disarm()
    assert progress(body) == progress_baselines[json.dumps(body)]


# --- swap: a fresh account per test ------------------------------------------------------------

_account_ids = itertools.count(FIRST_ACCOUNT)


@dataclass
class Account:
    au_id: int
    mu_id: int
    walletaddress: str
    points: int = 2100
    coins: Decimal = Decimal(0)

    def body(
        self, adjust_point: int = -110, adjust_coin: int | Decimal = 11, event_id: int = 3, otp_code: str | None = None
    ) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "otp_code": otp_code or code_at(T0),
            "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": adjust_point},
            "coin": {"coin_id": 2, "adjust_coin_quantity": adjust_coin},
        }

    def success(self, adjust_point: int = -110, adjust_coin: int = 11, log_id: int = 1) -> tuple[int, Any]:
        return 200, {
            "return": 0,
            "message": "success",
            "value": {
                "au_id": self.au_id,
                "point": {
                    "mu_id": self.mu_id,
                    "app_id": 1,
                    "database_id": 1,
                    "point_id": 1,
                    "previous_point_quantity": self.points,
                    "adjust_point_quantity": adjust_point,
                    "point_quantity": self.points + adjust_point,
                },
                "coin": {
                    "coin_id": 2,
                    "walletaddress": self.walletaddress,
                    "previous_coin_quantity": 0,
                    "adjust_coin_quantity": adjust_coin,
                    "coin_quantity": adjust_coin,
                },
                "log_id": log_id,
                "event_id": 3,
            },
        }


@pytest.fixture
def account(faults: FaultInjector) -> Iterator[Account]:
    """A dashboard account no test used: 2100 points, an empty wallet of coin 2, the demo OTP secret.

    Written item by item, as accounts were before adjustment entries (no opening entry: its books start at its first
    swap, which reconcile accepts): a fixture load would be a transaction, and moto copies every table of this
    module's database for each one (about 1.5 s here).
    """
    client = faults._client
    account = _account(next(_account_ids))
    LedgerRepository(client, LEDGER_TABLE, OTP_SECRET_TABLE).enroll_otp(account.au_id, DEMO_SECRET)
    for item in (
        PointBalanceItem.write(account.au_id, 1, 1, account.mu_id, account.points),
        WalletItem.write(account.au_id, 2, account.walletaddress, Decimal(0)),
    ):
        client.put_item(TableName=LEDGER_TABLE, Item=codec.to_item(item))
    faults.sent.clear()
    faults.client_tokens.clear()
    yield account
    # whatever happened in the test, the chain of the account is whole; then it goes
    faults.disarm()
    items = account_items(client, account.au_id)
    assert reconcile(items.values()).problems == []
    for item in items.values():
        client.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item({"pk": item["pk"], "sk": item["sk"]}))
    client.delete_item(TableName=OTP_SECRET_TABLE, Key=codec.to_item(keys.otp_secret(account.au_id)))


def otp_failures(client: Any, au_id: int) -> int:
    guard = account_items(client, au_id).get("OTP_GUARD")
    return len((guard or {}).get("failures", []))


def assert_swapped_once(client: Any, account: Account) -> None:
    assert balances(client, account.au_id) == (account.points - 110, Decimal(11))
    [log] = logs(client, account.au_id)
    assert log["log_id"] == 1


def assert_untouched(client: Any, account: Account) -> None:
    assert balances(client, account.au_id) == (account.points, Decimal(0))
    assert logs(client, account.au_id) == []
    assert not any(sk.startswith("REQUEST#") for sk in account_items(client, account.au_id))


# Each swap call, with the request that makes it: (operation, table, scenario).
#   swap    a successful swap: BatchGetItem (everything, both tables), TransactWriteItems
#   wrong   a wrong OTP code: the failure is counted by a conditional PutItem of the OTP guard
#   replay  the same request again: the request record comes back in the state read (BatchGetItem)
SWAP_CALLS = [
    pytest.param("BatchGetItem", LEDGER_TABLE, "swap", id="BatchGetItem-state"),
    pytest.param("TransactWriteItems", LEDGER_TABLE, "swap", id="TransactWriteItems"),
    pytest.param("PutItem", LEDGER_TABLE, "wrong", id="PutItem-otp-guard"),
    pytest.param("BatchGetItem", LEDGER_TABLE, "replay", id="BatchGetItem-replay"),
]


@dataclass
class Scenario:
    """Prepares the account, then `send` makes the request whose call carries the fault."""

    name: str
    account: Account
    client: Any
    injector: FaultInjector
    monkeypatch: pytest.MonkeyPatch

    def body(self) -> dict[str, Any]:
        if self.name == "wrong":
            return self.account.body(otp_code=wrong_code())
        return self.account.body()

    def prepare(self) -> None:
        if self.name == "replay":
            assert swap(self.account.au_id, self.body()) == self.account.success()
        self.injector.sent.clear()

    def send(self) -> tuple[int, Any]:
        return swap(self.account.au_id, self.body())

    def normal_answer(self) -> tuple[int, Any]:
        return OTP_INVALID if self.name == "wrong" else self.account.success()

    def assert_ledger(self, otp_failures_expected: int = 1) -> None:
        """The ledger as the scenario leaves it on a calm database."""
        if self.name == "wrong":
            assert_untouched(self.client, self.account)
            assert otp_failures(self.client, self.account.au_id) == otp_failures_expected
        else:
            assert_swapped_once(self.client, self.account)


@pytest.fixture
def scenario_for(account: Account, faults: FaultInjector, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Scenario]:
    def make(name: str) -> Scenario:
        scenario = Scenario(name, account, faults._client, faults, monkeypatch)
        scenario.prepare()
        return scenario

    return make


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("operation, table, name", SWAP_CALLS)
def test_swap_transient_fault_is_retried(faults, scenario_for, operation, table, name, fault):
    scenario = scenario_for(name)
    faults.arm(operation, fault, table=table)
    # one failed attempt; botocore's retry then gives the answer a calm database gives
    assert scenario.send() == scenario.normal_answer()
    assert faults.injected == 1
    assert faults.calls(operation, table) == 1
    assert faults.attempts(operation, table) == 2
    assert faults.calls("TransactWriteItems") <= 1  # one transaction at most, whatever was retried
    scenario.assert_ledger()
    faults.disarm()
    # and the same request again is answered as on a calm database (a replay, or judged afresh)
    assert scenario.send() == scenario.normal_answer()
    scenario.assert_ledger(otp_failures_expected=2)


# What each call's persistent failure answers. A transaction whose every answer is an error says
# nothing of whether it committed unless the error is DynamoDB refusing it (a 4xx such as
# throttling): then the swap resends it, reads again, and answers 32202 only if it still cannot tell.
REFUSED_BY_DYNAMODB = {THROTTLED.name, THROTTLING.name}


def persistent_answer(operation: str, fault: Fault) -> tuple[int, Any]:
    if fault.name in REFUSED_BY_DYNAMODB:
        return BUSY_SWAP  # throttled past every retry that fits: nothing committed, come back
    if operation == "BatchGetItem":
        return MEMBER_READ  # the swap's state (or its record) could not be read
    # the wrong code could not be counted (so not judged); or the transaction was refused, or
    # its outcome stayed unknown
    return UNKNOWN_SWAP


def transaction_calls(fault: Fault) -> int:
    """TransactWriteItems calls a swap makes when every attempt of every call fails with `fault`."""
    if fault.name in REFUSED_BY_DYNAMODB:
        return swap_app.settings.swap_max_attempts  # throttled: nothing committed, read and tried again
    return swap_app.policy.max_unknown_outcomes * (1 + swap_app.policy.max_resends)


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("operation, table, name", SWAP_CALLS)
def test_swap_persistent_fault_is_catalogued_and_recoverable(faults, scenario_for, operation, table, name, fault):
    scenario = scenario_for(name)
    before = account_items(faults._client, scenario.account.au_id)
    faults.arm(operation, fault, table=table, every_attempt=True)
    assert scenario.send() == persistent_answer(operation, fault)
    # bounded: botocore's attempts of each failing call, and a bounded number of calls
    calls = transaction_calls(fault) if operation == "TransactWriteItems" else 1
    if operation == "BatchGetItem" and fault.name in REFUSED_BY_DYNAMODB:
        calls = swap_app.settings.swap_max_attempts  # a throttled read is tried again after a pause
    assert faults.calls(operation, table) == calls
    assert faults.attempts(operation, table) == calls * BOTOCORE_ATTEMPTS
    assert account_items(faults._client, scenario.account.au_id) == before  # nothing written
    faults.disarm()
    assert scenario.send() == scenario.normal_answer()
    scenario.assert_ledger()


def test_transaction_conflict_once_is_retried_by_the_swap(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", CONFLICT)
    assert scenario.send() == scenario.account.success()
    # botocore does not retry a cancelled transaction; the swap re-reads and commits again
    assert faults.calls("TransactWriteItems") == 2
    assert faults.calls("BatchGetItem") == 2
    assert_swapped_once(faults._client, scenario.account)


def test_transaction_conflict_every_time_is_32203_after_bounded_retries(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", CONFLICT, every_attempt=True)
    assert scenario.send() == SWAP_CONFLICT
    assert faults.calls("TransactWriteItems") == swap_app.settings.swap_max_attempts
    assert_untouched(faults._client, scenario.account)
    faults.disarm()
    assert scenario.send() == scenario.account.success()
    assert_swapped_once(faults._client, scenario.account)


@pytest.mark.parametrize("fault", CANCELLED_FOR_THROUGHPUT, ids=str)
def test_transaction_cancelled_for_throughput_once_is_tried_again(faults, scenario_for, fault):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", fault)
    # nothing committed, no OTP step consumed: the swap reads and judges again, then commits once
    assert scenario.send() == scenario.account.success()
    assert faults.calls("TransactWriteItems") == 2
    assert_swapped_once(faults._client, scenario.account)


@pytest.mark.parametrize("fault", CANCELLED_FOR_THROUGHPUT, ids=str)
def test_transaction_cancelled_for_throughput_every_time_is_busy(faults, scenario_for, fault):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", fault, every_attempt=True)
    assert scenario.send() == BUSY_SWAP  # never 32202: DynamoDB said what happened
    assert faults.calls("TransactWriteItems") == swap_app.settings.swap_max_attempts
    assert_untouched(faults._client, scenario.account)
    faults.disarm()
    # the same code still works: no step was consumed
    assert scenario.send() == scenario.account.success()
    assert_swapped_once(faults._client, scenario.account)


def test_swap_unprocessed_keys_are_asked_again(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("BatchGetItem", UNPROCESSED, table=LEDGER_TABLE)
    assert scenario.send() == scenario.account.success()
    assert faults.calls("BatchGetItem") == 2
    assert_swapped_once(faults._client, scenario.account)


def test_swap_keys_never_processed_is_busy(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("BatchGetItem", UNPROCESSED, table=LEDGER_TABLE, every_attempt=True)
    assert scenario.send() == BUSY_SWAP
    # payments.repositories.batch asks 4 times per read; the swap reads once per attempt
    assert faults.calls("BatchGetItem") == 4 * swap_app.settings.swap_max_attempts
    assert_untouched(faults._client, scenario.account)
    faults.disarm()
    assert scenario.send() == scenario.account.success()


# --- writes that reach the database but whose answer is lost -------------------------------------


def test_lost_answer_of_the_transaction_is_resolved_before_answering(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", LOST)
    # DynamoDB committed; botocore resends the same transaction (same ClientRequestToken), which
    # moto, unlike DynamoDB, judges anew: its conditions fail. The swap re-reads, finds its own
    # request record and answers what committed
    assert scenario.send() == scenario.account.success()
    assert faults.attempts("TransactWriteItems") == 2
    assert faults.calls("BatchGetItem") == 2
    assert_swapped_once(faults._client, scenario.account)
    faults.disarm()
    assert scenario.send() == scenario.account.success()
    assert_swapped_once(faults._client, scenario.account)


def test_every_answer_of_the_transaction_lost_is_still_resolved_by_reading(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", LOST, every_attempt=True)
    # the first attempt commits, every answer is lost, resends included: the reads tell
    assert scenario.send() == scenario.account.success()
    assert_swapped_once(faults._client, scenario.account)
    # every attempt of every resend was the same transaction for DynamoDB: one ClientRequestToken
    assert faults.calls("TransactWriteItems") == 1 + swap_app.policy.max_resends
    assert len(faults.client_tokens) == faults.attempts("TransactWriteItems") > 1
    assert len(set(faults.client_tokens)) == 1 and len(faults.client_tokens[0]) == 36


def test_lost_answers_then_an_unreadable_database_answer_32202_and_the_retry_learns_the_truth(faults, scenario_for):
    scenario = scenario_for("swap")
    faults.arm("TransactWriteItems", LOST, every_attempt=True)
    faults.arm("BatchGetItem", CONNECTION, table=LEDGER_TABLE, call=2, every_attempt=True)
    # committed, but nothing can tell the swap so: it says it does not know (never "failed")
    assert scenario.send() == UNKNOWN_SWAP
    assert_swapped_once(faults._client, scenario.account)
    faults.disarm()
    # the client's retry is answered from the request record, once
    assert scenario.send() == scenario.account.success()
    assert_swapped_once(faults._client, scenario.account)


def test_lost_answer_of_the_otp_guard_write_counts_one_failure(faults, scenario_for):
    # botocore sends the same conditional PutItem again; it fails (the guard moved on), the swap
    # reads the guard, finds its own failure and answers it: one wrong code, counted once
    scenario = scenario_for("wrong")
    faults.arm("PutItem", LOST, table=LEDGER_TABLE)
    assert scenario.send() == OTP_INVALID
    assert faults.attempts("PutItem", LEDGER_TABLE) == 2
    assert otp_failures(faults._client, scenario.account.au_id) == 1
    assert_untouched(faults._client, scenario.account)


def test_after_a_lost_request_no_refusal_is_final_and_the_retry_is_judged_on_what_is_stored(faults, scenario_for):
    scenario = scenario_for("swap")
    au_id = scenario.account.au_id

    def points_spent_meanwhile() -> None:
        # an ops correction (the adjustment path, through a client of its own: no fault injected, none counted)
        from payments.repositories.adjustments import AdjustmentRepository, BalanceSetting, PointTarget

        ops = AdjustmentRepository(boto3.client("dynamodb", region_name="us-east-1"), LEDGER_TABLE)
        ops.set_balances(au_id, [BalanceSetting("spent", PointTarget(1, 1), 5)], reason="spent", actor="test")

    # Given the transaction never reaches DynamoDB (every attempt of its first call times out), and meanwhile
    # the points are spent
    faults.arm("TransactWriteItems", TIMEOUT, every_attempt=True, last_call=1, meanwhile=points_spent_meanwhile)
    # When the swap resends the same transaction, its conditions fail and the re-read finds no request record:
    # most likely it did not commit, but a transaction whose answer was lost is never followed by a refusal
    # (it could still be landing): the answer is "unknown"
    assert scenario.send() == UNKNOWN_SWAP
    assert faults.calls("TransactWriteItems") == 2
    assert logs(faults._client, au_id) == []
    # Then the client's retry is judged on what is stored
    faults.disarm()
    assert scenario.send() == (409, {"return": 32103, "message": "point quantity is invalid"})
    assert balances(faults._client, au_id) == (5, Decimal(0))
