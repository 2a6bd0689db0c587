"""What every request reads alike is kept per environment for a bounded time (SPEC §7, repositories/shared_items.py).

The repositories are driven on moto with a clock the test moves; every DynamoDB request they send is recorded
(operation and partition keys), so each test says exactly which partitions a request read and in how many
round trips.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from conftest import LEDGER_TABLE, OTP_SECRET_TABLE, WILLSON_TABLE, demo_fixture
from helpers.ledger import swap_logs
from helpers.otp import T0, code_at
from helpers.routes import progress, swap, swap_body
from payments.repositories.ledger import LedgerRepository
from payments.repositories.shared_items import MAX_TTL_SECONDS, SharedItemCache, forget_all
from payments.repositories.willson import WillsonRepository
from payments.services.time_budget import TimeBudget
from payments_cli.fixture_loader import load_fixture, parse_fixture_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sent(dynamodb: Any) -> Iterator[list[tuple[str, list[str]]]]:
    """(operation, partition keys named) of each request the handlers' client sends."""
    requests: list[tuple[str, list[str]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        requests.append((model.name, _partition_keys(params)))

    dynamodb.meta.events.register("before-parameter-build.dynamodb", record)
    yield requests
    dynamodb.meta.events.unregister("before-parameter-build.dynamodb", record)


def _partition_keys(params: dict[str, Any]) -> list[str]:
    reads = [table for table in params.get("RequestItems", {}).values() if isinstance(table, dict)]  # not writes
    found = [key["pk"]["S"] for table in reads for key in table.get("Keys", [])]
    found += [value["S"] for name, value in params.get("ExpressionAttributeValues", {}).items() if name == ":pk"]
    return found


SHARED_SWAP_KEYS = {"APP#1", "COIN#2", "RATE#1#1#2"}


# --- the cache itself --------------------------------------------------------------------------------------


def test_an_entry_lives_exactly_ttl_seconds_from_the_read(clock: Clock) -> None:
    cache = SharedItemCache(30, clock)
    read_at = cache.now()
    clock.now += 2  # the read took 2 s: the entry's age counts from before it
    cache.put("k", {"v": 1}, read_at)
    clock.now = read_at + 29.999
    assert cache.get("k") == {"v": 1}
    clock.now = read_at + 30
    assert cache.get("k") is None
    assert cache.get("k") is None  # and it is gone, not resurrected


def test_a_zero_ttl_keeps_nothing_and_the_bound_is_sixty_seconds(clock: Clock) -> None:
    off = SharedItemCache(0, clock)
    off.put("k", 1)
    assert off.get("k") is None
    assert SharedItemCache(MAX_TTL_SECONDS, clock).ttl_seconds == 60
    with pytest.raises(ValueError, match="0 to 60 s"):
        SharedItemCache(61, clock)


def test_forget_all_empties_every_cache_of_the_process(clock: Clock) -> None:
    first, second = SharedItemCache(30, clock), SharedItemCache(30, clock)
    first.put("a", 1)
    second.put("b", 2)
    forget_all()
    assert (first.get("a"), second.get("b")) == (None, None)


# --- the swap: apps, coins and rates -----------------------------------------------------------------------


def _ledger(client: Any, clock: Clock, ttl: float = 30) -> LedgerRepository:
    return LedgerRepository(client, LEDGER_TABLE, OTP_SECRET_TABLE, SharedItemCache(ttl, clock))


def test_swaps_of_other_accounts_read_only_their_own_items_until_the_ttl_passes(demo, sent, clock) -> None:
    ledger = _ledger(demo, clock)
    first = ledger.read_swap_state(19, 1, 1, 2, "f1")
    second = ledger.read_swap_state(20, 1, 1, 2, "f2")
    clock.now += 30
    third = ledger.read_swap_state(21, 1, 1, 2, "f3")
    assert [operation for operation, _ in sent] == ["BatchGetItem"] * 3  # one round trip each, kept or not
    assert set(sent[0][1]) >= SHARED_SWAP_KEYS
    assert set(sent[1][1]) == {"ACCOUNT#20"}  # the caller's own items only
    assert set(sent[2][1]) >= SHARED_SWAP_KEYS  # stale: the keys ride in the request's one read
    assert first.app == second.app == third.app is not None
    assert first.rate == second.rate == third.rate == Decimal("0.1")
    assert first.coin == second.coin is not None


def test_a_changed_rate_is_applied_once_the_ttl_has_passed(demo, clock) -> None:
    ledger = _ledger(demo, clock)
    assert ledger.read_swap_state(19, 1, 1, 2, "f1").rate == Decimal("0.1")
    demo.update_item(
        TableName=LEDGER_TABLE,
        Key={"pk": {"S": "RATE#1#1#2"}, "sk": {"S": "RATE"}},
        UpdateExpression="SET rate = :rate",
        ExpressionAttributeValues={":rate": {"N": "0.2"}},
    )
    clock.now += 29
    assert ledger.read_swap_state(19, 1, 1, 2, "f2").rate == Decimal("0.1")
    clock.now += 1
    assert ledger.read_swap_state(19, 1, 1, 2, "f3").rate == Decimal("0.2")


def test_a_missing_app_is_not_kept_so_a_new_one_is_seen_at_once(demo, sent, clock) -> None:
    ledger = _ledger(demo, clock)
    assert ledger.read_swap_state(19, 77, 1, 2, "f1").app is None
    new_app = {"apps": [{"app_id": 77, "database_id": 7, "name": "new", "points": [{"point_id": 1, "name": "p"}]}]}
    # loaded straight into the table: the environment is not told (conftest's `load` would empty its caches)
    load_fixture(demo, parse_fixture_text(json.dumps(new_app)), WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE)
    assert ledger.read_swap_state(19, 77, 1, 2, "f2").app is not None
    assert "APP#77" in sent[-1][1]


def test_with_the_cache_off_every_swap_reads_the_catalogue(demo, sent, clock) -> None:
    ledger = _ledger(demo, clock, ttl=0)
    ledger.read_swap_state(19, 1, 1, 2, "f1")
    ledger.read_swap_state(20, 1, 1, 2, "f2")
    assert all(set(keys) >= SHARED_SWAP_KEYS for _, keys in sent)


def test_each_swap_log_records_the_rate_it_applied(demo, monkeypatch) -> None:
    monkeypatch.setattr("functions.swap.app.clock", lambda: T0)
    assert swap(swap_body(when=T0))[0] == 200
    (log,) = swap_logs(demo)
    assert log["rate"] == Decimal("0.1")


def test_the_swap_handler_keeps_the_catalogue_between_requests(demo, sent, monkeypatch) -> None:
    """Through the handler (its environment's cache, SHARED_ITEMS_CACHE_SECONDS' default): still 2 requests."""
    monkeypatch.setattr("functions.swap.app.clock", lambda: T0)
    assert swap(swap_body(when=T0))[0] == 200
    assert swap(swap_body(adjust_point=-220, adjust_coin=22, otp_code=code_at(T0 + 30)))[0] == 200
    operations = [operation for operation, _ in sent]
    assert operations == ["BatchGetItem", "TransactWriteItems", "BatchGetItem", "TransactWriteItems"]
    assert set(sent[0][1]) >= SHARED_SWAP_KEYS
    assert not SHARED_SWAP_KEYS & set(sent[2][1])


# --- payment progress: the ticket catalogue and listing pages ------------------------------------------------


def _willson(client: Any, clock: Clock, ttl: float = 30) -> WillsonRepository:
    return WillsonRepository(client, WILLSON_TABLE, LEDGER_TABLE, SharedItemCache(ttl, clock))


def test_the_ticket_catalogue_rides_in_the_one_read_only_when_not_kept(demo, sent, clock) -> None:
    willson = _willson(demo, clock)
    first = willson.load_payment_context(149, 1577, 1, 1)
    second = willson.load_payment_context(150, 1577, 1, 1)
    clock.now += 30
    willson.load_payment_context(151, 1577, 1, 1)
    assert [operation for operation, _ in sent] == ["BatchGetItem"] * 3
    assert ["TICKETS" in keys for _, keys in sent] == [True, False, True]
    assert first.tickets == second.tickets and first.tickets


def test_a_listing_page_is_kept_in_rank_order_and_read_again_when_more_is_wanted(demo, sent, clock) -> None:
    willson = _willson(demo, clock)
    budget = TimeBudget(lambda: 60_000, 10)
    concern = willson.load_payment_context(149, 1577, 1, 1).concern
    assert concern is not None
    sent.clear()
    head = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 2, budget.before_call)
    again = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 2, budget.before_call)
    assert [operation for operation, _ in sent] == ["Query"]  # the second came from the environment
    assert again == head and len(head.cards) == 2
    more = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 31, budget.before_call)
    assert [operation for operation, _ in sent] == ["Query", "Query"]  # two cards are not enough for 31
    assert more.cards[:2] == head.cards  # the same order, read or kept
    willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 40, budget.before_call)
    assert len(sent) == 2  # the whole partition is kept: any number wanted is answered from it


