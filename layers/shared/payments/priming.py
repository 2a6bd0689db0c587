"""Priming: at init, the one-time work a first request would otherwise pay, done by calling the libraries.

Each handler module ends with `prime_on_init(settings, api, repository)`:

- Under Lambda SnapStart the runtime provides `snapshot_restore_py`: `prime` is registered as a
  before-snapshot hook, and `after_restore` as an after-restore hook (each restored environment re-seeds
  `random`, drops cached secrets and the client's pooled connections, so environments differ, fetch what
  may have changed and connect anew).
- Elsewhere `prime` runs at import only when PAYMENTS_PRIME_AT_INIT=true (the benchmarks use it).

`prime` writes nothing and changes nothing the handlers use. Once: it builds the clients; loads botocore's
DynamoDB model and resolves, path by path, the shapes of the operations the repositories call, validating
and serialising a request of each and parsing an answer shaped as DynamoDB's (items of every attribute
kind) through botocore's own serializer and parser, and boto3's item (de)serialisers; imports what
Powertools imports on a first request and serialises a metric with a CloudWatch EMF provider of its own;
then collects the garbage of all that. Then, REHEARSALS rounds of the request's own work, so that its code
is what ran last (CPython specialises code that runs repeatedly): pydantic validates and dumps the request
and data models (the contract's examples), PyJWT signs and verifies a throwaway token, pyotp computes a
TOTP code, and the request path is rehearsed with values no real request can have:

- reads through the handler's own repository and the production client, keyed by a caller and a concern
  that cannot exist (id 0: a token's au_id is a positive integer; payment progress's read also fetches the
  ticket catalogue, as every request does), each refused by the service (payment progress: no such concern;
  swap: no such app), plus a listing Query of a gender no concern has, and, for the swap, a
  TransactWriteItems holding only a ConditionCheck on caller 0's account: nothing in it can write,
  whatever DynamoDB answers (a ConditionCheck is billed as a write: 2 write units a round);
- the handler's resolver with a body that is not a JSON object: refused before any token or secret is
  read, through the route, the error rendering and the response; the metric the swap counts for that
  refusal is cleared (Powertools' public `clear_metrics`).

Each step is on its own: a step that fails is logged and skipped, so priming never makes an import fail.
The rehearsal stops at the first answer that is not the expected refusal; where DynamoDB is unreachable
that is its first read, which waits at most one call's bounded worst case (payments.aws). Nothing is
registered on the client and no handler is invoked, so Powertools' cold-start flags stay for the first
real request.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from payments.config import Settings

if TYPE_CHECKING:
    from payments.api import Api

try:  # present only in Lambda's Python runtimes (3.12+), where SnapStart can call these hooks
    import snapshot_restore_py  # type: ignore[import-not-found]
except ImportError:
    snapshot_restore_py = None

# How deep an attribute value is followed inside itself (the ledger's items nest maps and lists this deep).
_NESTING = 3
# How many times the request's own work is rehearsed (each round makes 2 DynamoDB calls of keys no item has).
REHEARSALS = 3
# The DynamoDB operations the repositories call.
DYNAMODB_OPERATIONS = ("BatchGetItem", "GetItem", "Query", "TransactWriteItems", "PutItem", "UpdateItem")
# What Powertools imports lazily while it answers a first request (logger context, metrics flush, tracing).
POWERTOOLS_MODULES = (
    "aws_lambda_powertools.utilities.typing.lambda_context",
    "aws_lambda_powertools.logging.lambda_context",
    "aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch",
    "aws_lambda_powertools.event_handler.middlewares",
)


def prime(settings: Settings, api: Api | None = None, repository: object = None) -> list[str]:
    """Run every priming step; return the names of those that failed (each is logged, none raises).

    `api` and `repository` are the handler's own (payments.api.Api, and its WillsonRepository or
    LedgerRepository); without them the request path is not rehearsed.
    """
    import gc  # only priming collects

    once: list[tuple[str, Callable[[], object]]] = [
        ("botocore", lambda: _botocore(settings)),
        ("powertools", _powertools),
        ("garbage", gc.collect),
    ]
    # Then the request's own work, round after round, so that its code is the last run before the snapshot.
    rehearsed: list[tuple[str, Callable[[], object]]] = [("pydantic", _pydantic), ("jwt", _jwt), ("otp", _otp)]
    if repository is not None:
        rehearsed.append(("reads", lambda: _rehearse_reads(settings, repository)))
    if api is not None:
        rehearsed.append(("resolver", lambda: _rehearse_refusal(api)))
    failed: list[str] = []
    for name, step in once + rehearsed * REHEARSALS:
        if name in failed:
            continue  # a step fails once: an unreachable DynamoDB is waited for once
        try:
            step()
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
            _resolve(shape)
        validate_parameters(samples[name], operation.input_shape)
        serializer.serialize_to_request(samples[name], operation)
        body = json.dumps(answers[name]).encode()
        parser.parse({"status_code": 200, "headers": {}, "body": body}, operation.output_shape)
    TypeDeserializer().deserialize({"M": _ITEM})
    TypeSerializer().serialize({"n": Decimal("1.5"), "l": ["x", 1, True, None], "m": {"s": "x"}})


def _resolve(shape: Any, path: tuple[str, ...] = ()) -> int:
    """Resolve every member shape under `shape`, down each path (botocore resolves them lazily, on first access).

    botocore caches a member's shape on its parent, so each path holds shapes of its own: the walk follows
    paths, not names, and a recursive shape (an attribute value in a map or list of attribute values) is
    followed until it is _NESTING deep in itself. Each shape's cached properties that the serializer and the
    parser read are computed too. Returns the number of shapes visited.
    """
    if shape is None or path.count(shape.name) >= _NESTING:
        return 0
    path = (*path, shape.name)
    shape.serialization, shape.metadata  # noqa: B018 - computed on first access
    if shape.type_name == "structure":
        shape.required_members, shape.is_document_type, shape.is_tagged_union  # noqa: B018 - as above
        children = list(shape.members.values())
    elif shape.type_name == "list":
        children = [shape.member]
    elif shape.type_name == "map":
        children = [shape.key, shape.value]
    else:
        return 1
    return 1 + sum(_resolve(child, path) for child in children)


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


def _pydantic() -> None:
    """Validate and dump each request model and each success body's data model once (the contract's examples)."""
    from payments.models.payment_progress import PaymentProgressData, PaymentProgressRequest
    from payments.models.swap import SwapRequest, SwapValue
    from payments.routes import payment_progress, swap

    PaymentProgressRequest.model_validate({"concern_idx": 1, "match_type": 2})
    SwapRequest.from_body(swap.SWAP_EXAMPLE_REQUEST).coin_id  # noqa: B018 - reads a nested field
    swap.success_body(SwapValue.model_validate(swap.SWAP_EXAMPLE_VALUE))
    data = PaymentProgressData.model_validate(payment_progress.PAYMENT_PROGRESS_EXAMPLE["data"])
    payment_progress.success_body(data)


def _jwt() -> None:
    """Sign and verify a throwaway token (a secret made now and dropped), as the handlers verify theirs."""
    import jwt

    from payments.auth import ALGORITHM

    secret = secrets.token_urlsafe(32)
    token = jwt.encode({"au_id": 1, "exp": int(time.time()) + 60}, secret, algorithm=ALGORITHM)
    jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "au_id"], "verify_exp": False})


def _otp() -> None:
    """Compute and check a TOTP code of a throwaway secret."""
    import pyotp

    totp = pyotp.TOTP(pyotp.random_base32())
    totp.verify(totp.now(), valid_window=1)


def _powertools() -> None:
    """Import what a first request imports; serialise a metric and read a correlation id as the handlers do."""
    for name in POWERTOOLS_MODULES:
        importlib.import_module(name)
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
    from aws_lambda_powertools.utilities.jmespath_utils import query

    provider = AmazonCloudWatchEMFProvider(namespace="Priming", service="priming")  # its own metric set
    provider.add_metric(name="Priming", unit="Count", value=1)
    json.dumps(provider.serialize_metric_set(), separators=(",", ":"))
    query({"requestContext": {"requestId": "priming"}}, correlation_paths.API_GATEWAY_REST)


# No real caller or concern has id 0 (a token's au_id is a positive integer), no concern this gender.
_NOBODY, _NO_CONCERN, _NO_GENDER = 0, 0, "PRIMING"
# A swap of nobody's naming no app: refused (no such app) once its state is read.
_NO_SWAP: dict[str, Any] = {
    "event_id": 3,
    "otp_code": "000000",
    "point": {"app_id": 0, "point_id": 0, "adjust_point_quantity": -1},
    "coin": {"coin_id": 0, "adjust_coin_quantity": 1},
}


def _rehearse_reads(settings: Settings, repository: object) -> None:
    """The service's reads through the handler's repository and client, of keys no item has.

    The round must end in the expected refusal; anything else (DynamoDB unreachable, refused, throttled)
    fails the step, which is then not run again: an unreachable DynamoDB costs one bounded call.
    """
    from payments.auth import Caller
    from payments.aws import DYNAMODB_CALL_WORST_CASE_MS
    from payments.repositories.ledger import LedgerRepository
    from payments.repositories.willson import WillsonRepository
    from payments.services.time_budget import TimeBudget

    nobody = Caller(au_id=_NOBODY)
    budget = TimeBudget(remaining_ms=lambda: 60_000, call_ms=DYNAMODB_CALL_WORST_CASE_MS)
    if isinstance(repository, WillsonRepository):
        _payment_progress_reads(settings, repository, nobody, budget)
    elif isinstance(repository, LedgerRepository):
        _swap_reads(settings, repository, nobody, budget)
    else:
        raise TypeError(f"no rehearsal for {type(repository).__name__}")


def _payment_progress_reads(settings: Settings, repository: Any, nobody: Any, budget: Any) -> None:
    from payments.errors import ConcernNotFound
    from payments.models.payment_progress import PaymentProgressRequest
    from payments.services.payment_progress import progress_payment

    with contextlib.suppress(ConcernNotFound):  # one BatchGetItem over both tables
        progress_payment(
            repository,
            nobody,
            PaymentProgressRequest(concern_idx=_NO_CONCERN),
            honeypot_app_id=settings.honeypot_app_id,
            honeypot_point_id=settings.honeypot_point_id,
            max_listed=settings.max_listed_willsoners,
            budget=budget,
        )
    repository.list_candidates(_NO_CONCERN, _NO_GENDER, settings.max_listed_willsoners, budget.before_call)


def _swap_reads(settings: Settings, ledger: Any, nobody: Any, budget: Any) -> None:
    from payments.aws import dynamodb_client
    from payments.errors import AppIdInvalid
    from payments.models.swap import SwapRequest
    from payments.repositories.keys import PK, account
    from payments.services.swap import SwapPolicy, execute_swap, request_fingerprint

    try:  # one strongly consistent BatchGetItem over the ledger and the OTP secrets
        request = SwapRequest.from_body(_NO_SWAP)
        execute_swap(
            ledger, nobody, request, request_fingerprint(_NOBODY, _NO_SWAP), SwapPolicy(max_attempts=1), budget
        )
    except AppIdInvalid:
        pass
    # A transaction of one ConditionCheck (it writes nothing, whatever the answer) on nobody's account.
    check = {"TableName": settings.ledger_table, "Key": _attributes(account(_NOBODY))}
    client = dynamodb_client()
    with contextlib.suppress(client.exceptions.TransactionCanceledException):  # the condition failed: no such account
        client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        **check,
                        "ConditionExpression": "attribute_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": PK},
                    }
                }
            ]
        )


def _attributes(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"S": value} for name, value in key.items()}


class _PrimingContext:
    """What the resolver may read of a Lambda context."""

    function_name = "priming"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:priming"
    aws_request_id = "priming"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _rehearse_refusal(api: Api) -> None:
    """The handler's resolver with a body that is not a JSON object (no token, no secret read)."""
    from payments.observability import metrics

    path = api.contract.path
    headers = {"content-type": "application/json"}
    event = {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": "POST", "path": path, "requestId": "priming"},
        "body": "[]",
        "isBase64Encoded": False,
    }
    try:
        status = api.app.resolve(event, _PrimingContext())["statusCode"]
        if status != 400:
            raise RuntimeError(f"a body that is not an object was answered {status}")
    finally:
        metrics.clear_metrics()  # the swap counts each refusal: none of these is a real one


def after_restore() -> None:
    """Each restored environment: its own random state, secrets fetched again, DynamoDB connections opened anew.

    The rehearsed reads left connections in the client's pool; a connection of the snapshot is no connection of
    the restored environment, so the pool is emptied (botocore's `close`; the client opens new ones as needed).
    """
    random.seed()
    shared_items = sys.modules.get("payments.repositories.shared_items")
    if shared_items is not None:  # kept since the snapshot: as old as it
        shared_items.forget_all()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        parameters.clear_caches()
    aws = sys.modules.get("payments.aws")
    if aws is not None and aws.secrets_provider.cache_info().currsize:
        aws.secrets_provider().clear_cache()
    if aws is not None and aws.dynamodb_client.cache_info().currsize:
        aws.dynamodb_client().close()


def prime_on_init(settings: Settings, api: Api | None = None, repository: object = None) -> None:
    """Register priming with SnapStart's runtime hooks when present, else prime now if asked to."""
    if snapshot_restore_py is not None:
        snapshot_restore_py.register_before_snapshot(prime, settings, api, repository)
        snapshot_restore_py.register_after_restore(after_restore)
    elif os.environ.get("PAYMENTS_PRIME_AT_INIT", "").lower() == "true":
        prime(settings, api, repository)
