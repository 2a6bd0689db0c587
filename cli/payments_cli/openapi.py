"""The OpenAPI 3.1 document of both routes, built once from the code that serves them.

Request and response schemas come from the pydantic models, error responses from the two
catalogues of `payments.errors` (every code, its HTTP status and its envelope), so the
document cannot say something the handlers do not do. `docs/openapi.json` is this module's
output, committed; `tests/test_openapi.py` fails when the two drift apart.

    python -m payments_cli.openapi            # print the document
    python -m payments_cli.openapi --write    # (re)write docs/openapi.json
    python -m payments_cli.openapi --check    # exit 1 when docs/openapi.json is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from payments.errors import DASHBOARD_CATALOGUE, WILLSON_CATALOGUE, CatalogueEntry, PaymentsError
from payments.json_body import MAX_BODY_BYTES
from payments.models.payment_progress import PaymentProgressData, PaymentProgressRequest
from payments.models.swap import SwapValue
from payments.models.swap_schema import SwapRequestBody
from payments_cli.template import PROJECT_ROOT

OPENAPI_PATH = PROJECT_ROOT / "docs" / "openapi.json"
PAYMENT_PROGRESS_PATH = "/api/v1/asker/payment/progress"
SWAP_PATH = "/v1.0/db/swap"
REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"


class PaymentProgressSuccess(BaseModel):
    """Success envelope of the Willson endpoint."""

    code: Literal["success"]
    message: Literal["success"]
    data: PaymentProgressData


class SwapSuccess(BaseModel):
    """Success envelope of the swap endpoint."""

    model_config = ConfigDict(populate_by_name=True)

    return_: Literal[0] = Field(alias="return")
    message: Literal["success"]
    value: SwapValue


class _ExactDecimals(GenerateJsonSchema):
    """Decimals travel as JSON numbers written exactly (never strings, never through floats)."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> dict[str, Any]:
        json_schema: dict[str, Any] = {"type": "number"}
        for bound, keyword in (
            ("gt", "exclusiveMinimum"),
            ("lt", "exclusiveMaximum"),
            ("ge", "minimum"),
            ("le", "maximum"),
        ):
            value = schema.get(bound)
            if value is not None:
                json_schema[keyword] = int(value) if Decimal(value) == int(value) else float(value)
        return json_schema


# The seed page's response, which the demo data reproduces (a request of -110 points, +11 coins).
_SWAP_EXAMPLE_VALUE = {
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
_SWAP_EXAMPLE_REQUEST = {
    "event_id": 3,
    "otp_code": "123456",
    "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -110},
    "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
}


_TOKEN_DESCRIPTION = "HS256 JWT with an integer `au_id` claim and `exp` (seconds, or milliseconds above 10^11)."  # noqa: S105 - not a secret


def _component_schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (PaymentProgressRequest, "validation"),
        (PaymentProgressSuccess, "serialization"),
        (SwapRequestBody, "validation"),
        (SwapSuccess, "serialization"),
    ]
    _, definitions = models_json_schema(models, ref_template=REF_TEMPLATE, schema_generator=_ExactDecimals)
    schemas: dict[str, Any] = definitions["$defs"]
    # The validator of `match_type` admits only 1 and 2 (or null / absent): say so in the schema.
    match_type = schemas["PaymentProgressRequest"]["properties"]["match_type"]
    match_type.update(
        {
            "anyOf": [{"type": "integer", "enum": [1, 2]}, {"type": "null"}],
            "description": "1: the same willsoner(s) as before; 2: a different one; null or absent: all.",
        }
    )
    schemas["PaymentProgressRequest"]["properties"]["concern_idx"]["description"] = "The caller's concern."
    for success in ("PaymentProgressSuccess", "SwapSuccess"):
        _close_objects(schemas, success)
    schemas["WillsonError"] = _error_envelope("code", {"type": "string"}, WILLSON_CATALOGUE)
    schemas["SwapError"] = _error_envelope("return", {"type": "integer"}, DASHBOARD_CATALOGUE)
    return dict(sorted(schemas.items()))


