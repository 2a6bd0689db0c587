"""Where `payments serve` records its DynamoDB endpoint, so the other commands find a running local stack.

One file per user, not per directory (the command line runs from anywhere):
`$XDG_STATE_HOME/willson-payments/serve.json`, by default `~/.local/state/willson-payments/serve.json`.
`serve` writes it once it listens and marks it stopped when it stops; a record whose process is
gone (a `serve` killed without a chance to mark it) counts as stopped too. With several `serve`
processes, the record names the last one started.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

APP_DIR = "willson-payments"
FILE_NAME = "serve.json"


@dataclass(frozen=True)
class ServeRecord:
    pid: int
    dynamodb_endpoint: str
    url: str
    started_at: float
    stopped_at: float | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None and _process_alive(self.pid)


class RecordedServeGone(Exception):
    """The recorded local stack is not running any more."""


def state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP_DIR / FILE_NAME


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that id: alive, if not ours
        return True
    return True


def _write(record: ServeRecord) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # readers see the old record or the new one, never half of one


def read_record() -> ServeRecord | None:
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
        return ServeRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def record_serve(dynamodb_endpoint: str, url: str) -> ServeRecord:
    record = ServeRecord(pid=os.getpid(), dynamodb_endpoint=dynamodb_endpoint, url=url, started_at=time.time())
    _write(record)
    return record


def mark_stopped(record: ServeRecord) -> None:
    """Mark this serve's record stopped, unless a later serve has recorded itself since."""
    current = read_record()
    if current is not None and current.pid == record.pid and current.started_at == record.started_at:
        _write(ServeRecord(**{**asdict(current), "stopped_at": time.time()}))


def recorded_endpoint() -> str | None:
    """The DynamoDB endpoint of the running local stack; None when none was ever recorded."""
    record = read_record()
    if record is None:
        return None
    if not record.running:
        raise RecordedServeGone(
            f"the local stack recorded in {state_file()} ({record.url}, pid {record.pid}) is not running: "
            "start `payments serve`, or pass --dynamodb-endpoint URL (or set AWS_ENDPOINT_URL_DYNAMODB)"
        )
    return record.dynamodb_endpoint
