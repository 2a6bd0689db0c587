"""The swap endpoint through API Gateway events: the seed, every error row, OTP, idempotency, crash safety."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from conftest import DEMO_FIXTURE, demo_fixture, load
from functions.swap import app as swap_app
from helpers import (
    DEMO_SECRET,
    T0,
    account_items,
    api_event,
    balances,
    call,
    error,
    ledger_items,
    swap,
    swap_body,
    swap_logs,
    wrong_code,
)
from payments.repositories.ledger import CommitResult
from seed_values import SEED_SWAP_VALUE, WALLET


def test_seed_example_point_to_coin(ledger):
    # Given 2100 points, no coins and a rate of 0.1
    # When the seed's swap is sent with a valid code
    status, body = swap(swap_body())
    # Then the answer carries exactly the seed's value fields (log_id 1: it is this account's first swap)
    assert status == 200
    assert body == {"return": 0, "message": "success", "value": SEED_SWAP_VALUE}
    assert balances(ledger) == (1990, Decimal("11"))
    [log] = swap_logs(ledger)
    assert log["value"] == json.loads(json.dumps(SEED_SWAP_VALUE), parse_float=Decimal)


def test_coin_to_point_back_again(ledger, at_t0):
    swap(swap_body())
    at_t0["t"] = T0 + 30
    status, body = swap(swap_body(event_id=4, adjust_point=110, adjust_coin=-11, when=T0 + 30))
    assert status == 200
    assert body["value"] == {
        "au_id": 19,
        "point": {
            "mu_id": 28,
            "app_id": 1,
            "database_id": 1,
            "point_id": 1,
            "previous_point_quantity": 1990,
            "adjust_point_quantity": 110,
            "point_quantity": 2100,
        },
        "coin": {
            "coin_id": 2,
            "walletaddress": WALLET,
            "previous_coin_quantity": 11,
            "adjust_coin_quantity": -11,
            "coin_quantity": 0,
        },
        "log_id": 2,
        "event_id": 4,
    }
    assert balances(ledger) == (2100, Decimal("0"))


def test_raw_response_text_has_exact_decimals(ledger):
    from conftest import LambdaContext, api_event, token

    raw = json.dumps(swap_body(adjust_point=-3, adjust_coin=0)).replace(
        '"adjust_coin_quantity": 0', '"adjust_coin_quantity": 0.30'
    )
    event = api_event("/v1.0/db/swap", None, {"Authorization": f"Bearer {token(19)}"}, raw=raw)
    response = swap_app.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 200
    assert '"adjust_coin_quantity":0.3,' in response["body"]
    assert '"coin_quantity":0.3}' in response["body"]
    assert "0.30000000000000004" not in response["body"]


# --- every error row ---


def test_body_not_json_object(ledger):
    for raw in ("not json", "[]", "NaN", "", '{"event_id": 3, "event_id": 4}'):
        assert swap(raw=raw, au_id=None) == (400, error(32110, "Request body is invalid"))


def test_token_errors(ledger):
    assert swap(swap_body(), au_id=None) == (401, error(30001, "Access token is invalid"))
    assert swap(swap_body(), au_id=None, headers={"Authorization": "Bearer nope"}) == (
        401,
        error(30001, "Access token is invalid"),
    )
    assert swap(swap_body(), au_id=None, headers={"Authorization": "Basic abc"}) == (
        401,
        error(30001, "Access token is invalid"),
    )
    from conftest import token

    expired = token(19, ttl=-1)
    assert swap(swap_body(), au_id=None, headers={"Authorization": f"Bearer {expired}"}) == (
        401,
        error(30002, "Access token expired"),
    )


@pytest.mark.parametrize("event_id", [None, 5, 0, "3", True, 3.0])
def test_event_id_invalid(ledger, event_id):
    body = swap_body()
    if event_id is None:
        del body["event_id"]
    else:
        body["event_id"] = event_id
    assert swap(body) == (400, error(32100, "EventID is invalid"))


@pytest.mark.parametrize("app_id", ["1", True, 1.0, 9, -1, None])
def test_app_id_invalid(ledger, app_id):
    assert swap(swap_body(app_id=app_id)) == (400, error(32101, "AppID is invalid"))


@pytest.mark.parametrize("point_id", ["1", False, 7, None])
def test_point_id_invalid(ledger, point_id):
    assert swap(swap_body(point_id=point_id)) == (400, error(32102, "PointID is invalid"))


@pytest.mark.parametrize("coin_id", ["2", True, 99, None])
def test_coin_id_invalid(ledger, coin_id):
    assert swap(swap_body(coin_id=coin_id)) == (400, error(32104, "CoinID is invalid"))


def test_coin_not_swappable_with_that_point(dynamodb, at_t0):
    fixture = demo_fixture()
    fixture["coins"].append({"coin_id": 3, "symbol": "OTH", "decimals": 2})
    load(dynamodb, fixture)
    assert swap(swap_body(coin_id=3)) == (400, error(32104, "CoinID is invalid"))


@pytest.mark.parametrize(
    "adjust_point, adjust_coin",
    [
        (None, 11),
        (-110, None),
        ("-110", 11),
        (-110, "11"),
        (True, 11),
        (-110, False),
        (0, 0),
        (-110, 0),
        (0, 11),
        (110, 11),
        (-110, -11),  # wrong sign for event 3
        (-50, 50),  # the seed's own request: not at the rate
        (-111, 11),
        (-110, Decimal("11.0000001")),  # off the rate
        (-(2**63), 11),
        (-(2**64), 11),  # beyond int64
        (-110, Decimal("1e400")),
        (-110, Decimal("1E18")),
        (Decimal("-110.0"), 11),
        (Decimal("-1.1E2"), 11),
        (-1, Decimal("0.100000001")),  # 9 fractional digits, the coin allows 8
    ],
)
def test_adjust_quantity_invalid(ledger, adjust_point, adjust_coin):
    body = swap_body(adjust_point=adjust_point, adjust_coin=adjust_coin)
    if adjust_point is None:
        del body["point"]["adjust_point_quantity"]
    if adjust_coin is None:
        del body["coin"]["adjust_coin_quantity"]
    raw = json.dumps(body, default=str).replace('"1E+400"', "1e400").replace('"1E+18"', "1E18")
    raw = raw.replace('"-110.0"', "-110.0").replace('"-1.1E+2"', "-1.1E2").replace('"11.0000001"', "11.0000001")
    raw = raw.replace('"0.100000001"', "0.100000001")
    assert swap(raw=raw) == (400, error(32106, "Adjust quantity is invalid"))


def test_trailing_zeros_do_not_count_as_precision(ledger):
    raw = json.dumps(swap_body(adjust_point=-1, adjust_coin=0)).replace(
        '"adjust_coin_quantity": 0', '"adjust_coin_quantity": 0.1000000000000'
    )
    status, body = swap(raw=raw)
    assert status == 200
    assert body["value"]["coin"]["adjust_coin_quantity"] == 0.1


def test_event_4_wrong_sign(ledger):
    assert swap(swap_body(event_id=4, adjust_point=-110, adjust_coin=11)) == (
        400,
        error(32106, "Adjust quantity is invalid"),
    )


def test_no_point_account(ledger):
    # au_id 26 exists as a user but has no ledger account at all
    assert swap(swap_body(), au_id=26) == (404, error(32201, "App point information does not exist"))


def test_no_wallet_for_the_coin(ledger):
    # au_id 149 has the honeypot point account but no wallet
    assert swap(swap_body(), au_id=149) == (400, error(32104, "CoinID is invalid"))


def test_insufficient_points_changes_nothing(ledger):
    before = ledger_items(ledger)
    assert swap(swap_body(adjust_point=-30000, adjust_coin=3000)) == (409, error(32103, "point quantity is invalid"))
    assert ledger_items(ledger) == before


def test_insufficient_coins_changes_nothing_and_keeps_the_code_usable(ledger):
    before = ledger_items(ledger)
    assert swap(swap_body(event_id=4, adjust_point=110, adjust_coin=-11)) == (
        409,
        error(32105, "Coin quantity is invalid"),
    )
    assert ledger_items(ledger) == before
    # the same code still works: a refused swap consumed no OTP step
    assert swap(swap_body())[0] == 200


def _set_wallet(ledger: Any, quantity: int) -> None:
    """The caller's WALLET#2 holds `quantity` coins (written directly, as ops would)."""
    from payments.repositories import codec, keys

    ledger.update_item(
        TableName="LedgerTable",
        Key=codec.to_item(keys.wallet(19, 2)),
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": str(quantity)}},
    )


