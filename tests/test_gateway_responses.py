"""API Gateway's own answers (no route, throttled, too large, timeout, any other 4xx/5xx): JSON, and readable by the
dashboard in a browser on its origin.

Deployed: template.yaml's gateway responses, judged after the SAM transform as CloudFormation will see them, with
the parameters' values resolved as CloudFormation resolves them. Local: `payments serve` answers every method to a
path or method the template has no route for as API Gateway does, with the same headers and body.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
ROUTES = ("/v1.0/db/swap", "/api/v1/asker/payment/progress")
BODY_TEMPLATE = '{"message":$context.error.messageString}'
ORIGINS = ("http://127.0.0.1:8080", "http://localhost:9000")
NO_VALUE = object()

pytestmark = pytest.mark.slow  # the SAM transform and `payments serve` are processes of their own


# --- the template after the SAM transform ------------------------------------------------------------------


def sam_python() -> Path | None:
    candidates = [Path(os.environ["SAM_BIN"]).with_name("python")] if os.environ.get("SAM_BIN") else []
    return next((c for c in [*candidates, ROOT / ".venv-sam" / "bin" / "python"] if c.is_file()), None)


def transform(parameters: dict[str, str]) -> dict[str, Any]:
    python = sam_python()
    if python is None:
        pytest.skip("no SAM CLI virtualenv (.venv-sam, or SAM_BIN): `make test` installs it")
    result = subprocess.run(
        [str(python), str(ROOT / "tests" / "sam_transform.py"), str(TEMPLATE), json.dumps(parameters)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def resolve(value: Any, template: dict[str, Any], parameters: dict[str, str]) -> Any:
    """A value as CloudFormation resolves it for these parameter values (the intrinsics the template uses here)."""

    def parameter(name: str) -> str:
        return str(parameters.get(name, template["Parameters"][name].get("Default", "")))

    def condition(name: str) -> bool:
        return bool(resolve(template["Conditions"][name], template, parameters))

    if isinstance(value, list):
        return [v for v in (resolve(item, template, parameters) for item in value) if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        [(key, inner)] = value.items()
        if key == "Ref":
            return NO_VALUE if inner == "AWS::NoValue" else parameter(inner)
        if key == "Condition":
            return condition(inner)
        if key == "Fn::If":
            return resolve(inner[1] if condition(inner[0]) else inner[2], template, parameters)
        if key == "Fn::Not":
            return not resolve(inner[0], template, parameters)
        if key == "Fn::And":
            return all(resolve(v, template, parameters) for v in inner)
        if key == "Fn::Equals":
            return resolve(inner[0], template, parameters) == resolve(inner[1], template, parameters)
        if key == "Fn::Split":
            return resolve(inner[1], template, parameters).split(inner[0])
        if key == "Fn::Select":
            return resolve(inner[1], template, parameters)[int(inner[0])]
        if key == "Fn::Sub":
            text, variables = (inner, {}) if isinstance(inner, str) else inner
            values = {name: resolve(v, template, parameters) for name, v in variables.items()}
            return re.sub(
                r"\$\{([^}]+)\}", lambda m: values[m.group(1)] if m.group(1) in values else parameter(m.group(1)), text
            )
    resolved = {k: resolve(v, template, parameters) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def gateway_responses(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Response type -> {"status", "headers", "templates"}, as the deployed API has them for these parameters."""
    deployed = transform(parameters)
    [api] = [r for r in deployed["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    responses = resolve(
        api["Properties"]["Body"].get("x-amazon-apigateway-gateway-responses", {}), deployed, parameters
    )
    prefix = "gatewayresponse.header."
    out = {}
    for kind, response in responses.items():
        parameters_out = response.get("responseParameters", {})
        assert all(name.startswith(prefix) for name in parameters_out), parameters_out
        out[kind] = {
            "status": response.get("statusCode"),
            "headers": {name.removeprefix(prefix): value for name, value in parameters_out.items()},
            "templates": response.get("responseTemplates", {}),
        }
    return out


def expected(origin: str | None) -> dict[str, dict[str, Any]]:
    cors = {"Access-Control-Allow-Origin": f"'{origin}'", "Vary": "'Origin'"} if origin else {}
    templates = {"application/json": BODY_TEMPLATE}
    return {
        "DEFAULT_4XX": {"status": None, "headers": cors, "templates": templates},
        "DEFAULT_5XX": {"status": None, "headers": cors, "templates": templates},
        "THROTTLED": {
            "status": "429",
            "headers": {
                "Retry-After": "'1'",
                **cors,
                **({"Access-Control-Expose-Headers": "'Retry-After'"} if origin else {}),
            },
            "templates": templates,
        },
    }


def test_cors_off_gateway_responses_are_json_without_cors_headers():
    assert gateway_responses({}) == expected(None)
    assert gateway_responses({"CorsAllowedOrigins": ""}) == expected(None)


def test_one_allowed_origin_is_named_by_every_gateway_response():
    assert gateway_responses({"CorsAllowedOrigins": "https://dashboard.example.com"}) == expected(
        "https://dashboard.example.com"
    )


def test_several_allowed_origins_the_first_is_named_statically_never_the_request_origin():
    responses = gateway_responses(
        {"CorsAllowedOrigins": "https://dashboard.example.com,https://admin.example.com:8443"}
    )
    assert responses == expected("https://dashboard.example.com")
    for response in responses.values():
        for value in response["headers"].values():
            # a static value (quoted), never a mapping of the request (method.request.header.Origin echoes ANY origin)
            assert value.startswith("'") and value.endswith("'"), value


def test_the_body_template_renders_api_gateways_own_json_body():
    # $context.error.messageString is the message already quoted as a JSON string; the template is not VTL
    for message in ("Missing Authentication Token", "Too Many Requests", "Endpoint request timed out"):
        rendered = BODY_TEMPLATE.replace("$context.error.messageString", json.dumps(message))
        assert json.loads(rendered) == {"message": message}


def test_every_stack_update_redeploys_the_stage_so_new_origins_reach_it():
    # A stage serves the deployment it points to; SAM names a new deployment only when the definition's text changes,
    # and a new CorsAllowedOrigins value does not change it: the API is deployed on every update (AlwaysDeploy).
    def deployment(parameters: dict[str, str]) -> str:
        deployed = transform(parameters)
        [stage] = [r for r in deployed["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
        [name] = [n for n, r in deployed["Resources"].items() if r["Type"] == "AWS::ApiGateway::Deployment"]
        assert stage["Properties"]["DeploymentId"] == {"Ref": name}
        return name

    first = deployment({"CorsAllowedOrigins": "https://a.example"})
    # AlwaysDeploy names the deployment after the transform's second (int(time.time())): two deploys are never within
    # one second of each other, two transforms here could be
    time.sleep(1 - time.time() % 1)
    assert deployment({"CorsAllowedOrigins": "https://b.example"}) != first


# --- `payments serve` answers as the deployed API would -------------------------------------------------------

METHODS = ("GET", "PUT", "DELETE", "PATCH", "HEAD", "TRACE", "CONNECT", "FOO", "post")


@pytest.fixture(scope="module")
def cors_stack() -> Any:
    from local_stack import LocalStack

    with LocalStack(*[arg for origin in ORIGINS for arg in ("--cors-origin", origin)]) as stack:
        yield stack


@pytest.fixture(scope="module")
def plain_stack() -> Any:
    from local_stack import LocalStack

    with LocalStack(env={"CORS_ALLOWED_ORIGINS": ""}) as stack:
        yield stack


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


MISSING_TOKEN = {"message": "Missing Authentication Token"}


@pytest.mark.local_stack
def test_every_method_without_a_route_is_403_json_with_cors_for_the_first_origin(cors_stack):
    for path in (*ROUTES, "/", "/nope", "/v1.0/db/swap/extra"):
        for method in METHODS:
            if method == "post" and path not in ROUTES:
                continue
            for origin in (*ORIGINS, "https://evil.example", None):
                headers = {"Origin": origin} if origin else {}
                status, got, body = request(cors_stack.port, method, path, headers)
                where = f"{method} {path} from {origin}"
                assert status == 403, where
                assert got["content-type"] == "application/json", where
                assert got["access-control-allow-origin"] == ORIGINS[0], where  # what the deployed API names
                assert got["vary"] == "Origin", where
                assert not [h for h in got if h.startswith("access-control-") and h != "access-control-allow-origin"]
                if method == "HEAD":
                    assert body == b"" and int(got["content-length"]) == len(
                        json.dumps(MISSING_TOKEN, separators=(",", ":"))
                    )
                else:
                    assert json.loads(body) == MISSING_TOKEN, where


@pytest.mark.local_stack
def test_without_cors_the_403_has_no_cors_header(plain_stack):
    for method in ("GET", "TRACE", "FOO"):
        status, got, body = request(plain_stack.port, method, ROUTES[0], {"Origin": ORIGINS[0]})
        assert status == 403 and json.loads(body) == MISSING_TOKEN
        assert got["content-type"] == "application/json"
        assert not [h for h in got if h.startswith("access-control-") or h == "vary"], got


@pytest.mark.local_stack
def test_a_body_too_large_and_a_malformed_request_are_json_with_cors(cors_stack):
    connection = http.client.HTTPConnection("127.0.0.1", cors_stack.port, timeout=30)
    try:
        connection.putrequest("POST", ROUTES[0])
        connection.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
        connection.putheader("Origin", ORIGINS[0])
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"message": "Request Too Long"}
        assert response.getheader("Access-Control-Allow-Origin") == ORIGINS[0]
    finally:
        connection.close()
    with socket.create_connection(("127.0.0.1", cors_stack.port), timeout=30) as raw:
        raw.sendall(b"NOT A REQUEST LINE AT ALL\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert b"content-type: application/json" in head.lower() and b"<html" not in answer.lower()
    assert json.loads(body)["message"]


@pytest.mark.local_stack
def test_serve_answers_with_the_headers_and_body_of_the_templates_default_4xx(cors_stack):
    deployed = gateway_responses({"CorsAllowedOrigins": ",".join(ORIGINS)})["DEFAULT_4XX"]
    status, got, body = request(cors_stack.port, "TRACE", ROUTES[1], {"Origin": ORIGINS[1]})
    assert status == 403
    for name, value in deployed["headers"].items():
        assert got[name.lower()] == value.strip("'"), name
    rendered = deployed["templates"]["application/json"].replace(
        "$context.error.messageString", json.dumps(MISSING_TOKEN["message"])
    )
    assert json.loads(body) == json.loads(rendered)
