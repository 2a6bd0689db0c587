"""Priming (payments.priming): SnapStart hooks registered when the runtime offers them, each one-time step done by
calling the libraries themselves, only reads of keys no item has (and a transaction that cannot write) sent, nothing
left behind, and an import that priming can never break."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {
    "payment_progress": ROOT / "functions" / "payment_progress" / "app.py",
    "swap": ROOT / "functions" / "swap" / "app.py",
}
PROGRESS = "/api/v1/asker/payment/progress"


def fresh_load(name: str) -> Any:
    """A separate load of a handler module (as a new execution environment would import it)."""
    spec = importlib.util.spec_from_file_location(f"priming_test_{name}", HANDLERS[name])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def snapstart(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stand-in for the Lambda runtime's snapshot_restore_py, recording what is registered."""
    hooks: dict[str, list[Any]] = {"before": [], "after": []}
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = lambda func, *a, **k: hooks["before"].append((func, a, k))  # type: ignore[attr-defined]
    fake.register_after_restore = lambda func, *a, **k: hooks["after"].append((func, a, k))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    import payments.priming

    importlib.reload(payments.priming)  # its guarded import now finds the runtime's module
    yield hooks
    monkeypatch.delitem(sys.modules, "snapshot_restore_py")
    importlib.reload(payments.priming)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request botocore would put on the wire, recorded and refused (no moto: nothing else answers)."""
    from botocore.endpoint import Endpoint

    sent: list[str] = []

    def send(self: Any, request: Any) -> Any:
        sent.append(request.headers.get("X-Amz-Target", b"").decode())
        raise AssertionError(f"priming sent {sent[-1]} over the network")

    monkeypatch.setattr(Endpoint, "_send", send)
    return sent


@pytest.fixture
def answers_nothing(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every request botocore would put on the wire, recorded (operation, body) and answered "nothing found"."""
    from botocore.awsrequest import AWSResponse
    from botocore.endpoint import Endpoint

    sent: list[tuple[str, dict[str, Any]]] = []
    empty = {"BatchGetItem": b'{"Responses": {}, "UnprocessedKeys": {}}', "Query": b'{"Items": [], "Count": 0}'}

    def send(self: Any, request: Any) -> Any:
        operation = request.headers.get("X-Amz-Target", b"").decode().rpartition(".")[2]
        sent.append((operation, json.loads(request.body)))
        body = empty.get(operation, b"{}")
        return AWSResponse(request.url, 200, {}, types.SimpleNamespace(stream=lambda **_: iter([body])))

    monkeypatch.setattr(Endpoint, "_send", send)
    return sent


def keys_read(body: dict[str, Any]) -> list[str]:
    """The partition keys a request names (BatchGetItem keys, a Query's :pk, a transaction's keys)."""
    found = [key["pk"]["S"] for table in body.get("RequestItems", {}).values() for key in table["Keys"]]
    found += [value["S"] for name, value in body.get("ExpressionAttributeValues", {}).items() if name == ":pk"]
    for item in body.get("TransactItems", []):
        found += [action["Key"]["pk"]["S"] for action in item.values()]
    return found


