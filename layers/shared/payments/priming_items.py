"""The synthetic items priming reads: one small, made-up data set shaped like the real items.

Priming (payments.priming) answers the handlers' DynamoDB reads from these items, in memory, so that
both handlers run their success path at init: payment progress lists willsoners for a concern of
the priming caller, the swap moves points to coins on the priming caller's account. Every key is
built with the repositories' own key builders (payments.repositories.keys) and every item is
encoded with their own codec, so what botocore parses and the repositories decode has the real
items' keys, attribute names, types and nesting.

Nothing here is a real user: the caller, the concern, the willsoners and the OTP secret exist only
in this module. tests/test_priming.py loads the matching fixture with payments_cli.fixture_loader
(into moto) and checks that each item below has exactly the attribute names and DynamoDB types of
the item the loader writes under the same key, so these items cannot silently drift from the data
model.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payments.repositories import keys

CALLER = 1  # au_id of the priming caller (signed into a throwaway token at priming time)
CONCERN = 1
SUBCATEGORY = 1
APP, POINT, COIN = 1, 1, 2
# A made-up base32 TOTP secret: priming computes the current code from it.
OTP_SECRET = "PRIMINGPRIMINGPRIMINGPRIMINGPRIM"  # noqa: S105 - synthetic, never a user's secret
_PIC = "https://priming.invalid/pic.png"
# Text in Korean, as the real items' is: the JSON decoding and encoding of non-ASCII text is primed too.
_WILLSONERS = (2, 3, 4)  # willsoner idx = au_id of its user, each listed for the concern


def _rating(idx: int) -> Decimal | None:
    return None if idx == _WILLSONERS[-1] else Decimal("4.5")  # the last one unrated, as new willsoners are


def _card(idx: int) -> dict[str, Any]:
    return {
        "idx": idx,
        "avg_rating": _rating(idx),
        "experience": "프라이밍",
        "introduction": "프라이밍",
        "asker_idx": idx,
        "status": "complete",
        "asker": {"gender": "여", "age": "20대 중반", "pic": _PIC, "nickname": "프라이밍"},
        "subcategories": ["프라이밍"],
        "keywords": ["프라이밍", "프라이밍"],
        "image": _PIC,
    }


def willson_items() -> list[dict[str, Any]]:
    """Willson table: the caller's concern, the ticket catalogue, the caller's sessions, the listing."""
    listing = keys.listing_partition(SUBCATEGORY, "ALL")
    return [
        {
            **keys.concern(CONCERN),
            "entity": "concern",
            "idx": CONCERN,
            "au_id": CALLER,
            "content": "프라이밍",
            "time": "",
            "wil_gender": "ALL",
            "subcategory_idx": SUBCATEGORY,
            "personalities": ["프라이밍", "프라이밍"],
            "direction": "프라이밍",
            "asker_pic": _PIC,
            "asker_nickname": "프라이밍",
            "subcategory_name": "프라이밍",
            "category_idx": 1,
            "category_name": "프라이밍",
        },
        {
            **keys.ticket_catalog(),
            "entity": "tickets",
            "tickets": {
                "1": {"minutes": 30, "price": 7},
                "2": {"minutes": 50, "price": 10},
                "3": {"minutes": 80, "price": 15},
            },
        },
        {**keys.asker_sessions(CALLER), "entity": "sessions", "willsoners": {"9": "2020-11-20T10:00:00Z"}},
        *(
            {
                keys.PK: listing,
                keys.SK: keys.listing_rank(_rating(idx), idx),
                "entity": "listing",
                "au_id": idx,
                "willsoner_idx": idx,
                "card": _card(idx),
            }
            for idx in _WILLSONERS
        ),
    ]


def _point(app_id: int, point_id: int) -> dict[str, Any]:
    return {
        **keys.point_balance(CALLER, app_id, point_id),
        "entity": "point",
        "au_id": CALLER,
        "app_id": app_id,
        "point_id": point_id,
        "mu_id": 1,
        "quantity": 1_000_000,
    }


def ledger_items(honeypot_app_id: int = APP, honeypot_point_id: int = POINT) -> list[dict[str, Any]]:
    """Ledger table: the caller's account, points (the swapped one and the honeypot of the settings), wallet,
    the app, the coin, the rate."""
    points = {(APP, POINT), (honeypot_app_id, honeypot_point_id)}
    return [
        {**keys.account(CALLER), "entity": "account", "au_id": CALLER, "version": 0, "log_seq": 0, "otp_steps": {}},
        *(_point(app_id, point_id) for app_id, point_id in sorted(points)),
        {
            **keys.wallet(CALLER, COIN),
            "entity": "wallet",
            "au_id": CALLER,
            "coin_id": COIN,
            "walletaddress": "0x" + "0" * 40,
            "quantity": Decimal("0"),
        },
        {
            **keys.app(APP),
            "entity": "app",
            "app_id": APP,
            "database_id": 1,
            "name": "프라이밍",
            "points": {str(POINT): "프라이밍"},
        },
        {**keys.coin(COIN), "entity": "coin", "coin_id": COIN, "symbol": "PRM", "decimals": 8},
        {
            **keys.swap_rate(APP, POINT, COIN),
            "entity": "rate",
            "app_id": APP,
            "point_id": POINT,
            "coin_id": COIN,
            "rate": Decimal("0.1"),
        },
    ]


def otp_secret_items() -> list[dict[str, Any]]:
    """OTP secret table: the caller's (synthetic) secret."""
    return [{**keys.otp_secret(CALLER), "au_id": CALLER, "otp_secret": OTP_SECRET}]


# Bodies of the priming requests: the success path of each handler over the items above.
PROGRESS_BODY: dict[str, Any] = {"concern_idx": CONCERN}
SWAP_BODY: dict[str, Any] = {
    "event_id": 3,
    "otp_code": "{otp}",  # replaced by the current code of OTP_SECRET at priming time
    "point": {"app_id": APP, "point_id": POINT, "adjust_point_quantity": -110},
    "coin": {"coin_id": COIN, "adjust_coin_quantity": 11},
}
