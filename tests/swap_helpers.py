"""Old home of the swap tests' helpers: they live in the helpers package now (names kept importable)."""

from __future__ import annotations

from helpers.ledger import balances, ledger_items, swap_logs
from helpers.otp import DEMO_SECRET, T0, code_at
from helpers.routes import SWAP as PATH
from helpers.routes import error, swap, swap_body

__all__ = [
    "DEMO_SECRET",
    "PATH",
    "T0",
    "balances",
    "code_at",
    "error",
    "ledger_items",
    "swap",
    "swap_body",
    "swap_logs",
]
