"""Shared pieces of the benchmarks: environment, events, DynamoDB answered from memory, fixtures, output.

Only the standard library is imported at module level: the cold-start workers import this module
before they time a handler import, so nothing here may pre-load a package the handler needs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
JWT_SECRET = "local-development-secret-change-me"  # noqa: S105 - payments.config.DEVELOPMENT_JWT_SECRET
DEMO_OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - the demo fixture's
PROGRESS_PATH = "/api/v1/asker/payment/progress"
SWAP_PATH = "/v1.0/db/swap"

# The environment tests/conftest.py gives the handlers (dummy AWS, no X-Ray, quiet logs).
TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "JWT_SECRET": JWT_SECRET,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
_SCRUBBED = (
    "AWS_",
    "POWERTOOLS_",
    "JWT_SECRET",
    "WILLSON_",
    "LEDGER_",
    "IDEMPOTENCY_",
    "HONEYPOT_",
    "MAX_LISTED",
    "SWAP_MAX",
    "OTP_",
    "LAMBDA_TASK_ROOT",
    "_X_AMZN",
    "PAYMENTS_PRIME",
)


def use_test_env(extra: dict[str, str] | None = None) -> None:
    """This process's environment minus anything that configures AWS or the service, plus TEST_ENV."""
    for name in [name for name in os.environ if name.startswith(_SCRUBBED)]:
        del os.environ[name]
    os.environ.update({**TEST_ENV, **(extra or {})})


