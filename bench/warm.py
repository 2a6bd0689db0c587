"""Warm CPU per request, each handler beside its floor (a pyperf script; bench/run.py drives it).

    warm.py --answers RECORDED.json [pyperf options, e.g. --processes 1 --values 200 --loops 1 --append F]

For each scenario two benchmarks, registered side by side:
- `handler <scenario>`: the real `lambda_handler` with an API Gateway event;
- `floor <scenario>`: a Powertools APIGatewayRestResolver wearing the handlers' own Logger/Tracer/
  Metrics decorators (payments.observability), making the same DynamoDB calls with the same
  parameters, and answering `json.dumps` of the same response body.
Both get identical DynamoDB answers, replayed from memory (common.MemoryAnswers on the one client).
Each value is the CPU time of this thread (time.thread_time) for `loops` invocations.

With `--paired FILE`, each `handler` worker also builds the floor and calls it just before every
handler invocation, appending one line per value to FILE (pid, scenario, floor and handler CPU
time): the handler / floor ratio within one process, free of the offsets between processes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.use_test_env()
import pyperf  # noqa: E402

SCENARIOS = {
    "progress_3": "payment progress, 3 listed",
    "progress_30": "payment progress, 30 listed",
    "swap_success": "swap, success",
    "swap_refused": "swap, refused at the balances step",
}


def floor_handler(recorded: dict[str, Any]) -> Callable[..., Any]:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.metrics import MetricUnit
    from botocore import xform_name

    from payments.aws import dynamodb_client
    from payments.observability import logger, metrics, tracer

    app = APIGatewayRestResolver()
    client = dynamodb_client()
    calls = [(getattr(client, xform_name(call["operation"])), call["params"]) for call in recorded["calls"]]
    body, status = json.loads(recorded["body"]), recorded["status"]

    @app.post(recorded["path"])
    def route() -> Response:
        app.current_event.json_body  # noqa: B018 - parse the request body, as any handler does
        for method, params in calls:
            method(**params)
        metrics.add_metric(name="FloorServed", unit=MetricUnit.Count, value=1)
        return Response(status, content_types.APPLICATION_JSON, json.dumps(body, ensure_ascii=False))

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


def event_builder(name: str, recorded: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The scenario's event; a swap's OTP code follows the clock (rebuilt once per 30 s step, untimed)."""
    if name.startswith("progress"):
        event = common.progress_event(recorded["au_id"], recorded["request"])
        return lambda: event
    cache: dict[int, dict[str, Any]] = {}

    def swap() -> dict[str, Any]:
        step = int(time.time()) // 30
        if step not in cache:
            cache.clear()
            cache[step] = common.swap_event(recorded["au_id"], recorded["otp_secret"])
        return cache[step]

    return swap


@functools.cache
def _setup(answers_file: str, name: str, kind: str) -> tuple[Callable[..., Any], Callable[[], Any], Any, int]:
    recorded = json.loads(Path(answers_file).read_text(encoding="utf-8"))[name]
    if kind == "handler":
        module = "payment_progress" if name.startswith("progress") else "swap"
        handler = __import__(f"functions.{module}.app", fromlist=["lambda_handler"]).lambda_handler
    else:
        handler = floor_handler(recorded)
    from payments.aws import dynamodb_client

    # Registered once for the whole worker: each registration empties botocore's handler lookup cache.
    memory = common.MemoryAnswers(dynamodb_client(), recorded["calls"]).register()
    return handler, event_builder(name, recorded), memory, recorded["status"]


def _timed(handler: Callable[..., Any], memory: Any, request: Any, status: int, label: str) -> float:
    with memory:
        started = time.thread_time()
        response = handler(request, common.LambdaContext())
        spent = time.thread_time() - started
    if response["statusCode"] != status:
        raise RuntimeError(f"{label} answered {response['statusCode']}: {response['body']}")
    return spent


def time_requests(loops: int, answers_file: str, name: str, kind: str, paired: str | None) -> float:
    handler, event, memory, status = _setup(answers_file, name, kind)
    floor = _setup(answers_file, name, "floor") if paired and kind == "handler" else None
    spent = floor_spent = 0.0
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # EMF metrics go to stdout
        for _ in range(loops):
            request = event()
            if floor is not None:
                floor_spent += _timed(floor[0], floor[2], request, status, f"floor {name}")
            spent += _timed(handler, memory, request, status, f"{kind} {name}")
    if floor is not None and paired:
        with open(paired, "a", encoding="utf-8") as lines:
            lines.write(
                json.dumps({"pid": os.getpid(), "scenario": name, "floor": floor_spent, "handler": spent}) + "\n"
            )
    return spent


def main() -> None:
    def pass_answers(cmd: list[str], args: Any) -> None:
        cmd.extend(("--answers", args.answers))
        if args.paired:
            cmd.extend(("--paired", args.paired))

    runner = pyperf.Runner(add_cmdline_args=pass_answers)
    runner.argparser.add_argument("--answers", required=True)
    runner.argparser.add_argument("--paired", help="append each handler worker's paired floor/handler values here")
    args = runner.parse_args()
    for name in SCENARIOS:
        for kind in ("floor", "handler"):
            runner.bench_time_func(f"{kind} {name}", time_requests, args.answers, name, kind, args.paired)


if __name__ == "__main__":
    main()
