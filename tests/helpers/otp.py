"""TOTP codes of the demo authenticator secret (account 19 of the demo fixture), at a fixed or the real time."""

from __future__ import annotations

import time

import pyotp

DEMO_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T0 = 1_795_000_000.0  # a fixed instant, in the middle of a 30 s step


def code_at(when: float, secret: str = DEMO_SECRET, counter_offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(when, counter_offset=counter_offset)


def wrong_code(when: float = T0, secret: str = DEMO_SECRET) -> str:
    """A well-formed code that is not the one of `when`'s step."""
    return "000000" if code_at(when, secret) != "000000" else "111111"


def wait_for_calm_otp_step(margin: float = 6.0) -> float:
    """Sleep until at least `margin` seconds remain in the current 30 s step and 2 s have passed in it.

    For tests against a server on the real clock: a code taken now is still the current one when it arrives.
    One sleep of exactly the time needed, not a polling loop.
    """
    into = time.time() % 30
    if into < 2.0:
        time.sleep(2.0 - into)
    elif into > 30 - margin:
        time.sleep(30 - into + 2.0)
    return time.time()
