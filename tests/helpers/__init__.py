"""The one set of test helpers: events, contexts, tokens, OTP codes, routes, the ledger, local processes.

`from helpers import api_event, call, token, ...`: each name lives in one submodule below and nowhere else
(conftest, swap_helpers and local_stack re-export some of them under their old names).

- helpers.events    API Gateway proxy events, the Lambda context, invoking a handler
- helpers.tokens    the development signing secret and access tokens
- helpers.otp       the demo authenticator secret, codes at an instant, waiting for a calm 30 s step
- helpers.routes    the two routes, request bodies and the catalogued answers, in-process calls
- helpers.ledger    what the ledger stores, read back (through the API, or from in-process moto's storage)
- helpers.processes `payments serve`, moto's server and the `payments` command in other processes
"""

from __future__ import annotations

from helpers.events import LambdaContext, api_event, call, preflight_event
from helpers.ledger import account_items, balances, ledger_items, swap_logs
from helpers.otp import DEMO_SECRET, T0, code_at, wait_for_calm_otp_step, wrong_code
from helpers.routes import PROGRESS, SWAP, error, exact_json, progress, rated_swap_body, swap, swap_body
from helpers.tokens import SECRET, token

__all__ = [
    "DEMO_SECRET",
    "PROGRESS",
    "SECRET",
    "SWAP",
    "T0",
    "LambdaContext",
    "account_items",
    "api_event",
    "balances",
    "call",
    "code_at",
    "error",
    "exact_json",
    "ledger_items",
    "preflight_event",
    "progress",
    "rated_swap_body",
    "swap",
    "swap_body",
    "swap_logs",
    "token",
    "wait_for_calm_otp_step",
    "wrong_code",
]
