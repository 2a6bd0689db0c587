"""The continuous auditor (payments.audit, functions/audit): stream records in, breaks out.

Fast tier: the checker on crafted stream records (exact findings), the handler's partial batch response, and the
handler on the real stream records of moto's in-process DynamoDB after swaps through the swap handler. The slow
tier (test_audit_local.py) reads the stream of DynamoDB Local.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from conftest import LEDGER_TABLE
from helpers import T0, LambdaContext, swap, swap_body
from payments.audit import Finding, LedgerAuditor, UnreadableRecord
from payments.models.ledger import SwapLog, SwapResult
from payments.repositories import codec
from payments.repositories.audit_reader import LedgerEntryReader
from payments.repositories.ledger_items import AdjustmentItem, SwapLogItem

# the handler's metrics are spied on (add_metric replaced): Powertools then finds none to flush
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
AU = 19
_sequence = iter(range(1, 10**9))


# --- crafted records ----------------------------------------------------------------------------------------------


def stream_record(
    event: str, item: Mapping[str, Any] | None = None, old: Mapping[str, Any] | None = None, seq: str | None = None
) -> dict[str, Any]:
    """A record as Lambda delivers it from the ledger's stream (NEW_AND_OLD_IMAGES)."""
    image = item if item is not None else old
    assert image is not None
    body: dict[str, Any] = {
        "Keys": codec.to_item({"pk": image["pk"], "sk": image["sk"]}),
        "SequenceNumber": seq or f"{next(_sequence):021d}",
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        "ApproximateCreationDateTime": 1_700_000_000,
    }
    if item is not None and event != "REMOVE":
        body["NewImage"] = codec.to_item(dict(item))
    if old is not None:
        body["OldImage"] = codec.to_item(dict(old))
    return {
        "eventID": body["SequenceNumber"],
        "eventName": event,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/LedgerTable/stream/2026-01-01T00:00:00.000",
        "dynamodb": body,
    }


def point(quantity: int | Decimal, last_log_id: int = 0, last_adjustment_seq: int = 0, au_id: int = AU) -> dict:
    item = {
        "pk": f"ACCOUNT#{au_id}",
        "sk": "POINT#1#1",
        "entity": "point",
        "au_id": au_id,
        "app_id": 1,
        "point_id": 1,
        "mu_id": 1,
        "quantity": Decimal(quantity),
        "last_log_id": last_log_id,
    }
    if last_adjustment_seq:
        item["last_adjustment_seq"] = last_adjustment_seq
    return item


def wallet(quantity: int | Decimal | str, last_log_id: int = 0, last_adjustment_seq: int = 0, au_id: int = AU) -> dict:
    item = {
        "pk": f"ACCOUNT#{au_id}",
        "sk": "WALLET#2",
        "entity": "wallet",
        "au_id": au_id,
        "coin_id": 2,
        "walletaddress": "0xabc",
        "quantity": Decimal(quantity),
        "last_log_id": last_log_id,
    }
    if last_adjustment_seq:
        item["last_adjustment_seq"] = last_adjustment_seq
    return item


def swap_log(log_id: int, points: tuple[int, int], coins: tuple[str, str], au_id: int = AU) -> dict[str, Any]:
    previous_coin, new_coin = Decimal(coins[0]), Decimal(coins[1])
    result = SwapResult(
        au_id=au_id,
        event_id=3,
        log_id=log_id,
        app_id=1,
        database_id=1,
        point_id=1,
        mu_id=1,
        previous_point=points[0],
        adjust_point=points[1] - points[0],
        new_point=points[1],
        coin_id=2,
        walletaddress="0xabc",
        previous_coin=previous_coin,
        adjust_coin=new_coin - previous_coin,
        new_coin=new_coin,
    )
    return SwapLogItem.write(SwapLog(log_id, f"fp{log_id}", 1000 + log_id, 1, result, Decimal("0.1")))


def adjustment(seq: int, balance: str, previous: Any, new: Any, after_log_id: int = 0, au_id: int = AU) -> dict:
    """An adjustment entry as docs/data-model.md describes it."""
    return {
        **AdjustmentItem.key(au_id, seq),
        "entity": "adjustment",
        "au_id": au_id,
        "adjustment_seq": seq,
        "adjustment_id": f"adj-{seq}",
        "balance": balance,
        "after_log_id": after_log_id,
        "previous_quantity": Decimal(previous),
        "new_quantity": Decimal(new),
        "reason": "correction",
        "actor": "ops",
        "created_at_ms": 1,
    }


