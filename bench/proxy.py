"""A counting pass-through proxy between `payments serve` and DynamoDB Local (loopback only).

    proxy.py --upstream http://127.0.0.1:PORT     prints "PROXY-PORT <n>" once it listens

Every DynamoDB request is forwarded unchanged (same bytes, same signature headers) and counted by
its X-Amz-Target operation, with the error type of every refused one and the cancellation reasons
of every cancelled transaction. GET /__stats answers the counts as JSON; POST /__reset zeroes them.
This is how the contention benchmark sees TransactWriteItems attempts made inside `serve`
without touching its code.
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te",
               "trailer", "upgrade"}


class Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, int] = {}
            self.errors: dict[str, dict[str, int]] = {}
            self.cancellation_reasons: dict[str, int] = {}

    def add(self, operation: str, status: int, body: bytes) -> None:
        error = None
        reasons: list[str] = []
        if status >= 400:
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                parsed = {}
            error = str(parsed.get("__type", f"HTTP {status}")).rpartition("#")[2]
            reasons = [str(reason.get("Code")) for reason in parsed.get("CancellationReasons", []) or []]
        with self._lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1
            if error:
                per_operation = self.errors.setdefault(operation, {})
                per_operation[error] = per_operation.get(error, 0) + 1
                for reason in reasons:
                    self.cancellation_reasons[reason] = self.cancellation_reasons.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self.requests), "errors": {k: dict(v) for k, v in self.errors.items()},
                    "cancellation_reasons": dict(self.cancellation_reasons)}


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], upstream: str) -> None:
        split = urlsplit(upstream)
        self.upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.counts = Counts()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/__stats":
            self._reply(200, [("Content-Type", "application/json")], json.dumps(self.server.counts.snapshot()).encode())
        else:
            self._forward()

    def do_POST(self) -> None:  # noqa: N802
        if self.path == "/__reset":
            self.server.counts.reset()
            self._reply(200, [("Content-Type", "application/json")], b"{}")
        else:
            self._forward()

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        for attempt in range(2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        operation = (self.headers.get("X-Amz-Target") or "unknown").rpartition(".")[2]
        self.server.counts.add(operation, response.status, payload)
        self._reply(response.status, response.getheaders(), payload)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._upstream is not None:
                self._upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    server = Proxy(("127.0.0.1", 0), args.upstream)
    print(f"PROXY-PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
