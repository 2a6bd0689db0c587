"""The point ⇄ coin swap: validation in SPEC's order, OTP, and one optimistic transaction.

A request is known by its fingerprint (caller + parsed body). Its committed answer is written
by the swap's own transaction as a request record, and the state read fetches that record, so
a retried request — after a lost answer, a crash or an expired OTP code — gets the committed
answer back from one read. When the transaction's answer is lost, the swap resends it (the
same ClientRequestToken) or reads again until it knows; it answers "unknown" (32202) only when
it still cannot tell, and the client's retry then learns the truth from the request record.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any, Protocol

from payments.auth import Caller
from payments.errors import (
    AdjustQuantityInvalid,
    AppIdInvalid,
    AppPointAccountMissing,
    CoinDataReadFailed,
    CoinIdInvalid,
    CoinQuantityInsufficient,
    EventIdInvalid,
    InternalError,
    MemberDataReadFailed,
    OtpAlreadyUsed,
    OtpInvalid,
    OtpLocked,
    PaymentsError,
    PointIdInvalid,
    PointQuantityInsufficient,
    ServiceBusy,
    SwapConflict,
    SwapOutcomeUndetermined,
)
from payments.json_body import canonical_json, without_trailing_zeros
from payments.models.ledger import (
    OtpFailure,
    OtpGuard,
    PointAccount,
    RequestRecord,
    SwapCommit,
    SwapLog,
    SwapResult,
    SwapState,
    Wallet,
)
from payments.models.swap import (
    EVENT_COIN_TO_POINT,
    EVENT_POINT_TO_COIN,
    SwapCoinView,
    SwapPointView,
    SwapRequest,
    SwapValue,
)
from payments.repositories.ledger import (
    CommitResult,
    GuardWriteResult,
    LedgerReadFailed,
    SwapOutcomeUnknown,
    SwapRejected,
    WalletReadFailed,
)
from payments.repositories.throttling import Throttled
from payments.services import otp
from payments.services.time_budget import TimeBudget

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
COIN_LIMIT = Decimal(10) ** 18
# Exact arithmetic for int64 points times a rate of up to 18 fractional digits.
_EXACT = Context(prec=80)
_RETRY_BASE_SECONDS = 0.01
# Back-off after a throughput refusal: full jitter, up to 50 ms × 2^n, at most 1 s.
_THROTTLE_BASE_SECONDS = 0.05
_THROTTLE_CAP_SECONDS = 1.0
_log = logging.getLogger(__name__)


class Ledger(Protocol):
    """What the swap reads and writes (payments.repositories.ledger.LedgerRepository in production)."""

    def read_swap_state(
        self,
        au_id: int,
        app_id: int | None,
        point_id: int | None,
        coin_id: int | None,
        fingerprint: str,
        may_ask_again: Callable[[], bool] = ...,
    ) -> SwapState: ...

    def commit_swap(self, commit: SwapCommit) -> CommitResult: ...

    def get_logged_swap(self, au_id: int, log_id: int) -> SwapLog | None: ...

    def save_otp_guard(
        self, au_id: int, expected_version: int, guard: OtpGuard, expires_at: int
    ) -> GuardWriteResult: ...

    def get_otp_guard(self, au_id: int) -> OtpGuard: ...


@dataclass(frozen=True)
class SwapPolicy:
    max_attempts: int = 5
    lockout: otp.LockoutPolicy = field(default_factory=otp.LockoutPolicy)
    replay_seconds: int = 600
    # resends of one transaction whose answer was lost, before reading again
    max_resends: int = 1
    # attempts whose outcome stayed unknown before one last read decides (or 32202)
    max_unknown_outcomes: int = 2
    # rounds of judging one wrong code against concurrent ones, before answering "locked"
    max_guard_attempts: int = 8


@dataclass(frozen=True)
class SwapOutcome:
    result: SwapResult
    replayed: bool
    race_retries: int = 0

    @property
    def value(self) -> SwapValue:
        """The answer's `value`, in the seed page's shape."""
        return swap_value(self.result)


def swap_value(result: SwapResult) -> SwapValue:
    return SwapValue(
        au_id=result.au_id,
        point=SwapPointView(
            mu_id=result.mu_id,
            app_id=result.app_id,
            database_id=result.database_id,
            point_id=result.point_id,
            previous_point_quantity=result.previous_point,
            adjust_point_quantity=result.adjust_point,
            point_quantity=result.new_point,
        ),
        coin=SwapCoinView(
            coin_id=result.coin_id,
            walletaddress=result.walletaddress,
            previous_coin_quantity=result.previous_coin,
            adjust_coin_quantity=result.adjust_coin,
            coin_quantity=result.new_coin,
        ),
        log_id=result.log_id,
        event_id=result.event_id,
    )


class _AlreadyCommitted(Exception):
    """This very request's swap is committed (seen through its consumed OTP step)."""

    def __init__(self, result: SwapResult) -> None:
        super().__init__("already committed")
        self.result = result


