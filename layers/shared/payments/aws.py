"""boto3 clients, created once per process and replaceable by tests."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode with a small budget: a Lambda behind API Gateway has 29 s at most,
# and the swap has its own optimistic retry loop on top.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=64,
)


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    """The process's DynamoDB client (honours AWS_ENDPOINT_URL_DYNAMODB and AWS_REGION)."""
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)
