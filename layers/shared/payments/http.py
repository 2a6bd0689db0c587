"""API Gateway plumbing shared by both handlers: the resolver, the body, the token, JSON responses."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from payments.auth import Caller, verify_access_token
from payments.config import Settings
from payments.errors import InternalError, InvalidBody
from payments.json_body import dumps, parse_json_object

_SECRET_MAX_AGE_SECONDS = 300
# Browsers may reuse a preflight answer this long (Chromium caps it at 7200 s).
CORS_MAX_AGE_SECONDS = 600
# Beyond CORSConfig's built-in Authorization, Content-Type and X-Amz-*: the Willson token header.
CORS_EXTRA_HEADERS = ["x-token"]


def cors_config(settings: Settings) -> CORSConfig | None:
    """Powertools' CORS configuration for the allowed origins of Settings; None (CORS off) when there are none."""
    origins = list(settings.cors_allowed_origins)
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=origins[1:],
        allow_headers=CORS_EXTRA_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
    )


class PaymentsResolver(APIGatewayRestResolver):
    """Powertools' REST resolver with the CORS configuration of Settings, and what CORSConfig leaves out.

    CORSConfig already answers a preflight (204 with Allow-Methods of every route) and adds
    Allow-Origin, Allow-Headers and Max-Age to every answer, exception handlers' included, for an
    allowed origin. Two things it does not do are done here: `Vary: Origin` on every answer (they
    differ by origin), and no Access-Control-Allow-Methods on a preflight from an origin that is
    not allowed. With CORS off, a preflight gets a bare 204 and the browser refuses the call.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(cors=cors_config(settings))
        self._origins = frozenset(settings.cors_allowed_origins)
        self.not_found(self._no_route)

    @property
    def cors_origins(self) -> frozenset[str]:
        """The browser origins allowed to call the API (empty: CORS off)."""
        return self._origins

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        headers = event.get("headers") or {}
        origin = next((value for name, value in headers.items() if name.lower() == "origin"), None)
        response = super().resolve(event, context)
        if not self._origins:
            return response
        answer_headers = response.setdefault("multiValueHeaders", {})
        if origin not in self._origins:
            for name in [name for name in answer_headers if name.lower().startswith("access-control-")]:
                del answer_headers[name]
        answer_headers["Vary"] = ["Origin"]
        return response

    def _no_route(self, _: NotFoundError) -> Response[str]:
        """A preflight with CORS off: 204 and no CORS header. Anything else: API Gateway's answer for no route."""
        if self.current_event.http_method.upper() == "OPTIONS":
            return Response(status_code=204, content_type=None, body="")
        return json_response(403, {"message": "Missing Authentication Token"})


def request_json(event: BaseProxyEvent) -> dict[str, Any]:
    """The body of the request as a JSON object, or InvalidBody."""
    try:
        text = event.decoded_body
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidBody("Request body must be a JSON object") from error
    return parse_json_object(text)


def jwt_secret(settings: Settings) -> str:
    """The token signing secret: Secrets Manager (cached) when deployed, else JWT_SECRET.

    In AWS Lambda there is no fallback: without JWT_SECRET_ARN every request is an internal error.
    """
    if settings.jwt_secret_arn:
        # Imported here: only the deployed path needs it, and it is slow to import.
        from payments.aws import secrets_provider

        return str(secrets_provider().get(settings.jwt_secret_arn, max_age=_SECRET_MAX_AGE_SECONDS))
    if settings.in_lambda:
        from payments.observability import logger

        logger.error("JWT_SECRET_ARN is not set: refusing to verify tokens with a development secret")
        raise InternalError("JWT_SECRET_ARN is not set")
    return settings.jwt_secret


def caller_from_x_token(event: BaseProxyEvent, settings: Settings) -> Caller:
    """Willson app: the token travels in the `x-token` header."""
    return verify_access_token((event.headers.get("x-token") or "").strip(), jwt_secret(settings))


def caller_from_bearer(event: BaseProxyEvent, settings: Settings) -> Caller:
    """Dashboard: `Authorization: Bearer <jwt>`."""
    value = event.headers.get("authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    return verify_access_token(token.strip() if scheme.lower() == "bearer" else None, jwt_secret(settings))


def json_response(status: int, body: Any) -> Response[str]:
    """A JSON answer, Decimals written as exact numbers (payments.json_body.dumps)."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=dumps(body))