@dataclass(frozen=True)
class _Checked:
    """A request whose ids and quantities passed."""

    event_id: int
    app_id: int
    point_id: int
    coin_id: int
    adjust_point: int
    adjust_coin: Decimal
    rate: Decimal


def request_fingerprint(au_id: int, body: dict[str, Any]) -> str:
    """One hash per (caller, parsed body), whatever the body's key order, spacing or number spelling."""
    text = f"{au_id}:{canonical_json(body)}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT64_MAX


def execute_swap(
    ledger: Ledger,
    caller: Caller,
    request: SwapRequest,
    fingerprint: str,
    policy: SwapPolicy,
    budget: TimeBudget,
    clock: Callable[[], float] | None = None,
    pause: Callable[[float], None] | None = None,
) -> SwapOutcome:
    """Swap points and coins for the caller; raise the catalogued error of the first failed check."""
    now = clock or time.time
    # The OTP code is judged at the request's arrival, however long resolving a lost answer takes.
    arrival = now()
    # Malformed ids are not read; the request record is, so that a committed request spelt with
    # other numbers (`"event_id": 3.0`) still gets its answer back before any id is judged.
    app_id = request.app_id if _is_id(request.app_id) else None
    point_id = request.point_id if _is_id(request.point_id) else None
    coin_id = request.coin_id if _is_id(request.coin_id) else None
    # Transactions of this request sent with no answer saying what became of them; and whether
    # any answer of this request was lost at all (then no refusal is final: 32202 instead).
    unknown_outcomes = 0
    uncertain = False
    # Throughput refusals in a row: while the last attempt was refused for throughput, the answer is "busy".
    throttled = 0
    for attempt in range(policy.max_attempts):
        if attempt and not budget.allows_call():
            break
        try:
            state = ledger.read_swap_state(caller.au_id, app_id, point_id, coin_id, fingerprint, budget.allows_call)
        except Throttled:
            throttled += 1
            _back_off(pause, attempt, throttled, policy, budget)
            continue
        except LedgerReadFailed as error:
            if uncertain:
                raise SwapOutcomeUndetermined(f"re-read failed: {error}") from error
            if isinstance(error, WalletReadFailed):
                raise CoinDataReadFailed(str(error)) from error
            raise MemberDataReadFailed(str(error)) from error
        throttled = 0
        now_ms = int(now() * 1000)
        if state.request is not None and state.request.is_live(now_ms):
            return SwapOutcome(state.request.result, replayed=True, race_retries=attempt)
        try:
            if _is_partial(state):
                raise _PartialRead()
            commit = _judge(ledger, caller, request, state, fingerprint, arrival, now_ms, policy, budget)
        except _AlreadyCommitted as committed:
            return SwapOutcome(committed.result, replayed=True, race_retries=attempt)
        except _PartialRead:
            # another swap's transaction seen half-applied: read again
            _jitter(pause, attempt, policy)
            continue
        except Throttled:
            throttled += 1
            _back_off(pause, attempt, throttled, policy, budget)
            continue
        except PaymentsError as refusal:
            if uncertain and not isinstance(refusal, ServiceBusy):
                # An earlier transaction of this request may still commit: never call it failed.
                raise SwapOutcomeUndetermined(f"refused ({refusal.kind}) after an unknown outcome") from refusal
            raise
        if not budget.allows_call():
            break  # nothing sent: not enough time left to see a transaction through
        try:
            result, lost = _send(ledger, commit, policy, budget)
        except SwapRejected as error:
            if uncertain:
                raise SwapOutcomeUndetermined(str(error)) from error
            raise InternalError(str(error)) from error
        uncertain = uncertain or lost
        if result is CommitResult.COMMITTED:
            return SwapOutcome(commit.record.result, replayed=False, race_retries=attempt)
        if result is CommitResult.THROTTLED:
            # nothing committed, the OTP step included: read and judge again after a pause
            throttled += 1
            _back_off(pause, attempt, throttled, policy, budget)
            continue
        if result is None:
            unknown_outcomes += 1
            if unknown_outcomes >= policy.max_unknown_outcomes:
                return _resolve_by_reading(ledger, caller, app_id, point_id, coin_id, fingerprint, now, budget)
            continue
        # Something read has changed (another swap, or this very swap committed): read again.
        _jitter(pause, attempt, policy)
    if throttled:
        # Throttling is never "unknown": a retry gets the committed answer if an earlier attempt did commit.
        raise ServiceBusy("DynamoDB kept refusing for throughput", retry_after_seconds=_retry_after(throttled))
    if uncertain:
        raise SwapOutcomeUndetermined("the transaction's outcome is still unknown")
    raise SwapConflict()


