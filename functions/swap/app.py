"""Lambda handler of POST /v1.0/db/swap (points dashboard: points ⇄ coins, OTP-confirmed)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from payments import priming_items
from payments.aws import DYNAMODB_CALL_WORST_CASE_MS, dynamodb_client
from payments.config import get_settings
from payments.errors import InternalError, OtpInvalid, OtpLocked, PaymentsError, SwapOutcomeUndetermined
from payments.http import (
    PaymentsResolver,
    caller_from_bearer,
    dashboard_error_response,
    raw_json_response,
    request_json,
)
from payments.json_body import dumps
from payments.models.swap import SwapRequest
from payments.observability import logger, metrics, tracer
from payments.priming import prime_on_init
from payments.repositories.ledger import LedgerRepository
from payments.services.otp import LockoutPolicy
from payments.services.swap import SwapPolicy, execute_swap, request_fingerprint
from payments.services.time_budget import TimeBudget

app = PaymentsResolver(get_settings())
settings = get_settings()
ledger = LedgerRepository(dynamodb_client(), settings.ledger_table, settings.otp_secret_table)
policy = SwapPolicy(
    max_attempts=settings.swap_max_attempts,
    lockout=LockoutPolicy(
        max_failures=settings.otp_max_failures,
        window_seconds=settings.otp_failure_window_seconds,
        lock_seconds=settings.otp_lock_seconds,
    ),
    replay_seconds=settings.swap_replay_seconds,
)
clock = time.time


@app.post("/v1.0/db/swap")
def swap() -> Response[str]:
    body = request_json(app.current_event)
    caller = caller_from_bearer(app.current_event, settings)
    context = app.lambda_context
    budget = TimeBudget(remaining_ms=context.get_remaining_time_in_millis, call_ms=DYNAMODB_CALL_WORST_CASE_MS)
    outcome = execute_swap(
        ledger,
        caller,
        SwapRequest.from_body(body),
        request_fingerprint(caller.au_id, body),
        policy,
        budget,
        clock=clock,
    )
    metrics.add_metric(name="SwapReplayed" if outcome.replayed else "SwapSucceeded", unit=MetricUnit.Count, value=1)
    if outcome.race_retries:
        metrics.add_metric(name="SwapRaceRetried", unit=MetricUnit.Count, value=outcome.race_retries)
    return raw_json_response(200, dumps({"return": 0, "message": "success", "value": outcome.value.model_dump()}))


@app.exception_handler(PaymentsError)  # type: ignore[untyped-decorator]  # Powertools leaves it unannotated
def refused(error: PaymentsError) -> Response[str]:
    metrics.add_metric(name=f"SwapRefused{error.kind.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    if isinstance(error, OtpInvalid):
        metrics.add_metric(name="OtpFailure", unit=MetricUnit.Count, value=1)
    elif isinstance(error, OtpLocked):
        metrics.add_metric(name="OtpLocked", unit=MetricUnit.Count, value=1)
    elif isinstance(error, SwapOutcomeUndetermined):
        metrics.add_metric(name="SwapOutcomeUnknown", unit=MetricUnit.Count, value=1)
        logger.error("swap outcome unknown: the client's retry will read it", extra={"reason": str(error)})
    elif isinstance(error, InternalError):
        logger.error("swap failed", extra={"reason": str(error)})
    return dashboard_error_response(error)


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]  # Powertools leaves it unannotated
def unexpected(error: Exception) -> Response[str]:
    logger.exception("swap failed")
    return dashboard_error_response(InternalError())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


prime_on_init(lambda_handler, "/v1.0/db/swap", priming_items.SWAP_BODY, {"Authorization": "Bearer {token}"})
