"""Concurrent swaps over real HTTP against the local stack, on DynamoDB Local and on the embedded emulator."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyotp
import pytest

from conftest import DEMO_FIXTURE, token
from local_stack import LocalStack, dynamodb_at, moto_server, wait_for_calm_otp_step
from payments.repositories import codec
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

DEMO_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PAYMENTS = Path(sys.executable).with_name("payments")
pytestmark = pytest.mark.local_stack


@pytest.fixture(params=["dynamodb-local", "embedded", "moto-server"])
def stack(request) -> Iterator[tuple[LocalStack, str]]:
    if request.param == "dynamodb-local":
        if not is_installed():
            pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
        # DynamoDB Local serialises transactions itself: requests reach it concurrently
        with (
            DynamoDBLocal() as database,
            LocalStack(
                "--dynamodb-endpoint", database.endpoint, "--fixture", str(DEMO_FIXTURE), "--concurrent-dynamodb"
            ) as local,
        ):
            yield local, database.endpoint
    elif request.param == "moto-server":
        with (
            moto_server() as endpoint,
            LocalStack("--dynamodb-endpoint", endpoint, "--fixture", str(DEMO_FIXTURE)) as local,
        ):
            yield local, endpoint
    else:
        with LocalStack("--fixture", str(DEMO_FIXTURE)) as local:
            line = next(line for line in local.banner if line.startswith("DynamoDB: "))
            yield local, line.split()[1]


def swap_body(code: str, points: int, event_id: int = 3) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "otp_code": code,
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": points},
        "coin": {"coin_id": 2, "adjust_coin_quantity": str(Decimal(-points) / 10)},
    }


def send_all(local: LocalStack, bodies: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    headers = {"Authorization": f"Bearer {token(19)}"}
    raws = [_raw(body) for body in bodies]
    with ThreadPoolExecutor(max_workers=len(raws)) as pool:
        return list(pool.map(lambda raw: local.post("/v1.0/db/swap", raw=raw, headers=headers), raws))


def _raw(body: dict[str, Any]) -> str:
    import json

    text = json.dumps(body)
    amount = body["coin"]["adjust_coin_quantity"]
    return text.replace(f'"{amount}"', amount)


def summary(answers: list[tuple[int, Any]]) -> list[tuple[int, int, Any, Any]]:
    """(status, code, log_id, points moved) of each answer, for readable failures."""
    return [
        (
            status,
            body["return"],
            body.get("value", {}).get("log_id"),
            body.get("value", {}).get("point", {}).get("adjust_point_quantity"),
        )
        for status, body in answers
    ]


def ledger_of(endpoint: str, au_id: int = 19) -> dict[str, dict[str, Any]]:
    client = dynamodb_at(endpoint)
    items = client.query(
        TableName="LedgerTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ACCOUNT#{au_id}"}},
        ConsistentRead=True,
    )["Items"]
    return {item["sk"]: item for item in (codec.from_item(raw) for raw in items)}


def reconcile_exit_code(endpoint: str) -> int:
    return subprocess.run(
        [str(PAYMENTS), "reconcile", "--dynamodb-endpoint", endpoint],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    ).returncode


def test_sixteen_requests_with_the_same_code_move_money_once(stack):
    local, endpoint = stack
    # Given one valid code and 16 different swaps that all carry it
    now = wait_for_calm_otp_step()
    code = pyotp.TOTP(DEMO_SECRET).at(now)
    bodies = [swap_body(code, -10 * (n + 1)) for n in range(16)]
    # When they arrive at once
    answers = send_all(local, bodies)
    # Then exactly one succeeds and the others are told the code was used (or to try again)
    successes = [body for status, body in answers if status == 200]
    assert len(successes) == 1, (summary(answers), ledger_of(endpoint))
    assert sorted({(status, body["return"]) for status, body in answers if status != 200}) in (
        [(409, 32108)],
        [(409, 32108), (409, 32203)],
        [(409, 32203)],
    )
    ledger = ledger_of(endpoint)
    logs = [item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")]
    assert [log["log_id"] for log in logs] == [1]
    moved = successes[0]["value"]["point"]["adjust_point_quantity"]
    assert ledger["POINT#1#1"]["quantity"] == 2100 + moved
    assert ledger["WALLET#2"]["quantity"] == Decimal(-moved) / 10
    assert reconcile_exit_code(endpoint) == 0


def test_concurrent_swaps_over_the_balance_never_overdraw(stack):
    local, endpoint = stack
    # Given 2100 points and the three codes valid now (t-1, t, t+1), four swaps of 800 points per code
    now = wait_for_calm_otp_step()
    totp = pyotp.TOTP(DEMO_SECRET)
    codes = [totp.at(now, counter_offset=offset) for offset in (-1, 0, 1)]
    bodies = [swap_body(code, -800 - n) for code in codes for n in range(4)]
    answers = send_all(local, bodies)
    successes = [body["value"] for status, body in answers if status == 200]
    refusals = sorted({body["return"] for status, body in answers if status != 200})
    # Then the balance allows two: never a negative balance, every success logged once, ids contiguous
    assert len(successes) == 2, (summary(answers), ledger_of(endpoint))
    assert set(refusals) <= {32103, 32108, 32203}
    ledger = ledger_of(endpoint)
    logs = sorted((item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")), key=lambda log: log["log_id"])
    assert [log["log_id"] for log in logs] == [1, 2]
    total_points = sum(value["point"]["adjust_point_quantity"] for value in successes)
    total_coins = sum(Decimal(str(value["coin"]["adjust_coin_quantity"])) for value in successes)
    assert ledger["POINT#1#1"]["quantity"] == 2100 + total_points >= 0
    assert ledger["WALLET#2"]["quantity"] == total_coins
    assert sorted(log["value"]["log_id"] for log in logs) == sorted(value["log_id"] for value in successes)
    assert reconcile_exit_code(endpoint) == 0


def test_sixteen_identical_requests_at_once_all_get_the_one_committed_answer(stack):
    local, endpoint = stack
    # Given one swap request, sent 16 times at the same moment (a client retrying impatiently)
    now = wait_for_calm_otp_step()
    body = swap_body(pyotp.TOTP(DEMO_SECRET).at(now), -110)
    answers = send_all(local, [body] * 16)
    # Then every answer is that one success (or "try again" while it was being decided)
    successes = [answer for answer in answers if answer[0] == 200]
    assert successes, summary(answers)
    assert all(answer == successes[0] for answer in successes), summary(answers)
    assert all(
        answer in (successes[0], (409, {"return": 32203, "message": "Swap conflict, try again"})) for answer in answers
    ), summary(answers)
    # and money moved once, with one log entry
    ledger = ledger_of(endpoint)
    assert [item["log_id"] for sk, item in ledger.items() if sk.startswith("SWAPLOG#")] == [1]
    assert ledger["POINT#1#1"]["quantity"] == 1990
    # a late retry gets the same answer again
    assert local.post("/v1.0/db/swap", raw=_raw(body), headers={"Authorization": f"Bearer {token(19)}"}) == successes[0]
    assert reconcile_exit_code(endpoint) == 0


def test_thirty_wrong_codes_at_once_judge_at_most_five(stack):
    local, endpoint = stack
    now = wait_for_calm_otp_step()
    right = pyotp.TOTP(DEMO_SECRET).at(now)
    wrong = [f"{n:06d}" for n in range(100000, 100030) if f"{n:06d}" != right][:30]
    # When 30 wrong codes for one account arrive at the same moment
    answers = send_all(local, [swap_body(code, -110) for code in wrong])
    codes = [body["return"] for _, body in answers]
    # Then at most five are judged (401 / 32107) and the rest are refused as locked (429 / 32109)
    assert codes.count(32107) == 5, summary(answers)
    assert codes.count(32109) == 25, summary(answers)
    assert {status for status, body in answers if body["return"] == 32109} == {429}
    guard = ledger_of(endpoint)["OTP_GUARD"]
    assert len(guard["failures"]) == 5
    # and no swap commits while the account is locked, even with the right code
    locked = local.post(
        "/v1.0/db/swap", raw=_raw(swap_body(right, -110)), headers={"Authorization": f"Bearer {token(19)}"}
    )
    assert locked == (429, {"return": 32109, "message": "Too many OTP attempts"})
    assert not any(sk.startswith("SWAPLOG#") for sk in ledger_of(endpoint))


@pytest.mark.parametrize("backend", ["dynamodb-local", "moto-server"])
def test_serve_killed_mid_burst_then_every_request_retried(backend):
    with _database(backend) as endpoint:
        extra = ("--concurrent-dynamodb",) if backend == "dynamodb-local" else ()
        now = wait_for_calm_otp_step(margin=12.0)
        totp = pyotp.TOTP(DEMO_SECRET)
        bodies = [swap_body(totp.at(now, counter_offset=offset), -100 - n) for offset in (-1, 0, 1) for n in range(4)]
        first_round: list[Any] = []
        # When serve is killed (SIGKILL) while the burst is in flight
        with (
            LocalStack("--dynamodb-endpoint", endpoint, "--fixture", str(DEMO_FIXTURE), *extra) as local,
            ThreadPoolExecutor(max_workers=len(bodies)) as pool,
        ):
            futures = [pool.submit(_post_or_error, local, body) for body in bodies]
            time.sleep(0.15)
            local.kill()
            first_round = [future.result() for future in futures]
        # and restarted on the same database (no fixture: a restart never resets data)
        with LocalStack("--dynamodb-endpoint", endpoint, *extra) as local:
            retried = [_post_or_error(local, body) for body in bodies]
        # Then every request that had an answer gets the same answer if it was a success...
        for before, after in zip(first_round, retried, strict=True):
            if before is not None and before[0] == 200:
                assert after == before, (first_round, retried)
        # ...and every committed swap is reported as a success to its retry, each exactly once
        ledger = ledger_of(endpoint)
        logs = sorted((item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")), key=lambda log: log["log_id"])
        assert [log["log_id"] for log in logs] == list(range(1, len(logs) + 1))
        reported = [after[1]["value"] for after in retried if after is not None and after[0] == 200]
        assert sorted(value["log_id"] for value in reported) == [log["log_id"] for log in logs]
        assert ledger["POINT#1#1"]["quantity"] == 2100 + sum(
            log["value"]["point"]["adjust_point_quantity"] for log in logs
        )
        assert all(after is not None and after[0] < 500 for after in retried), retried
        assert reconcile_exit_code(endpoint) == 0


def _post_or_error(local: LocalStack, body: dict[str, Any]) -> tuple[int, Any] | None:
    try:
        return local.post("/v1.0/db/swap", raw=_raw(body), headers={"Authorization": f"Bearer {token(19)}"})
    except (OSError, http.client.HTTPException):
        return None  # the connection died with serve


@contextmanager
def _database(backend: str) -> Iterator[str]:
    if backend == "dynamodb-local":
        if not is_installed():
            pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
        with DynamoDBLocal() as database:
            yield database.endpoint
    else:
        with moto_server() as endpoint:
            yield endpoint
