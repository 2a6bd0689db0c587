"""Helpers of the swap tests: requests, OTP codes at a given time, the ledger's stored state."""

from __future__ import annotations

import json
from typing import Any

import pyotp

from conftest import LEDGER_TABLE, api_event, call, token
from functions.swap import app as swap_app
from payments.repositories import codec

PATH = "/v1.0/db/swap"
DEMO_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T0 = 1_795_000_000.0  # a fixed instant, in the middle of a 30 s step


def code_at(when: float, secret: str = DEMO_SECRET) -> str:
    return pyotp.TOTP(secret).at(when)


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
    return {
        "event_id": event_id,
        "otp_code": code_at(when) if otp_code is None else otp_code,
        "point": {"app_id": app_id, "point_id": point_id, "adjust_point_quantity": adjust_point},
        "coin": {"coin_id": coin_id, "adjust_coin_quantity": adjust_coin},
    }


def swap(body: Any = None, au_id: int | None = 19, raw: str | None = None, headers: dict[str, str] | None = None):
    all_headers = {"Authorization": f"Bearer {token(au_id)}"} if au_id is not None else {}
    all_headers.update(headers or {})
    if raw is None and body is not None:
        raw = json.dumps(body)
    return call(swap_app.lambda_handler, api_event(PATH, None, all_headers, raw=raw))


def ledger_items(client: Any) -> list[dict[str, Any]]:
    items = []
    for page in client.get_paginator("scan").paginate(TableName=LEDGER_TABLE):
        items.extend(codec.from_item(item) for item in page["Items"])
    return sorted(items, key=lambda item: (item["pk"], item["sk"]))


def balances(client: Any, au_id: int = 19) -> tuple[Any, Any]:
    items = {item["sk"]: item for item in ledger_items(client) if item["pk"] == f"ACCOUNT#{au_id}"}
    return items["POINT#1#1"]["quantity"], items["WALLET#2"]["quantity"]


def swap_logs(client: Any, au_id: int = 19) -> list[dict[str, Any]]:
    return [i for i in ledger_items(client) if i["pk"] == f"ACCOUNT#{au_id}" and i["sk"].startswith("SWAPLOG#")]


def error(code: int, message: str) -> dict[str, Any]:
    return {"return": code, "message": message}
