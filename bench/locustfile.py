"""`make soak` / `make soak-ui`: Locust against `payments serve --concurrent-dynamodb` and DynamoDB Local on loopback,
bounded in users and time (Locust's options) and requests (--max-requests). Swappers take an account's OTP step
valid now and never used (two users may race on one account); readers ask for payment progress. When Locust quits,
the conservation check: `reconcile` clean, as many swap logs as successes answered, and for every account initial
+ Σ adjustments answered = final balance. A broken check, like any failed request, makes Locust exit 1.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, events, task

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]
import run  # noqa: E402

run.use_test_env(POWERTOOLS_LOG_LEVEL="ERROR")
POINTS, COINS, STEP, RANDOM = 10_000, Decimal("100.5"), 30, random.Random(6)
EXPECTED = ([15, 12, 18], {"honeypot": "280개"})  # the demo data's answer to caller 149 on concern 1577
TOKENS = {au_id: run.token(au_id) for au_id in [149, *range(10_001, 10_041)]}  # 149 reads, the others swap
ACCOUNTS, USED, SEEN = list(TOKENS)[1:], defaultdict(set), defaultdict(list)  # OTP steps used, successes answered
STACK: dict[str, Any] = {"sent": 0}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--max-requests", type=int, default=3000, help="requests at most, then the test stops")


@events.init.add_listener
def _start(environment: Any, **_: Any) -> None:
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal

    fixture = json.loads(run.DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] += [run.account(au_id, run.DEMO_OTP_SECRET, POINTS, str(COINS)) for au_id in ACCOUNTS]
    STACK.update(directory=tempfile.TemporaryDirectory(prefix="soak-"), database=DynamoDBLocal().start())
    path = Path(STACK["directory"].name) / "fixture.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    serve = ["--fixture", str(path), "--dynamodb-endpoint", STACK["database"].endpoint, "--concurrent-dynamodb"]
    STACK["serve"] = LocalStack(*serve).start()
    environment.host = f"http://127.0.0.1:{STACK['serve'].port}"
    print(f"soak: {len(ACCOUNTS)} accounts, at most {environment.parsed_options.max_requests} requests")


@events.quitting.add_listener
def _check(environment: Any, **_: Any) -> None:
    from conservation import conservation_problems

    environment.runner.stop()
    problems = conservation_problems(STACK["database"].endpoint, ACCOUNTS, SEEN, POINTS, COINS)
    successes = sum(map(len, SEEN.values()))
    STACK["serve"].stop(), STACK["database"].stop()
    failures, verdict = environment.runner.stats.total.num_failures, "FAILED" if problems else "OK"
    print(f"\nconservation: {len(ACCOUNTS)} accounts, {successes} successful swaps seen by the clients, reconcile")
    print(f"clean, as many logs, initial + Σ answered adjustments = final balance: {verdict}", *problems[:50], sep="\n")
    print(f"Locust: {failures} failed requests (5xx or an answer not as expected)")
    environment.process_exit_code = 1 if problems or failures else 0


class Budgeted(HttpUser):
    abstract, wait_time = True, between(0.02, 0.1)

    def post(self, path: str, body: str, au_id: int, expected: set[Any], label: str = "", check: Any = None) -> Any:
        """Sends unless the request budget is spent; a success is an expected (status, code) passing `check`."""
        STACK["sent"], budget = STACK["sent"] + 1, self.environment.parsed_options.max_requests
        if STACK["sent"] > budget:  # spent: the test stops, from outside the users' greenlets
            if STACK["sent"] == budget + 1:
                runner = self.environment.runner
                gevent.spawn(runner.quit if self.environment.parsed_options.headless else runner.stop)
            return None
        headers = {"x-token": TOKENS[au_id]} if au_id == 149 else {"Authorization": f"Bearer {TOKENS[au_id]}"}
        with self.client.post(path, data=body, headers=headers, name=path + label, catch_response=True) as response:
            answer = json.loads(response.text, parse_float=Decimal) if response.content else None
            code = answer.get("return", answer.get("code")) if isinstance(answer, dict) else None
            ok = (response.status_code, code) in expected and (response.status_code != 200 or check(answer))
            response.success() if ok else response.failure(f"{response.status_code} {answer}")
            return answer if response.status_code == 200 else None


class Swapper(Budgeted):
    weight = 3

    @task
    def swap(self) -> None:
        """409 32203 is a race lost on every retry, 409 32103 a coins → points swap on too few coins."""
        now = time.time()
        steps = [int(now // STEP) + offset for offset in (-1, 0, 1) if offset or now % STEP < STEP - 5]
        free = [(a, s) for a in RANDOM.sample(ACCOUNTS, len(ACCOUNTS)) for s in steps if s not in USED[a]]
        if not free:
            return time.sleep(0.5)  # every account has used its valid steps: wait for the next one
        (au_id, step), at = free[0], free[0][1] * STEP + 1
        USED[au_id].add(step)  # greenlets: no lock needed
        if RANDOM.random() < 0.1:
            refused = json.dumps(run.swap_body(run.DEMO_OTP_SECRET, 10**9, at))
            self.post(run.SWAP_PATH, refused, au_id, {(409, 32103)}, " (refused on purpose)")
        body = json.dumps(run.swap_body(run.DEMO_OTP_SECRET, RANDOM.randint(1, 200), at, RANDOM.choice((3, 4))))
        answer = self.post(run.SWAP_PATH, body, au_id, {(200, 0), (409, 32103), (409, 32203)}, "", bool)
        if answer:
            SEEN[au_id].append(answer["value"])
            if RANDOM.random() < 0.15:  # the same answer again
                self.post(run.SWAP_PATH, body, au_id, {(200, 0)}, " (identical retry)", answer.__eq__)


class Reader(Budgeted):
    weight, wait_time = 1, between(0.1, 0.3)

    @task
    def progress(self) -> None:
        def listing(answer: Any) -> bool:
            return ([w["idx"] for w in answer["data"]["willsoners"]], answer["data"]["point"]) == EXPECTED

        self.post(run.PROGRESS_PATH, '{"concern_idx":1577}', 149, {(200, "success")}, "", listing)
