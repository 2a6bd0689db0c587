"""Adjustment entries: every balance write other than a swap goes with its entry, in the same transaction.

On moto in-process: the repository (payments.repositories.adjustments), `payments adjust` (in-process through
main()), a swap landing between an adjustment's read and its write, fixtures over live and legacy accounts, and
what `reconcile` then finds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from conftest import LEDGER_TABLE, demo_fixture, load
from helpers import account_items, ledger_items, swap, swap_body
from payments.repositories import codec, keys
from payments.repositories.adjustments import (
    AdjustmentConflict,
    AdjustmentRepository,
    BalanceSetting,
    Outcome,
    PointTarget,
    WalletTarget,
)
from payments_cli import main as cli
from payments_cli.reconcile import reconcile

NOW = 1_795_000_100.5


def repository(client: Any, **options: Any) -> AdjustmentRepository:
    return AdjustmentRepository(client, LEDGER_TABLE, clock=lambda: NOW, **options)


def point(quantity: int, adjustment_id: str = "fix-1", mu_id: int | None = None) -> BalanceSetting:
    return BalanceSetting(adjustment_id, PointTarget(1, 1, mu_id), quantity)


def account_of(fixture: dict[str, Any], au_id: int) -> dict[str, Any]:
    return next(account for account in fixture["accounts"] if account["au_id"] == au_id)


def problems(client: Any) -> list[str]:
    return reconcile(ledger_items(client)).problems


class CountingWrites:
    """A client that counts the write calls it forwards (a load that writes nothing makes none)."""

    WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")

    def __init__(self, real: Any) -> None:
        self._real = real
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name not in self.WRITES:
            return attribute

        def counted(**kwargs: Any) -> Any:
            self.writes.append(name)
            return attribute(**kwargs)

        return counted


# --- the repository -------------------------------------------------------------------------------------------


def test_an_adjustment_sets_the_balance_and_writes_its_entry_and_marker(ledger):
    # Given account 19 of the demo: 2100 points, written by its two opening entries
    # When ops set its points to 2000
    [result] = repository(ledger).set_balances(19, [point(2000)], reason="refund #7", actor="alice")
    # Then the balance, its stamp, the account's sequence, the entry and the marker are exactly these
    items = account_items(ledger, 19)
    assert result.outcome is Outcome.APPLIED and result.adjustment_seq == 3 and result.quantity == 2000
    assert items["POINT#1#1"]["quantity"] == 2000 and items["POINT#1#1"]["last_adjustment_seq"] == 3
    assert "last_log_id" not in items["POINT#1#1"]
    assert items["ACCOUNT"] == {
        "pk": "ACCOUNT#19",
        "sk": "ACCOUNT",
        "entity": "account",
        "au_id": 19,
        "version": 0,
        "log_seq": 0,
        "otp_steps": {},
        "adjustment_seq": 3,
    }
    assert items["ADJUSTMENT#00000000000000000003"] == {
        "pk": "ACCOUNT#19",
        "sk": "ADJUSTMENT#00000000000000000003",
        "entity": "adjustment",
        "au_id": 19,
        "adjustment_seq": 3,
        "adjustment_id": "fix-1",
        "balance": "POINT#1#1",
        "after_log_id": 0,
        "previous_quantity": 2100,
        "new_quantity": 2000,
        "reason": "refund #7",
        "actor": "alice",
        "created_at_ms": 1_795_000_100_500,
    }
    assert items["ADJUSTMENT_ID#fix-1"] == {
        "pk": "ACCOUNT#19",
        "sk": "ADJUSTMENT_ID#fix-1",
        "entity": "adjustment_marker",
        "au_id": 19,
        "adjustment_id": "fix-1",
        "adjustment_seq": 3,
        "created_at_ms": 1_795_000_100_500,
    }
    assert result.adjustment is not None and result.adjustment.previous_quantity == 2100
    assert problems(ledger) == []


def test_the_same_id_again_changes_nothing(ledger):
    repository(ledger).set_balances(19, [point(2000)], reason="refund", actor="alice")
    before = ledger_items(ledger)
    # When the same adjustment comes again, even asking for another quantity
    counting = CountingWrites(ledger)
    [result] = repository(counting).set_balances(19, [point(1500)], reason="refund", actor="alice")
    # Then it is reported as applied before, and nothing was written
    assert (result.outcome, result.adjustment_seq, result.quantity, result.adjustment) == (
        Outcome.ALREADY_APPLIED,
        3,
        2000,
        None,
    )
    assert counting.writes == []
    assert ledger_items(ledger) == before


def test_an_equal_quantity_writes_no_entry(ledger):
    before = ledger_items(ledger)
    counting = CountingWrites(ledger)
    [result] = repository(counting).set_balances(19, [point(2100)], reason="check", actor="alice")
    assert (result.outcome, result.quantity) == (Outcome.UNCHANGED, 2100)
    assert counting.writes == []
    assert ledger_items(ledger) == before


def test_a_missing_balance_is_not_created_without_its_mu_id(ledger):
    before = ledger_items(ledger)
    [result] = repository(ledger).set_balances(
        19, [BalanceSetting("x", PointTarget(1, 9), 5)], reason="typo", actor="alice"
    )
    assert result.outcome is Outcome.NO_BALANCE
    assert ledger_items(ledger) == before


def test_a_new_wallet_of_an_existing_account_starts_from_zero(ledger):
    setting = BalanceSetting("w", WalletTarget(3, "0xabc"), Decimal("1.25"))
    [result] = repository(ledger).set_balances(19, [setting], reason="airdrop", actor="ops")
    items = account_items(ledger, 19)
    assert result.outcome is Outcome.APPLIED
    assert items["WALLET#3"] == {
        "pk": "ACCOUNT#19",
        "sk": "WALLET#3",
        "entity": "wallet",
        "au_id": 19,
        "coin_id": 3,
        "walletaddress": "0xabc",
        "quantity": Decimal("1.25"),
        "last_adjustment_seq": 3,
    }
    entry = items["ADJUSTMENT#00000000000000000003"]
    assert (entry["balance"], entry["previous_quantity"], entry["new_quantity"]) == ("WALLET#3", 0, Decimal("1.25"))
    assert "opening" not in entry  # the account existed: not an opening entry
    assert problems(ledger) == []


def test_an_account_created_by_adjustments_opens_its_books_and_its_first_swap_is_log_1(ledger, at_t0):
    # Given a new account opened by a fixture with an OTP secret
    fixture = {
        "accounts": [
            {
                "au_id": 77,
                "otp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                "points": [{"app_id": 1, "point_id": 1, "mu_id": 701, "quantity": 500}],
                "wallets": [{"coin_id": 2, "walletaddress": "0x77", "quantity": "1.5"}],
            }
        ]
    }
    load(ledger, fixture)
    items = account_items(ledger, 77)
    assert [items[f"ADJUSTMENT#{n:020d}"]["opening"] for n in (1, 2)] == [True, True]
    assert items["ACCOUNT"]["adjustment_seq"] == 2 and items["ACCOUNT"]["log_seq"] == 0
    # When it swaps
    status, answer = swap(swap_body(adjust_point=-100, adjust_coin=10), au_id=77)
    # Then its first swap is log 1, after the opening entries, and the books replay from zero
    assert status == 200, answer
    assert answer["value"]["log_id"] == 1
    assert answer["value"]["point"]["previous_point_quantity"] == 500
    assert problems(ledger) == []


def test_a_swap_landing_between_read_and_write_is_never_overwritten(ledger):
    # Given a swap that commits just after the adjustment read the balances (once)
    class SwapFirst(CountingWrites):
        def transact_write_items(self, **kwargs: Any) -> Any:
            if not self.writes:
                assert swap(swap_body())[0] == 200  # 2100 → 1990 points
            self.writes.append("transact_write_items")
            return self._real.transact_write_items(**kwargs)

    racing = SwapFirst(ledger)
    # When ops set the points to 3000
    [result] = repository(racing).set_balances(19, [point(3000)], reason="bonus", actor="ops")
    # Then the first transaction failed on what it read, the second read the swap's balance and applied over it
    assert racing.writes == ["transact_write_items", "transact_write_items"]
    assert result.outcome is Outcome.APPLIED
    entry = account_items(ledger, 19)["ADJUSTMENT#00000000000000000003"]
    assert (entry["previous_quantity"], entry["new_quantity"], entry["after_log_id"]) == (1990, 3000, 1)
    assert account_items(ledger, 19)["POINT#1#1"]["quantity"] == 3000
    # the swap's log is intact and the books replay: opening 2100, log 1 → 1990, adjustment 3 → 3000
    assert problems(ledger) == []


def test_a_read_that_stays_stale_gives_up_and_writes_nothing(ledger):
    class AlwaysStale(CountingWrites):
        def transact_write_items(self, **kwargs: Any) -> Any:
            from botocore.exceptions import ClientError

            self.writes.append("transact_write_items")
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": "ConditionalCheckFailed"}],
                },
                "TransactWriteItems",
            )

    before = ledger_items(ledger)
    stale = AlwaysStale(ledger)
    with pytest.raises(AdjustmentConflict, match="au_id 19: the balances kept changing during 3 attempts"):
        repository(stale, max_attempts=3).set_balances(19, [point(5)], reason="r", actor="a")
    assert stale.writes == ["transact_write_items"] * 3
    assert ledger_items(ledger) == before


# --- fixtures over live and legacy accounts ---------------------------------------------------------------------


def test_a_fixture_over_a_live_account_writes_an_adjustment_after_its_swaps(ledger):
    # Given account 19 swapped once (2100 → 1990 points, 0 → 11 coins)
    assert swap(swap_body())[0] == 200
    # When a changed fixture sets its points to 5000 (its coins as the demo's: 0)
    fixture = demo_fixture()
    account_of(fixture, 19)["points"][0]["quantity"] = 5000
    load(ledger, fixture)
    # Then the points get an entry after log 1 (previous 1990), the coins one too (11 → 0), and the books replay
    items = account_items(ledger, 19)
    entries = [items[f"ADJUSTMENT#{n:020d}"] for n in (3, 4)]
    assert [(e["balance"], e["previous_quantity"], e["new_quantity"], e["after_log_id"]) for e in entries] == [
        ("POINT#1#1", 1990, 5000, 1),
        ("WALLET#2", Decimal("11"), Decimal("0"), 1),
    ]
    assert [e["reason"] for e in entries] == ["load-fixture", "load-fixture"]
    assert items["ACCOUNT"]["log_seq"] == 1 and items["ACCOUNT"]["version"] == 1
    assert problems(ledger) == []
    # When the same fixture is loaded again: nothing is written at all
    counting = CountingWrites(ledger)
    before = ledger_items(ledger)
    load(counting, fixture)
    assert counting.writes == []
    assert ledger_items(ledger) == before


def test_reloading_the_fixture_that_opened_an_account_changes_nothing_after_swaps(ledger):
    # Given account 19 opened by the demo fixture, then a swap
    assert swap(swap_body())[0] == 200
    before = ledger_items(ledger)
    # When the very same fixture is loaded again: its adjustments are the ones already applied
    counting = CountingWrites(ledger)
    load(counting, demo_fixture())
    # Then nothing is written: the swap's balances stay
    assert counting.writes == []
    assert ledger_items(ledger) == before


def test_a_fixture_changing_only_the_mu_id_writes_no_entry(ledger):
    fixture = demo_fixture()
    account_of(fixture, 19)["points"][0]["mu_id"] = 999
    load(ledger, fixture)
    items = account_items(ledger, 19)
    assert items["POINT#1#1"]["mu_id"] == 999 and items["POINT#1#1"]["quantity"] == 2100
    assert items["ACCOUNT"]["adjustment_seq"] == 2
    assert problems(ledger) == []


def test_legacy_accounts_take_adjustments_and_still_reconcile(tables_v1):
    legacy = tables_v1
    # Given accounts written before adjustments existed (149 never swapped: 280 points and no entry)
    assert problems(legacy) == []
    # When ops correct 19 (after its 3 swaps) and a fixture gives 149 a wallet
    repository(legacy).set_balances(19, [point(1000, "fix-19")], reason="correction", actor="ops")
    load(legacy, {"accounts": [{"au_id": 149, "wallets": [{"coin_id": 2, "walletaddress": "0x149", "quantity": "3"}]}]})
    # Then 19's entry sits after log 3, 149's wallet is its first entry, and nobody is broken: 149's points,
    # which no entry explains, are from before (its account existed: no opening entry)
    entry = account_items(legacy, 19)["ADJUSTMENT#00000000000000000001"]
    assert (entry["after_log_id"], entry["previous_quantity"], entry["new_quantity"]) == (3, 2010, 1000)
    wallet_entry = account_items(legacy, 149)["ADJUSTMENT#00000000000000000001"]
    assert (wallet_entry["balance"], wallet_entry["previous_quantity"], "opening" in wallet_entry) == (
        "WALLET#2",
        0,
        False,
    )
    report = reconcile(ledger_items(legacy))
    assert (report.problems, report.accounts, report.swap_logs, report.adjustments) == ([], 3, 4, 2)


# --- what reconcile finds -----------------------------------------------------------------------------------


def set_attribute(client: Any, key: dict[str, str], expression: str, values: dict[str, Any]) -> None:
    client.update_item(
        TableName=LEDGER_TABLE,
        Key=codec.to_item(key),
        UpdateExpression=expression,
        ExpressionAttributeValues={name: codec.to_attribute(value) for name, value in values.items()},
    )


def test_a_balance_written_behind_an_adjustment_is_named(ledger):
    repository(ledger).set_balances(19, [point(2000)], reason="r", actor="a")
    set_attribute(ledger, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 2001})
    assert problems(ledger) == ["au_id 19: POINT#1#1 balance 2001 but the entries end at 2000"]


def test_an_entry_whose_previous_is_not_what_the_one_before_left_is_named(ledger):
    repository(ledger).set_balances(19, [point(2000)], reason="r", actor="a")
    set_attribute(ledger, keys.adjustment(19, 3), "SET previous_quantity = :q", {":q": 2200})
    assert problems(ledger) == ["au_id 19: adjustment 3 POINT#1#1: previous 2200 but the entry before left 2100"]


def test_a_missing_or_extra_adjustment_is_named(ledger):
    repository(ledger).set_balances(19, [point(2000)], reason="r", actor="a")
    ledger.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item(keys.adjustment(19, 2)))
    # (its wallet, 0, is no longer explained by an entry: a balance of 0 needs none)
    assert problems(ledger) == ["au_id 19: adjustment seqs are not contiguous from 1: [1, 3]"]


def test_an_adjustment_sequence_behind_its_entries_is_named(ledger):
    set_attribute(ledger, keys.account(19), "SET adjustment_seq = :n", {":n": 1})
    assert problems(ledger) == ["au_id 19: adjustment_seq 1 but last adjustment 2"]


def test_a_balance_no_entry_wrote_on_an_opened_account_is_named(ledger):
    # Given a wallet put straight into an account opened by adjustments
    ledger.put_item(
        TableName=LEDGER_TABLE,
        Item=codec.to_item(
            {**keys.wallet(19, 5), "entity": "wallet", "au_id": 19, "coin_id": 5, "walletaddress": "0x", "quantity": 7}
        ),
    )
    assert problems(ledger) == ["au_id 19: WALLET#5 balance 7 but no entry wrote it"]


def test_an_opened_balance_whose_first_swap_does_not_start_at_its_opening(ledger):
    assert swap(swap_body())[0] == 200
    ledger.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item(keys.adjustment(19, 1)))
    set_attribute(ledger, keys.account(19), "SET adjustment_seq = :n", {":n": 2})
    assert "au_id 19: log 1 POINT#1#1: previous 2100 but the account opened at 0" in problems(ledger)


# --- `payments adjust`, in-process ------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["adjust", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_adjust_command_sets_a_point_balance_and_repeats_as_a_no_op(ledger, capsys):
    args = ("--au-id", "19", "--app-id", "1", "--point-id", "1", "--quantity", "1500", "--reason", "goodwill")
    assert run(capsys, *args, "--id", "t-1", "--actor", "bob") == (
        0,
        "au_id 19 POINT#1#1: 2100 -> 1500 (adjustment 3)\n",
        "",
    )
    entry = account_items(ledger, 19)["ADJUSTMENT#00000000000000000003"]
    assert (entry["actor"], entry["reason"], entry["adjustment_id"]) == ("bob", "goodwill", "t-1")
    assert run(capsys, *args, "--id", "t-1") == (
        0,
        "au_id 19 POINT#1#1: adjustment t-1 was already applied (entry 3); nothing changed, the balance is 1500\n",
        "",
    )
    assert account_items(ledger, 19)["ACCOUNT"]["adjustment_seq"] == 3


def test_adjust_command_generates_and_prints_an_id(ledger, capsys):
    status, out, err = run(capsys, "--au-id", "19", "--coin-id", "2", "--quantity", "0.12345678", "--reason", "airdrop")
    assert (status, err) == (0, "")
    assert out.startswith("au_id 19 WALLET#2: 0 -> 0.12345678 (adjustment 3, id adjust-")
    generated = out.rsplit("id ", 1)[1].rstrip(")\n")
    assert account_items(ledger, 19)[f"ADJUSTMENT_ID#{generated}"]["adjustment_seq"] == 3
    assert problems(ledger) == []


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["--au-id", "19", "--coin-id", "2", "--quantity", "0.123456789", "--reason", "r"],
            2,
            "payments adjust: refused, nothing written: --quantity: 0.123456789 has more than 8 fractional digits "
            "(coin 2)\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--point-id", "1", "--quantity", "-1", "--reason", "r"],
            2,
            "payments adjust: refused, nothing written: --quantity: Input should be greater than or equal to 0: '-1'\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--point-id", "1", "--quantity", "1.5", "--reason", "r"],
            2,
            "payments adjust: refused, nothing written: --quantity: Input should be a valid integer, unable to parse "
            "string as an integer: '1.5'\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--point-id", "1", "--quantity", "5", "--reason", "  "],
            2,
            "payments adjust: refused, nothing written: --reason: must be 1 to 500 characters\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--point-id", "1", "--quantity", "5", "--reason", "r", "--id", "a#b"],
            2,
            "payments adjust: refused, nothing written: --id: 1 to 200 letters, digits or ._:@/+=-\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--quantity", "5", "--reason", "r"],
            2,
            "payments adjust: give --app-id and --point-id (a point balance) or --coin-id (a wallet)\n",
        ),
        (
            ["--au-id", "19", "--app-id", "1", "--point-id", "1", "--coin-id", "2", "--quantity", "5", "--reason", "r"],
            2,
            "payments adjust: give either --app-id and --point-id or --coin-id, not both\n",
        ),
        (
            ["--au-id", "424242", "--app-id", "1", "--point-id", "1", "--quantity", "5", "--reason", "r"],
            1,
            "payments adjust: au_id 424242 POINT#1#1: no such balance (balances are created by a fixture: "
            "payments load-fixture)\n",
        ),
        (
            ["--au-id", "19", "--coin-id", "9", "--quantity", "5", "--reason", "r"],
            1,
            "payments adjust: coin 9 does not exist\n",
        ),
    ],
)
def test_adjust_command_refusals_are_one_line_and_write_nothing(ledger, capsys, args, status, message):
    before = ledger_items(ledger)
    assert run(capsys, *args) == (status, "", message)
    assert ledger_items(ledger) == before
