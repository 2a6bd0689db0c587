"""DynamoDB's per-partition throughput limits, played by the DynamoDB proxy (payments_cli.dynamodb_proxy).

What is counted, as DynamoDB counts it (Developer Guide: "DynamoDB item sizes and formats", "read/write capacity
mode", "transactions"; docs/scale.md's "Simulation" section):

- item sizes: the lengths of attribute names and values (strings and binary by their bytes, numbers one byte per
  two significant digits plus one, null and booleans one byte, lists and maps three bytes plus one per element);
- reads: one unit per 4 KB of each item read, rounded up per item (GetItem, each key of BatchGetItem, each item of
  TransactGetItems), at least one unit for an item that is not there; half for an eventually consistent read;
  a Query on the total size of the items it returns, rounded up once; twice for a transactional read;
- writes: one unit per 1 KB of the item written, rounded up, at least one; twice in TransactWriteItems (whose
  ConditionCheck is charged as a write of its item). An update or a replacing put is charged on the larger of the
  item before and after: the proxy knows "before" only from the items it has seen go by (reads, puts), so a
  write to an item never seen is charged on what the request sends.

Each consumption is attributed to its item's partition key (table name + the `pk` attribute). Each partition has
a token bucket of read units and one of write units, refilled at the partition's limit (3,000 read and 1,000
write units a second) divided by the stated scale factor, and holding at most `burst_seconds` of it (default 1 s:
DynamoDB's 300 s of burst credit applies to a table's provisioned capacity, never past a partition's hard limit,
so it is not modelled).

When is it charged: a request's units are known only from the answer for reads (the size of what comes back),
so the proxy charges an estimate before forwarding (the item's last seen size, else one unit; a write's own size)
and refuses when a partition's bucket cannot pay it, then corrects the charge by what the answer shows. A
partition driven below zero by a correction throttles the next requests until it has refilled: the same
behaviour as DynamoDB's, one request late at worst.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
PARTITION_READ_UNITS = 3000  # a second, per partition, whatever the table's mode (Developer Guide)
PARTITION_WRITE_UNITS = 1000
PARTITION_KEY = "pk"

Kind = Literal["read", "write", "check"]
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_CANCELLED = "Transaction cancelled, please refer cancellation reasons for specific reasons"
THROTTLED_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table "
    "or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)


# --- sizes and units ------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """A number's bytes: one per two significant digits (leading and trailing zeros trimmed), plus one."""
    mantissa = text.strip().lstrip("+-").lower().partition("e")[0]
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).strip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The bytes of one attribute value in DynamoDB's JSON form ({"S": ...}, {"N": ...}, {"M": {...}}...)."""
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return number_size(str(content))
    if kind == "B":
        return len(base64.b64decode(content))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(element).encode()) for element in content)
    if kind == "NS":
        return sum(number_size(str(element)) for element in content)
    if kind == "BS":
        return sum(len(base64.b64decode(element)) for element in content)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(element) for name, element in content.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """An item's bytes: the lengths of its attribute names and values."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    """Units of reading `size` bytes: one per 4 KB rounded up (one at least), halved when eventually consistent,
    doubled when transactional."""
    units = float(max(1, math.ceil(size / READ_UNIT_BYTES)))
    return units * (2 if transactional else 1) * (1 if consistent or transactional else 0.5)


def write_units(size: int, *, transactional: bool = False) -> float:
    """Units of writing an item of `size` bytes: one per 1 KB rounded up (one at least), doubled when
    transactional."""
    return float(max(1, math.ceil(size / WRITE_UNIT_BYTES))) * (2 if transactional else 1)


# --- the model ------------------------------------------------------------------------------------


@dataclass
class Bucket:
    """Units a partition may still spend: refilled at `rate` a second up to `capacity`; may go below zero."""

    rate: float
    capacity: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now


@dataclass
class PartitionStats:
    requests: int = 0  # requests that touched the partition, once per request
    reads: int = 0  # requests that read it (Get, BatchGet, Query, Scan, TransactGet)
    writes: int = 0  # requests that wrote it (Put, Update, Delete, BatchWrite, TransactWrite's writes)
    checks: int = 0  # TransactWriteItems' ConditionChecks on it
    read_units: float = 0.0
    write_units: float = 0.0
    throttled: int = 0  # requests (or keys of a batch) refused for this partition

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "reads": self.reads,
            "writes": self.writes,
            "checks": self.checks,
            "read_units": self.read_units,
            "write_units": self.write_units,
            "throttled": self.throttled,
        }


@dataclass
class Touch:
    """One item (or a Query's partition) a request reads or writes: what it is estimated to cost, then costs."""

    table: str
    partition: str  # the partition key's value
    kind: Kind
    slot: Any  # where it is in the request: index of a transaction's item, (table, index) of a batch's key
    key: str | None  # the item's key (sorted JSON), for sizes seen before; None for a Query or Scan
    consistent: bool = True
    transactional: bool = False
    estimate: float = 0.0
    units: float | None = None  # the settled charge, once the answer is known
    size: int = 0  # a write's own size: what it sends

    @property
    def name(self) -> str:
        return f"{self.table} {self.partition}"

    @property
    def bucket(self) -> str:
        return "read" if self.kind == "read" else "write"


@dataclass
class Admission:
    """What the model decided for one request: the touches charged, the answer instead of forwarding, the body to
    forward (a batch without its refused keys), and the refused keys to hand back as unprocessed."""

    operation: str
    request: dict[str, Any]
    touches: list[Touch]
    refusal: tuple[int, list[tuple[str, str]], bytes] | None = None
    body: bytes | None = None
    unprocessed: dict[str, Any] = field(default_factory=dict)


def error_answer(error: str, document: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """An HTTP 400 answer as DynamoDB sends it (JSON 1.0, request id, CRC32 of the body)."""
    body = json.dumps({"__type": _ERROR_PREFIX + error, **document}, separators=(",", ":")).encode()
    return 400, answer_headers(body), body


def answer_headers(body: bytes) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]


def _value_text(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "?"
    (kind, content), *_ = value.items()
    return str(content) if kind in ("S", "N", "B") else json.dumps(content, sort_keys=True)


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


class PartitionModel:
    """Per-partition request counts (always) and, when `scale` is set, DynamoDB's per-partition budgets divided by
    `scale`, refusing as DynamoDB does past them. Thread-safe."""

    def __init__(
        self,
        scale: float | None = None,
        *,
        burst_seconds: float = 1.0,
        partition_key: str = PARTITION_KEY,
        clock: Callable[[], float] = time.monotonic,
        region: str = "us-east-1",
    ) -> None:
        if scale is not None and scale <= 0:
            raise ValueError("the scale factor must be positive")
        if burst_seconds <= 0:
            raise ValueError("the burst must be positive")
        self.scale = scale
        self.burst_seconds = burst_seconds
        self.partition_key = partition_key
        self._clock = clock
        self._region = region
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._stats: dict[str, PartitionStats] = {}
        self._sizes: dict[tuple[str, str], int] = {}  # item sizes seen go by, by (table, key)
        self.throttled: Counter[str] = Counter()

    # budgets ----------------------------------------------------------------------------------

    @property
    def limits(self) -> dict[str, float] | None:
        if self.scale is None:
            return None
        return {"read": PARTITION_READ_UNITS / self.scale, "write": PARTITION_WRITE_UNITS / self.scale}

    def describe(self) -> dict[str, Any] | None:
        limits = self.limits
        if limits is None:
            return None
        return {
            "scale": self.scale,
            "read_units_per_second": limits["read"],
            "write_units_per_second": limits["write"],
            "burst_seconds": self.burst_seconds,
            "partition_key": self.partition_key,
        }

    def _bucket(self, name: tuple[str, str], now: float) -> Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            rate = (self.limits or {}).get(name[1], math.inf)
            bucket = self._buckets[name] = Bucket(rate, rate * self.burst_seconds, rate * self.burst_seconds, now)
        bucket.refill(now)
        return bucket

    # counts --------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "model": self.describe(),
                "throttled": dict(self.throttled),
                "partitions": {name: stats.as_dict() for name, stats in sorted(self._stats.items())},
            }

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._stats.clear()
            self._sizes.clear()
            self.throttled.clear()

    # a request's life: admit before forwarding, settle on the answer -------------------------------

    def admit(self, operation: str, body: bytes) -> Admission | None:
        """The request's touches, charged at their estimate; a refusal when a partition cannot pay. None for a
        request the model does not read (a Scan, a control plane call, a body that is not JSON)."""
        if operation not in _MODELLED:
            return None
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        if not isinstance(request, dict):
            return None
        try:
            touches = list(self._touches(operation, request))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            return None  # a malformed request: DynamoDB itself will refuse it
        admission = Admission(operation, request, touches)
        with self._lock:
            for touch in touches:
                touch.estimate = self._estimate(touch)
            refused = self._charge(touches) if self.scale is not None else []
            self._count(touches, refused)
        if refused:
            self._refuse(admission, refused)
        return admission

    def settle(
        self, admission: Admission, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        """Correct the estimates by the answer; hand back a batch's refused keys as unprocessed. Returns the
        answer's headers and body (changed only when keys were added to a batch's unprocessed ones)."""
        if not admission.touches and not admission.unprocessed:
            return headers, payload
        try:
            answer = json.loads(payload or b"{}") if payload else {}
        except ValueError:
            answer = {}
        error = str(answer.get("__type", "")).rpartition("#")[2] if status >= 400 else ""
        charged = [touch for touch in admission.touches if touch.units is None]
        with self._lock:
            if status >= 400 and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                actual: dict[int, float] = {id(touch): 0.0 for touch in charged}  # refused: nothing consumed
            else:
                actual = self._actual(admission, answer)
            for touch in charged:
                units = actual.get(id(touch), touch.estimate)
                touch.units = units
                stats = self._stats.setdefault(touch.name, PartitionStats())
                if touch.bucket == "read":
                    stats.read_units += units
                else:
                    stats.write_units += units
                if self.scale is not None:
                    self._bucket((touch.name, touch.bucket), self._clock()).tokens -= units - touch.estimate
            if len(self._sizes) > 200_000:
                self._sizes.clear()
        if not admission.unprocessed or status != 200:
            return headers, payload
        merged = answer.get(_UNPROCESSED[admission.operation]) or {}
        for table, entry in admission.unprocessed.items():
            if admission.operation == "BatchGetItem":
                target = merged.setdefault(table, {**{k: v for k, v in entry.items() if k != "Keys"}, "Keys": []})
                target["Keys"] = [*target.get("Keys", []), *entry["Keys"]]
            else:
                merged[table] = [*merged.get(table, []), *entry]
        answer[_UNPROCESSED[admission.operation]] = merged
        body = json.dumps(answer, separators=(",", ":")).encode()
        kept = [(name, value) for name, value in headers if name.lower() not in ("x-amz-crc32", "content-length")]
        return [*kept, ("x-amz-crc32", str(zlib.crc32(body)))], body

    # internals -----------------------------------------------------------------------------------

    def _partition(self, key: Mapping[str, Any]) -> str:
        return _value_text(key.get(self.partition_key))

    def _key(self, table: str, item: Mapping[str, Any], names: Iterable[str]) -> str:
        return _key_text({name: item.get(name) for name in names})

    def _touches(self, operation: str, request: dict[str, Any]) -> Iterable[Touch]:
        if operation == "GetItem":
            table, key = request["TableName"], request["Key"]
            yield Touch(table, self._partition(key), "read", None, _key_text(key), bool(request.get("ConsistentRead")))
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = request["TableName"]
            key = request["Item"] if operation == "PutItem" else request["Key"]
            names = sorted(request["Key"]) if operation != "PutItem" else None
            yield self._write(table, operation, request, key, names, None, transactional=False)
        elif operation == "Query":
            table = request["TableName"]
            partition = self._query_partition(request)
            if request.get("IndexName"):
                table = f"{table}/{request['IndexName']}"
            yield Touch(table, partition, "read", None, None, bool(request.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, entry in request["RequestItems"].items():
                for index, key in enumerate(entry["Keys"]):
                    consistent = bool(entry.get("ConsistentRead"))
                    yield Touch(table, self._partition(key), "read", (table, index), _key_text(key), consistent)
        elif operation == "BatchWriteItem":
            for table, entries in request["RequestItems"].items():
                for index, entry in enumerate(entries):
                    if "PutRequest" in entry:
                        item = entry["PutRequest"]["Item"]
                        yield self._write(table, "PutItem", {"Item": item}, item, None, (table, index), False)
                    else:
                        key = entry["DeleteRequest"]["Key"]
                        yield self._write(table, "DeleteItem", {}, key, sorted(key), (table, index), False)
        elif operation == "TransactGetItems":
            for index, entry in enumerate(request["TransactItems"]):
                get = entry["Get"]
                key = get["Key"]
                yield Touch(get["TableName"], self._partition(key), "read", index, _key_text(key), True, True)
        elif operation == "TransactWriteItems":
            for index, entry in enumerate(request["TransactItems"]):
                (action, part), *_ = entry.items()
                kind = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(action, "ConditionCheck")
                key = part["Item"] if action == "Put" else part["Key"]
                names = None if action == "Put" else sorted(part["Key"])
                yield self._write(part["TableName"], kind, part, key, names, index, transactional=True)

    def _write(
        self,
        table: str,
        operation: str,
        part: Mapping[str, Any],
        item_or_key: Mapping[str, Any],
        key_names: list[str] | None,
        slot: Any,
        transactional: bool,
    ) -> Touch:
        """A write's touch: PutItem sends its item (its key is the key attributes DynamoDB will take: here the
        item's `pk` and any `sk`); UpdateItem its key and values; DeleteItem and ConditionCheck their key."""
        if key_names is None:
            key_names = [name for name in (self.partition_key, "sk") if name in item_or_key]
        key = _key_text({name: item_or_key[name] for name in key_names})
        if operation == "PutItem":
            size = item_size(item_or_key)
        elif operation == "UpdateItem":
            size = item_size(item_or_key) + sum(
                value_size(value) for value in (part.get("ExpressionAttributeValues") or {}).values()
            )
        else:
            size = 0
        kind: Kind = "check" if operation == "ConditionCheck" else "write"
        touch = Touch(table, self._partition(item_or_key), kind, slot, key, True, transactional)
        touch.size = size
        return touch

    @staticmethod
    def _query_partition(request: Mapping[str, Any]) -> str:
        """The value a Query's key condition sets its partition key to (`#pk = :pk`, `pk = :v`)."""
        names = request.get("ExpressionAttributeNames") or {}
        values = request.get("ExpressionAttributeValues") or {}
        condition = str(request.get("KeyConditionExpression", ""))
        for left, right in re.findall(r"([#\w.]+)\s*=\s*([:#\w.]+)", condition):
            name, value = names.get(left, left), right
            if not value.startswith(":"):
                name, value = names.get(right, right), left
            if name == PARTITION_KEY and value in values:
                return _value_text(values[value])
        for _, value in sorted(values.items()):
            return _value_text(value)
        return "?"

    def _estimate(self, touch: Touch) -> float:
        """Units charged before forwarding: a read at the item's last seen size (else the least a read costs), a
        write at the larger of its own size and the item's last seen size."""
        seen = self._sizes.get((touch.table, touch.key)) if touch.key else None
        if touch.kind == "read":
            return read_units(seen or 0, consistent=touch.consistent, transactional=touch.transactional)
        return write_units(max(touch.size, seen or 0), transactional=touch.transactional)

    def _charge(self, touches: list[Touch]) -> list[Touch]:
        """Take every touch's estimate from its partition's bucket; the touches that could not pay (their charge
        given back, as is every charge of a request refused whole)."""
        now, refused = self._clock(), []
        for touch in touches:
            bucket = self._bucket((touch.name, touch.bucket), now)
            if bucket.tokens >= min(touch.estimate, bucket.capacity):
                bucket.tokens -= touch.estimate
            else:
                refused.append(touch)
        return refused

    def _count(self, touches: list[Touch], refused: list[Touch]) -> None:
        seen: dict[str, set[str]] = {}
        for touch in touches:
            stats = self._stats.setdefault(touch.name, PartitionStats())
            kinds = seen.setdefault(touch.name, set())
            if not kinds:
                stats.requests += 1
            if touch.kind not in kinds:
                kinds.add(touch.kind)
                if touch.kind == "read":
                    stats.reads += 1
                elif touch.kind == "write":
                    stats.writes += 1
                else:
                    stats.checks += 1
        for touch in refused:
            self._stats.setdefault(touch.name, PartitionStats()).throttled += 1

    def _refuse(self, admission: Admission, refused: list[Touch]) -> None:
        """DynamoDB's answer when partitions cannot pay: a single-item request or a batch refused whole
        (ProvisionedThroughputExceededException), a transaction cancelled (ThrottlingError for the items
        refused), a batch forwarded without its refused keys (handed back as unprocessed)."""
        operation, request = admission.operation, admission.request
        touches = admission.touches
        refused_ids = {id(touch) for touch in refused}
        batch = operation in _UNPROCESSED and len(refused) < len(touches)
        given_back = touches if not batch else refused
        with self._lock:
            now = self._clock()
            for touch in given_back:
                if id(touch) not in refused_ids:
                    self._bucket((touch.name, touch.bucket), now).tokens += touch.estimate
                touch.units = 0.0
            self.throttled[operation] += 1
        if operation.startswith("Transact"):
            reasons = [
                {"Code": "ThrottlingError", "Message": THROTTLED_MESSAGE}
                if id(touch) in refused_ids
                else {"Code": "None"}
                for touch in touches
            ]
            codes = ", ".join(reason["Code"] for reason in reasons)
            admission.refusal = error_answer(
                "TransactionCanceledException",
                {
                    "CancellationReasons": reasons,
                    "Message": f"{_CANCELLED} [{codes}]",
                },
            )
            return
        if not batch:
            first = refused[0]
            reason = (
                ("Table" if "/" not in first.table else "Index")
                + ("Read" if first.bucket == "read" else "Write")
                + "KeyRangeThroughputExceeded"
            )
            admission.refusal = error_answer(
                "ProvisionedThroughputExceededException",
                {
                    "message": THROTTLED_MESSAGE,
                    "ThrottlingReasons": [{"reason": reason, "resource": self._arn(first.table)}],
                },
            )
            return
        # a batch: the refused keys come back unprocessed, the others are forwarded
        items = request["RequestItems"]
        refused_slots = {touch.slot for touch in refused}
        forwarded: dict[str, Any] = {}
        for table, entry in items.items():
            if operation == "BatchGetItem":
                keep = [key for index, key in enumerate(entry["Keys"]) if (table, index) not in refused_slots]
                back = [key for index, key in enumerate(entry["Keys"]) if (table, index) in refused_slots]
                if keep:
                    forwarded[table] = {**entry, "Keys": keep}
                if back:
                    admission.unprocessed[table] = {**entry, "Keys": back}
            else:
                keep = [write for index, write in enumerate(entry) if (table, index) not in refused_slots]
                back = [write for index, write in enumerate(entry) if (table, index) in refused_slots]
                if keep:
                    forwarded[table] = keep
                if back:
                    admission.unprocessed[table] = back
        admission.touches = [touch for touch in touches if id(touch) not in refused_ids]
        admission.body = json.dumps({**request, "RequestItems": forwarded}, separators=(",", ":")).encode()

    def _arn(self, table: str) -> str:
        name, _, index = table.partition("/")
        return f"arn:aws:dynamodb:{self._region}:000000000000:table/{name}" + (f"/index/{index}" if index else "")

    def _remember(self, table: str, key_names: Iterable[str], item: Mapping[str, Any]) -> int:
        size = item_size(item)
        self._sizes[(table, self._key(table, item, key_names))] = size
        return size

    def _actual(self, admission: Admission, answer: Mapping[str, Any]) -> dict[int, float]:
        """Each touch's units as the answer shows them (a touch left out keeps its estimate)."""
        operation, request, touches = admission.operation, admission.request, admission.touches
        actual: dict[int, float] = {}
        if operation == "GetItem" and touches:
            touch = touches[0]
            item = answer.get("Item")
            size = self._remember(touch.table, sorted(request["Key"]), item) if item else 0
            actual[id(touch)] = read_units(size, consistent=touch.consistent)
        elif operation == "Query" and touches:
            touch, items = touches[0], answer.get("Items") or []
            actual[id(touch)] = read_units(sum(map(item_size, items)), consistent=touch.consistent)
        elif operation == "BatchGetItem":
            by_key: dict[tuple[str, str], int] = {}
            for table, items in (answer.get("Responses") or {}).items():
                names = sorted(request["RequestItems"].get(table, {}).get("Keys", [{}])[0])
                for item in items:
                    by_key[(table, self._key(table, item, names))] = self._remember(table, names, item)
            unprocessed = answer.get("UnprocessedKeys") or {}
            left = {(table, _key_text(key)) for table, entry in unprocessed.items() for key in entry.get("Keys", [])}
            for touch in touches:
                if (touch.table, touch.key) in left:
                    actual[id(touch)] = 0.0
                else:
                    size = by_key.get((touch.table, str(touch.key)), 0)
                    actual[id(touch)] = read_units(size, consistent=touch.consistent)
        elif operation == "TransactGetItems":
            for touch, response in zip(touches, answer.get("Responses") or [], strict=False):
                item = (response or {}).get("Item")
                names = sorted(request["TransactItems"][touch.slot]["Get"]["Key"])
                size = self._remember(touch.table, names, item) if item else 0
                actual[id(touch)] = read_units(size, consistent=True, transactional=True)
        elif operation == "PutItem" and touches:
            item = request["Item"]
            names = [name for name in (self.partition_key, "sk") if name in item]
            self._remember(touches[0].table, names, item)
        elif operation == "TransactWriteItems":
            for touch in touches:
                part = request["TransactItems"][touch.slot].get("Put")
                if part:
                    names = [name for name in (self.partition_key, "sk") if name in part["Item"]]
                    self._remember(touch.table, names, part["Item"])
        return actual


_UNPROCESSED = {"BatchGetItem": "UnprocessedKeys", "BatchWriteItem": "UnprocessedItems"}
# What the model charges; anything else (Scan: ops tools only; the control plane) is forwarded untouched.
_MODELLED = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
