"""Property: any sequence of swaps keeps the stored ledger equal to a simple reference model."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import moto_tables
from functions.swap import app as swap_app
from helpers import T0, account_items, balances, code_at, ledger_items, swap, swap_body, wrong_code
from payments_cli.reconcile import reconcile

RATE = Decimal("0.1")


def locked(failures: list[float], now: float) -> bool:
    """5 wrong codes within 15 minutes lock OTP for 15 minutes after the fifth."""
    return any(failures[i] - failures[i - 4] <= 900 and now < failures[i] + 900 for i in range(4, len(failures)))


step = st.one_of(
    st.tuples(st.just("swap"), st.sampled_from([3, 4]), st.integers(min_value=1, max_value=3000)),
    st.tuples(st.just("wrong_code"), st.just(3), st.integers(min_value=1, max_value=100)),
    st.tuples(st.just("reuse_code"), st.sampled_from([3, 4]), st.integers(min_value=1, max_value=100)),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=st.lists(step, min_size=1, max_size=12))
def test_ledger_matches_the_reference_model(monkeypatch, table_snapshots, steps):
    # each example on a fresh copy of the demo data
    with moto_tables(table_snapshots["demo"]) as client:
        points, coins, logs = 2100, Decimal(0), 0
        now = T0
        monkeypatch.setattr(swap_app, "clock", lambda: now)
        last_code_time = None
        last_success: tuple[str, dict] | None = None
        failures: list[float] = []
        for kind, event_id, amount in steps:
            if kind != "reuse_code" or last_code_time is None:
                now += 30
            adjust_point = -amount if event_id == 3 else amount
            adjust_coin = -adjust_point * RATE
            when = last_code_time if kind == "reuse_code" and last_code_time is not None else now
            code = code_at(when)
            if kind == "wrong_code":
                code = wrong_code(when)
            body = swap_body(event_id=event_id, adjust_point=adjust_point, adjust_coin=0, otp_code=code, when=when)
            raw = json.dumps(body).replace('"adjust_coin_quantity": 0', f'"adjust_coin_quantity": {adjust_coin}')
            status, answer = swap(raw=raw)

            # the model's answer
            if last_success is not None and raw == last_success[0]:
                # the same request again within the idempotency window: the first answer, nothing moves
                assert (status, answer) == (200, last_success[1])
                assert balances(client) == (points, coins)
                continue
            if locked(failures, now):
                expected = 32109
            elif kind == "wrong_code" or (kind == "reuse_code" and last_code_time is not None and now - when > 30):
                # a wrong code, or a reused one whose step has left the ±1 window: both count as failures
                failures.append(now)
                expected = 32107
            elif kind == "reuse_code" and last_code_time is not None:
                expected = 32108
            elif event_id == 3 and points < amount:
                expected = 32103
            elif event_id == 4 and coins < -adjust_coin:
                expected = 32105
            else:
                expected = 0
            assert answer["return"] == expected, (kind, event_id, amount, answer)
            if expected == 0:
                points += adjust_point
                coins += adjust_coin
                logs += 1
                last_code_time = when
                last_success = (raw, answer)
                assert answer["value"]["log_id"] == logs
            stored = account_items(client, 19)  # one read for both checks
            assert (stored["POINT#1#1"]["quantity"], stored["WALLET#2"]["quantity"]) == (points, coins)
            assert [item["log_id"] for sk, item in sorted(stored.items()) if sk.startswith("SWAPLOG#")] == list(
                range(1, logs + 1)
            )
        report = reconcile(ledger_items(client))
        assert report.problems == []
