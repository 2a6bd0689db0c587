"""The stored shape of every ledger (and OTP secret) item: keys, attribute names, mapping to typed values.

The only definition of these items: the ledger repository, the fixture loader and `reconcile` read
and write through it. Items are plain Python values (payments.repositories.codec turns them into
DynamoDB attribute values). Stored shapes are their own, never an API model: a swap's result is
stored under the names below, whatever the response calls them. docs/data-model.md describes the
same shapes for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from payments.models.ledger import (
    Account,
    Adjustment,
    Coin,
    OtpFailure,
    OtpGuard,
    PointAccount,
    RequestRecord,
    SwapLog,
    SwappableApp,
    SwapResult,
    Wallet,
)
from payments.repositories import keys

Item = dict[str, Any]


class AccountItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `ACCOUNT`: optimistic version, last log id, consumed OTP steps {"{step}": log_id}."""

    ENTITY = "account"
    VERSION = "version"
    LOG_SEQ = "log_seq"
    OTP_STEPS = "otp_steps"
    ADJUSTMENT_SEQ = "adjustment_seq"  # last adjustment_seq (absent: 0), written by adjustments only
    key = staticmethod(keys.account)

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> Account | None:
        if item is None:
            return None
        # Older items kept {"log_id", "fingerprint"} per step; the log id is what matters.
        steps = {
            int(step): int(value["log_id"] if isinstance(value, dict) else value)
            for step, value in (item.get("otp_steps") or {}).items()
        }
        return Account(
            au_id=int(item["au_id"]),
            version=int(item.get("version", 0)),
            log_seq=int(item.get("log_seq", 0)),
            consumed_otp_steps=steps,
        )

    @staticmethod
    def steps_attribute(steps: Mapping[int, int]) -> dict[str, int]:
        return {str(step): log_id for step, log_id in steps.items()}


class PointBalanceItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `POINT#{app_id}#{point_id}`: `mu_id`, `quantity` (int), `last_log_id` (0: none)."""

    ENTITY = "point"
    QUANTITY = "quantity"
    LAST_LOG_ID = "last_log_id"
    # the adjustment that last set it (wallets too): a balance write is explained by the entry its stamp names
    LAST_ADJUSTMENT_SEQ = "last_adjustment_seq"
    key = staticmethod(keys.point_balance)

    @classmethod
    def write(cls, au_id: int, app_id: int, point_id: int, mu_id: int, quantity: int) -> Item:
        """The item as the loader sets it (a swap's `last_log_id` stays: the loader merges over what is stored)."""
        return {
            **cls.key(au_id, app_id, point_id),
            keys.ENTITY: cls.ENTITY,
            "au_id": au_id,
            "app_id": app_id,
            "point_id": point_id,
            "mu_id": mu_id,
            "quantity": quantity,
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> PointAccount | None:
        if item is None:
            return None
        return PointAccount(
            mu_id=int(item["mu_id"]), quantity=int(item["quantity"]), last_log_id=int(item.get("last_log_id", 0))
        )

    @staticmethod
    def quantity_of(item: Mapping[str, Any] | None) -> int:
        """The balance, 0 when there is no such account (the honeypots shown by payment progress)."""
        return int((item or {}).get("quantity", 0))


class WalletItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `WALLET#{coin_id}`: `walletaddress`, `quantity` (decimal), `last_log_id`."""

    ENTITY = "wallet"
    key = staticmethod(keys.wallet)

    @classmethod
    def write(cls, au_id: int, coin_id: int, walletaddress: str, quantity: Decimal) -> Item:
        return {
            **cls.key(au_id, coin_id),
            keys.ENTITY: cls.ENTITY,
            "au_id": au_id,
            "coin_id": coin_id,
            "walletaddress": walletaddress,
            "quantity": quantity,
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> Wallet | None:
        if item is None:
            return None
        return Wallet(
            walletaddress=str(item["walletaddress"]),
            quantity=Decimal(str(item["quantity"])),
            last_log_id=int(item.get("last_log_id", 0)),
        )


def read_balance(item: Mapping[str, Any]) -> tuple[int, str, Decimal] | None:
    """(au_id, the balance's name: its sort key, `POINT#1#1` / `WALLET#2`, quantity) of a point balance or a
    wallet item; None for any other item (what `reconcile` compares with the swap logs)."""
    if not (PointBalanceItem.holds(item) or WalletItem.holds(item)):
        return None
    return int(item["au_id"]), str(item[keys.SK]), Decimal(item["quantity"])


def _result_attribute(result: SwapResult) -> dict[str, Any]:
    """A swap's result as stored in its log and request record (the names of the seed's swap answer)."""
    return {
        "au_id": result.au_id,
        "point": {
            "mu_id": result.mu_id,
            "app_id": result.app_id,
            "database_id": result.database_id,
            "point_id": result.point_id,
            "previous_point_quantity": result.previous_point,
            "adjust_point_quantity": result.adjust_point,
            "point_quantity": result.new_point,
        },
        "coin": {
            "coin_id": result.coin_id,
            "walletaddress": result.walletaddress,
            "previous_coin_quantity": result.previous_coin,
            "adjust_coin_quantity": result.adjust_coin,
            "coin_quantity": result.new_coin,
        },
        "log_id": result.log_id,
        "event_id": result.event_id,
    }


def _result_value(stored: Mapping[str, Any]) -> SwapResult:
    point, coin = stored["point"], stored["coin"]
    return SwapResult(
        au_id=int(stored["au_id"]),
        event_id=int(stored["event_id"]),
        log_id=int(stored["log_id"]),
        app_id=int(point["app_id"]),
        database_id=int(point["database_id"]),
        point_id=int(point["point_id"]),
        mu_id=int(point["mu_id"]),
        previous_point=int(point["previous_point_quantity"]),
        adjust_point=int(point["adjust_point_quantity"]),
        new_point=int(point["point_quantity"]),
        coin_id=int(coin["coin_id"]),
        walletaddress=str(coin["walletaddress"]),
        previous_coin=Decimal(str(coin["previous_coin_quantity"])),
        adjust_coin=Decimal(str(coin["adjust_coin_quantity"])),
        new_coin=Decimal(str(coin["coin_quantity"])),
    )


class SwapLogItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `SWAPLOG#{log_id:020d}`: the audit trail, one per committed swap."""

    ENTITY = "swap_log"
    key = staticmethod(keys.swap_log)

    @classmethod
    def write(cls, log: SwapLog) -> Item:
        result = log.result
        return {
            **cls.key(result.au_id, log.log_id),
            keys.ENTITY: cls.ENTITY,
            "au_id": result.au_id,
            "log_id": log.log_id,
            "fingerprint": log.fingerprint,
            "otp_step": log.otp_step,
            "created_at_ms": log.created_at_ms,
            "value": _result_attribute(result),
            **({} if log.rate is None else {"rate": log.rate}),
        }

    @staticmethod
    def read(item: Mapping[str, Any]) -> SwapLog:
        return SwapLog(
            log_id=int(item["log_id"]),
            fingerprint=str(item.get("fingerprint", "")),
            otp_step=int(item.get("otp_step", 0)),
            created_at_ms=int(item.get("created_at_ms", 0)),
            result=_result_value(item["value"]),
            rate=None if item.get("rate") is None else Decimal(str(item["rate"])),
        )


class RequestRecordItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `REQUEST#{fingerprint}`: a committed request's answer, replayed until `expires_at_ms`."""

    ENTITY = "request"
    EXPIRES_AT_MS = "expires_at_ms"
    key = staticmethod(keys.request_record)

    @classmethod
    def write(cls, record: RequestRecord) -> Item:
        result = record.result
        return {
            **cls.key(result.au_id, record.fingerprint),
            keys.ENTITY: cls.ENTITY,
            "au_id": result.au_id,
            "fingerprint": record.fingerprint,
            "log_id": result.log_id,
            "created_at_ms": record.created_at_ms,
            "expires_at_ms": record.expires_at_ms,
            # TTL clean-up only (late by design); readers judge expiry by expires_at_ms themselves
            "expires_at": record.expires_at_ms // 1000 + 1,
            "value": _result_attribute(result),
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> RequestRecord | None:
        if item is None:
            return None
        return RequestRecord(
            fingerprint=str(item["fingerprint"]),
            result=_result_value(item["value"]),
            created_at_ms=int(item["created_at_ms"]),
            expires_at_ms=int(item["expires_at_ms"]),
        )


class OtpGuardItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `OTP_GUARD`: recent wrong codes [{id, at_ms}], `locked_until_ms`, `version`, TTL."""

    ENTITY = "otp_guard"
    LOCKED_UNTIL_MS = "locked_until_ms"
    key = staticmethod(keys.otp_guard)

    @classmethod
    def write(cls, au_id: int, guard: OtpGuard, expires_at: int) -> Item:
        return {
            **cls.key(au_id),
            keys.ENTITY: cls.ENTITY,
            "au_id": au_id,
            "version": guard.version,
            "failures": [{"id": failure.failure_id, "at_ms": failure.at_ms} for failure in guard.failures],
            "locked_until_ms": guard.locked_until_ms,
            "expires_at": expires_at,
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> OtpGuard:
        if item is None:
            return OtpGuard()
        return OtpGuard(
            version=int(item.get("version", 0)),
            failures=tuple(OtpFailure(str(f["id"]), int(f["at_ms"])) for f in item.get("failures", [])),
            locked_until_ms=int(item.get("locked_until_ms", 0)),
        )


class AppItem(keys.Entity):
    """`APP#{app_id}` / `APP`: `database_id`, `name`, `points` {"{point_id}": name}."""

    ENTITY = "app"
    key = staticmethod(keys.app)

    @classmethod
    def write(cls, app_id: int, database_id: int, name: str, points: Mapping[int, str]) -> Item:
        return {
            **cls.key(app_id),
            keys.ENTITY: cls.ENTITY,
            "app_id": app_id,
            "database_id": database_id,
            "name": name,
            "points": {str(point_id): point_name for point_id, point_name in points.items()},
        }

    @staticmethod
    def point_names(item: Mapping[str, Any]) -> dict[int, str]:
        return {int(point_id): str(name) for point_id, name in item.get("points", {}).items()}

    @classmethod
    def read(cls, item: Mapping[str, Any] | None) -> SwappableApp | None:
        if item is None:
            return None
        return SwappableApp(
            app_id=int(item["app_id"]),
            database_id=int(item["database_id"]),
            point_ids=frozenset(cls.point_names(item)),
        )


class CoinItem(keys.Entity):
    """`COIN#{coin_id}` / `COIN`: `symbol`, `decimals` (the most fractional digits a quantity may have)."""

    ENTITY = "coin"
    key = staticmethod(keys.coin)

    @classmethod
    def write(cls, coin_id: int, symbol: str, decimals: int) -> Item:
        return {**cls.key(coin_id), keys.ENTITY: cls.ENTITY, "coin_id": coin_id, "symbol": symbol, "decimals": decimals}

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> Coin | None:
        return None if item is None else Coin(coin_id=int(item["coin_id"]), decimals=int(item["decimals"]))


class RateItem(keys.Entity):
    """`RATE#{app_id}#{point_id}#{coin_id}` / `RATE`: `rate`, coins per point (decimal)."""

    ENTITY = "rate"
    key = staticmethod(keys.swap_rate)

    @classmethod
    def write(cls, app_id: int, point_id: int, coin_id: int, rate: Decimal) -> Item:
        return {
            **cls.key(app_id, point_id, coin_id),
            keys.ENTITY: cls.ENTITY,
            "app_id": app_id,
            "point_id": point_id,
            "coin_id": coin_id,
            "rate": rate,
        }

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> Decimal | None:
        return None if item is None else Decimal(str(item["rate"]))


class OtpSecretItem:
    """OTP secret table, `ACCOUNT#{au_id}` / `OTP_SECRET`: `otp_secret` (base32), under the table's KMS key."""

    key = staticmethod(keys.otp_secret)

    @classmethod
    def write(cls, au_id: int, secret: str) -> Item:
        return {**cls.key(au_id), "au_id": au_id, "otp_secret": secret}

    @staticmethod
    def read(item: Mapping[str, Any] | None) -> str | None:
        return str(item["otp_secret"]) if item and item.get("otp_secret") else None


class AdjustmentItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `ADJUSTMENT#{adjustment_seq:020d}`: a balance set outside any swap, with what it replaced.

    `balance` is the balance item's sort key; quantities are ints for points, decimals for wallets. `opening`
    (true, or absent) marks the entries of the transaction that created the account.
    """

    ENTITY = "adjustment"
    key = staticmethod(keys.adjustment)

    @classmethod
    def write(cls, adjustment: Adjustment) -> Item:
        return {
            **cls.key(adjustment.au_id, adjustment.adjustment_seq),
            keys.ENTITY: cls.ENTITY,
            "au_id": adjustment.au_id,
            "adjustment_seq": adjustment.adjustment_seq,
            "adjustment_id": adjustment.adjustment_id,
            "balance": adjustment.balance,
            "after_log_id": adjustment.after_log_id,
            "previous_quantity": adjustment.previous_quantity,
            "new_quantity": adjustment.new_quantity,
            "reason": adjustment.reason,
            "actor": adjustment.actor,
            "created_at_ms": adjustment.created_at_ms,
            **({"opening": True} if adjustment.opening else {}),
        }

    @staticmethod
    def read(item: Mapping[str, Any]) -> Adjustment:
        balance = str(item["balance"])
        number = int if balance.startswith("POINT#") else (lambda value: Decimal(str(value)))
        return Adjustment(
            au_id=int(item["au_id"]),
            adjustment_seq=int(item["adjustment_seq"]),
            adjustment_id=str(item["adjustment_id"]),
            balance=balance,
            after_log_id=int(item["after_log_id"]),
            previous_quantity=number(item["previous_quantity"]),
            new_quantity=number(item["new_quantity"]),
            reason=str(item.get("reason", "")),
            actor=str(item.get("actor", "")),
            created_at_ms=int(item.get("created_at_ms", 0)),
            opening=bool(item.get("opening", False)),
        )


class AdjustmentMarkerItem(keys.Entity):
    """`ACCOUNT#{au_id}` / `ADJUSTMENT_ID#{adjustment_id}`: an adjustment id already applied (and its entry's seq)."""

    ENTITY = "adjustment_marker"
    key = staticmethod(keys.adjustment_marker)

    @classmethod
    def write(cls, adjustment: Adjustment) -> Item:
        return {
            **cls.key(adjustment.au_id, adjustment.adjustment_id),
            keys.ENTITY: cls.ENTITY,
            "au_id": adjustment.au_id,
            "adjustment_id": adjustment.adjustment_id,
            "adjustment_seq": adjustment.adjustment_seq,
            "created_at_ms": adjustment.created_at_ms,
        }
