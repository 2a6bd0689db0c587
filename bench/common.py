"""Shared pieces of the benchmarks: environment, events, in-memory DynamoDB answers, request accounting.

Only the standard library is imported at module level: the cold-start child imports this module
before it times the handler import, so nothing here may pre-load a package the handler needs.
"""
from __future__ import annotations

import json
import math
import os
import sys
from copy import deepcopy
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
PYTHON = sys.executable

# payments.config.DEVELOPMENT_JWT_SECRET (checked against it wherever payments is imported anyway).
JWT_SECRET = "local-development-secret-change-me"
WILLSON_TABLE = "WillsonTable"
LEDGER_TABLE = "LedgerTable"
IDEMPOTENCY_TABLE = "IdempotencyTable"
PAYMENT_PROGRESS_PATH = "/api/v1/asker/payment/progress"
SWAP_PATH = "/v1.0/db/swap"
DEMO_OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

# The environment tests/conftest.py gives the handlers (dummy AWS, no X-Ray, quiet logs).
TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "JWT_SECRET": JWT_SECRET,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
# Variables that would change what a child measures if they leaked in from the caller's shell.
_SCRUBBED_PREFIXES = ("AWS_", "POWERTOOLS_", "JWT_SECRET", "WILLSON_", "LEDGER_", "IDEMPOTENCY_", "HONEYPOT_",
                      "MAX_LISTED", "SWAP_MAX", "OTP_", "LAMBDA_TASK_ROOT", "_X_AMZN", "PYDANTIC_",
                      "PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")


