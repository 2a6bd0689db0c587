"""One BatchGetItem round trip over several tables, keyed by (table, pk, sk)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from payments.repositories import codec
from payments.repositories.keys import PK, SK
from payments.repositories.throttling import Throttled, is_throttling

ItemKey = tuple[str, str, str]
# DynamoDB may leave keys unprocessed under load; they are asked again a bounded number of times.
_UNPROCESSED_ATTEMPTS = 4


def batch_get(
    client: Any,
    keys: dict[str, list[dict[str, str]]],
    consistent: bool,
    may_ask_again: Callable[[], bool] = lambda: True,
) -> dict[ItemKey, dict[str, Any]]:
    """Read every key of every table; returns the items found, decoded, by (table, pk, sk).

    Unprocessed keys are asked again while `may_ask_again()` (a caller's time budget) allows; keys
    still unprocessed then, or a throughput refusal, raise Throttled.
    """
    request = {
        table: {"Keys": [codec.to_item(key) for key in table_keys], "ConsistentRead": consistent}
        for table, table_keys in keys.items()
        if table_keys
    }
    found: dict[ItemKey, dict[str, Any]] = {}
    for attempt in range(_UNPROCESSED_ATTEMPTS):
        try:
            response = client.batch_get_item(RequestItems=request)
        except ClientError as error:
            if is_throttling(error):
                raise Throttled(str(error)) from error
            raise
        for table, items in response.get("Responses", {}).items():
            for raw in items:
                item = codec.from_item(raw)
                if item is not None:
                    found[(table, item[PK], item[SK])] = item
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        if not may_ask_again():
            break
        if attempt + 1 < _UNPROCESSED_ATTEMPTS:
            time.sleep(0.05 * 2**attempt)
    raise Throttled("DynamoDB left keys unprocessed after retries")
