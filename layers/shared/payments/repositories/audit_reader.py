"""The continuous auditor's only reads of the ledger: one entry (a swap log or an adjustment) by its key.

Strongly consistent GetItem, projected on the attributes an entry check needs (the audit role may read no other:
template.yaml, AuditFunctionRole). A GetItem is serializable with transactions, so an entry whose transaction has
committed (the balance write that names it is on the stream) is found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments.repositories import codec, keys
from payments.repositories.ledger_items import AdjustmentItem, SwapLogItem

# What the auditor reads of an entry; the same list is the IAM condition of AuditFunctionRole's GetItem.
ENTRY_ATTRIBUTES = (
    keys.PK,
    keys.SK,
    keys.ENTITY,
    "au_id",
    "log_id",
    "value",
    "adjustment_seq",
    "adjustment_id",
    "balance",
    "after_log_id",
    "previous_quantity",
    "new_quantity",
)


class LedgerEntryReader:
    """Reads swap logs and adjustments by key (the `EntryReader` of payments.audit)."""

    def __init__(self, client: Any, ledger_table: str) -> None:
        self._client = client
        self._table = ledger_table
        self._names = {f"#a{index}": name for index, name in enumerate(ENTRY_ATTRIBUTES)}
        self._projection = ", ".join(self._names)

    def swap_log(self, au_id: int, log_id: int) -> Mapping[str, Any] | None:
        return self._get(SwapLogItem.key(au_id, log_id))

    def adjustment(self, au_id: int, seq: int) -> Mapping[str, Any] | None:
        return self._get(AdjustmentItem.key(au_id, seq))

    def _get(self, key: dict[str, str]) -> Mapping[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=codec.to_item(key),
            ConsistentRead=True,
            ProjectionExpression=self._projection,
            ExpressionAttributeNames=self._names,
        )
        return codec.from_item(response.get("Item"))
