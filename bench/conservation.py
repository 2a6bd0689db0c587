"""The conservation check after a Locust run (`make soak`, `make scale`): `reconcile` clean, as many swap logs as
distinct swaps the clients were answered, and for every account initial + Σ answered adjustments = stored balance."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any


def conservation_problems(
    endpoint: str, accounts: Iterable[int], seen: Mapping[int, list[Any]], points: int, coins: Decimal
) -> list[str]:
    """What is wrong with the ledger at `endpoint` (nothing: an empty list). `seen[au_id]` holds the `value` of
    every successful swap answered to that account; every account started with `points` points and `coins` coins."""
    import boto3

    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository
    from payments_cli.reconcile import reconcile

    client, settings = boto3.client("dynamodb", endpoint_url=endpoint), get_settings()
    items = list(LedgerRepository(client, settings.ledger_table, settings.otp_secret_table).iter_ledger_items())
    # a request sent again with the same body (same caller, same code) is the same swap: its committed answer is
    # replayed, log id and all, so each account's swaps are its distinct log ids; a replay must match its original
    swaps: dict[int, dict[int, Any]] = {au_id: {} for au_id in accounts}
    problems: list[str] = []
    for au_id in accounts:
        for value in seen.get(au_id, []):
            first = swaps[au_id].setdefault(int(value["log_id"]), value)
            if first != value:
                problems.append(f"au_id {au_id}: log id {value['log_id']} answered as two different swaps")
    report, successes = reconcile(items), sum(len(logs) for logs in swaps.values())
    stored = {
        (i["au_id"], i["entity"]): Decimal(i["quantity"]) for i in items if i.get("entity") in ("point", "wallet")
    }
    problems += report.problems + ([] if report.swap_logs == successes else [f"{report.swap_logs} swap logs"])
    for au_id in accounts:
        answered = list(swaps[au_id].values())
        final_points = points + sum(value["point"]["adjust_point_quantity"] for value in answered)
        final_coins = coins + sum(value["coin"]["adjust_coin_quantity"] for value in answered)
        if (final_points, final_coins) != (stored[(au_id, "point")], stored[(au_id, "wallet")]):
            logs = sorted(int(i["log_id"]) for i in items if i.get("entity") == "swap_log" and i["au_id"] == au_id)
            problems.append(
                f"au_id {au_id}: initial + Σ answered = {final_points} points, {final_coins} coins; stored "
                f"{stored[(au_id, 'point')]} points, {stored[(au_id, 'wallet')]} coins; log ids answered "
                f"{sorted(int(value['log_id']) for value in answered)}, stored {logs}"
            )
    return problems
