"""Concurrent swaps over real HTTP against the local stack, on DynamoDB Local and on the embedded emulator."""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import boto3
import pyotp
import pytest

from conftest import DEMO_FIXTURE, token
from local_stack import LocalStack, moto_server, wait_for_calm_otp_step
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
        with DynamoDBLocal() as database:
            with LocalStack("--dynamodb-endpoint", database.endpoint, "--fixture", str(DEMO_FIXTURE),
                            "--concurrent-dynamodb") as local:
                yield local, database.endpoint
    elif request.param == "moto-server":
        with moto_server() as endpoint:
            with LocalStack("--dynamodb-endpoint", endpoint, "--fixture", str(DEMO_FIXTURE)) as local:
                yield local, endpoint
    else:
        with LocalStack("--fixture", str(DEMO_FIXTURE)) as local:
            line = next(line for line in local.banner if line.startswith("DynamoDB: "))
            yield local, line.split()[1]


def swap_body(code: str, points: int, event_id: int = 3) -> dict[str, Any]:
    return {"event_id": event_id, "otp_code": code,
            "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": points},
            "coin": {"coin_id": 2, "adjust_coin_quantity": str(Decimal(-points) / 10)}}


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
    return [(status, body["return"], body.get("value", {}).get("log_id"),
             body.get("value", {}).get("point", {}).get("adjust_point_quantity")) for status, body in answers]


def ledger_of(endpoint: str, au_id: int = 19) -> dict[str, dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    items = client.query(TableName="LedgerTable", KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": f"ACCOUNT#{au_id}"}}, ConsistentRead=True)["Items"]
    return {item["sk"]: item for item in (codec.from_item(raw) for raw in items)}


def reconcile_exit_code(endpoint: str) -> int:
    return subprocess.run([str(PAYMENTS), "reconcile", "--dynamodb-endpoint", endpoint], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "local",
                                          "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}).returncode


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
        [(409, 32108)], [(409, 32108), (409, 32203)], [(409, 32203)])
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
