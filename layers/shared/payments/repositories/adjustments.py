"""The one path for a balance write other than a swap: an adjustment entry in the same transaction.

`AdjustmentRepository.set_balances` sets balances of one account (ops corrections with `payments adjust`,
balances of a fixture loaded over an account) and, in the same TransactWriteItems, writes for each balance it
changes an adjustment entry (`ADJUSTMENT#{seq}`: previous and new quantity, reason, actor, time, a sequence of the
account's own) and the adjustment's idempotency marker (`ADJUSTMENT_ID#{id}`). The transaction is conditional on
what it read (the account's `adjustment_seq` and `log_seq`, each balance's quantity), so it never overwrites a swap
that landed in between: a stale read is read again and planned again, a bounded number of times. A marker that
exists means the adjustment was applied before: nothing changes.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from payments.models.ledger import Adjustment
from payments.repositories import codec, keys
from payments.repositories.batch import batch_get
from payments.repositories.ledger_items import (
    AccountItem,
    AdjustmentItem,
    AdjustmentMarkerItem,
    CoinItem,
    Item,
    PointBalanceItem,
    WalletItem,
)

# A transaction holds at most 100 items: the account's update, then a balance, an entry and a marker per change.
_CHANGES_PER_TRANSACTION = 33
# Optimistic attempts: each one reads again after a swap (or another adjustment) changed what was read.
MAX_ATTEMPTS = 8
_STALE_REASONS = {"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


class PointTarget(NamedTuple):
    """A point balance; `mu_id` is needed only to create it (and is set with it when given)."""

    app_id: int
    point_id: int
    mu_id: int | None = None


class WalletTarget(NamedTuple):
    """A wallet; `walletaddress` is needed only to create it (and is set with it when given)."""

    coin_id: int
    walletaddress: str | None = None


class BalanceSetting(NamedTuple):
    """Set one balance to `quantity` (int for points, Decimal for wallets), as the adjustment `adjustment_id`."""

    adjustment_id: str
    target: PointTarget | WalletTarget
    quantity: int | Decimal


class Outcome(Enum):
    APPLIED = "applied"  # the balance was set and its entry written
    ALREADY_APPLIED = "already applied"  # an adjustment with this id exists: nothing changed
    UNCHANGED = "unchanged"  # the balance already held the quantity: no entry (mu_id / walletaddress may be set)
    NO_BALANCE = "no balance"  # the balance does not exist and the setting cannot create it (no mu_id/walletaddress)


class AdjustmentResult(NamedTuple):
    setting: BalanceSetting
    outcome: Outcome
    # the entry written (APPLIED only)
    adjustment: Adjustment | None
    # the balance after this call (None: no such balance)
    quantity: int | Decimal | None
    # the seq of the entry of this id: written now (APPLIED) or before (ALREADY_APPLIED)
    adjustment_seq: int | None = None


class AdjustmentConflict(Exception):
    """The balances kept changing under the adjustment (swaps landing) for every attempt: nothing of it was written."""


def balance_name(au_id: int, target: PointTarget | WalletTarget) -> str:
    """The balance item's sort key (`POINT#1#1`, `WALLET#2`): what an adjustment entry names."""
    return str(_balance_key(au_id, target)[keys.SK])


def _balance_key(au_id: int, target: PointTarget | WalletTarget) -> dict[str, str]:
    if isinstance(target, PointTarget):
        return PointBalanceItem.key(au_id, target.app_id, target.point_id)
    return WalletItem.key(au_id, target.coin_id)


def _details(target: PointTarget | WalletTarget) -> dict[str, Any]:
    """mu_id / walletaddress the setting gives (not a balance change: they ride along, or go without an entry)."""
    if isinstance(target, PointTarget):
        return {} if target.mu_id is None else {"mu_id": target.mu_id}
    return {} if target.walletaddress is None else {"walletaddress": target.walletaddress}