def test_a_wallet_cannot_reach_the_coin_limit(ledger):
    limit = 10**18
    # Given a wallet one coin below the limit of 10^18 coins
    _set_wallet(ledger, limit - 1)
    before = ledger_items(ledger)
    # When a swap of 10 points for 1 coin would land exactly on the limit
    # Then it is refused as a coin quantity the wallet cannot take, and nothing moves
    assert swap(swap_body(adjust_point=-10, adjust_coin=1)) == (409, error(32105, "Coin quantity is invalid"))
    assert ledger_items(ledger) == before
    assert balances(ledger) == (2100, Decimal(limit - 1))
    assert swap_logs(ledger) == []
    # Given the wallet one coin lower
    _set_wallet(ledger, limit - 2)
    # When the same swap is sent again (the refusal consumed no OTP step)
    status, body = swap(swap_body(adjust_point=-10, adjust_coin=1))
    # Then it is carried out: the wallet ends one coin below the limit
    assert status == 200
    assert body == {
        "return": 0,
        "message": "success",
        "value": {
            "au_id": 19,
            "point": {
                "mu_id": 28,
                "app_id": 1,
                "database_id": 1,
                "point_id": 1,
                "previous_point_quantity": 2100,
                "adjust_point_quantity": -10,
                "point_quantity": 2090,
            },
            "coin": {
                "coin_id": 2,
                "walletaddress": WALLET,
                "previous_coin_quantity": limit - 2,
                "adjust_coin_quantity": 1,
                "coin_quantity": limit - 1,
            },
            "log_id": 1,
            "event_id": 3,
        },
    }
    assert balances(ledger) == (2090, Decimal(limit - 1))
    assert len(swap_logs(ledger)) == 1


