"""DynamoDB cost per request: round trips, items and capacity units (run by bench/run.py).

    costs.py TARGETS.json [--sizes 10,1000,10000]     (AWS_ENDPOINT_URL_DYNAMODB = DynamoDB Local)

The real handlers run in-process against Amazon DynamoDB Local. Hooks on their own client add
ReturnConsumedCapacity=TOTAL to every call and count each round trip (`before-call`), botocore's
HTTP attempts (`before-send`), the items moved and the capacity units DynamoDB reports. Payment
progress runs with 10, 1,000 and 10,000 willsoners (the table grown in place with the fixture
loader); the swap on a success, its identical retry, a refusal at the balances step and a wrong
OTP code. Prints Markdown tables; writes the target rows to TARGETS.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env({"AWS_ENDPOINT_URL_DYNAMODB": os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", "")})
import pyotp  # noqa: E402

from functions.payment_progress import app as progress_app  # noqa: E402
from functions.swap import app as swap_app  # noqa: E402
from payments.aws import dynamodb_client  # noqa: E402
from payments_cli.tables import create_tables  # noqa: E402

ACCOUNTS = 900_000
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class RequestLog:
    """Every DynamoDB call of one client while open: operation, items, capacity units, error."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self.calls: list[dict[str, Any]] = []
        self.attempts = 0

    def _params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
        transacted = {next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])}
        context["costs_tables"] = sorted(
            {params["TableName"]} if "TableName" in params else set(params.get("RequestItems", {})) | transacted
        )

    def _send(self, **_: Any) -> None:
        self.attempts += 1

    def _after(self, model: Any, parsed: dict[str, Any], http_response: Any, context: dict[str, Any], **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity") or []
        consumed = [consumed] if isinstance(consumed, dict) else consumed
        responses, tables = parsed.get("Responses"), context.get("costs_tables", [])
        if isinstance(responses, dict):  # BatchGetItem: items by table
            read = {table: len(items) for table, items in responses.items()}
        else:
            found = len([r for r in responses or [] if r.get("Item")] or parsed.get("Items", []))
            found += bool(parsed.get("Item"))
            read = {tables[0]: found} if tables else {}
        self.calls.append(
            {
                "operation": model.name,
                "tables": tables,
                "read": read,
                "error": parsed.get("Error", {}).get("Code") if http_response.status_code >= 300 else None,
                "units": {c.get("TableName"): float(c.get("CapacityUnits") or 0) for c in consumed},
            }
        )

    def __enter__(self) -> RequestLog:
        self._events.register("before-parameter-build.dynamodb", self._params, unique_id="costs-p")
        self._events.register("before-send.dynamodb", self._send, unique_id="costs-s")
        self._events.register("after-call.dynamodb", self._after, unique_id="costs-a")
        return self

    def __exit__(self, *_: object) -> None:
        for event, uid in (("before-parameter-build", "p"), ("before-send", "s"), ("after-call", "a")):
            self._events.unregister(f"{event}.dynamodb", unique_id=f"costs-{uid}")

    def describe(self, table: str | None = None) -> str:
        calls = [c for c in self.calls if table is None or table in c["tables"]]

        def total(key: str, writes: bool | None = None) -> float:
            return sum(
                value
                for c in calls
                if writes is None or (c["operation"] in _WRITES) == writes
                for name, value in c[key].items()
                if table is None or name == table
            )

        operations = ", ".join(f"{n} {op}" for op, n in sorted(Counter(c["operation"] for c in calls).items()))
        errors = [c["error"] for c in calls if c["error"]]
        return (
            f"{len(calls)} ({operations or 'none'}); {total('read'):g} items read; "
            f"{total('units', False):g} RCU / {total('units', True):g} WCU"
            + (f"; refused: {', '.join(errors)}" if errors else "")
        )


def call(client: Any, handler: Any, event: dict[str, Any], status: int) -> tuple[Any, RequestLog]:
    with RequestLog(client) as log, contextlib.redirect_stdout(open(os.devnull, "w")):
        response = handler(event, common.LambdaContext())
    if response["statusCode"] != status:
        raise RuntimeError(f"answered {response['statusCode']} instead of {status}: {response['body']}")
    return json.loads(response["body"]), log


def progress(client: Any, sizes: list[int], targets: list[list[Any]]) -> None:
    rows, loaded, loads = [], 4, []  # the demo fixture has 4 willsoners
    for size in sizes:
        started = time.perf_counter()
        common.load(client, common.willsoner_fixture(loaded - 4, size - loaded))
        loads.append(f"{size:,}: {time.perf_counter() - started:.1f} s")
        loaded = size
        for match_type, label in ((None, "absent (all)"), (2, "2 (different)"), (1, "1 (same)")):
            body = {"concern_idx": 1577, **({"match_type": match_type} if match_type else {})}
            answer, log = call(client, progress_app.lambda_handler, common.progress_event(149, body), 200)
            scans = sum(c["operation"] == "Scan" for c in log.calls)
            rows.append(
                [
                    f"{size:,}",
                    label,
                    len(answer["data"]["willsoners"]),
                    len(log.calls),
                    log.attempts,
                    log.describe(),
                    "yes" if scans else "no",
                ]
            )
            if size == sizes[-1]:
                targets.append(
                    [
                        f"payment progress DynamoDB requests, {size:,} willsoners, match_type {label}",
                        len(log.calls),
                        "≤ 3, no Scan",
                        "met" if len(log.calls) <= 3 and not scans else "MISSED",
                    ]
                )
    print(
        common.table(["willsoners", "match_type", "listed", "round trips", "HTTP attempts", "requests", "Scan"], rows)
    )
    print(f"\nLoading with payments_cli.fixture_loader (table grown in place): {', '.join(loads)}.\n")


def swap(client: Any, targets: list[list[Any]]) -> None:
    secrets = {au_id: pyotp.random_base32() for au_id in range(ACCOUNTS, ACCOUNTS + 3)}
    common.load(
        client,
        {
            "accounts": [
                common.account_fixture(au_id, secret, 50 if au_id == ACCOUNTS + 1 else 10**6)
                for au_id, secret in secrets.items()
            ]
        },
    )
    now = time.time()
    valid = {pyotp.TOTP(secrets[ACCOUNTS + 2]).at(now + offset) for offset in (-30, 0, 30)}
    wrong = next(code for code in (f"{n:06d}" for n in range(10**6)) if code not in valid)
    success = common.swap_event(ACCOUNTS, secrets[ACCOUNTS])
    wrong_event = common.swap_event(ACCOUNTS + 2, secrets[ACCOUNTS + 2])
    wrong_event["body"] = wrong_event["body"].replace(json.loads(wrong_event["body"])["otp_code"], wrong)
    cases = [
        ("success", success, 200),
        ("identical retry of that success", success, 200),
        ("refused at the balances step", common.swap_event(ACCOUNTS + 1, secrets[ACCOUNTS + 1]), 409),
        ("refused, wrong OTP code", wrong_event, 401),
    ]
    rows = []
    for name, event, status in cases:
        answer, log = call(client, swap_app.lambda_handler, event, status)
        tables = sorted({table for c in log.calls for table in c["tables"]})
        rows.append(
            [
                name,
                answer.get("return"),
                len(log.calls),
                log.attempts,
                log.describe(),
                "<br>".join(f"{table}: {log.describe(table)}" for table in tables) or "none",
            ]
        )
        if name == "success":
            transactions = sum(c["operation"] == "TransactWriteItems" for c in log.calls)
            targets.append(
                [
                    "uncontended successful swap: TransactWriteItems / all DynamoDB requests",
                    f"{transactions} / {len(log.calls)}",
                    "1 / ≤ 4",
                    "met" if transactions == 1 and len(log.calls) <= 4 else "MISSED",
                ]
            )
    print(common.table(["swap", "return", "round trips", "HTTP attempts", "requests", "by table"], rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("targets")
    parser.add_argument("--sizes", default="10,1000,10000")
    args = parser.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        raise SystemExit("costs.py needs AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local)")
    client = dynamodb_client()
    create_tables(client)
    common.load(client, json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8")))
    targets: list[list[Any]] = []
    swap(client, targets)  # first: the fixture loader scans the tables it grows, the swap's accounts are small
    print(
        "\nPayment progress (caller 149, concern 1577 of the demo data; the generated willsoners share its "
        "subcategory, 90 % complete):\n"
    )
    progress(client, [int(size) for size in args.sizes.split(",")], targets)
    Path(args.targets).write_text(json.dumps(targets, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
