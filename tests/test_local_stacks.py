"""Several local stacks side by side: each `payments serve` keeps its own record, and the other commands use the
one live stack, name them all when there are several, and ignore the records of stacks that are gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest

from payments_cli.dynamodb_local import free_port

PAYMENTS = Path(sys.executable).with_name("payments")
DEMO_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # account 19 of the demo data


@pytest.fixture
def state_home(tmp_path: Path) -> dict[str, str]:
    """A per-user state directory of this test's own: the stacks it starts, and nothing else, record there."""
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


def records_dir(state_home: dict[str, str]) -> Path:
    return Path(state_home["XDG_STATE_HOME"]) / "willson-payments"


def payments(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT")}
    full.update({"AWS_MAX_ATTEMPTS": "1", **env})
    return subprocess.run([str(PAYMENTS), *args], capture_output=True, text=True, env=full, cwd="/", timeout=120)


def start(state_home: dict[str, str]) -> Any:
    from local_stack import LocalStack

    return LocalStack(env=state_home).start()


def record_of(stack: Any) -> dict[str, Any]:
    """The record the stack says (in its banner) it wrote."""
    [line] = [line for line in stack.banner if line.startswith("DynamoDB endpoint recorded")]
    path = Path(line.rpartition(": ")[2])
    return {"path": path, **json.loads(path.read_text(encoding="utf-8"))}


def assert_current_code(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0 and result.stderr == "", result
    now = time.time()
    assert result.stdout.strip() in {pyotp.TOTP(DEMO_SECRET).at(now + delta) for delta in (-30, 0)}, result


def assert_one_line_failure(result: subprocess.CompletedProcess[str], status: int, *fragments: str) -> None:
    assert result.returncode == status, result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert result.stderr.startswith("payments ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.local_stack
def test_two_live_stacks_are_named_and_the_one_told_is_used(state_home: dict[str, str]) -> None:
    first = start(state_home)
    try:
        second = start(state_home)
        try:
            a, b = record_of(first), record_of(second)
            # no flag: it cannot choose, so it names both (port, endpoint, pid) in one line and asks for one
            for command in (["otp", "code", "--au-id", "19"], ["otp", "enroll", "--au-id", "19"], ["reconcile"]):
                assert_one_line_failure(
                    payments(command, state_home),
                    2,
                    "2 local stacks are running",
                    f"http://127.0.0.1:{first.port} (pid {a['pid']}, DynamoDB {a['dynamodb_endpoint']})",
                    f"http://127.0.0.1:{second.port} (pid {b['pid']}, DynamoDB {b['dynamodb_endpoint']})",
                    "--dynamodb-endpoint",
                )
            # told which, by the flag or by boto3's variable: it works beside the other
            assert_current_code(
                payments(["otp", "code", "--au-id", "19", "--dynamodb-endpoint", b["dynamodb_endpoint"]], state_home)
            )
            assert_current_code(
                payments(
                    ["otp", "code", "--au-id", "19"],
                    {**state_home, "AWS_ENDPOINT_URL_DYNAMODB": a["dynamodb_endpoint"]},
                )
            )
            assert a["path"] != b["path"], "each stack keeps a record of its own"
            assert a["url"] == f"http://127.0.0.1:{first.port}" and b["url"] == f"http://127.0.0.1:{second.port}"
        finally:
            second.stop()
        # the second stopped (the issue: it used to mark the one shared record stopped): its record is gone, the
        # first's is intact, and the commands use the first without being told
        assert not b["path"].exists()
        assert record_of(first) == a
        assert_current_code(payments(["otp", "code", "--au-id", "19"], state_home))
    finally:
        first.stop()
    assert list(records_dir(state_home).glob("serve-*.json")) == [], "a stopped stack leaves no record"


@pytest.mark.local_stack
def test_a_killed_stack_is_ignored_beside_a_live_one(state_home: dict[str, str]) -> None:
    live = start(state_home)
    try:
        killed = start(state_home)
        gone = record_of(killed)
        killed.kill()  # SIGKILL: it removes nothing
        assert gone["path"].exists()
        # a record whose process exists but whose port does not answer (a pid reused): ignored, left alone
        reused = records_dir(state_home) / f"serve-{os.getpid()}.json"
        reused.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "dynamodb_endpoint": f"http://127.0.0.1:{free_port()}",
                    "url": f"http://127.0.0.1:{free_port()}",
                    "started_at": time.time(),
                }
            ),
            encoding="utf-8",
        )
        (records_dir(state_home) / "serve-garbage.json").write_text("{", encoding="utf-8")  # unreadable: skipped
        assert_current_code(payments(["otp", "code", "--au-id", "19"], state_home))
        assert not gone["path"].exists(), "the killed stack's record is cleaned up"
        assert reused.exists()
    finally:
        live.stop()


