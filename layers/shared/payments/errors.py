"""Domain errors and the one catalogue that renders them in both APIs' envelopes.

Every refusal the service can give is an exception below; the handlers never build an error
body themselves: the handler factory (payments.api) answers each with its route's catalogue.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class PaymentsError(Exception):
    """Base of every refusal the service answers with a catalogued error."""

    kind: str = "internal"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.kind)
        self.detail = detail


class InvalidToken(PaymentsError):
    """The access token is missing, malformed, badly signed or lacks a required claim."""

    kind = "invalid_token"


class TokenExpired(PaymentsError):
    """The access token is well signed but its `exp` has passed."""

    kind = "token_expired"


class InvalidBody(PaymentsError):
    """The request body is not a JSON object."""

    kind = "invalid_body"


class InvalidParameter(PaymentsError):
    """A Willson request field is missing or has the wrong type or value."""

    kind = "invalid_parameter"


class ConcernNotFound(PaymentsError):
    """The concern does not exist or belongs to someone else."""

    kind = "not_found"


class WillsonerNotFound(PaymentsError):
    """Nobody can be listed for the concern."""

    kind = "willsoner_not_found"


class ServiceBusy(PaymentsError):
    """DynamoDB refused for throughput and the retries that fit did not get through.

    The refused attempts committed nothing (no OTP step consumed); if an earlier attempt's answer was lost, that
    one may have: the same request sent again gets its committed answer, or is judged afresh.
    """

    kind = "service_busy"

    def __init__(self, detail: str | None = None, retry_after_seconds: int = 1) -> None:
        super().__init__(detail)
        # whole seconds, 1-99: what the answer's Retry-After header says
        self.retry_after_seconds = min(99, max(1, retry_after_seconds))


class InternalError(PaymentsError):
    """An unexpected failure; rendered without internals."""

    kind = "internal"


class OutOfTime(InternalError):
    """The invocation has too little time left for another DynamoDB call: nothing more is sent.

    Answered as an internal error rather than left to the function's timeout, whose answer would be
    API Gateway's own 502 body instead of the catalogued one.
    """


class WillsonReadFailed(InternalError):
    """DynamoDB could not give what a payment-progress request reads (answered without internals)."""


class SwapOutcomeUndetermined(InternalError):
    """A swap transaction was sent and nothing could tell whether it committed (its retry will)."""


class EventIdInvalid(PaymentsError):
    """Swap event_id missing or not 3/4."""

    kind = "event_invalid"


class AppIdInvalid(PaymentsError):
    """Swap app_id missing, malformed or unknown."""

    kind = "app_invalid"


class PointIdInvalid(PaymentsError):
    """Swap point_id missing, malformed or not a point of the app."""

    kind = "point_invalid"


class PointQuantityInsufficient(PaymentsError):
    """Not enough points for the swap."""

    kind = "point_insufficient"


class CoinIdInvalid(PaymentsError):
    """Swap coin_id missing, malformed, unknown, not swappable, or no wallet for it."""

    kind = "coin_invalid"


class CoinQuantityInsufficient(PaymentsError):
    """Not enough coins for the swap."""

    kind = "coin_insufficient"


class AdjustQuantityInvalid(PaymentsError):
    """Adjust quantities missing, zero, of the wrong sign, out of range, too precise or off the rate."""

    kind = "adjust_invalid"


class AppPointAccountMissing(PaymentsError):
    """The caller has no account for the app point."""

    kind = "app_point_missing"


class CoinDataReadFailed(PaymentsError):
    """Reading the caller's coin data failed."""

    kind = "coin_read_failed"


class MemberDataReadFailed(PaymentsError):
    """Reading the caller's point/member data failed."""

    kind = "member_read_failed"


class OtpInvalid(PaymentsError):
    """OTP code wrong, malformed, or no OTP enrolled."""

    kind = "otp_invalid"


class OtpAlreadyUsed(PaymentsError):
    """The code's time step was already accepted for this account."""

    kind = "otp_used"


