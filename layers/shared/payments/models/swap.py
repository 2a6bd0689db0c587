"""Swap: the request as sent and the response `value` of the seed page."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

EVENT_POINT_TO_COIN = 3
EVENT_COIN_TO_POINT = 4


@dataclass(frozen=True)
class SwapRequest:
    """The body's fields, untouched: each is judged by the service, in SPEC's order."""

    event_id: Any
    app_id: Any
    point_id: Any
    coin_id: Any
    adjust_point_quantity: Any
    adjust_coin_quantity: Any
    otp_code: Any

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SwapRequest:
        point = body.get("point")
        coin = body.get("coin")
        point = point if isinstance(point, dict) else {}
        coin = coin if isinstance(coin, dict) else {}
        return cls(
            event_id=body.get("event_id"),
            app_id=point.get("app_id"),
            point_id=point.get("point_id"),
            coin_id=coin.get("coin_id"),
            adjust_point_quantity=point.get("adjust_point_quantity"),
            adjust_coin_quantity=coin.get("adjust_coin_quantity"),
            otp_code=body.get("otp_code"),
        )


class SwapPointView(BaseModel):
    mu_id: int
    app_id: int
    database_id: int
    point_id: int
    previous_point_quantity: int
    adjust_point_quantity: int
    point_quantity: int


class SwapCoinView(BaseModel):
    coin_id: int
    walletaddress: str
    previous_coin_quantity: Decimal
    adjust_coin_quantity: Decimal
    coin_quantity: Decimal


class SwapValue(BaseModel):
    au_id: int
    point: SwapPointView
    coin: SwapCoinView
    log_id: int
    event_id: int
