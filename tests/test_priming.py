"""Priming (payments.priming): SnapStart hooks registered when the runtime offers them, the success path
of both handlers taken with nothing sent and no write, caches left clean, synthetic items that match the data model."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from conftest import SECRET

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = {
    "payment_progress": ROOT / "functions" / "payment_progress" / "app.py",
    "swap": ROOT / "functions" / "swap" / "app.py",
}


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
def snapstart(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """A stand-in for the Lambda runtime's snapshot_restore_py, recording what is registered."""
    hooks: dict[str, list[Any]] = {"before": [], "after": []}
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = lambda func, *a, **k: hooks["before"].append((func, a, k))
    fake.register_after_restore = lambda func, *a, **k: hooks["after"].append((func, a, k))
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


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_hooks_are_registered_and_priming_sends_nothing(
    name: str, snapstart: dict[str, list[Any]], no_network: list[str]
) -> None:
    fresh_load(name)
    assert len(snapstart["before"]) == 1 and len(snapstart["after"]) == 1
    func, args, kwargs = snapstart["before"][0]
    made = func(*args, **kwargs)
    # The handler's code path reached its repository (DynamoDB calls built, signed and parsed) ...
    assert "BatchGetItem" in made
    # ... and not one request left the process: no table can have been written.
    assert no_network == []


SUCCESS_CALLS = {"payment_progress": ["BatchGetItem", "Query"], "swap": ["BatchGetItem", "TransactWriteItems"]}


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_priming_takes_the_success_path_and_sends_nothing(
    name: str, snapstart: dict[str, list[Any]], no_network: list[str]
) -> None:
    import payments.priming

    fresh_load(name)
    func, (handler, *rest), kwargs = snapstart["before"][0]
    answers: list[dict[str, Any]] = []

    def recording(event: dict[str, Any], context: Any) -> Any:
        answers.append(handler(event, context))
        return answers[-1]

    made = func(recording, *rest, **kwargs)
    rounds = payments.priming.PRIMING_ROUNDS
    # Every round ran the handler's whole success path: its reads and (for the swap) its commit, answered 200 ...
    assert made == SUCCESS_CALLS[name] * rounds
    assert [answer["statusCode"] for answer in answers] == [200] * rounds
    bodies = [json.loads(answer["body"]) for answer in answers]
    if name == "payment_progress":
        assert {tuple(w["idx"] for w in body["data"]["willsoners"]) for body in bodies} == {(2, 3, 4)}
        assert {body["data"]["point"]["honeypot"] for body in bodies} == {"1000000개"}
    else:
        assert {(body["return"], body["value"]["point"]["point_quantity"]) for body in bodies} == {(0, 1_000_000 - 110)}
    # ... and nothing left the process.
    assert no_network == []


