"""Shared test set-up: environment, the two tiers, moto tables built from template.yaml, the demo data.

Tiers: a test (or module, with `pytestmark`) that starts a process — `payments serve`, DynamoDB Local, moto's
server, the `payments` command, the SAM CLI, make, Chromium — is marked `slow` (`local_stack` implies it).
`make test-fast` runs `pytest -m "not slow"`; `make test` runs everything. Any test not marked `slow` that starts
a process fails, in either run (see `pytest_runtest_setup` and friends below).

Helpers (events, contexts, tokens, OTP codes, routes, the ledger, processes) live in the helpers package;
the names below are re-exported for the modules that import them from here.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from payments.config import DEVELOPMENT_JWT_SECRET

# Before any handler module is imported: they read their settings once, at import.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "JWT_SECRET": DEVELOPMENT_JWT_SECRET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # `payments serve` records its endpoint per user: the tests' serve processes never touch the real record, and
        # each pytest-xdist worker (its own process) has its own, so no worker finds another's stacks
        "XDG_STATE_HOME": tempfile.mkdtemp(prefix="payments-test-state-"),
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

import _posixsubprocess

import pytest
from moto import mock_aws

import payments_cli.tables
from helpers.events import LambdaContext, api_event, call  # noqa: F401 - re-exported
from helpers.ledger import moto_dynamodb
from helpers.tokens import SECRET, token  # noqa: F401 - re-exported
from payments_cli.fixture_loader import load_fixture, parse_fixture_text
from payments_cli.tables import create_tables

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
WILLSON_TABLE = "WillsonTable"
LEDGER_TABLE = "LedgerTable"
OTP_SECRET_TABLE = "OtpSecretTable"


# --- tiers -----------------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts `payments serve` (`local_stack`) is a slow one."""
    for item in items:
        if item.get_closest_marker("local_stack") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


class ProcessStarted(AssertionError):
    """A test outside the slow tier started a process."""


@contextmanager
def _no_processes(item: pytest.Item) -> Iterator[list[str]]:
    """Every way this interpreter starts a process raises, and is recorded: subprocess (and asyncio's) through its
    bound _fork_exec or os.posix_spawn, multiprocessing through _posixsubprocess.fork_exec or os.fork, os.system."""
    started: list[str] = []

    def refuse(name: str) -> Any:
        def refused(*args: Any, **_: Any) -> Any:
            what = (
                args[0] if args and name in ("_fork_exec", "fork_exec", "posix_spawn", "posix_spawnp", "system") else ""
            )
            started.append(f"{name}({what!r})")
            raise ProcessStarted(
                f"{item.nodeid} started a process ({name} {what!r}) but is not marked slow: "
                "mark it (or its module) with @pytest.mark.slow, or do the work in-process"
            )

        return refused

    patches = [(subprocess, "_fork_exec"), (_posixsubprocess, "fork_exec")] + [
        (os, name) for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system") if hasattr(os, name)
    ]
    saved = [(module, name, getattr(module, name)) for module, name in patches]
    for module, name in patches:
        setattr(module, name, refuse(name))
    try:
        yield started
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _guarded(item: pytest.Item) -> Any:
    if item.get_closest_marker("slow"):
        return (yield)
    with _no_processes(item) as started:
        result = yield
    if started:  # even if the test caught the error: it must not pass
        raise ProcessStarted(f"{item.nodeid} is not marked slow but started: {', '.join(started)}")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    return (yield from _guarded(item))


# --- moto and the demo data ------------------------------------------------------------------------


def _parsed_once(load_template: Any) -> Any:
    """template.yaml parsed once per session (0.1 s a parse; create_tables parses it on every call), a copy given
    to each caller; parsed again if the file changes."""
    parsed: dict[Path, tuple[int, dict[str, Any]]] = {}

    def cached(path: Path | None = None) -> dict[str, Any]:
        from payments_cli.template import template_path

        key = Path(path or template_path()).resolve()
        stamp = key.stat().st_mtime_ns
        if key not in parsed or parsed[key][0] != stamp:
            parsed[key] = (stamp, load_template(key))
        return copy.deepcopy(parsed[key][1])

    return cached


payments_cli.tables.load_template = _parsed_once(payments_cli.tables.load_template)