def child_env(extra: dict[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """The caller's environment minus anything that configures AWS or the service, plus TEST_ENV."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_SCRUBBED_PREFIXES)}
    env.update(TEST_ENV)
    env.update(extra or {})
    for name in drop:
        env.pop(name, None)
    return env


# --- statistics -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


# --- API Gateway events -----------------------------------------------------------------------


def api_event(path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The tests' event builder, imported when first used (this module imports only the stdlib)."""
    from payments_cli.events import api_event as build

    return build(path, body, headers)


class LambdaContext:
    """The parts of Lambda's context object the handlers and Powertools read."""

    function_name = "bench-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-function"
    aws_request_id = "bench-request"
    log_group_name = "/aws/lambda/bench-function"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def swap_body(code: str, adjust_point: int = -110, adjust_coin: Any = 11, event_id: int = 3) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "otp_code": code,
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": adjust_point},
        "coin": {"coin_id": 2, "adjust_coin_quantity": adjust_coin},
    }


# --- DynamoDB answered from memory ------------------------------------------------------------


class MemoryAnswers:
    """Answers a client's DynamoDB calls from recorded responses, one per operation name.

    It hooks `before-call.dynamodb`, the event botocore's own Stubber uses: the handler's call is
    still validated, serialised and signed by botocore (the client-side cost stays in the figures);
    only the HTTP round trip and the response parsing are replaced by a recorded, parsed answer.
    """

    def __init__(self, client: Any, answers: dict[str, dict[str, Any]]) -> None:
        from botocore.awsrequest import AWSResponse

        self._client = client
        self.answers = answers
        self._ok = AWSResponse("http://memory", 200, {}, None)
        self.calls: dict[str, int] = {}
        self._id = f"bench-memory-{id(self)}"

    def _answer(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        name = model.name
        self.calls[name] = self.calls.get(name, 0) + 1
        try:
            return self._ok, self.answers[name]
        except KeyError:
            raise RuntimeError(f"no recorded answer for DynamoDB {name}") from None

    def __enter__(self) -> "MemoryAnswers":
        self._client.meta.events.register_first("before-call.dynamodb", self._answer, unique_id=self._id)
        return self

    def __exit__(self, *_: object) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", unique_id=self._id)


class Recorder:
    """Records the parsed response of every DynamoDB call a client makes, by operation name."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.answers: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self._id = f"bench-recorder-{id(self)}"

    def _after(self, model: Any, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if model.name in self.answers:
            raise RuntimeError(f"{model.name} called twice in one recorded request; answers are per operation")
        if http_response.status_code >= 300:
            raise RuntimeError(f"recorded {model.name} failed: {parsed.get('Error')}")
        self.answers[model.name] = deepcopy(parsed)
        self.order.append(model.name)

    def __enter__(self) -> "Recorder":
        self._client.meta.events.register("after-call.dynamodb", self._after, unique_id=self._id)
        return self

    def __exit__(self, *_: object) -> None:
        self._client.meta.events.unregister("after-call.dynamodb", unique_id=self._id)


# --- DynamoDB request accounting --------------------------------------------------------------

_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
_CAPACITY_OPERATIONS = _READS | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _tables_of(operation: str, params: dict[str, Any]) -> list[str]:
    if "TableName" in params:
        return [params["TableName"]]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return sorted(params.get("RequestItems", {}))
    if operation in ("TransactWriteItems", "TransactGetItems"):
        names = {next(iter(item.values())).get("TableName") for item in params.get("TransactItems", [])}
        return sorted(name for name in names if name)
    return []


def _written(operation: str, params: dict[str, Any]) -> int:
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        return 1
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values())
    if operation == "TransactWriteItems":
        return sum(1 for item in params.get("TransactItems", []) if "ConditionCheck" not in item)
    return 0


def _read(operation: str, parsed: dict[str, Any]) -> int:
    if operation == "GetItem":
        return 1 if parsed.get("Item") else 0
    if operation in ("Query", "Scan"):
        return len(parsed.get("Items", []))
    if operation == "BatchGetItem":
        return sum(len(items) for items in parsed.get("Responses", {}).values())
    if operation == "TransactGetItems":
        return sum(1 for response in parsed.get("Responses", []) if response.get("Item"))
    return 0


def _capacity(parsed: dict[str, Any]) -> float:
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        return 0.0
    if isinstance(consumed, dict):
        consumed = [consumed]
    return float(sum(entry.get("CapacityUnits", 0) or 0 for entry in consumed))


class RequestLog:
    """Counts every DynamoDB round trip a client makes, with the items and capacity units it moved.

    Round trips are counted on `before-call.dynamodb` (once per API call; botocore's own HTTP
    retries would show in `before-send`, counted as `http_attempts`) and described on
    `after-call`; ReturnConsumedCapacity=TOTAL is added to every call in `before-parameter-build`
    so DynamoDB reports the capacity units it charged.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[dict[str, Any]] = []
        self.http_attempts = 0
        self.before_calls = 0
        self._id = f"bench-log-{id(self)}"

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in _CAPACITY_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        context["bench_call"] = {
            "operation": model.name,
            "tables": _tables_of(model.name, params),
            "written": _written(model.name, params),
        }

    def _send(self, **_: Any) -> None:
        self.http_attempts += 1

    def _before(self, **_: Any) -> None:
        self.before_calls += 1

    def _after(self, model: Any, parsed: dict[str, Any], http_response: Any, context: dict[str, Any], **_: Any) -> None:
        call = dict(context.get("bench_call") or {"operation": model.name, "tables": [], "written": 0})
        failed = http_response.status_code >= 300
        call["error"] = parsed.get("Error", {}).get("Code") if failed else None
        if failed:
            call["written"] = 0
        call["read"] = 0 if failed else _read(model.name, parsed)
        call["capacity"] = _capacity(parsed)
        call["kind"] = "read" if model.name in _READS else "write"
        self.calls.append(call)

    def __enter__(self) -> "RequestLog":
        events = self._client.meta.events
        events.register("before-parameter-build.dynamodb", self._params, unique_id=self._id + "-p")
        events.register("before-call.dynamodb", self._before, unique_id=self._id + "-b")
        events.register("before-send.dynamodb", self._send, unique_id=self._id + "-s")
        events.register("after-call.dynamodb", self._after, unique_id=self._id + "-a")
        return self

    def __exit__(self, *_: object) -> None:
        events = self._client.meta.events
        events.unregister("before-parameter-build.dynamodb", unique_id=self._id + "-p")
        events.unregister("before-call.dynamodb", unique_id=self._id + "-b")
        events.unregister("before-send.dynamodb", unique_id=self._id + "-s")
        events.unregister("after-call.dynamodb", unique_id=self._id + "-a")

    def summary(self, tables: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if tables is None else set(tables)
        calls = [c for c in self.calls if wanted is None or wanted.intersection(c["tables"])]
        operations: dict[str, int] = {}
        for call in calls:
            operations[call["operation"]] = operations.get(call["operation"], 0) + 1
        return {
            "round_trips": len(calls),
            "operations": operations,
            "items_read": sum(c["read"] for c in calls),
            "items_written": sum(c["written"] for c in calls),
            "read_units": sum(c["capacity"] for c in calls if c["kind"] == "read"),
            "write_units": sum(c["capacity"] for c in calls if c["kind"] == "write"),
            "errors": [c["error"] for c in calls if c["error"]],
        }


# --- generated fixtures -----------------------------------------------------------------------


def willsoner_fixture(first: int, count: int, subcategory_idx: int = 1, seed: int = 7) -> dict[str, Any]:
    """`count` willsoners (each with its own user) in one subcategory: 90 % complete, 10 % unrated."""
    import random

    rnd = random.Random(seed + first)
    users, willsoners = [], []
    for n in range(first, first + count):
        au_id = 1_000_000 + n
        gender = rnd.choice(["여", "남"])
        users.append({"au_id": au_id, "nickname": f"윌스너{n}", "gender": gender, "age": "20대 중반",
                      "pic": "https://willson-v1.s3.ap-northeast-2.amazonaws.com/user_image/img_profile_w.png"})
        willsoners.append({
            "idx": 100_000 + n,
            "au_id": au_id,
            "status": "complete" if rnd.random() < 0.9 else "waiting",
            "avg_rating": None if rnd.random() < 0.1 else round(rnd.uniform(1, 5), 1),
            "experience": "오래 만난 사람과 헤어지고 1년을 힘들게 보냈어요. 지금은 괜찮아요.",
            "introduction": "들어주는 건 자신 있어요",
            "subcategory_idx": [subcategory_idx],
            "keywords": ["이별", "극복", "공감"],
            "image": "https://willson-v1.s3.ap-northeast-2.amazonaws.com/willsoner_image/willson_01.jpg",
        })
    return {"users": users, "willsoners": willsoners}


def otp_secret(rnd: Any) -> str:
    import string

    return "".join(rnd.choice(string.ascii_uppercase[:26] + "234567") for _ in range(32))


def accounts_fixture(first_au_id: int, count: int, points: int = 10**9,
                     seed: int = 11) -> tuple[dict[str, Any], dict[int, str]]:
    """Dashboard accounts with their own OTP secret, plenty of points and a coin wallet.

    Includes the demo swap catalogue (app 1, point 1, coin 2, rate 0.1) so it loads on its own.
    """
    import random

    rnd = random.Random(seed + first_au_id)
    demo = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    accounts, secrets = [], {}
    for au_id in range(first_au_id, first_au_id + count):
        secret = otp_secret(rnd)
        secrets[au_id] = secret
        accounts.append({
            "au_id": au_id,
            "otp_secret": secret,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 10_000 + au_id, "quantity": points}],
            "wallets": [{"coin_id": 2, "walletaddress": f"0x{au_id:040x}", "quantity": "0"}],
        })
    fixture = {"apps": demo["apps"], "coins": demo["coins"], "swap_rates": demo["swap_rates"], "accounts": accounts}
    return fixture, secrets


# --- output -----------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table (readable on a terminal too)."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(headers[i]), *(len(row[i]) for row in cells)) if cells else len(headers[i])
              for i in range(len(headers))]
    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.ljust(widths[i]) for i, value in enumerate(values)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells)])


def ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def emit_result(result: Any) -> None:
    """Children hand their result to run.py as one JSON line on the real stdout."""
    stream = sys.__stdout__
    assert stream is not None
    stream.write("BENCH-RESULT " + json.dumps(result, default=str) + "\n")
    stream.flush()


def read_result(stdout: str) -> Any:
    for line in reversed(stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT "):])
    raise RuntimeError("child printed no result:\n" + stdout[-2000:])
