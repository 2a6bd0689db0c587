"""Priming: at init, the one-time work a first request would otherwise pay, done by calling the libraries.

Each handler module ends with `prime_on_init(settings)`:

- Under Lambda SnapStart the runtime provides `snapshot_restore_py`: `prime` is registered as a
  before-snapshot hook, and `after_restore` as an after-restore hook (each restored environment re-seeds
  `random` and drops cached secrets, so environments differ and fetch what may have changed).
- Elsewhere `prime` runs at import only when PAYMENTS_PRIME_AT_INIT=true (the benchmarks use it).

`prime` sends nothing and changes nothing the handlers use: it builds the clients; loads botocore's
DynamoDB model and the shapes of the operations the repositories call, validating and serialising a
request of each and parsing an answer shaped as DynamoDB's (items of every attribute kind) through
botocore's own serializer and parser, and boto3's item (de)serialisers; validates and dumps the request
and response models once with pydantic; signs and verifies a throwaway token with PyJWT and computes a
TOTP code with pyotp; imports what Powertools imports on a first request. Each step is on its own: a
step that fails is logged and skipped, so priming never makes an import fail, and no step touches the
network (a real read would warm the client's own per-operation work too, but could wait up to the
client's timeouts where DynamoDB is unreachable).
"""

from __future__ import annotations

import importlib
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from payments.config import Settings

try:  # present only in Lambda's Python runtimes (3.12+), where SnapStart can call these hooks
    import snapshot_restore_py  # type: ignore[import-not-found]
except ImportError:
    snapshot_restore_py = None

# The DynamoDB operations the repositories call.
DYNAMODB_OPERATIONS = ("BatchGetItem", "GetItem", "Query", "TransactWriteItems", "PutItem", "UpdateItem")
# What Powertools imports lazily while it answers a first request (logger context, metrics flush, tracing).
POWERTOOLS_MODULES = (
    "aws_lambda_powertools.utilities.typing.lambda_context",
    "aws_lambda_powertools.logging.lambda_context",
    "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch",
    "aws_lambda_powertools.event_handler.middlewares",
)


def prime(settings: Settings) -> list[str]:
    """Run every priming step; return the names of those that failed (each is logged, none raises)."""
    steps: list[tuple[str, Callable[[Settings], None]]] = [
        ("botocore", _botocore),
        ("pydantic", _pydantic),
        ("jwt", _jwt),
        ("otp", _otp),
        ("powertools", _powertools),
    ]
    failed = []
    for name, step in steps:
        try:
            step(settings)
        except Exception:  # noqa: BLE001 - priming is an optimisation: whatever fails, the import goes on
            failed.append(name)
            from payments.observability import logger

            logger.warning("priming step failed", extra={"step": name}, exc_info=True)
    return failed


def _botocore(settings: Settings) -> None:
    """The clients, and each DynamoDB operation's model, shapes, validator, serializer and parser."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from botocore.parsers import create_parser
    from botocore.serialize import create_serializer
    from botocore.validate import validate_parameters

    from payments.aws import dynamodb_client, secrets_provider

    if settings.jwt_secret_arn:
        secrets_provider()  # its client built now; the secret itself is fetched by the first real request
    client = dynamodb_client()
    model = client.meta.service_model
    serializer = create_serializer(model.metadata["protocol"], include_validation=False)
    parser = create_parser(model.metadata["protocol"])
    samples, answers = _dynamodb_samples(settings), _dynamodb_answers(settings)
    for name in DYNAMODB_OPERATIONS:
        operation = model.operation_model(name)
        for shape in (operation.input_shape, operation.output_shape):
            _resolve(shape, set())
        validate_parameters(samples[name], operation.input_shape)
        serializer.serialize_to_request(samples[name], operation)
        body = json.dumps(answers[name]).encode()
        parser.parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
    TypeDeserializer().deserialize({"M": _ITEM})
    TypeSerializer().serialize({"n": Decimal("1.5"), "l": ["x", 1, True, None], "m": {"s": "x"}})


def _resolve(shape: Any, seen: set[str]) -> None:
    """Resolve every member shape under `shape` (botocore resolves them lazily, on first access)."""
    if shape is None or shape.name in seen:
        return
    seen.add(shape.name)
    if shape.type_name == "structure":
        for member in shape.members.values():
            _resolve(member, seen)
    elif shape.type_name == "list":
        _resolve(shape.member, seen)
    elif shape.type_name == "map":
        _resolve(shape.key, seen)
        _resolve(shape.value, seen)


_KEY = {"pk": {"S": "PRIMING"}, "sk": {"S": "PRIMING"}}
# An item with every kind of attribute value the repositories store, nested as theirs are.
_ITEM = {
    **_KEY,
    "n": {"N": "1.5"},
    "s": {"S": "프라이밍"},
    "b": {"BOOL": True},
    "z": {"NULL": True},
    "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"s": {"S": "x"}}}]},
    "m": {"M": {"n": {"N": "1"}, "m": {"M": {"s": {"S": "x"}, "l": {"L": [{"S": "x"}]}}}}},
}


def _dynamodb_answers(settings: Settings) -> dict[str, dict[str, Any]]:
    """One answer per operation, shaped as DynamoDB's (items of every attribute kind)."""
    capacity = [{"TableName": settings.ledger_table, "CapacityUnits": 1.0}]
    return {
        "BatchGetItem": {"Responses": {settings.ledger_table: [_ITEM, _ITEM]}, "UnprocessedKeys": {}},
        "GetItem": {"Item": _ITEM},
        "Query": {"Items": [_ITEM, _ITEM], "Count": 2, "ScannedCount": 2, "LastEvaluatedKey": _KEY},
        "TransactWriteItems": {"ConsumedCapacity": capacity},
        "PutItem": {},
        "UpdateItem": {"Attributes": _ITEM},
    }