def calls_of(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Record each call of `owner.name` (its first argument after self, or its first argument), still calling it."""
    real = getattr(owner, name)
    seen: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return seen


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_hooks_are_registered_and_every_step_succeeds_reading_only_keys_no_item_has(
    name: str, snapstart: Any, answers_nothing: list[tuple[str, dict[str, Any]]]
) -> None:
    import payments.priming

    fresh_load(name)
    assert len(snapstart["before"]) == 1 and len(snapstart["after"]) == 1
    func, args, kwargs = snapstart["before"][0]
    assert func(*args, **kwargs) == []  # no step failed (prime returns the failed ones)
    operations = [operation for operation, _ in answers_nothing]
    rounds = payments.priming.REHEARSALS
    if name == "payment_progress":
        assert operations == ["BatchGetItem", "Query"] * rounds
    else:
        assert operations == ["BatchGetItem", "TransactWriteItems"] * rounds
    for operation, body in answers_nothing:
        # nobody's keys (caller and concern 0: no token names au_id 0), the ticket catalogue, a gender no concern has
        assert {key.partition("#")[2] for key in keys_read(body)} <= {"0", "", "0#PRIMING"}, body
        if operation == "TransactWriteItems":
            # a transaction of condition checks only: nothing in it can write, whatever the answer
            assert [list(item) for item in body["TransactItems"]] == [["ConditionCheck"]], body


def test_botocore_step_validates_serialises_and_parses_each_dynamodb_operation(
    monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    import botocore.parsers
    import botocore.serialize

    import payments.priming
    from payments.config import get_settings

    serialised = calls_of(monkeypatch, botocore.serialize.JSONSerializer, "serialize_to_request")
    parsed = calls_of(monkeypatch, botocore.parsers.JSONParser, "parse")
    assert payments.priming.prime(get_settings()) == []
    operations = [operation.name for _, _, operation in serialised]
    assert operations == list(payments.priming.DYNAMODB_OPERATIONS)
    assert {"BatchGetItem", "GetItem", "Query", "TransactWriteItems", "PutItem"} <= set(operations)
    assert [shape.name for _, _, shape in parsed] == [f"{name}Output" for name in operations]
    assert no_network == []


def test_botocore_step_resolves_every_nested_shape() -> None:
    import payments.priming
    from payments.aws import dynamodb_client

    shape = dynamodb_client().meta.service_model.operation_model("TransactWriteItems").input_shape
    assert payments.priming._resolve(shape) > 100
    # botocore caches each member on its parent: an attribute value two maps deep inside an Update's values
    update = shape.members["TransactItems"].member.members["Update"]
    value = update.members["ExpressionAttributeValues"].value
    nested = value.members["M"].value.members["M"].value
    assert {"members", "serialization"} <= set(vars(nested))


def test_pydantic_step_validates_and_dumps_the_request_and_response_models(monkeypatch: pytest.MonkeyPatch) -> None:
    import payments.priming
    from payments.config import get_settings
    from payments.models.payment_progress import PaymentProgressData
    from payments.models.swap import SwapValue

    dumped = calls_of(monkeypatch, SwapValue, "model_dump")
    validated = calls_of(monkeypatch, PaymentProgressData, "model_validate")
    assert payments.priming.prime(get_settings()) == []
    # once per rehearsal round
    assert len(dumped) == len(validated) == payments.priming.REHEARSALS


def test_token_step_signs_and_verifies_with_pyjwt_and_leaves_the_auth_cache_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jwt

    import payments.priming
    from payments import auth
    from payments.config import get_settings

    auth._verified_claims.cache_clear()
    decoded = calls_of(monkeypatch, jwt, "decode")
    assert payments.priming.prime(get_settings()) == []
    token, secret = decoded[0][0], decoded[0][1]
    # a throwaway secret, neither the deployed one nor the development one, and no token kept by the handlers' cache
    assert secret != get_settings().jwt_secret and len(secret) >= 32
    assert jwt.decode(token, secret, algorithms=["HS256"])["au_id"] == 1
    assert auth._verified_claims.cache_info().currsize == 0


def test_otp_step_computes_a_totp_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyotp

    import payments.priming
    from payments.config import get_settings

    verified = calls_of(monkeypatch, pyotp.TOTP, "verify")
    assert payments.priming.prime(get_settings()) == []
    assert len(verified) == payments.priming.REHEARSALS


def test_powertools_step_imports_what_a_first_request_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    import payments.priming
    from payments.config import get_settings

    for name in payments.priming.POWERTOOLS_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert payments.priming.prime(get_settings()) == []
    assert all(name in sys.modules for name in payments.priming.POWERTOOLS_MODULES)


def test_priming_registers_nothing_on_the_production_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import payments.priming
    from payments.aws import dynamodb_client
    from payments.config import get_settings

    events = dynamodb_client().meta.events
    registered = {name: calls_of(monkeypatch, events, name) for name in ("register_first", "register", "register_last")}
    assert payments.priming.prime(get_settings()) == []
    assert registered == {"register_first": [], "register": [], "register_last": []}


def test_a_failing_step_is_skipped_and_the_import_goes_on(
    monkeypatch: pytest.MonkeyPatch, answers_nothing: Any
) -> None:
    import payments.priming

    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("no pyjwt today")

    monkeypatch.setattr(payments.priming, "_jwt", broken)
    monkeypatch.setattr(payments.priming, "_otp", lambda: ran.append("otp"))
    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    module = fresh_load("swap")  # primes at import: the broken step must not make the import fail
    assert callable(module.lambda_handler)
    assert ran == ["otp"] * payments.priming.REHEARSALS  # the steps after the broken one still ran, each round
    from payments.config import get_settings

    assert payments.priming.prime(get_settings()) == ["jwt"]


def test_priming_with_no_dynamodb_reachable_neither_raises_nor_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.endpoint import Endpoint

    import payments.priming
    from payments import aws
    from payments.config import get_settings
    from payments.repositories.willson import WillsonRepository

    # a client of a port nothing listens on: a connection would be refused (or, firewalled, wait for its timeout)
    unreachable = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", config=aws._CLIENT_CONFIG)
    monkeypatch.setattr(aws, "dynamodb_client", lambda: unreachable)
    settings = get_settings()
    attempts = calls_of(monkeypatch, Endpoint, "_send")
    started = time.monotonic()
    repository = WillsonRepository(unreachable, settings.willson_table, settings.ledger_table)
    # only the rehearsed reads fail, logged; the first failed read ends them (one call's attempts, none after)
    assert payments.priming.prime(settings, None, repository) == ["reads"]
    assert len(attempts) == aws.TOTAL_MAX_ATTEMPTS
    # at most the client's one back-off between its two attempts (a refused connection does not wait)
    assert time.monotonic() - started < 2.5


def test_the_rehearsed_refusals_leave_no_metric_behind(snapstart: Any, answers_nothing: Any) -> None:
    from payments.observability import metrics

    fresh_load("swap")  # the swap counts every refusal in a metric: the rehearsed ones are not real
    func, args, kwargs = snapstart["before"][0]
    assert func(*args, **kwargs) == []
    assert metrics.metric_set == {}


def test_rehearsing_the_swap_writes_nothing(demo: Any, snapstart: Any) -> None:
    from conftest import LEDGER_TABLE

    before = demo.scan(TableName=LEDGER_TABLE, ConsistentRead=True)["Items"]
    fresh_load("swap")
    func, args, kwargs = snapstart["before"][0]
    assert func(*args, **kwargs) == []
    assert demo.scan(TableName=LEDGER_TABLE, ConsistentRead=True)["Items"] == before


def test_after_restore_reseeds_random(snapstart: Any) -> None:
    fresh_load("payment_progress")
    random.seed(1234)
    seeded = random.getstate()
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    assert random.getstate() != seeded


def test_after_restore_forgets_the_cached_signing_secret(snapstart: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from payments.aws import secrets_provider

    fresh_load("swap")
    provider = secrets_provider()
    cleared: list[bool] = []
    monkeypatch.setattr(provider, "clear_cache", lambda: cleared.append(True))
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    # a restored environment fetches the secret again (it may have been rotated since the snapshot)
    assert cleared == [True]


def test_after_restore_drops_the_connections_of_the_snapshot(
    snapstart: Any, monkeypatch: pytest.MonkeyPatch, answers_nothing: Any
) -> None:
    from payments.aws import dynamodb_client

    fresh_load("payment_progress")
    before, _, _ = snapstart["before"][0]
    before(*snapstart["before"][0][1])  # the rehearsal reads through the client: its pool holds connections
    closed = calls_of(monkeypatch, dynamodb_client(), "close")
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    assert len(closed) == 1


def test_without_the_runtime_priming_runs_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import payments.priming

    primed: list[Any] = []
    monkeypatch.setattr(payments.priming, "prime", lambda *args: primed.append(args))
    monkeypatch.delenv("PAYMENTS_PRIME_AT_INIT", raising=False)
    fresh_load("payment_progress")
    assert primed == []
    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    fresh_load("payment_progress")
    assert len(primed) == 1


def test_after_priming_real_requests_reach_dynamodb(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import LambdaContext, api_event, token

    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    module = fresh_load("payment_progress")
    response = module.lambda_handler(
        api_event(PROGRESS, {"concern_idx": 1577}, {"x-token": token(149)}), LambdaContext()
    )
    assert response["statusCode"] == 200
    assert [w["idx"] for w in json.loads(response["body"])["data"]["willsoners"]] == [15, 12, 18]


def test_the_first_real_request_after_priming_is_the_cold_start(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Priming spends none of Powertools' cold-start flags (Logger, Tracer, Metrics): it never runs a handler."""
    from aws_lambda_powertools.logging import logger as logging_logger
    from aws_lambda_powertools.metrics.provider import cold_start as metrics_cold_start

    from conftest import LambdaContext, api_event, token
    from payments.observability import logger

    tracing_tracer = sys.modules["aws_lambda_powertools.tracing.tracer"]
    monkeypatch.setattr(logging_logger, "is_cold_start", True)
    monkeypatch.setattr(tracing_tracer, "is_cold_start", True)
    monkeypatch.setattr(metrics_cold_start, "is_cold_start", True)
    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    module = fresh_load("payment_progress")
    assert (logging_logger.is_cold_start, tracing_tracer.is_cold_start, metrics_cold_start.is_cold_start) == (
        True,
        True,
        True,
    )
    seen = []
    for _ in range(2):
        event = api_event(PROGRESS, {"concern_idx": 1577}, {"x-token": token(149)})
        assert module.lambda_handler(event, LambdaContext())["statusCode"] == 200
        seen.append(logger.get_current_keys()["cold_start"])
    # the first real request is logged as the cold start, and the next one is not
    assert seen == [True, False]
    assert logging_logger.is_cold_start is False and tracing_tracer.is_cold_start is False
