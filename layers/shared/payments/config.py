"""Process configuration, read once from environment variables into a typed model."""

from __future__ import annotations

import os
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Only for local development (`serve`, tests, `sam local`): the deployed stack always sets
# JWT_SECRET_ARN, and the secret then comes from Secrets Manager.
DEVELOPMENT_JWT_SECRET = "local-development-secret-change-me"  # noqa: S105 - the documented local default


class Settings(BaseModel):
    """Everything the handlers and services are configured with."""

    model_config = ConfigDict(frozen=True)

    willson_table: str = "WillsonTable"
    ledger_table: str = "LedgerTable"
    otp_secret_table: str = "OtpSecretTable"  # noqa: S105 - a table name
    jwt_secret_arn: str | None = None
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    # Deployed in AWS Lambda (not `sam local`): the signing secret must come from JWT_SECRET_ARN.
    in_lambda: bool = False
    honeypot_app_id: int = 1
    honeypot_point_id: int = 1
    max_listed_willsoners: int = Field(default=30, ge=1, le=100)
    swap_max_attempts: int = Field(default=5, ge=1, le=20)
    swap_replay_seconds: int = Field(default=600, ge=1, le=3600)
    otp_max_failures: int = 5
    otp_failure_window_seconds: int = 900
    otp_lock_seconds: int = 900
    # How long an environment keeps what every request reads alike (apps, coins, rates, tickets, listing
    # pages) before reading it again; 0: read on every request (repositories/shared_items.py).
    shared_items_cache_seconds: float = Field(default=30, ge=0, le=60)
    # Browser origins allowed to call the API (CORS); empty: CORS off, no origin is allowed.
    cors_allowed_origins: tuple[str, ...] = ()

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """A comma-separated list (CORS_ALLOWED_ORIGINS) or a sequence of origins, each `scheme://host[:port]`."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return value
        return tuple(dict.fromkeys(normalise_origin(str(item)) for item in items if str(item).strip()))

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mapping = {
            "willson_table": "WILLSON_TABLE_NAME",
            "ledger_table": "LEDGER_TABLE_NAME",
            "otp_secret_table": "OTP_SECRET_TABLE_NAME",
            "jwt_secret_arn": "JWT_SECRET_ARN",
            "jwt_secret": "JWT_SECRET",
            "honeypot_app_id": "HONEYPOT_APP_ID",
            "honeypot_point_id": "HONEYPOT_POINT_ID",
            "max_listed_willsoners": "MAX_LISTED_WILLSONERS",
            "swap_max_attempts": "SWAP_MAX_ATTEMPTS",
            "swap_replay_seconds": "SWAP_REPLAY_SECONDS",
            "otp_max_failures": "OTP_MAX_FAILURES",
            "otp_failure_window_seconds": "OTP_FAILURE_WINDOW_SECONDS",
            "otp_lock_seconds": "OTP_LOCK_SECONDS",
            "shared_items_cache_seconds": "SHARED_ITEMS_CACHE_SECONDS",
            "cors_allowed_origins": "CORS_ALLOWED_ORIGINS",
        }
        values: dict[str, object] = {field: env[name] for field, name in mapping.items() if env.get(name)}
        values["in_lambda"] = bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and env.get("AWS_SAM_LOCAL") != "true"
        return cls.model_validate(values)


def normalise_origin(text: str) -> str:
    """An origin as browsers send it (`https://dash.example.com`, `http://127.0.0.1:8080`), or ValueError."""
    origin = text.strip().rstrip("/")
    parts = urlsplit(origin)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"not an origin (scheme://host[:port]): {text.strip()!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (environment read once)."""
    return Settings.from_environ()
