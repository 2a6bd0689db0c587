"""Processes of the slow tier: `payments serve`, moto's own server, the `payments` command, DynamoDB clients.

Every test that uses these is marked `slow` (conftest refuses a subprocess to any other test).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from payments_cli.dynamodb_local import free_port, stop_process

PAYMENTS = Path(sys.executable).with_name("payments")


class LocalStack:
    """One `payments serve` process; `post` sends a request and returns (status, parsed body)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
        self.banner: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 90.0) -> LocalStack:
        self._process = subprocess.Popen(
            [str(PAYMENTS), "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd="/",
        )
        deadline = time.monotonic() + timeout
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"serve exited early: {self.banner}")
            self.banner.append(line.rstrip("\n"))
            if line.startswith("  OpenAPI:"):
                # keep draining stdout so the server never blocks on a full pipe
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise RuntimeError("serve did not start in time")

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for _ in self._process.stdout:
            pass

    @property
    def dynamodb_endpoint(self) -> str:
        """The DynamoDB serve uses (its embedded emulator's, or the one it was given), from its banner."""
        return next(line.split()[1] for line in self.banner if line.startswith("DynamoDB: "))

    def post(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = raw if raw is not None else json.dumps(body, ensure_ascii=False)
            connection.request(
                "POST",
                path,
                body=payload.encode("utf-8"),
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, bytes, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read(), response.getheader("Content-Type") or ""
        finally:
            connection.close()

    def stop(self) -> None:
        stop_process(self._process)

    def kill(self) -> None:
        """SIGKILL: the process dies mid-request, as a crashed execution environment would."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=10)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def dynamodb_at(endpoint: str) -> Any:
    """A boto3 DynamoDB client for a local endpoint (DynamoDB Local, moto's server, serve's emulator)."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's own server in a separate process, as an outside tester would run it; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def run_payments(*args: str, env: dict[str, str] | None = None, cwd: str = "/") -> subprocess.CompletedProcess[str]:
    """The `payments` console script as a user runs it (no AWS_ENDPOINT_* inherited unless `env` gives one)."""
    full = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    full.update(env or {})
    return subprocess.run([str(PAYMENTS), *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=120)
