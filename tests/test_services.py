"""Unit tests of the two domain services on in-memory repositories (tests/helpers/fakes.py): no DynamoDB, no events.

The handlers' tests (moto) and the HTTP tests (the local stack) check the same rules end to end; these
pin each rule down where it is cheapest, including the lost answer of a swap's transaction.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from helpers import DEMO_SECRET, T0, code_at, swap_body, wrong_code
from helpers.fakes import InMemoryLedger, InMemoryWillson
from payments.auth import Caller
from payments.aws import DYNAMODB_CALL_WORST_CASE_MS
from payments.errors import (
    AdjustQuantityInvalid,
    AppIdInvalid,
    AppPointAccountMissing,
    CoinIdInvalid,
    ConcernNotFound,
    EventIdInvalid,
    OtpAlreadyUsed,
    OtpInvalid,
    OtpLocked,
    PointQuantityInsufficient,
    ServiceBusy,
    SwapConflict,
    SwapOutcomeUndetermined,
    WillsonerNotFound,
)
from payments.models.ledger import Coin, PointAccount, SwappableApp, Wallet
from payments.models.payment_progress import PaymentProgressRequest
from payments.models.swap import SwapRequest
from payments.models.willson import Concern, Ticket, WillsonerCard
from payments.repositories.ledger import CommitResult
from payments.repositories.throttling import Throttled
from payments.services.payment_progress import progress_payment
from payments.services.swap import SwapOutcome, SwapPolicy, execute_swap, request_fingerprint
from payments.services.time_budget import TimeBudget

BUDGET = TimeBudget(remaining_ms=lambda: 20_000, call_ms=DYNAMODB_CALL_WORST_CASE_MS)
ASKER = Caller(au_id=149)
DASHBOARD_USER = Caller(au_id=19)


# --- payment progress ----------------------------------------------------------------------------


def card(idx: int, au_id: int, rating: str | None, status: str = "complete", gender: str = "여") -> WillsonerCard:
    return WillsonerCard(
        idx=idx,
        au_id=au_id,
        status=status,
        avg_rating=None if rating is None else Decimal(rating),
        experience=f"experience {idx}",
        introduction=f"introduction {idx}",
        gender=gender,
        age="20대 중반",
        pic=f"https://pic.example/{au_id}.png",
        nickname=f"user {au_id}",
        subcategories=("이별",),
        keywords=("듣기",),
        image=f"https://image.example/{idx}.png",
    )


CONCERN = Concern(
    idx=1577,
    au_id=149,
    content="필터테스트",
    time="",
    wil_gender="ALL",
    subcategory_idx=1,
    subcategory_name="이별",
    category_idx=1,
    category_name="연애",
    asker_pic="https://pic.example/149.png",
    asker_nickname="포스트맨",
    personalities=("솔직한",),
    direction="문제를 해결하고 싶어요",
)


@pytest.fixture
def willson() -> InMemoryWillson:
    cards = {
        12: card(12, 26, "4.5"),
        15: card(15, 31, "4.85", gender="남"),
        18: card(18, 44, None),
        21: card(21, 57, "5.0", status="pending"),
        30: card(30, 149, "5.0"),  # the asker's own profile: never listed to them
        33: card(33, 60, "4.5"),
    }
    return InMemoryWillson(
        concerns={1577: CONCERN, 1600: CONCERN._replace(idx=1600, au_id=26)},
        tickets=(Ticket(1, 30, 7), Ticket(2, 60, 13, active=False), Ticket(3, 90, 18)),
        sessions={149: {12: "2020-11-20T10:00:00Z", 21: "2021-01-01T00:00:00Z", 33: "2021-02-01T00:00:00Z"}},
        honeypots={149: 280},
        cards=cards,
        subcategories=dict.fromkeys(cards, (1,)),
    )


def progress(willson: InMemoryWillson, match_type: int | None = None, concern_idx: int = 1577, max_listed: int = 30):
    request = PaymentProgressRequest(concern_idx=concern_idx, match_type=match_type)
    return progress_payment(
        willson, ASKER, request, honeypot_app_id=1, honeypot_point_id=1, max_listed=max_listed, budget=BUDGET
    )


def test_everyone_listed_best_rated_first_unrated_last_never_the_caller(willson):
    data = progress(willson)
    assert [w.idx for w in data.willsoners] == [15, 12, 33, 18]
    assert [w.avg_rating for w in data.willsoners] == ["4.9", "4.5", "4.5", "0.0"]
    assert willson.calls == ["BatchGetItem", "Query"]


def test_a_different_willsoner_leaves_out_those_met_before(willson):
    assert [w.idx for w in progress(willson, match_type=2).willsoners] == [15, 18]


def test_the_same_willsoner_lists_those_met_most_recent_first_still_complete(willson):
    data = progress(willson, match_type=1)
    assert [w.idx for w in data.willsoners] == [33, 12]
    assert willson.calls == ["BatchGetItem", "BatchGetItem"]


def test_at_most_max_listed(willson):
    assert [w.idx for w in progress(willson, max_listed=2).willsoners] == [15, 12]


def test_honeypots_tickets_and_concern_are_shown_as_the_seed_does(willson):
    data = progress(willson)
    assert data.point.honeypot == "280개"
    assert [(t.idx, t.type, t.amount) for t in data.tickets] == [
        (1, "고민나누기 30분", "꿀단지 7개"),
        (3, "고민나누기 90분", "꿀단지 18개"),
    ]
    assert data.concern.asker.nickname == "포스트맨"
    assert data.concern.subcategory.category.name == "연애"
    assert data.willsoners[0].asker.nickname == "user 31"
    assert data.willsoners[0].asker_idx == 31


def test_a_caller_without_honeypots_has_none(willson):
    willson.honeypots.clear()
    assert progress(willson).point.honeypot == "0개"


@pytest.mark.parametrize("concern_idx", [1600, 9999], ids=["someone else's", "missing"])
def test_a_concern_that_is_not_the_callers_is_not_found(willson, concern_idx):
    with pytest.raises(ConcernNotFound):
        progress(willson, concern_idx=concern_idx)
    assert willson.calls == ["BatchGetItem"]


def test_nobody_to_list(willson):
    willson.sessions.clear()
    with pytest.raises(WillsonerNotFound):
        progress(willson, match_type=1)


# --- swap ----------------------------------------------------------------------------------------

POLICY = SwapPolicy(max_attempts=3)


@pytest.fixture
def ledger() -> InMemoryLedger:
    return InMemoryLedger(
        points={(19, 1, 1): PointAccount(mu_id=28, quantity=2100)},
        wallets={(19, 2): Wallet(walletaddress="0xabc", quantity=Decimal(0))},
        secrets={19: DEMO_SECRET},
        apps={1: SwappableApp(app_id=1, database_id=1, point_ids=frozenset({1}))},
        coins={2: Coin(coin_id=2, decimals=8)},
        rates={(1, 1, 2): Decimal("0.1")},
    )


def run_swap(ledger: InMemoryLedger, body: dict[str, Any], at: float = T0, policy: SwapPolicy = POLICY) -> SwapOutcome:
    return execute_swap(
        ledger,
        DASHBOARD_USER,
        SwapRequest.from_body(body),
        request_fingerprint(DASHBOARD_USER.au_id, body),
        policy,
        BUDGET,
        clock=lambda: at,
        pause=lambda _: None,
    )


def test_a_swap_moves_both_balances_and_logs_once(ledger):
    outcome = run_swap(ledger, swap_body())
    value = outcome.value.model_dump()
    assert value["log_id"] == 1
    assert value["point"] == {
        "mu_id": 28,
        "app_id": 1,
        "database_id": 1,
        "point_id": 1,
        "previous_point_quantity": 2100,
        "adjust_point_quantity": -110,
        "point_quantity": 1990,
    }
    assert value["coin"]["coin_quantity"] == Decimal(11)
    assert ledger.calls == ["BatchGetItem", "TransactWriteItems"]
    assert ledger.points[(19, 1, 1)].quantity == 1990
    assert ledger.wallets[(19, 2)].quantity == Decimal(11)
    assert list(ledger.logs) == [(19, 1)]
    assert not outcome.replayed


def test_the_same_request_later_replays_the_committed_answer(ledger):
    first = run_swap(ledger, swap_body())
    ledger.calls.clear()
    again = run_swap(ledger, swap_body(), at=T0 + 300)  # its code long expired
    assert again.replayed and again.result == first.result
    assert ledger.calls == ["BatchGetItem"]
    assert ledger.points[(19, 1, 1)].quantity == 1990


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"event_id": 5, "app_id": 9}, EventIdInvalid),
        ({"app_id": 9, "adjust_point": 0}, AppIdInvalid),
        ({"coin_id": 7}, CoinIdInvalid),
        ({"adjust_coin": Decimal("11.5")}, AdjustQuantityInvalid),
        ({"adjust_point": -120}, AdjustQuantityInvalid),
    ],
    ids=["event before app", "app before quantities", "coin", "off the rate", "off the rate (points)"],
)
def test_refusals_in_the_contracts_order_write_nothing(ledger, changes, refusal):
    with pytest.raises(refusal):
        run_swap(ledger, swap_body(**changes))
    assert ledger.calls == ["BatchGetItem"]
    assert not ledger.logs and not ledger.guards


def test_no_point_account(ledger):
    ledger.points.clear()
    with pytest.raises(AppPointAccountMissing):
        run_swap(ledger, swap_body())


def test_not_enough_points_consumes_no_otp_step(ledger):
    ledger.points[(19, 1, 1)] = PointAccount(mu_id=28, quantity=100)
    with pytest.raises(PointQuantityInsufficient):
        run_swap(ledger, swap_body())
    assert ledger.calls == ["BatchGetItem"]
    ledger.points[(19, 1, 1)] = PointAccount(mu_id=28, quantity=2100)
    assert run_swap(ledger, swap_body()).value.log_id == 1  # the same code still works


def test_wrong_codes_are_counted_then_lock(ledger):
    for attempt in range(5):
        with pytest.raises(OtpInvalid):
            run_swap(ledger, swap_body(otp_code=wrong_code(T0)), at=T0 + attempt)
    assert len(ledger.guards[19].failures) == 5
    with pytest.raises(OtpLocked):
        run_swap(ledger, swap_body())  # even the right code
    assert not ledger.logs


def test_a_code_is_accepted_once(ledger):
    run_swap(ledger, swap_body())
    with pytest.raises(OtpAlreadyUsed):
        run_swap(ledger, swap_body(adjust_point=-10, adjust_coin=Decimal(1)))
    # and the next step's code is accepted
    assert run_swap(ledger, swap_body(adjust_point=-10, adjust_coin=1, otp_code=code_at(T0 + 30))).value.log_id == 2


@pytest.mark.parametrize("committed", [True, False], ids=["answer lost after commit", "send failed"])
def test_a_lost_answer_is_resolved_and_money_moves_once(ledger, committed):
    ledger.lose_next_answers = [committed]
    outcome = run_swap(ledger, swap_body())
    assert outcome.value.log_id == 1
    assert ledger.points[(19, 1, 1)].quantity == 1990
    assert list(ledger.logs) == [(19, 1)]


def test_outcomes_still_unknown_are_settled_by_one_last_read(ledger):
    # the first attempt's sends never leave (nothing applied), the second's commit and every answer is lost
    ledger.lose_next_answers = [False, False, True, True]
    outcome = run_swap(ledger, swap_body())
    assert outcome.replayed and outcome.value.log_id == 1
    assert ledger.calls == ["BatchGetItem", *["TransactWriteItems"] * 2] * 2 + ["BatchGetItem"]
    assert list(ledger.logs) == [(19, 1)]


def test_an_outcome_nobody_can_read_is_unknown_never_failed(ledger):
    ledger.lose_next_answers = [False, False, False, False]
    with pytest.raises(SwapOutcomeUndetermined):
        run_swap(ledger, swap_body())
    assert not ledger.logs


def test_a_lost_race_every_time_is_a_conflict(ledger):
    @dataclasses.dataclass
    class AlwaysRaced(InMemoryLedger):
        def commit_swap(self, commit):  # type: ignore[no-untyped-def]
            self.calls.append("TransactWriteItems")
            return CommitResult.STALE

    raced = AlwaysRaced(**{f.name: getattr(ledger, f.name) for f in dataclasses.fields(ledger)})
    with pytest.raises(SwapConflict):
        run_swap(raced, swap_body())
    assert raced.calls == ["BatchGetItem", "TransactWriteItems"] * 3
    assert not raced.logs


# --- throttling (SPEC §7) --------------------------------------------------------------------------


@dataclasses.dataclass
class ThrottledLedger(InMemoryLedger):
    """Refuses the next `reads`, `commits` and `guard_writes` calls for throughput, as DynamoDB does."""

    reads: int = 0
    commits: int = 0
    guard_writes: int = 0

    def read_swap_state(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.reads:
            self.reads -= 1
            self.calls.append("BatchGetItem")
            raise Throttled("ProvisionedThroughputExceededException")
        return super().read_swap_state(*args, **kwargs)

    def commit_swap(self, commit):  # type: ignore[no-untyped-def]
        if self.commits:
            self.commits -= 1
            self.calls.append("TransactWriteItems")
            return CommitResult.THROTTLED
        return super().commit_swap(commit)

    def save_otp_guard(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.guard_writes:
            self.guard_writes -= 1
            raise Throttled("ThrottlingException")
        return super().save_otp_guard(*args, **kwargs)


def throttled(ledger: InMemoryLedger, **refusals: int) -> ThrottledLedger:
    return ThrottledLedger(**{f.name: getattr(ledger, f.name) for f in dataclasses.fields(ledger)}, **refusals)


@pytest.mark.parametrize("refused", ["reads", "commits"])
def test_throttling_within_the_retries_commits_once(ledger, refused):
    busy = throttled(ledger, **{refused: 2})
    outcome = run_swap(busy, swap_body())
    assert outcome.value.log_id == 1
    assert list(busy.logs) == [(19, 1)]
    assert busy.points[(19, 1, 1)].quantity == 1990


@pytest.mark.parametrize("refused", ["reads", "commits"])
def test_throttling_past_the_retries_is_busy_and_commits_nothing(ledger, refused):
    busy = throttled(ledger, **{refused: 99})
    with pytest.raises(ServiceBusy) as answer:
        run_swap(busy, swap_body())
    assert 1 <= answer.value.retry_after_seconds <= 99
    assert not busy.logs and busy.points[(19, 1, 1)].quantity == 2100
    # the OTP step was not consumed: once DynamoDB is back, the same request commits
    busy.reads = busy.commits = 0
    assert run_swap(busy, swap_body()).value.log_id == 1


def test_a_wrong_code_that_cannot_be_counted_is_busy_never_invalid(ledger):
    busy = throttled(ledger, guard_writes=99)
    with pytest.raises(ServiceBusy):
        run_swap(busy, swap_body(otp_code=wrong_code(T0)))
    assert 19 not in busy.guards


def test_while_locked_a_wrong_code_is_locked_even_when_throttled(ledger):
    for attempt in range(5):
        with pytest.raises(OtpInvalid):
            run_swap(ledger, swap_body(otp_code=wrong_code(T0)), at=T0 + attempt)
    with pytest.raises(OtpLocked):
        run_swap(throttled(ledger, guard_writes=99), swap_body(otp_code=wrong_code(T0)), at=T0 + 10)
