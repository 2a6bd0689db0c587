"""Locust load of the local stack: swaps on many dashboard accounts, payment-progress reads beside them.

Run through bench/soak.py (`make soak` headless, `make soak-ui` with Locust's web UI on loopback),
which starts the stack, writes SOAK_ACCOUNTS and checks conservation from the database afterwards.

- A swap claims, for one account, an OTP step that is valid now and never used (t−1 while safely
  valid, t, t+1), so every success is legitimate; two users may swap the same account at once (a
  real race). 10 % of swaps are first refused on purpose (more points than anyone has: 32103, no
  step consumed); 15 % of successes are sent again byte for byte (same answer, nothing moved).
- Bounded: at most SOAK_MAX_REQUESTS requests, then the run stops (and at Locust's --run-time).
- At the end (test_stop) every success the clients saw is written to SOAK_RESULTS.
"""

from __future__ import annotations

import json
import os
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyotp
from locust import HttpUser, between, events, task

SWAP_PATH, PROGRESS_PATH, STEP = "/v1.0/db/swap", "/api/v1/asker/payment/progress", 30
EXPECTED_LISTING = [15, 12, 18]  # demo data: concern 1577, ranked by rating, unrated last
ACCOUNTS: list[dict[str, Any]] = json.loads(Path(os.environ["SOAK_ACCOUNTS"]).read_text(encoding="utf-8"))
MAX_REQUESTS = int(os.environ.get("SOAK_MAX_REQUESTS", "3000"))
USED: dict[int, set[int]] = {account["au_id"]: set() for account in ACCOUNTS}
SUCCESSES: dict[int, list[Any]] = {account["au_id"]: [] for account in ACCOUNTS}
SENT = {"requests": 0}
RANDOM = random.Random(int(os.environ.get("SOAK_SEED", "6")))


def claim() -> tuple[dict[str, Any], int] | None:
    """An account and an OTP step of it that is valid now and was never tried (greenlets: no lock needed)."""
    now = time.time()
    current = int(now // STEP)
    steps = ([current - 1] if now % STEP < STEP - 5 else []) + [current, current + 1]
    for account in RANDOM.sample(ACCOUNTS, len(ACCOUNTS)):
        for step in steps:
            if step not in USED[account["au_id"]]:
                USED[account["au_id"]].add(step)
                return account, step
    return None


def swap_body(account: dict[str, Any], step: int, event_id: int, points: int) -> str:
    coins = Decimal("0.1") * points
    point, coin = (-points, coins) if event_id == 3 else (points, -coins)
    return (
        f'{{"event_id":{event_id},"otp_code":"{pyotp.TOTP(account["secret"]).at(step * STEP + 1)}",'
        f'"point":{{"app_id":1,"point_id":1,"adjust_point_quantity":{point}}},'
        f'"coin":{{"coin_id":2,"adjust_coin_quantity":{coin}}}}}'
    )


class Budgeted(HttpUser):
    abstract = True
    wait_time = between(0.02, 0.1)

    def spend(self) -> bool:
        SENT["requests"] += 1
        if SENT["requests"] > MAX_REQUESTS:
            runner = self.environment.runner
            runner.quit() if os.environ.get("SOAK_HEADLESS") else runner.stop()
            return False
        return True

    def post(
        self, path: str, raw: str, headers: dict[str, str], expected: set[tuple[int, Any]], label: str = ""
    ) -> tuple[int, Any]:
        with self.client.post(
            path,
            data=raw.encode(),
            headers={"Content-Type": "application/json", **headers},
            name=path + label,
            catch_response=True,
        ) as response:
            body = response.json() if response.content else None
            code = body.get("return", body.get("code")) if isinstance(body, dict) else None
            if (response.status_code, code) in expected:
                response.success()
            else:
                response.failure(f"{response.status_code} {str(body)[:200]}")
            return response.status_code, body


class Swapper(Budgeted):
    weight = 3

    @task
    def swap(self) -> None:
        claimed = claim()
        if claimed is None:
            time.sleep(0.5)  # every account has used the valid steps: wait for the next one
            return
        account, step = claimed
        headers = {"Authorization": f"Bearer {account['token']}"}
        if RANDOM.random() < 0.1 and self.spend():
            self.post(SWAP_PATH, swap_body(account, step, 3, 10**9), headers, {(409, 32103)}, " (refused on purpose)")
        if not self.spend():
            return
        raw = swap_body(account, step, RANDOM.choice((3, 4)), RANDOM.randint(1, 200))
        # 409 32103: not enough coins for a coin → point swap; 32203: lost every retry of a race
        status, body = self.post(SWAP_PATH, raw, headers, {(200, 0), (409, 32103), (409, 32203)})
        if status == 200:
            SUCCESSES[account["au_id"]].append(body["value"])
            if RANDOM.random() < 0.15 and self.spend():
                again = self.post(SWAP_PATH, raw, headers, {(200, 0)}, " (identical retry)")
                if again != (status, body):
                    events.request.fire(
                        request_type="CHECK",
                        name="identical retry",
                        response_time=0,
                        response_length=0,
                        exception=AssertionError(f"retry answered {again}"),
                    )


class Reader(Budgeted):
    weight = 1
    wait_time = between(0.1, 0.3)

    @task
    def progress(self) -> None:
        if not self.spend():
            return
        headers = {"x-token": os.environ["SOAK_READER_TOKEN"]}
        status, body = self.post(PROGRESS_PATH, '{"concern_idx":1577}', headers, {(200, "success")})
        if status == 200 and (
            [w["idx"] for w in body["data"]["willsoners"]] != EXPECTED_LISTING
            or body["data"]["point"] != {"honeypot": "280개"}
        ):
            events.request.fire(
                request_type="CHECK",
                name="payment progress content",
                response_time=0,
                response_length=0,
                exception=AssertionError(str(body)[:200]),
            )


@events.test_stop.add_listener
def write_results(**_: Any) -> None:
    Path(os.environ["SOAK_RESULTS"]).write_text(json.dumps(SUCCESSES, default=str), encoding="utf-8")
