"""Ledger reconciliation: each account's entries (swap logs and adjustments) replay to its stored balances.

An account is checked from its own items alone: swap log `n` sorts at (n, 0), an adjustment at
(after_log_id, 1, adjustment_seq), and the merged entries are replayed balance by balance:

- swap log ids are contiguous from 1 and end at the account's `log_seq`; adjustment seqs are contiguous from 1,
  end at its `adjustment_seq`, and never go back in the log order;
- a swap log's own arithmetic holds (previous + adjust = new, for the points and the coins);
- each entry's previous quantity is what the entry before it on that balance left. An account with opening
  entries (written by the transaction that created it) replays from 0; one without (written before adjustments
  existed) from its first entry's previous, as before;
- each stored balance is what the replay ends with; a balance no entry explains is broken when it is not 0
  and the account has opening entries.

`reconcile_table` scans the ledger in parallel segments and checks each account as soon as its items have
all come (a scan returns a partition's items together, in sort-key order), so memory holds one account's
items per segment, plus a few numbers per account. An account found broken is read again with a consistent
Query before it is reported (a swap landing while the scan passed it looks like a break); so is an account
whose items did not come together.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from payments.models.ledger import Adjustment, SwapLog
from payments.repositories import keys
from payments.repositories.ledger_items import (
    AccountItem,
    AdjustmentItem,
    PointBalanceItem,
    SwapLogItem,
    WalletItem,
    read_balance,
)
from payments.repositories.ledger_scan import LedgerScanner

ACCOUNT_PREFIX = "ACCOUNT#"
# what an account's check reads (request records, OTP guards and markers are left out of memory)
_CHECKED_ENTITIES = {
    AccountItem.ENTITY,
    SwapLogItem.ENTITY,
    AdjustmentItem.ENTITY,
    PointBalanceItem.ENTITY,
    WalletItem.ENTITY,
}
_BALANCE_PREFIXES = ("POINT#", "WALLET#")


class AccountVerdict(NamedTuple):
    au_id: int
    swap_logs: int
    adjustments: int
    problems: list[str]


@dataclass
class ReconcileReport:
    accounts: int = 0
    swap_logs: int = 0
    adjustments: int = 0
    # au_id → what is wrong with it
    broken: dict[int, list[str]] = field(default_factory=dict)

    def add(self, verdict: AccountVerdict) -> None:
        self.accounts += 1
        self.swap_logs += verdict.swap_logs
        self.adjustments += verdict.adjustments
        if verdict.problems:
            self.broken[verdict.au_id] = verdict.problems

    @property
    def broken_accounts(self) -> int:
        return len(self.broken)

    @property
    def problems(self) -> list[str]:
        """Every problem, one line each, `au_id N: …`, accounts in au_id order."""
        return [f"au_id {au_id}: {problem}" for au_id in sorted(self.broken) for problem in self.broken[au_id]]

    def broken_lines(self) -> list[str]:
        """One line per broken account: `au_id N: reason; reason`."""
        return [f"au_id {au_id}: {'; '.join(self.broken[au_id])}" for au_id in sorted(self.broken)]

    def summary(self) -> str:
        return (
            f"accounts checked: {self.accounts}, swap logs: {self.swap_logs}, adjustments: {self.adjustments}, "
            f"broken accounts: {self.broken_accounts}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts_checked": self.accounts,
            "swap_logs": self.swap_logs,
            "adjustments": self.adjustments,
            "broken_accounts": [{"au_id": au_id, "problems": self.broken[au_id]} for au_id in sorted(self.broken)],
        }


def reconcile(items: Iterable[Mapping[str, Any]]) -> ReconcileReport:
    """Check every account among these items (any order: they are grouped by partition first, in memory)."""
    partitions: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        pk = str(item.get(keys.PK, ""))
        if pk.startswith(ACCOUNT_PREFIX):
            partitions.setdefault(pk, []).append(item)
    verdicts = [check_account(pk, partition) for pk, partition in partitions.items()]
    report = ReconcileReport()
    for verdict in sorted((v for v in verdicts if v is not None), key=lambda v: v.au_id):
        report.add(verdict)
    return report


def check_account(pk: str, items: Iterable[Mapping[str, Any]]) -> AccountVerdict | None:
    """One account's verdict from its items; None when they hold no account, entry or balance."""
    account: Mapping[str, Any] | None = None
    logs: list[SwapLog] = []
    adjustments: list[Adjustment] = []
    balances: dict[str, Decimal] = {}
    problems: list[str] = []
    try:
        au_id = int(pk[len(ACCOUNT_PREFIX) :])
    except ValueError:
        return None
    for item in items:
        try:
            if AccountItem.holds(item):
                account = item
            elif SwapLogItem.holds(item):
                logs.append(SwapLogItem.read(item))
            elif AdjustmentItem.holds(item):
                adjustments.append(AdjustmentItem.read(item))
            elif (balance := read_balance(item)) is not None:
                balances[balance[1]] = balance[2]
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            problems.append(f"{item.get(keys.SK)}: unreadable item ({error!r})")
    if account is None and not logs and not adjustments and not balances and not problems:
        return None
    _check_sequences(account, logs, adjustments, problems)
    _replay(logs, adjustments, balances, problems)
    return AccountVerdict(au_id, len(logs), len(adjustments), problems)


