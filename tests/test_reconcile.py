"""Ledger reconciliation: `payments reconcile` finds a clean ledger after swaps and flags broken chains.

The logic (payments_cli.reconcile.reconcile) is checked on moto after real swaps through the
handler; the command itself (`payments reconcile --dynamodb-endpoint URL`) is run against the
embedded emulator of a `payments serve` process, after swaps over HTTP.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyotp
import pytest

from conftest import LEDGER_TABLE, demo_fixture, load, moto_dynamodb, moto_tables, token
from functions.swap import app as swap_app
from helpers import account_items, exact_json, rated_swap_body, wait_for_calm_otp_step
from helpers.processes import dynamodb_at, moto_server, run_payments
from local_stack import LocalStack
from payments.repositories import codec, keys
from payments.repositories.ledger_scan import LedgerScanner
from payments_cli import main as cli
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed
from payments_cli.reconcile import ReconcileReport, reconcile, reconcile_table, reconcile_with_progress
from swap_helpers import DEMO_SECRET, T0, ledger_items, swap, swap_body

PAYMENTS = Path(sys.executable).with_name("payments")
SECOND_SECRET = "KRUGS4ZANFZSAYJAONSWG4TFOQQGC3TE"


@pytest.fixture(scope="module")
def swapped_tables(table_snapshots):
    """The tables of `swapped`, built once a module through the handler (a copy a test: milliseconds, not 0.5 s)."""
    with pytest.MonkeyPatch.context() as monkeypatch, moto_tables(table_snapshots["empty"]) as dynamodb:
        _load_and_swap(dynamodb, monkeypatch)
        return copy.deepcopy(moto_dynamodb().tables)


@pytest.fixture
def swapped(swapped_tables, monkeypatch):
    """Demo data plus account 20; account 19 swapped three times, account 20 once, 149 never (clock at T0 + 60)."""
    monkeypatch.setattr(swap_app, "clock", lambda: T0 + 60)
    with moto_tables(swapped_tables) as dynamodb:
        yield dynamodb


def _load_and_swap(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = demo_fixture()
    fixture["accounts"].append(
        {
            "au_id": 20,
            "otp_secret": SECOND_SECRET,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 29, "quantity": 500}],
            "wallets": [{"coin_id": 2, "walletaddress": "0xdef", "quantity": "1.5"}],
        }
    )
    load(dynamodb, fixture)
    now = {"t": T0}
    monkeypatch.setattr(swap_app, "clock", lambda: now["t"])
    for when, event_id, points, coins in ((T0, 3, -110, "11"), (T0 + 30, 4, 50, "-5"), (T0 + 60, 3, -7, "0.7")):
        now["t"] = when
        body = swap_body(event_id=event_id, adjust_point=points, adjust_coin=0, when=when)
        raw = json.dumps(body).replace('"adjust_coin_quantity": 0', f'"adjust_coin_quantity": {coins}')
        status, answer = swap(raw=raw)
        assert status == 200, answer
    status, answer = swap(
        raw=json.dumps(
            {
                "event_id": 4,
                "otp_code": pyotp.TOTP(SECOND_SECRET).at(T0 + 60),
                "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": 15},
                "coin": {"coin_id": 2, "adjust_coin_quantity": -1.5},
            }
        ),
        au_id=20,
    )
    assert status == 200, answer


def set_attribute(
    client: Any, key: dict[str, str], expression: str, values: dict[str, Any], names: dict[str, str] | None = None
) -> None:
    client.update_item(
        TableName=LEDGER_TABLE,
        Key=codec.to_item(key),
        UpdateExpression=expression,
        ExpressionAttributeValues={k: codec.to_attribute(v) for k, v in values.items()},
        **({"ExpressionAttributeNames": names} if names else {}),
    )


def problems_of(client: Any) -> list[str]:
    return reconcile(ledger_items(client)).problems


def test_clean_ledger_after_swaps(swapped):
    report = reconcile(ledger_items(swapped))
    assert report.problems == []
    assert report.accounts == 3  # 19, 20 and 149 (who has a point account but never swapped)
    assert report.swap_logs == 4
    assert report.broken_accounts == 0
    assert report.summary() == "accounts checked: 3, swap logs: 4, adjustments: 5, broken accounts: 0"
    # and the chain does end at the balances the swaps produced
    balances = {
        item["sk"]: item["quantity"]
        for item in ledger_items(swapped)
        if item["pk"] == "ACCOUNT#19" and item["sk"] in ("POINT#1#1", "WALLET#2")
    }
    assert balances == {"POINT#1#1": 2100 - 110 + 50 - 7, "WALLET#2": Decimal("11") - 5 + Decimal("0.7")}


def test_balance_changed_behind_the_ledgers_back(swapped):
    set_attribute(swapped, keys.point_balance(19, 1, 1), "SET quantity = quantity + :one", {":one": 1})
    problems = problems_of(swapped)
    assert problems == ["au_id 19: POINT#1#1 balance 2034 but the entries end at 2033"]


def test_wallet_changed_behind_the_ledgers_back(swapped):
    set_attribute(swapped, keys.wallet(20, 2), "SET quantity = :q", {":q": Decimal("100")})
    assert problems_of(swapped) == ["au_id 20: WALLET#2 balance 100 but the entries end at 0.0"]


def test_missing_log_id(swapped):
    swapped.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item(keys.swap_log(19, 2)))
    problems = problems_of(swapped)
    assert "au_id 19: log ids are not contiguous from 1: [1, 3]" in problems
    # without log 2, log 3 no longer starts where log 1 ended
    assert any(
        p.startswith("au_id 19: log 3 POINT#1#1: previous 2040 but the entry before left 1990") for p in problems
    )
    assert reconcile(ledger_items(swapped)).broken_accounts == 1


def test_log_whose_previous_does_not_match(swapped):
    log = keys.swap_log(19, 3)
    set_attribute(
        swapped,
        log,
        "SET #value.#point.previous_point_quantity = :p, #value.#point.point_quantity = :q",
        {":p": 2041, ":q": 2034},
        {"#value": "value", "#point": "point"},
    )
    problems = problems_of(swapped)
    assert problems == [
        "au_id 19: log 3 POINT#1#1: previous 2041 but the entry before left 2040",
        "au_id 19: POINT#1#1 balance 2033 but the entries end at 2034",
    ]


def test_log_whose_arithmetic_is_wrong(swapped):
    set_attribute(
        swapped,
        keys.swap_log(20, 1),
        "SET #value.#coin.coin_quantity = :q",
        {":q": Decimal("0.5")},
        {"#value": "value", "#coin": "coin"},
    )
    assert "au_id 20: log 1 WALLET#2: 1.5 + -1.5 != 0.5" in problems_of(swapped)


def test_log_sequence_behind_the_last_log(swapped):
    set_attribute(swapped, keys.account(19), "SET log_seq = :n", {":n": 2})
    assert problems_of(swapped) == ["au_id 19: log_seq 2 but last log id 3"]


def test_log_added_behind_the_ledgers_back(swapped):
    [log] = [item for item in ledger_items(swapped) if item["pk"] == "ACCOUNT#20" and item["sk"].startswith("SWAPLOG#")]
    forged = {**log, **keys.swap_log(20, 2), "log_id": 2}
    swapped.put_item(TableName=LEDGER_TABLE, Item=codec.to_item(forged))
    problems = problems_of(swapped)
    assert "au_id 20: log_seq 1 but last log id 2" in problems
    assert any(p.startswith("au_id 20: log 2 POINT#1#1: previous 500 but the entry before left 515") for p in problems)


def test_several_broken_accounts_are_all_reported(swapped):
    set_attribute(swapped, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 0})
    set_attribute(swapped, keys.point_balance(20, 1, 1), "SET quantity = :q", {":q": 0})
    report = reconcile(ledger_items(swapped))
    assert report.broken_accounts == 2
    assert report.summary() == "accounts checked: 3, swap logs: 4, adjustments: 5, broken accounts: 2"


# --- the command, against a running local stack --------------------------------------------------


def run_reconcile(endpoint: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PAYMENTS), "reconcile", "--dynamodb-endpoint", endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.mark.local_stack
def test_reconcile_command_on_a_running_stack():
    with LocalStack() as stack:
        endpoint = next(
            match.group(1) for line in stack.banner if (match := re.match(r"DynamoDB: (http://127\.0\.0\.1:\d+)", line))
        )
        # two swaps over HTTP, with the codes of the current and the next time step (both valid
        # whichever of the two steps the server is in when they arrive)
        base = time.time()
        for offset, points, coins, event_id in ((0, -110, 11, 3), (30, 30, -3, 4)):
            status, body = stack.post(
                "/v1.0/db/swap",
                {
                    "event_id": event_id,
                    "otp_code": pyotp.TOTP(DEMO_SECRET).at(base + offset),
                    "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": points},
                    "coin": {"coin_id": 2, "adjust_coin_quantity": coins},
                },
                {"Authorization": f"Bearer {token(19)}"},
            )
            assert status == 200, body

        clean = run_reconcile(endpoint)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert clean.stdout.splitlines() == ["accounts checked: 2, swap logs: 2, adjustments: 3, broken accounts: 0"]
        assert clean.stderr == ""

        # a balance changed behind the ledger's back
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        set_attribute(client, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 999_999})
        broken = run_reconcile(endpoint)
        assert broken.returncode == 1
        assert broken.stdout.splitlines() == ["accounts checked: 2, swap logs: 2, adjustments: 3, broken accounts: 1"]
        assert broken.stderr.splitlines() == ["au_id 19: POINT#1#1 balance 999999 but the entries end at 2020"]

        # put it back, then lose the first log: the chain has a hole
        set_attribute(client, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 2020})
        assert run_reconcile(endpoint).returncode == 0
        client.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item(keys.swap_log(19, 1)))
        missing = run_reconcile(endpoint)
        assert missing.returncode == 1
        assert missing.stderr.splitlines() == [
            "au_id 19: log ids are not contiguous from 1: [2]; log 2 POINT#1#1: previous 1990 but the entry before "
            "left 2100; log 2 WALLET#2: previous 11 but the entry before left 0"
        ]


# --- the parallel scan, the JSON report, the progress bar (in-process, on moto) ----------------------------------


def scanner(client: Any) -> LedgerScanner:
    return LedgerScanner(client, LEDGER_TABLE)


@pytest.mark.parametrize("segments", [1, 2, 4, 7])
def test_the_parallel_scan_finds_what_the_whole_ledger_holds(swapped, segments):
    set_attribute(swapped, keys.wallet(20, 2), "SET quantity = :q", {":q": Decimal("100")})
    advanced: list[tuple[int, int]] = []
    report = reconcile_table(scanner(swapped), segments, lambda items, accounts: advanced.append((items, accounts)))
    assert report == reconcile(ledger_items(swapped))
    assert (report.accounts, report.swap_logs, report.adjustments) == (3, 4, 5)
    assert report.broken == {20: ["WALLET#2 balance 100 but the entries end at 0.0"]}
    # every item scanned and every account checked was told to the progress display
    assert sum(items for items, _ in advanced) == len(ledger_items(swapped))
    assert sum(accounts for _, accounts in advanced) == 3


class PagesFrom:
    """A scanner whose scan gives these pages, and whose Query reads the real table."""

    def __init__(self, client: Any, pages: list[list[dict[str, Any]]]) -> None:
        self._real = scanner(client)
        self._pages = pages
        self.queried: list[str] = []

    def pages(self, segment: int = 0, total_segments: int = 1) -> Any:
        return iter(self._pages if segment == 0 else [])

    def partition_items(self, pk: str) -> list[dict[str, Any]]:
        self.queried.append(pk)
        return self._real.partition_items(pk)

    def item_count(self) -> int | None:
        return None


def test_an_account_whose_items_do_not_come_together_is_read_whole(swapped):
    # Given a scan that gives account 19's items in two pieces, account 20's between them
    items = ledger_items(swapped)
    of = {pk: [item for item in items if item["pk"] == pk] for pk in ("ACCOUNT#19", "ACCOUNT#20", "ACCOUNT#149")}
    pages = [of["ACCOUNT#19"][:3], of["ACCOUNT#20"], of["ACCOUNT#19"][3:], of["ACCOUNT#149"]]
    fake = PagesFrom(swapped, pages)
    # Then account 19 is read again with a Query, and judged once, whole
    report = reconcile_table(fake, 1)  # type: ignore[arg-type]
    assert fake.queried == ["ACCOUNT#19"]
    assert report == reconcile(items)
    assert (report.accounts, report.swap_logs, report.broken) == (3, 4, {})


def test_an_account_that_looks_broken_in_the_scan_is_read_again_before_it_is_named(swapped):
    # Given a scan that saw account 20's wallet from before its swap (a swap landing while the scan passed)
    items = ledger_items(swapped)
    stale = [
        {**item, "quantity": Decimal("1.5")} if (item["pk"], item["sk"]) == ("ACCOUNT#20", "WALLET#2") else item
        for item in items
    ]
    fake = PagesFrom(swapped, [stale])
    # Then the consistent Query of the account settles it: clean
    report = reconcile_table(fake, 1)  # type: ignore[arg-type]
    assert fake.queried == ["ACCOUNT#20"]
    assert report.broken == {}
    # while a real break stays named after the Query
    set_attribute(swapped, keys.wallet(20, 2), "SET quantity = :q", {":q": Decimal("1.5")})
    assert reconcile_table(PagesFrom(swapped, [stale]), 1).broken == {  # type: ignore[arg-type]
        20: ["WALLET#2 balance 1.5 but the entries end at 0.0"]
    }


def test_the_progress_bar_run_reports_the_same(swapped):
    assert reconcile_with_progress(scanner(swapped), 3, show=True) == reconcile(ledger_items(swapped))


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["reconcile", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_command_names_broken_accounts_on_stderr_one_line_each(swapped, capsys):
    assert run_cli(capsys, "--segments", "3") == (
        0,
        "accounts checked: 3, swap logs: 4, adjustments: 5, broken accounts: 0\n",
        "",
    )
    set_attribute(swapped, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 1})
    set_attribute(swapped, keys.swap_log(20, 1), "SET log_id = :n", {":n": 2})
    assert run_cli(capsys, "--segments", "2") == (
        1,
        "accounts checked: 3, swap logs: 4, adjustments: 5, broken accounts: 2\n",
        "au_id 19: POINT#1#1 balance 1 but the entries end at 2033\n"
        "au_id 20: log ids are not contiguous from 1: [2]; log_seq 1 but last log id 2\n",
    )


def test_the_command_prints_a_json_report(swapped, capsys):
    set_attribute(swapped, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 1})
    status, out, err = run_cli(capsys, "--json", "--segments", "4")
    document = json.loads(out)
    assert (status, err) == (1, "")
    assert document["seconds"] >= 0
    del document["seconds"]
    assert document == {
        "accounts_checked": 3,
        "swap_logs": 4,
        "adjustments": 5,
        "broken_accounts": [{"au_id": 19, "problems": ["POINT#1#1 balance 1 but the entries end at 2033"]}],
        "segments": 4,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segments", "0"], "argument --segments: not a number of segments from 1 to 64: '0'"),
        (["--segments", "65"], "argument --segments: not a number of segments from 1 to 64: '65'"),
        (["--segments", "two"], "argument --segments: not a number of segments from 1 to 64: 'two'"),
    ],
)
def test_bad_segments_are_refused_in_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["reconcile", *args])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"payments reconcile: {message} (see payments reconcile --help)\n"


def test_an_empty_report_summary():
    assert ReconcileReport().summary() == "accounts checked: 0, swap logs: 0, adjustments: 0, broken accounts: 0"


# --- from outside: DynamoDB Local and moto's server, swaps over HTTP, the commands as processes ------------------


@pytest.fixture(params=["dynamodb-local", "moto-server"])
def outside(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """`payments serve` on DynamoDB Local or moto's server, demo data and account 20: (serve, endpoint, data)."""
    fixture = demo_fixture()
    [demo] = [account for account in fixture["accounts"] if account["au_id"] == 19]
    fixture["accounts"].append(
        {
            **demo,
            "au_id": 20,
            "points": [{**demo["points"][0], "mu_id": 120}],
            "wallets": [{**demo["wallets"][0], "walletaddress": "0x20"}],
        }
    )
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    if request.param == "dynamodb-local":
        if not is_installed():
            pytest.skip("DynamoDB Local not installed (make dynamodb-local)")
        with (
            DynamoDBLocal() as database,
            LocalStack(
                "--dynamodb-endpoint", database.endpoint, "--fixture", str(path), "--concurrent-dynamodb"
            ) as stack,
        ):
            yield stack, database.endpoint, fixture
    else:
        with moto_server() as endpoint, LocalStack("--dynamodb-endpoint", endpoint, "--fixture", str(path)) as stack:
            yield stack, endpoint, fixture


