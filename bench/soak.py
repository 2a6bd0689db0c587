"""`make soak`: Locust against the local stack, then the conservation check from the database itself.

    .venv/bin/python bench/soak.py [--accounts 40] [--users 12] [--run-time 60s] [--max-requests 3000]
                                   [--backend dynamodb-local|embedded] [--ui]

Starts `payments serve` (loopback) with a fixture of the demo data plus N dashboard accounts (each
its own TOTP secret, 10,000 points, 100.5 coins) in front of Amazon DynamoDB Local
(--concurrent-dynamodb: DynamoDB Local's own transaction isolation meets the races) or its embedded
emulator, then runs bench/locustfile.py: headless, bounded in users, requests and time, printing
Locust's table; with --ui, Locust's web UI on http://127.0.0.1:8089 instead (stop the test there, then
Ctrl-C). Afterwards, for every account: initial + Σ logged adjustments = final balance (points and
coins), log ids contiguous from 1 and exactly the successes the clients saw, `reconcile` clean, no 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env({"POWERTOOLS_LOG_LEVEL": "ERROR"})
sys.path.insert(0, str(common.ROOT / "tests"))
import boto3  # noqa: E402
import pyotp  # noqa: E402

from local_stack import LocalStack  # noqa: E402
from payments.auth import issue_access_token  # noqa: E402
from payments.repositories import codec  # noqa: E402
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed  # noqa: E402
from payments_cli.reconcile import reconcile  # noqa: E402

POINTS, COINS, FIRST_AU_ID = 10_000, Decimal("100.5"), 10_001


def conservation(endpoint: str, accounts: list[dict[str, Any]], seen: dict[str, list[Any]]) -> list[str]:
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    items = [
        codec.from_item(item)
        for page in client.get_paginator("scan").paginate(TableName="LedgerTable", ConsistentRead=True)
        for item in page["Items"]
    ]
    stored: dict[int, dict[str, Any]] = defaultdict(lambda: {"logs": []})
    for item in items:
        if str(item["pk"]).startswith("ACCOUNT#"):
            mine = stored[int(item["pk"].split("#", 1)[1])]
            mine["logs"].append(item) if item["sk"].startswith("SWAPLOG#") else mine.__setitem__(item["sk"], item)
    problems = [f"reconcile: {problem}" for problem in reconcile(items).problems]
    for account in accounts:
        au_id, mine = account["au_id"], stored[account["au_id"]]
        logs = sorted(mine["logs"], key=lambda log: int(log["log_id"]))
        ids = [int(log["log_id"]) for log in logs]
        answered = sorted(int(value["log_id"]) for value in seen.get(str(au_id), []))
        points = sum(int(log["value"]["point"]["adjust_point_quantity"]) for log in logs)
        coins = sum((Decimal(log["value"]["coin"]["adjust_coin_quantity"]) for log in logs), Decimal(0))
        checks = [
            (ids == list(range(1, len(ids) + 1)), f"log ids {ids} not contiguous from 1"),
            (ids == answered, f"logged ids {ids} differ from the successes answered {answered}"),
            (POINTS + points == int(mine["POINT#1#1"]["quantity"]), "initial + logged points != final"),
            (COINS + coins == Decimal(mine["WALLET#2"]["quantity"]), "initial + logged coins != final"),
        ]
        problems += [f"au_id {au_id}: {message}" for ok, message in checks if not ok]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--spawn-rate", type=float, default=6)
    parser.add_argument("--run-time", default="60s", help="Locust's time bound (headless)")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests at most, then the run stops")
    parser.add_argument("--backend", choices=("dynamodb-local", "embedded"), default="dynamodb-local")
    parser.add_argument("--ui", action="store_true", help="Locust's web UI on 127.0.0.1:8089 instead of headless")
    args = parser.parse_args()
    if args.backend == "dynamodb-local" and not is_installed():
        print("soak: DynamoDB Local is not installed (make dynamodb-local; needs java)", file=sys.stderr)
        return 2
    secret = common.JWT_SECRET
    accounts = [
        {"au_id": au_id, "secret": pyotp.random_base32(), "token": issue_access_token(au_id, secret, 7200)}
        for au_id in range(FIRST_AU_ID, FIRST_AU_ID + args.accounts)
    ]
    fixture = json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] += [common.account_fixture(a["au_id"], a["secret"], POINTS, str(COINS)) for a in accounts]
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        work = Path(directory)
        (work / "fixture.json").write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
        (work / "accounts.json").write_text(json.dumps(accounts), encoding="utf-8")
        database = DynamoDBLocal().start() if args.backend == "dynamodb-local" else None
        try:
            serve = ["--fixture", str(work / "fixture.json")]
            if database:
                serve += ["--dynamodb-endpoint", database.endpoint, "--concurrent-dynamodb"]
            with LocalStack(*serve) as stack:
                endpoint = (
                    database.endpoint
                    if database
                    else next(line.split()[1] for line in stack.banner if line.startswith("DynamoDB: "))
                )
                locustfile = str(common.ROOT / "bench" / "locustfile.py")
                command = [
                    str(Path(sys.executable).with_name("locust")),
                    "-f",
                    locustfile,
                    "--host",
                    f"http://127.0.0.1:{stack.port}",
                    "-u",
                    str(args.users),
                    "-r",
                    str(args.spawn_rate),
                    "--loglevel",
                    "WARNING",
                ]
                command += (
                    ["--web-host", "127.0.0.1"]
                    if args.ui
                    else ["--headless", "--only-summary", "-t", args.run_time, "--stop-timeout", "10"]
                )
                env = {
                    **os.environ,
                    "SOAK_ACCOUNTS": str(work / "accounts.json"),
                    "SOAK_RESULTS": str(work / "seen.json"),
                    "SOAK_MAX_REQUESTS": str(args.max_requests),
                    "SOAK_READER_TOKEN": issue_access_token(149, secret, 7200),
                    **({} if args.ui else {"SOAK_HEADLESS": "1"}),
                }
                print(
                    f"soak: {args.accounts} accounts, {args.users} Locust users, ≤ {args.max_requests} requests"
                    f"{'' if args.ui else f', ≤ {args.run_time}'}, {args.backend}, loopback only",
                    flush=True,
                )
                if args.ui:
                    print("soak: Locust's web UI on http://127.0.0.1:8089 — stop the test there, then Ctrl-C here")
                try:
                    locust = subprocess.run(command, env=env).returncode
                except KeyboardInterrupt:
                    locust = 0
                results = work / "seen.json"  # written when a test stops; absent if none was started
                seen = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
                problems = conservation(endpoint, accounts, seen)
        finally:
            if database:
                database.stop()
    logged = sum(len(values) for values in seen.values())
    print(
        f"\nconservation: {len(accounts)} accounts, {logged} successful swaps seen by the clients; "
        f"initial + Σ logged adjustments = final, log ids contiguous, reconcile clean: "
        f"{'OK' if not problems else 'FAILED'}"
    )
    for problem in problems[:50]:
        print(f"  FAIL {problem}")
    print(f"Locust: {'no failed request (no 5xx, every answer as expected)' if locust == 0 else 'failures above'}")
    return 1 if problems or locust else 0


if __name__ == "__main__":
    sys.exit(main())
