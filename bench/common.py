"""What the benchmarks share: the tests' environment, events, fixtures, DynamoDB answered from memory, tables.

Only the standard library at module level: the cold-start workers import this before they time an import.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
DEMO_OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - the demo fixture's
JWT_SECRET = "local-development-secret-change-me"  # noqa: S105 - payments.config.DEVELOPMENT_JWT_SECRET
PROGRESS_PATH, SWAP_PATH = "/api/v1/asker/payment/progress", "/v1.0/db/swap"
PICTURE = "https://willson-v1.s3.ap-northeast-2.amazonaws.com/user_image/img_profile_w.png"
# What tests/conftest.py gives the handlers: dummy AWS credentials, no X-Ray, quiet logs.
TEST_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "JWT_SECRET": JWT_SECRET}
TEST_ENV |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_LOG_LEVEL": "WARNING"}
TEST_ENV |= {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest"}
SERVICE_ENV = ("AWS_", "POWERTOOLS_", "JWT_", "WILLSON_", "LEDGER_", "IDEMPOTENCY_", "HONEYPOT_", "MAX_LISTED", "OTP_")
SERVICE_ENV += ("SWAP_MAX", "LAMBDA_TASK_ROOT", "_X_AMZN", "PAYMENTS_PRIME")
EMPTY = {"BatchGetItem": b'{"Responses": {}, "UnprocessedKeys": {}}', "Query": b'{"Items": [], "Count": 0}'}


def use_test_env(**extra: str) -> None:
    """This process's environment minus whatever configures AWS or the service, plus TEST_ENV."""
    for name in [name for name in os.environ if name.startswith(SERVICE_ENV)]:
        del os.environ[name]
    os.environ.update(TEST_ENV, **extra)


class LambdaContext:
    function_name, function_version, memory_limit_in_mb, aws_request_id = "bench", "$LATEST", 512, "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def token(au_id: int) -> str:
    from payments.auth import issue_access_token

    return issue_access_token(au_id, JWT_SECRET, 7200)


def swap_body(secret: str, points: int = 110, at: float | None = None, event_id: int = 3) -> dict[str, Any]:
    """Points → coins (event 3) or coins → points (event 4) at the demo rate, 0.1."""
    from pyotp import TOTP

    sign, code = 1 if event_id == 4 else -1, TOTP(secret).at(time.time() if at is None else at)
    point, coin = {"app_id": 1, "point_id": 1, "adjust_point_quantity": sign * points}, {"coin_id": 2}
    return {
        "event_id": event_id,
        "otp_code": code,
        "point": point,
        "coin": coin | {"adjust_coin_quantity": -sign * points / 10},
    }


def event(scenario: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway event: a swap when the scenario has an OTP secret, else payment progress."""
    from payments_cli.events import api_event

    if "otp_secret" not in scenario:
        return api_event(PROGRESS_PATH, scenario["request"], {"x-token": token(scenario["au_id"])})
    headers = {"Authorization": f"Bearer {token(scenario['au_id'])}"}
    return api_event(SWAP_PATH, swap_body(scenario["otp_secret"]), headers)


def account(au_id: int, secret: str, points: int, coins: str = "0") -> dict[str, Any]:
    wallet = {"coin_id": 2, "walletaddress": f"0x{au_id:040x}", "quantity": coins}
    point = {"app_id": 1, "point_id": 1, "mu_id": 10_000 + au_id, "quantity": points}
    return {"au_id": au_id, "otp_secret": secret, "points": [point], "wallets": [wallet]}


def willsoners(first: int, count: int) -> dict[str, Any]:
    """`count` willsoners of subcategory 1 (concern 1577's), each with its user: 90 % complete, 10 % unrated."""
    rnd, numbers = random.Random(7 + first), range(first, first + count)
    card = {"experience": "오래 만난 사람과 헤어졌어요.", "introduction": "들어주는 건 자신 있어요", "image": PICTURE}
    card |= {"subcategory_idx": [1], "keywords": ["이별", "극복", "공감"]}
    found = [card | {"idx": 100_000 + n, "au_id": 1_000_000 + n} for n in numbers]
    for willsoner in found:
        willsoner["status"] = "complete" if rnd.random() < 0.9 else "waiting"
        willsoner["avg_rating"] = None if rnd.random() < 0.1 else round(rnd.uniform(1, 5), 1)
    user = {"gender": "여", "age": "20대 중반", "pic": PICTURE}
    return {"users": [user | {"au_id": 1_000_000 + n, "nickname": f"윌스너{n}"} for n in numbers], "willsoners": found}


def load(client: Any, fixture: dict[str, Any]) -> None:
    from payments.config import get_settings
    from payments_cli.fixture_loader import load_fixture, parse_fixture_text

    s, text = get_settings(), json.dumps(fixture, ensure_ascii=False)
    load_fixture(client, parse_fixture_text(text), s.willson_table, s.ledger_table, s.otp_secret_table)


class MemoryAnswers:
    """A `before-send` hook answering a client's DynamoDB calls from memory: botocore still validates, serialises,
    signs and parses each call. Registered before anything is timed (a registration empties botocore's handler
    cache), and last: a hook of the code measured answers first. Replaying, it answers the recorded HTTP answers in
    their order (a call out of order is an error); before (at init), every call finds nothing."""

    def __init__(self, client: Any, calls: list[dict[str, Any]], replaying: bool = True) -> None:
        self.calls, self.next, self.replaying = calls, 0, replaying
        client.meta.events.register_last("before-send.dynamodb", self.send, unique_id=f"bench-{id(self)}")

    def send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        status, headers, body = 200, {}, EMPTY.get(operation, b"{}")
        if self.replaying:
            call, self.next = self.calls[self.next], (self.next + 1) % len(self.calls)
            if operation != call["operation"]:
                raise RuntimeError(f"replay expected DynamoDB {call['operation']}, the code called {operation}")
            status, headers, body = call["status"], call["headers"], call["body"].encode()
        return AWSResponse("http://memory", status, headers, SimpleNamespace(stream=lambda **_: iter([body])))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table, readable on a terminal too."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *lines[1:]]) + "\n"


def target(measure: str, figure: Any, limit: str, met: bool) -> list[Any]:
    return [measure, figure, limit, "met" if met else "MISSED"]
