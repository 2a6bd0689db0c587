"""`payments serve` over real HTTP: on its embedded emulator and in front of Amazon DynamoDB Local."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest

from conftest import DEMO_FIXTURE, ROOT
from helpers import DEMO_SECRET, token, wait_for_calm_otp_step
from helpers.processes import LocalStack, dynamodb_at
from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

SEED_RESPONSE = json.loads(
    (ROOT / "tests" / "data" / "seed_payment_progress_response.json").read_text(encoding="utf-8")
)
needs_dynamodb_local = pytest.mark.skipif(
    not is_installed(), reason="DynamoDB Local not installed (make dynamodb-local)"
)

pytestmark = pytest.mark.local_stack


def swap_request(points: int = -110, coins: int = 11, event_id: int = 3, code: str | None = None) -> dict:
    return {
        "event_id": event_id,
        "otp_code": code or pyotp.TOTP(DEMO_SECRET).now(),
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": points},
        "coin": {"coin_id": 2, "adjust_coin_quantity": coins},
    }


def drive_both_routes(stack: LocalStack) -> None:
    status, body = stack.post("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": token(149)})
    assert status == 200
    assert body["data"]["point"] == {"honeypot": "280개"}
    assert [w["idx"] for w in body["data"]["willsoners"]] == [15, 12, 18]
    status, body = stack.post("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": "bad"})
    assert (status, body) == (401, {"code": "invalid_token", "message": "Access token is invalid"})
    wait_for_calm_otp_step()
    status, body = stack.post("/v1.0/db/swap", swap_request(), {"Authorization": f"Bearer {token(19)}"})
    assert status == 200
    assert body["value"]["point"]["point_quantity"] == 1990
    assert body["value"]["coin"]["coin_quantity"] == 11
    status, body = stack.post(
        "/v1.0/db/swap", swap_request(points=-50, coins=50), {"Authorization": f"Bearer {token(19)}"}
    )
    assert (status, body) == (400, {"return": 32106, "message": "Adjust quantity is invalid"})
    status, body = stack.post("/v1.0/db/nope", {})
    assert status == 403


def test_embedded_emulator_serves_both_routes():
    with LocalStack() as stack:
        assert any(line.startswith("Local stack listening on http://127.0.0.1:") for line in stack.banner)
        assert any("curl" in line and "/v1.0/db/swap" in line for line in stack.banner)
        assert any("curl" in line and "/api/v1/asker/payment/progress" in line for line in stack.banner)
        drive_both_routes(stack)
        status, page, kind = stack.get("/docs")
        assert status == 200 and kind.startswith("text/html") and b"swagger" in page.lower()


def test_embedded_emulator_loads_only_the_given_fixture():
    with LocalStack("--fixture", str(ROOT / "tests" / "data" / "seed_payment_progress_fixture.json")) as stack:
        status, body = stack.post("/api/v1/asker/payment/progress", {"concern_idx": 1577}, {"x-token": token(149)})
        assert (status, body) == (200, SEED_RESPONSE)
        # the demo fixture's dashboard account was not loaded
        status, body = stack.post("/v1.0/db/swap", swap_request(), {"Authorization": f"Bearer {token(19)}"})
        assert (status, body) == (400, {"return": 32104, "message": "CoinID is invalid"})


@needs_dynamodb_local
def test_dynamodb_local_serves_both_routes_and_a_restart_keeps_the_data(tmp_path):
    with DynamoDBLocal(data_dir=tmp_path / "data") as database:
        with LocalStack("--dynamodb-endpoint", database.endpoint, "--fixture", str(DEMO_FIXTURE)) as stack:
            drive_both_routes(stack)
        # restart without --fixture: the tables exist, nothing is reloaded, the swap is still there
        with LocalStack("--dynamodb-endpoint", database.endpoint) as stack:
            assert not any(line.startswith("Loaded") for line in stack.banner)
            wait_for_calm_otp_step()
            code = pyotp.TOTP(DEMO_SECRET).at(time.time(), counter_offset=1)
            status, body = stack.post(
                "/v1.0/db/swap",
                swap_request(points=110, coins=-11, event_id=4, code=code),
                {"Authorization": f"Bearer {token(19)}"},
            )
            assert status == 200, body
            assert body["value"]["point"]["previous_point_quantity"] == 1990
            assert body["value"]["log_id"] == 2


def test_request_records_are_shared_by_every_execution_environment():
    with LocalStack() as stack:
        endpoint = stack.dynamodb_endpoint
        wait_for_calm_otp_step()
        totp = pyotp.TOTP(DEMO_SECRET)
        now = time.time()
        headers = {"Authorization": f"Bearer {token(19)}"}
        bodies = [
            swap_request(points=-10 * n, coins=n, code=totp.at(now, counter_offset=offset))
            for n, offset in ((1, -1), (2, 0), (3, 1))
        ]
        # three concurrent swaps keep three execution environments busy at once...
        with ThreadPoolExecutor(max_workers=3) as pool:
            first = list(pool.map(lambda body: stack.post("/v1.0/db/swap", body, headers), bodies))
        assert [status for status, _ in first] == [200, 200, 200]
        # ...and every retry is answered with its first answer, whichever environment takes it
        with ThreadPoolExecutor(max_workers=3) as pool:
            again = list(pool.map(lambda body: stack.post("/v1.0/db/swap", body, headers), bodies))
        assert again == first
        client = dynamodb_at(endpoint)
        items = client.scan(TableName="LedgerTable")["Items"]
        records = [item for item in items if item["sk"]["S"].startswith("REQUEST#")]
        assert len(records) == 3
        assert {item["pk"]["S"] for item in records} == {"ACCOUNT#19"}
