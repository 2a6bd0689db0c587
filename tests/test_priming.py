"""Priming (payments.priming): SnapStart hooks registered when the runtime offers them, and no write."""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from pathlib import Path
from typing import Any

import pytest

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


def test_after_restore_reseeds_random(snapstart: dict[str, list[Any]]) -> None:
    fresh_load("payment_progress")
    random.seed(1234)
    seeded = random.getstate()
    func, args, kwargs = snapstart["after"][0]
    func(*args, **kwargs)
    assert random.getstate() != seeded


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
    import json

    from conftest import LambdaContext, api_event, token

    monkeypatch.setenv("PAYMENTS_PRIME_AT_INIT", "true")
    module = fresh_load("payment_progress")
    response = module.lambda_handler(
        api_event("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": token(149)}), LambdaContext()
    )
    assert response["statusCode"] == 200
    assert [w["idx"] for w in json.loads(response["body"])["data"]["willsoners"]] == [15, 12, 18]
