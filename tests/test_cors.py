"""CORS (SPEC §6) at the handlers: API Gateway events in, exact headers out, for both routes."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import pyotp
import pytest
from pydantic import ValidationError

from conftest import ROOT
from helpers import DEMO_SECRET, LambdaContext, api_event, preflight_event, token
from payments.config import Settings, get_settings

ALLOWED = "http://dashboard.example.test:8080"
OTHER_ALLOWED = "https://points.example.test"
STRANGER = "https://evil.example.test"
PROGRESS = "/api/v1/asker/payment/progress"
SWAP = "/v1.0/db/swap"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": [ALLOWED],
    "Access-Control-Allow-Methods": ["OPTIONS,POST"],
    "Access-Control-Allow-Headers": ["Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key,x-token"],
    "Access-Control-Max-Age": ["600"],
    "Vary": ["Origin"],
}
# What every non-preflight answer to ALLOWED carries besides its own Content-Type.
ANSWER_CORS = {name: value for name, value in PREFLIGHT_HEADERS.items() if name != "Access-Control-Allow-Methods"}
JSON = {"Content-Type": ["application/json"]}


def _load(name: str, origins: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh load of a handler module (as a new execution environment) with CORS_ALLOWED_ORIGINS set."""
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", origins)
    get_settings.cache_clear()
    try:
        module_name = f"cors_test_{name}_{len(sys.modules)}"
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        monkeypatch.delenv("CORS_ALLOWED_ORIGINS")
        get_settings.cache_clear()


@pytest.fixture
def handlers(demo: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    origins = f" {ALLOWED}/ , {OTHER_ALLOWED}"
    return {
        PROGRESS: _load("payment_progress", origins, monkeypatch).lambda_handler,
        SWAP: _load("swap", origins, monkeypatch).lambda_handler,
    }


@pytest.fixture
def handlers_cors_off(demo: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return {
        PROGRESS: _load("payment_progress", "", monkeypatch).lambda_handler,
        SWAP: _load("swap", "", monkeypatch).lambda_handler,
    }


preflight = preflight_event


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, list[str]], Any]:
    response = handler(event, LambdaContext())
    assert "headers" not in response or not response["headers"]
    body = response["body"]
    return response["statusCode"], dict(response["multiValueHeaders"]), json.loads(body) if body else None


@pytest.mark.parametrize("path", [PROGRESS, SWAP])
def test_preflight_from_an_allowed_origin(handlers: dict[str, Any], path: str) -> None:
    status, headers, body = invoke(handlers[path], preflight(path, ALLOWED, "x-token,content-type"))
    assert (status, headers, body) == (204, PREFLIGHT_HEADERS, None)


def test_every_listed_origin_is_allowed(handlers: dict[str, Any]) -> None:
    status, headers, _ = invoke(handlers[SWAP], preflight(SWAP, OTHER_ALLOWED))
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == [OTHER_ALLOWED]


@pytest.mark.parametrize("path", [PROGRESS, SWAP])
@pytest.mark.parametrize("origin", [STRANGER, ALLOWED + "/", "http://dashboard.example.test", None])
def test_preflight_from_any_other_origin_has_no_cors_header(
    handlers: dict[str, Any], path: str, origin: str | None
) -> None:
    status, headers, body = invoke(handlers[path], preflight(path, origin))
    assert (status, headers, body) == (204, {"Vary": ["Origin"]}, None)


def test_payment_progress_success_and_errors_carry_cors_headers(handlers: dict[str, Any]) -> None:
    handler = handlers[PROGRESS]
    origin = {"Origin": ALLOWED}
    status, headers, body = invoke(
        handler, api_event(PROGRESS, {"concern_idx": 1577}, {**origin, "x-token": token(149)})
    )
    assert status == 200 and body["code"] == "success"
    assert headers == {**JSON, **ANSWER_CORS}
    status, headers, body = invoke(handler, api_event(PROGRESS, {"concern_idx": 1577}, {**origin, "x-token": "bad"}))
    assert (status, body) == (401, {"code": "invalid_token", "message": "Access token is invalid"})
    assert headers == {**JSON, **ANSWER_CORS}
    status, headers, body = invoke(handler, api_event(PROGRESS, raw="{", headers={**origin, "x-token": token(149)}))
    assert status == 400 and headers == {**JSON, **ANSWER_CORS}