@pytest.fixture(scope="session")
def table_snapshots() -> dict[str, Any]:
    """The template's tables as moto holds them, built once through the API: "empty", and "demo" (the demo data).

    Creating the tables from template.yaml and loading the demo data take ~0.2 s; a copy of the result, 5 ms.
    """
    from payments.aws import dynamodb_client

    snapshots = {}
    with mock_aws():
        client = dynamodb_client()
        create_tables(client)
        snapshots["empty+stream"] = copy.deepcopy(moto_dynamodb().tables)
        load(client, DEMO_FIXTURE)
        snapshots["demo+stream"] = copy.deepcopy(moto_dynamodb().tables)
    for name in ("empty", "demo"):
        snapshots[name] = without_streams(snapshots[f"{name}+stream"])
    return snapshots


def without_streams(tables: dict[str, Any]) -> dict[str, Any]:
    """A copy of moto's tables that keeps no stream records. moto deep-copies every table a transaction touches,
    stream records included, so a swap test's transactions grow slower with each one (20 ms a copy after a few
    swaps); only the tests that read the stream (`ledger_stream`) keep it."""
    tables = copy.deepcopy(tables)
    for table in tables.values():
        table.stream_shard = None
    return tables


@contextmanager
def moto_tables(snapshot: Any) -> Iterator[Any]:
    """A fresh moto holding a copy of one of `table_snapshots`; yields the handlers' own DynamoDB client."""
    from payments.aws import dynamodb_client
    from payments.repositories.shared_items import forget_all

    with mock_aws():
        moto_dynamodb().tables = copy.deepcopy(snapshot)
        forget_all()  # the handlers' environments kept items of the previous test's database
        yield dynamodb_client()


@pytest.fixture
def dynamodb(request: pytest.FixtureRequest, table_snapshots: dict[str, Any]) -> Iterator[Any]:
    """A fresh moto DynamoDB with the template's tables (holding the demo data when the test asks for `demo`)."""
    name = "demo" if "demo" in request.fixturenames else "empty"
    if "ledger_stream" in request.fixturenames:
        name += "+stream"
    with moto_tables(table_snapshots[name]) as client:
        yield client


@pytest.fixture
def ledger_stream() -> None:
    """Asked for beside `dynamodb`/`demo`: the ledger table keeps its stream (moto's records, as DynamoDB's)."""


def load(client: Any, fixture: dict[str, Any] | str | Path) -> dict[str, int]:
    if isinstance(fixture, Path):
        text = fixture.read_text(encoding="utf-8")
    elif isinstance(fixture, dict):
        text = json.dumps(fixture, ensure_ascii=False)
    else:
        text = fixture
    from payments.repositories.shared_items import forget_all

    counts = load_fixture(client, parse_fixture_text(text), WILLSON_TABLE, LEDGER_TABLE, OTP_SECRET_TABLE)
    forget_all()  # as if the in-process handlers' shared items had outlived SHARED_ITEMS_CACHE_SECONDS
    return counts


@pytest.fixture
def demo(dynamodb: Any) -> Any:
    """moto tables holding the demo fixture."""
    return dynamodb


def demo_fixture() -> dict[str, Any]:
    return json.loads(DEMO_FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def at_t0(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """The swap handler's clock held at T0 (the demo codes' instant); set `now["t"]` to move it."""
    from functions.swap import app as swap_app
    from helpers.otp import T0

    now = {"t": T0}
    monkeypatch.setattr(swap_app, "clock", lambda: now["t"])
    return now


@pytest.fixture
def ledger(demo: Any, at_t0: dict[str, float]) -> Any:
    """The demo tables (moto) with the swap handler's clock at T0."""
    return demo


TABLES_V1 = json.loads((ROOT / "tests" / "data" / "tables_v1.json").read_text(encoding="utf-8"))


@pytest.fixture
def tables_v1(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto tables holding exactly what the previous data model wrote (tests/data/tables_v1.json), no adjustment
    entry at all; the swap's clock at the dump's instant."""
    from boto3.dynamodb.table import BatchWriter

    from functions.swap import app as swap_app

    for table, items in TABLES_V1["tables"].items():
        with BatchWriter(table, dynamodb) as writer:
            for item in items:
                writer.put_item(Item=item)
    monkeypatch.setattr(swap_app, "clock", lambda: TABLES_V1["clock"])
    return dynamodb
