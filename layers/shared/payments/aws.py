"""boto3 clients, created once per process and replaceable by tests."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# A DynamoDB call answers in milliseconds; these bound the worst case of one call so that every
# retry budget fits in the function's time (docs/reliability.md has the arithmetic):
# botocore's standard mode makes at most 2 attempts here, each at most connect + read timeout,
# with at most 1 s of back-off between them (standard mode: random up to 2^0 s before the 1st retry).
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
TOTAL_MAX_ATTEMPTS = 2
_BACKOFF_BEFORE_RETRY_SECONDS = 1
DYNAMODB_CALL_WORST_CASE_MS = 1000 * (
    TOTAL_MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS)
    + (TOTAL_MAX_ATTEMPTS - 1) * _BACKOFF_BEFORE_RETRY_SECONDS
)

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": TOTAL_MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    max_pool_connections=64,
)


@lru_cache(maxsize=1)
def secrets_provider() -> Any:
    """Powertools' Secrets Manager provider with the same bounded timeouts as DynamoDB's client."""
    # Imported here: only the deployed path reads Secrets Manager, and it is slow to import.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto_config=_CLIENT_CONFIG)


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    """The process's DynamoDB client (honours AWS_ENDPOINT_URL_DYNAMODB and AWS_REGION)."""
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)