@pytest.mark.local_stack
def test_reconcile_from_outside_names_only_the_tampered_account(outside, tmp_path):
    stack, endpoint, fixture = outside
    # Given swaps of accounts 19 and 20 over HTTP
    now = wait_for_calm_otp_step()
    for au_id, points in ((19, -110), (20, -200)):
        body = rated_swap_body(pyotp.TOTP(DEMO_SECRET).at(now), points)
        status, answer = stack.post(
            "/v1.0/db/swap", raw=exact_json(body), headers={"Authorization": f"Bearer {token(au_id)}"}
        )
        assert status == 200, answer

    def reconcile_command(*args: str) -> subprocess.CompletedProcess[str]:
        return run_payments("reconcile", "--dynamodb-endpoint", endpoint, *args)

    # Then the untouched books are clean, in one segment or four
    for segments in ("1", "4"):
        clean = reconcile_command("--segments", segments)
        assert (clean.returncode, clean.stderr) == (0, ""), clean.stdout + clean.stderr
        assert clean.stdout == "accounts checked: 3, swap logs: 2, adjustments: 5, broken accounts: 0\n"

    # When account 20's wallet is changed directly in the table
    client = dynamodb_at(endpoint)
    set_attribute(client, keys.wallet(20, 2), "SET quantity = :q", {":q": Decimal("999")})
    # Then reconcile exits 1 and names account 20, and no other
    broken = reconcile_command("--segments", "4")
    assert broken.returncode == 1
    assert broken.stderr == "au_id 20: WALLET#2 balance 999 but the entries end at 20\n"
    report = json.loads(reconcile_command("--json").stdout)
    assert [account["au_id"] for account in report["broken_accounts"]] == [20]

    # When it is put back, and a fixture is loaded over the live account 19 (its points set to 5000)
    set_attribute(client, keys.wallet(20, 2), "SET quantity = :q", {":q": Decimal("20")})
    [account_19] = [account for account in fixture["accounts"] if account["au_id"] == 19]
    account_19["points"][0]["quantity"] = 5000
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({"accounts": [account_19]}), encoding="utf-8")
    assert run_payments("load-fixture", str(changed), "--dynamodb-endpoint", endpoint).returncode == 0
    # and ops correct account 20 with `payments adjust`, twice with the same id
    adjust = ("adjust", "--au-id", "20", "--coin-id", "2", "--quantity", "1.5", "--reason", "ticket 12", "--id", "t12")
    first = run_payments(*adjust, "--dynamodb-endpoint", endpoint)
    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        "au_id 20 WALLET#2: 20 -> 1.5 (adjustment 3)\n",
        "",
    )
    again = run_payments(*adjust, "--dynamodb-endpoint", endpoint)
    assert again.returncode == 0 and "was already applied" in again.stdout
    # Then the books are still clean: 19's fixture entries sit after its swap, 20's adjustment after its own
    after = reconcile_command("--segments", "2")
    assert (after.returncode, after.stderr) == (0, ""), after.stdout + after.stderr
    assert after.stdout == "accounts checked: 3, swap logs: 2, adjustments: 8, broken accounts: 0\n"
    items = account_items(client, 19)
    assert items["POINT#1#1"]["quantity"] == 5000 and items["ADJUSTMENT#00000000000000000003"]["after_log_id"] == 1


