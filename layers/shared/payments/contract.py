"""What a route takes and answers, for its handler and for the OpenAPI document: `RouteContract`.

Each route's contract (envelopes, examples, catalogued errors) is in `payments.routes.<route>`, so a
handler imports only its own route's models. Each handler registers its route with its contract
(`payments.api.Api`), so the OpenAPI document (`payments_cli.openapi`, through Powertools' own
generator) says what the handler does: request and success schemas come from the pydantic models,
every error response from the route's catalogue in `payments.errors`, rendered in the route's
envelope. Nothing here is imported from Powertools' OpenAPI package, and no JSON schema is built at
import: documenting costs the handlers nothing at a cold start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel

from payments.errors import CatalogueEntry, PaymentsError, ServiceBusy
from payments.json_body import MAX_BODY_BYTES

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

JSON = "application/json"
RETRY_AFTER: OpenAPIResponseHeader = {
    "description": "Whole seconds to wait before sending the same request again (DynamoDB was busy).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 99},
}


BODY_RULES = (
    f"The body must be one JSON object of at most {MAX_BODY_BYTES} bytes, without duplicate keys, NaN or "
    "Infinity; Content-Type is not read. Numbers are read exactly (never through binary floats) and types "
    "are strict: an integer field takes a JSON integer written as such (`1577`, not `1577.0` or `1.577e3`); "
    "a string, boolean or fraction where an integer is expected is refused, never coerced."
)


class RouteContract(NamedTuple):
    """What one route takes and answers; its handler registers it, the OpenAPI document reads it."""

    path: str
    operation_id: str
    name: str  # in logs: "<name> failed"
    tag: str
    security_scheme: str
    summary: str
    description: str
    request_model: type[BaseModel]
    request_description: str
    request_examples: dict[str, dict[str, Any]]  # name → {"summary", "value"}
    # The (success, error) envelopes as pydantic models, built on first call: only the document needs them
    # (the handler answers the envelope as a dict around its data model, and errors with render_error).
    envelopes: Callable[[], tuple[type[BaseModel], type[BaseModel]]]
    success_description: str
    success_examples: dict[str, dict[str, Any]]
    catalogue: dict[str, CatalogueEntry]
    render_error: Callable[[PaymentsError], tuple[int, dict[str, Any]]]

    @property
    def success_model(self) -> type[BaseModel]:
        """The success envelope (built on first use)."""
        return self.envelopes()[0]

    @property
    def error_model(self) -> type[BaseModel]:
        """The error envelope (built on first use)."""
        return self.envelopes()[1]

    @property
    def code_field(self) -> str:
        """The name, on the wire, of the envelope's code field (`code` or `return`)."""
        return next(field.alias or name for name, field in self.error_model.model_fields.items() if name != "message")

    def responses(self) -> dict[int, OpenAPIResponse]:
        """200 with the success envelope, then one response per HTTP status of the catalogue."""
        success: OpenAPIResponse = {
            "description": self.success_description,
            "content": {JSON: {"model": self.success_model, "examples": self.success_examples}},
        }
        return {200: success, **self._error_responses()}

    def _error_responses(self) -> dict[int, OpenAPIResponse]:
        """Each status: the envelope, narrowed to the catalogue entries answered with it, each an example."""
        descriptions = _kind_descriptions()
        envelope = self.error_model.model_json_schema(mode="serialization")
        field = self.code_field
        envelope["properties"][field]["enum"] = sorted({entry.code for entry in self.catalogue.values()}, key=str)
        by_status: dict[int, list[tuple[str, CatalogueEntry]]] = defaultdict(list)
        for kind, entry in self.catalogue.items():
            by_status[entry.status].append((kind, entry))
        responses: dict[int, OpenAPIResponse] = {}
        for status in sorted(by_status):
            variants: list[dict[str, Any]] = []
            examples: dict[str, Any] = {}
            for kind, entry in by_status[status]:
                message: dict[str, Any] = (
                    {"type": "string"} if entry.detail_overrides_message else {"const": entry.message}
                )
                variant = {"type": "object", "properties": {field: {"const": entry.code}, "message": message}}
                if variant not in variants:
                    variants.append(variant)
                summary = descriptions.get(kind, kind)
                if entry.detail_overrides_message:
                    summary += " The message names the field or the problem."
                shared = sum(1 for other in self.catalogue.values() if other.code == entry.code) > 1
                examples[f"{entry.code} ({kind})" if shared else f"{entry.code}"] = {
                    "summary": summary,
                    "value": {field: entry.code, "message": entry.message},
                }
            listed = ", ".join(dict.fromkeys(str(entry.code) for _, entry in by_status[status]))
            responses[status] = {
                "description": f"Refused: {listed}.",
                "content": {JSON: {"schema": {**envelope, "anyOf": variants}, "examples": examples}},
            }
            if any(kind == ServiceBusy.kind for kind, _ in by_status[status]):
                responses[status]["headers"] = {"Retry-After": RETRY_AFTER}
        return responses


def _kind_descriptions() -> dict[str, str]:
    """What each kind of refusal means, from the docstrings of the error classes."""
    descriptions: dict[str, str] = {}
    pending = list(PaymentsError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # only the catalogue's own classes: whatever else is imported cannot change the document
        if cls.__module__ == PaymentsError.__module__ and cls.__doc__:
            descriptions.setdefault(cls.kind, " ".join(cls.__doc__.split()))
    return descriptions
