"""The stored shape of every Willson-table item: keys, attribute names, and the mapping to typed values.

The only definition of these items: the repository reads through it, the fixture loader writes
through it. Items are plain Python values here (payments.repositories.codec turns them into
DynamoDB attribute values). docs/data-model.md describes the same shapes for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from payments.models.willson import Concern, Ticket, WillsonerCard
from payments.repositories import keys

Item = dict[str, Any]
COMPLETE = "complete"


class FieldsItem(keys.Entity):
    """An item that stores named fields as they are, beside its key and its `entity` name."""

    FIELDS: ClassVar[tuple[str, ...]]

    @classmethod
    def to_item(cls, key: Mapping[str, str], values: Mapping[str, Any]) -> Item:
        return {**key, keys.ENTITY: cls.ENTITY, **{name: values[name] for name in cls.FIELDS}}

    @classmethod
    def fields(cls, item: Mapping[str, Any]) -> dict[str, Any]:
        """The stored fields of an item (absent ones left out)."""
        return {name: item[name] for name in cls.FIELDS if name in item}


class UserItem(FieldsItem):
    """`USER#{au_id}` / `USER`: a user's public profile."""

    ENTITY = "user"
    FIELDS = ("au_id", "nickname", "gender", "age", "pic")
    key = staticmethod(keys.user)


class CategoryItem(FieldsItem):
    """`CATEGORY#{idx}` / `CATEGORY`: a category and its subcategories [{idx, name}]."""

    ENTITY = "category"
    FIELDS = ("idx", "name", "subcategories")
    key = staticmethod(keys.category)


class WillsonerProfileItem(FieldsItem):
    """`WILLSONER#{idx}` / `PROFILE`: the willsoner as loaded, and the listing entries written for it."""

    ENTITY = "willsoner"
    FIELDS = (
        "idx",
        "au_id",
        "status",
        "avg_rating",
        "experience",
        "introduction",
        "subcategory_idx",
        "keywords",
        "image",
    )
    key = staticmethod(keys.willsoner_profile)

    @classmethod
    def with_listing(cls, values: Mapping[str, Any], listing: Iterable[Item]) -> Item:
        item = cls.to_item(cls.key(values["idx"]), values)
        item["listing_keys"] = [[entry[keys.PK], entry[keys.SK]] for entry in listing]
        return item

    @staticmethod
    def listing_keys(item: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(str(pk), str(sk)) for pk, sk in item.get("listing_keys", [])]


class ConcernItem(FieldsItem):
    """`CONCERN#{idx}` / `CONCERN`: the concern, with its asker's and subcategory's names denormalised."""

    ENTITY = "concern"
    FIELDS = ("idx", "au_id", "content", "time", "wil_gender", "subcategory_idx", "personalities", "direction")
    key = staticmethod(keys.concern)

    @classmethod
    def write(cls, concern: Concern) -> Item:
        return {
            **cls.to_item(cls.key(concern.idx), concern._asdict()),
            "personalities": list(concern.personalities),
            "asker_pic": concern.asker_pic,
            "asker_nickname": concern.asker_nickname,
            "subcategory_name": concern.subcategory_name,
            "category_idx": concern.category_idx,
            "category_name": concern.category_name,
        }

    @staticmethod
    def read(item: Mapping[str, Any]) -> Concern:
        return Concern(
            idx=int(item["idx"]),
            au_id=int(item["au_id"]),
            content=str(item["content"]),
            time=str(item["time"]),
            wil_gender=str(item["wil_gender"]),
            subcategory_idx=int(item["subcategory_idx"]),
            subcategory_name=str(item["subcategory_name"]),
            category_idx=int(item["category_idx"]),
            category_name=str(item["category_name"]),
            asker_pic=str(item["asker_pic"]),
            asker_nickname=str(item["asker_nickname"]),
            personalities=tuple(str(name) for name in item.get("personalities", [])),
            direction=str(item["direction"]),
        )


