"""Swap: the request as sent and the response `value` of the seed page."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema

EVENT_POINT_TO_COIN = 3
EVENT_COIN_TO_POINT = 4
# A coin quantity is below 10^18 in absolute value (SPEC §4).
COIN_QUANTITY_LIMIT = 10**18


# int64 bounds as exclusive powers of two: exact even where a document's numbers pass through floats.
INT64_BOUND = 2**63


def _id(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "exclusiveMaximum": INT64_BOUND, "description": description}


_POINT = {
    "type": "object",
    "description": "The point side of a swap.",
    "required": ["app_id", "point_id", "adjust_point_quantity"],
    "properties": {
        "app_id": _id("App of the point (32101 when missing, malformed or unknown)."),
        "point_id": _id("Point of that app (32102 when missing, malformed or not a point of the app)."),
        "adjust_point_quantity": {
            "type": "integer",
            "exclusiveMinimum": -INT64_BOUND,
            "exclusiveMaximum": INT64_BOUND,
            "description": (
                "Signed change of the point balance, a JSON integer (int64, no fraction, no exponent), never 0: "
                "negative for event 3, positive for event 4 (32106 otherwise)."
            ),
        },
    },
}
_COIN = {
    "type": "object",
    "description": "The coin side of a swap.",
    "required": ["coin_id", "adjust_coin_quantity"],
    "properties": {
        "coin_id": _id("Coin swappable with that point (32104 when missing, malformed, unknown or not swappable)."),
        "adjust_coin_quantity": {
            "type": "number",
            "exclusiveMinimum": -COIN_QUANTITY_LIMIT,
            "exclusiveMaximum": COIN_QUANTITY_LIMIT,
            "description": (
                "Signed change of the coin balance, a JSON number read as an exact decimal, never 0: positive for "
                "event 3, negative for event 4; at most the coin's decimals (trailing zeros not counted); "
                "|adjust_coin_quantity| must equal |adjust_point_quantity| × the pair's rate (32106 otherwise)."
            ),
        },
    },
}


# The request's fields take any JSON value, untouched, and publish the documented schema.
EventId = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "integer",
            "enum": [EVENT_POINT_TO_COIN, EVENT_COIN_TO_POINT],
            "description": "3: points → coins; 4: coins → points (32100 otherwise).",
        }
    ),
]
OtpCode = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{6}$",
            "description": (
                "The 6-digit code of the account's authenticator (TOTP, 30 s); each time step is accepted once."
            ),
        }
    ),
]
PointSide = Annotated[Any, WithJsonSchema(_POINT)]
CoinSide = Annotated[Any, WithJsonSchema(_COIN)]


class SwapRequest(BaseModel):
    """Swap points for coins (event 3) or coins for points (event 4), confirmed by an authenticator (TOTP) code."""

    # The route's one request model. Its JSON schema documents a well-formed request; its fields hold the
    # body's values untouched (None when absent), so that the service judges each one in SPEC's order and
    # every refusal carries its own catalogued code (32100 for the event, 32101 for the app, ...). The
    # nested ids and quantities are read through the properties below (None unless their side is an object).
    model_config = ConfigDict(frozen=True)

    event_id: EventId
    otp_code: OtpCode
    point: PointSide
    coin: CoinSide

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SwapRequest:
        return cls.model_validate({name: body.get(name) for name in _FIELDS})

    @staticmethod
    def _member(side: Any, name: str) -> Any:
        return side.get(name) if isinstance(side, dict) else None

    @property
    def app_id(self) -> Any:
        return self._member(self.point, "app_id")

    @property
    def point_id(self) -> Any:
        return self._member(self.point, "point_id")

    @property
    def adjust_point_quantity(self) -> Any:
        return self._member(self.point, "adjust_point_quantity")

    @property
    def coin_id(self) -> Any:
        return self._member(self.coin, "coin_id")

    @property
    def adjust_coin_quantity(self) -> Any:
        return self._member(self.coin, "adjust_coin_quantity")


_FIELDS = tuple(SwapRequest.model_fields)


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
