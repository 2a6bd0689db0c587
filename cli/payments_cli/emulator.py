"""The embedded DynamoDB emulator: moto's server in-process, one request at a time.

moto does not serialise concurrent requests, so two conditional transactions could both pass
their conditions; a lock around the whole WSGI app makes every request atomic, as DynamoDB's
own transactions are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

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
        return f"http://{host!s}:{port}"

    def start(self) -> EmbeddedDynamoDB:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
