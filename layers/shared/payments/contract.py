"""The API contract of both routes: their envelopes, examples and catalogued errors, in one place.

Each handler registers its route with its `RouteContract` (`payments.api.Api`), so the OpenAPI
document (`payments_cli.openapi`, through Powertools' own generator) says what the handler does:
request and success schemas come from the pydantic models below and in `payments.models`, every
error response from the route's catalogue in `payments.errors`, rendered in the route's envelope.
Nothing here is imported from Powertools' OpenAPI package: documenting costs the handlers nothing at
import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payments.errors import (
    DASHBOARD_CATALOGUE,
    WILLSON_CATALOGUE,
    CatalogueEntry,
    PaymentsError,
    ServiceBusy,
    dashboard_error_body,
    willson_error_body,
)
from payments.json_body import MAX_BODY_BYTES
from payments.models.payment_progress import PaymentProgressData, PaymentProgressRequest
from payments.models.swap import SwapRequest, SwapValue

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

JSON = "application/json"
RETRY_AFTER: OpenAPIResponseHeader = {
    "description": "Whole seconds to wait before sending the same request again (DynamoDB was busy).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 99},
}


# --- envelopes ---


class PaymentProgressSuccess(BaseModel):
    """Success envelope of the Willson endpoint."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: Literal["success"] = "success"
    message: Literal["success"] = "success"
    data: PaymentProgressData


class SwapSuccess(BaseModel):
    """Success envelope of the swap endpoint."""

    model_config = ConfigDict(populate_by_name=True, json_schema_serialization_defaults_required=True)

    return_: Literal[0] = Field(default=0, alias="return")
    message: Literal["success"] = "success"
    value: SwapValue


class WillsonError(BaseModel):
    """Every refusal of the Willson endpoint: a catalogued code and its message."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str


class SwapError(BaseModel):
    """Every refusal of the swap endpoint: a catalogued code and its message."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    return_: int = Field(alias="return")
    message: str


# --- the routes ---


@dataclass(frozen=True)
class RouteContract:
    """What one route takes and answers; its handler registers it, the OpenAPI document reads it."""

    path: str
    operation_id: str
    name: str  # in logs: "<name> failed"
    tag: str
    security_scheme: str
    summary: str
    description: str
    request_model: type[BaseModel]
    request_description: str
    request_examples: dict[str, dict[str, Any]]  # name → {"summary", "value"}
    success_model: type[BaseModel]
    success_description: str
    success_examples: dict[str, dict[str, Any]]
    error_model: type[BaseModel]
    catalogue: dict[str, CatalogueEntry]
    render_error: Callable[[PaymentsError], tuple[int, dict[str, Any]]]

    @property
    def code_field(self) -> str:
        """The name, on the wire, of the envelope's code field (`code` or `return`)."""
        return next(field.alias or name for name, field in self.error_model.model_fields.items() if name != "message")

    def responses(self) -> dict[int, OpenAPIResponse]:
        """200 with the success envelope, then one response per HTTP status of the catalogue."""
        success: OpenAPIResponse = {
            "description": self.success_description,
            "content": {JSON: {"model": self.success_model, "examples": self.success_examples}},
        }
        return {200: success, **self._error_responses()}

    def _error_responses(self) -> dict[int, OpenAPIResponse]:
        """Each status: the envelope, narrowed to the catalogue entries answered with it, each an example."""
        descriptions = _kind_descriptions()
        envelope = self.error_model.model_json_schema(mode="serialization")
        field = self.code_field
        envelope["properties"][field]["enum"] = sorted({entry.code for entry in self.catalogue.values()}, key=str)
        by_status: dict[int, list[tuple[str, CatalogueEntry]]] = defaultdict(list)
        for kind, entry in self.catalogue.items():
            by_status[entry.status].append((kind, entry))
        responses: dict[int, OpenAPIResponse] = {}
        for status in sorted(by_status):
            variants: list[dict[str, Any]] = []
            examples: dict[str, Any] = {}
            for kind, entry in by_status[status]:
                message: dict[str, Any] = (
                    {"type": "string"} if entry.detail_overrides_message else {"const": entry.message}
                )
                variant = {"type": "object", "properties": {field: {"const": entry.code}, "message": message}}
                if variant not in variants:
                    variants.append(variant)
                summary = descriptions.get(kind, kind)
                if entry.detail_overrides_message:
                    summary += " The message names the field or the problem."
                shared = sum(1 for other in self.catalogue.values() if other.code == entry.code) > 1
                examples[f"{entry.code} ({kind})" if shared else f"{entry.code}"] = {
                    "summary": summary,
                    "value": {field: entry.code, "message": entry.message},
                }
            listed = ", ".join(dict.fromkeys(str(entry.code) for _, entry in by_status[status]))
            responses[status] = {
                "description": f"Refused: {listed}.",
                "content": {JSON: {"schema": {**envelope, "anyOf": variants}, "examples": examples}},
            }
            if any(kind == ServiceBusy.kind for kind, _ in by_status[status]):
                responses[status]["headers"] = {"Retry-After": RETRY_AFTER}
        return responses


