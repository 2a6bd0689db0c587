"""`payments reconcile` at scale: generated accounts on DynamoDB Local, reconcile timed against --segments.

    .venv/bin/python tools/reconcile_scale.py --accounts 100000 --segments 1,2,4,8

Starts DynamoDB Local in memory (`make dynamodb-local`) with --heap of Java heap (6g by default: its Scan fails with
InternalFailure at 512m with 100,000 accounts, and it then holds about 8 GB), or uses --endpoint URL of one already
running (its ledger generated only if empty); creates the template's tables, and writes the accounts with BatchWriteItem
through the ledger's item classes (payments.repositories.ledger_items), as the adjustment path and the swap
write them: per account its account item, a point balance and a wallet opened by two opening adjustments (with
their idempotency markers), and for every fifth account one swap (its log, its stamps, log_seq 1). Then it runs
`payments reconcile --json --segments N` as a process for each N, and prints its wall time and peak memory
(ru_maxrss of that process). Last, it tampers one account's wallet and checks that reconcile names it, alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.table import BatchWriter

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "cli")]

from payments.models.ledger import Adjustment, SwapLog, SwapResult  # noqa: E402
from payments.repositories import codec, keys  # noqa: E402
from payments.repositories.ledger_items import (  # noqa: E402
    AccountItem,
    AdjustmentItem,
    AdjustmentMarkerItem,
    PointBalanceItem,
    SwapLogItem,
    WalletItem,
)
from payments_cli.dynamodb_local import emulator_dir, free_port, is_installed, stop_process  # noqa: E402
from payments_cli.tables import create_tables  # noqa: E402

LEDGER = "LedgerTable"
PAYMENTS = Path(sys.executable).with_name("payments")
OPENING_POINTS = 1000
T0_MS = 1_795_000_000_000


def account_items(au_id: int) -> list[dict[str, Any]]:
    """One account's items, as the adjustment path and a swap write them."""
    swapped = au_id % 5 == 0
    openings = [
        Adjustment(au_id, 1, f"gen-{au_id}-p", "POINT#1#1", 0, 0, OPENING_POINTS, "generated", "scale", T0_MS, True),
        Adjustment(au_id, 2, f"gen-{au_id}-w", "WALLET#2", 0, 0, Decimal(0), "generated", "scale", T0_MS, True),
    ]
    points, coins = (OPENING_POINTS - 100, Decimal(10)) if swapped else (OPENING_POINTS, Decimal(0))
    point = PointBalanceItem.write(au_id, 1, 1, 100_000 + au_id, points)
    wallet = WalletItem.write(au_id, 2, f"0x{au_id:040x}", coins)
    for balance in (point, wallet):
        balance[PointBalanceItem.LAST_ADJUSTMENT_SEQ] = 1 if balance is point else 2
        if swapped:
            balance[PointBalanceItem.LAST_LOG_ID] = 1
    account = {
        **AccountItem.key(au_id),
        keys.ENTITY: AccountItem.ENTITY,
        "au_id": au_id,
        AccountItem.VERSION: 1 if swapped else 0,
        AccountItem.LOG_SEQ: 1 if swapped else 0,
        AccountItem.OTP_STEPS: {},
        AccountItem.ADJUSTMENT_SEQ: 2,
    }
    items = [account, point, wallet]
    for adjustment in openings:
        items += [AdjustmentItem.write(adjustment), AdjustmentMarkerItem.write(adjustment)]
    if swapped:
        result = SwapResult(
            au_id, 3, 1, 1, 1, 1, 100_000 + au_id, OPENING_POINTS, -100, OPENING_POINTS - 100,
            2, f"0x{au_id:040x}", Decimal(0), Decimal(10), Decimal(10),
        )  # fmt: skip
        items.append(SwapLogItem.write(SwapLog(1, f"fp{au_id}", 59_833_333, T0_MS + 1000, result, Decimal("0.1"))))
    return items


