"""Payment progress: the caller's honeypots, the tickets, and who can take the concern."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from payments.auth import Caller
from payments.errors import ConcernNotFound, WillsonerNotFound
from payments.models.payment_progress import (
    CategoryView,
    ConcernAsker,
    ConcernView,
    Honeypot,
    Name,
    PaymentProgressData,
    PaymentProgressRequest,
    Picture,
    SubcategoryView,
    TicketView,
    WillsonerAsker,
    WillsonerView,
)
from payments.models.willson import Concern, ListingPage, PaymentContext, Ticket, WillsonerCard
from payments.services.time_budget import TimeBudget

MATCH_SAME_WILLSONER = 1
MATCH_DIFFERENT_WILLSONER = 2
COMPLETE = "complete"
_CARD_CHUNK = 100
# With the first round trip, two chunks keep a request within 3 DynamoDB requests: the 200 most
# recently met willsoners are considered, which is far beyond the 30 that can be listed.
_MAX_CARD_CHUNKS = 2


class WillsonReader(Protocol):
    """What payment progress reads (payments.repositories.willson.WillsonRepository in production)."""

    def load_payment_context(
        self, au_id: int, concern_idx: int, app_id: int, point_id: int, may_ask_again: Callable[[], bool] = ...
    ) -> PaymentContext: ...

    def list_candidates(
        self, subcategory_idx: int, gender: str, wanted: int, before_call: Callable[[], None] = ...
    ) -> ListingPage: ...

    def get_cards(
        self, willsoner_idxs: list[int], may_ask_again: Callable[[], bool] = ...
    ) -> dict[int, WillsonerCard]: ...


def progress_payment(
    repository: WillsonReader,
    caller: Caller,
    request: PaymentProgressRequest,
    *,
    honeypot_app_id: int,
    honeypot_point_id: int,
    max_listed: int,
    budget: TimeBudget,
) -> PaymentProgressData:
    """Step 1 of paying for a concern: what the caller has, what it costs, who can answer.

    Every DynamoDB call starts only if its worst case fits in `budget` (else OutOfTime: read-only,
    a retry is safe): 2 calls, 3 for match_type 1 past the 100 most recently met willsoners.
    """
    budget.before_call()
    context = repository.load_payment_context(
        caller.au_id, request.concern_idx, honeypot_app_id, honeypot_point_id, may_ask_again=budget.allows_call
    )
    concern = context.concern
    if concern is None or concern.au_id != caller.au_id:
        raise ConcernNotFound()
    if request.match_type == MATCH_SAME_WILLSONER:
        cards = _previous_willsoners(repository, caller, context, max_listed, budget)
    else:
        excluded = set(context.past_willsoners) if request.match_type == MATCH_DIFFERENT_WILLSONER else set()
        cards = _candidates(repository, caller, concern, excluded, max_listed, budget)
    if not cards:
        raise WillsonerNotFound()
    return PaymentProgressData(
        point=Honeypot(honeypot=f"{context.honeypot}개"),
        willsoners=[_willsoner_view(card) for card in cards],
        tickets=[_ticket_view(ticket) for ticket in context.tickets if ticket.active],
        concern=_concern_view(concern),
    )


def _candidates(
    repository: WillsonReader,
    caller: Caller,
    concern: Concern,
    excluded: set[int],
    max_listed: int,
    budget: TimeBudget,
) -> list[WillsonerCard]:
    # The listing holds only complete willsoners of the subcategory and gender, in rank order;
    # reading `max_listed` plus everyone who may be filtered out is always enough.
    wanted = max_listed + 1 + len(excluded)
    page = repository.list_candidates(
        concern.subcategory_idx, concern.wil_gender, wanted, before_call=budget.before_call
    )
    cards = [card for card in page.cards if card.au_id != caller.au_id and card.idx not in excluded]
    return cards[:max_listed]


def _previous_willsoners(
    repository: WillsonReader, caller: Caller, context: PaymentContext, max_listed: int, budget: TimeBudget
) -> list[WillsonerCard]:
    by_recency = sorted(context.past_willsoners.items(), key=lambda pair: (-_timestamp(pair[1]), pair[0]))
    ordered = [idx for idx, _ in by_recency][: _CARD_CHUNK * _MAX_CARD_CHUNKS]
    listed: list[WillsonerCard] = []
    for start in range(0, len(ordered), _CARD_CHUNK):
        chunk = ordered[start : start + _CARD_CHUNK]
        budget.before_call()
        found = repository.get_cards(chunk, may_ask_again=budget.allows_call)
        for idx in chunk:
            card = found.get(idx)
            if card is not None and card.status == COMPLETE and card.au_id != caller.au_id:
                listed.append(card)
        if len(listed) >= max_listed:
            break
    return listed[:max_listed]


def _timestamp(completed_at: str) -> float:
    return datetime.fromisoformat(completed_at.replace("Z", "+00:00")).timestamp()


def format_rating(avg_rating: Decimal | None) -> str:
    """One decimal, rounded half-up; "0.0" for a willsoner without reviews."""
    value = Decimal(0) if avg_rating is None else Decimal(avg_rating)
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _willsoner_view(card: WillsonerCard) -> WillsonerView:
    return WillsonerView(
        avg_rating=format_rating(card.avg_rating),
        idx=card.idx,
        experience=card.experience,
        introduction=card.introduction,
        asker_idx=card.au_id,
        status=card.status,
        asker=WillsonerAsker(gender=card.gender, age=card.age, pic=card.pic, nickname=card.nickname),
        subcategories=[Name(name=name) for name in card.subcategories],
        keywords=[Name(name=name) for name in card.keywords],
        image=Picture(pic=card.image),
    )


def _ticket_view(ticket: Ticket) -> TicketView:
    return TicketView(type=f"고민나누기 {ticket.minutes}분", amount=f"꿀단지 {ticket.price}개", idx=ticket.idx)


def _concern_view(concern: Concern) -> ConcernView:
    return ConcernView(
        time=concern.time,
        idx=concern.idx,
        content=concern.content,
        wil_gender=concern.wil_gender,
        subcategory_idx=concern.subcategory_idx,
        asker_idx=concern.au_id,
        asker=ConcernAsker(pic=concern.asker_pic, nickname=concern.asker_nickname),
        subcategory=SubcategoryView(
            idx=concern.subcategory_idx,
            name=concern.subcategory_name,
            category_idx=concern.category_idx,
            category=CategoryView(name=concern.category_name),
        ),
        personalities=[Name(name=name) for name in concern.personalities],
        direction=Name(name=concern.direction),
    )
