"""Priming: do at init the one-time work a first request would otherwise pay, with no write to any table.

Each handler module ends with one call to `prime_on_init`. It drives the handler through its
SUCCESS path, several times, with synthetic API Gateway events, while its DynamoDB client is answered
in memory, so no request leaves the process and nothing is written:

- reads are answered from a small synthetic item set (payments.priming_items) built with the
  repositories' own key builders and codec: the real request's shapes (its keys, its nested
  attribute values, its TransactWriteItems) are built, validated, serialised, signed and parsed,
  and the answers decoded, so botocore resolves every shape the first real request will need;
  writes (the swap's TransactWriteItems) are answered "done" and stored nowhere;
- the token is signed at priming time with a throwaway secret and verified through the handler's own
  path (`jwt_secret` returns that secret only while priming, on the priming thread); the token cache
  is emptied afterwards, and the real JWT secret is neither fetched nor cached;
- the swap's OTP code is the current code of the synthetic secret;
- pydantic builds and serialises the response models, Powertools its resolver, logger, tracer and
  metrics paths (the metrics printed while priming are dropped); Powertools' cold-start flags, which
  priming's requests spend, are set again, so the first real request is the one reported as the cold start.

- Under Lambda SnapStart the runtime provides `snapshot_restore_py`: priming is registered as a
  before-snapshot hook, and an after-restore hook re-seeds `random` and drops cached secrets so each
  restored environment differs and fetches what may have changed.
- Elsewhere priming runs at import only when PAYMENTS_PRIME_AT_INIT=true (the benchmarks use it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any

try:  # present only in Lambda's Python runtimes (3.12+), where SnapStart can call these hooks
    import snapshot_restore_py  # type: ignore[import-not-found]
except ImportError:
    snapshot_restore_py = None

PRIMING_ROUNDS = 10
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class _PrimingContext:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "priming")
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:priming:000000000000:function:{function_name}"
    aws_request_id = "priming"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class CannedDynamoDB:
    """While open, answers this thread's DynamoDB calls on a client from `items`, before anything is sent.

    `items` maps a table name to its items (Python values, as the repositories read them). Reads
    (BatchGetItem, GetItem, TransactGetItems, Query on the partition key) answer what they ask for;
    writes answer "done" and change nothing. BatchGetItem and TransactWriteItems also answer the
    ConsumedCapacity and ItemCollectionMetrics that moto (the benchmarks' recorder) sends unasked, so
    their shapes are parsed once here too (DynamoDB itself sends them only when asked).

    The hook stays registered once closed, answering nothing: unregistering would empty botocore's
    handler lookup cache and hand that work back to the first real request. The active flag is per
    thread, so priming one environment never answers another thread's real request.
    """

    _state = threading.local()

    def __init__(self, client: Any, items: dict[str, list[dict[str, Any]]] | None = None) -> None:
        from payments.repositories import codec
        from payments.repositories.keys import PK, SK

        self._events = client.meta.events
        self.calls: list[str] = []
        self._items: dict[tuple[str, str, str], dict[str, Any]] = {
            (table, item[PK], item[SK]): codec.to_item(item) for table, found in (items or {}).items() for item in found
        }

    @classmethod
    def _send(cls, request: Any, **_: Any) -> Any:
        canned: CannedDynamoDB | None = getattr(cls._state, "canned", None)
        if canned is None:
            return None  # not priming on this thread: botocore sends the request as usual
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        canned.calls.append(operation)
        body = json.dumps(canned.answer(operation, json.loads(request.body or b"{}"))).encode()
        # The headers DynamoDB answers with: botocore checks the CRC32 and reads the request id.
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "Content-Length": str(len(body)),
            "x-amzn-RequestId": "PRIMING",
            "x-amz-crc32": str(zlib.crc32(body)),
        }
        return AWSResponse("https://priming", 200, headers, _Raw(body))

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._items.get((table, key["pk"]["S"], key["sk"]["S"]))

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """The DynamoDB JSON answer of one call, from the canned items."""
        if operation == "BatchGetItem":
            responses = {
                table: [item for key in spec["Keys"] if (item := self._get(table, key)) is not None]
                for table, spec in params["RequestItems"].items()
            }
            capacity = [{"TableName": table, "CapacityUnits": 1.0} for table in responses]
            return {"Responses": responses, "UnprocessedKeys": {}, "ConsumedCapacity": capacity}
        if operation == "GetItem":
            item = self._get(params["TableName"], params["Key"])
            return {} if item is None else {"Item": item}
        if operation == "TransactGetItems":
            found = [self._get(entry["Get"]["TableName"], entry["Get"]["Key"]) for entry in params["TransactItems"]]
            return {"Responses": [{} if item is None else {"Item": item} for item in found]}
        if operation == "Query":  # on the partition key only ("#pk = :pk"), as the repositories query
            (partition,) = params["ExpressionAttributeValues"].values()
            items = sorted(
                (sk, item)
                for (table, pk, sk), item in self._items.items()
                if table == params["TableName"] and pk == partition["S"]
            )
            page = [item for _, item in items][: params.get("Limit", len(items))]
            return {"Items": page, "Count": len(page), "ScannedCount": len(page)}
        if operation == "TransactWriteItems":
            return {"ConsumedCapacity": [], "ItemCollectionMetrics": {}}
        if operation in _WRITES:
            return {"UnprocessedItems": {}} if operation == "BatchWriteItem" else {}
        raise ValueError(f"priming has no canned answer for DynamoDB {operation}")

    def __enter__(self) -> CannedDynamoDB:
        # One registration per client (and per load of this module: a reloaded module brings its own hook).
        self._events.register_first(
            "before-send.dynamodb", CannedDynamoDB._send, unique_id=f"payments-priming-{id(CannedDynamoDB)}"
        )
        CannedDynamoDB._state.canned = self
        return self

    def __exit__(self, *_: object) -> None:
        CannedDynamoDB._state.canned = None


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def api_event(path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST proxy event (POST) with a JSON body and the headers API Gateway adds."""
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "Host": "priming.execute-api.invalid",
        "User-Agent": "priming",
        "X-Forwarded-For": "127.0.0.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        **headers,
    }
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": "priming",
            "stage": "v1",
            "path": f"/v1{path}",
            "resourcePath": path,
            "httpMethod": "POST",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def synthetic_items() -> dict[str, list[dict[str, Any]]]:
    """The synthetic items (payments.priming_items) by the table names of this environment's settings."""
    from payments import priming_items
    from payments.config import get_settings

    settings = get_settings()
    return {
        settings.willson_table: priming_items.willson_items(),
        settings.ledger_table: priming_items.ledger_items(settings.honeypot_app_id, settings.honeypot_point_id),
        settings.otp_secret_table: priming_items.otp_secret_items(),
    }


