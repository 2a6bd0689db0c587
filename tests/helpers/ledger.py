"""The ledger table as stored: through the API of DynamoDB Local or moto's server, or in-process moto's storage."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from payments.repositories import codec

LEDGER_TABLE = "LedgerTable"


def moto_dynamodb() -> Any:
    """moto's in-process DynamoDB (the fast tier's), for this process's region."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_REGION"]]


def _stored_in_process(client: Any) -> list[dict[str, Any]] | None:
    """The ledger's items as moto holds them in this process, read without a request: moto answers a Query or a
    Scan through a serializer that costs ~30 ms an account, which the fast tier paid hundreds of times. None for
    a DynamoDB behind an endpoint (DynamoDB Local, moto's server): read through the API."""
    if not client.meta.endpoint_url.startswith("https://dynamodb."):
        return None
    table = moto_dynamodb().tables[LEDGER_TABLE]
    return [codec.from_item(item.to_json()["Attributes"]) for item in table.all_items()]


def ledger_items(client: Any) -> list[dict[str, Any]]:
    """Every item of the ledger, decoded, in key order (strongly consistent)."""
    items = _stored_in_process(client)
    if items is None:
        items = []
        for page in client.get_paginator("scan").paginate(TableName=LEDGER_TABLE, ConsistentRead=True):
            items.extend(codec.from_item(item) for item in page["Items"])
    return sorted(items, key=lambda item: (item["pk"], item["sk"]))


def account_items(client: Any, au_id: int) -> dict[str, dict[str, Any]]:
    """One account's items, decoded, by sort key (strongly consistent)."""
    stored = _stored_in_process(client)
    if stored is not None:
        mine = [item for item in stored if item["pk"] == f"ACCOUNT#{au_id}"]
        return {item["sk"]: item for item in sorted(mine, key=lambda item: item["sk"])}
    items: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("query").paginate(
        TableName=LEDGER_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ACCOUNT#{au_id}"}},
        ConsistentRead=True,
    ):
        items.update((item["sk"], item) for item in (codec.from_item(raw) for raw in page["Items"]))
    return items


def balances(client: Any, au_id: int = 19) -> tuple[Any, Decimal]:
    """(points of app 1 / point 1, coins of coin 2) of the account."""
    items = account_items(client, au_id)
    return items["POINT#1#1"]["quantity"], items["WALLET#2"]["quantity"]


def swap_logs(client: Any, au_id: int = 19) -> list[dict[str, Any]]:
    """The account's swap logs, in log order."""
    return [item for sk, item in sorted(account_items(client, au_id).items()) if sk.startswith("SWAPLOG#")]


def reconciliation_problems(client: Any) -> list[Any]:
    """What `payments reconcile` finds wrong in the whole ledger (in-process: the command has its own tests)."""
    from payments_cli.reconcile import reconcile

    return list(reconcile(ledger_items(client)).problems)
