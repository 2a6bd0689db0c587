"""Typed values of the Willson table that the payment-progress service works on (the repository maps items).

Immutable records (typing.NamedTuple, cheap to create at import, as payments.models.ledger explains).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple


class Concern(NamedTuple):
    """An asker's concern, with the names the response shows (denormalised when it was written)."""

    idx: int
    au_id: int
    content: str
    time: str
    wil_gender: str
    subcategory_idx: int
    subcategory_name: str
    category_idx: int
    category_name: str
    asker_pic: str
    asker_nickname: str
    personalities: tuple[str, ...]
    direction: str


class WillsonerCard(NamedTuple):
    """Everything a listed willsoner shows: the profile, its user's gender/age/pic/nickname, names."""

    idx: int
    au_id: int
    status: str
    avg_rating: Decimal | None
    experience: str
    introduction: str
    gender: str
    age: str
    pic: str
    nickname: str
    subcategories: tuple[str, ...]
    keywords: tuple[str, ...]
    image: str


class Ticket(NamedTuple):
    """A counselling ticket: minutes of a session and its price in honeypots."""

    idx: int
    minutes: int
    price: int
    active: bool = True


class PaymentContext(NamedTuple):
    """What one payment-progress request reads first: the concern, tickets, who the caller met, honeypots."""

    concern: Concern | None
    tickets: tuple[Ticket, ...]
    # willsoner idx → latest completed session with the caller (UTC ISO 8601)
    past_willsoners: Mapping[int, str]
    honeypot: int


class ListingPage(NamedTuple):
    """Complete willsoners of one subcategory and concern gender, best ranked first."""

    cards: tuple[WillsonerCard, ...]
