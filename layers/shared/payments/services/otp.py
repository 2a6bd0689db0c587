"""TOTP confirmation (RFC 6238 through pyotp) and the lockout rule for repeated wrong codes."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
from pyotp.utils import strings_equal

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


def locked_until_ms(failures_ms: list[int], policy: LockoutPolicy) -> int:
    """When the lock caused by these failures ends (0 if they never reached the limit)."""
    ordered = sorted(int(value) for value in failures_ms)
    window_ms = policy.window_seconds * 1000
    until = 0
    for index in range(policy.max_failures - 1, len(ordered)):
        if ordered[index] - ordered[index - policy.max_failures + 1] <= window_ms:
            until = max(until, ordered[index] + policy.lock_seconds * 1000)
    return until