@pytest.mark.local_stack
def test_with_no_live_stack_the_commands_go_to_aws_as_boto3_would(state_home: dict[str, str]) -> None:
    stack = start(state_home)
    record = record_of(stack)
    stack.kill()
    # only a killed stack's record: ignored, so the command goes where boto3 goes, here an unreachable region
    result = payments(
        ["otp", "code", "--au-id", "19"],
        {**state_home, "AWS_REGION": "xx-nowhere-1", "AWS_DEFAULT_REGION": "xx-nowhere-1"},
    )
    assert_one_line_failure(result, 1, "dynamodb.xx-nowhere-1.amazonaws.com")
    assert not record["path"].exists()
    assert "127.0.0.1" not in result.stderr


@pytest.mark.local_stack
def test_a_fixture_loaded_into_a_live_stack_is_served_at_once_not_after_the_cache_ttl(
    state_home: dict[str, str], tmp_path: Path
) -> None:
    from helpers.tokens import token

    stack = start(state_home)
    try:
        ask = {"x-token": token(149)}
        status, body = stack.post("/api/v1/asker/payment/progress", {"concern_idx": 1577}, ask)
        assert status == 200 and body["data"]["tickets"][0]["amount"] == "꿀단지 7개"  # kept by the environment now
        fixture = tmp_path / "tickets.json"
        fixture.write_text(json.dumps({"tickets": [{"idx": 1, "minutes": 30, "price": 8}]}), encoding="utf-8")
        loaded = payments(["load-fixture", str(fixture)], state_home)  # no flag: the live stack's DynamoDB
        assert loaded.returncode == 0, loaded
        assert f"Local stack http://127.0.0.1:{stack.port} (pid {record_of(stack)['pid']}) reads" in loaded.stdout
        status, body = stack.post("/api/v1/asker/payment/progress", {"concern_idx": 1577}, ask)
        assert status == 200 and body["data"]["tickets"][0]["amount"] == "꿀단지 8개"
    finally:
        stack.stop()


# --- the records alone, in this process (no `serve`) ----------------------------------------------------------

NO_SUCH_PID = 2**22 + 1  # above Linux's largest pid_max: no process has it


def write_record(directory: Path, pid: int, url: str, endpoint: str = "http://127.0.0.1:1") -> Path:
    path = directory / f"serve-{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "dynamodb_endpoint": endpoint, "url": url, "started_at": time.time()}
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_only_records_of_live_answering_stacks_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from payments_cli import state

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    directory = tmp_path / "willson-payments"
    assert state.recorded_endpoint() is None  # no record at all: boto3's own endpoint
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        live = write_record(directory, os.getpid(), f"http://0.0.0.0:{port}", "http://127.0.0.1:4567")
        dead = write_record(directory, NO_SUCH_PID, f"http://127.0.0.1:{port}")
        (directory / "serve-broken.json").write_text("{", encoding="utf-8")
        assert state.recorded_endpoint() == "http://127.0.0.1:4567"
        assert live.exists() and not dead.exists(), "a record whose process is gone is removed"
        # a second live stack: named, not chosen
        write_record(directory, os.getppid(), f"http://127.0.0.1:{port}", "http://127.0.0.1:7654")
        with pytest.raises(state.SeveralLocalStacks) as refused:
            state.recorded_endpoint()
        message = str(refused.value)
        assert "\n" not in message and "2 local stacks are running" in message and "--dynamodb-endpoint" in message
        assert f"(pid {os.getpid()}, DynamoDB http://127.0.0.1:4567)" in message
        assert f"(pid {os.getppid()}, DynamoDB http://127.0.0.1:7654)" in message
    # nothing listens any more: both records are ignored (their processes exist, so they stay on file)
    assert state.recorded_endpoint() is None
    assert len(list(directory.glob("serve-*.json"))) == 3


def test_a_stopping_stack_removes_its_own_record_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from payments_cli import state

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    mine = state.record_serve("http://127.0.0.1:1111", "http://127.0.0.1:3000")
    assert mine.path == tmp_path / "willson-payments" / f"serve-{os.getpid()}.json"
    assert state.read_records() == [mine]
    state.remove_record(mine)
    assert state.read_records() == []
    # a later record under the same pid (not this stack's) is left alone
    newer = state.record_serve("http://127.0.0.1:2222", "http://127.0.0.1:3001")
    state.remove_record(mine)
    assert state.read_records() == [newer]