def _check_sequences(
    account: Mapping[str, Any] | None, logs: list[SwapLog], adjustments: list[Adjustment], problems: list[str]
) -> None:
    logs.sort(key=lambda log: log.log_id)
    adjustments.sort(key=lambda adjustment: adjustment.adjustment_seq)
    if account is None:
        if logs or adjustments:
            problems.append("entries but no account item")
        return
    ids = [log.log_id for log in logs]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"log ids are not contiguous from 1: {ids[:10]}")
    log_seq = int(account.get(AccountItem.LOG_SEQ, 0))
    if log_seq != (ids[-1] if ids else 0):
        problems.append(f"log_seq {log_seq} but last log id {ids[-1]}" if ids else f"log_seq {log_seq} but no log")
    seqs = [adjustment.adjustment_seq for adjustment in adjustments]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"adjustment seqs are not contiguous from 1: {seqs[:10]}")
    adjustment_seq = int(account.get(AccountItem.ADJUSTMENT_SEQ, 0))
    if adjustment_seq != (seqs[-1] if seqs else 0):
        last = f"last adjustment {seqs[-1]}" if seqs else "no adjustment"
        problems.append(f"adjustment_seq {adjustment_seq} but {last}")
    last_log = ids[-1] if ids else 0
    for before, after in itertools.pairwise(adjustments):
        if after.after_log_id < before.after_log_id:
            problems.append(
                f"adjustment {after.adjustment_seq} is after log {after.after_log_id} but adjustment "
                f"{before.adjustment_seq} before it is after log {before.after_log_id}"
            )
    for adjustment in adjustments:
        if adjustment.after_log_id > last_log:
            problems.append(
                f"adjustment {adjustment.adjustment_seq} is after log {adjustment.after_log_id}, which does not exist"
            )
        if not adjustment.balance.startswith(_BALANCE_PREFIXES):
            problems.append(f"adjustment {adjustment.adjustment_seq} names no balance: {adjustment.balance!r}")


def _replay(
    logs: list[SwapLog], adjustments: list[Adjustment], balances: dict[str, Decimal], problems: list[str]
) -> None:
    # (label, balance, previous, new) in the entries' true order
    steps: list[tuple[tuple[int, int, int], str, str, Decimal, Decimal]] = []
    for log in logs:
        result = log.result
        point = PointBalanceItem.key(result.au_id, result.app_id, result.point_id)[keys.SK]
        wallet = WalletItem.key(result.au_id, result.coin_id)[keys.SK]
        for balance, previous, adjust, new in (
            (point, Decimal(result.previous_point), Decimal(result.adjust_point), Decimal(result.new_point)),
            (wallet, result.previous_coin, result.adjust_coin, result.new_coin),
        ):
            if previous + adjust != new:
                problems.append(f"log {log.log_id} {balance}: {previous} + {adjust} != {new}")
            steps.append(((log.log_id, 0, 0), f"log {log.log_id}", balance, previous, new))
    for adjustment in adjustments:
        steps.append(
            (
                (adjustment.after_log_id, 1, adjustment.adjustment_seq),
                f"adjustment {adjustment.adjustment_seq}",
                adjustment.balance,
                Decimal(adjustment.previous_quantity),
                Decimal(adjustment.new_quantity),
            )
        )
    steps.sort(key=lambda step: step[0])
    opening = any(adjustment.opening for adjustment in adjustments)
    left: dict[str, Decimal] = {}
    for _, label, balance, previous, new in steps:
        if balance in left:
            if left[balance] != previous:
                problems.append(f"{label} {balance}: previous {previous} but the entry before left {left[balance]}")
        elif opening and previous != 0:
            problems.append(f"{label} {balance}: previous {previous} but the account opened at 0")
        left[balance] = new
    for balance, final in left.items():
        stored = balances.get(balance)
        if stored is None or stored != final:
            problems.append(f"{balance} balance {stored} but the entries end at {final}")
    if opening:
        for balance, stored in sorted(balances.items()):
            if balance not in left and stored != 0:
                problems.append(f"{balance} balance {stored} but no entry wrote it")


