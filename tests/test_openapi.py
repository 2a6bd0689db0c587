"""docs/openapi.json: generated from the code, never drifting from it, and served by the local stack."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from conftest import ROOT
from local_stack import LocalStack
from payments.errors import DASHBOARD_CATALOGUE, WILLSON_CATALOGUE
from payments_cli import openapi
from seed_values import SEED_SWAP_VALUE

DOC_PATH = ROOT / "docs" / "openapi.json"
PROGRESS = "/api/v1/asker/payment/progress"
SWAP = "/v1.0/db/swap"
SEED_PROGRESS_RESPONSE = json.loads(
    (ROOT / "tests" / "data" / "seed_payment_progress_response.json").read_text(encoding="utf-8")
)
SEED_SWAP_RESPONSE = {"return": 0, "message": "success", "value": SEED_SWAP_VALUE}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOC_PATH.read_text(encoding="utf-8"))


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of `schema` whose `#/components/...` references resolve in `document`."""
    return Draft202012Validator({**schema, "components": document["components"]})


def response_schema(document: dict[str, Any], path: str, status: int) -> dict[str, Any]:
    return document["paths"][path]["post"]["responses"][str(status)]["content"]["application/json"]["schema"]


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


# --- the committed file is what the code generates ---


def test_committed_document_is_what_the_code_generates():
    # Given the committed docs/openapi.json
    committed = DOC_PATH.read_text(encoding="utf-8")
    # When the document is built from the models and catalogues again
    generated = openapi.render()
    # Then both are the same text (else: python -m payments_cli.openapi --write)
    assert committed == generated, "docs/openapi.json is stale: run `make openapi`"