def generate(client: Any, accounts: int, writers: int) -> None:
    def write(block: range) -> None:
        with BatchWriter(LEDGER, client) as writer:
            for au_id in block:
                for item in account_items(au_id):
                    writer.put_item(Item=codec.to_item(item))

    size = 2000
    blocks = [range(start, min(start + size, accounts + 1)) for start in range(1, accounts + 1, size)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        for done, _ in enumerate(pool.map(write, blocks), start=1):
            print(f"  written {min(done * size, accounts)} accounts ({time.monotonic() - started:.0f} s)", flush=True)


def reconcile(endpoint: str, segments: int) -> tuple[float, int, int, dict[str, Any]]:
    """(seconds, peak RSS in MB, exit status, the JSON report) of one `payments reconcile` process."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    command = [str(PAYMENTS), "reconcile", "--json", "--segments", str(segments), "--dynamodb-endpoint", endpoint]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)  # noqa: S603
    assert process.stdout is not None and process.stderr is not None  # noqa: S101
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if process.returncode not in (0, 1) or not out.strip():
        raise RuntimeError(f"reconcile failed ({process.returncode}): {err.strip()}")
    return seconds, usage.ru_maxrss // 1024, process.returncode, json.loads(out)


@contextlib.contextmanager
def dynamodb_local(heap: str) -> Iterator[str]:
    """DynamoDB Local in memory with `heap` of Java heap (payments_cli.dynamodb_local's 512m is too small here)."""
    port = free_port()
    command = ["java", f"-Xmx{heap}", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar"]
    command += ["-port", str(port), "-sharedDb", "-inMemory"]
    process = subprocess.Popen(command, cwd=emulator_dir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--segments", default="1,2,4,8", help="comma-separated segment counts to time")
    parser.add_argument("--writers", type=int, default=4, help="threads writing the generated items")
    parser.add_argument(
        "--heap", default="6g", help="DynamoDB Local's Java heap (its Scan fails with InternalFailure at 512m)"
    )
    parser.add_argument("--endpoint", help="a DynamoDB Local already running (its ledger generated if empty)")
    args = parser.parse_args()
    if not args.endpoint and not is_installed():
        print("DynamoDB Local is not installed: make dynamodb-local", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(dynamodb_local(args.heap))
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - DynamoDB Local's, not a secret
        )
        create_tables(client)
        if client.describe_table(TableName=LEDGER)["Table"].get("ItemCount", 0) == 0:
            print(f"generating {args.accounts} accounts into DynamoDB Local at {endpoint}", flush=True)
            generate(client, args.accounts, args.writers)
        count = client.describe_table(TableName=LEDGER)["Table"].get("ItemCount", 0)
        print(f"ledger: {count} items, {args.accounts} accounts; machine: {os.cpu_count()} CPUs", flush=True)
        print("| segments | seconds | accounts/s | peak RSS (MB) | accounts | swap logs | adjustments | broken |")
        print("|---|---|---|---|---|---|---|---|")
        for segments in [int(part) for part in args.segments.split(",")]:
            seconds, rss, status, report = reconcile(endpoint, segments)
            print(
                f"| {segments} | {seconds:.1f} | {report['accounts_checked'] / seconds:.0f} | {rss} | "
                f"{report['accounts_checked']} | {report['swap_logs']} | {report['adjustments']} | "
                f"{len(report['broken_accounts'])} (exit {status}) |",
                flush=True,
            )
        # one wallet changed behind the ledger's back: named, alone
        tampered = args.accounts // 2
        key = codec.to_item(WalletItem.key(tampered, 2))
        original = client.get_item(TableName=LEDGER, Key=key)["Item"]
        client.put_item(TableName=LEDGER, Item={**original, "quantity": {"N": "12345"}})
        try:
            seconds, rss, status, report = reconcile(endpoint, max(int(p) for p in args.segments.split(",")))
            print(f"tampered au_id {tampered}: exit {status}, broken {report['broken_accounts']} ({seconds:.1f} s)")
            if status != 1 or [entry["au_id"] for entry in report["broken_accounts"]] != [tampered]:
                return 1
        finally:
            client.put_item(TableName=LEDGER, Item=original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