def _back_off(
    pause: Callable[[float], None] | None, attempt: int, throttled: int, policy: SwapPolicy, budget: TimeBudget
) -> None:
    """Full jitter after a throughput refusal, before the next attempt only (none after the last one), and only
    while a call still fits after it."""
    if attempt + 1 >= policy.max_attempts:
        return
    delay = random.uniform(0, min(_THROTTLE_CAP_SECONDS, _THROTTLE_BASE_SECONDS * 2**throttled))  # noqa: S311
    if budget.allows_call(after_ms=int(delay * 1000)):
        (pause or time.sleep)(delay)


def _retry_after(throttled: int) -> int:
    """Whole seconds a client should wait: the next back-off's ceiling, at least 1."""
    return math.ceil(2 * min(_THROTTLE_CAP_SECONDS, _THROTTLE_BASE_SECONDS * 2.0**throttled))


def _jitter(pause: Callable[[float], None] | None, attempt: int, policy: SwapPolicy) -> None:
    """Full jitter before the next optimistic attempt (none after the last one)."""
    if attempt + 1 < policy.max_attempts:
        (pause or time.sleep)(random.uniform(0, _RETRY_BASE_SECONDS * 2**attempt))  # noqa: S311 - jitter


class _PartialRead(Exception):
    """The state read saw part of another swap's transaction (BatchGetItem is not serializable)."""


def _is_partial(state: SwapState) -> bool:
    """A balance written by a later swap than the account item says: that swap is half seen."""
    seen = state.account.log_seq if state.account else 0
    return any(balance is not None and balance.last_log_id > seen for balance in (state.point, state.wallet))


def _resolve_by_reading(
    ledger: Ledger,
    caller: Caller,
    app_id: int | None,
    point_id: int | None,
    coin_id: int | None,
    fingerprint: str,
    now: Callable[[], float],
    budget: TimeBudget,
) -> SwapOutcome:
    """One last read: the request record says the swap committed; without it nobody can tell yet."""
    if not budget.allows_call():
        raise SwapOutcomeUndetermined("no time left to read the outcome")
    try:
        state = ledger.read_swap_state(caller.au_id, app_id, point_id, coin_id, fingerprint, budget.allows_call)
    except Throttled as error:
        raise ServiceBusy(f"the outcome could not be read: {error}") from error
    except LedgerReadFailed as error:
        raise SwapOutcomeUndetermined(f"the outcome could not be read: {error}") from error
    if state.request is not None and state.request.is_live(int(now() * 1000)):
        return SwapOutcome(state.request.result, replayed=True)
    raise SwapOutcomeUndetermined("the transaction's outcome is still unknown")


def _send(
    ledger: Ledger, commit: SwapCommit, policy: SwapPolicy, budget: TimeBudget
) -> tuple[CommitResult | None, bool]:
    """Send the transaction, resending it while its answer is lost.

    Returns the result (None if still unknown) and whether any answer was lost on the way.
    """
    lost = False
    for resend in range(1 + policy.max_resends):
        if resend and not budget.allows_call():
            return None, True
        try:
            return ledger.commit_swap(commit), lost
        except SwapOutcomeUnknown as error:
            lost = True
            _log.warning("swap transaction answer lost (try %d): %s", resend + 1, error)
    return None, True


