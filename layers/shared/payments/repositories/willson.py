"""Reads of the Willson table (and the caller's honeypot balance) for payment progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments.repositories import codec, keys
from payments.repositories.batch import batch_get

_BATCH_GET_LIMIT = 100


@dataclass(frozen=True)
class PaymentContext:
    """What one payment-progress request needs before choosing willsoners."""

    concern: dict[str, Any] | None
    tickets: dict[str, Any]
    past_willsoners: dict[int, str]
    honeypot: int


class WillsonRepository:
    """The payment-progress request's only access to DynamoDB."""

    def __init__(self, client: Any, willson_table: str, ledger_table: str) -> None:
        self._client = client
        self._willson_table = willson_table
        self._ledger_table = ledger_table

    def load_payment_context(
        self,
        au_id: int,
        concern_idx: int,
        app_id: int,
        point_id: int,
        may_ask_again: Callable[[], bool] = lambda: True,
    ) -> PaymentContext:
        """One round trip: the concern, the ticket catalogue, the caller's sessions and balance.

        Unprocessed keys are asked again while `may_ask_again()` (a caller's time budget) allows.
        """
        concern_key = keys.concern(concern_idx)
        tickets_key = keys.ticket_catalog()
        sessions_key = keys.asker_sessions(au_id)
        balance_key = keys.point_balance(au_id, app_id, point_id)
        found = batch_get(
            self._client,
            {self._willson_table: [concern_key, tickets_key, sessions_key], self._ledger_table: [balance_key]},
            consistent=False,
            may_ask_again=may_ask_again,
        )

        def pick(table: str, key: dict[str, str]) -> dict[str, Any] | None:
            return found.get((table, key[keys.PK], key[keys.SK]))

        tickets = pick(self._willson_table, tickets_key) or {}
        sessions = pick(self._willson_table, sessions_key) or {}
        balance = pick(self._ledger_table, balance_key) or {}
        return PaymentContext(
            concern=pick(self._willson_table, concern_key),
            tickets=tickets.get("tickets", {}),
            past_willsoners={int(idx): str(when) for idx, when in sessions.get("willsoners", {}).items()},
            honeypot=int(balance.get("quantity", 0)),
        )

    def list_candidates(
        self, subcategory_idx: int, gender: str, wanted: int, before_call: Callable[[], None] = lambda: None
    ) -> list[dict[str, Any]]:
        """Listing entries of complete willsoners in rank order; at least `wanted` when there are.

        `before_call` runs before each page is asked for (a caller's time budget may raise there).
        """
        entries: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._willson_table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.PK},
            "ExpressionAttributeValues": {":pk": codec.to_attribute(keys.listing_partition(subcategory_idx, gender))},
            "Limit": wanted,
        }
        while True:
            before_call()
            response = self._client.query(**request)
            entries.extend(entry for entry in map(codec.from_item, response.get("Items", [])) if entry is not None)
            last_key = response.get("LastEvaluatedKey")
            if not last_key or len(entries) >= wanted:
                return entries
            request["ExclusiveStartKey"] = last_key

    def get_cards(
        self, willsoner_idxs: list[int], may_ask_again: Callable[[], bool] = lambda: True
    ) -> dict[int, dict[str, Any]]:
        """The cards of these willsoners, by idx (absent ones left out): one BatchGetItem per 100.

        Unprocessed keys are asked again while `may_ask_again()` (a caller's time budget) allows.
        """
        cards: dict[int, dict[str, Any]] = {}
        for start in range(0, len(willsoner_idxs), _BATCH_GET_LIMIT):
            chunk = willsoner_idxs[start : start + _BATCH_GET_LIMIT]
            wanted = {self._willson_table: [keys.willsoner_card(i) for i in chunk]}
            found = batch_get(self._client, wanted, consistent=False, may_ask_again=may_ask_again)
            for item in found.values():
                cards[int(item["card"]["idx"])] = item
        return cards
