"""Warm-overhead child (run by bench/run.py): in-process invocations with DynamoDB answered from memory.

1. Records, against moto, the DynamoDB answers of a few real requests (demo data).
2. Replays them from memory (common.MemoryAnswers on the handler's own client) while timing
   each invocation, interleaved in blocks with a Powertools hello-world resolver.
3. Writes the recorded answers to the file given, for the cold-start child's first requests.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from moto import mock_aws  # noqa: E402  (before any client is made, as in tests/conftest.py)

import pyotp  # noqa: E402
from aws_lambda_powertools.event_handler import APIGatewayRestResolver  # noqa: E402
from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402

from functions.payment_progress import app as progress_app  # noqa: E402
from functions.swap import app as swap_app  # noqa: E402
from payments import http as payments_http  # noqa: E402
from payments.auth import issue_access_token  # noqa: E402
from payments.aws import dynamodb_client  # noqa: E402
from payments.config import DEVELOPMENT_JWT_SECRET, get_settings  # noqa: E402
from payments.observability import logger, metrics, tracer  # noqa: E402
from payments_cli.fixture_loader import load_fixture, parse_fixture_text  # noqa: E402
from payments_cli.tables import create_tables  # noqa: E402

assert DEVELOPMENT_JWT_SECRET == common.JWT_SECRET == get_settings().jwt_secret

REFUSED_AU_ID = 20  # an extra dashboard account with too few points: its swap is refused (32103)


def _load(client: Any, fixture: dict[str, Any]) -> None:
    settings = get_settings()
    load_fixture(client, parse_fixture_text(json.dumps(fixture, ensure_ascii=False)),
                 settings.willson_table, settings.ledger_table)


def _swap_event(au_id: int, secret: str, adjust_point: int, adjust_coin: int,
                when: float | None = None) -> dict[str, Any]:
    code = pyotp.TOTP(secret).at(time.time() if when is None else when)
    token = issue_access_token(au_id, common.JWT_SECRET, 3600)
    return common.api_event(common.SWAP_PATH, common.swap_body(code, adjust_point, adjust_coin),
                            {"Authorization": f"Bearer {token}"})


def _progress_event(au_id: int, body: dict[str, Any]) -> dict[str, Any]:
    token = issue_access_token(au_id, common.JWT_SECRET, 3600)
    return common.api_event(common.PAYMENT_PROGRESS_PATH, body, {"x-token": token})


def record() -> dict[str, Any]:
    """The DynamoDB answers of each measured request, from one real run against moto."""
    recorded: dict[str, Any] = {}
    with mock_aws(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        client = dynamodb_client()
        create_tables(client)
        _load(client, json.loads(common.DEMO_FIXTURE.read_text(encoding="utf-8")))
        _load(client, {"accounts": [{
            "au_id": REFUSED_AU_ID, "otp_secret": common.DEMO_OTP_SECRET,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 29, "quantity": 50}],
            "wallets": [{"coin_id": 2, "walletaddress": "0xrefused", "quantity": "0"}],
        }]})

        def run(name: str, handler: Callable[..., Any], event: dict[str, Any], status: int, **extra: Any) -> None:
            with common.Recorder(client) as recorder:
                response = handler(event, common.LambdaContext())
            if response["statusCode"] != status:
                raise RuntimeError(f"recording {name}: {response['statusCode']} {response['body']}")
            body = json.loads(response["body"])
            recorded[name] = {"answers": recorder.answers, "order": recorder.order, "status": status, **extra}
            if name.startswith("payment_progress"):
                recorded[name]["listed"] = len(body["data"]["willsoners"])

        body = {"concern_idx": 1577}
        run("payment_progress", progress_app.lambda_handler, _progress_event(149, body), 200, au_id=149, body=body)
        run("swap_success", swap_app.lambda_handler, _swap_event(19, common.DEMO_OTP_SECRET, -110, 11), 200,
            au_id=19, otp_secret=common.DEMO_OTP_SECRET)
        run("swap_refused", swap_app.lambda_handler,
            _swap_event(REFUSED_AU_ID, common.DEMO_OTP_SECRET, -110, 11), 409,
            au_id=REFUSED_AU_ID, otp_secret=common.DEMO_OTP_SECRET)
        # 40 more willsoners in the concern's subcategory: the answer is a full page of 30.
        _load(client, common.willsoner_fixture(0, 40))
        run("payment_progress_30", progress_app.lambda_handler, _progress_event(149, body), 200, au_id=149, body=body)
    return recorded


def hello_world() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """Powertools hello world (one POST route); the same in the handlers' decorators; one that reads 1 item."""
    hello = APIGatewayRestResolver()

    @hello.post("/hello")
    def say_hello() -> dict[str, Any]:
        body = hello.current_event.json_body or {}
        return {"hello": body.get("name", "world")}

    def plain(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return hello.resolve(event, context)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def observed(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="HelloServed", unit=MetricUnit.Count, value=1)
        return hello.resolve(event, context)

    hello_item = APIGatewayRestResolver()
    client = dynamodb_client()

    @hello_item.post("/hello")
    def say_hello_with_item() -> dict[str, Any]:
        body = hello_item.current_event.json_body or {}
        item = client.get_item(TableName="HelloTable", Key={"pk": {"S": str(body.get("name", "world"))}})
        return {"hello": item.get("Item", {}).get("name", {}).get("S", "world")}

    def with_item(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return hello_item.resolve(event, context)

    return plain, observed, with_item


HELLO_ITEM = {"GetItem": {"Item": {"pk": {"S": "bench"}, "name": {"S": "bench"}},
                          "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}}


class Scenario:
    def __init__(self, name: str, handler: Callable[..., Any], status: int, answers: dict[str, Any] | None,
                 event: Callable[[], dict[str, Any]]) -> None:
        self.name = name
        self.handler = handler
        self.status = status
        self.answers = answers
        self.event = event
        self.samples: list[float] = []
        self.cpu_samples: list[float] = []
        self.wrong_status = 0


def _per_step(build: Callable[[float], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """An event whose OTP code follows the clock (rebuilt once per 30 s step, outside the timing)."""
    cache: dict[int, dict[str, Any]] = {}

    def event() -> dict[str, Any]:
        step = int(time.time()) // 30
        if step not in cache:
            cache.clear()
            cache[step] = build(time.time())
        return cache[step]

    return event


def scenarios(recorded: dict[str, Any]) -> list[Scenario]:
    plain, observed, with_item = hello_world()
    hello_event = common.api_event("/hello", {"name": "bench"})
    progress = _progress_event(149, {"concern_idx": 1577})
    success, refused = recorded["swap_success"], recorded["swap_refused"]
    return [
        Scenario(HELLO, plain, 200, None, lambda: hello_event),
        Scenario(HELLO_OBSERVED, observed, 200, None, lambda: hello_event),
        Scenario(HELLO_ITEM_NAME, with_item, 200, HELLO_ITEM, lambda: hello_event),
        Scenario(f"payment progress ({recorded['payment_progress']['listed']} listed)", progress_app.lambda_handler,
                 200, recorded["payment_progress"]["answers"], lambda: progress),
        Scenario(f"payment progress ({recorded['payment_progress_30']['listed']} listed)",
                 progress_app.lambda_handler, 200, recorded["payment_progress_30"]["answers"], lambda: progress),
        Scenario("swap, success", swap_app.lambda_handler, 200, success["answers"],
                 _per_step(lambda now: _swap_event(19, success["otp_secret"], -110, 11, now))),
        Scenario("swap, refused at balances (32103)", swap_app.lambda_handler, 409, refused["answers"],
                 _per_step(lambda now: _swap_event(REFUSED_AU_ID, refused["otp_secret"], -110, 11, now))),
    ]


HELLO = "hello world (resolver, 1 POST route)"
HELLO_OBSERVED = "hello world + Logger/Tracer/Metrics decorators"
HELLO_ITEM_NAME = "hello world + 1 GetItem (from memory)"


def _cpu_timer_overhead() -> float:
    """What an empty interval measures with the thread CPU clock (its own cost), to subtract."""
    cpu_clock = time.thread_time
    empty = []
    for _ in range(5000):
        started = cpu_clock()
        empty.append(cpu_clock() - started)
    return common.median(empty)


def measure(all_scenarios: list[Scenario], rounds: int, block: int) -> float:
    """Time every invocation: elapsed (perf_counter) and CPU time of this thread (thread_time)."""
    client = dynamodb_client()
    context = common.LambdaContext()
    clock, cpu_clock = time.perf_counter, time.thread_time
    overhead = _cpu_timer_overhead()
    for round_number in range(rounds + 1):
        for scenario in all_scenarios:
            memory = common.MemoryAnswers(client, scenario.answers) if scenario.answers else contextlib.nullcontext()
            with memory:
                for _ in range(block):
                    event = scenario.event()
                    started_cpu = cpu_clock()
                    started = clock()
                    response = scenario.handler(event, context)
                    elapsed = clock() - started
                    elapsed_cpu = cpu_clock() - started_cpu - overhead
                    if round_number:  # round 0 warms up
                        scenario.samples.append(elapsed)
                        scenario.cpu_samples.append(max(elapsed_cpu, 0.0))
                    if response["statusCode"] != scenario.status:
                        scenario.wrong_status += 1
    return overhead


def breakdown(all_scenarios: list[Scenario], count: int) -> dict[str, dict[str, float]]:
    """Mean time per request spent in a few named places (timers wrapped around them, one pass)."""
    from botocore.client import BaseClient

    from payments.repositories import codec

    places = [
        ("botocore", BaseClient, "_make_api_call"),
        ("token", payments_http, "verify_access_token"),
        ("decode", codec, "from_item"),
        ("dumps", payments_http, "dumps"),
        ("dumps", swap_app, "dumps"),
    ]
    # Only the places this version of the code has (it is being edited by others meanwhile).
    places = [(label, owner, attribute) for label, owner, attribute in places if hasattr(owner, attribute)]
    spent = {label: 0.0 for label in ("botocore", "token", "decode", "dumps")}
    originals = [(owner, attribute, getattr(owner, attribute)) for _, owner, attribute in places]

    def wrap(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started
        return timed

    result: dict[str, dict[str, float]] = {}
    for (label, owner, attribute), (_, _, original) in zip(places, originals):
        setattr(owner, attribute, wrap(label, original))
    try:
        client = dynamodb_client()
        context = common.LambdaContext()
        for scenario in all_scenarios:
            if not scenario.name.startswith(("payment", "swap")):
                continue
            for label in spent:
                spent[label] = 0.0
            with common.MemoryAnswers(client, scenario.answers or {}) as memory:
                started = time.perf_counter()
                for _ in range(count):
                    scenario.handler(scenario.event(), context)
                total = time.perf_counter() - started
            result[scenario.name] = {"total_s": total / count, "dynamodb_calls": sum(memory.calls.values()) / count,
                                     **{f"{label}_s": seconds / count for label, seconds in spent.items()}}
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)
    return result


def response_json_cost(all_scenarios: list[Scenario]) -> dict[str, float]:
    """payments.json_body.dumps against plain json.dumps on the same payment-progress answer (30 listed)."""
    from payments.json_body import dumps

    scenario = next(s for s in all_scenarios if s.name.startswith("payment progress") and "30" in s.name)
    with common.MemoryAnswers(dynamodb_client(), scenario.answers or {}):
        body = json.loads(scenario.handler(scenario.event(), common.LambdaContext())["body"])

    def per_call(function: Callable[[], Any]) -> float:
        samples = []
        for _ in range(300):
            started = time.thread_time()
            function()
            samples.append(time.thread_time() - started)
        return common.median(samples)

    import inspect
    import re
    import uuid

    source = inspect.getsource(dumps)
    return {
        "fresh_regex_per_call": "uuid4" in source and "re.sub(f" in source,
        "compile_s": per_call(lambda: re.compile(f'"__exact_{uuid.uuid4().hex}__([-0-9.]+)"')),
        "bytes": len(json.dumps(body, ensure_ascii=False).encode()),
        "payments_dumps_s": per_call(lambda: dumps(body)),
        "json_dumps_s": per_call(lambda: json.dumps(body, ensure_ascii=False, separators=(",", ":"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers-out", required=True)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args()

    recorded = record()
    Path(args.answers_out).write_text(json.dumps(recorded, default=str), encoding="utf-8")
    pristine = deepcopy({name: entry["answers"] for name, entry in recorded.items()})
    all_scenarios = scenarios(recorded)
    gc.collect()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        overhead = measure(all_scenarios, args.rounds, args.block)
        split = breakdown(all_scenarios, 300)
        json_cost = response_json_cost(all_scenarios)
    if {name: entry["answers"] for name, entry in recorded.items()} != pristine:
        raise RuntimeError("a handler modified a recorded DynamoDB answer: the replay is not faithful")
    common.emit_result({
        "scenarios": [
            {"name": s.name, "samples": len(s.samples), "p50_s": common.percentile(s.samples, 50),
             "p99_s": common.percentile(s.samples, 99), "mean_s": sum(s.samples) / len(s.samples),
             "cpu_p50_s": common.percentile(s.cpu_samples, 50), "cpu_p99_s": common.percentile(s.cpu_samples, 99),
             "wrong_status": s.wrong_status, "dynamodb_calls": list((s.answers or {}).keys())}
            for s in all_scenarios
        ],
        "breakdown": split,
        "cpu_timer_overhead_s": overhead,
        "response_json": json_cost,
        "recorded_order": {name: entry["order"] for name, entry in recorded.items()},
    })


if __name__ == "__main__":
    main()
