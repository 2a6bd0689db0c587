"""`make soak` / `make soak-ui`: Locust against `payments serve --concurrent-dynamodb` and DynamoDB Local, on
loopback, bounded in users, time (Locust's options) and requests (--max-requests), then the conservation check.

Swappers claim an account's OTP step valid now and never used (two users may race on one account); 10 % are first
refused on purpose, 15 % of successes sent again byte for byte; readers ask for payment progress. When Locust
quits: for every account initial + Σ logged adjustments = final balance, log ids contiguous from 1 and exactly the
successes the clients saw, `reconcile` clean. A broken check, like any failed request, makes Locust exit 1.
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
import common  # noqa: E402

common.use_test_env(POWERTOOLS_LOG_LEVEL="ERROR")
import pyotp  # noqa: E402

POINTS, COINS, STEP = 10_000, Decimal("100.5"), 30
EXPECTED = ([15, 12, 18], {"honeypot": "280개"})  # the demo data's answer to caller 149 on concern 1577
ACCOUNTS: list[dict[str, Any]] = []
USED: dict[int, set[int]] = defaultdict(set)
SEEN: dict[int, list[Any]] = defaultdict(list)  # the value of every success answered, per account
RUN: dict[str, Any] = {"sent": 0, "random": random.Random(6)}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--max-requests", type=int, default=3000, help="requests at most, then the test stops")


@events.init.add_listener
def _start(environment: Any, **_: Any) -> None:
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal

    RUN.update(reader=common.token(149), dir=tempfile.TemporaryDirectory(prefix="soak-"))
    for au_id in range(10_001, 10_001 + 40):
        ACCOUNTS.append({"au_id": au_id, "secret": pyotp.random_base32(), "token": common.token(au_id)})
    fixture = json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] += [common.account(a["au_id"], a["secret"], POINTS, str(COINS)) for a in ACCOUNTS]
    (path := Path(RUN["dir"].name) / "fixture.json").write_text(json.dumps(fixture, ensure_ascii=False), "utf-8")
    RUN["database"] = DynamoDBLocal().start()
    serve = ["--fixture", str(path), "--dynamodb-endpoint", RUN["database"].endpoint, "--concurrent-dynamodb"]
    RUN["stack"] = LocalStack(*serve).start()
    environment.host = f"http://127.0.0.1:{RUN['stack'].port}"
    print(f"soak: {len(ACCOUNTS)} accounts, at most {environment.parsed_options.max_requests} requests")


@events.quitting.add_listener
def _check(environment: Any, **_: Any) -> None:
    """The database against the successes the clients saw: reconcile (log ids contiguous from 1, every balance's
    chain of logs ending at its balance), as many logs as successes, initial + Σ adjustments answered = final."""
    import boto3

    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository
    from payments_cli.reconcile import reconcile

    environment.runner.stop()
    client, settings = boto3.client("dynamodb", endpoint_url=RUN["database"].endpoint), get_settings()
    items = list(LedgerRepository(client, settings.ledger_table, settings.otp_secret_table).iter_ledger_items())
    report, successes = reconcile(items), sum(map(len, SEEN.values()))
    stored = {
        (i["au_id"], i["entity"]): Decimal(i["quantity"]) for i in items if i.get("entity") in ("point", "wallet")
    }
    problems = report.problems + ([] if report.swap_logs == successes else [f"{report.swap_logs} swap logs"])
    for au_id, values in ((a["au_id"], SEEN[a["au_id"]]) for a in ACCOUNTS):
        points = POINTS + sum(value["point"]["adjust_point_quantity"] for value in values)
        coins = COINS + sum(value["coin"]["adjust_coin_quantity"] for value in values)
        if (points, coins) != (stored[(au_id, "point")], stored[(au_id, "wallet")]):
            problems.append(f"au_id {au_id}: initial + Σ answered = {points} points, {coins} coins; stored differ")
    RUN["stack"].stop(), RUN["database"].stop()
    failures, verdict = environment.runner.stats.total.num_failures, "FAILED" if problems else "OK"
    print(f"\nconservation: {len(ACCOUNTS)} accounts, {successes} successful swaps seen by the clients, reconcile")
    print(f"clean, as many logs, initial + Σ answered adjustments = final balance: {verdict}", *problems[:50], sep="\n")
    print(f"Locust: {failures} failed requests (5xx or an answer not as expected)")
    environment.process_exit_code = 1 if problems or failures else 0


class Budgeted(HttpUser):
    abstract, wait_time = True, between(0.02, 0.1)

    def post(
        self, path: str, body: Any, headers: dict[str, str], expected: set[Any], label: str = "", check: Any = None
    ) -> Any:
        """Sends unless the request budget is spent; a success is an expected (status, code) passing `check`."""
        RUN["sent"], budget = RUN["sent"] + 1, self.environment.parsed_options.max_requests
        if RUN["sent"] > budget:  # spent: the test stops, from outside the users' greenlets
            if RUN["sent"] == budget + 1:
                runner = self.environment.runner
                gevent.spawn(runner.quit if self.environment.parsed_options.headless else runner.stop)
            return None
        with self.client.post(path, data=body, headers=headers, name=path + label, catch_response=True) as response:
            answer = json.loads(response.text, parse_float=Decimal) if response.content else None
            code = answer.get("return", answer.get("code")) if isinstance(answer, dict) else None
            ok = (response.status_code, code) in expected and (
                response.status_code != 200 or not check or check(answer)
            )
            response.success() if ok else response.failure(f"{response.status_code} {answer}")
            return answer if response.status_code == 200 else None


class Swapper(Budgeted):
    weight = 3

    @task
    def swap(self) -> None:
        """On an account, an OTP step valid now and never tried (greenlets: no lock needed); 409 32203 is a race
        lost on every retry, 409 32103 a coins → points swap on too few coins."""
        now, rnd = time.time(), RUN["random"]
        steps = [int(now // STEP) + offset for offset in (-1, 0, 1) if offset or now % STEP < STEP - 5]
        free = [(a, s) for a in rnd.sample(ACCOUNTS, len(ACCOUNTS)) for s in steps if s not in USED[a["au_id"]]]
        if not free:
            return time.sleep(0.5)  # every account has used its valid steps: wait for the next one
        (account, step), headers = free[0], {"Authorization": f"Bearer {free[0][0]['token']}"}
        USED[account["au_id"]].add(step)
        if rnd.random() < 0.1:
            refused = json.dumps(common.swap_body(account["secret"], 10**9, step * STEP + 1))
            self.post(common.SWAP_PATH, refused, headers, {(409, 32103)}, " (refused on purpose)")
        body = json.dumps(common.swap_body(account["secret"], rnd.randint(1, 200), step * STEP + 1, rnd.choice((3, 4))))
        answer = self.post(common.SWAP_PATH, body, headers, {(200, 0), (409, 32103), (409, 32203)})
        if answer:
            SEEN[account["au_id"]].append(answer["value"])
            if rnd.random() < 0.15:  # the same answer again
                self.post(common.SWAP_PATH, body, headers, {(200, 0)}, " (identical retry)", answer.__eq__)


class Reader(Budgeted):
    weight, wait_time = 1, between(0.1, 0.3)

    @task
    def progress(self) -> None:
        def listing(answer: Any) -> bool:
            return ([w["idx"] for w in answer["data"]["willsoners"]], answer["data"]["point"]) == EXPECTED

        self.post(
            common.PROGRESS_PATH, '{"concern_idx":1577}', {"x-token": RUN["reader"]}, {(200, "success")}, "", listing
        )
