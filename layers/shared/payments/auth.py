"""Access-token verification (HS256 JWT, `au_id` claim, `exp` in seconds or milliseconds)."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import NamedTuple, TypeGuard

import jwt

from payments.errors import InvalidToken, TokenExpired

ALGORITHM = "HS256"
# The existing issuer writes `exp` in milliseconds; any value above this is milliseconds.
_MILLISECONDS_THRESHOLD = 10**11


class Caller(NamedTuple):
    """The authenticated user of a request (a NamedTuple: immutable, and cheap to create at import)."""

    au_id: int


def _is_integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_access_token(token: str | None, secret: str, now: float | None = None) -> Caller:
    """Check signature first, then claims, then expiry; return the caller.

    Raises InvalidToken for anything but a well-signed token with integer `au_id` and numeric
    `exp`, and TokenExpired once `exp` has passed. A token that verified once is remembered by
    this execution environment (signature and claims), its expiry checked again on every call.
    """
    if not token:
        raise InvalidToken("missing token")
    au_id, expires_at = _verified_claims(token, secret)
    if (time.time() if now is None else now) >= expires_at:
        raise TokenExpired()
    return Caller(au_id=au_id)


@lru_cache(maxsize=1024)
def _verified_claims(token: str, secret: str) -> tuple[int, float]:
    """(au_id, expiry in seconds) of a well-signed token; InvalidToken (never cached) otherwise."""
    try:
        # Expiry is checked by the caller, because PyJWT reads `exp` as seconds only.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "au_id"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(type(error).__name__) from error
    au_id = claims.get("au_id")
    expires = claims.get("exp")
    if not _is_integer(au_id) or au_id <= 0 or au_id >= 2**63:
        raise InvalidToken("au_id claim is not a positive integer")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        raise InvalidToken("exp claim is not a number")
    return au_id, expires / 1000 if expires > _MILLISECONDS_THRESHOLD else expires


def issue_access_token(
    au_id: int, secret: str, ttl_seconds: int = 3600, now: float | None = None, milliseconds: bool = False
) -> str:
    """Sign a token the way the existing issuer does (used by the CLI and tests)."""
    issued = time.time() if now is None else now
    expires = int((issued + ttl_seconds) * 1000) if milliseconds else int(issued + ttl_seconds)
    return jwt.encode({"au_id": au_id, "exp": expires}, secret, algorithm=ALGORITHM)
