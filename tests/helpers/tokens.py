"""Access tokens signed with the development secret (the one conftest gives the handlers as JWT_SECRET)."""

from __future__ import annotations

from typing import Any

from payments.auth import issue_access_token
from payments.config import DEVELOPMENT_JWT_SECRET

SECRET = DEVELOPMENT_JWT_SECRET


def token(au_id: int, ttl: int = 3600, **kwargs: Any) -> str:
    return issue_access_token(au_id, SECRET, ttl, **kwargs)
