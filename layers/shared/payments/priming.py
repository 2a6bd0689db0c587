"""Priming: do at init the one-time work a first request would otherwise pay, with no write to any table.

Each handler module ends with one call to `prime_on_init`. It drives the handler once with a
synthetic API Gateway event (a well-signed token, a well-formed body) while its DynamoDB client is
answered in memory by empty canned answers, so no request leaves the process and nothing is
written: botocore builds its operation models, serialisers, signer and parsers, pydantic its
validators, Powertools its resolver, logger, tracer and metrics paths, and the error rendering runs.

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
import warnings
from collections.abc import Callable
from typing import Any

try:  # present only in Lambda's Python runtimes (3.12+), where SnapStart can call these hooks
    import snapshot_restore_py  # type: ignore[import-not-found]
except ImportError:
    snapshot_restore_py = None

# What the canned reads answer: one item no request asks for (so every handler refuses it as not
# found) holding every attribute type, so botocore's parser builds what real items need.
_SAMPLE = {
    "pk": {"S": "PRIMING"},
    "sk": {"S": "PRIMING"},
    "n": {"N": "1.5"},
    "b": {"BOOL": True},
    "z": {"NULL": True},
    "m": {"M": {"l": {"L": [{"S": "x"}, {"N": "1"}]}, "ss": {"SS": ["x"]}, "ns": {"NS": ["1"]}}},
}
_ANSWERS = {
    "GetItem": {},
    "BatchGetItem": {"Responses": {"PRIMING": [_SAMPLE]}, "UnprocessedKeys": {}},
    "TransactGetItems": {"Responses": [{"Item": _SAMPLE}]},
    "Query": {"Items": [_SAMPLE], "Count": 1, "ScannedCount": 1},
    "PutItem": {},
    "UpdateItem": {"Attributes": _SAMPLE},
    "DeleteItem": {},
    "TransactWriteItems": {},
    "BatchWriteItem": {"UnprocessedItems": {}},
}
_KEY = {"pk": {"S": "PRIMING"}, "sk": {"S": "PRIMING"}}
# Calls a handler makes only on its success path, exercised directly on its table (answered in memory, never sent).
_CALLS = {
    "Query": lambda client, table: client.query(
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": "pk"},
        ExpressionAttributeValues={":pk": {"S": "PRIMING"}},
        Limit=1,
    ),
    # Shaped like the swap's commit (3 updates, 2 puts, 1 check): botocore caches endpoint resolution per table list.
    "TransactWriteItems": lambda client, table: client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": _KEY,
                    "UpdateExpression": "SET #n = #n + :d",
                    "ConditionExpression": "#n >= :d",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":d": {"N": "1"}},
                }
            }
        ]
        * 3
        + [
            {
                "Put": {
                    "TableName": table,
                    "Item": _SAMPLE,
                    "ConditionExpression": "attribute_not_exists(#pk) OR #n < :d",
                    "ExpressionAttributeNames": {"#pk": "pk", "#n": "n"},
                    "ExpressionAttributeValues": {":d": {"N": "1"}},
                }
            }
        ]
        * 2
        + [
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": _KEY,
                    "ConditionExpression": "#n = :d",
                    "ExpressionAttributeNames": {"#n": "n"},
                    "ExpressionAttributeValues": {":d": {"N": "1"}},
                }
            }
        ],
        ClientRequestToken="priming",
    ),
    "UpdateItem": lambda client, table: client.update_item(
        TableName=table,
        Key=_KEY,
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "n"},
        ExpressionAttributeValues={":n": {"N": "1"}},
        ReturnValues="ALL_NEW",
    ),
}


PRIMING_ROUNDS = 10


class _PrimingContext:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "priming")
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:priming:000000000000:function:{function_name}"
    aws_request_id = "priming"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class CannedDynamoDB:
    """While open, answers this thread's DynamoDB calls on a client with canned answers, before anything is sent.

    The hook stays registered once closed, answering nothing: unregistering would empty botocore's
    handler lookup cache and hand that work back to the first real request. The active flag is
    per thread, so priming one environment never answers another thread's real request.
    """

    _state = threading.local()

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self.calls: list[str] = []

    @classmethod
    def _send(cls, request: Any, **_: Any) -> Any:
        calls = getattr(cls._state, "calls", None)
        if calls is None:
            return None  # not priming on this thread: botocore sends the request as usual
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        calls.append(operation)
        body = json.dumps(_ANSWERS.get(operation, {})).encode()
        return AWSResponse("https://priming", 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(body))

    def __enter__(self) -> CannedDynamoDB:
        # One registration per client (and per load of this module: a reloaded module brings its own hook).
        self._events.register_first(
            "before-send.dynamodb", CannedDynamoDB._send, unique_id=f"payments-priming-{id(CannedDynamoDB)}"
        )
        CannedDynamoDB._state.calls = self.calls
        return self

    def __exit__(self, *_: object) -> None:
        CannedDynamoDB._state.calls = None


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def api_event(path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """A minimal API Gateway REST proxy event (POST) with a JSON body."""
    headers = {"Content-Type": "application/json", **headers}
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
        "body": json.dumps(body),
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


def prime(
    handler: Callable[..., Any],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    success_calls: dict[str, str] | None = None,
) -> list[str]:
    """Invoke `handler` once, then make `success_calls` ({operation: table}; DynamoDB answered in memory).

    Returns the DynamoDB operations made.

    `headers` values may hold "{token}", replaced by a token signed with the configured secret.
    """
    from payments.auth import issue_access_token
    from payments.aws import dynamodb_client
    from payments.config import get_settings
    from payments.http import jwt_secret

    token = issue_access_token(1, jwt_secret(get_settings()), 60)
    event = api_event(path, body, {name: value.replace("{token}", token) for name, value in headers.items()})
    with (
        CannedDynamoDB(dynamodb_client()) as canned,
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # e.g. Powertools' "no application metrics" on a refusal
        # Several times: CPython specialises a function's bytecode only after it has run a few times.
        for _ in range(PRIMING_ROUNDS):
            handler(event, _PrimingContext())  # its metrics are printed into this buffer, then dropped
            for operation, table in (success_calls or {}).items():
                _CALLS[operation](dynamodb_client(), table)
    return canned.calls


def after_restore() -> None:
    """Each restored environment: its own random state, secrets fetched again."""
    random.seed()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()


def prime_on_init(
    handler: Callable[..., Any],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    success_calls: dict[str, str] | None = None,
) -> None:
    """Register priming with SnapStart's runtime hooks when present, else prime now if asked to."""
    if snapshot_restore_py is not None:
        snapshot_restore_py.register_before_snapshot(prime, handler, path, body, headers, success_calls)
        snapshot_restore_py.register_after_restore(after_restore)
    elif os.environ.get("PAYMENTS_PRIME_AT_INIT", "").lower() == "true":
        prime(handler, path, body, headers, success_calls)