def account(log_seq: int, adjustment_seq: int = 0) -> dict[str, Any]:
    return {
        "pk": f"ACCOUNT#{AU}",
        "sk": "ACCOUNT",
        "entity": "account",
        "au_id": AU,
        "version": log_seq + adjustment_seq,
        "log_seq": log_seq,
        "adjustment_seq": adjustment_seq,
    }


def swap_records(log_id: int, points: tuple[int, int], coins: tuple[str, str], old_stamps: int = 0) -> list[dict]:
    """The stream records of one committed swap: the account, both balances, the log, the request record."""
    request = {"pk": f"ACCOUNT#{AU}", "sk": f"REQUEST#fp{log_id}", "entity": "request", "log_id": log_id}
    return [
        stream_record("MODIFY", account(log_id), account(log_id - 1)),
        stream_record("MODIFY", point(points[1], log_id), point(points[0], old_stamps)),
        stream_record("MODIFY", wallet(coins[1], log_id), wallet(coins[0], old_stamps)),
        stream_record("INSERT", swap_log(log_id, points, coins)),
        stream_record("INSERT", request),
    ]


class Ledger:
    """The auditor's reader over a dict of items; counts reads; an entry may appear only after `late` reads."""

    def __init__(self, *items: Mapping[str, Any], late: int = 0) -> None:
        self.items = {(item["pk"], item["sk"]): item for item in items}
        self.reads = 0
        self.late = late

    def _get(self, pk: str, sk: str) -> Mapping[str, Any] | None:
        self.reads += 1
        if self.reads <= self.late:
            return None
        return self.items.get((pk, sk))

    def swap_log(self, au_id: int, log_id: int) -> Mapping[str, Any] | None:
        return self._get(f"ACCOUNT#{au_id}", f"SWAPLOG#{log_id:020d}")

    def adjustment(self, au_id: int, seq: int) -> Mapping[str, Any] | None:
        return self._get(f"ACCOUNT#{au_id}", f"ADJUSTMENT#{seq:020d}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def auditor(reader: Any, clock: FakeClock | None = None) -> LedgerAuditor:
    clock = clock or FakeClock()
    return LedgerAuditor(reader, partner_wait_seconds=2.0, retry_interval=0.25, sleep=clock.sleep, clock=clock)


def findings(reader: Any, records: list[dict[str, Any]], clock: FakeClock | None = None) -> list[Finding]:
    found, unreadable = auditor(reader, clock).audit(records)
    assert unreadable == []
    return found


def reasons(found: list[Finding]) -> list[tuple[int | None, str, str]]:
    return [(f.au_id, f.item, f.reason) for f in found]


# --- the checker ----------------------------------------------------------------------------------------------


def test_a_swap_in_one_batch_is_explained_without_a_read():
    ledger = Ledger()
    assert findings(ledger, swap_records(1, (2100, 1990), ("0", "11"))) == []
    assert ledger.reads == 0


def test_records_of_one_swap_in_any_order_and_apart_are_explained():
    records = swap_records(1, (2100, 1990), ("0", "11"))
    for _ in range(5):
        random.shuffle(records)
        assert findings(Ledger(), records) == []
    # the balance writes in one batch, the log in a later one: read from the ledger (it has committed)
    log = swap_log(1, (2100, 1990), ("0", "11"))
    balances_only = [r for r in records if "SWAPLOG" not in json.dumps(r["dynamodb"]["Keys"])]
    ledger = Ledger(log)
    assert findings(ledger, balances_only) == []
    assert ledger.reads == 1  # one read for both balances of the batch


def test_a_late_partner_is_waited_for_within_the_bound():
    log = swap_log(1, (2100, 1990), ("0", "11"))
    balance = [stream_record("MODIFY", point(1990, 1), point(2100))]
    clock = FakeClock()
    assert findings(Ledger(log, late=3), balance, clock) == []
    assert clock.slept == [0.25, 0.25, 0.25]
    # never there: a break once the bound is spent (2 s of 0.25 s waits), not before
    clock = FakeClock()
    found = findings(Ledger(), balance, clock)
    assert reasons(found) == [(AU, "POINT#1#1", "the balance's stamp names swap log 1, which does not exist")]
    assert sum(clock.slept) == 2.0
    # many missing entries in one batch wait once: the bound is the batch's
    clock = FakeClock()
    many = [stream_record("MODIFY", point(1990, n), point(2100, n - 1)) for n in range(1, 30)]
    assert len(findings(Ledger(), many, clock)) == 29
    assert sum(clock.slept) == 2.0


def test_a_balance_edited_directly_is_a_break_naming_the_account():
    record = stream_record("MODIFY", point(1_000_000, 3), point(1990, 3), seq="000000000000000000042")
    found = findings(Ledger(), [record])
    assert found == [
        Finding(
            AU, "POINT#1#1", "balance changed without an entry (1990 -> 1000000, stamps unchanged)", "0" * 19 + "42"
        )
    ]
    assert found[0].line() == "au_id 19 POINT#1#1: balance changed without an entry (1990 -> 1000000, stamps unchanged)"


def test_a_balance_that_is_not_what_its_entry_left_is_a_break():
    log = swap_log(1, (2100, 1990), ("0", "11"))
    assert reasons(findings(Ledger(log), [stream_record("MODIFY", point(1999, 1), point(2100))])) == [
        (AU, "POINT#1#1", "balance is 1999, swap log 1 left 1990")
    ]
    assert reasons(findings(Ledger(log), [stream_record("MODIFY", wallet("11", 1), wallet("5"))])) == [
        (AU, "WALLET#2", "balance was 5, swap log 1 found 0")
    ]
    other = {**log, "value": {**log["value"], "coin": {**log["value"]["coin"], "coin_id": 3}}}
    assert reasons(findings(Ledger(other), [stream_record("MODIFY", wallet("11", 1), wallet("0"))])) == [
        (AU, "WALLET#2", "the balance's stamp names swap log 1, which did not move this balance")
    ]


def test_one_write_moving_both_stamps_is_a_break_even_when_its_swap_explains_the_quantity():
    # A swap and an adjustment are two transactions: no write of ours moves both stamps of a balance at once
    log = swap_log(1, (2100, 1990), ("0", "11"))
    both = stream_record("MODIFY", point(1990, 1, last_adjustment_seq=1), point(2100))
    assert reasons(findings(Ledger(log), [both])) == [
        (AU, "POINT#1#1", "one write moved both stamps (swap log 1, adjustment 1)")
    ]


def test_the_chain_of_a_balance_follows_its_previous_entry():
    log1 = swap_log(1, (2100, 1990), ("0", "11"))
    # swap 2 found what swap 1 left
    assert findings(Ledger(log1), swap_records(2, (1990, 1890), ("11", "21"), old_stamps=1)) == []
    # swap 2 found 1995 where swap 1 left 1990 (and the balance said 1995: an edit the auditor did not see)
    records = swap_records(2, (1995, 1895), ("11", "21"), old_stamps=1)
    assert reasons(findings(Ledger(log1), records)) == [
        (AU, "POINT#1#1", "swap log 2 found 1995, the previous swap log 1 left 1990")
    ]


def test_a_new_entry_needs_the_previous_one():
    log2 = swap_log(2, (1990, 1890), ("11", "21"))
    assert reasons(findings(Ledger(), [stream_record("INSERT", log2)])) == [
        (AU, "SWAPLOG#00000000000000000002", "swap log 2 follows no swap log 1")
    ]
    assert findings(Ledger(swap_log(1, (2100, 1990), ("0", "11"))), [stream_record("INSERT", log2)]) == []
    # the previous one in the same batch, arriving after it
    both = [stream_record("INSERT", log2), stream_record("INSERT", swap_log(1, (2100, 1990), ("0", "11")))]
    assert findings(Ledger(), both) == []
    bad = swap_log(1, (2100, 1990), ("0", "11"))
    bad["value"]["point"]["adjust_point_quantity"] = -100
    assert reasons(findings(Ledger(), [stream_record("INSERT", bad)])) == [
        (AU, "SWAPLOG#00000000000000000001", "swap log 1 point: 2100 + -100 != 1990")
    ]


def test_an_adjustment_explains_its_balance():
    entry = adjustment(1, "WALLET#2", "11", "50", after_log_id=1)
    records = [
        stream_record("MODIFY", account(1, 1), account(1)),
        stream_record("MODIFY", wallet("50", 1, 1), wallet("11", 1)),
        stream_record("INSERT", entry),
    ]
    log1 = swap_log(1, (2100, 1990), ("0", "11"))
    assert findings(Ledger(log1), records) == []
    # a swap after the adjustment: the balance's previous entry is the adjustment (after_log_id 1 >= log 1)
    swap2 = swap_log(2, (1990, 1890), ("50", "60"))
    after = [stream_record("MODIFY", wallet("60", 2, 1), wallet("50", 1, 1)), stream_record("INSERT", swap2)]
    assert findings(Ledger(log1, entry), after) == []
    # an adjustment that does not say what the balance became
    wrong = [stream_record("MODIFY", wallet("70", 1, 1), wallet("11", 1)), stream_record("INSERT", entry)]
    assert reasons(findings(Ledger(log1), wrong)) == [(AU, "WALLET#2", "balance is 70, adjustment 1 left 50")]
    # adjustment 2 without adjustment 1
    assert reasons(findings(Ledger(), [stream_record("INSERT", adjustment(2, "WALLET#2", "50", "40", 1))])) == [
        (AU, "ADJUSTMENT#00000000000000000002", "adjustment 2 follows no adjustment 1")
    ]


def test_entries_are_written_once_and_balances_never_removed():
    log1 = swap_log(1, (2100, 1990), ("0", "11"))
    edited = {**log1, "fingerprint": "other"}
    assert reasons(findings(Ledger(), [stream_record("MODIFY", edited, log1)])) == [
        (AU, "SWAPLOG#00000000000000000001", "entry modified (entries are written once)")
    ]
    assert reasons(findings(Ledger(), [stream_record("REMOVE", None, log1)])) == [
        (AU, "SWAPLOG#00000000000000000001", "entry removed (entries are never removed)")
    ]
    assert reasons(findings(Ledger(), [stream_record("REMOVE", None, point(10, 1))])) == [
        (AU, "POINT#1#1", "balance removed (no entry removes a balance)")
    ]
    assert reasons(findings(Ledger(log1), [stream_record("MODIFY", point(1990, 0), point(1990, 1))]))[0][2].startswith(
        "stamp went back"
    )


def test_opening_balances_and_other_items_need_no_entry():
    records = [
        stream_record("INSERT", point(2100)),
        stream_record("INSERT", wallet("0")),
        stream_record("INSERT", account(0)),
        # the loader again, same quantity, another attribute changed
        stream_record("MODIFY", {**point(2100), "mu_id": 7}, point(2100)),
        stream_record("MODIFY", {"pk": f"ACCOUNT#{AU}", "sk": "OTP_GUARD", "failures": []}, None),
    ]
    assert findings(Ledger(), records) == []


def test_a_poison_record_is_unreadable_alone():
    poison = stream_record("MODIFY", point(10, 1), point(5))
    poison["dynamodb"]["NewImage"]["quantity"] = {"S": "lots"}
    checker = auditor(Ledger()).batch([poison])
    with pytest.raises(UnreadableRecord):
        checker.check(poison)
    with pytest.raises(UnreadableRecord):
        checker.check({"eventName": "MODIFY"})
    found, unreadable = auditor(Ledger()).audit([poison, *swap_records(1, (2100, 1990), ("0", "11"))])
    assert found == [] and len(unreadable) == 1


# --- the handler ----------------------------------------------------------------------------------------------


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    from functions.audit import app

    published: list[tuple[str, float]] = []
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(app.metrics, "add_metric", lambda name, unit, value: published.append((name, value)))
    monkeypatch.setattr(app.logger, "warning", lambda message, extra: logged.append({"message": message, **extra}))
    app.published = published  # type: ignore[attr-defined]
    app.logged = logged  # type: ignore[attr-defined]
    return app


def use_ledger(monkeypatch: pytest.MonkeyPatch, app: Any, reader: Any) -> None:
    monkeypatch.setattr(app, "auditor", auditor(reader))


def break_lines(app: Any) -> list[dict[str, Any]]:
    """The breaks the handler logged since the last call (its logger's warnings)."""
    lines = [line for line in app.logged if line["message"] == "ledger audit break"]
    app.logged.clear()
    return lines


def test_the_handler_reports_a_poison_record_alone_and_processes_the_rest(handler, monkeypatch):
    use_ledger(monkeypatch, handler, Ledger())
    poison = stream_record("MODIFY", point(10, 1), point(5))
    poison["dynamodb"]["NewImage"]["quantity"] = {"S": "lots"}
    tampered = stream_record("MODIFY", wallet("999", 1), wallet("11", 1))
    swap_part = swap_records(1, (2100, 1990), ("0", "11"))
    records = [*swap_part[:2], poison, *swap_part[2:], tampered]
    response = handler.lambda_handler({"Records": records}, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    # the records after the poison one were checked: the tampered wallet is reported
    [line] = break_lines(handler)
    assert (line["au_id"], line["item"], line["reason"]) == (
        AU,
        "WALLET#2",
        "balance changed without an entry (11 -> 999, stamps unchanged)",
    )
    assert handler.published == [("LedgerAuditBreak", 1)]


def test_the_handler_publishes_zero_breaks_for_a_correct_swap(handler, monkeypatch):
    use_ledger(monkeypatch, handler, Ledger())
    response = handler.lambda_handler({"Records": swap_records(1, (2100, 1990), ("0", "11"))}, LambdaContext())
    assert response == {"batchItemFailures": []}
    assert break_lines(handler) == []
    assert handler.published == [("LedgerAuditBreak", 0)]


def test_the_handler_fails_a_record_whose_entry_cannot_be_read(handler, monkeypatch):
    class Unreachable(Ledger):
        def swap_log(self, au_id: int, log_id: int) -> Mapping[str, Any] | None:
            raise ConnectionError("DynamoDB unreachable")

    use_ledger(monkeypatch, handler, Unreachable())
    good = stream_record("INSERT", point(2100))
    needs_read = stream_record("MODIFY", point(1990, 1), point(2100))
    response = handler.lambda_handler({"Records": [good, needs_read]}, LambdaContext())
    # retried from it by Lambda (then bisected, then the failure queue): not judged a break
    assert response == {"batchItemFailures": [{"itemIdentifier": needs_read["dynamodb"]["SequenceNumber"]}]}
    assert handler.published == [("LedgerAuditBreak", 0)]


# --- real stream records (moto in-process) ----------------------------------------------------------------------


def stream_of(client: Any) -> list[dict[str, Any]]:
    """Every record of the ledger table's stream so far, as GetRecords returns them."""
    import boto3

    # moto's in-process mock answers the streams API at its classic endpoint only
    streams = boto3.client(
        "dynamodbstreams", region_name="us-east-1", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
    )
    arn = client.describe_table(TableName=LEDGER_TABLE)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        response = streams.get_records(ShardIterator=iterator["ShardIterator"])
        records += response["Records"]
    return records


def lambda_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GetRecords' records as Lambda delivers them (the creation time in epoch seconds, the stream's ARN)."""
    return json.loads(json.dumps(records, default=lambda value: value.timestamp()))


@pytest.fixture
def swapped(demo, ledger_stream, monkeypatch):
    from functions.swap import app as swap_app

    monkeypatch.setattr(swap_app, "clock", lambda: T0)
    status, body = swap(swap_body())
    assert status == 200, body
    return demo


def test_real_records_of_a_swap_raise_no_alarm_and_an_edit_does(swapped, handler, monkeypatch):
    monkeypatch.setattr(handler, "auditor", LedgerAuditor(LedgerEntryReader(swapped, LEDGER_TABLE)))
    swapped.update_item(
        TableName=LEDGER_TABLE,
        Key=codec.to_item({"pk": "ACCOUNT#19", "sk": "POINT#1#1"}),
        UpdateExpression="SET quantity = :q",
        ExpressionAttributeValues={":q": {"N": "5000000"}},
    )
    records = lambda_records(stream_of(swapped))
    assert any("SWAPLOG#" in json.dumps(r["dynamodb"]["Keys"]) for r in records)
    *swap_part, edit = records
    # the swap, alone and each record in a batch of its own: no alarm
    assert handler.lambda_handler({"Records": swap_part}, LambdaContext()) == {"batchItemFailures": []}
    for record in swap_part:
        handler.lambda_handler({"Records": [record]}, LambdaContext())
    assert break_lines(handler) == []
    handler.lambda_handler({"Records": [edit]}, LambdaContext())
    [line] = break_lines(handler)
    assert line["au_id"] == 19 and line["item"] == "POINT#1#1"
    assert line["reason"] == "balance changed without an entry (1990 -> 5000000, stamps unchanged)"
