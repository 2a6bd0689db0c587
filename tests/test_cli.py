"""The `payments` console script, run as a user would, against moto's server in another process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import boto3
import jwt
import pyotp
import pytest

from conftest import DEMO_FIXTURE, SECRET
from local_stack import moto_server

PAYMENTS = Path(sys.executable).with_name("payments")


def run(*args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    command = [str(PAYMENTS), *args] + (["--dynamodb-endpoint", endpoint] if endpoint else [])
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd="/", timeout=120)


@pytest.fixture
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def scan_all(endpoint: str) -> dict[str, list]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")
    return {table: sorted(json.dumps(item, sort_keys=True) for item in client.scan(TableName=table)["Items"])
            for table in ("WillsonTable", "LedgerTable")}


def test_help_lists_every_subcommand():
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "create-tables", "load-fixture", "token", "otp", "reconcile"):
        assert command in result.stdout
    assert "enroll" in run("otp", "--help").stdout


def test_token_is_a_valid_access_token():
    result = run("token", "--au-id", "19", "--ttl", "60")
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["au_id"] == 19 and claims["exp"] > time.time()
    result = run("token", "--au-id", "19", "--milliseconds")
    assert jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])["exp"] > 10**12


def test_tables_fixture_otp_and_reconcile(endpoint, tmp_path):
    assert "WillsonTable" in run("create-tables", endpoint=endpoint).stdout
    assert "nothing" in run("create-tables", endpoint=endpoint).stdout

    # a broken fixture is refused with its path and nothing is written
    broken = json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))
    broken["concerns"][0]["subcategory_idx"] = 999
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    result = run("load-fixture", str(tmp_path / "broken.json"), endpoint=endpoint)
    assert result.returncode == 2
    assert "concerns[0].subcategory_idx" in result.stderr
    assert scan_all(endpoint) == {"WillsonTable": [], "LedgerTable": []}

    # loading twice leaves the same state
    assert run("load-fixture", str(DEMO_FIXTURE), endpoint=endpoint).returncode == 0
    first = scan_all(endpoint)
    assert run("load-fixture", str(DEMO_FIXTURE), endpoint=endpoint).returncode == 0
    assert scan_all(endpoint) == first

    enrolled = run("otp", "enroll", "--au-id", "19", endpoint=endpoint)
    assert enrolled.returncode == 0
    uri = enrolled.stdout.splitlines()[0]
    assert uri.startswith("otpauth://totp/")
    assert "█" in enrolled.stdout or "▀" in enrolled.stdout or "▄" in enrolled.stdout
    code = run("otp", "code", "--au-id", "19", endpoint=endpoint).stdout.strip()
    assert code == pyotp.parse_uri(uri).now() or code == pyotp.parse_uri(uri).at(time.time() - 1)

    result = run("reconcile", endpoint=endpoint)
    assert result.returncode == 0
    assert "broken accounts: 0" in result.stdout
