"""The ledger: accounts, balances, swap logs, request records, OTP guards, OTP secrets, swap catalogue.

The swap's and the ops tools' access to the ledger; items are built and read through
ledger_items, so the swap service sees the typed values of payments.models.ledger. Failures are
its own exceptions (LedgerReadFailed, Throttled, SwapOutcomeUnknown, SwapRejected): the swap service
decides which catalogued error each is, because the same failure means 34004, 34005, 32202 or 32204
depending on where in the swap it happens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.models.ledger import OtpGuard, SwapCommit, SwapLog, SwapState
from payments.repositories import codec, keys
from payments.repositories.batch import batch_get
from payments.repositories.ledger_items import (
    AccountItem,
    AppItem,
    CoinItem,
    OtpGuardItem,
    OtpSecretItem,
    PointBalanceItem,
    RateItem,
    RequestRecordItem,
    SwapLogItem,
    WalletItem,
)
from payments.repositories.shared_items import SharedItemCache
from payments.repositories.throttling import Throttled, is_throttling

# Cancellation reasons that mean "what was read has changed": read again and decide again.
_STALE_READ_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}
# Transaction errors that say nothing committed from this call, but another call may have.
_RETRYABLE_CODES = {"TransactionConflictException", "IdempotentParameterMismatchException"}
# A client error that does not say the transaction is over: the same token may still commit.
_MAYBE_COMMITTING_CODES = {"TransactionInProgressException"}


class LedgerReadFailed(Exception):
    """DynamoDB could not give the swap's state."""


class WalletReadFailed(LedgerReadFailed):
    """The caller's wallet item could not be read as a wallet."""


class SwapOutcomeUnknown(Exception):
    """The transaction was sent but no answer tells whether it committed."""


class SwapRejected(Exception):
    """DynamoDB refused the transaction outright (a client error): nothing of it committed."""


class CommitResult(Enum):
    COMMITTED = "committed"
    STALE = "stale"  # a condition failed: something read has changed (or this very swap committed)
    THROTTLED = "throttled"  # refused for throughput: this attempt committed nothing (an earlier lost one may have)


class GuardWriteResult(Enum):
    WRITTEN = "written"
    STALE = "stale"


