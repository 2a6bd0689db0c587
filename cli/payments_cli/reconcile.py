"""Ledger reconciliation: every account's swap logs form an unbroken chain ending at its balances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payments.models.ledger import SwapLog
from payments.repositories import keys
from payments.repositories.ledger_items import AccountItem, PointBalanceItem, SwapLogItem, WalletItem, read_balance


@dataclass
class ReconcileReport:
    accounts: int = 0
    swap_logs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def broken_accounts(self) -> int:
        return len({line.split(":", 1)[0] for line in self.problems})

    def summary(self) -> str:
        return (
            f"accounts checked: {self.accounts}, swap logs: {self.swap_logs}, broken accounts: {self.broken_accounts}"
        )


@dataclass
class _AccountBooks:
    """One account's items, read through the ledger's item shapes."""

    log_seq: int | None = None
    logs: list[SwapLog] = field(default_factory=list)
    # balance name (its sort key, as `POINT#1#1` / `WALLET#2`) → stored quantity
    balances: dict[str, Decimal] = field(default_factory=dict)


def reconcile(items: Iterable[Mapping[str, Any]]) -> ReconcileReport:
    """Check ids contiguous from 1, log_seq = last id, and each balance's chain of logs."""
    books: dict[int, _AccountBooks] = defaultdict(_AccountBooks)
    for item in items:
        if AccountItem.holds(item):
            account = AccountItem.read(item)
            if account is not None:
                books[account.au_id].log_seq = account.log_seq
        elif SwapLogItem.holds(item):
            log = SwapLogItem.read(item)
            books[log.result.au_id].logs.append(log)
        elif (balance := read_balance(item)) is not None:
            au_id, name, quantity = balance
            books[au_id].balances[name] = quantity
    report = ReconcileReport()
    for au_id, account_books in sorted(books.items()):
        report.accounts += 1
        report.swap_logs += len(account_books.logs)
        _check_account(f"au_id {au_id}", account_books, report.problems)
    return report


def _check_account(name: str, books: _AccountBooks, problems: list[str]) -> None:
    logs = sorted(books.logs, key=lambda log: log.log_id)
    ids = [log.log_id for log in logs]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"{name}: log ids are not contiguous from 1: {ids[:10]}")
    if logs and (books.log_seq or 0) != ids[-1]:
        problems.append(f"{name}: log_seq {books.log_seq} but last log id {ids[-1]}")
    chains: dict[str, Decimal] = {}
    for log in logs:
        result = log.result
        point = PointBalanceItem.key(result.au_id, result.app_id, result.point_id)[keys.SK]
        wallet = WalletItem.key(result.au_id, result.coin_id)[keys.SK]
        for balance, previous, adjust, final in (
            (point, Decimal(result.previous_point), Decimal(result.adjust_point), Decimal(result.new_point)),
            (wallet, result.previous_coin, result.adjust_coin, result.new_coin),
        ):
            if previous + adjust != final:
                problems.append(f"{name}: log {log.log_id} {balance}: {previous} + {adjust} != {final}")
            if balance in chains and chains[balance] != previous:
                problems.append(
                    f"{name}: log {log.log_id} {balance}: previous {previous} "
                    f"but the log before ended at {chains[balance]}"
                )
            chains[balance] = final
    for balance, final in chains.items():
        stored = books.balances.get(balance)
        if stored is None or stored != final:
            problems.append(f"{name}: {balance} balance {stored} but the last log ends at {final}")
