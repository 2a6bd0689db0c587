"""Concurrent swaps over real HTTP against the local stack, on DynamoDB Local, the embedded emulator and moto's server.

One `payments serve` per backend for the module's burst tests, each test on an account of its own (2100 points, the
demo authenticator secret); the crash test starts its own, twice.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pyotp
import pytest

from conftest import DEMO_FIXTURE, demo_fixture
from helpers import DEMO_SECRET, account_items, exact_json, rated_swap_body, token, wait_for_calm_otp_step
from helpers.ledger import reconciliation_problems
from helpers.processes import LocalStack, dynamodb_at, moto_server
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

pytestmark = pytest.mark.local_stack
BURST_ACCOUNTS = (20, 21, 22, 23)  # one per burst test, beside the demo's account 19
swap_body = rated_swap_body


class Backend(NamedTuple):
    local: LocalStack
    endpoint: str
    accounts: Iterator[int]


@pytest.fixture(scope="module")
def burst_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data and BURST_ACCOUNTS, each a copy of the demo's dashboard account 19."""
    fixture = demo_fixture()
    [demo] = [account for account in fixture["accounts"] if account["au_id"] == 19]
    for au_id in BURST_ACCOUNTS:
        fixture["accounts"].append(
            {
                **demo,
                "au_id": au_id,
                "points": [{**demo["points"][0], "mu_id": 100_000 + au_id}],
                "wallets": [{**demo["wallets"][0], "walletaddress": f"0xfa{au_id:038x}"}],
            }
        )
    path = tmp_path_factory.mktemp("burst") / "fixture.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["dynamodb-local", "embedded", "moto-server"])
def backend(request: pytest.FixtureRequest, burst_fixture: Path) -> Iterator[Backend]:
    with ExitStack() as stack:
        fixture = ("--fixture", str(burst_fixture))
        if request.param == "dynamodb-local":
            if not is_installed():
                pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
            # DynamoDB Local serialises transactions itself: requests reach it concurrently
            endpoint = stack.enter_context(DynamoDBLocal()).endpoint
            local = stack.enter_context(LocalStack("--dynamodb-endpoint", endpoint, *fixture, "--concurrent-dynamodb"))
        elif request.param == "moto-server":
            endpoint = stack.enter_context(moto_server())
            local = stack.enter_context(LocalStack("--dynamodb-endpoint", endpoint, *fixture))
        else:
            local = stack.enter_context(LocalStack(*fixture))
            endpoint = local.dynamodb_endpoint
        yield Backend(local, endpoint, iter(BURST_ACCOUNTS))


@pytest.fixture
def stack(backend: Backend) -> tuple[LocalStack, str, int]:
    """The backend's serve, its DynamoDB endpoint, and an account no test of this backend used."""
    return backend.local, backend.endpoint, next(backend.accounts)


def send_all(local: LocalStack, bodies: list[dict[str, Any]], au_id: int) -> list[tuple[int, Any]]:
    headers = {"Authorization": f"Bearer {token(au_id)}"}
    raws = [exact_json(body) for body in bodies]
    with ThreadPoolExecutor(max_workers=len(raws)) as pool:
        return list(pool.map(lambda raw: local.post("/v1.0/db/swap", raw=raw, headers=headers), raws))


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


def ledger_of(endpoint: str, au_id: int) -> dict[str, dict[str, Any]]:
    return account_items(dynamodb_at(endpoint), au_id)


def reconciled(endpoint: str) -> bool:
    return reconciliation_problems(dynamodb_at(endpoint)) == []