class LedgerRepository:
    """The swap request's only access to DynamoDB (and the ops tools' view of the ledger)."""

    def __init__(
        self, client: Any, ledger_table: str, otp_secret_table: str, shared_items: SharedItemCache | None = None
    ) -> None:
        self._client = client
        self._table = ledger_table
        self._secrets = otp_secret_table
        # apps, coins and rates: read by every swap, kept for a bounded time (shared_items.py)
        self._shared_items = shared_items or SharedItemCache(0)

    # --- the swap -------------------------------------------------------------------------

    def read_swap_state(
        self,
        au_id: int,
        app_id: int | None,
        point_id: int | None,
        coin_id: int | None,
        fingerprint: str,
        may_ask_again: Callable[[], bool] = lambda: True,
    ) -> SwapState:
        """One strongly consistent BatchGetItem of every item the swap needs, over both tables.

        A malformed id is passed as None: the items keyed by it are not read, so the ids can
        still be judged in the error order; the request record is always read. Raises Throttled
        for a throughput refusal, LedgerReadFailed for any other failure.
        """
        wanted = {
            "account": AccountItem.key(au_id),
            "otp_guard": OtpGuardItem.key(au_id),
            "request": RequestRecordItem.key(au_id, fingerprint),
        }
        shared: dict[str, dict[str, str]] = {}
        if app_id is not None:
            shared["app"] = AppItem.key(app_id)
            if point_id is not None:
                wanted["point"] = PointBalanceItem.key(au_id, app_id, point_id)
            if coin_id is not None:
                wanted["wallet"] = WalletItem.key(au_id, coin_id)
                shared["coin"] = CoinItem.key(coin_id)
            if point_id is not None and coin_id is not None:
                shared["rate"] = RateItem.key(app_id, point_id, coin_id)
        # the catalogue items still kept are not read; the others ride in the same round trip
        items = {name: self._shared_items.get(self._shared_key(key)) for name, key in shared.items()}
        stale = {name: key for name, key in shared.items() if items[name] is None}
        secret_key = OtpSecretItem.key(au_id)
        read_at = self._shared_items.now()
        try:
            found = batch_get(
                self._client,
                {self._table: [*wanted.values(), *stale.values()], self._secrets: [secret_key]},
                consistent=True,
                may_ask_again=may_ask_again,
            )
        except (ClientError, BotoCoreError) as error:
            raise LedgerReadFailed(str(error)) from error
        items.update({name: found.get(self._shared_key(key)) for name, key in {**wanted, **stale}.items()})
        for name, key in stale.items():
            if items[name] is not None:
                self._shared_items.put(self._shared_key(key), items[name], read_at)
        secret = found.get((self._secrets, secret_key[keys.PK], secret_key[keys.SK]))
        try:
            wallet = WalletItem.read(items.get("wallet"))
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise WalletReadFailed(f"malformed wallet item: {error!r}") from error
        try:
            return SwapState(
                account=AccountItem.read(items["account"]),
                point=PointBalanceItem.read(items.get("point")),
                wallet=wallet,
                otp_secret=OtpSecretItem.read(secret),
                otp_guard=OtpGuardItem.read(items["otp_guard"]),
                app=AppItem.read(items.get("app")),
                coin=CoinItem.read(items.get("coin")),
                rate=RateItem.read(items.get("rate")),
                request=RequestRecordItem.read(items["request"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise LedgerReadFailed(f"malformed ledger item: {error!r}") from error

    def _shared_key(self, key: dict[str, str]) -> tuple[str, str, str]:
        return (self._table, key[keys.PK], key[keys.SK])

    def commit_swap(self, commit: SwapCommit) -> CommitResult:
        """Move both balances, consume the OTP step, append the log and the request record, all or nothing.

        The same `commit` always sends the same transaction with the same ClientRequestToken, so
        a resend after a lost answer is one transaction for DynamoDB (for 10 minutes).
        """
        try:
            self._client.transact_write_items(
                TransactItems=self._transaction(commit), ClientRequestToken=_client_token(commit)
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "TransactionCanceledException":
                reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
                if reasons & _STALE_READ_REASONS:
                    return CommitResult.STALE
            if is_throttling(error):
                return CommitResult.THROTTLED
            if code in _RETRYABLE_CODES:
                return CommitResult.STALE
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if 400 <= status < 500 and code not in _MAYBE_COMMITTING_CODES:
                raise SwapRejected(f"{code}: {error}") from error
            raise SwapOutcomeUnknown(f"{code}: {error}") from error
        except BotoCoreError as error:
            raise SwapOutcomeUnknown(str(error)) from error
        return CommitResult.COMMITTED

    def _transaction(self, commit: SwapCommit) -> list[dict[str, Any]]:
        record = commit.record
        # the swap's own clock, fixed with the plan, so that a resend is the very same transaction
        now_ms = record.created_at_ms
        log_item = SwapLogItem.write(
            SwapLog(
                commit.log_id, record.fingerprint, commit.otp_step, record.created_at_ms, record.result, commit.rate
            )
        )
        record_item = RequestRecordItem.write(record)
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": codec.to_item(AccountItem.key(commit.au_id)),
                    "UpdateExpression": (
                        "SET #entity = :entity, #au_id = :au_id, #version = :next_version, #log_seq = :log_id, "
                        "#otp_steps = :otp_steps"
                    ),
                    "ConditionExpression": "#version = :version"
                    if commit.account_exists
                    else "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {
                        **({} if commit.account_exists else {"#pk": keys.PK}),
                        "#entity": keys.ENTITY,
                        "#au_id": "au_id",
                        "#version": AccountItem.VERSION,
                        "#log_seq": AccountItem.LOG_SEQ,
                        "#otp_steps": AccountItem.OTP_STEPS,
                    },
                    "ExpressionAttributeValues": {
                        ":entity": codec.to_attribute(AccountItem.ENTITY),
                        ":au_id": codec.to_attribute(commit.au_id),
                        **({":version": codec.to_attribute(commit.account_version)} if commit.account_exists else {}),
                        ":next_version": codec.to_attribute(commit.account_version + 1),
                        ":log_id": codec.to_attribute(commit.log_id),
                        ":otp_steps": codec.to_attribute(AccountItem.steps_attribute(commit.consumed_otp_steps)),
                    },
                }
            },
            _balance_update(
                self._table,
                PointBalanceItem.key(commit.au_id, commit.app_id, commit.point_id),
                commit.previous_point,
                commit.new_point,
                commit.log_id,
            ),
            _balance_update(
                self._table,
                WalletItem.key(commit.au_id, commit.coin_id),
                commit.previous_coin,
                commit.new_coin,
                commit.log_id,
            ),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": codec.to_item(log_item),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PK},
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": codec.to_item(record_item),
                    # an expired record of the same request may be replaced, a live one never
                    "ConditionExpression": "attribute_not_exists(#pk) OR #expires_at_ms <= :now_ms",
                    "ExpressionAttributeNames": {"#pk": keys.PK, "#expires_at_ms": RequestRecordItem.EXPIRES_AT_MS},
                    "ExpressionAttributeValues": {":now_ms": codec.to_attribute(now_ms)},
                }
            },
            {
                # no swap commits while OTP is locked, whatever was read
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": codec.to_item(OtpGuardItem.key(commit.au_id)),
                    "ConditionExpression": "attribute_not_exists(#pk) OR #locked_until_ms <= :now_ms",
                    "ExpressionAttributeNames": {"#pk": keys.PK, "#locked_until_ms": OtpGuardItem.LOCKED_UNTIL_MS},
                    "ExpressionAttributeValues": {":now_ms": codec.to_attribute(now_ms)},
                }
            },
        ]

    def get_logged_swap(self, au_id: int, log_id: int) -> SwapLog | None:
        """One logged swap (its request's fingerprint and result), read consistently.

        A GetItem is serializable with transactions (a BatchGetItem as a whole is not: it may see
        one item of a transaction committed and another not yet), so this settles what a
        consumed OTP step's swap was.
        """
        try:
            response = self._client.get_item(
                TableName=self._table, Key=codec.to_item(SwapLogItem.key(au_id, log_id)), ConsistentRead=True
            )
            item = codec.from_item(response.get("Item"))
            return None if item is None else SwapLogItem.read(item)
        except ClientError as error:
            raise _read_failure(error) from error
        except BotoCoreError as error:
            raise LedgerReadFailed(str(error)) from error
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise LedgerReadFailed(f"malformed swap log item: {error!r}") from error

    # --- OTP guard ------------------------------------------------------------------------

    def save_otp_guard(self, au_id: int, expected_version: int, guard: OtpGuard, expires_at: int) -> GuardWriteResult:
        """Replace the guard if it is still at `expected_version` (one wrong code judged at a time)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=codec.to_item(OtpGuardItem.write(au_id, guard, expires_at)),
                **_expected_version(expected_version),
            )
        except ClientError as error:
            # a failed version condition, or a swap's transaction holding the guard: judge again
            if error.response.get("Error", {}).get("Code") in {
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            }:
                return GuardWriteResult.STALE
            raise _read_failure(error) from error
        except BotoCoreError as error:
            raise LedgerReadFailed(str(error)) from error
        return GuardWriteResult.WRITTEN

    def get_otp_guard(self, au_id: int) -> OtpGuard:
        try:
            response = self._client.get_item(
                TableName=self._table, Key=codec.to_item(OtpGuardItem.key(au_id)), ConsistentRead=True
            )
            return OtpGuardItem.read(codec.from_item(response.get("Item")))
        except ClientError as error:
            raise _read_failure(error) from error
        except BotoCoreError as error:
            raise LedgerReadFailed(str(error)) from error
        except (KeyError, TypeError, ValueError) as error:
            raise LedgerReadFailed(f"malformed OTP guard item: {error!r}") from error

    def unlock_otp(self, au_id: int, now_ms: int) -> None:
        """Ops: forget an account's wrong codes and lift its lock.

        The guard is replaced, not deleted, with a version no writer can still expect (versions
        are at least the time of the write in ms), so a wrong code judged meanwhile cannot
        overwrite the unlock with a stale version, nor the unlock resurrect an old version.
        """
        unlocked = OtpGuard(version=now_ms, failures=(), locked_until_ms=0)
        self._client.put_item(
            TableName=self._table, Item=codec.to_item(OtpGuardItem.write(au_id, unlocked, now_ms // 1000 + 1))
        )

    # --- ops tools ------------------------------------------------------------------------

    def get_otp_secret(self, au_id: int) -> str | None:
        response = self._client.get_item(
            TableName=self._secrets, Key=codec.to_item(OtpSecretItem.key(au_id)), ConsistentRead=True
        )
        return OtpSecretItem.read(codec.from_item(response.get("Item")))

    def enroll_otp(self, au_id: int, secret: str) -> None:
        """Set the account's TOTP secret; the account item is created (never reset) as well."""
        self.ensure_account(au_id)
        self._client.put_item(TableName=self._secrets, Item=codec.to_item(OtpSecretItem.write(au_id, secret)))

    def ensure_account(self, au_id: int) -> None:
        """Create the account item if it is missing; an existing one keeps its counters."""
        self._client.update_item(
            TableName=self._table,
            Key=codec.to_item(AccountItem.key(au_id)),
            UpdateExpression=(
                "SET #entity = :entity, #au_id = :au_id, #version = if_not_exists(#version, :zero), "
                "#log_seq = if_not_exists(#log_seq, :zero), #otp_steps = if_not_exists(#otp_steps, :empty)"
            ),
            ExpressionAttributeNames={
                "#entity": keys.ENTITY,
                "#au_id": "au_id",
                "#version": AccountItem.VERSION,
                "#log_seq": AccountItem.LOG_SEQ,
                "#otp_steps": AccountItem.OTP_STEPS,
            },
            ExpressionAttributeValues={
                ":entity": codec.to_attribute(AccountItem.ENTITY),
                ":au_id": codec.to_attribute(au_id),
                ":zero": codec.to_attribute(0),
                ":empty": codec.to_attribute({}),
            },
        )

    def iter_ledger_items(self) -> Iterator[dict[str, Any]]:
        """Every ledger item (ops only: reconciliation scans, request paths never do)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                decoded = codec.from_item(item)
                if decoded is not None:
                    yield decoded


def _read_failure(error: ClientError) -> Exception:
    return Throttled(str(error)) if is_throttling(error) else LedgerReadFailed(str(error))


def _expected_version(version: int) -> dict[str, Any]:
    """Condition of an optimistic write: the item is still at `version` (0: it does not exist yet)."""
    if version == 0:
        return {"ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": {"#pk": keys.PK}}
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": AccountItem.VERSION},
        "ExpressionAttributeValues": {":expected": codec.to_attribute(version)},
    }


def _client_token(commit: SwapCommit) -> str:
    """36 characters naming this attempt of this request: a resend of it is the same transaction."""
    text = f"{commit.au_id}:{commit.record.fingerprint}:{commit.account_version}:{commit.record.created_at_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:36]


def _balance_update(
    table: str, key: dict[str, str], previous: int | Decimal, new: int | Decimal, log_id: int
) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": codec.to_item(key),
            # stamped with the swap's log id: a read that sees this balance but an older account
            # item has seen this transaction only in part
            "UpdateExpression": "SET #quantity = :new, #last_log_id = :log_id",
            "ConditionExpression": "#quantity = :previous",
            "ExpressionAttributeNames": {
                "#quantity": PointBalanceItem.QUANTITY,
                "#last_log_id": PointBalanceItem.LAST_LOG_ID,
            },
            "ExpressionAttributeValues": {
                ":new": codec.to_attribute(new),
                ":previous": codec.to_attribute(previous),
                ":log_id": codec.to_attribute(log_id),
            },
        }
    }
