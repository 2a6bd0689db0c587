"""The ledger: accounts, balances, swap logs, OTP guards and the swap catalogue (apps, coins, rates)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from payments.repositories import codec, keys
from payments.repositories.batch import batch_get

# Each wrong OTP code is one attribute `failure_<id>` of the account's OTP guard item.
FAILURE_PREFIX = "failure_"


class LedgerReadFailed(Exception):
    """DynamoDB could not give the swap's state."""


class SwapRaceLost(Exception):
    """The transaction's conditions failed: another write changed what was read."""


class SwapCommitFailed(Exception):
    """The transaction failed for a reason other than a lost race."""


@dataclass(frozen=True)
class SwapState:
    """Everything one swap reads, from one consistent round trip (None where absent)."""

    account: dict[str, Any] | None
    point: dict[str, Any] | None
    wallet: dict[str, Any] | None
    otp_guard: dict[str, Any] | None
    app: dict[str, Any] | None
    coin: dict[str, Any] | None
    rate: dict[str, Any] | None


@dataclass(frozen=True)
class SwapWrite:
    """One swap's transaction: new values and the values they must replace."""

    au_id: int
    app_id: int
    point_id: int
    coin_id: int
    account_version: int
    log_id: int
    otp_steps: dict[str, Any]
    previous_point: int
    new_point: int
    previous_coin: Decimal
    new_coin: Decimal
    log_item: dict[str, Any]


class LedgerRepository:
    """The swap request's only access to DynamoDB (and the ops tools' view of the ledger)."""

    def __init__(self, client: Any, ledger_table: str) -> None:
        self._client = client
        self._table = ledger_table

    def read_swap_state(self, au_id: int, app_id: int, point_id: int | None, coin_id: int | None) -> SwapState:
        """One strongly consistent BatchGetItem of every item the swap needs.

        A malformed point or coin id is passed as None: the items keyed by it are not read,
        so the app can still be judged first, as the error order wants.
        """
        wanted = {"account": keys.account(au_id), "otp_guard": keys.otp_guard(au_id), "app": keys.app(app_id)}
        if point_id is not None:
            wanted["point"] = keys.point_balance(au_id, app_id, point_id)
        if coin_id is not None:
            wanted["wallet"] = keys.wallet(au_id, coin_id)
            wanted["coin"] = keys.coin(coin_id)
        if point_id is not None and coin_id is not None:
            wanted["rate"] = keys.swap_rate(app_id, point_id, coin_id)
        try:
            found = batch_get(self._client, {self._table: list(wanted.values())}, consistent=True)
        except (ClientError, BotoCoreError, RuntimeError) as error:
            raise LedgerReadFailed(str(error)) from error
        items = {name: found.get((self._table, key[keys.PK], key[keys.SK])) for name, key in wanted.items()}
        return SwapState(**{name: items.get(name) for name in SwapState.__dataclass_fields__})

    def commit_swap(self, write: SwapWrite) -> None:
        """Move both balances, consume the OTP step and append the log, all or nothing."""
        account_key = codec.to_item(keys.account(write.au_id))
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": account_key,
                    "UpdateExpression": "SET #version = :next_version, #log_seq = :log_id, #otp_steps = :otp_steps",
                    "ConditionExpression": "attribute_exists(#pk) AND #version = :version",
                    "ExpressionAttributeNames": {
                        "#pk": keys.PK,
                        "#version": "version",
                        "#log_seq": "log_seq",
                        "#otp_steps": "otp_steps",
                    },
                    "ExpressionAttributeValues": {
                        ":version": codec.to_attribute(write.account_version),
                        ":next_version": codec.to_attribute(write.account_version + 1),
                        ":log_id": codec.to_attribute(write.log_id),
                        ":otp_steps": codec.to_attribute(write.otp_steps),
                    },
                }
            },
            _balance_update(self._table, keys.point_balance(write.au_id, write.app_id, write.point_id),
                            write.previous_point, write.new_point),
            _balance_update(self._table, keys.wallet(write.au_id, write.coin_id), write.previous_coin, write.new_coin),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": codec.to_item({**keys.swap_log(write.au_id, write.log_id), **write.log_item}),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PK},
                }
            },
        ]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"TransactionCanceledException", "TransactionConflictException"}:
                reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
                if not reasons or any(code in {"ConditionalCheckFailed", "TransactionConflict"} for code in reasons):
                    raise SwapRaceLost(",".join(str(code) for code in reasons)) from error
            raise SwapCommitFailed(str(error)) from error
        except BotoCoreError as error:
            raise SwapCommitFailed(str(error)) from error

    def get_account(self, au_id: int) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=codec.to_item(keys.account(au_id)), ConsistentRead=True)
        return codec.from_item(response.get("Item"))

    def get_swap_log(self, au_id: int, log_id: int) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table, Key=codec.to_item(keys.swap_log(au_id, log_id)), ConsistentRead=True
        )
        return codec.from_item(response.get("Item"))

    def record_otp_failure(self, au_id: int, failure_id: str, now_ms: int, expires_at: int, stale: list[str]) -> None:
        """Count one wrong OTP code as its own attribute, so a retried request cannot count it twice.

        `stale` names failures too old to matter any more; they are removed in the same update.
        """
        names = {"#failure": f"{FAILURE_PREFIX}{failure_id}", "#expires_at": "expires_at"}
        names.update({f"#stale{index}": name for index, name in enumerate(stale)})
        expression = "SET #failure = :now_ms, #expires_at = :expires_at"
        if stale:
            expression += " REMOVE " + ", ".join(f"#stale{index}" for index in range(len(stale)))
        self._client.update_item(
            TableName=self._table,
            Key=codec.to_item(keys.otp_guard(au_id)),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":now_ms": codec.to_attribute(now_ms),
                ":expires_at": codec.to_attribute(expires_at),
            },
        )

    def enroll_otp(self, au_id: int, secret: str) -> None:
        """Set the account's TOTP secret, creating the account item if needed."""
        self._client.update_item(
            TableName=self._table,
            Key=codec.to_item(keys.account(au_id)),
            UpdateExpression=(
                "SET #entity = :entity, #au_id = :au_id, #secret = :secret, #version = if_not_exists(#version, :zero), "
                "#log_seq = if_not_exists(#log_seq, :zero), #otp_steps = if_not_exists(#otp_steps, :empty)"
            ),
            ExpressionAttributeNames={
                "#entity": "entity",
                "#au_id": "au_id",
                "#secret": "otp_secret",
                "#version": "version",
                "#log_seq": "log_seq",
                "#otp_steps": "otp_steps",
            },
            ExpressionAttributeValues={
                ":entity": codec.to_attribute("account"),
                ":au_id": codec.to_attribute(au_id),
                ":secret": codec.to_attribute(secret),
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


def otp_failure_times(otp_guard: dict[str, Any] | None) -> dict[str, int]:
    """The wrong-code attributes of an OTP guard item: attribute name → epoch milliseconds."""
    return {name: int(value) for name, value in (otp_guard or {}).items() if name.startswith(FAILURE_PREFIX)}


def _balance_update(table: str, key: dict[str, str], previous: int | Decimal, new: int | Decimal) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": codec.to_item(key),
            "UpdateExpression": "SET #quantity = :new",
            "ConditionExpression": "#quantity = :previous",
            "ExpressionAttributeNames": {"#quantity": "quantity"},
            "ExpressionAttributeValues": {":new": codec.to_attribute(new), ":previous": codec.to_attribute(previous)},
        }
    }
