"""Lambda handler of POST /api/v1/asker/payment/progress (Willson concern payment, step 1)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from payments.api import Api
from payments.aws import DYNAMODB_CALL_WORST_CASE_MS, dynamodb_client
from payments.config import get_settings
from payments.errors import InvalidParameter
from payments.http import caller_from_x_token, json_response, request_json
from payments.models.payment_progress import PaymentProgressRequest
from payments.observability import metrics
from payments.priming import prime_on_init
from payments.repositories.shared_items import SharedItemCache
from payments.repositories.willson import WillsonRepository
from payments.routes.payment_progress import CONTRACT, success_body
from payments.services.payment_progress import progress_payment
from payments.services.time_budget import TimeBudget

settings = get_settings()
shared_items = SharedItemCache(settings.shared_items_cache_seconds)
repository = WillsonRepository(dynamodb_client(), settings.willson_table, settings.ledger_table, shared_items)
api = Api(CONTRACT, settings)
app = api.app


@api.route
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
    return json_response(200, success_body(data))


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


lambda_handler = api.lambda_handler
prime_on_init(settings, api, repository)
