"""`make scale` / `make scale-ui`: a hot profile through `payments serve --concurrent-dynamodb`, then the DynamoDB
proxy playing DynamoDB's per-partition limits divided by --partition-scale (payments_cli.partitions), then DynamoDB
Local, all on loopback, bounded in users and time (Locust's options) and requests (--max-requests).

The hot profile (SPEC §7; docs/scale.md, "Simulation"):
- a push-notification burst: many askers, each asking payment progress on their own concern, every concern of
  subcategory 1 (one listing partition, one ticket catalogue);
- a swap promotion: many accounts swapping points for coins on app 1 (one app, one coin, one rate).

Clients honour Retry-After: a 503 (service_busy / 32204) makes the user wait the seconds it says, then send the
same request again, once. The caches are on or off as SHARED_ITEMS_CACHE_SECONDS says (serve hands its
environment to the handlers; 0 = off). When Locust quits: the answer mix, the proxy's throttling and busiest
partitions, and the conservation check (bench/conservation.py, as `make soak`). A broken check, or an answer
outside the expected ones, makes Locust exit 1; 503s are expected answers here (what is measured).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, events, task

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]
import run  # noqa: E402

run.use_test_env(POWERTOOLS_LOG_LEVEL="ERROR")
POINTS, COINS, STEP, RANDOM = 100_000, Decimal("100.5"), 30, random.Random(18)
ASKERS = list(range(20_001, 20_151))  # 150 askers, one concern each, all of subcategory 1
ACCOUNTS = list(range(10_001, 10_151))  # 150 accounts, all swapping on app 1, one after the other
TURNS = itertools.cycle(ACCOUNTS)
TOKENS = {au_id: run.token(au_id) for au_id in [*ASKERS, *ACCOUNTS]}
USED, SEEN = defaultdict(set), defaultdict(list)  # OTP steps used, successes answered
MIX: Counter[str] = Counter()  # "route status code": answers received
STACK: dict[str, Any] = {"sent": 0}
BUSY = {"swap": (503, 32204), "progress": (503, "service_busy")}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--max-requests", type=int, default=6000, help="requests at most, then the test stops")
    parser.add_argument(
        "--partition-scale", type=float, default=300, help="DynamoDB's partition limits divided by this (default 300)"
    )
    parser.add_argument(
        "--burst-seconds",
        type=float,
        default=4,
        help="seconds of unused units a partition keeps (default 4: one swap transaction, 12 write units on the "
        "account's partition, must fit in a partition's bucket)",
    )


def _fixture() -> dict[str, Any]:
    fixture = json.loads(run.DEMO_FIXTURE.read_text(encoding="utf-8"))
    crowd = run.willsoners(30)  # a full listing page of subcategory 1
    fixture["users"] += crowd["users"]
    fixture["willsoners"] += crowd["willsoners"]
    user = {"gender": "여", "age": "20대 중반", "pic": run.PICTURE}
    fixture["users"] += [user | {"au_id": au_id, "nickname": f"asker{au_id}"} for au_id in ASKERS]
    concern = {"content": "c", "time": "", "wil_gender": "ALL", "subcategory_idx": 1, "personalities": []}
    fixture["concerns"] += [
        concern | {"idx": 40_000 + n, "au_id": au_id, "direction": "d"} for n, au_id in enumerate(ASKERS)
    ]
    fixture["accounts"] += [run.account(au_id, run.DEMO_OTP_SECRET, POINTS, str(COINS)) for au_id in ACCOUNTS]
    return fixture


def _control(path: str, body: dict[str, Any] | None = None) -> Any:
    import http.client

    host, port = STACK["proxy_endpoint"].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST" if body is not None else "GET", path, body=json.dumps(body or {}))
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


@events.init.add_listener
def _start(environment: Any, **_: Any) -> None:
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal

    options = environment.parsed_options
    STACK.update(database=DynamoDBLocal().start())
    proxy = subprocess.Popen(  # counting only while the fixture loads; the budgets are set once serve listens
        [sys.executable, "-m", "payments_cli.dynamodb_proxy", "--upstream", STACK["database"].endpoint, "--concurrent"],
        stdout=subprocess.PIPE,
        text=True,
    )
    STACK["proxy"] = proxy
    assert proxy.stdout is not None
    STACK["proxy_endpoint"] = f"http://127.0.0.1:{proxy.stdout.readline().split()[1]}"
    import boto3

    from payments_cli.tables import create_tables

    database = boto3.client("dynamodb", endpoint_url=STACK["database"].endpoint)
    create_tables(database)
    run.load(database, _fixture())  # straight into DynamoDB Local: twice as fast as through serve and the proxy
    serve = ["--dynamodb-endpoint", STACK["proxy_endpoint"], "--concurrent-dynamodb"]
    STACK["serve"] = LocalStack(*serve).start()
    _control("/__proxy/reset", {})  # serve's start is not counted
    model = _control("/__proxy/partitions", {"scale": options.partition_scale, "burst_seconds": options.burst_seconds})
    environment.host = f"http://127.0.0.1:{STACK['serve'].port}"
    caches = os.environ.get("SHARED_ITEMS_CACHE_SECONDS", "default (30)")
    print(
        f"scale: caches SHARED_ITEMS_CACHE_SECONDS={caches}; {len(ASKERS)} askers on subcategory 1, "
        f"{len(ACCOUNTS)} accounts swapping on app 1; partitions: {model['read_units_per_second']:g} read and "
        f"{model['write_units_per_second']:g} write units a second (DynamoDB's 3,000 / 1,000 ÷ {model['scale']:g}), "
        f"{model['burst_seconds']:g} s kept; at most {options.max_requests} requests",
        flush=True,
    )


@events.quitting.add_listener
def _check(environment: Any, **_: Any) -> None:
    from conservation import conservation_problems

    environment.runner.stop()
    proxy_stats = _control("/__proxy/stats")
    problems = conservation_problems(STACK["database"].endpoint, ACCOUNTS, SEEN, POINTS, COINS)
    STACK["serve"].stop()
    STACK["proxy"].terminate()
    STACK["proxy"].wait(timeout=10)
    STACK["database"].stop()
    stats = environment.runner.stats
    print(f"\nscale: caches SHARED_ITEMS_CACHE_SECONDS={os.environ.get('SHARED_ITEMS_CACHE_SECONDS', 'default (30)')}")
    total = stats.total
    print(
        f"throughput: {total.num_requests} requests in {total.last_request_timestamp - total.start_time:.1f} s, "
        f"{total.total_rps:.1f}/s; latency ms p50 {total.get_response_time_percentile(0.5):.0f}, "
        f"p95 {total.get_response_time_percentile(0.95):.0f}, p99 {total.get_response_time_percentile(0.99):.0f}"
    )
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        print(
            f"  {entry.name}: {entry.num_requests} requests, {entry.total_rps:.1f}/s, ms p50 "
            f"{entry.get_response_time_percentile(0.5):.0f} p95 {entry.get_response_time_percentile(0.95):.0f} "
            f"p99 {entry.get_response_time_percentile(0.99):.0f}"
        )
    print("answer mix: " + ", ".join(f"{answer} ×{count}" for answer, count in sorted(MIX.items())))
    partitions = proxy_stats["partitions"]
    print(f"DynamoDB throttled (proxy, by operation): {partitions['throttled'] or 'none'}")
    busiest = sorted(partitions["partitions"].items(), key=lambda item: -item[1]["read_units"])[:4]
    print(
        "busiest partitions by read units: "
        + "; ".join(
            f"{name} {p['read_units']:g} RU, {p['requests']} requests, {p['throttled']} throttled"
            for name, p in busiest
        )
    )
    successes = sum(map(len, SEEN.values()))
    verdict = "FAILED" if problems else "OK"
    print(f"conservation: {len(ACCOUNTS)} accounts, {successes} successful swaps seen by the clients, reconcile")
    print(f"clean, as many logs, initial + Σ answered adjustments = final balance: {verdict}", *problems[:50], sep="\n")
    print(f"Locust: {total.num_failures} failed requests (an answer outside the expected ones)")
    environment.process_exit_code = 1 if problems or total.num_failures else 0


class Budgeted(HttpUser):
    abstract, wait_time = True, between(0.02, 0.1)

    def post(self, route: str, body: str, au_id: int, expected: set[Any], label: str = "") -> Any:
        """Sends unless the request budget is spent; honours a 503's Retry-After (waits, sends again once).
        Returns the answer of a 200, else None."""
        for attempt in range(2):
            STACK["sent"], budget = STACK["sent"] + 1, self.environment.parsed_options.max_requests
            if STACK["sent"] > budget:  # spent: the test stops, from outside the users' greenlets
                if STACK["sent"] == budget + 1:
                    runner = self.environment.runner
                    gevent.spawn(runner.quit if self.environment.parsed_options.headless else runner.stop)
                return None
            path = run.SWAP_PATH if route == "swap" else run.PROGRESS_PATH
            token = TOKENS[au_id]
            headers = {"Authorization": f"Bearer {token}"} if route == "swap" else {"x-token": token}
            name = path + label + (" (after Retry-After)" if attempt else "")
            with self.client.post(path, data=body, headers=headers, name=name, catch_response=True) as response:
                answer = json.loads(response.text, parse_float=Decimal) if response.content else None
                code = answer.get("return", answer.get("code")) if isinstance(answer, dict) else None
                MIX[f"{route} {response.status_code} {code}"] += 1
                busy = (response.status_code, code) == BUSY[route]
                if busy or (response.status_code, code) in expected:
                    response.success()
                else:
                    response.failure(f"{response.status_code} {answer}")
                if not busy:
                    return answer if response.status_code == 200 else None
                wait = int(response.headers.get("Retry-After", "0"))
                if not 1 <= wait <= 99:
                    response.failure(f"503 without a Retry-After of 1-99 s: {response.headers.get('Retry-After')}")
                    return None
            gevent.sleep(wait)
        return None


class Swapper(Budgeted):
    weight = 1

    @task
    def swap(self) -> None:
        """The accounts take turns (a promotion: each account swaps now and then, all of them on app 1), each
        swap with an OTP step valid now and never used by that account."""
        now = time.time()
        steps = [int(now // STEP) + offset for offset in (-1, 0, 1) if offset or now % STEP < STEP - 5]
        turns = (next(TURNS) for _ in ACCOUNTS)
        free = next(((a, s) for a in turns for s in steps if s not in USED[a]), None)
        if free is None:
            return gevent.sleep(0.5)
        (au_id, step), at = free, free[1] * STEP + 1
        USED[au_id].add(step)  # greenlets: no lock needed
        body = json.dumps(run.swap_body(run.DEMO_OTP_SECRET, RANDOM.randint(1, 200), at, 3))
        answer = self.post("swap", body, au_id, {(200, 0), (409, 32203)})
        if answer:
            SEEN[au_id].append(answer["value"])
        return None


class Asker(Budgeted):
    weight = 1

    @task
    def progress(self) -> None:
        n = RANDOM.randrange(len(ASKERS))
        self.post("progress", json.dumps({"concern_idx": 40_000 + n}), ASKERS[n], {(200, "success")})