def test_member_data_read_error(ledger, monkeypatch):
    from payments.repositories.ledger import LedgerReadFailed

    def fail(*_: Any) -> None:
        raise LedgerReadFailed("down")

    monkeypatch.setattr(swap_app.ledger, "read_swap_state", fail)
    assert swap(swap_body()) == (500, error(34005, "GetListMembers DB Scan Error"))


def test_coin_data_read_error(ledger):
    from payments.repositories import codec, keys

    ledger.update_item(
        TableName="LedgerTable", Key=codec.to_item(keys.wallet(19, 2)), UpdateExpression="REMOVE quantity"
    )
    assert swap(swap_body()) == (500, error(34004, "GetMeCoinList DB Scan Error"))


def test_conflict_after_bounded_retries(ledger, monkeypatch):
    attempts = []

    def always_lose(_commit: Any) -> CommitResult:
        attempts.append(1)
        return CommitResult.STALE

    monkeypatch.setattr(swap_app.ledger, "commit_swap", always_lose)
    assert swap(swap_body()) == (409, error(32203, "Swap conflict, try again"))
    assert len(attempts) == swap_app.settings.swap_max_attempts


# --- precedence: body → token → event → ids → quantities → accounts → OTP → balances ---


def test_precedence(ledger):
    worst = swap_body(event_id=9, app_id="x", adjust_point="x", otp_code="bad")
    assert swap(raw="[]", au_id=None)[1]["return"] == 32110
    assert swap(worst, au_id=None)[1]["return"] == 30001
    assert swap(worst)[1]["return"] == 32100
    assert swap(swap_body(app_id=99, point_id="x", coin_id="x", adjust_point="x"))[1]["return"] == 32101
    assert swap(swap_body(point_id=99, coin_id="x", adjust_point="x"))[1]["return"] == 32102
    assert swap(swap_body(coin_id=99, adjust_point="x"))[1]["return"] == 32104
    assert swap(swap_body(adjust_point="x", otp_code="bad"), au_id=26)[1]["return"] == 32106
    assert swap(swap_body(otp_code="bad"), au_id=26)[1]["return"] == 32201
    assert swap(swap_body(adjust_point=-30000, adjust_coin=3000, otp_code="000000x"))[1]["return"] == 32107
    assert swap(swap_body(adjust_point=-30000, adjust_coin=3000))[1]["return"] == 32103