def _judge(
    ledger: Ledger,
    caller: Caller,
    request: SwapRequest,
    state: SwapState,
    fingerprint: str,
    arrival: float,
    now_ms: int,
    policy: SwapPolicy,
    budget: TimeBudget,
) -> SwapCommit:
    """Every check in SPEC's order, then the transaction that would carry the swap out."""
    if not _is_id(request.event_id) or request.event_id not in (EVENT_POINT_TO_COIN, EVENT_COIN_TO_POINT):
        raise EventIdInvalid()
    if not _is_id(request.app_id):
        raise AppIdInvalid()
    checked = _check_ids_and_quantities(request, state)
    point, wallet = _check_accounts(state)
    step = _check_otp(ledger, caller, request, state, fingerprint, arrival, now_ms, policy, budget)
    return _plan(caller, checked, state, point, wallet, step, fingerprint, arrival, now_ms, policy)


def _check_ids_and_quantities(request: SwapRequest, state: SwapState) -> _Checked:
    if state.app is None:
        raise AppIdInvalid()
    if not _is_id(request.point_id) or request.point_id not in state.app.point_ids:
        raise PointIdInvalid()
    if not _is_id(request.coin_id):
        raise CoinIdInvalid()
    if state.coin is None or state.rate is None:
        raise CoinIdInvalid()
    adjust_point = request.adjust_point_quantity
    if (
        not isinstance(adjust_point, int)
        or isinstance(adjust_point, bool)
        or not INT64_MIN <= adjust_point <= INT64_MAX
    ):
        raise AdjustQuantityInvalid("adjust_point_quantity is not an int64")
    adjust_coin = _coin_amount(request.adjust_coin_quantity, state.coin.decimals)
    if adjust_point == 0 or adjust_coin == 0:
        raise AdjustQuantityInvalid("zero adjustment")
    if request.event_id == EVENT_POINT_TO_COIN and not adjust_point < 0 < adjust_coin:
        raise AdjustQuantityInvalid("event 3 takes points and gives coins")
    if request.event_id == EVENT_COIN_TO_POINT and not adjust_coin < 0 < adjust_point:
        raise AdjustQuantityInvalid("event 4 takes coins and gives points")
    if _EXACT.multiply(Decimal(abs(adjust_point)), state.rate) != abs(adjust_coin):
        raise AdjustQuantityInvalid("adjustments disagree with the rate")
    return _Checked(
        request.event_id, request.app_id, request.point_id, request.coin_id, adjust_point, adjust_coin, state.rate
    )


