"""Records, against moto, every DynamoDB call of one real request per warm scenario (run by bench/run.py).

    record.py OUT.json

For each scenario it writes the handler's status and response body and, per DynamoDB call, the
operation, its parameters and the raw HTTP answer: what common.MemoryAnswers replays to both the
handler and its floor.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env()
from moto import mock_aws  # noqa: E402  (before any client is made, as in tests/conftest.py)

REFUSED_AU_ID = 20  # a dashboard account with too few points: its swap is refused at the balances step
CONCERN = {"concern_idx": 1577}


def scenarios() -> dict[str, dict[str, Any]]:
    from functions.payment_progress import app as progress_app
    from functions.swap import app as swap_app
    from payments.aws import dynamodb_client
    from payments_cli.tables import create_tables

    recorded: dict[str, dict[str, Any]] = {}
    with mock_aws(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        client = dynamodb_client()
        create_tables(client)
        common.load(client, json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8")))
        common.load(client, {"accounts": [common.account_fixture(REFUSED_AU_ID, common.DEMO_OTP_SECRET, 50)]})

        def run(name: str, handler: Callable[..., Any], event: dict[str, Any], status: int, **extra: Any) -> None:
            with common.Recorder(client) as recorder:
                response = handler(event, common.LambdaContext())
            if response["statusCode"] != status:
                raise RuntimeError(f"recording {name}: {response['statusCode']} {response['body']}")
            recorded[name] = {
                "calls": recorder.calls,
                "status": status,
                "body": response["body"],
                "path": event["path"],
                **extra,
            }

        run(
            "progress_3",
            progress_app.lambda_handler,
            common.progress_event(149, CONCERN),
            200,
            au_id=149,
            request=CONCERN,
        )
        run(
            "swap_success",
            swap_app.lambda_handler,
            common.swap_event(19, common.DEMO_OTP_SECRET),
            200,
            au_id=19,
            otp_secret=common.DEMO_OTP_SECRET,
        )
        run(
            "swap_refused",
            swap_app.lambda_handler,
            common.swap_event(REFUSED_AU_ID, common.DEMO_OTP_SECRET),
            409,
            au_id=REFUSED_AU_ID,
            otp_secret=common.DEMO_OTP_SECRET,
        )
        common.load(client, common.willsoner_fixture(0, 40))  # a full page of 30 in the concern's subcategory
        run(
            "progress_30",
            progress_app.lambda_handler,
            common.progress_event(149, CONCERN),
            200,
            au_id=149,
            request=CONCERN,
        )
    for name in ("progress_3", "progress_30"):
        recorded[name]["listed"] = len(json.loads(recorded[name]["body"])["data"]["willsoners"])
    return recorded


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(scenarios(), ensure_ascii=False), encoding="utf-8")