# --- OTP ---


def test_wrong_code(ledger):
    wrong = wrong_code()
    assert swap(swap_body(otp_code=wrong)) == (401, error(32107, "OTP code is invalid"))


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", 123456, None, ""])
def test_malformed_code(ledger, code):
    body = swap_body(otp_code=code)
    if code is None:
        del body["otp_code"]
    assert swap(body) == (401, error(32107, "OTP code is invalid"))


def test_account_without_enrolled_otp(dynamodb, at_t0):
    fixture = demo_fixture()
    fixture["accounts"].append(
        {
            "au_id": 77,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 90, "quantity": 500}],
            "wallets": [{"coin_id": 2, "walletaddress": "0xabc", "quantity": "1"}],
        }
    )
    load(dynamodb, fixture)
    assert swap(swap_body(), au_id=77) == (401, error(32107, "OTP code is invalid"))


def test_neighbouring_steps_are_accepted_once_each_in_any_order(ledger):
    for offset in (30, -30, 0):
        status, _ = swap(swap_body(adjust_point=-10, adjust_coin=1, when=T0 + offset))
        assert status == 200, offset
    assert len(swap_logs(ledger)) == 3
    assert swap(swap_body(adjust_point=-10, adjust_coin=1, when=T0 + 60)) == (401, error(32107, "OTP code is invalid"))


def test_reused_step_is_refused_even_with_another_body(ledger):
    assert swap(swap_body())[0] == 200
    assert swap(swap_body(adjust_point=-20, adjust_coin=2)) == (409, error(32108, "OTP code already used"))
    assert len(swap_logs(ledger)) == 1


def test_lockout_after_five_failures_and_release_after_fifteen_minutes(ledger, at_t0):
    wrong = wrong_code()
    for attempt in range(5):
        at_t0["t"] = T0 + attempt
        assert swap(swap_body(otp_code=wrong))[1]["return"] == 32107
    at_t0["t"] = T0 + 10
    # locked: even the right code is refused, and reused codes are not what counts
    assert swap(swap_body(when=T0 + 10)) == (429, error(32109, "Too many OTP attempts"))
    at_t0["t"] = T0 + 4 + 900 + 1
    assert swap(swap_body(when=at_t0["t"]))[0] == 200


def test_reused_codes_do_not_count_towards_the_lock(ledger, at_t0):
    assert swap(swap_body())[0] == 200
    for _ in range(6):
        assert swap(swap_body(adjust_point=-20, adjust_coin=2))[1]["return"] == 32108
    at_t0["t"] = T0 + 30
    assert swap(swap_body(adjust_point=-20, adjust_coin=2, when=T0 + 30))[0] == 200


def test_a_step_stays_consumed_while_an_earlier_request_may_be_in_flight(ledger, at_t0):
    step = int(T0) // 30  # the OTP time step of T0
    # Given a swap at T0 with the code of the previous step (step - 1, the oldest one T0 accepts)
    assert swap(swap_body(adjust_point=-10, adjust_coin=1, when=T0 - 30))[0] == 200
    # and a later swap at T0 + 30 (step + 1) with the then-current code, which prunes steps no request may still use
    at_t0["t"] = T0 + 30
    assert swap(swap_body(adjust_point=-20, adjust_coin=2, when=T0 + 30))[0] == 200
    # When a request that arrived at T0 and is still in flight reuses the step - 1 code with another body
    at_t0["t"] = T0
    answer = swap(swap_body(adjust_point=-30, adjust_coin=3, when=T0 - 30))
    # Then the step is still consumed: refused as a code already used, and nothing moves
    assert answer == (409, error(32108, "OTP code already used"))
    assert account_items(ledger, 19)["ACCOUNT"]["otp_steps"] == {str(step - 1): 1, str(step + 1): 2}
    assert balances(ledger) == (2070, Decimal("3"))
    assert [log["log_id"] for log in swap_logs(ledger)] == [1, 2]