def _kind_descriptions() -> dict[str, str]:
    """What each kind of refusal means, from the docstrings of the error classes."""
    descriptions: dict[str, str] = {}
    pending = list(PaymentsError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # only the catalogue's own classes: whatever else is imported cannot change the document
        if cls.__module__ == PaymentsError.__module__ and cls.__doc__:
            descriptions.setdefault(cls.kind, " ".join(cls.__doc__.split()))
    return descriptions


BODY_RULES = (
    f"The body must be one JSON object of at most {MAX_BODY_BYTES} bytes, without duplicate keys, NaN or "
    "Infinity; Content-Type is not read. Numbers are read exactly (never through binary floats) and types "
    "are strict: an integer field takes a JSON integer written as such (`1577`, not `1577.0` or `1.577e3`); "
    "a string, boolean or fraction where an integer is expected is refused, never coerced."
)

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

_PIC = "https://willson-v1.s3.ap-northeast-2.amazonaws.com"
# The seed page's answer to concern 1577 (the demo data), cut to one willsoner and one ticket.
PAYMENT_PROGRESS_EXAMPLE: dict[str, Any] = {
    "code": "success",
    "message": "success",
    "data": {
        "point": {"honeypot": "280개"},
        "willsoners": [
            {
                "avg_rating": "4.5",
                "idx": 12,
                "experience": "저는 집이 잘 살다 한 순가에 무너져 압류즐이 붙고 고물을 줍고 다녔습니다",
                "introduction": "안녕하슈",
                "asker_idx": 26,
                "status": "complete",
                "asker": {
                    "gender": "여",
                    "age": "20대 중반",
                    "pic": f"{_PIC}/user_image/img_profile_w.png",
                    "nickname": "지수카카오",
                },
                "subcategories": [{"name": "이별"}],
                "keywords": [{"name": "줍줍"}, {"name": "무너짐"}, {"name": "집"}],
                "image": {"pic": f"{_PIC}/willsoner_image/willson_04.jpg"},
            }
        ],
        "tickets": [{"type": "고민나누기 30분", "amount": "꿀단지 7개", "idx": 1}],
        "concern": {
            "time": "",
            "idx": 1577,
            "content": "필터테스트",
            "wil_gender": "ALL",
            "subcategory_idx": 1,
            "asker_idx": 149,
            "asker": {"pic": f"{_PIC}/user_image/img_profile_w.png", "nickname": "포스트맨"},
            "subcategory": {"idx": 1, "name": "이별", "category_idx": 1, "category": {"name": "연애"}},
            "personalities": [{"name": "솔직한"}, {"name": "우유부단한"}],
            "direction": {"name": "문제를 해결하고 싶어요"},
        },
    },
}

PAYMENT_PROGRESS = RouteContract(
    path="/api/v1/asker/payment/progress",
    operation_id="paymentProgress",
    name="payment progress",
    tag="willson",
    security_scheme="XToken",
    summary="Concern payment, step 1: honeypot balance, willsoners to choose from, tickets, the concern.",
    description=(
        "Checks in this order: body → token → fields → concern → willsoners. Lists at most 30 willsoners. " + BODY_RULES
    ),
    request_model=PaymentProgressRequest,
    request_description="The caller's concern, and which willsoners to list.",
    request_examples={
        "all": {"summary": "Every matching willsoner", "value": {"concern_idx": 1577}},
        "different": {"summary": "Willsoners never met before", "value": {"concern_idx": 1577, "match_type": 2}},
    },
    success_model=PaymentProgressSuccess,
    success_description="The payment page's data.",
    success_examples={
        "seed": {"summary": "The seed page's answer, cut to one willsoner", "value": PAYMENT_PROGRESS_EXAMPLE}
    },
    error_model=WillsonError,
    catalogue=WILLSON_CATALOGUE,
    render_error=willson_error_body,
)

SWAP = RouteContract(
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
    success_model=SwapSuccess,
    success_description="The swap was committed (or this is the replay of the same request's success).",
    success_examples={
        "seed": {
            "summary": "The seed page's response",
            "value": {"return": 0, "message": "success", "value": SWAP_EXAMPLE_VALUE},
        }
    },
    error_model=SwapError,
    catalogue=DASHBOARD_CATALOGUE,
    render_error=dashboard_error_body,
)
