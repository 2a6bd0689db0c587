"""`payments adjust`: an ops correction of one balance, through the adjustment path (its entry in the same write)."""

from __future__ import annotations

import getpass
import re
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from payments.repositories.adjustments import (
    AdjustmentRepository,
    BalanceSetting,
    Outcome,
    PointTarget,
    WalletTarget,
    balance_name,
)
from payments_cli.fixture_loader import CoinQuantity, PointQuantity

_ADJUSTMENT_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
_MAX_REASON = 500
_points: TypeAdapter[int] = TypeAdapter(Annotated[PointQuantity, Field(strict=False)])
_coins: TypeAdapter[Decimal] = TypeAdapter(CoinQuantity)


class AdjustRefused(Exception):
    """Bad input (quantity, reason, id, unknown coin): nothing was written."""


class AdjustFailed(Exception):
    """The adjustment could not be made (no such balance): nothing was written."""


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


def adjust_balance(
    repository: AdjustmentRepository,
    au_id: int,
    target: PointTarget | WalletTarget,
    quantity_text: str,
    reason: str,
    adjustment_id: str | None,
    actor: str,
) -> str:
    """Set the balance to the quantity; returns the line to print (the id included when it was generated)."""
    reason = reason.strip()
    if not reason or len(reason) > _MAX_REASON:
        raise AdjustRefused(f"--reason: must be 1 to {_MAX_REASON} characters")
    if adjustment_id is not None and not _ADJUSTMENT_ID.fullmatch(adjustment_id):
        raise AdjustRefused("--id: 1 to 200 letters, digits or ._:@/+=-")
    quantity = _quantity(repository, target, quantity_text.strip())
    generated = adjustment_id is None
    adjustment_id = adjustment_id or f"adjust-{uuid.uuid4().hex}"
    [result] = repository.set_balances(
        au_id, [BalanceSetting(adjustment_id, target, quantity)], reason=reason, actor=actor.strip() or default_actor()
    )
    name = f"au_id {au_id} {balance_name(au_id, target)}"
    if result.outcome is Outcome.NO_BALANCE:
        raise AdjustFailed(f"{name}: no such balance (balances are created by a fixture: payments load-fixture)")
    if result.outcome is Outcome.ALREADY_APPLIED:
        return (
            f"{name}: adjustment {adjustment_id} was already applied (entry {result.adjustment_seq}); "
            f"nothing changed, the balance is {result.quantity}"
        )
    if result.outcome is Outcome.UNCHANGED:
        return f"{name}: already {result.quantity}; nothing to adjust, nothing written"
    entry = result.adjustment
    if entry is None:  # APPLIED always carries its entry
        raise AdjustFailed(f"{name}: applied, but no entry was returned")
    line = f"{name}: {entry.previous_quantity} -> {entry.new_quantity} (adjustment {entry.adjustment_seq}"
    return line + (f", id {adjustment_id})" if generated else ")")


def _quantity(repository: AdjustmentRepository, target: PointTarget | WalletTarget, text: str) -> int | Decimal:
    try:
        if isinstance(target, PointTarget):
            return _points.validate_strings(text)
        quantity = _coins.validate_python(text)
    except ValidationError as error:
        problem = error.errors()[0]
        message = str(problem["ctx"]["error"]) if problem["type"] == "value_error" else problem["msg"]
        raise AdjustRefused(f"--quantity: {message}: {text!r}") from None
    decimals = repository.coin_decimals(target.coin_id)
    if decimals is None:
        raise AdjustFailed(f"coin {target.coin_id} does not exist")
    if -int(quantity.normalize().as_tuple().exponent) > decimals:
        raise AdjustRefused(f"--quantity: {text} has more than {decimals} fractional digits (coin {target.coin_id})")
    return quantity