# --- idempotency and crash safety ---


def test_identical_retry_returns_the_first_answer_and_moves_once(ledger):
    first = swap(swap_body())
    body = swap_body()
    reordered = json.dumps(
        {"coin": body["coin"], "point": body["point"], "otp_code": body["otp_code"], "event_id": 3}, indent=4
    )
    second = swap(raw=reordered)
    assert first == second
    assert first[0] == 200
    assert balances(ledger) == (1990, Decimal("11"))
    assert len(swap_logs(ledger)) == 1


def test_a_refused_request_is_not_replayed(ledger):
    from payments.repositories import codec, keys

    body = swap_body(event_id=4, adjust_point=110, adjust_coin=-11)
    assert swap(body)[1]["return"] == 32105
    ledger.update_item(
        TableName="LedgerTable",
        Key=codec.to_item(keys.wallet(19, 2)),
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "20"}},
    )
    assert swap(body)[0] == 200


def test_crash_after_commit_never_applies_twice(ledger, monkeypatch):
    original = swap_app.ledger.commit_swap

    def commit_then_crash(commit: Any) -> None:
        original(commit)
        raise RuntimeError("the process died after DynamoDB committed")

    monkeypatch.setattr(swap_app.ledger, "commit_swap", commit_then_crash)
    assert swap(swap_body()) == (500, error(32202, "Unknown swap error"))
    monkeypatch.setattr(swap_app.ledger, "commit_swap", original)
    status, body = swap(swap_body())
    assert (status, body) == (200, {"return": 0, "message": "success", "value": SEED_SWAP_VALUE})
    assert len(swap_logs(ledger)) == 1
    assert balances(ledger) == (1990, Decimal("11"))


def test_two_accounts_never_share_an_idempotency_record(dynamodb, at_t0):
    fixture = demo_fixture()
    fixture["accounts"].append(
        {
            "au_id": 20,
            "otp_secret": DEMO_SECRET,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 29, "quantity": 500}],
            "wallets": [{"coin_id": 2, "walletaddress": "0xdef", "quantity": "0"}],
        }
    )
    load(dynamodb, fixture)
    assert swap(swap_body())[1]["value"]["au_id"] == 19
    assert swap(swap_body(), au_id=20)[1]["value"]["au_id"] == 20


class CountingHook:
    def __init__(self) -> None:
        self.operations: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


def test_round_trips_of_a_successful_swap(ledger):
    hook = CountingHook()
    swap_app.ledger._client.meta.events.register("before-call.dynamodb", hook)  # the handler's own client
    try:
        assert swap(swap_body())[0] == 200
    finally:
        swap_app.ledger._client.meta.events.unregister("before-call.dynamodb", hook)
    # one strongly consistent read of everything, one transaction
    assert hook.operations == ["BatchGetItem", "TransactWriteItems"]


def test_round_trips_of_a_refused_swap_write_nothing_of_the_ledger(ledger):
    hook = CountingHook()
    swap_app.ledger._client.meta.events.register("before-call.dynamodb", hook)  # the handler's own client
    try:
        assert swap(swap_body(adjust_point=-30000, adjust_coin=3000))[0] == 409
    finally:
        swap_app.ledger._client.meta.events.unregister("before-call.dynamodb", hook)
    # refused at the balances step: the read alone
    assert hook.operations == ["BatchGetItem"]


def test_int64_minimum_is_a_quantity_the_balance_cannot_cover(ledger):
    raw = json.dumps(swap_body(adjust_point=-(2**63), adjust_coin=0)).replace(
        '"adjust_coin_quantity": 0', '"adjust_coin_quantity": 922337203685477580.8'
    )
    assert swap(raw=raw) == (409, error(32103, "point quantity is invalid"))


# --- the request record: replays after the code expired, number spelling, the 10-minute window ---


