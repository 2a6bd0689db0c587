"""Key layout of the Willson and Ledger tables (see docs/data-model.md)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

PK = "pk"
SK = "sk"
# What kind of item this is (`account`, `swap_log`, `listing`...): every item but the OTP secret names it.
ENTITY = "entity"


class Entity:
    """An item kind, told by its `entity` attribute (the *_items modules' item classes)."""

    ENTITY: str

    @classmethod
    def holds(cls, item: Mapping[str, Any]) -> bool:
        return item.get(ENTITY) == cls.ENTITY


# Willson table
def concern(idx: int) -> dict[str, str]:
    return {PK: f"CONCERN#{idx}", SK: "CONCERN"}


def user(au_id: int) -> dict[str, str]:
    return {PK: f"USER#{au_id}", SK: "USER"}


def category(idx: int) -> dict[str, str]:
    return {PK: f"CATEGORY#{idx}", SK: "CATEGORY"}


def willsoner_profile(idx: int) -> dict[str, str]:
    return {PK: f"WILLSONER#{idx}", SK: "PROFILE"}


def willsoner_card(idx: int) -> dict[str, str]:
    return {PK: f"WILLSONER#{idx}", SK: "CARD"}


def ticket_catalog() -> dict[str, str]:
    return {PK: "TICKETS", SK: "CATALOG"}


def asker_sessions(au_id: int) -> dict[str, str]:
    return {PK: f"ASKER#{au_id}", SK: "SESSIONS"}


def listing_partition(subcategory_idx: int, gender: str) -> str:
    """Complete willsoners of one subcategory, for one concern gender (`ALL`, `여`, `남`)."""
    return f"LISTING#{subcategory_idx}#{gender}"


# Twelve decimals of the rating are kept in the key, so ratings tie only when they are equal
# to 10^-12 (ratings are between 0 and 5; the loader refuses anything else).
_RATING_SCALE = 10**12
_RATING_CEILING = 10**14


def listing_rank(avg_rating: Decimal | None, idx: int) -> str:
    """Sort key: ascending order is avg_rating descending, then idx ascending, unrated last."""
    if avg_rating is None:
        return f"U#{idx:020d}"
    inverted = _RATING_CEILING - int((avg_rating * _RATING_SCALE).to_integral_value())
    return f"R#{inverted:015d}#{idx:020d}"


# Ledger table
def account(au_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: "ACCOUNT"}


def point_balance(au_id: int, app_id: int, point_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: f"POINT#{app_id}#{point_id}"}


def wallet(au_id: int, coin_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: f"WALLET#{coin_id}"}


def otp_guard(au_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: "OTP_GUARD"}


def request_record(au_id: int, fingerprint: str) -> dict[str, str]:
    """The committed answer of one request of the account (fingerprint of the parsed body)."""
    return {PK: f"ACCOUNT#{au_id}", SK: f"REQUEST#{fingerprint}"}


SWAP_LOG_PREFIX = "SWAPLOG#"


def swap_log(au_id: int, log_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: f"{SWAP_LOG_PREFIX}{log_id:020d}"}


ADJUSTMENT_PREFIX = "ADJUSTMENT#"
ADJUSTMENT_ID_PREFIX = "ADJUSTMENT_ID#"


def adjustment(au_id: int, seq: int) -> dict[str, str]:
    """An adjustment entry: a balance set outside any swap (load-fixture, `payments adjust`), its own sequence."""
    return {PK: f"ACCOUNT#{au_id}", SK: f"{ADJUSTMENT_PREFIX}{seq:020d}"}


def adjustment_marker(au_id: int, adjustment_id: str) -> dict[str, str]:
    """An adjustment's idempotency marker: its id, given by whoever makes it, written once."""
    return {PK: f"ACCOUNT#{au_id}", SK: f"{ADJUSTMENT_ID_PREFIX}{adjustment_id}"}


# OTP secret table (KMS-encrypted; only the swap function and the ops tools may read it)
def otp_secret(au_id: int) -> dict[str, str]:
    return {PK: f"ACCOUNT#{au_id}", SK: "OTP_SECRET"}


def app(app_id: int) -> dict[str, str]:
    return {PK: f"APP#{app_id}", SK: "APP"}


def coin(coin_id: int) -> dict[str, str]:
    return {PK: f"COIN#{coin_id}", SK: "COIN"}


def swap_rate(app_id: int, point_id: int, coin_id: int) -> dict[str, str]:
    return {PK: f"RATE#{app_id}#{point_id}#{coin_id}", SK: "RATE"}