def api_event(path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    from payments_cli.events import api_event as build

    return build(path, body, headers)


class LambdaContext:
    function_name = "bench-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-function"
    aws_request_id = "bench-request"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def progress_event(au_id: int, body: dict[str, Any]) -> dict[str, Any]:
    from payments.auth import issue_access_token

    return api_event(PROGRESS_PATH, body, {"x-token": issue_access_token(au_id, JWT_SECRET, 3600)})


def swap_event(
    au_id: int, secret: str, adjust_point: int = -110, adjust_coin: int = 11, when: float | None = None
) -> dict[str, Any]:
    import time

    import pyotp

    from payments.auth import issue_access_token

    body = {
        "event_id": 3,
        "otp_code": pyotp.TOTP(secret).at(time.time() if when is None else when),
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": adjust_point},
        "coin": {"coin_id": 2, "adjust_coin_quantity": adjust_coin},
    }
    return api_event(SWAP_PATH, body, {"Authorization": f"Bearer {issue_access_token(au_id, JWT_SECRET, 3600)}"})


# --- DynamoDB answered from memory ------------------------------------------------------------------


class Recorder:
    """Records every DynamoDB call of a client: operation, parameters and the raw HTTP answer."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self.calls: list[dict[str, Any]] = []

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append({"operation": model.name, "params": json.loads(json.dumps(params, default=str))})

    def _answer(self, http_response: Any, **_: Any) -> None:
        self.calls[-1].update(
            status=http_response.status_code,
            headers=dict(http_response.headers),
            body=http_response.content.decode("utf-8"),
        )

    def __enter__(self) -> Recorder:
        self._events.register("before-parameter-build.dynamodb", self._params, unique_id="bench-record-p")
        self._events.register("after-call.dynamodb", self._answer, unique_id="bench-record-a")
        return self

    def __exit__(self, *_: object) -> None:
        self._events.unregister("before-parameter-build.dynamodb", unique_id="bench-record-p")
        self._events.unregister("after-call.dynamodb", unique_id="bench-record-a")


class MemoryAnswers:
    """Answers a client's DynamoDB calls with recorded HTTP answers, in the recorded order.

    It hooks `before-send` (as botocore's Stubber-like tools do): botocore still validates,
    serialises and signs each call and parses the recorded bytes; only the network is replaced.
    A call other than the one recorded next is an error, so a replay cannot silently diverge.
    """

    def __init__(self, client: Any, calls: list[dict[str, Any]]) -> None:
        from botocore.awsrequest import AWSResponse

        class _Raw:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def stream(self, **_: Any) -> Any:
                yield self.data

        self._events = client.meta.events
        self._answers = [
            (
                call["operation"],
                AWSResponse("http://memory", call["status"], call["headers"], _Raw(call["body"].encode("utf-8"))),
            )
            for call in calls
        ]
        self._next = 0
        self.count = 0
        self.active = False

    def register(self) -> MemoryAnswers:
        """Hook in, answering nothing yet: registering empties botocore's handler lookup cache, so
        it is done before what is measured; `__enter__` then only switches the answers on."""
        self._events.register_first("before-send.dynamodb", self._send, unique_id=f"bench-memory-{id(self)}")
        return self

    def _send(self, request: Any, **_: Any) -> Any:
        if not self.active:
            return None
        operation = request.headers.get("X-Amz-Target", b"")
        operation = (operation.decode() if isinstance(operation, bytes) else operation).rpartition(".")[2]
        expected, response = self._answers[self._next]
        if operation != expected:
            raise RuntimeError(f"replay expected DynamoDB {expected}, the code called {operation}")
        self._next = (self._next + 1) % len(self._answers)
        self.count += 1
        response._content = None  # re-read from the raw bytes on every replay
        return response

    def __enter__(self) -> MemoryAnswers:
        self.register().active = True
        return self

    def __exit__(self, *_: object) -> None:
        self.active = False


# --- generated fixtures -----------------------------------------------------------------------------


def willsoner_fixture(first: int, count: int, subcategory_idx: int = 1, seed: int = 7) -> dict[str, Any]:
    """`count` willsoners (each with its own user) in one subcategory: 90 % complete, 10 % unrated."""
    import random

    rnd = random.Random(seed + first)
    users, willsoners = [], []
    for n in range(first, first + count):
        au_id = 1_000_000 + n
        users.append(
            {
                "au_id": au_id,
                "nickname": f"윌스너{n}",
                "gender": rnd.choice(["여", "남"]),
                "age": "20대 중반",
                "pic": "https://willson-v1.s3.ap-northeast-2.amazonaws.com/user_image/img_profile_w.png",
            }
        )
        willsoners.append(
            {
                "idx": 100_000 + n,
                "au_id": au_id,
                "status": "complete" if rnd.random() < 0.9 else "waiting",
                "avg_rating": None if rnd.random() < 0.1 else round(rnd.uniform(1, 5), 1),
                "experience": "오래 만난 사람과 헤어지고 1년을 힘들게 보냈어요. 지금은 괜찮아요.",
                "introduction": "들어주는 건 자신 있어요",
                "subcategory_idx": [subcategory_idx],
                "keywords": ["이별", "극복", "공감"],
                "image": "https://willson-v1.s3.ap-northeast-2.amazonaws.com/willsoner_image/willson_01.jpg",
            }
        )
    return {"users": users, "willsoners": willsoners}


def account_fixture(au_id: int, secret: str, points: int, coins: str = "0") -> dict[str, Any]:
    return {
        "au_id": au_id,
        "otp_secret": secret,
        "points": [{"app_id": 1, "point_id": 1, "mu_id": 10_000 + au_id, "quantity": points}],
        "wallets": [{"coin_id": 2, "walletaddress": f"0x{au_id:040x}", "quantity": coins}],
    }


def load(client: Any, fixture: dict[str, Any]) -> None:
    from payments.config import get_settings
    from payments_cli.fixture_loader import load_fixture, parse_fixture_text

    settings = get_settings()
    load_fixture(
        client,
        parse_fixture_text(json.dumps(fixture, ensure_ascii=False)),
        settings.willson_table,
        settings.ledger_table,
        settings.otp_secret_table,
    )


def json_lines(path: Path) -> list[Any]:
    """The values of a file of one JSON value per line (what the pyperf workers append beside pyperf's own files)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- output -----------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable on a terminal too)."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(headers[i])] + [len(row[i]) for row in cells]) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.ljust(widths[i]) for i, value in enumerate(values)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def python() -> str:
    return sys.executable