def test_priming_reads_the_honeypot_of_the_settings(
    snapstart: dict[str, list[Any]], no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed with other honeypot ids, priming still decodes a honeypot balance on its success path."""
    monkeypatch.setenv("HONEYPOT_APP_ID", "7")
    monkeypatch.setenv("HONEYPOT_POINT_ID", "3")
    fresh_load("payment_progress")
    func, (handler, *rest), kwargs = snapstart["before"][0]
    answers: list[dict[str, Any]] = []

    def recording(event: dict[str, Any], context: Any) -> Any:
        answers.append(handler(event, context))
        return answers[-1]

    func(recording, *rest, **kwargs)
    assert {json.loads(answer["body"])["data"]["point"]["honeypot"] for answer in answers} == {"1000000개"}
    assert no_network == []


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_priming_verifies_throwaway_tokens_and_leaves_no_cache_behind(
    name: str, snapstart: dict[str, list[Any]], no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed settings (JWT_SECRET_ARN): the real secret is never fetched, no primed token stays cached."""
    import jwt

    import payments.priming
    from payments import auth, http
    from payments.aws import secrets_provider

    monkeypatch.setenv("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf")
    decoded_with: list[str] = []
    decode = jwt.decode

    def spy(token: str, key: str, *args: Any, **kwargs: Any) -> Any:
        decoded_with.append(key)
        return decode(token, key, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", spy)
    fresh_load(name)
    func, args, kwargs = snapstart["before"][0]
    func(*args, **kwargs)
    # One new token verified per round, through jwt.decode, all with one secret made for this priming ...
    assert len(decoded_with) == payments.priming.PRIMING_ROUNDS and len(set(decoded_with)) == 1
    assert decoded_with[0] not in {SECRET, ""}
    # ... and none of it is left where a real request would look: token cache, secret override, secret cache.
    assert auth._verified_claims.cache_info().currsize == 0
    assert http.PRIMING_JWT_SECRET.get() is None
    assert secrets_provider().store == {}
    assert no_network == []  # not even Secrets Manager


def test_priming_refuses_to_prime_a_refusal(no_network: list[str]) -> None:
    """A priming request that is not answered 200 would prime the wrong path: priming says so."""
    module = fresh_load("payment_progress")
    from payments.priming import prime

    with pytest.raises(RuntimeError, match="answered 404"):
        prime(module.lambda_handler, "/api/v1/asker/payment/progress", {"concern_idx": 2}, {"x-token": "{token}"})
    assert no_network == []


def _shape(value: dict[str, Any]) -> Any:
    """The DynamoDB type of an attribute value, with the names and types inside maps and lists.

    Maps keyed by numbers (ticket ids, willsoner ids, OTP steps) are data, not names: only their
    values' shapes count.
    """
    ((kind, inner),) = value.items()
    if kind == "M":
        if inner and all(name.isdigit() for name in inner):
            return ("M#", frozenset(_shape(item) for item in inner.values()))
        return ("M", tuple(sorted((name, _shape(item)) for name, item in inner.items())))
    if kind == "L":
        return ("L", frozenset(_shape(item) for item in inner))
    return kind


def _item_shape(item: dict[str, Any]) -> Any:
    return tuple(sorted((name, _shape(value)) for name, value in item.items()))


def _kind(table: str, item: dict[str, Any]) -> str:
    return f"{table}:{item['entity']['S'] if 'entity' in item else item['sk']['S']}"


def test_synthetic_items_are_shaped_like_the_items_the_loader_writes(demo: Any) -> None:
    """Each synthetic item has the attribute names and DynamoDB types of an item of its kind that
    payments_cli.fixture_loader writes (the demo fixture, plus a dashboard account with a wallet)."""
    from conftest import LEDGER_TABLE, OTP_SECRET_TABLE, WILLSON_TABLE, load
    from payments.priming import synthetic_items
    from payments.repositories import codec

    load(
        demo,
        {
            "accounts": [
                {
                    "au_id": 900,
                    "otp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "points": [{"app_id": 1, "point_id": 1, "mu_id": 9000, "quantity": 5}],
                    "wallets": [{"coin_id": 2, "walletaddress": "0x" + "1" * 40, "quantity": "1.5"}],
                }
            ]
        },
    )
    written: dict[str, set[Any]] = {}
    for table in (WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE):
        for page in demo.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                written.setdefault(_kind(table, item), set()).add(_item_shape(item))
    synthetic = synthetic_items()
    assert set(synthetic) == {WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE}
    kinds = set()
    for table, items in synthetic.items():
        for item in items:
            raw = codec.to_item(item)
            kinds.add(_kind(table, raw))
            assert _item_shape(raw) in written.get(_kind(table, raw), set()), (_kind(table, raw), raw)
    # Every kind of item either handler reads on its success path is in the synthetic set.
    assert kinds == {f"{WILLSON_TABLE}:{kind}" for kind in ("concern", "tickets", "sessions", "listing")} | {
        f"{LEDGER_TABLE}:{kind}" for kind in ("account", "point", "wallet", "app", "coin", "rate")
    } | {f"{OTP_SECRET_TABLE}:OTP_SECRET"}


def test_after_restore_reseeds_random(snapstart: dict[str, list[Any]]) -> None:
    fresh_load("payment_progress")
    random.seed(1234)
    seeded = random.getstate()
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    assert random.getstate() != seeded


def test_after_restore_forgets_the_cached_signing_secret(snapstart: dict[str, list[Any]], monkeypatch) -> None:
    from payments.aws import secrets_provider

    fresh_load("swap")
    provider = secrets_provider()
    cleared: list[bool] = []
    monkeypatch.setattr(provider, "clear_cache", lambda: cleared.append(True))
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    # a restored environment fetches the secret again (it may have been rotated since the snapshot)
    assert cleared == [True]


def test_without_the_runtime_priming_runs_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import payments.priming

    primed: list[str] = []
    monkeypatch.setattr(payments.priming, "prime", lambda handler, path, *_: primed.append(path))
    monkeypatch.delenv("PAYMENTS_PRIME_AT_INIT", raising=False)
    fresh_load("payment_progress")
    assert primed == []
    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    fresh_load("payment_progress")
    assert primed == ["/api/v1/asker/payment/progress"]


def test_after_priming_real_requests_reach_dynamodb(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The priming hook stays registered but answers nothing once priming is over."""
    from conftest import LambdaContext, api_event, token

    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    module = fresh_load("payment_progress")
    response = module.lambda_handler(
        api_event("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": token(149)}), LambdaContext()
    )
    assert response["statusCode"] == 200
    assert [w["idx"] for w in json.loads(response["body"])["data"]["willsoners"]] == [15, 12, 18]


def test_the_first_real_request_after_priming_is_the_cold_start(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Priming's own requests do not spend Powertools' cold-start flags (Logger, Tracer, Metrics)."""
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
    # Ten primed requests ran, and every flag is still up for the first real one ...
    assert (logging_logger.is_cold_start, tracing_tracer.is_cold_start, metrics_cold_start.is_cold_start) == (
        True,
        True,
        True,
    )
    seen = []
    for _ in range(2):
        event = api_event("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": token(149)})
        assert module.lambda_handler(event, LambdaContext())["statusCode"] == 200
        seen.append(logger.get_current_keys()["cold_start"])
    # ... which is logged as the cold start, and the next one is not.
    assert seen == [True, False]
    assert logging_logger.is_cold_start is False and tracing_tracer.is_cold_start is False
