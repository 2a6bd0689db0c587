"""The two routes: request bodies, the answers of the swap's catalogue, in-process calls of the handlers.

The handler modules are imported when first called, after conftest has set the environment they read once.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from helpers.events import LambdaContext, api_event, call
from helpers.otp import T0, code_at
from helpers.tokens import token

PROGRESS = "/api/v1/asker/payment/progress"
SWAP = "/v1.0/db/swap"


def error(code: int, message: str) -> dict[str, Any]:
    """A swap refusal's body."""
    return {"return": code, "message": message}


def swap_body(
    event_id: Any = 3,
    adjust_point: Any = -110,
    adjust_coin: Any = 11,
    otp_code: Any = None,
    app_id: Any = 1,
    point_id: Any = 1,
    coin_id: Any = 2,
    when: float = T0,
) -> dict[str, Any]:
    """The seed's swap (-110 points for +11 coins) with the code of `when`, each field replaceable."""
    return {
        "event_id": event_id,
        "otp_code": code_at(when) if otp_code is None else otp_code,
        "point": {"app_id": app_id, "point_id": point_id, "adjust_point_quantity": adjust_point},
        "coin": {"coin_id": coin_id, "adjust_coin_quantity": adjust_coin},
    }


def swap(
    body: Any = None,
    au_id: int | None = 19,
    raw: str | None = None,
    headers: dict[str, str] | None = None,
    context: Any = None,
) -> tuple[int, Any]:
    """POST the swap route through its handler, with a token of `au_id` as a Bearer (none if au_id is None)."""
    from functions.swap import app as swap_app

    all_headers = {"Authorization": f"Bearer {token(au_id)}"} if au_id is not None else {}
    all_headers.update(headers or {})
    if raw is None and body is not None:
        raw = json.dumps(body)
    return call(swap_app.lambda_handler, api_event(SWAP, None, all_headers, raw=raw), context)


def progress(body: Any, au_id: int | None = 149, context: LambdaContext | None = None) -> tuple[int, Any]:
    """POST the payment progress route through its handler, with a token of `au_id` in x-token."""
    from functions.payment_progress import app as progress_app

    headers = {"x-token": token(au_id)} if au_id is not None else {}
    return call(progress_app.lambda_handler, api_event(PROGRESS, body, headers), context)


def rated_swap_body(code: str, points: int, event_id: int = 3) -> dict[str, Any]:
    """A swap of `points` at the demo rate (0.1), the coins as an exact decimal string: send it with exact_json."""
    return {
        "event_id": event_id,
        "otp_code": code,
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": points},
        "coin": {"coin_id": 2, "adjust_coin_quantity": str(Decimal(-points) / 10)},
    }


def exact_json(body: dict[str, Any]) -> str:
    """The body's JSON text with its coin quantity written as the bare decimal number it holds as a string."""
    text = json.dumps(body)
    amount = body["coin"]["adjust_coin_quantity"]
    return text.replace(f'"{amount}"', amount) if isinstance(amount, str) else text