def test_retry_after_the_code_expired_replays_the_committed_answer_in_one_read(ledger, at_t0):
    # Given a committed swap
    first = swap(swap_body())
    assert first[0] == 200
    # When the identical request comes back five minutes later (its OTP code long expired)
    at_t0["t"] = T0 + 300
    hook = CountingHook()
    swap_app.ledger._client.meta.events.register("before-call.dynamodb", hook)  # the handler's own client
    try:
        second = swap(swap_body())
    finally:
        swap_app.ledger._client.meta.events.unregister("before-call.dynamodb", hook)
    # Then it gets the committed answer back, from one read, and nothing moves again
    assert second == first
    assert hook.operations == ["BatchGetItem"]
    assert len(swap_logs(ledger)) == 1
    assert balances(ledger) == (1990, Decimal("11"))


def test_replay_window_is_ten_minutes_whatever_the_ttl_deletion_does(ledger, at_t0):
    assert swap(swap_body())[0] == 200
    # the record is still stored (DynamoDB's TTL deletion is late), but the swap judges its expiry itself
    at_t0["t"] = T0 + 600
    assert swap(swap_body()) == (401, error(32107, "OTP code is invalid"))
    assert len(swap_logs(ledger)) == 1


@pytest.mark.parametrize("spelling", ["11.0", "1.1e1", "110e-1", "11.000"])
def test_number_spelling_does_not_make_another_request(ledger, spelling):
    first = swap(swap_body())
    raw = json.dumps(swap_body()).replace('"adjust_coin_quantity": 11', f'"adjust_coin_quantity": {spelling}')
    assert swap(raw=raw) == first
    assert len(swap_logs(ledger)) == 1


def test_a_string_or_boolean_is_never_the_same_request_as_a_number(ledger):
    assert swap(swap_body())[0] == 200
    # "1" is not 1 and true is not 1: these are other requests, judged (and refused) on their own
    assert swap(swap_body(app_id="1"))[1]["return"] == 32101
    assert swap(swap_body(app_id=True))[1]["return"] == 32101
    assert len(swap_logs(ledger)) == 1


def test_the_request_record_is_written_by_the_swaps_own_transaction(ledger):
    assert swap(swap_body())[0] == 200
    [record] = [item for item in ledger_items(ledger) if item["sk"].startswith("REQUEST#")]
    assert record["pk"] == "ACCOUNT#19"
    assert record["log_id"] == 1
    assert record["expires_at_ms"] == int(T0 * 1000) + 600_000
    assert record["expires_at"] == int(T0) + 601  # TTL clean-up, after the window
    assert record["value"] == json.loads(json.dumps(SEED_SWAP_VALUE), parse_float=Decimal)


def test_a_live_request_record_is_never_overwritten_by_another_transaction(ledger, monkeypatch):
    # Given a committed swap, and the transaction it sent
    sent = []
    commit_swap = swap_app.ledger.commit_swap
    monkeypatch.setattr(swap_app.ledger, "commit_swap", lambda commit: sent.append(commit) or commit_swap(commit))
    assert swap(swap_body())[0] == 200
    [first] = sent
    before = ledger_items(ledger)
    # When a second transaction, right about everything else it finds, carries a record of the same request while
    # the first is live (the service never plans one: the consumed step answers first; the condition is the backstop)
    result = first.record.result
    second_result = result._replace(
        log_id=2,
        previous_point=result.new_point,
        new_point=result.new_point + result.adjust_point,
        previous_coin=result.new_coin,
        new_coin=result.new_coin + result.adjust_coin,
    )
    second = first._replace(
        account_version=first.account_version + 1,
        consumed_otp_steps={**first.consumed_otp_steps, first.otp_step + 1: 2},
        previous_point=second_result.previous_point,
        new_point=second_result.new_point,
        previous_coin=second_result.previous_coin,
        new_coin=second_result.new_coin,
        otp_step=first.otp_step + 1,
        record=first.record._replace(result=second_result),
    )
    # Then DynamoDB refuses it and nothing is written
    assert commit_swap(second) is CommitResult.STALE
    assert ledger_items(ledger) == before


# --- lost answers: test_faults.py injects them at botocore's wire (in-process, on moto), and
# test_swap_outcomes_http.py once over HTTP ---


# --- the time budget ---


