"""Ledger reconciliation: every account's swap logs form an unbroken chain ending at its balances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payments.repositories.keys import SWAP_LOG_PREFIX


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


def reconcile(items: Iterable[dict[str, Any]]) -> ReconcileReport:
    """Check ids contiguous from 1, log_seq = last id, and each balance's chain of logs."""
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if str(item["pk"]).startswith("ACCOUNT#"):
            by_account[item["pk"]].append(item)
    report = ReconcileReport()
    for pk, account_items in sorted(by_account.items()):
        report.accounts += 1
        name = f"au_id {pk.split('#', 1)[1]}"
        logs = sorted(
            (i for i in account_items if str(i["sk"]).startswith(SWAP_LOG_PREFIX)), key=lambda i: int(i["log_id"])
        )
        report.swap_logs += len(logs)
        account = next((i for i in account_items if i["sk"] == "ACCOUNT"), {})
        balances = {i["sk"]: i for i in account_items if str(i["sk"]).startswith(("POINT#", "WALLET#"))}
        _check_account(name, account, logs, balances, report.problems)
    return report


def _check_account(
    name: str,
    account: dict[str, Any],
    logs: list[dict[str, Any]],
    balances: dict[str, dict[str, Any]],
    problems: list[str],
) -> None:
    ids = [int(log["log_id"]) for log in logs]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"{name}: log ids are not contiguous from 1: {ids[:10]}")
    if logs and int(account.get("log_seq", 0)) != ids[-1]:
        problems.append(f"{name}: log_seq {account.get('log_seq')} but last log id {ids[-1]}")
    chains: dict[str, Any] = {}
    for log in logs:
        value = log["value"]
        point, coin = value["point"], value["coin"]
        for sk, previous, adjust, final in (
            (
                f"POINT#{point['app_id']}#{point['point_id']}",
                point["previous_point_quantity"],
                point["adjust_point_quantity"],
                point["point_quantity"],
            ),
            (
                f"WALLET#{coin['coin_id']}",
                coin["previous_coin_quantity"],
                coin["adjust_coin_quantity"],
                coin["coin_quantity"],
            ),
        ):
            if Decimal(previous) + Decimal(adjust) != Decimal(final):
                problems.append(f"{name}: log {log['log_id']} {sk}: {previous} + {adjust} != {final}")
            if sk in chains and Decimal(chains[sk]) != Decimal(previous):
                problems.append(
                    f"{name}: log {log['log_id']} {sk}: previous {previous} but the log before ended at {chains[sk]}"
                )
            chains[sk] = final
    for sk, final in chains.items():
        stored = balances.get(sk, {}).get("quantity")
        if stored is None or Decimal(stored) != Decimal(final):
            problems.append(f"{name}: {sk} balance {stored} but the last log ends at {final}")
