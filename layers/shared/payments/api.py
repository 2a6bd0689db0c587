"""One factory for both handlers: the resolver, the error rendering and the decorated `lambda_handler`.

A handler module builds `api = Api(payments.routes.swap.CONTRACT, ...)`, registers its endpoint with `@api.route`
and exports `lambda_handler = api.lambda_handler`; the endpoint only parses, authenticates, calls
its domain service and shapes the response. Everything else is here, the same for both routes:

- Powertools' REST resolver with the project's CORS (`payments.http.PaymentsResolver`);
- every PaymentsError answered from the route's catalogue in the route's envelope (ServiceBusy with
  its Retry-After header), an InternalError logged; any other exception logged with its traceback
  and answered as the catalogue's internal error;
- the Lambda entry point under Logger (correlation id from API Gateway), Tracer and Metrics.

What the route documents (request model and examples, catalogued responses) is attached only when
`document()` is called, by `payments_cli.openapi`: a cold start never builds a JSON schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from payments.config import Settings
from payments.contract import RouteContract
from payments.errors import InternalError, PaymentsError, ServiceBusy
from payments.http import PaymentsResolver, json_response
from payments.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

Endpoint = Callable[[], Response[str]]


class Api:
    """One route's resolver, error rendering and Lambda entry point, built from its contract.

    `on_refusal` sees every PaymentsError before it is answered (the swap counts them in metrics);
    `internal_log_messages` names the log line of an InternalError subclass (default: "<name> failed").
    """

    def __init__(
        self,
        contract: RouteContract,
        settings: Settings,
        *,
        on_refusal: Callable[[PaymentsError], None] | None = None,
        internal_log_messages: Mapping[type[InternalError], str] | None = None,
    ) -> None:
        self.contract = contract
        self.app = PaymentsResolver(settings)
        self._on_refusal = on_refusal
        self._internal_log_messages = dict(internal_log_messages or {})
        # Filled by document(); Powertools keeps this very dict on the route and reads it only to document.
        self._responses: dict[int, OpenAPIResponse] = {}
        self._endpoint: Endpoint | None = None
        self.app.exception_handler(PaymentsError)(self._refused)
        self.app.exception_handler(Exception)(self._unexpected)

        app = self.app

        @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
        @tracer.capture_lambda_handler(capture_response=False)
        @metrics.log_metrics
        def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return app.resolve(event, context)

        self.lambda_handler: Callable[[dict[str, Any], Any], dict[str, Any]] = lambda_handler

    def route(self, endpoint: Endpoint) -> Endpoint:
        """Register `endpoint` as the contract's POST route; `lambda_handler` then belongs to its module."""
        contract = self.contract
        self._endpoint = endpoint
        self.lambda_handler.__module__ = endpoint.__module__
        self.lambda_handler.__qualname__ = "lambda_handler"
        self.app.post(
            contract.path,
            summary=contract.summary,
            description=contract.description,
            responses=self._responses,
            tags=[contract.tag],
            operation_id=contract.operation_id,
            security=[{contract.security_scheme: []}],
        )(endpoint)
        return endpoint

    def error_response(self, error: PaymentsError) -> Response[str]:
        """The catalogued answer to `error`, in this route's envelope (busy: with its Retry-After, SPEC §7)."""
        status, body = self.contract.render_error(error)
        response = json_response(status, body)
        if isinstance(error, ServiceBusy):
            response.headers["Retry-After"] = str(error.retry_after_seconds)
            if self.app.cors_origins:  # a page can read it (stripped with the rest for other origins)
                response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        return response

    def _refused(self, error: PaymentsError) -> Response[str]:
        if self._on_refusal is not None:
            self._on_refusal(error)
        if isinstance(error, InternalError):
            message = next(
                (text for kind, text in self._internal_log_messages.items() if isinstance(error, kind)),
                f"{self.contract.name} failed",
            )
            logger.error(message, extra={"reason": str(error)})
        return self.error_response(error)

    def _unexpected(self, error: Exception) -> Response[str]:
        logger.exception(f"{self.contract.name} failed")
        return self.error_response(InternalError())

    def document(self) -> None:
        """Attach what the OpenAPI document says of the route: its responses and its request body.

        The body is declared on the endpoint's signature, where Powertools' generator reads it; with
        validation off (the handlers judge their own bodies), Powertools never passes it.
        """
        from aws_lambda_powertools.event_handler.openapi.models import Example
        from aws_lambda_powertools.event_handler.openapi.params import Body

        if self._endpoint is None:
            raise RuntimeError(f"{self.contract.path}: no endpoint registered")
        contract = self.contract
        self._responses.clear()
        self._responses.update(contract.responses())
        body = Body(
            description=contract.request_description,
            openapi_examples={name: Example(**example) for name, example in contract.request_examples.items()},
        )
        parameter = inspect.Parameter(
            "body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[contract.request_model, body]
        )
        self._endpoint.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