def test_no_dynamodb_call_starts_that_could_outlive_the_function(ledger, monkeypatch):
    from payments.services.time_budget import TimeBudget

    # Given a context whose remaining time only fits the first read
    sent = []
    monkeypatch.setattr(swap_app.ledger, "commit_swap", lambda commit: sent.append(commit))
    monkeypatch.setattr(swap_app, "TimeBudget", lambda remaining_ms, call_ms: TimeBudget(lambda: call_ms, call_ms))
    # When the swap runs, it does not send a transaction it could not see through
    assert swap(swap_body()) == (409, error(32203, "Swap conflict, try again"))
    assert sent == []
    assert swap_logs(ledger) == []


# --- the OTP lockout, judged one wrong code at a time ---


def test_a_wrong_code_is_counted_by_a_conditional_write_and_a_lost_race_is_judged_again(ledger, monkeypatch):
    from payments.repositories.ledger import GuardWriteResult

    wrong = wrong_code()
    real_save = swap_app.ledger.save_otp_guard
    calls = []

    def lose_first(au_id: int, expected: int, guard: Any, expires_at: int) -> GuardWriteResult:
        calls.append(expected)
        if len(calls) == 1:
            return GuardWriteResult.STALE  # another wrong code was counted first
        return real_save(au_id, expected, guard, expires_at)

    monkeypatch.setattr(swap_app.ledger, "save_otp_guard", lose_first)
    assert swap(swap_body(otp_code=wrong)) == (401, error(32107, "OTP code is invalid"))
    assert len(calls) == 2
    [guard] = [item for item in ledger_items(ledger) if item["sk"] == "OTP_GUARD"]
    # versions never go back: at least the write's time in ms
    assert guard["version"] == int(T0 * 1000) and len(guard["failures"]) == 1


def test_the_guard_stays_bounded_whatever_the_number_of_wrong_codes(ledger, at_t0):
    wrong = wrong_code()
    answers = []
    for second in range(40):
        at_t0["t"] = T0 + second * 60  # 40 minutes of wrong codes, more than two lock windows
        answers.append(swap(swap_body(otp_code=wrong))[1]["return"])
        [guard] = [item for item in ledger_items(ledger) if item["sk"] == "OTP_GUARD"]
        assert len(guard["failures"]) <= 5
    # five judged, then locked for 15 minutes, five judged again, ...
    assert answers[:5] == [32107] * 5 and answers[5:19] == [32109] * 14 and answers[19] == 32107


def test_no_swap_commits_while_locked_even_from_a_state_read_before_the_lock(ledger, monkeypatch):
    from payments.repositories import codec, keys

    real_read = swap_app.ledger.read_swap_state

    def read_then_lock(*args: Any) -> Any:
        state = real_read(*args)
        # the lock lands between this swap's read and its transaction
        ledger.put_item(
            TableName="LedgerTable",
            Item=codec.to_item(
                {
                    **keys.otp_guard(19),
                    "entity": "otp_guard",
                    "au_id": 19,
                    "version": 5,
                    "failures": [],
                    "locked_until_ms": int(T0 * 1000) + 900_000,
                    "expires_at": int(T0) + 901,
                }
            ),
        )
        return state

    monkeypatch.setattr(swap_app.ledger, "read_swap_state", read_then_lock)
    assert swap(swap_body()) == (429, error(32109, "Too many OTP attempts"))
    assert swap_logs(ledger) == []
    assert balances(ledger) == (2100, Decimal("0"))


# --- secrets ---


def test_in_lambda_without_a_secret_arn_there_is_no_development_secret(ledger, monkeypatch, caplog):
    from payments.config import Settings

    monkeypatch.setattr(swap_app, "settings", Settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "swap"}))
    assert swap(swap_body()) == (500, error(32202, "Unknown swap error"))
    assert swap_logs(ledger) == []


def test_otp_secrets_live_in_their_own_table(ledger):
    assert not any("otp_secret" in item for item in ledger_items(ledger))
    [secret] = ledger.scan(TableName="OtpSecretTable")["Items"]
    assert secret["pk"] == {"S": "ACCOUNT#19"} and secret["sk"] == {"S": "OTP_SECRET"}


