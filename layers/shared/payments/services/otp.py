"""TOTP confirmation (RFC 6238 through pyotp) and the lockout rule for repeated wrong codes."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
from pyotp.utils import strings_equal

from payments.models.ledger import OtpFailure, OtpGuard

INTERVAL_SECONDS = 30
_CODE = re.compile(r"^[0-9]{6}$")
# Steps t-1, t, t+1 are accepted; the current step is preferred when a code matches several.
_WINDOW = (0, -1, 1)


@dataclass(frozen=True)
class LockoutPolicy:
    """`max_failures` wrong codes within `window_seconds` lock OTP for `lock_seconds`."""

    max_failures: int = 5
    window_seconds: int = 900
    lock_seconds: int = 900


def is_well_formed(code: object) -> bool:
    return isinstance(code, str) and bool(_CODE.match(code))


def matching_steps(secret: str, code: str, now: float) -> list[int]:
    """The time steps within ±1 of now whose code is `code`, current step first."""
    totp = pyotp.TOTP(secret, interval=INTERVAL_SECONDS)
    current = current_step(now)
    return [current + offset for offset in _WINDOW if strings_equal(totp.generate_otp(current + offset), code)]


def current_step(now: float) -> int:
    return int(now) // INTERVAL_SECONDS


def after_failure(guard: OtpGuard, failure: OtpFailure, policy: LockoutPolicy) -> OtpGuard:
    """The guard once this wrong code is counted: failures older than the window are forgotten,
    and the failure that reaches the limit locks OTP. At most `max_failures` are ever kept."""
    since_ms = failure.at_ms - policy.window_seconds * 1000
    recent = tuple(kept for kept in guard.failures if kept.at_ms > since_ms)[-(policy.max_failures - 1):]
    failures = (*recent, failure) if policy.max_failures > 1 else (failure,)
    locked_until_ms = guard.locked_until_ms
    if len(failures) >= policy.max_failures:
        locked_until_ms = max(locked_until_ms, failure.at_ms + policy.lock_seconds * 1000)
    # Versions never go back, even after the guard expired (TTL) and was written anew: at least
    # the write's own time in ms, so no writer holding an older version can match it again.
    version = max(guard.version + 1, failure.at_ms)
    return OtpGuard(version=version, failures=failures, locked_until_ms=locked_until_ms)


def guard_expires_at(guard: OtpGuard, policy: LockoutPolicy) -> int:
    """Epoch seconds after which the guard no longer matters (TTL clean-up)."""
    last_ms = max([failure.at_ms for failure in guard.failures], default=0)
    return max(guard.locked_until_ms, last_ms + policy.window_seconds * 1000) // 1000 + 1
