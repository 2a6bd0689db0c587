"""API Gateway REST proxy events, the Lambda context object, and invoking a handler in-process.

The one event builder is the product's own (payments_cli.events.api_event, which bench/ uses too), shaped like the
recorded events in events/. tests/artifact_runner.py keeps a context of its own: it runs in an isolated interpreter
that can import nothing of the source tree.
"""

from __future__ import annotations

import json
from typing import Any

from payments_cli.events import api_event


class LambdaContext:
    """The attributes of Lambda's context object that the handlers and Powertools read.

    `remaining_ms` is what get_remaining_time_in_millis answers, every time (the time budget never runs out
    during a test unless a test makes it so).
    """

    function_name = "test-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "test-request"

    def __init__(self, remaining_ms: int = 10_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def call(handler: Any, event: dict[str, Any], context: Any = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of one invocation; the body must be JSON, never a stack trace."""
    response = handler(event, context if context is not None else LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def preflight_event(
    path: str, origin: str | None, request_headers: str = "authorization,content-type"
) -> dict[str, Any]:
    """A browser's CORS preflight (OPTIONS, no body, no Content-Type) for `path`."""
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": request_headers}
    if origin is not None:
        headers["Origin"] = origin
    event = api_event(path, headers=headers)
    del event["headers"]["Content-Type"], event["multiValueHeaders"]["Content-Type"]
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "OPTIONS"
    return event


__all__ = ["LambdaContext", "api_event", "call", "preflight_event"]
