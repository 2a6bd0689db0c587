"""The ledger: accounts, balances, swap logs, request records, OTP guards, OTP secrets, swap catalogue.

The only code that builds or reads the ledger's DynamoDB items; the swap service sees the typed
values of payments.models.ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.models.ledger import (
    Account,
    Coin,
    OtpFailure,
    OtpGuard,
    PointAccount,
    RequestRecord,
    SwapCommit,
    SwappableApp,
    SwapState,
    Wallet,
)
from payments.models.swap import SwapValue
from payments.repositories import codec, keys
from payments.repositories.batch import batch_get

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


class GuardWriteResult(Enum):
    WRITTEN = "written"
    STALE = "stale"


class LedgerRepository:
    """The swap request's only access to DynamoDB (and the ops tools' view of the ledger)."""

    def __init__(self, client: Any, ledger_table: str, otp_secret_table: str) -> None:
        self._client = client
        self._table = ledger_table
        self._secrets = otp_secret_table

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
        still be judged in the error order; the request record is always read.
        """
        wanted = {
            "account": keys.account(au_id),
            "otp_guard": keys.otp_guard(au_id),
            "request": keys.request_record(au_id, fingerprint),
        }
        if app_id is not None:
            wanted["app"] = keys.app(app_id)
            if point_id is not None:
                wanted["point"] = keys.point_balance(au_id, app_id, point_id)
            if coin_id is not None:
                wanted["wallet"] = keys.wallet(au_id, coin_id)
                wanted["coin"] = keys.coin(coin_id)
            if point_id is not None and coin_id is not None:
                wanted["rate"] = keys.swap_rate(app_id, point_id, coin_id)
        secret_key = keys.otp_secret(au_id)
        try:
            found = batch_get(
                self._client,
                {self._table: list(wanted.values()), self._secrets: [secret_key]},
                consistent=True,
                may_ask_again=may_ask_again,
            )
        except (ClientError, BotoCoreError, RuntimeError) as error:
            raise LedgerReadFailed(str(error)) from error
        items = {name: found.get((self._table, key[keys.PK], key[keys.SK])) for name, key in wanted.items()}
        secret = found.get((self._secrets, secret_key[keys.PK], secret_key[keys.SK]))
        try:
            wallet = _wallet(items.get("wallet"))
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise WalletReadFailed(f"malformed wallet item: {error!r}") from error
        try:
            return SwapState(
                account=_account(items["account"]),
                point=_point(items.get("point")),
                wallet=wallet,
                otp_secret=str(secret["otp_secret"]) if secret and secret.get("otp_secret") else None,
                otp_guard=_otp_guard(items["otp_guard"]),
                app=_app(items.get("app")),
                coin=_coin(items.get("coin")),
                rate=_rate(items.get("rate")),
                request=_request_record(items["request"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise LedgerReadFailed(f"malformed ledger item: {error!r}") from error

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
        log_item = {
            **keys.swap_log(commit.au_id, commit.log_id),
            "entity": "swap_log",
            "au_id": commit.au_id,
            "log_id": commit.log_id,
            "fingerprint": record.fingerprint,
            "otp_step": commit.otp_step,
            "created_at_ms": record.created_at_ms,
            "value": record.value.model_dump(),
        }
        record_item = {
            **keys.request_record(commit.au_id, record.fingerprint),
            "entity": "request",
            "au_id": commit.au_id,
            "fingerprint": record.fingerprint,
            "log_id": commit.log_id,
            "created_at_ms": record.created_at_ms,
            "expires_at_ms": record.expires_at_ms,
            # TTL clean-up only (late by design); readers judge expiry by expires_at_ms themselves
            "expires_at": record.expires_at_ms // 1000 + 1,
            "value": record.value.model_dump(),
        }
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": codec.to_item(keys.account(commit.au_id)),
                    "UpdateExpression": (
                        "SET #entity = :entity, #au_id = :au_id, #version = :next_version, #log_seq = :log_id, "
                        "#otp_steps = :otp_steps"
                    ),
                    "ConditionExpression": "#version = :version"
                    if commit.account_exists
                    else "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {
                        **({} if commit.account_exists else {"#pk": keys.PK}),
                        "#entity": "entity",
                        "#au_id": "au_id",
                        "#version": "version",
                        "#log_seq": "log_seq",
                        "#otp_steps": "otp_steps",
                    },
                    "ExpressionAttributeValues": {
                        ":entity": codec.to_attribute("account"),
                        ":au_id": codec.to_attribute(commit.au_id),
                        **({":version": codec.to_attribute(commit.account_version)} if commit.account_exists else {}),
                        ":next_version": codec.to_attribute(commit.account_version + 1),
                        ":log_id": codec.to_attribute(commit.log_id),
                        ":otp_steps": codec.to_attribute(
                            {str(step): log_id for step, log_id in commit.consumed_otp_steps.items()}
                        ),
                    },
                }
            },
            _balance_update(
                self._table,
                keys.point_balance(commit.au_id, commit.app_id, commit.point_id),
                commit.previous_point,
                commit.new_point,
                commit.log_id,
            ),
            _balance_update(
                self._table,
                keys.wallet(commit.au_id, commit.coin_id),
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
                    "ExpressionAttributeNames": {"#pk": keys.PK, "#expires_at_ms": "expires_at_ms"},
                    "ExpressionAttributeValues": {":now_ms": codec.to_attribute(now_ms)},
                }
            },
            {
                # no swap commits while OTP is locked, whatever was read
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": codec.to_item(keys.otp_guard(commit.au_id)),
                    "ConditionExpression": "attribute_not_exists(#pk) OR #locked_until_ms <= :now_ms",
                    "ExpressionAttributeNames": {"#pk": keys.PK, "#locked_until_ms": "locked_until_ms"},
                    "ExpressionAttributeValues": {":now_ms": codec.to_attribute(now_ms)},
                }
            },
        ]

    def get_logged_swap(self, au_id: int, log_id: int) -> tuple[str, SwapValue] | None:
        """(request fingerprint, answer) of one logged swap, read consistently.

        A GetItem is serializable with transactions (a BatchGetItem as a whole is not: it may see
        one item of a transaction committed and another not yet), so this settles what a
        consumed OTP step's swap was.
        """
        try:
            response = self._client.get_item(
                TableName=self._table, Key=codec.to_item(keys.swap_log(au_id, log_id)), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise LedgerReadFailed(str(error)) from error
        item = codec.from_item(response.get("Item"))
        if item is None:
            return None
        return str(item.get("fingerprint", "")), SwapValue.model_validate(item["value"])

    # --- OTP guard ------------------------------------------------------------------------

    def save_otp_guard(self, au_id: int, expected_version: int, guard: OtpGuard, expires_at: int) -> GuardWriteResult:
        """Replace the guard if it is still at `expected_version` (one wrong code judged at a time)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=codec.to_item(
                    {
                        **keys.otp_guard(au_id),
                        "entity": "otp_guard",
                        "au_id": au_id,
                        "version": guard.version,
                        "failures": [{"id": f.failure_id, "at_ms": f.at_ms} for f in guard.failures],
                        "locked_until_ms": guard.locked_until_ms,
                        "expires_at": expires_at,
                    }
                ),
                **_expected_version(expected_version),
            )
        except ClientError as error:
            # a failed version condition, or a swap's transaction holding the guard: judge again
            if error.response.get("Error", {}).get("Code") in {
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            }:
                return GuardWriteResult.STALE
            raise LedgerReadFailed(str(error)) from error
        except BotoCoreError as error:
            raise LedgerReadFailed(str(error)) from error
        return GuardWriteResult.WRITTEN

    def get_otp_guard(self, au_id: int) -> OtpGuard:
        try:
            response = self._client.get_item(
                TableName=self._table, Key=codec.to_item(keys.otp_guard(au_id)), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise LedgerReadFailed(str(error)) from error
        return _otp_guard(codec.from_item(response.get("Item")))

    def unlock_otp(self, au_id: int, now_ms: int) -> None:
        """Ops: forget an account's wrong codes and lift its lock.

        The guard is replaced, not deleted, with a version no writer can still expect (versions
        are at least the time of the write in ms), so a wrong code judged meanwhile cannot
        overwrite the unlock with a stale version, nor the unlock resurrect an old version.
        """
        self._client.put_item(
            TableName=self._table,
            Item=codec.to_item(
                {
                    **keys.otp_guard(au_id),
                    "entity": "otp_guard",
                    "au_id": au_id,
                    "version": now_ms,
                    "failures": [],
                    "locked_until_ms": 0,
                    "expires_at": now_ms // 1000 + 1,
                }
            ),
        )

    # --- ops tools ------------------------------------------------------------------------

    def get_otp_secret(self, au_id: int) -> str | None:
        response = self._client.get_item(
            TableName=self._secrets, Key=codec.to_item(keys.otp_secret(au_id)), ConsistentRead=True
        )
        item = codec.from_item(response.get("Item"))
        return str(item["otp_secret"]) if item and item.get("otp_secret") else None

    def enroll_otp(self, au_id: int, secret: str) -> None:
        """Set the account's TOTP secret; the account item is created (never reset) as well."""
        self.ensure_account(au_id)
        self._client.put_item(
            TableName=self._secrets,
            Item=codec.to_item({**keys.otp_secret(au_id), "au_id": au_id, "otp_secret": secret}),
        )

    def ensure_account(self, au_id: int) -> None:
        """Create the account item if it is missing; an existing one keeps its counters."""
        self._client.update_item(
            TableName=self._table,
            Key=codec.to_item(keys.account(au_id)),
            UpdateExpression=(
                "SET #entity = :entity, #au_id = :au_id, #version = if_not_exists(#version, :zero), "
                "#log_seq = if_not_exists(#log_seq, :zero), #otp_steps = if_not_exists(#otp_steps, :empty)"
            ),
            ExpressionAttributeNames={
                "#entity": "entity",
                "#au_id": "au_id",
                "#version": "version",
                "#log_seq": "log_seq",
                "#otp_steps": "otp_steps",
            },
            ExpressionAttributeValues={
                ":entity": codec.to_attribute("account"),
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


def _expected_version(version: int) -> dict[str, Any]:
    """Condition of an optimistic write: the item is still at `version` (0: it does not exist yet)."""
    if version == 0:
        return {"ConditionExpression": "attribute_not_exists(#pk)", "ExpressionAttributeNames": {"#pk": keys.PK}}
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":expected": codec.to_attribute(version)},
    }


def _client_token(commit: SwapCommit) -> str:
    """36 characters naming this attempt of this request: a resend of it is the same transaction."""
    text = f"{commit.au_id}:{commit.record.fingerprint}:{commit.account_version}:{commit.record.created_at_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:36]


def _account(item: dict[str, Any] | None) -> Account | None:
    if item is None:
        return None
    return Account(
        au_id=int(item["au_id"]),
        version=int(item.get("version", 0)),
        log_seq=int(item.get("log_seq", 0)),
        consumed_otp_steps={int(step): int(log_id) for step, log_id in _steps(item.get("otp_steps")).items()},
    )


def _steps(stored: Any) -> dict[str, Any]:
    # Older items kept {"log_id", "fingerprint"} per step; the log id is what matters.
    return {step: (value["log_id"] if isinstance(value, dict) else value) for step, value in (stored or {}).items()}


def _point(item: dict[str, Any] | None) -> PointAccount | None:
    if item is None:
        return None
    return PointAccount(
        mu_id=int(item["mu_id"]), quantity=int(item["quantity"]), last_log_id=int(item.get("last_log_id", 0))
    )


def _wallet(item: dict[str, Any] | None) -> Wallet | None:
    if item is None:
        return None
    return Wallet(
        walletaddress=str(item["walletaddress"]),
        quantity=Decimal(str(item["quantity"])),
        last_log_id=int(item.get("last_log_id", 0)),
    )


def _app(item: dict[str, Any] | None) -> SwappableApp | None:
    if item is None:
        return None
    return SwappableApp(
        app_id=int(item["app_id"]),
        database_id=int(item["database_id"]),
        point_ids=frozenset(int(point_id) for point_id in item.get("points", {})),
    )


def _rate(item: dict[str, Any] | None) -> Decimal | None:
    return None if item is None else Decimal(str(item["rate"]))


def _coin(item: dict[str, Any] | None) -> Coin | None:
    return None if item is None else Coin(coin_id=int(item["coin_id"]), decimals=int(item["decimals"]))


def _otp_guard(item: dict[str, Any] | None) -> OtpGuard:
    if item is None:
        return OtpGuard()
    return OtpGuard(
        version=int(item.get("version", 0)),
        failures=tuple(OtpFailure(str(f["id"]), int(f["at_ms"])) for f in item.get("failures", [])),
        locked_until_ms=int(item.get("locked_until_ms", 0)),
    )


def _request_record(item: dict[str, Any] | None) -> RequestRecord | None:
    if item is None:
        return None
    return RequestRecord(
        fingerprint=str(item["fingerprint"]),
        value=SwapValue.model_validate(item["value"]),
        created_at_ms=int(item["created_at_ms"]),
        expires_at_ms=int(item["expires_at_ms"]),
    )


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
            "ExpressionAttributeNames": {"#quantity": "quantity", "#last_log_id": "last_log_id"},
            "ExpressionAttributeValues": {
                ":new": codec.to_attribute(new),
                ":previous": codec.to_attribute(previous),
                ":log_id": codec.to_attribute(log_id),
            },
        }
    }