def _dynamodb_samples(settings: Settings) -> dict[str, dict[str, Any]]:
    """One well-formed request per operation, on a key no item has."""
    key, item = _KEY, _ITEM
    condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "BatchGetItem": {"RequestItems": {settings.ledger_table: {"Keys": [key], "ConsistentRead": True}}},
        "GetItem": {"TableName": settings.ledger_table, "Key": key, "ConsistentRead": True},
        "Query": {
            "TableName": settings.willson_table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": "PRIMING"}},
            "Limit": 1,
        },
        "TransactWriteItems": {
            "TransactItems": [{"Put": {"TableName": settings.ledger_table, "Item": item, **condition}}],
            "ClientRequestToken": "priming",
        },
        "PutItem": {"TableName": settings.ledger_table, "Item": item, **condition},
        "UpdateItem": {
            "TableName": settings.ledger_table,
            "Key": key,
            "UpdateExpression": "SET n = :n",
            "ExpressionAttributeValues": {":n": {"N": "1"}},
            **condition,
        },
    }


def _pydantic(_: Settings) -> None:
    """Validate and dump each request and response envelope once."""
    from payments.models.payment_progress import PaymentProgressRequest
    from payments.models.swap import SwapRequest, SwapValue
    from payments.routes import payment_progress, swap

    PaymentProgressRequest.model_validate({"concern_idx": 1, "match_type": 2})
    SwapRequest.from_body(swap.SWAP_EXAMPLE_REQUEST).coin_id  # noqa: B018 - reads a nested field
    value = SwapValue.model_validate(swap.SWAP_EXAMPLE_VALUE)
    swap.SwapSuccess(value=value).model_dump(by_alias=True)
    payment_progress.PaymentProgressSuccess.model_validate(payment_progress.PAYMENT_PROGRESS_EXAMPLE).model_dump()


def _jwt(_: Settings) -> None:
    """Sign and verify a throwaway token (a secret made now and dropped), as the handlers verify theirs."""
    import jwt

    from payments.auth import ALGORITHM

    secret = secrets.token_urlsafe(32)
    token = jwt.encode({"au_id": 1, "exp": int(time.time()) + 60}, secret, algorithm=ALGORITHM)
    jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "au_id"], "verify_exp": False})


def _otp(_: Settings) -> None:
    """Compute and check a TOTP code of a throwaway secret."""
    import pyotp

    totp = pyotp.TOTP(pyotp.random_base32())
    totp.verify(totp.now(), valid_window=1)


def _powertools(_: Settings) -> None:
    for name in POWERTOOLS_MODULES:
        importlib.import_module(name)


def after_restore() -> None:
    """Each restored environment: its own random state, secrets fetched again."""
    random.seed()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()
    aws = sys.modules.get("payments.aws")
    if aws is not None and aws.secrets_provider.cache_info().currsize:
        aws.secrets_provider().clear_cache()


def prime_on_init(settings: Settings) -> None:
    """Register priming with SnapStart's runtime hooks when present, else prime now if asked to."""
    if snapshot_restore_py is not None:
        snapshot_restore_py.register_before_snapshot(prime, settings)
        snapshot_restore_py.register_after_restore(after_restore)
    elif os.environ.get("PAYMENTS_PRIME_AT_INIT", "").lower() == "true":
        prime(settings)
