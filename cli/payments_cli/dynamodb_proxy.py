"""One loopback HTTP proxy in front of a DynamoDB endpoint, for `serve`, the tests and the benchmarks.

    python -m payments_cli.dynamodb_proxy --upstream URL [--port N] [--concurrent]

prints "PROXY-PORT <n>" once it listens. Every request is forwarded unchanged (same bytes, same
signature headers) and counted by its X-Amz-Target operation. It can:

- serialise: let one request at a time reach the endpoint (moto's server is not safe under
  concurrent writes: a failing transaction restores a snapshot taken when it began, undoing
  writes made meanwhile), so every DynamoDB call stays atomic whatever serves the endpoint;
- inject faults: forward a request and then reset the client's connection instead of answering
  ("drop_answer": the call happened, its caller cannot know), or reset it without forwarding
  ("drop_request");
- count requests per partition key (table + `pk`), and, with a scale factor (--partition-scale F), play
  DynamoDB's per-partition limits divided by F: read and write units counted as DynamoDB counts them, and
  DynamoDB's own answers past them (payments_cli.partitions says how).

Control requests (never forwarded): GET /__proxy/stats answers the counts as JSON (per operation, and per
partition under "partitions"), POST /__proxy/reset zeroes counts, faults and partition budgets, POST
/__proxy/faults with {"operation": "TransactWriteItems", "drop_answer": 1, "drop_request": 0, "after": 0} arms
faults for the requests of that operation that follow the next `after` ones, POST /__proxy/partitions with
{"scale": 100, "burst_seconds": 1} sets the partition budgets ({"scale": null}: counts only).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import struct
import sys
import threading
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from payments_cli.partitions import PartitionModel

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}
CONTROL_PREFIX = "/__proxy/"


@dataclass
class Traffic:
    """What went through the proxy: requests per operation, errors, cancellation reasons, faults."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    cancellation_reasons: Counter[str] = field(default_factory=Counter)
    dropped_answers: Counter[str] = field(default_factory=Counter)
    dropped_requests: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "errors": {operation: dict(kinds) for operation, kinds in self.errors.items()},
            "cancellation_reasons": dict(self.cancellation_reasons),
            "dropped_answers": dict(self.dropped_answers),
            "dropped_requests": dict(self.dropped_requests),
        }