class OtpLocked(PaymentsError):
    """OTP locked after repeated failures."""

    kind = "otp_locked"


class SwapConflict(PaymentsError):
    """Optimistic retries exhausted under contention."""

    kind = "swap_conflict"


class CatalogueEntry(NamedTuple):
    """How one kind of error is answered in one API (a NamedTuple: immutable, and cheap to create at import)."""

    status: int
    code: str | int
    message: str
    detail_overrides_message: bool = False


WILLSON_CATALOGUE: dict[str, CatalogueEntry] = {
    "invalid_token": CatalogueEntry(401, "invalid_token", "Access token is invalid"),
    "token_expired": CatalogueEntry(401, "access_token_expired", "Access token expired"),
    "invalid_body": CatalogueEntry(400, "invalid_parameter", "Request body must be a JSON object", True),
    "invalid_parameter": CatalogueEntry(400, "invalid_parameter", "Invalid parameter", True),
    "not_found": CatalogueEntry(404, "not_found", "Result not found"),
    "willsoner_not_found": CatalogueEntry(404, "willsoner_not_found", "Willsoner not found."),
    "service_busy": CatalogueEntry(503, "service_busy", "Service busy, try again"),
    "internal": CatalogueEntry(500, "internal_error", "Internal server error"),
}

DASHBOARD_CATALOGUE: dict[str, CatalogueEntry] = {
    "event_invalid": CatalogueEntry(400, 32100, "EventID is invalid"),
    "app_invalid": CatalogueEntry(400, 32101, "AppID is invalid"),
    "point_invalid": CatalogueEntry(400, 32102, "PointID is invalid"),
    "point_insufficient": CatalogueEntry(409, 32103, "point quantity is invalid"),
    "coin_invalid": CatalogueEntry(400, 32104, "CoinID is invalid"),
    "coin_insufficient": CatalogueEntry(409, 32105, "Coin quantity is invalid"),
    "adjust_invalid": CatalogueEntry(400, 32106, "Adjust quantity is invalid"),
    "app_point_missing": CatalogueEntry(404, 32201, "App point information does not exist"),
    "internal": CatalogueEntry(500, 32202, "Unknown swap error"),
    "coin_read_failed": CatalogueEntry(500, 34004, "GetMeCoinList DB Scan Error"),
    "member_read_failed": CatalogueEntry(500, 34005, "GetListMembers DB Scan Error"),
    "invalid_token": CatalogueEntry(401, 30001, "Access token is invalid"),
    "token_expired": CatalogueEntry(401, 30002, "Access token expired"),
    "otp_invalid": CatalogueEntry(401, 32107, "OTP code is invalid"),
    "otp_used": CatalogueEntry(409, 32108, "OTP code already used"),
    "otp_locked": CatalogueEntry(429, 32109, "Too many OTP attempts"),
    "invalid_body": CatalogueEntry(400, 32110, "Request body is invalid"),
    "swap_conflict": CatalogueEntry(409, 32203, "Swap conflict, try again"),
    "service_busy": CatalogueEntry(503, 32204, "Service busy, try again"),
}


def _entry(catalogue: dict[str, CatalogueEntry], error: PaymentsError) -> CatalogueEntry:
    return catalogue.get(error.kind, catalogue["internal"])


def willson_error_body(error: PaymentsError) -> tuple[int, dict[str, Any]]:
    """HTTP status and `{"code", "message"}` body of a Willson error."""
    entry = _entry(WILLSON_CATALOGUE, error)
    message = error.detail if entry.detail_overrides_message and error.detail else entry.message
    return entry.status, {"code": entry.code, "message": message}


def dashboard_error_body(error: PaymentsError) -> tuple[int, dict[str, Any]]:
    """HTTP status and `{"return", "message"}` body of a dashboard error."""
    entry = _entry(DASHBOARD_CATALOGUE, error)
    return entry.status, {"return": entry.code, "message": entry.message}
