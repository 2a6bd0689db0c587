"""Tables written by the previous data model still work after a deploy of this one.

`tests/data/tables_v1.json` holds every item of the three tables as commit 67a8d2d (the data model
before item shapes were defined in `payments.repositories.*_items`) wrote them: the demo fixture,
plus account 20; account 19 swapped three times (T0, T0+60, T0+120), account 20 once, then sent
five wrong codes and is locked. Its `clock` is the instant the dump was taken (T0+150), its
`answers` the answers that were given, and `progress_answers` what that commit answered to asker 149's
three payment-progress requests on these tables. The items are loaded as they are, as a deployed stack's
tables would be after a deploy, and the new code is run against them at that instant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from conftest import TABLES_V1
from helpers import T0, code_at, error, ledger_items, progress, swap, swap_body
from payments_cli.reconcile import reconcile

DUMP = TABLES_V1
SECRET_20 = "KRSXG5CTMVRXEZLUKN2XAZLSKRSXG5CT"


def test_the_dump_is_what_the_previous_model_wrote():
    # Given the dump, then its answers are those of three swaps of 19, one of 20 and five wrong codes
    values = [answer.get("value", {}).get("log_id") for answer in DUMP["answers"]]
    assert values == [1, 2, 3, 1, None, None, None, None, None]
    assert [answer["return"] for answer in DUMP["answers"][4:]] == [32107] * 5


def test_a_committed_request_replays_its_answer(tables_v1):
    # When the first swap of account 19 (T0) is sent again, its OTP code long expired
    status, answer = swap(DUMP["requests"]["swap_19_first"])
    # Then the answer committed by the previous version comes back, and nothing moved
    assert (status, answer) == (200, DUMP["answers"][0])
    assert ledger_items(tables_v1) == ledger_items_after_load()


def test_the_chain_goes_on(tables_v1):
    # When account 19 swaps again with a current code
    now = DUMP["clock"]
    status, answer = swap(swap_body(adjust_point=-20, adjust_coin=2, when=now))
    # Then it is log 4, starting from the balances the previous version's log 3 left
    assert status == 200, answer
    assert answer["value"]["log_id"] == 4
    assert answer["value"]["point"]["previous_point_quantity"] == 2010
    assert answer["value"]["point"]["point_quantity"] == 1990
    assert answer["value"]["coin"]["previous_coin_quantity"] == 9
    assert answer["value"]["coin"]["coin_quantity"] == 11
    # and the books are still clean
    assert reconcile(ledger_items(tables_v1)).problems == []


def test_the_otp_lock_holds(tables_v1):
    # When locked account 20 sends a correct code
    body = swap_body(adjust_point=-10, adjust_coin=1, otp_code=code_at(DUMP["clock"], SECRET_20))
    status, answer = swap(body, au_id=20)
    # Then it is still locked
    assert (status, answer) == (429, error(32109, "Too many OTP attempts"))


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("all", {"concern_idx": 1577}),
        ("same", {"concern_idx": 1577, "match_type": 1}),
        ("different", {"concern_idx": 1577, "match_type": 2}),
    ],
)
def test_payment_progress_reads_the_stored_items(tables_v1, case, body):
    # When asker 149 asks for concern 1577
    status, answer = progress(body)
    # Then the stored listing, cards, tickets, concern and honeypots give the previous version's answer
    assert {"status": status, "body": answer} == DUMP["progress_answers"][case]


def test_reconcile_is_clean(tables_v1):
    report = reconcile(ledger_items(tables_v1))
    assert report.problems == []
    assert (report.accounts, report.swap_logs) == (3, 4)


def ledger_items_after_load() -> list[dict[str, Any]]:
    """The ledger's items as the dump holds them, decoded as helpers.ledger_items decodes them."""
    from payments.repositories import codec

    items = [codec.from_item(item) for item in DUMP["tables"]["LedgerTable"]]
    return sorted((item for item in items if item is not None), key=lambda item: (item["pk"], item["sk"]))


def test_balances_in_the_dump_are_exact_numbers():
    # The dump's coin balances are DynamoDB numbers, read as Decimal, never floats
    wallet = next(
        i for i in DUMP["tables"]["LedgerTable"] if i["sk"]["S"] == "WALLET#2" and "ACCOUNT#20" in i["pk"]["S"]
    )
    assert Decimal(wallet["quantity"]["N"]) == Decimal(20)
    assert T0 < DUMP["clock"] < T0 + 600
