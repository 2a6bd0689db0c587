"""Shared test set-up: environment, moto tables built from template.yaml, API Gateway events."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from payments.config import DEVELOPMENT_JWT_SECRET

# Before any handler module is imported: they read their settings once, at import.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "JWT_SECRET": DEVELOPMENT_JWT_SECRET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # `payments serve` records its endpoint per user: the tests' serve processes never touch the real record
        "XDG_STATE_HOME": tempfile.mkdtemp(prefix="payments-test-state-"),
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from payments.auth import issue_access_token  # noqa: E402
from payments_cli.events import api_event  # noqa: E402,F401 - shared by the test modules
from payments_cli.fixture_loader import load_fixture, parse_fixture_text  # noqa: E402
from payments_cli.tables import create_tables  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SHARED = ROOT.parent / "shared"
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
SECRET = DEVELOPMENT_JWT_SECRET
WILLSON_TABLE = "WillsonTable"
LEDGER_TABLE = "LedgerTable"
OTP_SECRET_TABLE = "OtpSecretTable"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A fresh moto DynamoDB with the template's tables."""
    with mock_aws():
        from payments.aws import dynamodb_client

        client = dynamodb_client()
        create_tables(client)
        yield client


def load(client: Any, fixture: dict[str, Any] | str | Path) -> dict[str, int]:
    if isinstance(fixture, Path):
        text = fixture.read_text(encoding="utf-8")
    elif isinstance(fixture, dict):
        text = json.dumps(fixture, ensure_ascii=False)
    else:
        text = fixture
    return load_fixture(client, parse_fixture_text(text), WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE)


@pytest.fixture
def demo(dynamodb: Any) -> Any:
    """moto tables holding the demo fixture."""
    load(dynamodb, DEMO_FIXTURE)
    return dynamodb


def demo_fixture() -> dict[str, Any]:
    return json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))


def token(au_id: int, ttl: int = 3600, **kwargs: Any) -> str:
    return issue_access_token(au_id, SECRET, ttl, **kwargs)


class LambdaContext:
    function_name = "test-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def call(handler: Any, event: dict[str, Any]) -> tuple[int, Any]:
    response = handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])