class DynamoDBProxy:
    """A loopback proxy to one DynamoDB endpoint: serialising, counting and fault-injecting."""

    def __init__(
        self,
        upstream: str,
        *,
        serialise: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        partitions: PartitionModel | None = None,
    ) -> None:
        target = urlsplit(upstream)
        if target.scheme not in {"http", "https"} or not target.hostname:
            raise ValueError(f"not an http(s) endpoint: {upstream}")
        self._https = target.scheme == "https"
        self._upstream = (target.hostname, target.port or (443 if self._https else 80))
        self._forwarding: AbstractContextManager[Any] = threading.Lock() if serialise else nullcontext()
        self._state = threading.Lock()
        self._traffic = Traffic()
        self._faults: dict[str, dict[str, int]] = {}
        self.partitions = partitions or PartitionModel()
        self._server = _Server((host, port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dynamodb-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> DynamoDBProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # counts and faults, also reachable over HTTP for a proxy in another process
    def stats(self) -> dict[str, Any]:
        with self._state:
            snapshot = self._traffic.snapshot()
        return {**snapshot, "partitions": self.partitions.stats()}

    def reset(self) -> None:
        with self._state:
            self._traffic = Traffic()
            self._faults = {}
        self.partitions.reset()

    def set_partition_budgets(self, scale: float | None, burst_seconds: float = 1.0) -> None:
        """DynamoDB's per-partition limits divided by `scale` from now on (None: count only); budgets start full."""
        model = PartitionModel(scale, burst_seconds=burst_seconds, partition_key=self.partitions.partition_key)
        self.partitions = model

    def arm(self, operation: str, *, drop_answer: int = 0, drop_request: int = 0, after: int = 0) -> None:
        """Drop the answers (or the requests) of the calls of `operation` that follow the next `after`."""
        with self._state:
            planned = self._faults.setdefault(operation, {"drop_answer": 0, "drop_request": 0, "after": 0})
            planned["drop_answer"] += drop_answer
            planned["drop_request"] += drop_request
            planned["after"] = max(planned["after"], after)

    def _take_fault(self, operation: str) -> str | None:
        with self._state:
            planned = self._faults.get(operation)
            if planned and planned["after"] > 0:
                planned["after"] -= 1
                return None
            for kind in ("drop_request", "drop_answer"):
                if planned and planned[kind] > 0:
                    planned[kind] -= 1
                    return kind
        return None

    def _record(self, operation: str, status: int, body: bytes, fault: str | None) -> None:
        error, reasons = None, []
        if status >= 400:
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                parsed = {}
            error = str(parsed.get("__type", f"HTTP {status}")).rpartition("#")[2]
            reasons = [str(reason.get("Code")) for reason in parsed.get("CancellationReasons") or []]
        with self._state:
            self._traffic.requests[operation] += 1
            if error:
                self._traffic.errors.setdefault(operation, Counter())[error] += 1
                self._traffic.cancellation_reasons.update(reasons)
            if fault == "drop_answer":
                self._traffic.dropped_answers[operation] += 1

    def _new_connection(self) -> http.client.HTTPConnection:
        connection_class = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return connection_class(*self._upstream, timeout=60)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: DynamoDBProxy) -> None:
        self.proxy = proxy
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith(CONTROL_PREFIX):
            self._control(body)
            return
        proxy = self.server.proxy
        operation = (self.headers.get("X-Amz-Target") or "unknown").rpartition(".")[2]
        fault = proxy._take_fault(operation)
        if fault == "drop_request":
            with proxy._state:
                proxy._traffic.dropped_requests[operation] += 1
            self._reset_connection()
            return
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        partitions = proxy.partitions
        admission = partitions.admit(operation, body)
        if admission is not None and admission.refusal is not None:  # throttled: DynamoDB's answer, not forwarded
            status, response_headers, payload = admission.refusal
            proxy._record(operation, status, payload, None)
            self._reply(status, response_headers, payload)
            return
        if admission is not None and admission.body is not None:
            body = admission.body  # a batch without its throttled keys
        with proxy._forwarding:
            status, response_headers, payload = self._forward(body, headers)
        if admission is not None:
            try:
                response_headers, payload = partitions.settle(admission, status, response_headers, payload)
            except Exception as error:  # noqa: BLE001 - the answer still goes back; the model's slip is counted
                with proxy._state:
                    proxy._traffic.errors.setdefault("partition_model", Counter())[type(error).__name__] += 1
        proxy._record(operation, status, payload, fault)
        if fault == "drop_answer":
            self._reset_connection()
            return
        self._reply(status, response_headers, payload)

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            if self._upstream is None:
                self._upstream = self.server.proxy._new_connection()
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                # a kept-alive upstream connection may have been closed meanwhile: one fresh try
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _control(self, body: bytes) -> None:
        proxy = self.server.proxy
        action = self.path[len(CONTROL_PREFIX) :]
        if action == "stats":
            self._reply_json(200, proxy.stats())
        elif action == "reset" and self.command == "POST":
            proxy.reset()
            self._reply_json(200, {})
        elif action == "faults" and self.command == "POST":
            try:
                plan = json.loads(body or b"{}")
                proxy.arm(
                    str(plan["operation"]),
                    drop_answer=int(plan.get("drop_answer", 0)),
                    drop_request=int(plan.get("drop_request", 0)),
                    after=int(plan.get("after", 0)),
                )
            except (ValueError, KeyError, TypeError) as error:
                self._reply_json(400, {"error": f"bad fault plan: {error}"})
                return
            self._reply_json(200, {})
        elif action == "partitions" and self.command == "POST":
            try:
                plan = json.loads(body or b"{}")
                scale = plan.get("scale")
                proxy.set_partition_budgets(
                    None if scale is None else float(scale), float(plan.get("burst_seconds", 1.0))
                )
            except (ValueError, TypeError, AttributeError) as error:
                self._reply_json(400, {"error": f"bad partition budgets: {error}"})
                return
            self._reply_json(200, proxy.partitions.stats()["model"] or {})
        else:
            self._reply_json(404, {"error": f"unknown control request {self.command} {self.path}"})

    def _reply_json(self, status: int, value: Any) -> None:
        self._reply(status, [("Content-Type", "application/json")], json.dumps(value).encode())

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset_connection(self) -> None:
        """Close the client's connection with a TCP reset: the caller sees its answer lost."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._upstream is not None:
                self._upstream.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments_cli.dynamodb_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the DynamoDB endpoint to forward to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--concurrent", action="store_true", help="forward requests as they come (default: one at a time)"
    )
    parser.add_argument(
        "--partition-scale",
        type=float,
        metavar="F",
        help="play DynamoDB's per-partition limits (3,000 read, 1,000 write units a second) divided by F",
    )
    parser.add_argument(
        "--burst-seconds", type=float, default=1.0, help="seconds of unused units a partition keeps (default 1)"
    )
    args = parser.parse_args(argv)
    try:
        model = PartitionModel(args.partition_scale, burst_seconds=args.burst_seconds)
        proxy = DynamoDBProxy(
            args.upstream, serialise=not args.concurrent, host=args.host, port=args.port, partitions=model
        )
    except (ValueError, OSError) as error:
        print(f"dynamodb_proxy: {error}", file=sys.stderr)
        return 2
    print(f"PROXY-PORT {proxy._server.server_address[1]}", flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        proxy._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
