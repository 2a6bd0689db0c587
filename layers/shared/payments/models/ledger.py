"""Typed values of the ledger that the swap service works on (the repository maps them to items).

Immutable records (typing.NamedTuple): creating a NamedTuple class at import costs about a tenth of
a frozen dataclass's (0.05 against 0.5 ms each on the bench machine), which `make bench` counts in
the swap's own share of its cold import.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

_NO_STEPS: Mapping[int, int] = MappingProxyType({})


class Account(NamedTuple):
    """A dashboard account's swap counters: optimistic version, last log id, consumed OTP steps."""

    au_id: int
    version: int = 0
    log_seq: int = 0
    # OTP time step → log id of the swap that consumed it (only recent steps are kept)
    consumed_otp_steps: Mapping[int, int] = _NO_STEPS


class PointAccount(NamedTuple):
    """The caller's balance of one app point; `mu_id` is the app's member id for the caller."""

    mu_id: int
    quantity: int
    # log id of the last swap that moved it (0: none), to tell a half-seen transaction
    last_log_id: int = 0


class Wallet(NamedTuple):
    """The caller's balance of one coin."""

    walletaddress: str
    quantity: Decimal
    last_log_id: int = 0


class SwappableApp(NamedTuple):
    """A catalogue app and the point ids it has."""

    app_id: int
    database_id: int
    point_ids: frozenset[int]


class Coin(NamedTuple):
    """A catalogue coin and how many fractional digits its quantities may have."""

    coin_id: int
    decimals: int


class OtpFailure(NamedTuple):
    """One wrong code, with the id of the request that sent it (so a resent write counts once)."""

    failure_id: str
    at_ms: int


class OtpGuard(NamedTuple):
    """An account's recent wrong codes (at most the lockout limit) and the lock they caused."""

    version: int = 0
    failures: tuple[OtpFailure, ...] = ()
    locked_until_ms: int = 0

    def is_locked(self, now_ms: int) -> bool:
        return now_ms < self.locked_until_ms

    def holds(self, failure_id: str) -> bool:
        return any(failure.failure_id == failure_id for failure in self.failures)


class SwapResult(NamedTuple):
    """What one committed swap did: the balances it replaced and wrote, and its log id."""

    au_id: int
    event_id: int
    log_id: int
    app_id: int
    database_id: int
    point_id: int
    mu_id: int
    previous_point: int
    adjust_point: int
    new_point: int
    coin_id: int
    walletaddress: str
    previous_coin: Decimal
    adjust_coin: Decimal
    new_coin: Decimal


class SwapLog(NamedTuple):
    """The audit-trail entry of one swap: its result and the request (fingerprint, OTP step) that made it."""

    log_id: int
    fingerprint: str
    otp_step: int
    created_at_ms: int
    result: SwapResult
    # coins per point this swap applied (None: a log written before the rate was recorded)
    rate: Decimal | None = None


class RequestRecord(NamedTuple):
    """The committed answer of one request (account + fingerprint), replayed until it expires."""

    fingerprint: str
    result: SwapResult
    created_at_ms: int
    expires_at_ms: int

    def is_live(self, now_ms: int) -> bool:
        return now_ms < self.expires_at_ms


class SwapState(NamedTuple):
    """Everything one swap reads, from one strongly consistent round trip (None where absent)."""

    account: Account | None
    point: PointAccount | None
    wallet: Wallet | None
    otp_secret: str | None
    otp_guard: OtpGuard
    app: SwappableApp | None
    coin: Coin | None
    rate: Decimal | None
    request: RequestRecord | None


class SwapCommit(NamedTuple):
    """One swap's transaction: the values it writes and the values it must find unchanged."""

    au_id: int
    app_id: int
    point_id: int
    coin_id: int
    account_exists: bool
    account_version: int
    consumed_otp_steps: dict[int, int]
    previous_point: int
    new_point: int
    previous_coin: Decimal
    new_coin: Decimal
    otp_step: int
    record: RequestRecord
    rate: Decimal

    @property
    def log_id(self) -> int:
        return self.record.result.log_id


class Adjustment(NamedTuple):
    """One adjustment entry: a balance set outside any swap (`load-fixture`, `payments adjust`).

    It sits after swap `after_log_id` and before swap `after_log_id + 1` of its account; `opening` marks the
    entries written by the transaction that created the account (its books then replay from zero).
    """

    au_id: int
    adjustment_seq: int
    adjustment_id: str
    # the balance item's sort key: `POINT#{app_id}#{point_id}` or `WALLET#{coin_id}`
    balance: str
    after_log_id: int
    # int for points, Decimal for wallets
    previous_quantity: int | Decimal
    new_quantity: int | Decimal
    reason: str
    actor: str
    created_at_ms: int
    opening: bool = False
