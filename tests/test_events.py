"""Every ready event in events/ runs through its function's handler and gets the status its name promises."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pyotp
import pytest

from conftest import EVENTS
from helpers import DEMO_SECRET, LambdaContext
from payments_cli.template import load_template, routes

PROMISES = {
    "success": 200,
    "not_found": 404,
    "invalid_parameter": 400,
    "invalid_event_id": 400,
    "off_rate": 400,
    "expired_token": 401,
}
EVENT_FILES = sorted(path for path in EVENTS.glob("*.json") if path.name != "env.json")


def promised_status(path: Path) -> int:
    return next(status for suffix, status in PROMISES.items() if path.stem.endswith(suffix))


def handler_for(event: dict) -> object:
    route = next(r for r in routes(load_template()) if r.path == event["path"] and r.method == event["httpMethod"])
    package = ".".join(route.code_uri.relative_to(route.code_uri.parents[1]).parts)
    module = importlib.import_module(f"{package}.{route.handler.rpartition('.')[0]}")
    return getattr(module, route.handler_name)


def test_every_function_has_a_success_and_an_error_event():
    by_path: dict[str, set[bool]] = {}
    for path in EVENT_FILES:
        event = json.loads(path.read_text(encoding="utf-8"))
        by_path.setdefault(event["path"], set()).add(promised_status(path) == 200)
    assert set(by_path) == {route.path for route in routes(load_template())}
    assert all(kinds == {True, False} for kinds in by_path.values())


def test_env_json_names_every_function():
    env = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
    functions = {
        name
        for name, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(env) == functions >= {route.function for route in routes(load_template())} | {"AuditFunction"}


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.stem for p in EVENT_FILES])
def test_event_runs_and_gets_its_promised_status(demo, path):
    event = json.loads(path.read_text(encoding="utf-8"))
    if "REPLACE_WITH_CURRENT_CODE" in (event["body"] or ""):
        event["body"] = event["body"].replace("REPLACE_WITH_CURRENT_CODE", pyotp.TOTP(DEMO_SECRET).now())
    response = handler_for(event)(event, LambdaContext())
    assert response["statusCode"] == promised_status(path), response["body"]
    body = json.loads(response["body"])
    assert set(body) in (
        {"code", "message", "data"},
        {"code", "message"},
        {"return", "message", "value"},
        {"return", "message"},
    )
