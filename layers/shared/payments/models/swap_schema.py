"""The documented shape of the swap request body, for the OpenAPI document.

The swap handler does not validate with this model: it reads the body's fields untouched
(`payments.models.swap.SwapRequest`) and judges each one in SPEC's order, so that every refusal
carries its own catalogued code (32100 for the event, 32101 for the app, ...). This model says
what a well-formed request looks like; `payments_cli.openapi` turns it into the request schema.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from payments.models.swap import EVENT_COIN_TO_POINT, EVENT_POINT_TO_COIN

INT64_MAX = 2**63 - 1
# A coin quantity is below 10^18 in absolute value (SPEC §4).
COIN_QUANTITY_LIMIT = 10**18


class SwapPointRequest(BaseModel):
    """The point side of a swap."""

    model_config = ConfigDict(extra="ignore")

    app_id: StrictInt = Field(
        ge=1, le=INT64_MAX, description="App of the point (32101 when missing, malformed or unknown)."
    )
    point_id: StrictInt = Field(
        ge=1, le=INT64_MAX, description="Point of that app (32102 when missing, malformed or not a point of the app)."
    )
    adjust_point_quantity: StrictInt = Field(
        ge=-INT64_MAX,
        le=INT64_MAX,
        description=(
            "Signed change of the point balance, a JSON integer (int64, no fraction, no exponent), never 0: "
            "negative for event 3, positive for event 4 (32106 otherwise)."
        ),
    )


class SwapCoinRequest(BaseModel):
    """The coin side of a swap."""

    model_config = ConfigDict(extra="ignore")

    coin_id: StrictInt = Field(
        ge=1,
        le=INT64_MAX,
        description="Coin swappable with that point (32104 when missing, malformed, unknown or not swappable).",
    )
    adjust_coin_quantity: Decimal = Field(
        gt=-COIN_QUANTITY_LIMIT,
        lt=COIN_QUANTITY_LIMIT,
        description=(
            "Signed change of the coin balance, a JSON number read as an exact decimal, never 0: positive for "
            "event 3, negative for event 4; at most the coin's decimals (trailing zeros not counted); "
            "|adjust_coin_quantity| must equal |adjust_point_quantity| × the pair's rate (32106 otherwise)."
        ),
    )


class SwapRequestBody(BaseModel):
    """`POST /v1.0/db/swap`: swap points for coins (event 3) or coins for points (event 4), confirmed by a TOTP code."""

    model_config = ConfigDict(extra="ignore")

    event_id: Literal[EVENT_POINT_TO_COIN, EVENT_COIN_TO_POINT] = Field(  # type: ignore[valid-type]
        description="3: points → coins; 4: coins → points (32100 otherwise)."
    )
    otp_code: StrictStr = Field(
        pattern=r"^[0-9]{6}$",
        description="The 6-digit code of the account's authenticator (TOTP, 30 s); each time step is accepted once.",
    )
    point: SwapPointRequest
    coin: SwapCoinRequest