# --- the whole table ----------------------------------------------------------------------------------------

# what a progress display is told: (items scanned, accounts checked) since the last call
Advance = Callable[[int, int], None]


def reconcile_table(scanner: LedgerScanner, segments: int = 1, advance: Advance | None = None) -> ReconcileReport:
    """Scan the ledger in `segments` parallel segments (threads) and check every account as its items end."""
    run = _TableRun(scanner, advance or (lambda items, accounts: None))
    if segments == 1:
        run.segment(0, 1)
    else:
        with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="reconcile") as pool:
            for finished in [pool.submit(run.segment, n, segments) for n in range(segments)]:
                finished.result()
    return run.report()


class _TableRun:
    def __init__(self, scanner: LedgerScanner, advance: Advance) -> None:
        self._scanner = scanner
        self._advance = advance
        self._lock = threading.Lock()
        # per account partition: (swap logs, adjustments) of its verdict; None: its items hold no account
        self._seen: dict[str, tuple[int, int] | None] = {}
        self._broken: dict[str, list[str]] = {}
        self._scattered: set[str] = set()

    def segment(self, segment: int, total: int) -> None:
        pk: str | None = None
        group: list[Mapping[str, Any]] = []
        for page in self._scanner.pages(segment, total):
            checked = 0
            for item in page:
                item_pk = str(item.get(keys.PK, ""))
                if item_pk != pk:
                    checked += self._close(pk, group)
                    pk, group = item_pk, []
                if item.get(keys.ENTITY) in _CHECKED_ENTITIES:
                    group.append(item)
            self._advance(len(page), checked)
        self._advance(0, self._close(pk, group))

    def _close(self, pk: str | None, group: list[Mapping[str, Any]]) -> int:
        """Check one partition's items as they came; 1 if it was an account."""
        if pk is None or not pk.startswith(ACCOUNT_PREFIX):
            return 0
        verdict = check_account(pk, group)
        with self._lock:
            if pk in self._seen:  # its items did not all come together: read it whole at the end
                self._scattered.add(pk)
                return 0
            self._seen[pk] = None if verdict is None else (verdict.swap_logs, verdict.adjustments)
            if verdict is not None and verdict.problems:
                self._broken[pk] = verdict.problems
        return 0 if verdict is None else 1

    def report(self) -> ReconcileReport:
        # a broken account (or one seen in pieces) is read again, whole and consistently, before it is judged
        for pk in sorted(set(self._broken) | self._scattered):
            verdict = check_account(pk, self._scanner.partition_items(pk))
            self._seen[pk] = None if verdict is None else (verdict.swap_logs, verdict.adjustments)
            self._broken.pop(pk, None)
            if verdict is not None and verdict.problems:
                self._broken[pk] = verdict.problems
        report = ReconcileReport()
        for counts in self._seen.values():
            if counts is not None:
                report.accounts += 1
                report.swap_logs += counts[0]
                report.adjustments += counts[1]
        report.broken = {int(pk[len(ACCOUNT_PREFIX) :]): problems for pk, problems in self._broken.items()}
        return report


def reconcile_with_progress(scanner: LedgerScanner, segments: int, show: bool) -> ReconcileReport:
    """`reconcile_table`, with a progress bar on stderr when `show` (a terminal, not CI)."""
    if not show:
        return reconcile_table(scanner, segments)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = scanner.item_count() or None  # an estimate (DynamoDB refreshes it every ~6 hours)
    columns = (
        TextColumn("reconcile"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items, {task.fields[accounts]} accounts"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scan", total=total, accounts=0)
        lock = threading.Lock()
        accounts = [0]

        def advance(items: int, checked: int) -> None:
            with lock:
                accounts[0] += checked
                progress.update(task, advance=items, accounts=accounts[0])

        return reconcile_table(scanner, segments, advance)