def test_sixteen_requests_with_the_same_code_move_money_once(stack):
    local, endpoint, au_id = stack
    # Given one valid code and 16 different swaps that all carry it
    now = wait_for_calm_otp_step()
    code = pyotp.TOTP(DEMO_SECRET).at(now)
    bodies = [swap_body(code, -10 * (n + 1)) for n in range(16)]
    # When they arrive at once
    answers = send_all(local, bodies, au_id)
    # Then exactly one succeeds and the others are told the code was used (or to try again)
    successes = [body for status, body in answers if status == 200]
    assert len(successes) == 1, (summary(answers), ledger_of(endpoint, au_id))
    assert sorted({(status, body["return"]) for status, body in answers if status != 200}) in (
        [(409, 32108)],
        [(409, 32108), (409, 32203)],
        [(409, 32203)],
    )
    ledger = ledger_of(endpoint, au_id)
    logs = [item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")]
    assert [log["log_id"] for log in logs] == [1]
    moved = successes[0]["value"]["point"]["adjust_point_quantity"]
    assert ledger["POINT#1#1"]["quantity"] == 2100 + moved
    assert ledger["WALLET#2"]["quantity"] == Decimal(-moved) / 10
    assert reconciled(endpoint)


def test_concurrent_swaps_over_the_balance_never_overdraw(stack):
    local, endpoint, au_id = stack
    # Given 2100 points and the three codes valid now (t-1, t, t+1), four swaps of 800 points per code
    now = wait_for_calm_otp_step()
    totp = pyotp.TOTP(DEMO_SECRET)
    codes = [totp.at(now, counter_offset=offset) for offset in (-1, 0, 1)]
    bodies = [swap_body(code, -800 - n) for code in codes for n in range(4)]
    answers = send_all(local, bodies, au_id)
    successes = [body["value"] for status, body in answers if status == 200]
    refusals = sorted({body["return"] for status, body in answers if status != 200})
    # Then the balance allows two: never a negative balance, every success logged once, ids contiguous
    assert len(successes) == 2, (summary(answers), ledger_of(endpoint, au_id))
    assert set(refusals) <= {32103, 32108, 32203}
    ledger = ledger_of(endpoint, au_id)
    logs = sorted((item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")), key=lambda log: log["log_id"])
    assert [log["log_id"] for log in logs] == [1, 2]
    total_points = sum(value["point"]["adjust_point_quantity"] for value in successes)
    total_coins = sum(Decimal(str(value["coin"]["adjust_coin_quantity"])) for value in successes)
    assert ledger["POINT#1#1"]["quantity"] == 2100 + total_points >= 0
    assert ledger["WALLET#2"]["quantity"] == total_coins
    assert sorted(log["value"]["log_id"] for log in logs) == sorted(value["log_id"] for value in successes)
    assert reconciled(endpoint)


def test_sixteen_identical_requests_at_once_all_get_the_one_committed_answer(stack):
    local, endpoint, au_id = stack
    # Given one swap request, sent 16 times at the same moment (a client retrying impatiently)
    now = wait_for_calm_otp_step()
    body = swap_body(pyotp.TOTP(DEMO_SECRET).at(now), -110)
    answers = send_all(local, [body] * 16, au_id)
    # Then every answer is that one success (or "try again" while it was being decided)
    successes = [answer for answer in answers if answer[0] == 200]
    assert successes, summary(answers)
    assert all(answer == successes[0] for answer in successes), summary(answers)
    assert all(
        answer in (successes[0], (409, {"return": 32203, "message": "Swap conflict, try again"})) for answer in answers
    ), summary(answers)
    # and money moved once, with one log entry
    ledger = ledger_of(endpoint, au_id)
    assert [item["log_id"] for sk, item in ledger.items() if sk.startswith("SWAPLOG#")] == [1]
    assert ledger["POINT#1#1"]["quantity"] == 1990
    # a late retry gets the same answer again
    assert (
        local.post("/v1.0/db/swap", raw=exact_json(body), headers={"Authorization": f"Bearer {token(au_id)}"})
        == successes[0]
    )
    assert reconciled(endpoint)


def test_thirty_wrong_codes_at_once_judge_at_most_five(stack):
    local, endpoint, au_id = stack
    now = wait_for_calm_otp_step()
    right = pyotp.TOTP(DEMO_SECRET).at(now)
    wrong = [f"{n:06d}" for n in range(100000, 100030) if f"{n:06d}" != right][:30]
    # When 30 wrong codes for one account arrive at the same moment
    answers = send_all(local, [swap_body(code, -110) for code in wrong], au_id)
    codes = [body["return"] for _, body in answers]
    # Then at most five are judged (401 / 32107) and the rest are refused as locked (429 / 32109)
    assert codes.count(32107) == 5, summary(answers)
    assert codes.count(32109) == 25, summary(answers)
    assert {status for status, body in answers if body["return"] == 32109} == {429}
    guard = ledger_of(endpoint, au_id)["OTP_GUARD"]
    assert len(guard["failures"]) == 5
    # and no swap commits while the account is locked, even with the right code
    locked = local.post(
        "/v1.0/db/swap", raw=exact_json(swap_body(right, -110)), headers={"Authorization": f"Bearer {token(au_id)}"}
    )
    assert locked == (429, {"return": 32109, "message": "Too many OTP attempts"})
    assert not any(sk.startswith("SWAPLOG#") for sk in ledger_of(endpoint, au_id))


@pytest.mark.parametrize("database", ["dynamodb-local", "moto-server"])
def test_serve_killed_mid_burst_then_every_request_retried(database):
    with _database(database) as endpoint:
        extra = ("--concurrent-dynamodb",) if database == "dynamodb-local" else ()
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
            # killed as soon as one swap has committed, while the others are in flight (more requests than
            # serve's execution environments: some are still waiting for one)
            for done in as_completed(futures):
                if done.result() is not None and done.result()[0] == 200:
                    break
            local.kill()
            first_round = [future.result() for future in futures]
        assert any(answer is not None and answer[0] == 200 for answer in first_round), first_round
        assert any(answer is None for answer in first_round), ("nothing was in flight when serve died", first_round)
        # and restarted on the same database (no fixture: a restart never resets data)
        with LocalStack("--dynamodb-endpoint", endpoint, *extra) as local:
            retried = [_post_or_error(local, body) for body in bodies]
        # Then every request that had an answer gets the same answer if it was a success...
        for before, after in zip(first_round, retried, strict=True):
            if before is not None and before[0] == 200:
                assert after == before, (first_round, retried)
        # ...and every committed swap is reported as a success to its retry, each exactly once
        ledger = ledger_of(endpoint, 19)
        logs = sorted((item for sk, item in ledger.items() if sk.startswith("SWAPLOG#")), key=lambda log: log["log_id"])
        assert [log["log_id"] for log in logs] == list(range(1, len(logs) + 1))
        reported = [after[1]["value"] for after in retried if after is not None and after[0] == 200]
        assert sorted(value["log_id"] for value in reported) == [log["log_id"] for log in logs]
        assert ledger["POINT#1#1"]["quantity"] == 2100 + sum(
            log["value"]["point"]["adjust_point_quantity"] for log in logs
        )
        assert all(after is not None and after[0] < 500 for after in retried), retried
        assert reconciled(endpoint)


def _post_or_error(local: LocalStack, body: dict[str, Any]) -> tuple[int, Any] | None:
    try:
        return local.post("/v1.0/db/swap", raw=exact_json(body), headers={"Authorization": f"Bearer {token(19)}"})
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
