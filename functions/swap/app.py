"""Lambda handler of POST /v1.0/db/swap (points dashboard: points ⇄ coins, OTP-confirmed)."""

from __future__ import annotations

import time

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit

from payments.api import Api
from payments.aws import DYNAMODB_CALL_WORST_CASE_MS, dynamodb_client
from payments.config import get_settings
from payments.errors import OtpInvalid, OtpLocked, PaymentsError, SwapOutcomeUndetermined
from payments.http import caller_from_bearer, json_response, request_json
from payments.models.swap import SwapRequest
from payments.observability import metrics
from payments.priming import prime_on_init
from payments.repositories.ledger import LedgerRepository
from payments.repositories.shared_items import SharedItemCache
from payments.routes.swap import CONTRACT, success_body
from payments.services.otp import LockoutPolicy
from payments.services.swap import SwapPolicy, execute_swap, request_fingerprint
from payments.services.time_budget import TimeBudget

settings = get_settings()
ledger = LedgerRepository(
    dynamodb_client(),
    settings.ledger_table,
    settings.otp_secret_table,
    SharedItemCache(settings.shared_items_cache_seconds),
)
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


def count_refusal(error: PaymentsError) -> None:
    metrics.add_metric(name=f"SwapRefused{error.kind.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    if isinstance(error, OtpInvalid):
        metrics.add_metric(name="OtpFailure", unit=MetricUnit.Count, value=1)
    elif isinstance(error, OtpLocked):
        metrics.add_metric(name="OtpLocked", unit=MetricUnit.Count, value=1)
    elif isinstance(error, SwapOutcomeUndetermined):
        metrics.add_metric(name="SwapOutcomeUnknown", unit=MetricUnit.Count, value=1)


api = Api(
    CONTRACT,
    settings,
    on_refusal=count_refusal,
    internal_log_messages={SwapOutcomeUndetermined: "swap outcome unknown: the client's retry will read it"},
)
app = api.app


@api.route
def swap() -> Response[str]:
    body = request_json(app.current_event)
    caller = caller_from_bearer(app.current_event, settings)
    budget = TimeBudget(
        remaining_ms=app.lambda_context.get_remaining_time_in_millis, call_ms=DYNAMODB_CALL_WORST_CASE_MS
    )
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
    return json_response(200, success_body(outcome.value))


lambda_handler = api.lambda_handler
prime_on_init(settings, api, ledger)