def test_a_willsoner_who_becomes_complete_is_listed_once_the_ttl_has_passed(demo, clock) -> None:
    fixture = demo_fixture()
    willson = _willson(demo, clock)
    budget = TimeBudget(lambda: 60_000, 10)
    concern = willson.load_payment_context(149, 1577, 1, 1).concern
    assert concern is not None
    pending = next(
        w
        for w in fixture["willsoners"]
        if w["status"] != "complete" and concern.subcategory_idx in w["subcategory_idx"]
    )
    before = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 31, budget.before_call)
    completed = {**fixture, "willsoners": [{**pending, "status": "complete"}]}
    load_fixture(demo, parse_fixture_text(json.dumps(completed)), WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE)
    kept = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 31, budget.before_call)
    clock.now += 30
    after = willson.list_candidates(concern.subcategory_idx, concern.wil_gender, 31, budget.before_call)
    assert kept == before
    assert pending["idx"] not in {card.idx for card in before.cards}
    assert pending["idx"] in {card.idx for card in after.cards}


def test_payment_progress_keeps_tickets_and_listing_between_requests(demo, sent) -> None:
    """Through the handler: the first request reads 2 times, the next of another caller 1 time, same answer."""
    first = progress({"concern_idx": 1577})
    assert first[0] == 200
    requests_of_first = list(sent)
    sent.clear()
    assert progress({"concern_idx": 1577}) == first
    assert [operation for operation, _ in requests_of_first] == ["BatchGetItem", "Query"]
    assert [operation for operation, _ in sent] == ["BatchGetItem"]
    assert "TICKETS" not in sent[0][1]
