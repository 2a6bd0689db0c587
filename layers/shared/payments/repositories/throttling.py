"""DynamoDB's refusals for throughput, told apart from every other error (SPEC: busy, retry after)."""

from __future__ import annotations

from botocore.exceptions import ClientError

# What DynamoDB answers when a request exceeds a table's, a partition's or the account's throughput.
THROTTLING_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
# Why a transaction's item was cancelled for throughput (on-demand and provisioned tables alike).
THROTTLING_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})


class Throttled(Exception):
    """DynamoDB refused a request for throughput (botocore's own retries included): nothing of it was done."""


def is_throttling(error: ClientError) -> bool:
    """A throughput refusal, including a transaction cancelled for throughput (botocore does not retry that)."""
    code = error.response.get("Error", {}).get("Code")
    if code in THROTTLING_CODES:
        return True
    reasons = error.response.get("CancellationReasons") or []
    return code == "TransactionCanceledException" and any(r.get("Code") in THROTTLING_REASONS for r in reasons)
