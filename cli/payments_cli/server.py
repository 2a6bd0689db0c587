"""The local stack's HTTP front: each request becomes an API Gateway proxy event for the real handler."""

from __future__ import annotations

import base64
import importlib.util
import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from payments_cli.template import Route

STAGE = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
# Like Lambda, one execution environment handles one event at a time; this many run at once.
ENVIRONMENTS_PER_FUNCTION = 8
# API Gateway's own answers, as template.yaml's gateway responses (DEFAULT_4XX, DEFAULT_5XX) shape them.
MISSING_AUTHENTICATION_TOKEN = (403, "Missing Authentication Token")
REQUEST_TOO_LARGE = (413, "Request Too Long")
FUNCTION_FAILED = (502, "Internal server error")


class LambdaContext:
    """The parts of Lambda's context object the handlers and Powertools use."""

    def __init__(self, function_name: str, timeout_seconds: float = 10.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionPool:
    """Execution environments of one function: each a separate load of its handler module."""

    def __init__(self, route: Route, size: int = ENVIRONMENTS_PER_FUNCTION) -> None:
        self.route = route
        self._idle: queue.LifoQueue[Callable[..., Any]] = queue.LifoQueue()
        self._size = size
        self._created = 0
        self._lock = threading.Lock()
        self._idle.put(self._load())

    def _load(self) -> Callable[..., Any]:
        self._created += 1
        name = f"local_{self.route.function}_{self._created}"
        spec = importlib.util.spec_from_file_location(name, self.route.module_path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {self.route.module_path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import would: dataclasses and pickling look the module up
        spec.loader.exec_module(module)
        handler: Callable[..., Any] = getattr(module, self.route.handler_name)
        return handler

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            handler = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._created < self._size
                if grow:
                    handler = self._load()
            if not grow:
                handler = self._idle.get()
        try:
            answer: dict[str, Any] = handler(event, LambdaContext(self.route.function, self.route.timeout_seconds))
            return answer
        finally:
            self._idle.put(handler)


def proxy_event(
    route: Route, method: str, raw_path: str, headers: dict[str, list[str]], body: bytes, source_ip: str
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as API Gateway sends it to Lambda."""
    split = urlsplit(raw_path)
    query = parse_qs(split.query, keep_blank_values=True)
    try:
        text, encoded = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": split.path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/{STAGE}{split.path}",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", [""])[-1]},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class LocalApiServer(ThreadingHTTPServer):
    """Serves the template's routes; many connections may wait to be accepted."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        pools: dict[tuple[str, str], FunctionPool],
        extra_pages: dict[str, tuple[str, bytes]] | None = None,
        cors_origins: tuple[str, ...] | None = None,
    ) -> None:
        self.pools = pools
        self.extra_pages = extra_pages or {}
        if cors_origins is None:
            from payments.config import get_settings

            cors_origins = tuple(get_settings().cors_allowed_origins)
        self.cors_origins = cors_origins
        super().__init__(address, _RequestHandler)


def gateway_response(status: int, message: str, cors_origins: tuple[str, ...]) -> tuple[dict[str, str], bytes]:
    """Headers and body of an answer API Gateway makes itself, as template.yaml's gateway responses shape it.

    Body `{"message": …}` (API Gateway's own); with CORS on, Access-Control-Allow-Origin names the FIRST allowed
    origin whatever the request's Origin (a gateway response cannot choose by the request), and Vary: Origin.
    """
    headers = {"Content-Type": "application/json"}
    if cors_origins:
        headers["Access-Control-Allow-Origin"] = cors_origins[0]
        headers["Vary"] = "Origin"
    return headers, json.dumps({"message": message}, separators=(",", ":")).encode("utf-8")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        return

    def __getattr__(self, name: str) -> Any:
        """Every method goes to _handle: BaseHTTPRequestHandler answers 501 and an HTML page for a method it has
        no `do_<METHOD>` for (TRACE, CONNECT, any token), where API Gateway answers 403 Missing Authentication Token.
        """
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server refuses itself (a malformed request line, a URI or headers too long): JSON, as API
        Gateway's own answers are, not Python's HTML error page."""
        self.close_connection = True
        self.request_version = self.protocol_version  # a status line and headers, even to a request line unparsed
        try:
            phrase = message or HTTPStatus(code).phrase
        except ValueError:
            phrase = message or "Error"
        headers, body = gateway_response(code, phrase, self.server.cors_origins)
        self._respond(code, headers, body, time.perf_counter())

    def _gateway_answer(self, answer: tuple[int, str], started: float) -> None:
        status, message = answer
        headers, body = gateway_response(status, message, self.server.cors_origins)
        self._respond(status, headers, body, started)

    def _respond(self, status: int, headers: dict[str, str], body: bytes, started: float) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of the body it does not send
            self.wfile.write(body)
        elapsed = (time.perf_counter() - started) * 1000
        sys.stderr.write(
            f"{self.client_address[0]} {self.command} {getattr(self, 'path', '')} {status} {elapsed:.1f}ms\n"
        )
        sys.stderr.flush()

    def _handle(self) -> None:
        started = time.perf_counter()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():
            self.close_connection = True
            self._gateway_answer((400, "Bad Request"), started)
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._gateway_answer(REQUEST_TOO_LARGE, started)
            return
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        page = self.server.extra_pages.get(path) if self.command == "GET" else None
        if page is not None:
            self._respond(200, {"Content-Type": page[0]}, page[1], started)
            return
        pool = self.server.pools.get((self.command, path))
        if pool is None:
            # What API Gateway answers for a path it does not have, or a method with no integration on a path it has.
            self._gateway_answer(MISSING_AUTHENTICATION_TOKEN, started)
            return
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name, []).append(value)
        event = proxy_event(pool.route, self.command, self.path, headers, body, self.client_address[0])
        try:
            result = pool.invoke(event)
        except Exception:  # noqa: BLE001 - what API Gateway answers when the function itself fails
            self._gateway_answer(FUNCTION_FAILED, started)
            return
        out = result.get("body") or ""
        payload = base64.b64decode(out) if result.get("isBase64Encoded") else out.encode("utf-8")
        response_headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers.setdefault(name, ",".join(str(v) for v in values))
        self._respond(int(result.get("statusCode", 502)), response_headers, payload, started)

    # Every other method too (__getattr__). Preflights (OPTIONS) go to the handlers, as the template's OPTIONS
    # events send them deployed.
    do_GET = _handle
    do_POST = _handle
    do_OPTIONS = _handle