def test_swap_success_and_errors_carry_cors_headers(handlers: dict[str, Any]) -> None:
    handler = handlers[SWAP]
    auth = {"Origin": ALLOWED, "Authorization": f"Bearer {token(19)}"}
    request = {
        "event_id": 3,
        "otp_code": pyotp.TOTP(DEMO_SECRET).now(),
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -110},
        "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
    }
    status, headers, body = invoke(handler, api_event(SWAP, request, auth))
    assert (status, body["return"]) == (200, 0)
    assert headers == {**JSON, **ANSWER_CORS}
    status, headers, body = invoke(handler, api_event(SWAP, request, {**auth, "Authorization": "Bearer nope"}))
    assert status == 401 and headers == {**JSON, **ANSWER_CORS}
    status, headers, body = invoke(handler, api_event(SWAP, raw="[1]", headers=auth))
    assert status == 400 and headers == {**JSON, **ANSWER_CORS}


def test_internal_error_carries_cors_headers(handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[handlers[PROGRESS].__module__]

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(module, "progress_payment", broken)
    status, headers, body = invoke(
        handlers[PROGRESS], api_event(PROGRESS, {"concern_idx": 1577}, {"Origin": ALLOWED, "x-token": token(149)})
    )
    assert status == 500 and body["code"] == "internal_error"
    assert headers == {**JSON, **ANSWER_CORS}


@pytest.mark.parametrize("path", [PROGRESS, SWAP])
def test_an_answer_to_another_origin_has_no_cors_header(handlers: dict[str, Any], path: str) -> None:
    status, headers, _ = invoke(handlers[path], api_event(path, {}, {"Origin": STRANGER, "x-token": "bad"}))
    assert status in (400, 401)
    assert headers == {**JSON, "Vary": ["Origin"]}


@pytest.mark.parametrize("path", [PROGRESS, SWAP])
def test_cors_off_answers_no_cors_header(handlers_cors_off: dict[str, Any], path: str) -> None:
    status, headers, body = invoke(handlers_cors_off[path], preflight(path, ALLOWED))
    assert (status, headers, body) == (204, {}, None)
    status, headers, _ = invoke(handlers_cors_off[path], api_event(path, {}, {"Origin": ALLOWED}))
    assert status in (400, 401) and headers == JSON


def test_origins_are_read_and_checked() -> None:
    settings = Settings.from_environ({"CORS_ALLOWED_ORIGINS": "HTTPS://Dash.Example.test/, http://127.0.0.1:8080,"})
    assert settings.cors_allowed_origins == ("https://dash.example.test", "http://127.0.0.1:8080")
    assert Settings.from_environ({}).cors_allowed_origins == ()
    for bad in [
        "*",
        "dash.example.test",
        "https://dash.example.test/app",
        "ftp://x.test",
        "http://x.test:99999",
        "https://user@x.test",
    ]:
        with pytest.raises(ValidationError, match="not an origin"):
            Settings.from_environ({"CORS_ALLOWED_ORIGINS": bad})


# --- over HTTP, against `payments serve` -----------------------------------------------------------


def _http(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _cors_headers(message: Any) -> dict[str, str]:
    return {
        name: value
        for name, value in message.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    }


@pytest.mark.local_stack
def test_serve_answers_preflights_and_calls_like_api_gateway() -> None:
    from helpers.processes import LocalStack

    with LocalStack("--cors-origin", ALLOWED, env={"CORS_ALLOWED_ORIGINS": STRANGER}) as stack:
        assert f"CORS: {ALLOWED} allowed" in stack.banner
        for path in (PROGRESS, SWAP):
            status, headers, body = _http(
                stack.port,
                "OPTIONS",
                path,
                {
                    "Origin": ALLOWED,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,x-token",
                },
            )
            assert (status, body) == (204, b"")
            assert _cors_headers(headers) == {name: value[0] for name, value in PREFLIGHT_HEADERS.items()}
            # --cors-origin replaces CORS_ALLOWED_ORIGINS: the environment's origin is not allowed
            status, headers, body = _http(
                stack.port, "OPTIONS", path, {"Origin": STRANGER, "Access-Control-Request-Method": "POST"}
            )
            assert (status, body, _cors_headers(headers)) == (204, b"", {"Vary": "Origin"})
        status, headers, body = _http(
            stack.port,
            "POST",
            PROGRESS,
            {"Origin": ALLOWED, "Content-Type": "application/json", "x-token": token(149)},
            b'{"concern_idx": 1577}',
        )
        assert status == 200 and json.loads(body)["data"]["point"] == {"honeypot": "280개"}
        assert _cors_headers(headers) == {name: value[0] for name, value in ANSWER_CORS.items()}
        status, headers, body = _http(
            stack.port,
            "POST",
            SWAP,
            {"Origin": ALLOWED, "Content-Type": "application/json", "Authorization": "Bearer nope"},
            b"{}",
        )
        assert status == 401 and json.loads(body)["return"] != 0
        assert _cors_headers(headers) == {name: value[0] for name, value in ANSWER_CORS.items()}
        # (a path the template does not route, API Gateway's own 403: test_gateway_responses.py)


@pytest.mark.local_stack
def test_serve_takes_cors_allowed_origins_and_refuses_a_bad_origin() -> None:
    import subprocess

    from helpers.processes import PAYMENTS, LocalStack

    with LocalStack(env={"CORS_ALLOWED_ORIGINS": f"{ALLOWED},{OTHER_ALLOWED}"}) as stack:
        assert f"CORS: {ALLOWED}, {OTHER_ALLOWED} allowed" in stack.banner
        status, headers, _ = _http(
            stack.port, "OPTIONS", SWAP, {"Origin": OTHER_ALLOWED, "Access-Control-Request-Method": "POST"}
        )
        assert status == 204 and headers["Access-Control-Allow-Origin"] == OTHER_ALLOWED
    result = subprocess.run(
        [str(PAYMENTS), "serve", "--port", "0", "--cors-origin", "dashboard.example.test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "payments serve: CORS origin refused: not an origin (scheme://host[:port]): 'dashboard.example.test'\n"
    )


def test_the_template_sends_preflights_to_the_functions_and_passes_the_origins() -> None:
    from payments_cli.template import load_template, routes

    template = load_template()
    parameter = template["Parameters"]["CorsAllowedOrigins"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CORS_ALLOWED_ORIGINS"] == {"Ref": "CorsAllowedOrigins"}
    by_path: dict[str, set[tuple[str, str]]] = {}
    for route in routes(template):
        by_path.setdefault(route.path, set()).add((route.method, route.function))
    assert by_path == {
        PROGRESS: {("POST", "PaymentProgressFunction"), ("OPTIONS", "PaymentProgressFunction")},
        SWAP: {("POST", "SwapFunction"), ("OPTIONS", "SwapFunction")},
    }
    # no API Gateway mock CORS in front of them (it would answer every origin, and differently from local)
    api = template["Resources"]["PaymentsApi"]["Properties"]
    assert "Cors" not in api


def test_the_template_origin_pattern_matches_what_the_functions_accept() -> None:
    import re

    from payments_cli.template import load_template

    pattern = re.compile(load_template()["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"])
    for accepted in ["", "https://dash.example.com", "http://127.0.0.1:8080,https://a.example.test"]:
        assert pattern.fullmatch(accepted)
        Settings.from_environ({"CORS_ALLOWED_ORIGINS": accepted})
    for refused in ["*", "https://dash.example.com/", "dash.example.com", "https://a.test, https://b.test"]:
        assert not pattern.fullmatch(refused)
