"""The point ⇄ coin swap: validation in SPEC's order, OTP, and one optimistic transaction."""
from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any, Callable

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
    PointIdInvalid,
    PointQuantityInsufficient,
    SwapConflict,
)
from payments.json_body import canonical_json, without_trailing_zeros
from payments.models.swap import EVENT_COIN_TO_POINT, EVENT_POINT_TO_COIN, SwapCoinView, SwapPointView, SwapRequest, SwapValue
from payments.repositories.ledger import (
    LedgerReadFailed,
    LedgerRepository,
    SwapCommitFailed,
    SwapRaceLost,
    SwapState,
    SwapWrite,
    otp_failure_times,
)
from payments.services import otp

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
COIN_LIMIT = Decimal(10) ** 18
# Exact arithmetic for int64 points times a rate of up to 18 fractional digits.
_EXACT = Context(prec=80)
_RETRY_BASE_SECONDS = 0.01


@dataclass(frozen=True)
class SwapPolicy:
    max_attempts: int = 5
    lockout: otp.LockoutPolicy = field(default_factory=otp.LockoutPolicy)


@dataclass(frozen=True)
class _Checked:
    """A request whose ids and quantities passed, with the catalogue entries they name."""

    event_id: int
    app_id: int
    point_id: int
    coin_id: int
    adjust_point: int
    adjust_coin: Decimal


def request_fingerprint(au_id: int, body: dict[str, Any]) -> str:
    """One hash per (caller, parsed body), whatever the body's key order, spacing or number spelling."""
    text = f"{au_id}:{canonical_json(body)}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT64_MAX


def execute_swap(
    ledger: LedgerRepository,
    caller: Caller,
    request: SwapRequest,
    fingerprint: str,
    policy: SwapPolicy,
    clock: Callable[[], float] | None = None,
    pause: Callable[[float], None] | None = None,
) -> SwapValue:
    """Swap points and coins for the caller; raise the catalogued error of the first failed check."""
    if not _is_id(request.event_id) or request.event_id not in (EVENT_POINT_TO_COIN, EVENT_COIN_TO_POINT):
        raise EventIdInvalid()
    if not _is_id(request.app_id):
        raise AppIdInvalid()
    point_id = request.point_id if _is_id(request.point_id) else None
    coin_id = request.coin_id if _is_id(request.coin_id) else None
    for attempt in range(policy.max_attempts):
        try:
            state = ledger.read_swap_state(caller.au_id, request.app_id, point_id, coin_id)
        except LedgerReadFailed as error:
            raise MemberDataReadFailed(str(error)) from error
        checked = _check_ids_and_quantities(request, state)
        point, wallet = _check_accounts(state)
        now = (clock or time.time)()
        step, replay_log_id = _check_otp(ledger, caller, request, state, fingerprint, now, policy.lockout)
        if replay_log_id is not None:
            return _replay(ledger, caller, replay_log_id)
        write = _plan(caller, checked, state, point, wallet, step, fingerprint, now)
        try:
            ledger.commit_swap(write)
        except SwapRaceLost:
            # Someone else moved this account between our read and our write: read again.
            (pause or time.sleep)(random.uniform(0, _RETRY_BASE_SECONDS * 2**attempt))
            continue
        except SwapCommitFailed as error:
            raise InternalError(str(error)) from error
        return SwapValue.model_validate(write.log_item["value"])
    raise SwapConflict()


def _check_ids_and_quantities(request: SwapRequest, state: SwapState) -> _Checked:
    if state.app is None:
        raise AppIdInvalid()
    if not _is_id(request.point_id) or str(request.point_id) not in state.app.get("points", {}):
        raise PointIdInvalid()
    if not _is_id(request.coin_id):
        raise CoinIdInvalid()
    if state.coin is None or state.rate is None:
        raise CoinIdInvalid()
    adjust_point = request.adjust_point_quantity
    if not isinstance(adjust_point, int) or isinstance(adjust_point, bool) or not INT64_MIN <= adjust_point <= INT64_MAX:
        raise AdjustQuantityInvalid("adjust_point_quantity is not an int64")
    adjust_coin = _coin_amount(request.adjust_coin_quantity, int(state.coin["decimals"]))
    if adjust_point == 0 or adjust_coin == 0:
        raise AdjustQuantityInvalid("zero adjustment")
    if request.event_id == EVENT_POINT_TO_COIN and not adjust_point < 0 < adjust_coin:
        raise AdjustQuantityInvalid("event 3 takes points and gives coins")
    if request.event_id == EVENT_COIN_TO_POINT and not adjust_coin < 0 < adjust_point:
        raise AdjustQuantityInvalid("event 4 takes coins and gives points")
    rate = Decimal(state.rate["rate"])
    if _EXACT.multiply(Decimal(abs(adjust_point)), rate) != abs(adjust_coin):
        raise AdjustQuantityInvalid("adjustments disagree with the rate")
    return _Checked(request.event_id, request.app_id, request.point_id, request.coin_id, adjust_point, adjust_coin)


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