def test_an_adjustment_after_a_log_that_does_not_exist(swapped):
    # Given account 19's second opening entry (its wallet, after log 0) said to come after log 4 (it has logs 1-3)
    set_attribute(swapped, keys.adjustment(19, 2), "SET after_log_id = :log", {":log": 4})
    # Then reconcile names it, and the replay that puts the wallet's opening after the swaps that spent from it
    assert problems_of(swapped) == [
        "au_id 19: adjustment 2 is after log 4, which does not exist",
        "au_id 19: adjustment 2 WALLET#2: previous 0 but the entry before left 6.7",
        "au_id 19: WALLET#2 balance 6.7 but the entries end at 0",
    ]


def test_adjustments_whose_logs_go_backwards(swapped):
    # Given account 19's first opening entry said to come after log 2, the one after it still after log 0
    set_attribute(swapped, keys.adjustment(19, 1), "SET after_log_id = :log", {":log": 2})
    # Then reconcile names the pair, and the replay that puts the points' opening between logs 2 and 3
    assert problems_of(swapped) == [
        "au_id 19: adjustment 2 is after log 0 but adjustment 1 before it is after log 2",
        "au_id 19: log 1 POINT#1#1: previous 2100 but the account opened at 0",
        "au_id 19: adjustment 1 POINT#1#1: previous 0 but the entry before left 2040",
        "au_id 19: log 3 POINT#1#1: previous 2040 but the entry before left 2100",
    ]
