"""Reads of the Willson table (and the caller's honeypot balance) for payment progress.

The service gets typed values (payments.models.willson); item shapes are in willson_items and
ledger_items. A throughput refusal is raised as ServiceBusy, any other DynamoDB failure as
WillsonReadFailed: both catalogued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from payments.errors import ServiceBusy, WillsonReadFailed
from payments.models.willson import ListingPage, PaymentContext, WillsonerCard
from payments.repositories import codec, keys
from payments.repositories.batch import batch_get
from payments.repositories.ledger_items import PointBalanceItem
from payments.repositories.shared_items import SharedItemCache
from payments.repositories.throttling import Throttled, is_throttling
from payments.repositories.willson_items import (
    AskerSessionsItem,
    CardItem,
    ConcernItem,
    ListingEntryItem,
    TicketCatalogItem,
)

_BATCH_GET_LIMIT = 100


class _KeptListing(NamedTuple):
    """The head of a listing partition, in rank order; `complete` when it is the whole partition."""

    cards: tuple[WillsonerCard, ...]
    complete: bool


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Throughput refusals become ServiceBusy; other refusals and malformed items WillsonReadFailed."""
    try:
        yield
    except Throttled as error:
        raise ServiceBusy(f"reading {what} was throttled: {error}") from error
    except ClientError as error:
        if is_throttling(error):
            raise ServiceBusy(f"reading {what} was throttled: {error}") from error
        raise WillsonReadFailed(f"reading {what} failed: {error}") from error
    except BotoCoreError as error:
        raise WillsonReadFailed(f"reading {what} failed: {error}") from error
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise WillsonReadFailed(f"malformed {what} item: {error!r}") from error


class WillsonRepository:
    """The payment-progress request's only access to DynamoDB."""

    def __init__(
        self, client: Any, willson_table: str, ledger_table: str, shared_items: SharedItemCache | None = None
    ) -> None:
        self._client = client
        self._willson_table = willson_table
        self._ledger_table = ledger_table
        # the ticket catalogue and listing pages: read alike by every request, kept for a bounded time
        self._shared_items = shared_items or SharedItemCache(0)

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
        concern_key = ConcernItem.key(concern_idx)
        tickets_key = TicketCatalogItem.key()
        sessions_key = AskerSessionsItem.key(au_id)
        balance_key = PointBalanceItem.key(au_id, app_id, point_id)
        tickets_entry = (self._willson_table, tickets_key[keys.PK], tickets_key[keys.SK])
        tickets = self._shared_items.get(tickets_entry)
        # a catalogue no longer kept rides in the same round trip
        willson_keys = [concern_key, sessions_key] + ([tickets_key] if tickets is None else [])
        read_at = self._shared_items.now()
        with _reading("the payment context"):
            found = batch_get(
                self._client,
                {self._willson_table: willson_keys, self._ledger_table: [balance_key]},
                consistent=False,
                may_ask_again=may_ask_again,
            )

            def pick(table: str, key: dict[str, str]) -> dict[str, Any] | None:
                return found.get((table, key[keys.PK], key[keys.SK]))

            if tickets is None:
                tickets = pick(self._willson_table, tickets_key)
                if tickets is not None:
                    self._shared_items.put(tickets_entry, tickets, read_at)
            concern = pick(self._willson_table, concern_key)
            return PaymentContext(
                concern=None if concern is None else ConcernItem.read(concern),
                tickets=TicketCatalogItem.read(tickets),
                past_willsoners=AskerSessionsItem.read(pick(self._willson_table, sessions_key)),
                honeypot=PointBalanceItem.quantity_of(pick(self._ledger_table, balance_key)),
            )

    def list_candidates(
        self, subcategory_idx: int, gender: str, wanted: int, before_call: Callable[[], None] = lambda: None
    ) -> ListingPage:
        """Complete willsoners of the subcategory and concern gender in rank order; at least `wanted` when there are.

        `before_call` runs before each page is asked for (a caller's time budget may raise there).
        """
        partition = ListingEntryItem.partition(subcategory_idx, gender)
        entry = (self._willson_table, partition)
        kept: _KeptListing | None = self._shared_items.get(entry)
        if kept is not None and (kept.complete or len(kept.cards) >= wanted):
            return ListingPage(cards=kept.cards)
        cards: list[WillsonerCard] = []
        request: dict[str, Any] = {
            "TableName": self._willson_table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.PK},
            "ExpressionAttributeValues": {":pk": codec.to_attribute(partition)},
            "Limit": wanted,
        }
        read_at = self._shared_items.now()
        while True:
            before_call()
            with _reading("the listing"):
                response = self._client.query(**request)
                cards.extend(ListingEntryItem.read(codec.from_item(raw) or {}) for raw in response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if not last_key or len(cards) >= wanted:
                page = ListingPage(cards=tuple(cards))
                if cards:  # an empty subcategory is asked again: its first willsoner shows at once
                    self._shared_items.put(entry, _KeptListing(page.cards, complete=not last_key), read_at)
                return page
            request["ExclusiveStartKey"] = last_key

    def get_cards(
        self, willsoner_idxs: list[int], may_ask_again: Callable[[], bool] = lambda: True
    ) -> dict[int, WillsonerCard]:
        """The cards of these willsoners, by idx (absent ones left out): one BatchGetItem per 100.

        Unprocessed keys are asked again while `may_ask_again()` (a caller's time budget) allows.
        """
        cards: dict[int, WillsonerCard] = {}
        for start in range(0, len(willsoner_idxs), _BATCH_GET_LIMIT):
            chunk = willsoner_idxs[start : start + _BATCH_GET_LIMIT]
            wanted = {self._willson_table: [CardItem.key(idx) for idx in chunk]}
            with _reading("willsoner cards"):
                found = batch_get(self._client, wanted, consistent=False, may_ask_again=may_ask_again)
                for item in found.values():
                    card = CardItem.read(item)
                    cards[card.idx] = card
        return cards
