"""The verified-token cache of payments.auth: expiry checked on every call, secrets never mixed."""

from __future__ import annotations

import time

import pytest

from payments.auth import issue_access_token, verify_access_token
from payments.errors import InvalidToken, TokenExpired

SECRET = "cache-test-secret"


def test_a_cached_token_still_expires() -> None:
    now = time.time()
    token = issue_access_token(7, SECRET, 60, now=now)
    assert verify_access_token(token, SECRET, now=now).au_id == 7  # verified, then remembered
    assert verify_access_token(token, SECRET, now=now + 59).au_id == 7
    with pytest.raises(TokenExpired):
        verify_access_token(token, SECRET, now=now + 60)


def test_a_token_verified_under_one_secret_is_refused_under_another() -> None:
    token = issue_access_token(8, SECRET, 60)
    assert verify_access_token(token, SECRET).au_id == 8
    with pytest.raises(InvalidToken):
        verify_access_token(token, "another-secret")


def test_a_refused_token_is_refused_every_time() -> None:
    forged = issue_access_token(9, "not-the-secret", 60)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verify_access_token(forged, SECRET)