class TicketCatalogItem(keys.Entity):
    """`TICKETS` / `CATALOG`: every ticket, {"{idx}": {minutes, price, active?}} (absent active: active)."""

    ENTITY = "tickets"
    key = staticmethod(keys.ticket_catalog)

    @classmethod
    def write(cls, tickets: Iterable[Ticket], stored: Mapping[str, Any] | None = None) -> Item:
        """The catalogue with `tickets` laid over what `stored` holds (other attributes of a ticket kept)."""
        merged: dict[str, Any] = dict((stored or {}).get("tickets", {}))
        for ticket in tickets:
            name = str(ticket.idx)
            merged[name] = {**merged.get(name, {}), "minutes": ticket.minutes, "price": ticket.price}
        return {**cls.key(), keys.ENTITY: cls.ENTITY, "tickets": merged}

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> tuple[Ticket, ...]:
        stored = (item or {}).get("tickets", {})
        return tuple(
            Ticket(idx=int(idx), minutes=int(t["minutes"]), price=int(t["price"]), active=bool(t.get("active", True)))
            for idx, t in sorted(stored.items(), key=lambda pair: int(pair[0]))
        )


class AskerSessionsItem(keys.Entity):
    """`ASKER#{au_id}` / `SESSIONS`: {"{willsoner_idx}": latest completed_at} of the asker's sessions."""

    ENTITY = "sessions"
    key = staticmethod(keys.asker_sessions)

    @classmethod
    def write(cls, au_id: int, willsoners: Mapping[int, str]) -> Item:
        return {
            **cls.key(au_id),
            keys.ENTITY: cls.ENTITY,
            "willsoners": {str(idx): when for idx, when in willsoners.items()},
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> dict[int, str]:
        return {int(idx): str(when) for idx, when in (item or {}).get("willsoners", {}).items()}


def _card_attribute(card: WillsonerCard) -> dict[str, Any]:
    return {
        "idx": card.idx,
        "avg_rating": card.avg_rating,
        "experience": card.experience,
        "introduction": card.introduction,
        "asker_idx": card.au_id,
        "status": card.status,
        "asker": {"gender": card.gender, "age": card.age, "pic": card.pic, "nickname": card.nickname},
        "subcategories": list(card.subcategories),
        "keywords": list(card.keywords),
        "image": card.image,
    }


def _card_value(card: Mapping[str, Any]) -> WillsonerCard:
    asker = card["asker"]
    rating = card.get("avg_rating")
    return WillsonerCard(
        idx=int(card["idx"]),
        au_id=int(card["asker_idx"]),
        status=str(card["status"]),
        avg_rating=None if rating is None else Decimal(rating),
        experience=str(card["experience"]),
        introduction=str(card["introduction"]),
        gender=str(asker["gender"]),
        age=str(asker["age"]),
        pic=str(asker["pic"]),
        nickname=str(asker["nickname"]),
        subcategories=tuple(str(name) for name in card["subcategories"]),
        keywords=tuple(str(name) for name in card["keywords"]),
        image=str(card["image"]),
    )


class CardItem(keys.Entity):
    """`WILLSONER#{idx}` / `CARD`: what a listed willsoner shows, rebuilt whenever its profile or user changes."""

    ENTITY = "willsoner_card"
    key = staticmethod(keys.willsoner_card)

    @classmethod
    def write(cls, card: WillsonerCard) -> Item:
        return {
            **cls.key(card.idx),
            keys.ENTITY: cls.ENTITY,
            "au_id": card.au_id,
            "status": card.status,
            "card": _card_attribute(card),
        }

    @staticmethod
    def read(item: Mapping[str, Any]) -> WillsonerCard:
        return _card_value(item["card"])


class ListingEntryItem(keys.Entity):
    """`LISTING#{subcategory_idx}#{gender}` / rank key: a complete willsoner's card, in listing order."""

    ENTITY = "listing"

    @staticmethod
    def partition(subcategory_idx: int, gender: str) -> str:
        return keys.listing_partition(subcategory_idx, gender)

    @classmethod
    def write_all(cls, card: WillsonerCard, subcategory_idxs: Iterable[int]) -> list[Item]:
        """The entries of one willsoner: for each subcategory, under `ALL` and its own gender (none unless complete)."""
        if card.status != COMPLETE:
            return []
        rank = keys.listing_rank(card.avg_rating, card.idx)
        return [
            {
                keys.PK: keys.listing_partition(subcategory_idx, gender),
                keys.SK: rank,
                keys.ENTITY: cls.ENTITY,
                "au_id": card.au_id,
                "willsoner_idx": card.idx,
                "card": _card_attribute(card),
            }
            for subcategory_idx in subcategory_idxs
            for gender in ("ALL", card.gender)
        ]

    @staticmethod
    def read(item: Mapping[str, Any]) -> WillsonerCard:
        return _card_value(item["card"])