def test_loading_a_fixture_over_a_live_account_rolls_nothing_back(ledger, at_t0):
    # Given a committed swap: version, log sequence and consumed OTP step have moved
    assert swap(swap_body())[0] == 200
    account_before = next(item for item in ledger_items(ledger) if item["sk"] == "ACCOUNT" and item["au_id"] == 19)
    # When ops load the demo fixture again over the live account
    load(ledger, DEMO_FIXTURE)
    # Then the swap counters are untouched (and the balances too: the same fixture's adjustments are applied already)
    account_after = next(item for item in ledger_items(ledger) if item["sk"] == "ACCOUNT" and item["au_id"] == 19)
    assert account_after == account_before
    assert account_after["version"] == 1 and account_after["log_seq"] == 1
    # the consumed step stays consumed, and the next swap continues the log chain
    assert swap(swap_body(adjust_point=-20, adjust_coin=2)) == (409, error(32108, "OTP code already used"))
    at_t0["t"] = T0 + 30
    assert swap(swap_body(adjust_point=-20, adjust_coin=2, when=T0 + 30))[1]["value"]["log_id"] == 2


def test_a_committed_request_spelt_with_other_numbers_in_its_ids_gets_its_answer(ledger):
    # Given a committed swap
    first = swap(swap_body())
    # When the same request comes back with its ids written as 3.0 and 1.0 (the same parsed JSON)
    raw = json.dumps(swap_body()).replace('"event_id": 3', '"event_id": 3.0').replace('"app_id": 1', '"app_id": 1.0')
    # Then it is the same request: the committed answer, not 32100
    assert swap(raw=raw) == first
    # while a new request spelt that way is refused: ids are JSON integers
    fresh = json.dumps(swap_body(adjust_point=-20, adjust_coin=2, when=T0 + 30)).replace(
        '"event_id": 3', '"event_id": 3.0'
    )
    assert swap(raw=fresh) == (400, error(32100, "EventID is invalid"))


def test_a_balance_written_by_a_swap_the_account_item_does_not_show_yet_is_read_again(ledger, monkeypatch):
    from payments.models.ledger import PointAccount, SwapState

    # Given a state read that saw another swap's balance update but not yet its account update
    real_read = swap_app.ledger.read_swap_state
    reads = []

    def half_seen_once(*args: Any) -> SwapState:
        state = real_read(*args)
        reads.append(1)
        if len(reads) == 1 and state.point is not None:
            return state._replace(point=PointAccount(state.point.mu_id, 0, last_log_id=7))
        return state

    monkeypatch.setattr(swap_app.ledger, "read_swap_state", half_seen_once)
    # When the swap runs: it does not refuse on a balance it saw half-written; it reads again
    assert swap(swap_body()) == (200, {"return": 0, "message": "success", "value": SEED_SWAP_VALUE})
    assert len(reads) == 2


def test_deployed_the_signing_secret_comes_from_secrets_manager(ledger, monkeypatch):
    import boto3

    from payments.auth import issue_access_token
    from payments.aws import secrets_provider
    from payments.config import Settings

    # Given the function in Lambda with its secret in Secrets Manager
    arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="jwt", SecretString="a-deployed-secret-of-sixty-four-characters-0123456789abcdefghijkl"
    )["ARN"]
    monkeypatch.setattr(
        swap_app,
        "settings",
        Settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "swap", "JWT_SECRET_ARN": arn, "JWT_SECRET": "ignored"}),
    )
    secrets_provider().clear_cache()
    deployed = issue_access_token(19, "a-deployed-secret-of-sixty-four-characters-0123456789abcdefghijkl", 3600)
    event = api_event("/v1.0/db/swap", None, {"Authorization": f"Bearer {deployed}"}, raw=json.dumps(swap_body()))
    # Then a token signed with it is accepted, and one signed with the development secret is not
    assert call(swap_app.lambda_handler, event)[0] == 200
    assert swap(swap_body(adjust_point=-20, adjust_coin=2)) == (401, error(30001, "Access token is invalid"))
    secrets_provider().clear_cache()
