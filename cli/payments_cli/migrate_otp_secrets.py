"""`payments migrate-otp-secrets`: move OTP secrets still held on ledger items to the OTP secret table.

Early versions kept an account's TOTP secret as an `otp_secret` attribute of its ledger account item
(`ACCOUNT#{au_id}` / `ACCOUNT`); it now lives in the OTP secret table (`OtpSecretItem`), which only the swap
function and the ops tools may read. This command scans the ledger for items that still hold one and, per item:

- when the secret table holds nothing for the account: one transaction puts the secret there
  (`attribute_not_exists`, so a newer enrolment is never overwritten) and REMOVEs the ledger copy
  (conditional on it still being the very value that was read). Both or neither.
- when the secret table already holds a secret (a newer enrolment, or an earlier run of this command): that
  one is kept, and only the ledger copy is removed, under the same condition.

A second run finds nothing left to do (idempotent). `--dry-run` reads only, and says what would happen. Secrets
are never printed: each line names the account and what happened to its copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from botocore.exceptions import ClientError

from payments.repositories import codec, keys
from payments.repositories.ledger_items import AccountItem, OtpSecretItem

# The legacy attribute of the ledger's account items (the same name the secret table's items use).
LEGACY_ATTRIBUTE = "otp_secret"
_ACCOUNT_PREFIX = "ACCOUNT#"

Outcome = Literal["moved", "removed", "changed", "skipped"]
# What each outcome's line says (after "au_id N: "), real run and dry run.
_SAYS: dict[Outcome, tuple[str, str]] = {
    "moved": ("secret moved to the OTP secret table, ledger copy removed", "would move the secret"),
    "removed": (
        "the OTP secret table already holds a secret (kept); ledger copy removed",
        "would remove the ledger copy (the OTP secret table already holds a secret, which is kept)",
    ),
    "changed": (
        "the ledger copy changed while migrating; left as it is now (run again)",
        "the ledger copy changed while reading (run again)",
    ),
    "skipped": ("left in place: ", "would leave in place: "),
}


@dataclass
class MigrationReport:
    dry_run: bool
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(_SAYS, 0))
    lines: list[str] = field(default_factory=list)

    def add(self, au_id: str, outcome: Outcome, detail: str = "") -> None:
        self.counts[outcome] += 1
        self.lines.append(f"au_id {au_id}: {_SAYS[outcome][1 if self.dry_run else 0]}{detail}")

    @property
    def complete(self) -> bool:
        """Nothing left on the ledger that this run should have moved."""
        return not (self.counts["changed"] or self.counts["skipped"])

    def summary(self) -> str:
        counts = self.counts
        found = sum(counts.values())
        if not found:
            return "No OTP secret left on the ledger: nothing to migrate."
        if self.dry_run:
            head = f"Dry run, nothing written: {found} ledger item(s) hold an OTP secret; "
            return head + (
                f"{counts['moved']} would move, {counts['removed']} would only lose the ledger copy, "
                f"{counts['skipped']} would be left in place."
            )
        return (
            f"{found} ledger item(s) held an OTP secret: {counts['moved']} moved, {counts['removed']} ledger "
            f"copies removed (a secret already in the OTP secret table kept), {counts['changed']} changed "
            f"meanwhile, {counts['skipped']} left in place."
        )


def _legacy_items(client: Any, ledger_table: str) -> Iterator[dict[str, Any]]:
    """Every ledger item holding the legacy attribute: its key, au_id, entity and secret (a consistent scan)."""
    paginator = client.get_paginator("scan")
    pages = paginator.paginate(
        TableName=ledger_table,
        ConsistentRead=True,
        FilterExpression="attribute_exists(#secret)",
        ProjectionExpression="#pk, #sk, #entity, #secret",
        ExpressionAttributeNames={
            "#pk": keys.PK,
            "#sk": keys.SK,
            "#entity": keys.ENTITY,
            "#secret": LEGACY_ATTRIBUTE,
        },
    )
    for page in pages:
        for item in page.get("Items", []):
            decoded = codec.from_item(item)
            if decoded is not None:
                yield decoded


def _au_id(item: dict[str, Any]) -> int | None:
    """The account an item belongs to (its partition key `ACCOUNT#{au_id}`), None for any other partition."""
    partition = str(item.get(keys.PK, ""))
    number = partition.removeprefix(_ACCOUNT_PREFIX)
    if partition == number or not number.isdigit():
        return None
    return int(number)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reasons(error: ClientError) -> list[str]:
    return [str(reason.get("Code", "None")) for reason in error.response.get("CancellationReasons") or []]


def migrate_otp_secrets(
    client: Any, ledger_table: str, otp_secret_table: str, *, dry_run: bool = False, out: TextIO | None = None
) -> MigrationReport:
    """Move every OTP secret still on a ledger item (see the module's docstring); print a line per item to `out`.

    Raises ClientError for anything but the conditions this migration sets (throttling, a missing table...):
    what was done before stays done, and a second run carries on from there.
    """
    report = MigrationReport(dry_run=dry_run)
    would_move: set[int] = set()  # dry run: the accounts whose secret an earlier item would have moved
    for item in _legacy_items(client, ledger_table):
        au_id = _au_id(item)
        secret = item.get(LEGACY_ATTRIBUTE)
        label = str(au_id) if au_id is not None else f"? ({item.get(keys.PK)!s} / {item.get(keys.SK)!s})"
        if au_id is None:
            report.add(label, "skipped", "not an account's item")
        elif not isinstance(secret, str) or not secret:
            report.add(label, "skipped", f"{keys.SK} {item.get(keys.SK)!s}: its {LEGACY_ATTRIBUTE} is not a secret")
        else:
            key = {keys.PK: item[keys.PK], keys.SK: item[keys.SK]}
            if not AccountItem.holds(item) and key != AccountItem.key(au_id):
                label = f"{au_id} ({keys.SK} {item[keys.SK]!s})"
            if dry_run:
                held = au_id in would_move or client.get_item(
                    TableName=otp_secret_table, Key=codec.to_item(OtpSecretItem.key(au_id)), ConsistentRead=True
                ).get("Item")
                report.add(label, "removed" if held else "moved")
                would_move.add(au_id)
            else:
                report.add(label, _migrate_one(client, ledger_table, otp_secret_table, au_id, key, secret))
        if out is not None:
            print(report.lines[-1], file=out, flush=True)
    return report


def _migrate_one(
    client: Any, ledger_table: str, otp_secret_table: str, au_id: int, key: dict[str, Any], secret: str
) -> Outcome:
    remove = {
        "TableName": ledger_table,
        "Key": codec.to_item(key),
        "UpdateExpression": "REMOVE #secret",
        "ConditionExpression": "#secret = :secret",
        "ExpressionAttributeNames": {"#secret": LEGACY_ATTRIBUTE},
        "ExpressionAttributeValues": {":secret": codec.to_attribute(secret)},
    }
    put = {
        "TableName": otp_secret_table,
        "Item": codec.to_item(OtpSecretItem.write(au_id, secret)),
        "ConditionExpression": "attribute_not_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": keys.PK},
    }
    try:
        client.transact_write_items(TransactItems=[{"Put": put}, {"Update": remove}])
        return "moved"
    except ClientError as error:
        if _code(error) != "TransactionCanceledException":
            raise
        reasons = _reasons(error)
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            return "changed"
        if reasons[:1] != ["ConditionalCheckFailed"]:
            raise
    # The secret table holds a secret already (a newer enrolment, or an earlier run): keep it, drop the copy.
    try:
        client.update_item(**remove)
    except ClientError as error:
        if _code(error) != "ConditionalCheckFailedException":
            raise
        return "changed"
    return "removed"
