"""Load and soak test of the local stack (`make soak`).

For each backend — `payments serve` in front of Amazon DynamoDB Local (as `make run-dynamodb-local`
runs it: through serve's serialising proxy), the same with `--concurrent-dynamodb` (requests reach
DynamoDB Local concurrently, so its own transaction isolation meets real races), then
`payments serve` on its embedded emulator — it:

1. writes a fixture: the demo data plus N dashboard accounts, each with its own TOTP secret
   (pyotp.random_base32()), a point balance of app 1 point 1 and a wallet of coin 2 (rate 0.1);
2. starts the stack on a loopback port with that fixture;
3. runs N accounts × M swaps from several threads, plus payment-progress reads (concern 1577 of
   au_id 149) from other threads, bounded in count and in time:
   - a contention burst first: for some accounts, two swaps at once (OTP steps t and t+1), so
     the optimistic transaction really races;
   - then each account's swaps paced over OTP time steps (a step is accepted once per account,
     and only t-1, t, t+1 are valid): t-1 while it is safely valid, t, t+1, then wait;
   - some successes are sent again byte for byte (an idempotent replay: same answer, no move);
   - some requests are refused on purpose (more points than the account has: 32103), which
     must change nothing and consume no OTP step;
4. checks, from the database itself: for every account, initial + Σ logged adjustments = final
   balance (points and coins), log ids contiguous from 1 and as many as the successes the
   client saw, the same Σ as the client's own tally, `payments reconcile` logic clean, no 5xx.

It prints requests, answers by status and code, p50/p99 latency, throughput and the
conservation check, and exits non-zero if any check failed. Loopback only.

    .venv/bin/python bench/soak.py [--accounts 24] [--swaps 4] [--swap-threads 6] [--read-threads 2]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Children inherit this process's environment: nothing may point them at a real AWS account or
# configure the service differently from its defaults.
for _name in list(os.environ):
    if _name.startswith(("AWS_", "WILLSON_", "LEDGER_", "IDEMPOTENCY_", "HONEYPOT_", "SWAP_MAX", "OTP_",
                         "MAX_LISTED", "JWT_SECRET")):
        del os.environ[_name]
os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                   "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                   "POWERTOOLS_LOG_LEVEL": "ERROR"})

import boto3  # noqa: E402
import pyotp  # noqa: E402

from local_stack import LocalStack  # noqa: E402
from payments.auth import issue_access_token  # noqa: E402
from payments.config import DEVELOPMENT_JWT_SECRET  # noqa: E402
from payments.repositories import codec  # noqa: E402
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed  # noqa: E402
from payments_cli.reconcile import reconcile  # noqa: E402

DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
SWAP_PATH = "/v1.0/db/swap"
PROGRESS_PATH = "/api/v1/asker/payment/progress"
LEDGER_TABLE = "LedgerTable"
STEP = 30
FIRST_AU_ID = 10_001
RATE = Decimal("0.1")
INITIAL_POINTS = 10_000
INITIAL_COINS = Decimal("100.5")
EXPECTED_LISTING = [15, 12, 18]  # demo data: concern 1577, ranked by rating, unrated last
BACKENDS = ("dynamodb-local", "dynamodb-local-concurrent", "embedded")


# --- the fixture ----------------------------------------------------------------------------------

@dataclass
class Account:
    au_id: int
    secret: str
    mu_id: int
    walletaddress: str
    points: int = INITIAL_POINTS
    coins: Decimal = INITIAL_COINS
    token: str = ""
    remaining: int = 0
    used_steps: set[int] = field(default_factory=set)
    successes: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_fixture(path: Path, accounts: list[Account]) -> None:
    fixture = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] = [a for a in fixture["accounts"] if a["au_id"] not in {x.au_id for x in accounts}]
    fixture["accounts"] += [
        {"au_id": a.au_id, "otp_secret": a.secret,
         "points": [{"app_id": 1, "point_id": 1, "mu_id": a.mu_id, "quantity": a.points}],
         "wallets": [{"coin_id": 2, "walletaddress": a.walletaddress, "quantity": str(a.coins)}]}
        for a in accounts
    ]
    path.write_text(json.dumps(fixture, ensure_ascii=False, indent=1), encoding="utf-8")


def make_accounts(count: int, swaps: int, secret_key: str) -> list[Account]:
    accounts = []
    for index in range(count):
        au_id = FIRST_AU_ID + index
        account = Account(au_id=au_id, secret=pyotp.random_base32(), mu_id=50_000 + index,
                          walletaddress=f"0x{au_id:040x}", remaining=swaps)
        account.token = issue_access_token(au_id, secret_key, 3600)
        accounts.append(account)
    return accounts


# --- accounting -----------------------------------------------------------------------------------

class Tally:
    """Every answer: route, kind of request, status, code, latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: Counter[tuple[str, str]] = Counter()     # (kind, "status/code")
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    def record(self, kind: str, route: str, status: int, body: Any, seconds: float) -> None:
        code = _code(body)
        with self._lock:
            self.answers[(kind, f"{status}" + (f"/{code}" if code not in (None, 0, "success") else ""))] += 1
            self.latencies[route].append(seconds)
            self.latencies["all"].append(seconds)

    def fail(self, message: str) -> None:
        with self._lock:
            if len(self.failures) < 50:
                self.failures.append(message)

    @property
    def requests(self) -> int:
        return sum(self.answers.values())

    def statuses(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (_, answer), count in self.answers.items():
            totals[answer] += count
        return totals


def _code(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("return", body.get("code"))
    return None


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


# --- the workload ---------------------------------------------------------------------------------

class Workload:
    def __init__(self, stack: LocalStack, accounts: list[Account], args: argparse.Namespace) -> None:
        self.stack = stack
        self.accounts = accounts
        self.args = args
        self.tally = Tally()
        self.random = random.Random(args.seed)
        self._random_lock = threading.Lock()
        self.swaps_done = threading.Event()
        self.deadline = 0.0
        self.reads_sent = 0
        self._reads_lock = threading.Lock()

    def rand(self, action: Callable[[random.Random], Any]) -> Any:
        with self._random_lock:
            return action(self.random)

    def post(self, kind: str, path: str, headers: dict[str, str], raw: str) -> tuple[int, Any, float]:
        started = time.perf_counter()
        try:
            status, body = self.stack.post(path, headers=headers, raw=raw, timeout=30)
        except Exception as error:  # noqa: BLE001 - a transport failure is a finding, not a crash
            elapsed = time.perf_counter() - started
            self.tally.record(kind, path, 0, {"code": type(error).__name__}, elapsed)
            self.tally.fail(f"{kind}: transport error {error!r}")
            return 0, None, elapsed
        elapsed = time.perf_counter() - started
        self.tally.record(kind, path, status, body, elapsed)
        if status >= 500:
            self.tally.fail(f"{kind}: {status} {body}")
        return status, body, elapsed

    # swaps

    def swap_body(self, account: Account, step: int, event_id: int, points: int) -> str:
        coins = RATE * points
        adjust_point, adjust_coin = (-points, coins) if event_id == 3 else (points, -coins)
        body = {"event_id": event_id, "otp_code": pyotp.TOTP(account.secret).at(step * STEP + 1),
                "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": adjust_point},
                "coin": {"coin_id": 2, "adjust_coin_quantity": 0}}
        return json.dumps(body).replace('"adjust_coin_quantity": 0}', f'"adjust_coin_quantity": {adjust_coin}}}')

    def one_swap(self, account: Account, step: int) -> None:
        """One swap of the account with the code of `step` (claimed by the caller)."""
        headers = {"Authorization": f"Bearer {account.token}"}
        if self.rand(lambda r: r.random()) < self.args.refusal_rate:
            # more points than anyone has: refused at the balances step, the code stays usable
            raw = self.swap_body(account, step, 3, 10 * INITIAL_POINTS * 100)
            status, body, _ = self.post("swap (refused on purpose)", SWAP_PATH, headers, raw)
            if (status, _code(body)) != (409, 32103):
                self.tally.fail(f"au_id {account.au_id}: expected 32103, got {status} {body}")
        event_id, points = self.rand(lambda r: (r.choice((3, 4)), r.randint(1, 200)))
        raw = self.swap_body(account, step, event_id, points)
        status, body, _ = self.post("swap", SWAP_PATH, headers, raw)
        if status == 200:
            with account.lock:
                account.successes.append(body["value"])
            if self.rand(lambda r: r.random()) < self.args.replay_rate:
                again, replayed, _ = self.post("swap (identical retry)", SWAP_PATH, headers, raw)
                if (again, replayed) != (200, body):
                    self.tally.fail(f"au_id {account.au_id}: replay answered {again} {replayed}, first {body}")

    def claim_step(self, account: Account) -> int | None:
        """The oldest OTP step of this account that is valid now and was never tried."""
        now = time.time()
        current, into = int(now // STEP), now % STEP
        # t-1 only while the server is sure to still be in step t when the request arrives
        candidates = ([current - 1] if into < STEP - 5 else []) + [current, current + 1]
        with account.lock:
            if account.remaining <= 0:
                return None
            for step in candidates:
                if step not in account.used_steps:
                    account.used_steps.add(step)
                    account.remaining -= 1
                    return step
        return None

    def burst(self) -> None:
        """Two swaps of the same account at the same moment (steps t and t+1): a real race."""
        accounts = self.accounts[: self.args.contended_accounts]
        work = []
        now_step = int(time.time() // STEP)
        for account in accounts:
            with account.lock:
                for step in (now_step, now_step + 1):
                    if account.remaining > 0:
                        account.used_steps.add(step)
                        account.remaining -= 1
                        work.append((account, step))
        with ThreadPoolExecutor(max_workers=max(1, len(work))) as pool:
            list(pool.map(lambda pair: self.one_swap(*pair), work))

    def swap_worker(self, mine: list[Account]) -> None:
        while time.monotonic() < self.deadline:
            pending = [a for a in mine if a.remaining > 0]
            if not pending:
                return
            progressed = False
            for account in pending:
                step = self.claim_step(account)
                if step is not None:
                    self.one_swap(account, step)
                    progressed = True
            if not progressed:
                time.sleep(0.25)  # every account of this worker waits for its next OTP step
        self.tally.fail("swap phase hit --max-seconds before every account finished")

    # reads

    def read_worker(self) -> None:
        headers = {"x-token": issue_access_token(149, self.args.jwt_secret, 3600)}
        raw = json.dumps({"concern_idx": 1577})
        while not self.swaps_done.is_set() and time.monotonic() < self.deadline:
            with self._reads_lock:
                if self.reads_sent >= self.args.max_reads:
                    return
                self.reads_sent += 1
            status, body, _ = self.post("payment progress", PROGRESS_PATH, headers, raw)
            if status == 200:
                listed = [w["idx"] for w in body["data"]["willsoners"]]
                if listed != EXPECTED_LISTING or body["data"]["point"] != {"honeypot": "280개"}:
                    self.tally.fail(f"payment progress answered {listed} {body['data']['point']}")
            else:
                self.tally.fail(f"payment progress: {status} {body}")

    def run(self) -> float:
        started = time.monotonic()
        self.deadline = started + self.args.max_seconds
        readers = [threading.Thread(target=self.read_worker, name=f"reader-{i}") for i in range(self.args.read_threads)]
        for reader in readers:
            reader.start()
        self.burst()
        shares: list[list[Account]] = [[] for _ in range(self.args.swap_threads)]
        for index, account in enumerate(self.accounts):
            shares[index % len(shares)].append(account)
        workers = [threading.Thread(target=self.swap_worker, args=(share,), name=f"swapper-{i}")
                   for i, share in enumerate(shares)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.swaps_done.set()
        for reader in readers:
            reader.join()
        return time.monotonic() - started


# --- the checks, from the database ----------------------------------------------------------------

def ledger_items(endpoint: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    items = []
    for page in client.get_paginator("scan").paginate(TableName=LEDGER_TABLE, ConsistentRead=True):
        items.extend(codec.from_item(item) for item in page["Items"])
    return items


def conservation(endpoint: str, accounts: list[Account], tally: Tally) -> dict[str, Any]:
    items = ledger_items(endpoint)
    by_account: dict[int, dict[str, Any]] = defaultdict(lambda: {"logs": []})
    for item in items:
        if not str(item["pk"]).startswith("ACCOUNT#"):
            continue
        au_id = int(item["pk"].split("#", 1)[1])
        if item["sk"].startswith("SWAPLOG#"):
            by_account[au_id]["logs"].append(item)
        elif item["sk"] in ("POINT#1#1", "WALLET#2", "ACCOUNT"):
            by_account[au_id][item["sk"]] = item
    logged = 0
    for account in accounts:
        stored = by_account[account.au_id]
        logs = sorted(stored["logs"], key=lambda log: int(log["log_id"]))
        logged += len(logs)
        name = f"au_id {account.au_id}"
        ids = [int(log["log_id"]) for log in logs]
        if ids != list(range(1, len(ids) + 1)):
            tally.fail(f"{name}: log ids {ids} are not contiguous from 1")
        if len(logs) != len(account.successes):
            tally.fail(f"{name}: {len(logs)} logs but the client saw {len(account.successes)} successes")
        if sorted(ids) != sorted(int(value["log_id"]) for value in account.successes):
            tally.fail(f"{name}: the log ids answered differ from the log ids stored")
        logged_points = sum(int(log["value"]["point"]["adjust_point_quantity"]) for log in logs)
        logged_coins = sum((Decimal(log["value"]["coin"]["adjust_coin_quantity"]) for log in logs), Decimal(0))
        answered_points = sum(int(value["point"]["adjust_point_quantity"]) for value in account.successes)
        answered_coins = sum((Decimal(str(value["coin"]["adjust_coin_quantity"])) for value in account.successes),
                             Decimal(0))
        final_points = int(stored["POINT#1#1"]["quantity"])
        final_coins = Decimal(stored["WALLET#2"]["quantity"])
        if account.points + logged_points != final_points:
            tally.fail(f"{name}: points {account.points} + {logged_points} != {final_points}")
        if account.coins + logged_coins != final_coins:
            tally.fail(f"{name}: coins {account.coins} + {logged_coins} != {final_coins}")
        if (answered_points, answered_coins) != (logged_points, logged_coins):
            tally.fail(f"{name}: answers moved {answered_points}/{answered_coins}, logs {logged_points}/{logged_coins}")
    report = reconcile(items)
    for problem in report.problems:
        tally.fail(f"reconcile: {problem}")
    return {"accounts": len(accounts), "swap_logs": logged, "reconcile": report.summary(),
            "reconcile_problems": len(report.problems)}


# --- one backend ----------------------------------------------------------------------------------

def soak(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    accounts = make_accounts(args.accounts, args.swaps, args.jwt_secret)
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        fixture = Path(directory) / "fixture.json"
        write_fixture(fixture, accounts)
        database = DynamoDBLocal().start() if backend.startswith("dynamodb-local") else None
        try:
            serve_args = ["--fixture", str(fixture)]
            if database is not None:
                serve_args += ["--dynamodb-endpoint", database.endpoint]
            if backend == "dynamodb-local-concurrent":
                serve_args.append("--concurrent-dynamodb")
            started = time.monotonic()
            with LocalStack(*serve_args) as stack:
                startup = time.monotonic() - started
                endpoint = database.endpoint if database else _banner_endpoint(stack.banner)
                workload = Workload(stack, accounts, args)
                elapsed = workload.run()
                checked = conservation(endpoint, accounts, workload.tally)
        finally:
            if database is not None:
                database.stop()
    tally = workload.tally
    five_xx = sum(count for answer, count in tally.statuses().items() if answer.startswith("5") or answer.startswith("0"))
    return {
        "backend": backend, "startup_s": startup, "elapsed_s": elapsed, "requests": tally.requests,
        "throughput": tally.requests / elapsed if elapsed else float("nan"),
        "answers": tally.answers, "statuses": tally.statuses(), "latencies": tally.latencies,
        "five_xx": five_xx, "failures": tally.failures, **checked,
    }


def _banner_endpoint(banner: list[str]) -> str:
    for line in banner:
        if line.startswith("DynamoDB: "):
            return line.split()[1]
    raise RuntimeError(f"no DynamoDB endpoint in the banner: {banner}")


# --- output ---------------------------------------------------------------------------------------

def print_result(result: dict[str, Any]) -> None:
    title = {"dynamodb-local": "payments serve → serialising proxy → Amazon DynamoDB Local",
             "dynamodb-local-concurrent": "payments serve --concurrent-dynamodb → Amazon DynamoDB Local",
             "embedded": "payments serve → embedded emulator (serialised moto)"}[result["backend"]]
    print(f"\n== {title} ==")
    print(f"stack ready in {result['startup_s']:.1f} s; load phase {result['elapsed_s']:.1f} s")
    kinds = Counter()
    for (kind, _), count in result["answers"].items():
        kinds[kind] += count
    print(f"requests: {result['requests']} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")
    print(f"throughput: {result['throughput']:.1f} requests/s")
    print("answers by status/code: " + ", ".join(f"{a} ×{c}" for a, c in sorted(result["statuses"].items())))
    for kind_answer, count in sorted(result["answers"].items()):
        print(f"    {kind_answer[0]:<28} {kind_answer[1]:<10} {count}")
    for route, label in ((SWAP_PATH, "swap"), (PROGRESS_PATH, "payment progress"), ("all", "all")):
        values = result["latencies"].get(route, [])
        print(f"latency {label:<17} p50 {percentile(values, 0.5) * 1000:7.1f} ms   "
              f"p99 {percentile(values, 0.99) * 1000:7.1f} ms   max {max(values, default=float('nan')) * 1000:7.1f} ms"
              f"   (n={len(values)})")
    print(f"conservation: {result['accounts']} accounts, {result['swap_logs']} swap logs; "
          f"initial + Σ logged adjustments = final balance, log ids contiguous: "
          f"{'OK' if not result['failures'] else 'FAILED'}; reconcile: {result['reconcile']}")
    print(f"5xx or transport errors: {result['five_xx']}")
    for failure in result["failures"]:
        print(f"  FAIL {failure}")


def print_markdown(results: list[dict[str, Any]]) -> None:
    print("\n| backend | requests | load phase | throughput | swap p50 / p99 | progress p50 / p99 | "
          "swaps logged | 5xx | conservation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        swap, read = r["latencies"].get(SWAP_PATH, []), r["latencies"].get(PROGRESS_PATH, [])
        print(f"| {r['backend']} | {r['requests']} | {r['elapsed_s']:.1f} s | {r['throughput']:.1f} req/s | "
              f"{percentile(swap, .5) * 1000:.0f} / {percentile(swap, .99) * 1000:.0f} ms | "
              f"{percentile(read, .5) * 1000:.0f} / {percentile(read, .99) * 1000:.0f} ms | {r['swap_logs']} | "
              f"{r['five_xx']} | {'OK' if not r['failures'] else 'FAILED'} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=24, help="dashboard accounts (default 24)")
    parser.add_argument("--swaps", type=int, default=4,
                        help="swaps per account (default 4; beyond 3 they wait for the next OTP step)")
    parser.add_argument("--swap-threads", type=int, default=6)
    parser.add_argument("--read-threads", type=int, default=2)
    parser.add_argument("--max-reads", type=int, default=1500, help="payment-progress reads at most, per backend")
    parser.add_argument("--contended-accounts", type=int, default=6,
                        help="accounts whose first two swaps are sent at the same moment")
    parser.add_argument("--replay-rate", type=float, default=0.15, help="share of successes sent again")
    parser.add_argument("--refusal-rate", type=float, default=0.1, help="share of swaps preceded by a refused one")
    parser.add_argument("--max-seconds", type=float, default=70.0, help="time bound of each backend's load phase")
    parser.add_argument("--backend", choices=("all", *BACKENDS), default="all")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    args.jwt_secret = DEVELOPMENT_JWT_SECRET
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"soak: {args.accounts} accounts × {args.swaps} swaps, {args.swap_threads} swap threads, "
          f"{args.read_threads} read threads (≤ {args.max_reads} reads), {args.contended_accounts} contended accounts, "
          f"≤ {args.max_seconds:.0f} s per backend, loopback only")
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    results = []
    for backend in backends:
        if backend.startswith("dynamodb-local") and not is_installed():
            print("\n== DynamoDB Local: not installed (make dynamodb-local; needs java): FAILED ==")
            return 2
        result = soak(backend, args)
        print_result(result)
        results.append(result)
    print_markdown(results)
    failed = [r["backend"] for r in results if r["failures"] or r["five_xx"]]
    print("\nsoak: " + (f"FAILED on {', '.join(failed)}" if failed else "every check passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
