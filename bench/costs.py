"""DynamoDB-cost child (run by bench/run.py): round trips, items and capacity units per request.

Runs the real handlers in-process against Amazon DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB), with
a common.RequestLog on the handlers' own client. Payment progress is measured with 10, 1,000 and
10,000 willsoners in the Willson table (loaded with payments_cli.fixture_loader, the table grown
in place between sizes); the swap on a success, an idempotent replay and two refusals.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import pyotp  # noqa: E402

from functions.payment_progress import app as progress_app  # noqa: E402
from functions.swap import app as swap_app  # noqa: E402
from payments.auth import issue_access_token  # noqa: E402
from payments.aws import dynamodb_client  # noqa: E402
from payments.config import get_settings  # noqa: E402
from payments_cli.fixture_loader import load_fixture, parse_fixture_text  # noqa: E402
from payments_cli.tables import create_tables  # noqa: E402

DEMO_WILLSONERS = 4  # the demo fixture's willsoners (12, 15, 18 complete in subcategory 1; 21 waiting)
SIZES = (10, 1_000, 10_000)
ACCOUNTS_FROM = 900_000  # au_ids of this child's dashboard accounts


def _load(client: Any, fixture: dict[str, Any]) -> float:
    settings = get_settings()
    started = time.perf_counter()
    load_fixture(client, parse_fixture_text(json.dumps(fixture, ensure_ascii=False)),
                 settings.willson_table, settings.ledger_table)
    return time.perf_counter() - started


def _call(client: Any, handler: Any, event: dict[str, Any]) -> tuple[int, Any, common.RequestLog, float]:
    with common.RequestLog(client) as log:
        started = time.perf_counter()
        response = handler(event, common.LambdaContext())
        elapsed = time.perf_counter() - started
    if log.before_calls != len(log.calls):
        raise RuntimeError("before-call and after-call counts disagree")
    return response["statusCode"], json.loads(response["body"]), log, elapsed


def progress_costs(client: Any, sizes: tuple[int, ...]) -> dict[str, Any]:
    settings = get_settings()
    token = issue_access_token(149, common.JWT_SECRET, 3600)
    loaded = DEMO_WILLSONERS
    rows: list[dict[str, Any]] = []
    loads: dict[int, float] = {}
    for size in sizes:
        loads[size] = _load(client, common.willsoner_fixture(loaded - DEMO_WILLSONERS, size - loaded))
        loaded = size
        for match_type in (None, 2, 1):
            body: dict[str, Any] = {"concern_idx": 1577}
            if match_type is not None:
                body["match_type"] = match_type
            event = common.api_event(common.PAYMENT_PROGRESS_PATH, body, {"x-token": token})
            latencies = []
            for _ in range(3):
                status, answer, log, elapsed = _call(client, progress_app.lambda_handler, event)
                latencies.append(elapsed)
                if status != 200:
                    raise RuntimeError(f"payment progress answered {status}: {answer}")
            summary = log.summary()
            rows.append({
                "willsoners": size,
                "match_type": match_type,
                "listed": len(answer["data"]["willsoners"]),
                "latency_s": common.median(latencies),
                "http_attempts": log.http_attempts,
                **summary,
                "willson_table": log.summary([settings.willson_table]),
                "ledger_table": log.summary([settings.ledger_table]),
            })
    return {"rows": rows, "load_s": loads}


def _wrong_code(secret: str, now: float) -> str:
    valid = {pyotp.TOTP(secret).at(now + offset) for offset in (-30, 0, 30)}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)


def swap_costs(client: Any) -> list[dict[str, Any]]:
    settings = get_settings()
    fixture, secrets = common.accounts_fixture(ACCOUNTS_FROM, 3)
    fixture["accounts"][1]["points"][0]["quantity"] = 50  # too few points for -110: refused at balances
    _load(client, fixture)
    success, poor, wrong = (ACCOUNTS_FROM, ACCOUNTS_FROM + 1, ACCOUNTS_FROM + 2)

    def event(au_id: int, code: str) -> dict[str, Any]:
        token = issue_access_token(au_id, common.JWT_SECRET, 3600)
        headers = {"Authorization": f"Bearer {token}"}
        return common.api_event(common.SWAP_PATH, common.swap_body(code, -110, 11), headers)

    now = time.time()
    cases = [
        ("success", event(success, pyotp.TOTP(secrets[success]).at(now)), 200),
        ("idempotent replay of that success", None, 200),
        ("refused at balances (32103)", event(poor, pyotp.TOTP(secrets[poor]).at(now)), 409),
        ("refused, wrong OTP code (32107)", event(wrong, _wrong_code(secrets[wrong], now)), 401),
    ]
    rows = []
    previous = None
    for name, swap_event, status_wanted in cases:
        swap_event = swap_event or previous
        previous = swap_event
        status, answer, log, elapsed = _call(client, swap_app.lambda_handler, swap_event)
        if status != status_wanted:
            raise RuntimeError(f"swap {name}: {status} {answer}")
        rows.append({
            "case": name,
            "status": status,
            "answer": answer.get("return"),
            "latency_s": elapsed,
            "http_attempts": log.http_attempts,
            "all": log.summary(),
            "swap": log.summary([settings.ledger_table]),
            "idempotency": log.summary([settings.idempotency_table]),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(str(size) for size in SIZES))
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        raise SystemExit("costs.py needs AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local)")
    client = dynamodb_client()
    create_tables(client)
    _load(client, json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8")))
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        swap_rows = swap_costs(client)
        progress = progress_costs(client, sizes)
    common.emit_result({"progress": progress, "swap": swap_rows})


if __name__ == "__main__":
    main()