def _check_accounts(state: SwapState) -> tuple[dict[str, Any], dict[str, Any]]:
    if state.point is None:
        raise AppPointAccountMissing()
    if state.wallet is None:
        raise CoinIdInvalid("no wallet for the coin")
    if "quantity" not in state.wallet or "walletaddress" not in state.wallet:
        raise CoinDataReadFailed("wallet item is incomplete")
    return state.point, state.wallet


def _check_otp(
    ledger: LedgerRepository,
    caller: Caller,
    request: SwapRequest,
    state: SwapState,
    fingerprint: str,
    now: float,
    lockout: otp.LockoutPolicy,
) -> tuple[int, int | None]:
    """The OTP step this swap consumes, or the log id of the same request already committed."""
    now_ms = int(now * 1000)
    failures = otp_failure_times(state.otp_guard)
    if now_ms < otp.locked_until_ms(list(failures.values()), lockout):
        raise OtpLocked()
    secret = (state.account or {}).get("otp_secret")
    steps = otp.matching_steps(secret, request.otp_code, now) if secret and otp.is_well_formed(request.otp_code) else []
    if not steps:
        forget_before_ms = now_ms - (lockout.window_seconds + lockout.lock_seconds) * 1000
        stale = [name for name, when in failures.items() if when < forget_before_ms]
        expires_at = int(now) + lockout.window_seconds + lockout.lock_seconds
        ledger.record_otp_failure(caller.au_id, uuid.uuid4().hex, now_ms, expires_at, stale)
        raise OtpInvalid()
    used = (state.account or {}).get("otp_steps", {})
    for step in steps:
        if str(step) not in used:
            return step, None
    for step in steps:
        if used[str(step)].get("fingerprint") == fingerprint:
            return step, int(used[str(step)]["log_id"])
    raise OtpAlreadyUsed()


def _replay(ledger: LedgerRepository, caller: Caller, log_id: int) -> SwapValue:
    log = ledger.get_swap_log(caller.au_id, log_id)
    if log is None:
        raise InternalError("consumed OTP step points at a missing swap log")
    return SwapValue.model_validate(log["value"])


def _plan(
    caller: Caller,
    checked: _Checked,
    state: SwapState,
    point: dict[str, Any],
    wallet: dict[str, Any],
    step: int,
    fingerprint: str,
    now: float,
) -> SwapWrite:
    previous_point = int(point["quantity"])
    previous_coin = Decimal(wallet["quantity"])
    new_point = previous_point + checked.adjust_point
    new_coin = _EXACT.add(previous_coin, checked.adjust_coin)
    if not 0 <= new_point <= INT64_MAX:
        raise PointQuantityInsufficient()
    if not 0 <= new_coin < COIN_LIMIT:
        raise CoinQuantityInsufficient()
    account = state.account or {}
    log_id = int(account.get("log_seq", 0)) + 1
    oldest_usable = otp.current_step(now) - 2
    otp_steps = {key: value for key, value in account.get("otp_steps", {}).items() if int(key) >= oldest_usable}
    otp_steps[str(step)] = {"log_id": log_id, "fingerprint": fingerprint}
    value = SwapValue(
        au_id=caller.au_id,
        point=SwapPointView(
            mu_id=int(point["mu_id"]),
            app_id=checked.app_id,
            database_id=int((state.app or {})["database_id"]),
            point_id=checked.point_id,
            previous_point_quantity=previous_point,
            adjust_point_quantity=checked.adjust_point,
            point_quantity=new_point,
        ),
        coin=SwapCoinView(
            coin_id=checked.coin_id,
            walletaddress=str(wallet["walletaddress"]),
            previous_coin_quantity=previous_coin,
            adjust_coin_quantity=checked.adjust_coin,
            coin_quantity=new_coin,
        ),
        log_id=log_id,
        event_id=checked.event_id,
    )
    log_item = {
        "entity": "swap_log",
        "au_id": caller.au_id,
        "log_id": log_id,
        "fingerprint": fingerprint,
        "otp_step": step,
        "created_at_ms": int(now * 1000),
        "value": value.model_dump(),
    }
    return SwapWrite(
        au_id=caller.au_id,
        app_id=checked.app_id,
        point_id=checked.point_id,
        coin_id=checked.coin_id,
        account_version=int(account.get("version", 0)),
        log_id=log_id,
        otp_steps=otp_steps,
        previous_point=previous_point,
        new_point=new_point,
        previous_coin=previous_coin,
        new_coin=new_coin,
        log_item=log_item,
    )
