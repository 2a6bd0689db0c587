"""`make bench`: DynamoDB cost, cold start, first request, warm CPU beside its floor, contention; every verdict.

    .venv/bin/python bench/run.py [--processes-cold 12] [--processes-warm 5] [--values 150]
                                   [--only cold,first,warm,contention]

pyperf runs the worker processes (bench/workers.py) and computes the statistics; every verdict is a ratio taken
within one process. Nothing fails on a figure: the command fails only if a measurement breaks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env()
import pyperf  # noqa: E402

WORKERS, TARGETS = str(Path(__file__).resolve().parent / "workers.py"), []


def verdict(measure: str, figure: float, limit: float, shown: str) -> str:
    TARGETS.append(common.target(measure, shown, f"≤ {limit:.0%}" if "%" in shown else f"≤ {limit}", figure <= limit))
    return TARGETS[-1][-1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def per_process(bench: pyperf.Benchmark, value: Any) -> pyperf.Benchmark:
    """value(run) of each worker process's run, as a benchmark of one value per process (for pyperf's median)."""
    metadata = {"name": bench.get_name(), "unit": "second"}
    return pyperf.Benchmark(
        [pyperf.Run([value(r)], metadata=metadata, collect_metadata=False) for r in bench.get_runs()]
    )


def suite(work: Path, kinds: str, processes: int, warmups: int, values: int) -> pyperf.BenchmarkSuite:
    print(f"[bench {time.strftime('%H:%M:%S')}] pyperf: {kinds}", file=sys.stderr, flush=True)
    files = ["--answers", str(work / "answers.json"), "--modules", str(work / "modules.json"), "-o", str(work / kinds)]
    options = [f"--processes={processes}", f"--warmups={warmups}", f"--values={values}", "--loops=1", "--quiet"]
    subprocess.run([sys.executable, WORKERS, "--kinds", kinds, *files, *options], check=True, stdout=subprocess.DEVNULL)
    return pyperf.BenchmarkSuite.load(str(work / kinds))


def cold(work: Path, args: Any) -> None:
    modules = {}
    for name in ("payment_progress", "swap"):
        listing = subprocess.run([sys.executable, WORKERS, "modules", name], capture_output=True, check=True)
        modules[name] = json.loads(listing.stdout)
    (work / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    benchmarks, rows = suite(work, "cold", args.processes_cold, 1, 1), []
    for name in modules:
        bench = benchmarks.get_benchmark(f"cold {name}")
        share = per_process(bench, lambda run: run.values[0] / run.warmups[0][1]).median()
        met = verdict(f"cold import {name}: own code on top of its packages' floor", share, 0.05, f"{share:.1%}")
        floor = per_process(bench, lambda run: run.warmups[0][1]).median()
        rows.append([name, bench.get_nrun(), ms(floor), ms(bench.median()), f"{share:.1%}", met])
    print("### 2. Cold start: own code on top of its packages' floor (fresh processes, CPU time)\n")
    print(common.table(["handler", "processes", "floor", "own code on top", "share", "≤ 5%"], rows))


def first(work: Path, args: Any) -> None:
    benchmarks, rows = suite(work, "first", args.processes_cold, 21, 30), []
    for name in ("payment_progress", "swap"):
        bench = benchmarks.get_benchmark(f"first {name}")
        ratio = per_process(bench, lambda run: run.warmups[0][1] / pyperf.Benchmark([run]).median()).median()
        measure = f"first request after init / warm p50 of its own process, {name} (primed)"
        met, firsts = verdict(measure, ratio, 1.2, f"{ratio:.2f}"), per_process(bench, lambda run: run.warmups[0][1])
        rows.append([name, bench.get_nrun(), ms(firsts.median()), ms(bench.median()), f"{ratio:.2f}", met])
    print("### 3. First request after init, primed (PAYMENTS_PRIME_AT_INIT=true), CPU time of the thread\n")
    print(common.table(["handler", "processes", "first request", "requests 22-51", "first / own p50", "≤ 1.2×"], rows))


def warm(work: Path, args: Any) -> None:
    benchmarks, rows = suite(work, "warm", args.processes_warm, max(5, args.values // 8), args.values), []
    recorded = json.loads((work / "answers.json").read_text(encoding="utf-8"))
    for scenario, label in __import__("workers").SCENARIOS.items():
        floor, handler, ratio = (
            benchmarks.get_benchmark(f"{k} {scenario}") for k in ("floor", "handler", "handler/floor")
        )
        met = verdict(f"warm p50 {label} / its floor in the same process", ratio.median(), 1.5, f"{ratio.median():.2f}")
        calls = "+".join(call["operation"] for call in recorded[scenario]["calls"])
        p50s = [ms(floor.median()), ms(handler.median()), ms(handler.percentile(99))]
        rows.append([label, calls, *p50s, f"{ratio.median():.2f}", met])
    print("### 4. Warm CPU per request beside its floor (DynamoDB answered from memory, CPU time of the thread)\n")
    headers = ["scenario", "DynamoDB calls", "floor p50", "handler p50", "handler p99", "handler / floor", "≤ 1.5×"]
    print(common.table(headers, rows))
    print("handler / floor: of the handler's time over the floor's on the same request, in the same process.\n")


def contention(work: Path, args: Any, sizes: tuple[int, ...] = (3, 12, 48)) -> None:
    """Bursts of concurrent swaps on one fresh account each; TransactWriteItems counted on the wire."""
    sys.path.insert(0, str(common.ROOT / "tests"))
    import pyotp

    from helpers.otp import wait_for_calm_otp_step
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal
    from payments_cli.dynamodb_proxy import DynamoDBProxy

    secrets, fixture = [pyotp.random_base32() for _ in sizes], json.loads(common.DEMO_FIXTURE.read_text("utf-8"))
    fixture["accounts"] += [common.account(10_000 + n, secret, 10**6) for n, secret in enumerate(secrets)]
    (work / "fixture.json").write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    rows, serve = [], ["--concurrent-dynamodb", "--fixture", str(work / "fixture.json")]
    with DynamoDBLocal() as database:
        proxy = DynamoDBProxy(database.endpoint, serialise=False).start()
        with LocalStack("--dynamodb-endpoint", proxy.endpoint, *serve) as stack:
            for n, (size, secret) in enumerate(zip(sizes, secrets, strict=True)):
                now, headers = wait_for_calm_otp_step(), {"Authorization": f"Bearer {common.token(10_000 + n)}"}
                proxy.reset()
                bodies = [common.swap_body(secret, 10 + i, now + 30 * (i % 3 - 1)) for i in range(size)]
                with ThreadPoolExecutor(size) as pool:
                    answers = list(pool.map(lambda body, h=headers: stack.post(common.SWAP_PATH, body, h), bodies))
                outcomes = [f"{status}/{body.get('return')}" for status, body in answers]
                ok, used, conflict = (outcomes.count(o) for o in ("200/0", "409/32108", "409/32203"))
                stats = proxy.stats()
                cancelled = stats["errors"].get("TransactWriteItems", {}).get("TransactionCanceledException", 0)
                twi = stats["requests"].get("TransactWriteItems", 0)
                rows.append([size, ok, used, conflict, size - ok - used - conflict, twi, cancelled])
        proxy.stop()
    print("### 5. Contention: one account, concurrent swaps (serve --concurrent-dynamodb → proxy → DynamoDB Local)\n")
    headers = ["concurrent", "successes", "32108 used", "32203 conflict", "other", "TransactWriteItems", "cancelled"]
    print(common.table(headers, rows))
    print("At most 3 successes per account per burst: one per valid OTP step (t−1, t, t+1).\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes-cold", type=int, default=12, help="fresh processes per cold and first benchmark")
    parser.add_argument("--processes-warm", type=int, default=5, help="worker processes per warm benchmark")
    parser.add_argument("--values", type=int, default=150, help="timed invocations per warm worker")
    parser.add_argument("--only", default="cold,first,warm,contention", help="sections after the DynamoDB one")
    args, started = parser.parse_args(), time.monotonic()
    print(f"## Benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})\n")
    from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        with DynamoDBLocal() if is_installed() else contextlib.nullcontext() as database:
            env = os.environ | ({"AWS_ENDPOINT_URL_DYNAMODB": database.endpoint} if database else {})
            subprocess.run([sys.executable, WORKERS, "dynamodb", str(work / "dynamodb.json")], check=True, env=env)
        recorded = json.loads((work / "dynamodb.json").read_text(encoding="utf-8"))
        (work / "answers.json").write_text(json.dumps(recorded["answers"], ensure_ascii=False), encoding="utf-8")
        TARGETS.extend(recorded["targets"])
        for section, run in (("cold", cold), ("first", first), ("warm", warm), ("contention", contention)):
            if section in args.only.split(",") and (section != "contention" or is_installed()):
                run(work, args)
    print("### Targets\n")
    print(common.table(["measure", "figure", "target", "verdict"], TARGETS))
    print(f"Load average at the end {os.getloadavg()[0]:.2f}; whole run {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
