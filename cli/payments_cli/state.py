"""Where each running `payments serve` records itself, so the other commands find the local stack.

One file per serve process, per user (the command line runs from any directory):
`$XDG_STATE_HOME/willson-payments/serve-<pid>.json`, by default `~/.local/state/willson-payments/…`. `serve`
writes its record once it listens and removes it when it stops, so several stacks (`make run` in one terminal, a
second `payments serve --port 3001` in another) never overwrite or stop each other's record.

A record counts only while its stack is live: its process exists and its port accepts a connection. A record
whose process is gone (a `serve` killed with SIGKILL, which removes nothing) is stale: ignored and removed. One
whose process exists but whose port does not answer (the pid reused by another program, a stack that hangs) is
ignored and left alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

APP_DIR = "willson-payments"
PREFIX = "serve-"
SUFFIX = ".json"
CONNECT_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class ServeRecord:
    pid: int
    dynamodb_endpoint: str
    url: str
    started_at: float
    # the DynamoDB behind the stack's proxy ("" for the embedded emulator): writes there reach the stack too
    upstream_endpoint: str = ""

    def serves(self, endpoint: str) -> bool:
        """Whether the stack's handlers read the DynamoDB at `endpoint`."""
        wanted = endpoint.rstrip("/")
        return wanted in {self.dynamodb_endpoint.rstrip("/"), self.upstream_endpoint.rstrip("/")} - {""}

    @property
    def path(self) -> Path:
        return record_path(self.pid)

    def describe(self) -> str:
        return f"{self.url} (pid {self.pid}, DynamoDB {self.dynamodb_endpoint})"


class SeveralLocalStacks(Exception):
    """More than one local stack is live: the command cannot choose."""


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP_DIR


def record_path(pid: int) -> Path:
    return state_dir() / f"{PREFIX}{pid}{SUFFIX}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that id: it exists
        return True
    except OverflowError:
        return False
    return True


def _port_answers(url: str) -> bool:
    split = urlsplit(url)
    host = split.hostname or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - connect to a stack on every address
    try:
        port = split.port
    except ValueError:
        return False
    if port is None:
        return False
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError:
        return False
    return True


def record_serve(dynamodb_endpoint: str, url: str, upstream_endpoint: str = "") -> ServeRecord:
    """Record this process's stack (after it listens: a reader checks that its port answers)."""
    record = ServeRecord(
        pid=os.getpid(),
        dynamodb_endpoint=dynamodb_endpoint,
        url=url,
        started_at=time.time(),
        upstream_endpoint=upstream_endpoint,
    )
    path = record.path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # readers see the whole record or none
    return record


def remove_record(record: ServeRecord) -> None:
    """Remove this stack's record (it stops)."""
    current = _read(record.path)
    if current is None or current == record:
        record.path.unlink(missing_ok=True)


def _read(path: Path) -> ServeRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServeRecord(
            pid=int(data["pid"]),
            dynamodb_endpoint=str(data["dynamodb_endpoint"]),
            url=str(data["url"]),
            started_at=float(data["started_at"]),
            upstream_endpoint=str(data.get("upstream_endpoint", "")),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def read_records() -> list[ServeRecord]:
    """Every record on file, oldest first (unreadable ones skipped)."""
    try:
        paths = sorted(state_dir().glob(f"{PREFIX}*{SUFFIX}"))
    except OSError:
        return []
    records = [record for record in map(_read, paths) if record is not None]
    return sorted(records, key=lambda record: record.started_at)


def live_records() -> list[ServeRecord]:
    """The records of the stacks that are live now; those of processes gone are removed on the way."""
    live = []
    for record in read_records():
        if not _process_alive(record.pid):
            record.path.unlink(missing_ok=True)
        elif _port_answers(record.url):
            live.append(record)
    return live


def recorded_endpoint() -> str | None:
    """The DynamoDB endpoint of the one live local stack; None when there is none; SeveralLocalStacks for more."""
    live = live_records()
    if not live:
        return None
    if len(live) > 1:
        raise SeveralLocalStacks(
            f"{len(live)} local stacks are running: "
            + "; ".join(record.describe() for record in live)
            + ": pass --dynamodb-endpoint URL with the DynamoDB of the one to use (or set AWS_ENDPOINT_URL_DYNAMODB)"
        )
    return live[0].dynamodb_endpoint


# `serve` empties its environments' caches of shared items (apps, coins, rates, tickets, listings) on this signal.
DATA_RELOADED_SIGNAL = signal.SIGHUP


def tell_data_reloaded(endpoint: str) -> list[ServeRecord]:
    """Tell each live local stack reading the DynamoDB at `endpoint` to read its shared items again; those told."""
    told = []
    for record in live_records():
        if record.serves(endpoint):
            try:
                os.kill(record.pid, DATA_RELOADED_SIGNAL)
            except OSError:
                continue
            told.append(record)
    return told
