"""`POST /api/v1/asker/payment/progress`: its envelopes and its contract."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from payments.contract import BODY_RULES, RouteContract
from payments.errors import WILLSON_CATALOGUE, willson_error_body
from payments.models.payment_progress import PaymentProgressData, PaymentProgressRequest


@cache
def envelopes() -> tuple[type[BaseModel], type[BaseModel]]:
    """The success and error envelopes as pydantic models, for the document only (built on first call)."""

    class PaymentProgressSuccess(BaseModel):
        """Success envelope of the Willson endpoint."""

        model_config = ConfigDict(json_schema_serialization_defaults_required=True)

        code: Literal["success"] = "success"
        message: Literal["success"] = "success"
        data: PaymentProgressData

    class WillsonError(BaseModel):
        """Every refusal of the Willson endpoint: a catalogued code and its message."""

        model_config = ConfigDict(extra="forbid")

        code: str
        message: str

    return PaymentProgressSuccess, WillsonError


def success_body(data: PaymentProgressData) -> dict[str, Any]:
    """The success envelope around `data`, as its model would dump it."""
    return {"code": "success", "message": "success", "data": data.model_dump()}


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

CONTRACT = RouteContract(
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
    envelopes=envelopes,
    success_description="The payment page's data.",
    success_examples={
        "seed": {"summary": "The seed page's answer, cut to one willsoner", "value": PAYMENT_PROGRESS_EXAMPLE}
    },
    catalogue=WILLSON_CATALOGUE,
    render_error=willson_error_body,
)
