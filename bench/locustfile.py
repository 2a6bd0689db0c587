"""`make soak` / `make soak-ui`: Locust against the local stack on loopback, then the conservation check.

    .venv/bin/locust -f bench/locustfile.py --headless -u 12 -r 6 -t 60s [--accounts 40] [--max-requests 3000]
                     [--backend dynamodb-local|embedded]            (or --web-host 127.0.0.1 for the web UI)

At init it starts `payments serve` (--concurrent-dynamodb in front of DynamoDB Local, or its embedded emulator)
with the demo data plus N dashboard accounts (own TOTP secret, 10,000 points, 100.5 coins). Swappers claim, per
account, an OTP step valid now and never used (two users may race on one account); 10 % are first refused on
purpose (32103), 15 % of successes are sent again byte for byte; readers ask for payment progress. At most
--max-requests requests. When Locust quits, from the database itself: for every account initial + Σ logged
adjustments = final balance (points and coins), log ids contiguous from 1 and exactly the successes the clients
saw, `reconcile` clean; a broken check, like any failed request, makes Locust exit 1.
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

from locust import HttpUser, between, events, task

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]
import common  # noqa: E402

common.use_test_env(POWERTOOLS_LOG_LEVEL="ERROR")
import pyotp  # noqa: E402

POINTS, COINS, STEP, LISTING = 10_000, Decimal("100.5"), 30, [15, 12, 18]  # demo concern 1577: rated, unrated last
ACCOUNTS: list[dict[str, Any]] = []
USED: dict[int, set[int]] = defaultdict(set)
SEEN: dict[int, list[int]] = defaultdict(list)
RUN: dict[str, Any] = {"sent": 0, "random": random.Random(6)}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--accounts", type=int, default=40, help="dashboard accounts swapped")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests at most, then the test stops")
    parser.add_argument("--backend", choices=("dynamodb-local", "embedded"), default="dynamodb-local")


@events.init.add_listener
def _start(environment: Any, **_: Any) -> None:
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal

    options, RUN["dir"] = environment.parsed_options, tempfile.TemporaryDirectory(prefix="soak-")
    first = 10_001
    RUN["reader"] = common.token(149)
    ACCOUNTS.extend(
        {"au_id": n, "secret": pyotp.random_base32(), "token": common.token(n)}
        for n in range(first, first + options.accounts)
    )
    fixture = json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8"))
    fixture["accounts"] += [common.account(a["au_id"], a["secret"], POINTS, str(COINS)) for a in ACCOUNTS]
    path = Path(RUN["dir"].name) / "fixture.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    serve = ["--fixture", str(path)]
    if options.backend == "dynamodb-local":
        RUN["database"] = DynamoDBLocal().start()
        serve += ["--dynamodb-endpoint", RUN["database"].endpoint, "--concurrent-dynamodb"]
    RUN["stack"] = stack = LocalStack(*serve).start()
    environment.host = f"http://127.0.0.1:{stack.port}"
    print(f"soak: {len(ACCOUNTS)} accounts, ≤ {options.max_requests} requests, {options.backend}, {environment.host}")


@events.quitting.add_listener
def _check(environment: Any, **_: Any) -> None:
    import boto3

    from payments.repositories import codec
    from payments_cli.reconcile import reconcile

    environment.runner.stop()
    client = boto3.client("dynamodb", endpoint_url=RUN["stack"].dynamodb_endpoint)
    pages = client.get_paginator("scan").paginate(TableName="LedgerTable", ConsistentRead=True)
    items = [codec.from_item(item) for page in pages for item in page["Items"]]
    problems = [f"reconcile: {problem}" for problem in reconcile(items).problems]
    for account in ACCOUNTS:
        mine = {i["sk"]: i for i in items if i["pk"] == f"ACCOUNT#{account['au_id']}"}
        logs = sorted((i for sk, i in mine.items() if sk.startswith("SWAPLOG#")), key=lambda log: int(log["log_id"]))
        ids = [int(log["log_id"]) for log in logs]
        points = sum(int(log["value"]["point"]["adjust_point_quantity"]) for log in logs)
        coins = sum((Decimal(log["value"]["coin"]["adjust_coin_quantity"]) for log in logs), Decimal(0))
        checks = {
            f"log ids {ids} not contiguous from 1": ids == list(range(1, len(ids) + 1)),
            f"logged ids differ from the successes answered {sorted(SEEN[account['au_id']])}": ids
            == sorted(SEEN[account["au_id"]]),
            "initial + logged points != final": POINTS + points == int(mine["POINT#1#1"]["quantity"]),
            "initial + logged coins != final": COINS + coins == Decimal(mine["WALLET#2"]["quantity"]),
        }
        problems += [f"au_id {account['au_id']}: {message}" for message, ok in checks.items() if not ok]
    RUN["stack"].stop()
    if "database" in RUN:
        RUN["database"].stop()
    successes = sum(map(len, SEEN.values()))
    print(f"\nconservation: {len(ACCOUNTS)} accounts, {successes} successful swaps seen by the clients; initial + Σ")
    print(
        f"logged adjustments = final, log ids contiguous, reconcile clean: {'FAILED' if problems else 'OK'}",
        *problems[:50],
        sep="\n  ",
    )
    failures = environment.runner.stats.total.num_failures
    print(f"Locust: {failures} failed requests (5xx or an answer not as expected)")
    environment.process_exit_code = 1 if problems or failures else 0


class Budgeted(HttpUser):
    abstract = True
    wait_time = between(0.02, 0.1)

    def post(
        self, path: str, raw: str, headers: dict[str, str], expected: set[Any], label: str = ""
    ) -> tuple[int, Any]:
        RUN["sent"] += 1
        if RUN["sent"] > self.environment.parsed_options.max_requests:
            runner = self.environment.runner
            runner.quit() if self.environment.parsed_options.headless else runner.stop()
            return 0, None
        with self.client.post(
            path, data=raw.encode(), headers=headers, name=path + label, catch_response=True
        ) as response:
            body = response.json() if response.content else None
            code = body.get("return", body.get("code")) if isinstance(body, dict) else None
            response.success() if (response.status_code, code) in expected else response.failure(
                f"{response.status_code} {body}"
            )
            return response.status_code, body


class Swapper(Budgeted):
    weight = 3

    def claim(self) -> tuple[dict[str, Any], int] | None:
        """An account and an OTP step of it valid now and never tried (greenlets: no lock needed)."""
        now = time.time()
        steps = [int(now // STEP) + offset for offset in (-1, 0, 1) if offset or now % STEP < STEP - 5]
        for account in RUN["random"].sample(ACCOUNTS, len(ACCOUNTS)):
            for step in (s for s in steps if s not in USED[account["au_id"]]):
                USED[account["au_id"]].add(step)
                return account, step
        return None

    @task
    def swap(self) -> None:
        rnd, claimed = RUN["random"], self.claim()
        if claimed is None:
            return time.sleep(0.5)  # every account has used its valid steps: wait for the next one
        account, step = claimed
        headers = {"Authorization": f"Bearer {account['token']}"}
        if rnd.random() < 0.1:
            body = common.swap_body(account["secret"], 10**9, step * STEP + 1)
            self.post(common.SWAP_PATH, json.dumps(body), headers, {(409, 32103)}, " (refused on purpose)")
        body = common.swap_body(account["secret"], rnd.randint(1, 200), step * STEP + 1)
        if rnd.random() < 0.5:  # coins → points: 409 32103 when the account has too few coins
            body.update(
                event_id=4, point={**body["point"], "adjust_point_quantity": -body["point"]["adjust_point_quantity"]}
            )
            body["coin"]["adjust_coin_quantity"] *= -1
        raw = json.dumps(body)  # 409 32203: a race that lost every retry
        status, answer = self.post(common.SWAP_PATH, raw, headers, {(200, 0), (409, 32103), (409, 32203)})
        if status == 200:
            SEEN[account["au_id"]].append(int(answer["value"]["log_id"]))
            if rnd.random() < 0.15:
                again = self.post(common.SWAP_PATH, raw, headers, {(200, 0)}, " (identical retry)")
                if again[0] and again != (status, answer):
                    fail("identical retry", again)


class Reader(Budgeted):
    weight, wait_time = 1, between(0.1, 0.3)

    @task
    def progress(self) -> None:
        status, body = self.post(
            common.PROGRESS_PATH, '{"concern_idx":1577}', {"x-token": RUN["reader"]}, {(200, "success")}
        )
        if status == 200 and (
            [w["idx"] for w in body["data"]["willsoners"]] != LISTING or body["data"]["point"] != {"honeypot": "280개"}
        ):
            fail("payment progress content", body)


def fail(check: str, answer: Any) -> None:
    error = AssertionError(str(answer)[:200])
    events.request.fire(request_type="CHECK", name=check, response_time=0, response_length=0, exception=error)