def _close_objects(schemas: dict[str, Any], name: str) -> None:
    """Responses carry exactly the documented fields: close every object schema under `name`."""
    pending, seen = [name], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        schema = schemas[current]
        if schema.get("type") == "object":
            schema["additionalProperties"] = False
        text = json.dumps(schema)
        prefix = REF_TEMPLATE.format(model="")
        pending.extend(part.split('"')[0] for part in text.split(prefix)[1:])


def _error_envelope(code_field: str, code_type: dict[str, Any], catalogue: dict[str, CatalogueEntry]) -> dict[str, Any]:
    codes = sorted({entry.code for entry in catalogue.values()}, key=str)
    return {
        "title": "WillsonError" if code_field == "code" else "SwapError",
        "type": "object",
        "description": "Every refusal of this endpoint: a catalogued code and its message.",
        "required": [code_field, "message"],
        "additionalProperties": False,
        "properties": {code_field: {**code_type, "enum": codes}, "message": {"type": "string"}},
    }


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


def _error_responses(code_field: str, envelope: str, catalogue: dict[str, CatalogueEntry]) -> dict[str, Any]:
    """One response per HTTP status: the catalogue entries answered with it, each an example."""
    descriptions = _kind_descriptions()
    by_status: dict[int, list[tuple[str, CatalogueEntry]]] = defaultdict(list)
    for kind, entry in catalogue.items():
        by_status[entry.status].append((kind, entry))
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        entries = by_status[status]
        variants: list[dict[str, Any]] = []
        examples: dict[str, Any] = {}
        for kind, entry in entries:
            message: dict[str, Any] = {"type": "string"} if entry.detail_overrides_message else {"const": entry.message}
            variant = {"type": "object", "properties": {code_field: {"const": entry.code}, "message": message}}
            if variant not in variants:
                variants.append(variant)
            summary = descriptions.get(kind, kind)
            if entry.detail_overrides_message:
                summary += " The message names the field or the problem."
            shared = sum(1 for other in catalogue.values() if other.code == entry.code) > 1
            examples[f"{entry.code} ({kind})" if shared else f"{entry.code}"] = {
                "summary": summary,
                "value": {code_field: entry.code, "message": entry.message},
            }
        listed = ", ".join(dict.fromkeys(str(entry.code) for _, entry in entries))
        responses[str(status)] = {
            "description": f"Refused: {listed}.",
            "content": {
                JSON: {
                    "schema": {"allOf": [{"$ref": REF_TEMPLATE.format(model=envelope)}], "anyOf": variants},
                    "examples": examples,
                }
            },
        }
    return responses


def _request_body(model: str, examples: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {JSON: {"schema": {"$ref": REF_TEMPLATE.format(model=model)}, "examples": examples}},
    }


def _body_rules() -> str:
    return (
        f"The body must be one JSON object of at most {MAX_BODY_BYTES} bytes, without duplicate keys, NaN or "
        "Infinity; Content-Type is not read. Numbers are read exactly (never through binary floats) and types "
        "are strict: an integer field takes a JSON integer written as such (`1577`, not `1577.0` or `1.577e3`); "
        "a string, boolean or fraction where an integer is expected is refused, never coerced."
    )


