"""Old home of the process helpers: they live in helpers.processes and helpers.otp now (names kept importable)."""

from __future__ import annotations

from helpers.otp import wait_for_calm_otp_step
from helpers.processes import PAYMENTS, LocalStack, dynamodb_at, moto_server

__all__ = ["PAYMENTS", "LocalStack", "dynamodb_at", "moto_server", "wait_for_calm_otp_step"]