def _coin_amount(value: Any, decimals: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise AdjustQuantityInvalid("adjust_coin_quantity is not a number")
    amount = without_trailing_zeros(Decimal(value))
    # copy_abs and as_tuple use no context, so absurd exponents cannot overflow here
    if not amount.is_finite() or amount.copy_abs() >= COIN_LIMIT:
        raise AdjustQuantityInvalid("adjust_coin_quantity out of range")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimals:
        raise AdjustQuantityInvalid("adjust_coin_quantity has more decimals than the coin")
    return amount


def _check_accounts(state: SwapState) -> tuple[PointAccount, Wallet]:
    if state.point is None:
        raise AppPointAccountMissing()
    if state.wallet is None:
        raise CoinIdInvalid("no wallet for the coin")
    return state.point, state.wallet


def _check_otp(
    ledger: Ledger,
    caller: Caller,
    request: SwapRequest,
    state: SwapState,
    fingerprint: str,
    arrival: float,
    now_ms: int,
    policy: SwapPolicy,
    budget: TimeBudget,
) -> int:
    """The OTP time step this swap consumes; a wrong code is counted before it is answered."""
    if state.otp_guard.is_locked(now_ms):
        raise OtpLocked()
    secret = state.otp_secret
    well_formed = otp.is_well_formed(request.otp_code)
    steps = otp.matching_steps(secret, request.otp_code, arrival) if secret and well_formed else []
    if not steps:
        _count_wrong_code(ledger, caller.au_id, state.otp_guard, now_ms, policy, budget)
    consumed = state.account.consumed_otp_steps if state.account else {}
    for step in steps:
        if step not in consumed:
            return step
    # The step is taken. The state read may have seen this very request's transaction only in
    # part (its account update, not yet its request record): the log of the swap that took the
    # step tells, read consistently.
    for step in steps:
        if not budget.allows_call():
            break
        try:
            logged = ledger.get_logged_swap(caller.au_id, consumed[step])
        except LedgerReadFailed as error:
            raise MemberDataReadFailed(str(error)) from error
        if logged is None:
            raise _PartialRead()  # the swap that took the step is still landing: read again
        if logged.fingerprint == fingerprint:
            raise _AlreadyCommitted(logged.result)
    raise OtpAlreadyUsed()


def _count_wrong_code(
    ledger: Ledger, au_id: int, guard: OtpGuard, now_ms: int, policy: SwapPolicy, budget: TimeBudget
) -> None:
    """Record one wrong code with a conditional write, then answer it; raise OtpInvalid or OtpLocked.

    Concurrent wrong codes are judged one at a time (each write expects the guard's version), so
    however many arrive together at most `max_failures` are answered "invalid" per window; a code
    that cannot be judged before the lock, or before the retry budget runs out, is "locked".
    """
    failure = OtpFailure(uuid.uuid4().hex, now_ms)
    try:
        for _ in range(policy.max_guard_attempts):
            if not budget.allows_call():
                break
            updated = otp.after_failure(guard, failure, policy.lockout)
            expires_at = otp.guard_expires_at(updated, policy.lockout)
            if ledger.save_otp_guard(au_id, guard.version, updated, expires_at) is GuardWriteResult.WRITTEN:
                raise OtpInvalid()
            if not budget.allows_call():
                break
            guard = ledger.get_otp_guard(au_id)
            if guard.holds(failure.failure_id):
                raise OtpInvalid()  # our write landed; only its answer was lost
            if guard.is_locked(now_ms):
                raise OtpLocked()
    except Throttled as error:
        # a wrong code is answered 32107 only once counted: overload never switches the lockout off
        raise ServiceBusy(f"wrong OTP code could not be counted: {error}") from error
    except LedgerReadFailed as error:
        raise InternalError(f"wrong OTP code could not be counted: {error}") from error
    _log.warning("wrong OTP code of au_id %d not judged: contention or no time left; answered as locked", au_id)
    raise OtpLocked("wrong code not judged: too many at once")


def _plan(
    caller: Caller,
    checked: _Checked,
    state: SwapState,
    point: PointAccount,
    wallet: Wallet,
    step: int,
    fingerprint: str,
    arrival: float,
    now_ms: int,
    policy: SwapPolicy,
) -> SwapCommit:
    new_point = point.quantity + checked.adjust_point
    new_coin = _EXACT.add(wallet.quantity, checked.adjust_coin)
    if not 0 <= new_point <= INT64_MAX:
        raise PointQuantityInsufficient()
    if not 0 <= new_coin < COIN_LIMIT:
        raise CoinQuantityInsufficient()
    account = state.account
    log_id = (account.log_seq if account else 0) + 1
    oldest_usable = otp.current_step(arrival) - 2
    consumed = {s: log for s, log in (account.consumed_otp_steps if account else {}).items() if s >= oldest_usable}
    consumed[step] = log_id
    result = SwapResult(
        au_id=caller.au_id,
        event_id=checked.event_id,
        log_id=log_id,
        app_id=checked.app_id,
        database_id=state.app.database_id if state.app else 0,
        point_id=checked.point_id,
        mu_id=point.mu_id,
        previous_point=point.quantity,
        adjust_point=checked.adjust_point,
        new_point=new_point,
        coin_id=checked.coin_id,
        walletaddress=wallet.walletaddress,
        previous_coin=wallet.quantity,
        adjust_coin=checked.adjust_coin,
        new_coin=new_coin,
    )
    record = RequestRecord(
        fingerprint=fingerprint,
        result=result,
        created_at_ms=now_ms,
        expires_at_ms=now_ms + policy.replay_seconds * 1000,
    )
    return SwapCommit(
        au_id=caller.au_id,
        app_id=checked.app_id,
        point_id=checked.point_id,
        coin_id=checked.coin_id,
        account_exists=account is not None,
        account_version=account.version if account else 0,
        consumed_otp_steps=consumed,
        previous_point=point.quantity,
        new_point=new_point,
        previous_coin=wallet.quantity,
        new_coin=new_coin,
        otp_step=step,
        record=record,
        rate=checked.rate,
    )
