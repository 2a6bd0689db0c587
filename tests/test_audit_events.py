"""The ready stream events in events/audit/ (for `sam local invoke AuditFunction -e …`) run through the audit handler.

Each file's name says what it must give: `_no_break` (no break, no failure), `_break` (one break logged and
counted, no failure), `_failure` (the unreadable record alone reported as the batch's failure, the rest checked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import EVENTS
from helpers import LambdaContext

AUDIT_EVENTS = sorted((EVENTS / "audit").glob("*.json"))


def test_there_is_an_event_of_each_outcome() -> None:
    assert {path.stem.rpartition("_")[2] for path in AUDIT_EVENTS} >= {"break", "failure"}
    assert any(path.stem.endswith("_no_break") for path in AUDIT_EVENTS)


@pytest.mark.parametrize("path", AUDIT_EVENTS, ids=[path.stem for path in AUDIT_EVENTS])
def test_audit_event_gets_its_promised_outcome(demo: Any, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.audit import app

    published: list[tuple[str, float]] = []
    monkeypatch.setattr(app.metrics, "add_metric", lambda name, unit, value: published.append((name, value)))
    event = json.loads(path.read_text(encoding="utf-8"))
    response = app.lambda_handler(event, LambdaContext())
    failures = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    if path.stem.endswith("_failure"):
        poison = event["Records"][0]["dynamodb"]["SequenceNumber"]
        assert failures == [poison]
        assert published == [("LedgerAuditBreak", 0)]
    elif path.stem.endswith("_no_break"):
        assert failures == []
        assert published == [("LedgerAuditBreak", 0)]
    else:
        assert failures == []
        assert published == [("LedgerAuditBreak", 1)]
