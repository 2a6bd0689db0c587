"""`payments migrate-otp-secrets` on moto: legacy `otp_secret` attributes of ledger items move to the secret table."""

from __future__ import annotations

import io
from typing import Any

import pytest

import payments_cli.migrate_otp_secrets as migration
from conftest import LEDGER_TABLE, OTP_SECRET_TABLE
from payments.repositories import codec, keys
from payments.repositories.ledger_items import AccountItem, OtpSecretItem, PointBalanceItem
from payments_cli.main import main
from payments_cli.migrate_otp_secrets import migrate_otp_secrets

OLD = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NEWER = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
OTHER = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"


def legacy_account(au_id: int, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ledger account item as early versions wrote it (the secret beside the counters)."""
    item = {
        **AccountItem.key(au_id),
        keys.ENTITY: AccountItem.ENTITY,
        "au_id": au_id,
        "version": 3,
        "log_seq": 2,
        "otp_steps": {"57000000": 2},
        **extra,
    }
    if secret is not None:
        item["otp_secret"] = secret
    return item


def put(client: Any, table: str, item: dict[str, Any]) -> None:
    client.put_item(TableName=table, Item=codec.to_item(item))


def contents(client: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return {(item[keys.PK]["S"], item[keys.SK]["S"]): codec.from_item(item) for item in items}


def without_secret(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name != "otp_secret"}


@pytest.fixture
def legacy(dynamodb: Any) -> Any:
    """Account 19: a legacy secret only; 20: a legacy secret and a newer enrolment; 21: no secret at all;
    22: a legacy secret on its account item and a point balance that also carries one."""
    put(dynamodb, LEDGER_TABLE, legacy_account(19, OLD))
    put(dynamodb, LEDGER_TABLE, legacy_account(20, OLD))
    put(dynamodb, OTP_SECRET_TABLE, OtpSecretItem.write(20, NEWER))
    put(dynamodb, LEDGER_TABLE, legacy_account(21))
    put(dynamodb, LEDGER_TABLE, legacy_account(22, OTHER))
    put(dynamodb, LEDGER_TABLE, {**PointBalanceItem.write(22, 1, 1, 7, 500), "otp_secret": OTHER})
    return dynamodb


def run(client: Any, *, dry_run: bool = False) -> tuple[migration.MigrationReport, str]:
    out = io.StringIO()
    report = migrate_otp_secrets(client, LEDGER_TABLE, OTP_SECRET_TABLE, dry_run=dry_run, out=out)
    return report, out.getvalue()


def test_secrets_move_and_newer_enrolments_are_kept(legacy):
    ledger_before = contents(legacy, LEDGER_TABLE)
    report, printed = run(legacy)

    assert report.counts == {"moved": 2, "removed": 2, "changed": 0, "skipped": 0}, printed
    assert report.complete
    # the secret table: the moved secrets, and account 20's newer enrolment untouched
    assert contents(legacy, OTP_SECRET_TABLE) == {
        ("ACCOUNT#19", "OTP_SECRET"): OtpSecretItem.write(19, OLD),
        ("ACCOUNT#20", "OTP_SECRET"): OtpSecretItem.write(20, NEWER),
        ("ACCOUNT#22", "OTP_SECRET"): OtpSecretItem.write(22, OTHER),
    }
    # the ledger: every item as it was, but without its otp_secret (counters and balances untouched)
    assert contents(legacy, LEDGER_TABLE) == {key: without_secret(item) for key, item in ledger_before.items()}
    assert OLD not in printed and NEWER not in printed and OTHER not in printed  # secrets are never printed
    assert "au_id 19: secret moved" in printed
    assert "au_id 20: the OTP secret table already holds a secret (kept); ledger copy removed" in printed


def test_a_second_run_finds_nothing_and_changes_nothing(legacy):
    run(legacy)
    after_first = (contents(legacy, LEDGER_TABLE), contents(legacy, OTP_SECRET_TABLE))
    report, printed = run(legacy)
    assert sum(report.counts.values()) == 0 and report.complete and printed == ""
    assert report.summary() == "No OTP secret left on the ledger: nothing to migrate."
    assert (contents(legacy, LEDGER_TABLE), contents(legacy, OTP_SECRET_TABLE)) == after_first


def test_dry_run_writes_nothing_and_says_what_would_move(legacy):
    before = (contents(legacy, LEDGER_TABLE), contents(legacy, OTP_SECRET_TABLE))
    report, printed = run(legacy, dry_run=True)
    assert (contents(legacy, LEDGER_TABLE), contents(legacy, OTP_SECRET_TABLE)) == before
    assert report.counts == {"moved": 2, "removed": 2, "changed": 0, "skipped": 0}
    assert "au_id 19: would move the secret" in printed.splitlines()
    assert any(line.startswith("au_id 20: would remove the ledger copy") for line in printed.splitlines())
    assert report.summary().startswith("Dry run, nothing written: 4 ledger item(s) hold an OTP secret")


def test_a_ledger_copy_changed_after_the_scan_is_left_alone(dynamodb, monkeypatch):
    """The secret put and the ledger removal are one transaction: a copy that changed moves nothing."""
    put(dynamodb, LEDGER_TABLE, legacy_account(19, OLD))
    scanned = migration._legacy_items

    def scan_then_change(client: Any, table: str) -> Any:
        for item in scanned(client, table):
            put(dynamodb, LEDGER_TABLE, legacy_account(19, OTHER))  # re-enrolled by an old writer meanwhile
            yield item

    monkeypatch.setattr(migration, "_legacy_items", scan_then_change)
    report, printed = run(dynamodb)
    assert report.counts["changed"] == 1 and not report.complete, printed
    assert contents(dynamodb, OTP_SECRET_TABLE) == {}
    assert contents(dynamodb, LEDGER_TABLE)[("ACCOUNT#19", "ACCOUNT")]["otp_secret"] == OTHER
    monkeypatch.undo()  # the next run moves the current value
    report, _ = run(dynamodb)
    assert report.counts["moved"] == 1
    assert contents(dynamodb, OTP_SECRET_TABLE) == {("ACCOUNT#19", "OTP_SECRET"): OtpSecretItem.write(19, OTHER)}


def test_a_secret_enrolled_after_the_scan_is_kept(dynamodb, monkeypatch):
    put(dynamodb, LEDGER_TABLE, legacy_account(19, OLD))
    scanned = migration._legacy_items

    def scan_then_enrol(client: Any, table: str) -> Any:
        for item in scanned(client, table):
            put(dynamodb, OTP_SECRET_TABLE, OtpSecretItem.write(19, NEWER))  # `payments otp enroll` meanwhile
            yield item

    monkeypatch.setattr(migration, "_legacy_items", scan_then_enrol)
    report, _ = run(dynamodb)
    assert report.counts["removed"] == 1 and report.complete
    assert contents(dynamodb, OTP_SECRET_TABLE) == {("ACCOUNT#19", "OTP_SECRET"): OtpSecretItem.write(19, NEWER)}
    assert "otp_secret" not in contents(dynamodb, LEDGER_TABLE)[("ACCOUNT#19", "ACCOUNT")]


def test_an_item_outside_any_account_is_left_and_reported(dynamodb):
    put(dynamodb, LEDGER_TABLE, {keys.PK: "APP#1", keys.SK: "APP", "otp_secret": OLD})
    put(dynamodb, LEDGER_TABLE, legacy_account(19, ""))
    report, printed = run(dynamodb)
    assert report.counts == {"moved": 0, "removed": 0, "changed": 0, "skipped": 2} and not report.complete
    assert "au_id ? (APP#1 / APP): left in place: not an account's item" in printed
    assert contents(dynamodb, OTP_SECRET_TABLE) == {}


def test_command_line(legacy, capsys):
    assert main(["migrate-otp-secrets", "--dry-run"]) == 0
    dry = capsys.readouterr()
    assert dry.err == "" and "Dry run, nothing written" in dry.out
    assert main(["migrate-otp-secrets"]) == 0
    real = capsys.readouterr()
    assert real.err == "" and real.out.splitlines()[-1].startswith("4 ledger item(s) held an OTP secret: 2 moved")
    assert main(["migrate-otp-secrets"]) == 0
    assert capsys.readouterr().out == "No OTP secret left on the ledger: nothing to migrate.\n"


def test_command_line_failure_is_one_line(dynamodb, capsys):
    put(dynamodb, LEDGER_TABLE, {keys.PK: "APP#1", keys.SK: "APP", "otp_secret": OLD})
    assert main(["migrate-otp-secrets"]) == 1  # something left in place
    capsys.readouterr()
    dynamodb.delete_table(TableName=LEDGER_TABLE)
    assert main(["migrate-otp-secrets"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("payments migrate-otp-secrets: DynamoDB: ") and "create-tables" in err


@pytest.mark.slow
def test_the_console_script_on_moto_server_and_without_dynamodb():
    """The installed `payments` command, as an operator runs it: dry run, run, run again; no DynamoDB: one line."""
    import os
    import subprocess

    from helpers.processes import PAYMENTS, dynamodb_at, moto_server
    from payments_cli.tables import create_tables

    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT")}

    def payments(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(PAYMENTS), "migrate-otp-secrets", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=120)

    with moto_server() as endpoint:
        client = dynamodb_at(endpoint)
        create_tables(client)
        put(client, LEDGER_TABLE, legacy_account(19, OLD))
        dry = payments("--dry-run", "--dynamodb-endpoint", endpoint)
        assert (dry.returncode, dry.stderr) == (0, "") and "au_id 19: would move the secret" in dry.stdout
        done = payments("--dynamodb-endpoint", endpoint)
        assert (done.returncode, done.stderr) == (0, "") and "1 moved" in done.stdout
        assert contents(client, OTP_SECRET_TABLE) == {("ACCOUNT#19", "OTP_SECRET"): OtpSecretItem.write(19, OLD)}
        again = payments("--dynamodb-endpoint", endpoint)
        assert again.stdout == "No OTP secret left on the ledger: nothing to migrate.\n"
    unreachable = payments("--dynamodb-endpoint", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and unreachable.stdout == ""
    assert unreachable.stderr.count("\n") == 1 and "Traceback" not in unreachable.stderr
    assert unreachable.stderr.startswith("payments migrate-otp-secrets: cannot reach DynamoDB at http://127.0.0.1:9")
