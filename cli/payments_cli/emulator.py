"""The embedded DynamoDB emulator: moto's server in-process, one request at a time.

moto does not serialise concurrent requests, so two conditional transactions could both pass
their conditions; a lock around the whole WSGI app makes every request atomic, as DynamoDB's
own transactions are.
"""
from __future__ import annotations

import http.client
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server


class SerialisedApplication:
    """WSGI middleware that lets one request at a time reach the wrapped application."""

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self._application = application
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._application(environ, start_response))


class EmbeddedDynamoDB:
    """moto's DynamoDB on a loopback port of this process, serialised."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # `serve` logs one line per API request itself; the emulator's own access log is noise.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        application = SerialisedApplication(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(
            host, port, application, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-dynamodb", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "EmbeddedDynamoDB":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


class SerialisingProxy:
    """A loopback HTTP proxy that forwards one request at a time to a DynamoDB endpoint.

    moto's server is not safe under concurrent writes (a failing transaction restores a
    snapshot taken when it began, undoing writes made meanwhile); forwarding every request
    alone keeps each DynamoDB call atomic whatever serves the endpoint. Requests of different
    API calls still interleave, so optimistic retries are exercised as in production.
    """

    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        target = urlsplit(upstream)
        if target.scheme not in {"http", "https"} or not target.hostname:
            raise ValueError(f"not an http(s) endpoint: {upstream}")
        self._scheme = target.scheme
        self._upstream = (target.hostname, target.port or (443 if target.scheme == "https" else 80))
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._server = Server((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb-proxy", daemon=True)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        with self._lock:
            connection = connection_class(*self._upstream, timeout=30)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            finally:
                connection.close()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "SerialisingProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