class _Read(NamedTuple):
    account: Item | None
    balances: dict[str, Item]  # by balance name
    markers: dict[str, Item]  # by adjustment id


class _Planned(NamedTuple):
    setting: BalanceSetting
    name: str
    previous: Item | None  # the balance item read (None: it is created)


class AdjustmentRepository:
    """Adjustments of the ledger (ops only: `payments adjust`, `payments load-fixture`)."""

    def __init__(
        self,
        client: Any,
        ledger_table: str,
        clock: Callable[[], float] = time.time,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._client = client
        self._table = ledger_table
        self._clock = clock
        self._max_attempts = max_attempts

    def set_balances(
        self, au_id: int, settings: Sequence[BalanceSetting], reason: str, actor: str
    ) -> list[AdjustmentResult]:
        """Set these balances of the account, each changed one with its entry; results in the settings' order.

        The account item is created when missing (with zero counters); the entries of the transaction that
        creates it are its opening entries. Raises AdjustmentConflict when every attempt found its read stale.
        """
        names = [balance_name(au_id, setting.target) for setting in settings]
        if len(set(names)) != len(names) or len({s.adjustment_id for s in settings}) != len(settings):
            raise ValueError("each balance and each adjustment id may appear once per call")
        results: dict[str, AdjustmentResult] = {}
        pending = list(settings)
        stale = 0
        while pending:
            chunk = pending[:_CHANGES_PER_TRANSACTION]
            read = self._read(au_id, chunk)
            writes: list[_Planned] = []
            for setting in chunk:
                name = balance_name(au_id, setting.target)
                balance = read.balances.get(name)
                if setting.adjustment_id in read.markers:
                    seq = int(read.markers[setting.adjustment_id].get("adjustment_seq", 0))
                    found = None if balance is None else _quantity(name, balance)
                    results[name] = AdjustmentResult(setting, Outcome.ALREADY_APPLIED, None, found, seq)
                elif balance is None and not _details(setting.target):
                    results[name] = AdjustmentResult(setting, Outcome.NO_BALANCE, None, None)
                elif balance is not None and _quantity(name, balance) == setting.quantity:
                    self._set_details(au_id, setting.target, balance)
                    results[name] = AdjustmentResult(setting, Outcome.UNCHANGED, None, _quantity(name, balance))
                else:
                    writes.append(_Planned(setting, name, balance))
            if writes:
                written = self._commit(au_id, read.account, writes, reason, actor)
                if written is None:
                    stale += 1
                    if stale >= self._max_attempts:
                        raise AdjustmentConflict(
                            f"au_id {au_id}: the balances kept changing during {stale} attempts; nothing written"
                        )
                    time.sleep(random.uniform(0, 0.02 * 2 ** min(stale, 5)))  # noqa: S311 - jitter, not a secret
                    continue  # read the same chunk again
                for planned, adjustment in zip(writes, written, strict=True):
                    results[planned.name] = AdjustmentResult(
                        planned.setting,
                        Outcome.APPLIED,
                        adjustment,
                        planned.setting.quantity,
                        adjustment.adjustment_seq,
                    )
            pending = pending[len(chunk) :]
        return [results[name] for name in names]

    def coin_decimals(self, coin_id: int) -> int | None:
        """The most fractional digits a quantity of this coin may have (None: no such coin)."""
        response = self._client.get_item(
            TableName=self._table, Key=codec.to_item(CoinItem.key(coin_id)), ConsistentRead=True
        )
        coin = CoinItem.read(codec.from_item(response.get("Item")))
        return None if coin is None else coin.decimals

    # --- reading and writing ----------------------------------------------------------------

    def _read(self, au_id: int, settings: Sequence[BalanceSetting]) -> _Read:
        account_key = AccountItem.key(au_id)
        balance_keys = [_balance_key(au_id, setting.target) for setting in settings]
        marker_keys = [AdjustmentMarkerItem.key(au_id, setting.adjustment_id) for setting in settings]
        found = batch_get(self._client, {self._table: [account_key, *balance_keys, *marker_keys]}, consistent=True)

        def get(key: dict[str, str]) -> Item | None:
            return found.get((self._table, key[keys.PK], key[keys.SK]))

        balances = {key[keys.SK]: item for key in balance_keys if (item := get(key)) is not None}
        markers = {
            setting.adjustment_id: item
            for setting, key in zip(settings, marker_keys, strict=True)
            if (item := get(key)) is not None
        }
        return _Read(get(account_key), balances, markers)

    def _set_details(self, au_id: int, target: PointTarget | WalletTarget, balance: Item) -> None:
        """mu_id / walletaddress changed without the quantity: not a balance change, so no entry (and no race)."""
        changed = {name: value for name, value in _details(target).items() if balance.get(name) != value}
        if not changed:
            return
        names = {f"#d{n}": name for n, name in enumerate(changed)}
        self._client.update_item(
            TableName=self._table,
            Key=codec.to_item(_balance_key(au_id, target)),
            UpdateExpression="SET " + ", ".join(f"{alias} = :d{alias[2:]}" for alias in names),
            ConditionExpression="attribute_exists(#pk)",
            ExpressionAttributeNames={"#pk": keys.PK, **names},
            ExpressionAttributeValues={f":d{n}": codec.to_attribute(value) for n, value in enumerate(changed.values())},
        )

    def _commit(
        self, au_id: int, account: Item | None, writes: Sequence[_Planned], reason: str, actor: str
    ) -> list[Adjustment] | None:
        """One transaction for these changes; the entries written, or None when what was read has changed."""
        previous_seq = 0 if account is None else int(account.get(AccountItem.ADJUSTMENT_SEQ, 0))
        log_seq = 0 if account is None else int(account.get(AccountItem.LOG_SEQ, 0))
        # a transaction that creates the account writes its opening entries (its books replay from zero)
        opening = account is None and all(planned.previous is None for planned in writes)
        now_ms = int(self._clock() * 1000)
        adjustments = [
            Adjustment(
                au_id=au_id,
                adjustment_seq=previous_seq + n,
                adjustment_id=planned.setting.adjustment_id,
                balance=planned.name,
                after_log_id=log_seq,
                previous_quantity=0 if planned.previous is None else _quantity(planned.name, planned.previous),
                new_quantity=planned.setting.quantity,
                reason=reason,
                actor=actor,
                created_at_ms=now_ms,
                opening=opening,
            )
            for n, planned in enumerate(writes, start=1)
        ]
        items = [self._account_update(au_id, account, previous_seq, previous_seq + len(writes))]
        for planned, adjustment in zip(writes, adjustments, strict=True):
            items.append(self._balance_write(au_id, planned, adjustment))
            for item in (AdjustmentItem.write(adjustment), AdjustmentMarkerItem.write(adjustment)):
                items.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": codec.to_item(item),
                            "ConditionExpression": "attribute_not_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": keys.PK},
                        }
                    }
                )
        token_text = f"{au_id}:{previous_seq}:{log_seq}:" + ",".join(
            f"{a.adjustment_id}={a.previous_quantity}>{a.new_quantity}" for a in adjustments
        )
        try:
            self._client.transact_write_items(
                TransactItems=items, ClientRequestToken=hashlib.sha256(token_text.encode()).hexdigest()[:36]
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
            if code == "TransactionCanceledException" and reasons & _STALE_REASONS:
                return None
            if code in {"TransactionConflictException", "IdempotentParameterMismatchException"}:
                return None
            raise
        return adjustments

    def _account_update(self, au_id: int, account: Item | None, previous_seq: int, seq: int) -> dict[str, Any]:
        names = {"#adjustment_seq": AccountItem.ADJUSTMENT_SEQ, "#log_seq": AccountItem.LOG_SEQ}
        values: dict[str, Any] = {":seq": codec.to_attribute(seq)}
        if account is None:
            update = (
                "SET #entity = :entity, #au_id = :au_id, #version = :zero, #log_seq = :zero, "
                "#otp_steps = :empty, #adjustment_seq = :seq"
            )
            condition = "attribute_not_exists(#pk)"
            names |= {
                "#pk": keys.PK,
                "#entity": keys.ENTITY,
                "#au_id": "au_id",
                "#version": AccountItem.VERSION,
                "#otp_steps": AccountItem.OTP_STEPS,
            }
            values |= {
                ":entity": codec.to_attribute(AccountItem.ENTITY),
                ":au_id": codec.to_attribute(au_id),
                ":zero": codec.to_attribute(0),
                ":empty": codec.to_attribute({}),
            }
        else:
            update = "SET #adjustment_seq = :seq"
            # no other adjustment in between, and no swap either (its log would sit before this entry)
            if AccountItem.ADJUSTMENT_SEQ in account:
                seq_condition = "#adjustment_seq = :previous_seq"
                values[":previous_seq"] = codec.to_attribute(previous_seq)
            else:
                seq_condition = "attribute_not_exists(#adjustment_seq)"
            if AccountItem.LOG_SEQ in account:
                log_condition = "#log_seq = :log_seq"
                values[":log_seq"] = codec.to_attribute(int(account[AccountItem.LOG_SEQ]))
            else:
                log_condition = "attribute_not_exists(#log_seq)"
            condition = f"{seq_condition} AND {log_condition}"
        return {
            "Update": {
                "TableName": self._table,
                "Key": codec.to_item(AccountItem.key(au_id)),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _balance_write(self, au_id: int, planned: _Planned, adjustment: Adjustment) -> dict[str, Any]:
        target = planned.setting.target
        if planned.previous is None:
            # planned only with the details that create it (else NO_BALANCE)
            if isinstance(target, PointTarget) and target.mu_id is not None:
                item = PointBalanceItem.write(
                    au_id, target.app_id, target.point_id, target.mu_id, int(planned.setting.quantity)
                )
            elif isinstance(target, WalletTarget) and target.walletaddress is not None:
                item = WalletItem.write(au_id, target.coin_id, target.walletaddress, Decimal(planned.setting.quantity))
            else:
                raise ValueError(f"{planned.name}: a new balance needs its mu_id or walletaddress")
            item[PointBalanceItem.LAST_ADJUSTMENT_SEQ] = adjustment.adjustment_seq
            return {
                "Put": {
                    "TableName": self._table,
                    "Item": codec.to_item(item),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PK},
                }
            }
        details = _details(target)
        names = {f"#d{n}": name for n, name in enumerate(details)}
        sets = ["#quantity = :new", "#stamp = :seq", *(f"{alias} = :d{alias[2:]}" for alias in names)]
        return {
            "Update": {
                "TableName": self._table,
                "Key": codec.to_item(_balance_key(au_id, target)),
                "UpdateExpression": "SET " + ", ".join(sets),
                # the quantity it read: a swap that moved it since makes the read stale
                "ConditionExpression": "#quantity = :previous",
                "ExpressionAttributeNames": {
                    "#quantity": PointBalanceItem.QUANTITY,
                    "#stamp": PointBalanceItem.LAST_ADJUSTMENT_SEQ,
                    **names,
                },
                "ExpressionAttributeValues": {
                    ":new": codec.to_attribute(adjustment.new_quantity),
                    ":previous": codec.to_attribute(adjustment.previous_quantity),
                    ":seq": codec.to_attribute(adjustment.adjustment_seq),
                    **{f":d{n}": codec.to_attribute(value) for n, value in enumerate(details.values())},
                },
            }
        }


def _quantity(name: str, balance: Item) -> int | Decimal:
    value = Decimal(str(balance.get(PointBalanceItem.QUANTITY, 0)))
    return int(value) if name.startswith("POINT#") else value
