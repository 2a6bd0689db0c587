"""Reading the whole ledger for `payments reconcile`: a parallel scan by segments, one account's items by Query.

Ops only: no request path scans. Items are decoded (numbers stay Decimal) and handed over page by page, so a
reader holds one page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from payments.repositories import codec

Item = dict[str, Any]


class LedgerScanner:
    def __init__(self, client: Any, ledger_table: str) -> None:
        self._client = client
        self._table = ledger_table

    def item_count(self) -> int | None:
        """The table's item count as DynamoDB last computed it (every ~6 hours on AWS): a progress estimate."""
        count = self._client.describe_table(TableName=self._table)["Table"].get("ItemCount")
        return None if count is None else int(count)

    def pages(self, segment: int = 0, total_segments: int = 1) -> Iterator[list[Item]]:
        """The items of one scan segment, page by page (strongly consistent)."""
        segmented = {"Segment": segment, "TotalSegments": total_segments} if total_segments > 1 else {}
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True, **segmented):
            yield [item for raw in page.get("Items", []) if (item := codec.from_item(raw)) is not None]

    def partition_items(self, pk: str) -> list[Item]:
        """Every item of one partition (an account's), in sort-key order (strongly consistent Query)."""
        paginator = self._client.get_paginator("query")
        items: list[Item] = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": codec.to_attribute(pk)},
            ConsistentRead=True,
        ):
            items.extend(item for raw in page.get("Items", []) if (item := codec.from_item(raw)) is not None)
        return items
