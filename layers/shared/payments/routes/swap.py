"""`POST /v1.0/db/swap`: its envelopes and its contract."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payments.contract import BODY_RULES, RouteContract
from payments.errors import DASHBOARD_CATALOGUE, dashboard_error_body
from payments.models.swap import SwapRequest, SwapValue


@cache
def envelopes() -> tuple[type[BaseModel], type[BaseModel]]:
    """The success and error envelopes as pydantic models, for the document only (built on first call)."""

    class SwapSuccess(BaseModel):
        """Success envelope of the swap endpoint."""

        model_config = ConfigDict(populate_by_name=True, json_schema_serialization_defaults_required=True)

        return_: Literal[0] = Field(default=0, alias="return")
        message: Literal["success"] = "success"
        value: SwapValue

    class SwapError(BaseModel):
        """Every refusal of the swap endpoint: a catalogued code and its message."""

        model_config = ConfigDict(extra="forbid", populate_by_name=True)

        return_: int = Field(alias="return")
        message: str

    return SwapSuccess, SwapError


def success_body(value: SwapValue) -> dict[str, Any]:
    """The success envelope around `value`, as its model would dump it (by alias)."""
    return {"return": 0, "message": "success", "value": value.model_dump(by_alias=True)}


# The seed page's swap, which the demo data reproduces (a request of -110 points, +11 coins).
SWAP_EXAMPLE_REQUEST: dict[str, Any] = {
    "event_id": 3,
    "otp_code": "123456",
    "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -110},
    "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
}
SWAP_EXAMPLE_VALUE: dict[str, Any] = {
    "au_id": 19,
    "point": {
        "mu_id": 28,
        "app_id": 1,
        "database_id": 1,
        "point_id": 1,
        "previous_point_quantity": 2100,
        "adjust_point_quantity": -110,
        "point_quantity": 1990,
    },
    "coin": {
        "coin_id": 2,
        "walletaddress": "0x0cE183FBE350BE042c9F456Da78CfADAA5Cf1225",
        "previous_coin_quantity": 0,
        "adjust_coin_quantity": 11,
        "coin_quantity": 11,
    },
    "log_id": 1,
    "event_id": 3,
}

CONTRACT = RouteContract(
    path="/v1.0/db/swap",
    operation_id="swap",
    name="swap",
    tag="dashboard",
    security_scheme="BearerJWT",
    summary="Swap points for coins (event 3) or coins for points (event 4), confirmed by an authenticator code.",
    description=(
        "Checks in this order: body → token → event → app/point/coin ids → quantities/rate → accounts → OTP → "
        "balances. The same request (same account, same parsed body) repeated within 10 minutes returns the first "
        "success and changes nothing; refusals are not replayed. " + BODY_RULES
    ),
    request_model=SwapRequest,
    request_description="The swap, as in the seed page.",
    request_examples={
        "seed": {"summary": "110 points to 11 coins at the demo rate 0.1", "value": SWAP_EXAMPLE_REQUEST},
    },
    envelopes=envelopes,
    success_description="The swap was committed (or this is the replay of the same request's success).",
    success_examples={
        "seed": {
            "summary": "The seed page's response",
            "value": {"return": 0, "message": "success", "value": SWAP_EXAMPLE_VALUE},
        }
    },
    catalogue=DASHBOARD_CATALOGUE,
    render_error=dashboard_error_body,
)
