"""Lambda handler of POST /v1.0/db/swap (points dashboard: points ⇄ coins, OTP-confirmed)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from payments.auth import Caller
from payments.aws import dynamodb_client
from payments.config import get_settings
from payments.errors import InternalError, OtpInvalid, PaymentsError, SwapConflict
from payments.http import caller_from_bearer, dashboard_error_response, raw_json_response, request_json
from payments.json_body import dumps
from payments.models.swap import SwapRequest
from payments.observability import logger, metrics, tracer
from payments.priming import prime_on_init
from payments.repositories.ledger import LedgerRepository
from payments.services.otp import LockoutPolicy
from payments.services.swap import SwapPolicy, execute_swap, request_fingerprint

app = APIGatewayRestResolver()
settings = get_settings()
ledger = LedgerRepository(dynamodb_client(), settings.ledger_table)
policy = SwapPolicy(
    max_attempts=settings.swap_max_attempts,
    lockout=LockoutPolicy(
        max_failures=settings.otp_max_failures,
        window_seconds=settings.otp_failure_window_seconds,
        lock_seconds=settings.otp_lock_seconds,
    ),
)
clock = time.time
idempotency = IdempotencyConfig(expires_after_seconds=settings.idempotency_ttl_seconds)
persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb_client())


@dataclass
class SwapOutcome:
    """What the swap itself decided, kept in case Powertools then fails to record it."""

    body: str | None = None
    refusal: PaymentsError | None = None


# A fixed key prefix: every execution environment (and `serve`'s copies of this module) shares the records.
@idempotent_function(
    data_keyword_argument="fingerprinted", persistence_store=persistence, config=idempotency, key_prefix="swap"
)
def swap_once(fingerprinted: dict[str, Any], request: SwapRequest, outcome: SwapOutcome) -> dict[str, Any]:
    """Run one swap; a success is stored and replayed for the same account and body, a refusal is not."""
    caller = Caller(au_id=int(fingerprinted["au_id"]))
    try:
        value = execute_swap(ledger, caller, request, fingerprinted["fingerprint"], policy, clock=clock)
    except PaymentsError as refusal:
        outcome.refusal = refusal
        raise
    outcome.body = dumps({"return": 0, "message": "success", "value": value.model_dump()})
    return {"body": outcome.body}


@app.post("/v1.0/db/swap")
def swap() -> Response:
    body = request_json(app.current_event)
    caller = caller_from_bearer(app.current_event, settings)
    fingerprint = request_fingerprint(caller.au_id, body)
    outcome = SwapOutcome()
    try:
        result = swap_once(
            fingerprinted={"au_id": caller.au_id, "fingerprint": fingerprint},
            request=SwapRequest.from_body(body),
            outcome=outcome,
        )
    except IdempotencyAlreadyInProgressError as error:
        raise SwapConflict("the same request is in progress") from error
    except IdempotencyPersistenceLayerError:
        # The swap's own answer stands even if its idempotency record could not be saved or
        # deleted: a committed swap is never reported as failed (a retry is guarded by the
        # OTP step's fingerprint), and a refusal is still that refusal.
        logger.exception("idempotency record not updated")
        if outcome.body is not None:
            result = {"body": outcome.body}
        elif outcome.refusal is not None:
            raise outcome.refusal from None
        else:
            raise
    metrics.add_metric(name="SwapSucceeded", unit=MetricUnit.Count, value=1)
    return raw_json_response(200, result["body"])


@app.exception_handler(PaymentsError)
def refused(error: PaymentsError) -> Response:
    metrics.add_metric(name=f"SwapRefused{error.kind.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    if isinstance(error, OtpInvalid):
        metrics.add_metric(name="OtpFailure", unit=MetricUnit.Count, value=1)
    return dashboard_error_response(error)


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.exception("swap failed")
    return dashboard_error_response(InternalError())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)


prime_on_init(lambda_handler, "/v1.0/db/swap", {"event_id": 3, "otp_code": "000000", "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -10}, "coin": {"coin_id": 2, "adjust_coin_quantity": 1}}, {"Authorization": "Bearer {token}"}, {"TransactWriteItems": settings.ledger_table, "UpdateItem": settings.ledger_table})  # noqa: E501
