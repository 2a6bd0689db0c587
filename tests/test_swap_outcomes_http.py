"""Swap outcomes over HTTP with DynamoDB's answers dropped on the wire, and DynamoDB requests counted.

`payments serve` talks to DynamoDB Local or moto's server through payments_cli.dynamodb_proxy,
which counts every request and, when armed, forwards a request and then resets the connection
instead of answering: the call happened, its caller cannot know.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import pyotp
import pytest

from conftest import DEMO_FIXTURE, token
from local_stack import LocalStack, moto_server, wait_for_calm_otp_step
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed
from payments_cli.dynamodb_proxy import DynamoDBProxy
from test_swap_concurrency import DEMO_SECRET, _raw, ledger_of, reconcile_exit_code, swap_body

pytestmark = pytest.mark.local_stack
UNKNOWN = (500, {"return": 32202, "message": "Unknown swap error"})


@pytest.fixture(params=["dynamodb-local", "moto-server"])
def proxied(request) -> Iterator[tuple[LocalStack, DynamoDBProxy, str]]:
    """serve → counting, fault-injecting proxy → the database (moto's server one request at a time)."""
    if request.param == "dynamodb-local":
        if not is_installed():
            pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
        with DynamoDBLocal() as database:
            yield from _stack(database.endpoint, serialise=False)
    else:
        with moto_server() as endpoint:
            yield from _stack(endpoint, serialise=True)


def _stack(endpoint: str, serialise: bool) -> Iterator[tuple[LocalStack, DynamoDBProxy, str]]:
    proxy = DynamoDBProxy(endpoint, serialise=serialise).start()
    try:
        with LocalStack("--dynamodb-endpoint", proxy.endpoint, "--fixture", str(DEMO_FIXTURE),
                        "--concurrent-dynamodb") as local:
            proxy.reset()
            yield local, proxy, endpoint
    finally:
        proxy.stop()


def post(local: LocalStack, body: dict[str, Any]) -> tuple[int, Any]:
    return local.post("/v1.0/db/swap", raw=_raw(body), headers={"Authorization": f"Bearer {token(19)}"})


def expected_success(body: dict[str, Any]) -> tuple[int, Any]:
    points = body["point"]["adjust_point_quantity"]
    coins = Decimal(body["coin"]["adjust_coin_quantity"])
    return 200, {"return": 0, "message": "success", "value": {
        "au_id": 19,
        "point": {"mu_id": 28, "app_id": 1, "database_id": 1, "point_id": 1, "previous_point_quantity": 2100,
                  "adjust_point_quantity": points, "point_quantity": 2100 + points},
        "coin": {"coin_id": 2, "walletaddress": "0x0cE183FBE350BE042c9F456Da78CfADAA5Cf1225",
                 "previous_coin_quantity": 0, "adjust_coin_quantity": int(coins), "coin_quantity": int(coins)},
        "log_id": 1,
        "event_id": 3,
    }}


def test_dynamodb_requests_per_swap(proxied):
    local, proxy, _ = proxied
    code = pyotp.TOTP(DEMO_SECRET).at(wait_for_calm_otp_step())
    body = swap_body(code, -110)
    # a success: one strongly consistent read of everything, one transaction
    assert post(local, body) == expected_success(body)
    assert proxy.stats()["requests"] == {"BatchGetItem": 1, "TransactWriteItems": 1}
    # a replay: the read alone
    proxy.reset()
    assert post(local, body) == expected_success(body)
    assert proxy.stats()["requests"] == {"BatchGetItem": 1}
    # a refusal at the balances step: the read alone
    proxy.reset()
    refused = post(local, swap_body(pyotp.TOTP(DEMO_SECRET).at(wait_for_calm_otp_step(), counter_offset=1), -30000))
    assert refused == (409, {"return": 32103, "message": "point quantity is invalid"})
    assert proxy.stats()["requests"] == {"BatchGetItem": 1}


def test_lost_answers_of_a_committed_transaction_are_resolved_before_answering(proxied):
    local, proxy, endpoint = proxied
    body = swap_body(pyotp.TOTP(DEMO_SECRET).at(wait_for_calm_otp_step()), -110)
    # Given the transaction reaches the database and commits, but its answer (and botocore's
    # resend's) never comes back
    proxy.arm("TransactWriteItems", drop_answer=2)
    # When the swap is sent once, it finds out for itself, and answers the truth
    assert post(local, body) == expected_success(body)
    assert proxy.stats()["dropped_answers"] == {"TransactWriteItems": 2}
    ledger = ledger_of(endpoint)
    assert [sk for sk in ledger if sk.startswith("SWAPLOG#")] == ["SWAPLOG#00000000000000000001"]
    assert ledger["POINT#1#1"]["quantity"] == 1990
    assert reconcile_exit_code(endpoint) == 0


def test_an_unknowable_outcome_is_32202_and_the_late_retry_gets_the_committed_answer(proxied):
    local, proxy, endpoint = proxied
    body = swap_body(pyotp.TOTP(DEMO_SECRET).at(wait_for_calm_otp_step()), -110)
    # Given every answer to the transaction is lost, and after the first read the database
    # cannot be reached at all
    proxy.arm("TransactWriteItems", drop_answer=100)
    proxy.arm("BatchGetItem", drop_request=100, after=1)
    proxy.arm("GetItem", drop_request=100)
    # When the swap is sent, it cannot tell: it says so, never "failed"
    assert post(local, body) == UNKNOWN
    assert ledger_of(endpoint)["POINT#1#1"]["quantity"] == 1990  # it did commit
    # Then, the network back, the client's retry gets the committed answer, and nothing moves twice
    proxy.reset()
    assert post(local, body) == expected_success(body)
    assert proxy.stats()["requests"] == {"BatchGetItem": 1}
    ledger = ledger_of(endpoint)
    assert [sk for sk in ledger if sk.startswith("SWAPLOG#")] == ["SWAPLOG#00000000000000000001"]
    assert reconcile_exit_code(endpoint) == 0


def test_a_request_lost_on_its_way_is_judged_again_by_the_retry(proxied):
    local, proxy, endpoint = proxied
    body = swap_body(pyotp.TOTP(DEMO_SECRET).at(wait_for_calm_otp_step()), -110)
    # Given the transaction never reaches the database (every attempt), nor do the reads after it
    proxy.arm("TransactWriteItems", drop_request=100)
    proxy.arm("BatchGetItem", drop_request=100, after=1)
    assert post(local, body) == UNKNOWN
    assert not any(sk.startswith("SWAPLOG#") for sk in ledger_of(endpoint))
    # Then the retry is judged afresh, and commits once
    proxy.reset()
    assert post(local, body) == expected_success(body)
    assert ledger_of(endpoint)["POINT#1#1"]["quantity"] == 1990
