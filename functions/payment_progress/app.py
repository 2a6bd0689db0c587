"""Lambda handler of POST /api/v1/asker/payment/progress (Willson concern payment, step 1)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from payments import priming_items
from payments.aws import DYNAMODB_CALL_WORST_CASE_MS, dynamodb_client
from payments.config import get_settings
from payments.errors import InternalError, InvalidParameter, PaymentsError
from payments.http import PaymentsResolver, caller_from_x_token, json_response, request_json, willson_error_response
from payments.models.payment_progress import PaymentProgressRequest
from payments.observability import logger, metrics, tracer
from payments.priming import prime_on_init
from payments.repositories.willson import WillsonRepository
from payments.services.payment_progress import progress_payment
from payments.services.time_budget import TimeBudget

app = PaymentsResolver(get_settings())
settings = get_settings()
repository = WillsonRepository(dynamodb_client(), settings.willson_table, settings.ledger_table)


@app.post("/api/v1/asker/payment/progress")
def payment_progress() -> Response[str]:
    body = request_json(app.current_event)
    caller = caller_from_x_token(app.current_event, settings)
    request = _parse_request(body)
    data = progress_payment(
        repository,
        caller,
        request,
        honeypot_app_id=settings.honeypot_app_id,
        honeypot_point_id=settings.honeypot_point_id,
        max_listed=settings.max_listed_willsoners,
        budget=TimeBudget(app.lambda_context.get_remaining_time_in_millis, DYNAMODB_CALL_WORST_CASE_MS),
    )
    metrics.add_metric(name="PaymentProgressServed", unit=MetricUnit.Count, value=1)
    return json_response(200, {"code": "success", "message": "success", "data": data.model_dump()})


def _parse_request(body: dict[str, Any]) -> PaymentProgressRequest:
    try:
        return PaymentProgressRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "missing":
            raise InvalidParameter(f"{field} is required") from None
        if field == "match_type":
            raise InvalidParameter("match_type must be 1 or 2") from None
        raise InvalidParameter(f"{field} must be an integer") from None


@app.exception_handler(PaymentsError)  # type: ignore[untyped-decorator]  # Powertools leaves it unannotated
def refused(error: PaymentsError) -> Response[str]:
    if isinstance(error, InternalError):
        logger.error("payment progress failed", extra={"reason": str(error)})
    return willson_error_response(error)


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]  # Powertools leaves it unannotated
def unexpected(error: Exception) -> Response[str]:
    logger.exception("payment progress failed")
    return willson_error_response(InternalError())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


prime_on_init(lambda_handler, "/api/v1/asker/payment/progress", priming_items.PROGRESS_BODY, {"x-token": "{token}"})