def test_check_flags_a_stale_file_and_write_repairs_it(tmp_path, capsys):
    # Given a copy of the document that someone edited by hand
    stale = tmp_path / "openapi.json"
    stale.write_text(DOC_PATH.read_text(encoding="utf-8").replace("Willson payments API", "Edited"), encoding="utf-8")
    # When --check runs, then it fails; after --write it passes and the file is the generated text
    assert openapi.main(["--check", "--path", str(stale)]) == 1
    assert openapi.main(["--write", "--path", str(stale)]) == 0
    assert openapi.main(["--check", "--path", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == openapi.render()


def test_printing_writes_the_document_to_stdout(capsys):
    assert openapi.main([]) == 0
    assert capsys.readouterr().out == openapi.render()


def test_document_is_valid_openapi_3_1(document):
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {PROGRESS, SWAP}
    assert [method for item in document["paths"].values() for method in item] == ["post", "post"]


def test_the_document_comes_from_the_handlers_routes_and_models(document):
    from functions.payment_progress import app as progress_app
    from functions.swap import app as swap_app
    from payments.models.payment_progress import PaymentProgressRequest
    from payments.models.swap import SwapRequest

    # each operation is a route a handler registered on its resolver, from that handler's contract ...
    for path, handler in ((PROGRESS, progress_app), (SWAP, swap_app)):
        operation = document["paths"][path]["post"]
        assert operation["operationId"] == handler.api.contract.operation_id
        assert operation["summary"] == handler.api.contract.summary
    # ... and its request schema is the one model the handler reads the body with (no second, documentary model)
    assert swap_app.SwapRequest is SwapRequest
    schemas = document["components"]["schemas"]
    for path, model in ((PROGRESS, PaymentProgressRequest), (SWAP, SwapRequest)):
        assert request_schema(document, path)["$ref"] == f"#/components/schemas/{model.__name__}"
    assert schemas["SwapRequest"] == SwapRequest.model_json_schema()
    assert "SwapRequestBody" not in schemas


def test_decimals_are_documented_as_json_numbers(document):
    coin = document["components"]["schemas"]["SwapCoinView"]["properties"]
    for name in ("previous_coin_quantity", "adjust_coin_quantity", "coin_quantity"):
        assert coin[name]["type"] == "number", name
    swap = document["components"]["schemas"]["SwapRequest"]["properties"]
    assert swap["coin"]["properties"]["adjust_coin_quantity"]["type"] == "number"


# --- what the document says ---


def test_security_schemes_and_which_operation_uses_which(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["XToken"]["type"] == "apiKey"
    assert (schemes["XToken"]["in"], schemes["XToken"]["name"]) == ("header", "x-token")
    assert {key: schemes["BearerJWT"][key] for key in ("type", "scheme", "bearerFormat")} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert document["paths"][PROGRESS]["post"]["security"] == [{"XToken": []}]
    assert document["paths"][SWAP]["post"]["security"] == [{"BearerJWT": []}]


@pytest.mark.parametrize(
    "path, code_field, catalogue",
    [(PROGRESS, "code", WILLSON_CATALOGUE), (SWAP, "return", DASHBOARD_CATALOGUE)],
)
def test_every_catalogued_error_is_documented_with_its_status_and_envelope(document, path, code_field, catalogue):
    responses = document["paths"][path]["post"]["responses"]
    # Then the documented statuses are 200 and exactly the catalogue's
    assert set(responses) == {"200"} | {str(entry.status) for entry in catalogue.values()}
    for kind, entry in catalogue.items():
        body = {code_field: entry.code, "message": entry.message}
        # each entry is an example of its status, and its body is valid there and nowhere else
        examples = responses[str(entry.status)]["content"]["application/json"]["examples"]
        assert body in [example["value"] for example in examples.values()], kind
        for status in responses:
            if status == "200":
                continue
            valid = validator(document, response_schema(document, path, int(status))).is_valid(body)
            assert valid is (status == str(entry.status)), (kind, status)


def test_error_envelopes_refuse_other_shapes(document):
    check = validator(document, response_schema(document, SWAP, 400))
    assert check.is_valid({"return": 32100, "message": "EventID is invalid"})
    assert not check.is_valid({"return": 32100, "message": "another text"})
    assert not check.is_valid({"return": 32100, "message": "EventID is invalid", "extra": 1})
    assert not check.is_valid({"code": 32100, "message": "EventID is invalid"})
    willson = validator(document, response_schema(document, PROGRESS, 400))
    # invalid_parameter's message names the field, so any text is valid
    assert willson.is_valid({"code": "invalid_parameter", "message": "concern_idx must be an integer"})
    assert not willson.is_valid({"code": "invalid_token", "message": "Access token is invalid"})


def test_success_schemas_accept_the_seed_responses_exactly(document):
    progress = validator(document, response_schema(document, PROGRESS, 200))
    swap = validator(document, response_schema(document, SWAP, 200))
    assert list(progress.iter_errors(SEED_PROGRESS_RESPONSE)) == []
    assert list(swap.iter_errors(SEED_SWAP_RESPONSE)) == []
    # and nothing but the seed's fields
    extra = json.loads(json.dumps(SEED_PROGRESS_RESPONSE))
    extra["data"]["willsoners"][0]["rating"] = 4.5
    assert not progress.is_valid(extra)
    assert not swap.is_valid({**SEED_SWAP_RESPONSE, "value": {**SEED_SWAP_RESPONSE["value"], "coin": {}}})
    assert not swap.is_valid({**SEED_SWAP_RESPONSE, "return": 1})
    # coin quantities are JSON numbers, never strings
    as_text = json.loads(json.dumps(SEED_SWAP_RESPONSE))
    as_text["value"]["coin"]["coin_quantity"] = "11"
    assert not swap.is_valid(as_text)


def test_request_schemas_describe_the_documented_bodies(document):
    progress = validator(document, request_schema(document, PROGRESS))
    assert progress.is_valid({"concern_idx": 1577})
    assert progress.is_valid({"concern_idx": 1577, "match_type": None})
    assert progress.is_valid({"concern_idx": 1577, "match_type": 2})
    for bad in ({}, {"concern_idx": "1577"}, {"concern_idx": 1577, "match_type": 3}, {"concern_idx": True}):
        assert not progress.is_valid(bad), bad
    swap = validator(document, request_schema(document, SWAP))
    body = {
        "event_id": 3,
        "otp_code": "123456",
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -110},
        "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
    }
    assert swap.is_valid(body)
    assert swap.is_valid({**body, "coin": {"coin_id": 2, "adjust_coin_quantity": 1.5}})
    for bad in (
        {**body, "event_id": 5},
        {**body, "otp_code": "12345"},
        {**body, "otp_code": 123456},
        {**body, "point": {**body["point"], "adjust_point_quantity": 2**63}},
        {**body, "coin": {"coin_id": 2, "adjust_coin_quantity": "11"}},
        {**body, "coin": {"coin_id": 2, "adjust_coin_quantity": 10**18}},
        {key: value for key, value in body.items() if key != "coin"},
    ):
        assert not swap.is_valid(bad), bad
    # the documented examples are valid requests
    for path, check in ((PROGRESS, progress), (SWAP, swap)):
        examples = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"]
        assert examples and all(check.is_valid(example["value"]) for example in examples.values())


@pytest.mark.parametrize("path", [PROGRESS, SWAP])
def test_a_busy_answer_is_documented_with_its_retry_after_header(document, monkeypatch, path):
    from conftest import LambdaContext, api_event, token
    from functions.payment_progress import app as progress_app
    from functions.swap import app as swap_app
    from payments.errors import ServiceBusy

    def busy(*_: Any, **__: Any) -> Any:
        raise ServiceBusy("throttled", retry_after_seconds=3)

    # Given DynamoDB too busy for the route's service
    module, service = (progress_app, "progress_payment") if path == PROGRESS else (swap_app, "execute_swap")
    monkeypatch.setattr(module, service, busy)
    headers = {"x-token": token(149)} if path == PROGRESS else {"Authorization": f"Bearer {token(19)}"}
    body = {"concern_idx": 1577} if path == PROGRESS else {"event_id": 3}
    # When the handler answers
    answer = module.lambda_handler(api_event(path, body, headers), LambdaContext())
    # Then it is the documented 503, with the documented Retry-After header
    assert answer["statusCode"] == 503
    assert answer["multiValueHeaders"]["Retry-After"] == ["3"]
    documented = document["paths"][path]["post"]["responses"]["503"]
    assert validator(document, documented["content"]["application/json"]["schema"]).is_valid(json.loads(answer["body"]))
    assert Draft202012Validator(documented["headers"]["Retry-After"]["schema"]).is_valid(3)


@pytest.mark.parametrize("origin, exposed", [("https://dashboard.example", True), ("https://elsewhere.example", False)])
def test_a_busy_answer_lets_an_allowed_page_read_its_retry_after(origin, exposed):
    from aws_lambda_powertools.event_handler import Response

    from conftest import LambdaContext, api_event
    from payments.api import Api
    from payments.config import get_settings
    from payments.errors import ServiceBusy
    from payments.routes.swap import CONTRACT

    # Given a route built by the factory with CORS on for one origin, whose service is busy
    api = Api(CONTRACT, get_settings().model_copy(update={"cors_allowed_origins": ("https://dashboard.example",)}))

    @api.route
    def busy() -> Response[str]:
        raise ServiceBusy("throttled", retry_after_seconds=2)

    # When a page of that origin (or of another) calls it
    answer = api.lambda_handler(api_event(SWAP, {}, {"Origin": origin}), LambdaContext())
    # Then the answer says when to retry, and only the allowed page is told it may read that
    headers = answer["multiValueHeaders"]
    assert (answer["statusCode"], headers["Retry-After"]) == (503, ["2"])
    assert ("Access-Control-Expose-Headers" in headers) is exposed
    assert (headers.get("Access-Control-Allow-Origin") == [origin]) is exposed


# --- served by the local stack ---


@pytest.mark.local_stack
def test_local_stack_serves_the_document_and_swagger_ui():
    # Given the local stack on its embedded emulator
    with LocalStack() as stack:
        # When /openapi.json and /docs are fetched
        status, body, kind = stack.get("/openapi.json")
        docs_status, page, docs_kind = stack.get("/docs")
        assets = {path: stack.get(path) for path in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js")}
    # Then the document is the committed file, byte for byte, and /docs is Swagger UI loading it
    assert (status, kind) == (200, "application/json")
    assert body == DOC_PATH.read_bytes()
    assert (docs_status, docs_kind) == (200, "text/html; charset=utf-8")
    assert b"SwaggerUIBundle" in page and b'url: "/openapi.json"' in page
    # from Powertools' bundled copy of Swagger UI, served by the stack itself: nothing from another host
    assert b"//" not in page
    bundled = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    assert assets == {
        "/docs/swagger-ui.css": (200, bundled.joinpath("swagger-ui.min.css").read_bytes(), "text/css; charset=utf-8"),
        "/docs/swagger-ui-bundle.js": (
            200,
            bundled.joinpath("swagger-ui-bundle.min.js").read_bytes(),
            "text/javascript; charset=utf-8",
        ),
    }