def _fill(value: Any, fields: dict[str, str]) -> Any:
    """`value` with every "{name}" string of it (at any depth) formatted from `fields`."""
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, dict):
        return {name: _fill(item, fields) for name, item in value.items()}
    return [_fill(item, fields) for item in value] if isinstance(value, list) else value


@contextlib.contextmanager
def _throwaway_secret() -> Iterator[str]:
    """A fresh JWT secret that `payments.http.jwt_secret` returns on this thread while open."""
    import secrets

    from payments import http

    secret = secrets.token_urlsafe(32)
    reset = http.PRIMING_JWT_SECRET.set(secret)
    try:
        yield secret
    finally:
        http.PRIMING_JWT_SECRET.reset(reset)


def prime(handler: Callable[..., Any], path: str, body: dict[str, Any], headers: dict[str, str]) -> list[str]:
    """Invoke `handler` PRIMING_ROUNDS times on its success path, DynamoDB answered from the synthetic items.

    Returns the DynamoDB operations made. In `body` and `headers`, "{token}" is replaced by a token
    of priming_items.CALLER signed with a throwaway secret (a new token each round, so each round
    verifies one), "{otp}" by the current code of priming_items.OTP_SECRET. Raises RuntimeError if
    the handler did not answer 200: priming that silently took a refusal path would prime the wrong code.
    """
    import pyotp

    from payments import auth, priming_items
    from payments.aws import dynamodb_client, secrets_provider
    from payments.config import get_settings

    if get_settings().jwt_secret_arn:
        secrets_provider()  # its client built now; the secret itself is fetched by the first real request
    with (
        CannedDynamoDB(dynamodb_client(), synthetic_items()) as canned,
        _throwaway_secret() as secret,
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            # Several times: CPython specialises a function's bytecode only after it has run a few times.
            for number in range(PRIMING_ROUNDS):
                token = auth.issue_access_token(priming_items.CALLER, secret, 60 + number)
                fields = {"token": token, "otp": pyotp.TOTP(priming_items.OTP_SECRET).at(time.time())}
                event = api_event(path, _fill(body, fields), _fill(headers, fields))
                response = handler(event, _PrimingContext())  # its metrics are printed into the buffer, then dropped
                if response["statusCode"] != 200:
                    raise RuntimeError(f"priming {path} answered {response['statusCode']}: {response['body']}")
        finally:
            # No token signed with the throwaway secret stays where a real request could look it up.
            auth.forget_verified_tokens()
            _restore_cold_start_flags()
    return canned.calls


def _restore_cold_start_flags() -> None:
    """Priming's requests spent Powertools' cold-start flags: give them back to the first real request.

    Logger (the `cold_start` key), Tracer (the `ColdStart` annotation) and Metrics (the ColdStart
    metric, when captured) each keep one per execution environment; under SnapStart the snapshot
    would otherwise hold them spent, and no restored environment would ever report a cold start.
    """
    for name in (
        "aws_lambda_powertools.logging.logger",
        "aws_lambda_powertools.tracing.tracer",
        "aws_lambda_powertools.metrics.provider.cold_start",
    ):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "is_cold_start"):
            setattr(module, "is_cold_start", True)  # noqa: B010 - a module global of Powertools, not an attribute


def after_restore() -> None:
    """Each restored environment: its own random state, secrets fetched again."""
    random.seed()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()
    aws = sys.modules.get("payments.aws")
    if aws is not None and aws.secrets_provider.cache_info().currsize:
        aws.secrets_provider().clear_cache()


def prime_on_init(handler: Callable[..., Any], path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Register priming with SnapStart's runtime hooks when present, else prime now if asked to."""
    if snapshot_restore_py is not None:
        snapshot_restore_py.register_before_snapshot(prime, handler, path, body, headers)
        snapshot_restore_py.register_after_restore(after_restore)
    elif os.environ.get("PAYMENTS_PRIME_AT_INIT", "").lower() == "true":
        prime(handler, path, body, headers)