def _version() -> str:
    try:
        return metadata.version("willson-payments")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def build_document() -> dict[str, Any]:
    """The OpenAPI document of both routes."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Willson payments API",
            "version": _version(),
            "description": (
                "Two endpoints behind one API Gateway API: the Willson app's concern payment, step 1, and the points "
                "dashboard's OTP-confirmed swap of points and coins. Errors use each endpoint's own envelope: "
                '`{"code", "message"}` for Willson, `{"return", "message"}` for the dashboard.'
            ),
        },
        "servers": [
            {"url": "/", "description": "The host serving this document (`payments serve`)."},
            {
                "url": "https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "The deployed API Gateway stage (see the stack's outputs).",
                "variables": {
                    "apiId": {"default": "api-id"},
                    "region": {"default": "ap-northeast-2"},
                    "stage": {"default": "v1"},
                },
            },
        ],
        "tags": [
            {"name": "willson", "description": "Willson app (token in `x-token`)."},
            {"name": "dashboard", "description": "Points dashboard (`Authorization: Bearer`)."},
        ],
        "paths": {
            PAYMENT_PROGRESS_PATH: {"post": _payment_progress_operation()},
            SWAP_PATH: {"post": _swap_operation()},
        },
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {
                "XToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-token",
                    "description": _TOKEN_DESCRIPTION,
                },
                "BearerJWT": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": _TOKEN_DESCRIPTION,
                },
            },
        },
    }
    return document


def _payment_progress_operation() -> dict[str, Any]:
    return {
        "tags": ["willson"],
        "operationId": "paymentProgress",
        "summary": "Concern payment, step 1: honeypot balance, willsoners to choose from, tickets, the concern.",
        "description": (
            "Checks in this order: body → token → fields → concern → willsoners. Lists at most 30 willsoners. "
            + _body_rules()
        ),
        "security": [{"XToken": []}],
        "requestBody": _request_body(
            "PaymentProgressRequest",
            {
                "all": {"summary": "Every matching willsoner", "value": {"concern_idx": 1577}},
                "different": {
                    "summary": "Willsoners never met before",
                    "value": {"concern_idx": 1577, "match_type": 2},
                },
            },
            "The caller's concern, and which willsoners to list.",
        ),
        "responses": {
            "200": {
                "description": "The payment page's data.",
                "content": {JSON: {"schema": {"$ref": REF_TEMPLATE.format(model="PaymentProgressSuccess")}}},
            },
            **_error_responses("code", "WillsonError", WILLSON_CATALOGUE),
        },
    }


def _swap_operation() -> dict[str, Any]:
    return {
        "tags": ["dashboard"],
        "operationId": "swap",
        "summary": "Swap points for coins (event 3) or coins for points (event 4), confirmed by an authenticator code.",
        "description": (
            "Checks in this order: body → token → event → app/point/coin ids → quantities/rate → accounts → OTP → "
            "balances. The same request (same account, same parsed body) repeated within 10 minutes returns the first "
            "success and changes nothing; refusals are not replayed. " + _body_rules()
        ),
        "security": [{"BearerJWT": []}],
        "requestBody": _request_body(
            "SwapRequestBody",
            {"seed": {"summary": "110 points to 11 coins at the demo rate 0.1", "value": _SWAP_EXAMPLE_REQUEST}},
            "The swap, as in the seed page.",
        ),
        "responses": {
            "200": {
                "description": "The swap was committed (or this is the replay of the same request's success).",
                "content": {
                    JSON: {
                        "schema": {"$ref": REF_TEMPLATE.format(model="SwapSuccess")},
                        "examples": {
                            "seed": {
                                "summary": "The seed page's response",
                                "value": _checked(
                                    SwapSuccess, {"return": 0, "message": "success", "value": _SWAP_EXAMPLE_VALUE}
                                ),
                            }
                        },
                    }
                },
            },
            **_error_responses("return", "SwapError", DASHBOARD_CATALOGUE),
        },
    }


def _checked(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """An example, once the model it illustrates has accepted it."""
    model.model_validate(example)
    return example


def render(document: dict[str, Any] | None = None) -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(build_document() if document is None else document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments_cli.openapi", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write the document to {OPENAPI_PATH}")
    action.add_argument("--check", action="store_true", help=f"exit 1 when {OPENAPI_PATH} differs from the code")
    parser.add_argument("--path", type=Path, default=OPENAPI_PATH, help="the file --write and --check use")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text, encoding="utf-8")
        print(f"wrote {args.path}", file=sys.stderr)
        return 0
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is stale: run `python -m payments_cli.openapi --write`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
