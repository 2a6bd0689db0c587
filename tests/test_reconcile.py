"""Ledger reconciliation: `payments reconcile` finds a clean ledger after swaps and flags broken chains.

The logic (payments_cli.reconcile.reconcile) is checked on moto after real swaps through the
handler; the command itself (`payments reconcile --dynamodb-endpoint URL`) is run against the
embedded emulator of a `payments serve` process, after swaps over HTTP.
"""

from __future__ import annotations

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

from conftest import LEDGER_TABLE, demo_fixture, load, token
from functions.swap import app as swap_app
from local_stack import LocalStack
from payments.repositories import codec, keys
from payments_cli.reconcile import reconcile
from swap_helpers import DEMO_SECRET, T0, ledger_items, swap, swap_body

PAYMENTS = Path(sys.executable).with_name("payments")
SECOND_SECRET = "KRUGS4ZANFZSAYJAONSWG4TFOQQGC3TE"


@pytest.fixture
def swapped(dynamodb, monkeypatch):
    """Demo data plus account 20; account 19 swaps three times, account 20 once, 149 never."""
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
    return dynamodb


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
    assert any(
        p.startswith("au_id 20: log 2 POINT#1#1: previous 500 but the entry before left 515") for p in problems
    )


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
        assert clean.stdout.splitlines() == ["accounts checked: 2, swap logs: 2, broken accounts: 0"]

        # a balance changed behind the ledger's back
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        set_attribute(client, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 999_999})
        broken = run_reconcile(endpoint)
        assert broken.returncode == 1
        assert broken.stdout.splitlines() == [
            "accounts checked: 2, swap logs: 2, broken accounts: 1",
            "BROKEN au_id 19: POINT#1#1 balance 999999 but the entries end at 2020",
        ]

        # put it back, then lose the first log: the chain has a hole
        set_attribute(client, keys.point_balance(19, 1, 1), "SET quantity = :q", {":q": 2020})
        assert run_reconcile(endpoint).returncode == 0
        client.delete_item(TableName=LEDGER_TABLE, Key=codec.to_item(keys.swap_log(19, 1)))
        missing = run_reconcile(endpoint)
        assert missing.returncode == 1
        assert "BROKEN au_id 19: log ids are not contiguous from 1: [2]" in missing.stdout.splitlines()
