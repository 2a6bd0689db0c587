"""API Gateway REST proxy events for in-process invocations, shaped like the recorded ones in events/."""

from __future__ import annotations

import json
from copy import deepcopy
from functools import lru_cache
from typing import Any

from payments_cli.template import PROJECT_ROOT

RECORDED_EVENT = PROJECT_ROOT / "events" / "payment_progress_success.json"


@lru_cache(maxsize=1)
def _recorded() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(RECORDED_EVENT.read_text(encoding="utf-8"))
    return event


def api_event(
    path: str, body: Any = None, headers: dict[str, str] | None = None, raw: str | None = None
) -> dict[str, Any]:
    """A POST to `path` with `body` (JSON-encoded) or `raw` text, and these headers."""
    event = deepcopy(_recorded())
    event["path"] = path
    event["resource"] = path
    event["requestContext"]["path"] = f"/v1{path}"
    event["requestContext"]["resourcePath"] = path
    event["headers"] = {"Content-Type": "application/json", **(headers or {})}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    event["body"] = raw if raw is not None else (None if body is None else json.dumps(body, ensure_ascii=False))
    event["isBase64Encoded"] = False
    return event
