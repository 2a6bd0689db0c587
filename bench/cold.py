"""Cold start in fresh processes (a pyperf script run with --loops 1 --values 1 --warmups 0; run.py drives it).

    cold.py modules NAME OUT.json          which third-party modules importing functions.NAME.app loads
    cold.py --answers F --modules-dir D [pyperf options]

With one value per worker process, every value is the first and only time a process does the
thing timed: CPU time of the process (time.process_time) around it, or of the thread for a request. Per handler:
- `floor NAME`: import the third-party modules the handler's import loads (listed by `modules`),
  then build what any handler on them builds at init: a DynamoDB client, Logger/Tracer/Metrics, a
  resolver with one route, one pydantic model;
- `own NAME`: in a process holding that floor, the handler's import: what the project's code adds;
- `first NAME` / `first-primed NAME`: CPU time of this thread (time.thread_time, as the warm
  benchmarks measure) for the first request after the handler's import (DynamoDB answered from
  memory), without and with priming at init (PAYMENTS_PRIME_AT_INIT=true). The event is built
  before the import, so only the handler runs between init and the request. The process then
  makes 50 more requests and records, beside its first, the median of the last 30 (SAME_PROCESS).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

HANDLERS = {"payment_progress": "progress_3", "swap": "swap_success"}
OWN = ("payments", "functions", "payments_cli", "common")


def third_party(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name.partition(".")[0] not in sys.stdlib_module_names
        and name.partition(".")[0] not in OWN
        and not name.startswith("_")
    ]


def floor(modules: list[str]) -> None:
    import importlib

    for name in modules:
        importlib.import_module(name)
    import boto3
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from pydantic import BaseModel

    boto3.client("dynamodb")
    Logger(service="floor"), Tracer(service="floor"), Metrics(namespace="Floor", service="floor")
    app = APIGatewayRestResolver()
    app.post("/floor")(lambda: {"floor": True})

    class Floor(BaseModel):
        value: int

    Floor.model_validate({"value": 1})


SAME_PROCESS = "same-process.jsonl"  # in --modules-dir: each first-request process's warm median beside its first
LATER_WARMUPS, LATER_VALUES = 20, 30


def first_request(name: str, answers: str, same_process: Path) -> float:
    import contextlib
    import io
    import statistics

    from payments.aws import dynamodb_client

    recorded = json.loads(Path(answers).read_text(encoding="utf-8"))[HANDLERS[name]]
    # Hooked in before init (registering empties botocore's handler lookup cache), switched on after it.
    memory = common.MemoryAnswers(dynamodb_client(), recorded["calls"]).register()
    # The event is built before init too, as JSON text: building it imports and runs the harness's own
    # code (token signing, TOTP, the event builder), which would otherwise run between init and the
    # request and leave the CPU caches full of harness instead of handler. Between init and the
    # handler, a Lambda runtime only decodes the event it was sent; so does this.
    event_text = json.dumps(
        common.progress_event(recorded["au_id"], recorded["request"])
        if name == "payment_progress"
        else common.swap_event(recorded["au_id"], recorded["otp_secret"])
    )
    context, output = common.LambdaContext(), io.StringIO()
    module = __import__(f"functions.{name}.app", fromlist=["lambda_handler"])
    event = json.loads(event_text)
    with memory, contextlib.redirect_stdout(output):
        started = time.thread_time()
        response = module.lambda_handler(event, context)
        spent = time.thread_time() - started
    if response["statusCode"] != recorded["status"]:
        raise RuntimeError(f"{name} answered {response['statusCode']}: {response['body']}")
    # The same process then runs warm (same event, as bench/warm.py repeats its event): its own warm p50
    # is the comparison free of the offsets between processes.
    later = []
    with memory, contextlib.redirect_stdout(output):
        for _ in range(LATER_WARMUPS + LATER_VALUES):
            started = time.thread_time()
            module.lambda_handler(json.loads(event_text), context)
            later.append(time.thread_time() - started)
    warm = statistics.median(later[LATER_WARMUPS:])
    with same_process.open("a", encoding="utf-8") as lines:
        lines.write(
            json.dumps(
                {
                    "name": name,
                    "primed": os.environ.get("PAYMENTS_PRIME_AT_INIT") == "true",
                    "first": spent,
                    "warm": warm,
                }
            )
            + "\n"
        )
    return spent


def time_once(loops: int, kind: str, name: str, args: Any) -> float:
    if loops != 1:
        raise SystemExit("cold.py measures one thing per process: run it with --loops 1 --values 1 --warmups 0")
    modules = json.loads((Path(args.modules_dir) / f"{name}.json").read_text(encoding="utf-8"))
    if kind == "first-primed":
        os.environ["PAYMENTS_PRIME_AT_INIT"] = "true"
    if kind.startswith("first"):
        return first_request(name, args.answers, Path(args.modules_dir) / SAME_PROCESS)
    if kind == "own":
        floor(modules)
    started = time.process_time()
    floor(modules) if kind == "floor" else __import__(f"functions.{name}.app")
    return time.process_time() - started


def main() -> None:
    if sys.argv[1:2] == ["modules"]:
        common.use_test_env()
        __import__(f"functions.{sys.argv[2]}.app")
        Path(sys.argv[3]).write_text(json.dumps(third_party(list(sys.modules))), encoding="utf-8")
        return
    common.use_test_env()
    import pyperf

    def pass_args(cmd: list[str], args: Any) -> None:
        cmd.extend(("--answers", args.answers, "--modules-dir", args.modules_dir))

    runner = pyperf.Runner(add_cmdline_args=pass_args)
    runner.argparser.add_argument("--answers", required=True)
    runner.argparser.add_argument("--modules-dir", required=True)
    args = runner.parse_args()
    for name in HANDLERS:
        for kind in ("floor", "own", "first", "first-primed"):
            runner.bench_time_func(f"{kind} {name}", time_once, kind, name, args)


if __name__ == "__main__":
    main()
