"""`make bench`: DynamoDB cost, cold start, first request, warm CPU beside its floor, contention; each verdict.

    .venv/bin/python bench/run.py [--processes-cold 12] [--processes-warm 5] [--values 150] [--only cold,first,...]

Nothing fails on a figure, only a broken measurement. Its children run this script too: `modules NAME` (the
third-party modules the handler's import loads), `dynamodb WORK [ENDPOINT]` (the DynamoDB section, recording the
warm scenarios' calls), `--kinds cold|first|warm` (pyperf: docs/performance.md says what each benchmark's warm-ups
and values are). Only the standard library and pyperf at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyperf

ROOT = Path(__file__).resolve().parents[1]
DEMO_FIXTURE = ROOT / "cli" / "payments_cli" / "demo_fixture.json"
DEMO_OTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - the demo fixture's
JWT_SECRET = "local-development-secret-change-me"  # noqa: S105 - payments.config.DEVELOPMENT_JWT_SECRET
PROGRESS_PATH, SWAP_PATH = "/api/v1/asker/payment/progress", "/v1.0/db/swap"
PICTURE = "https://willson-v1.s3.ap-northeast-2.amazonaws.com/user_image/img_profile_w.png"
# What tests/conftest.py gives the handlers: dummy AWS credentials, no X-Ray, quiet logs.
TEST_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "JWT_SECRET": JWT_SECRET}
TEST_ENV |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "POWERTOOLS_LOG_LEVEL": "WARNING"}
TEST_ENV |= {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "WillsonPaymentsTest"}
# Every request reads its shared items (apps, coins, rates, tickets, listing), as with a stale cache: the worst case,
# the same DynamoDB calls as the floor replays, and each request's recorded answers stay in order.
TEST_ENV |= {"SHARED_ITEMS_CACHE_SECONDS": "0"}
SERVICE_ENV = ("AWS_", "POWERTOOLS_", "JWT_", "WILLSON_", "LEDGER_", "OTP_", "HONEYPOT_", "MAX_LISTED", "SWAP_")
SERVICE_ENV += ("CORS_", "PAYMENTS_", "LAMBDA_", "_X_AMZN", "SHARED_ITEMS_")
HANDLERS = {"payment_progress": "progress_3", "swap": "swap_success"}
SCENARIOS = {"progress_3": "payment progress, 3 listed", "progress_30": "payment progress, 30 listed"}
SCENARIOS |= {"swap_success": "swap, success", "swap_refused": "swap, refused at the balances step"}
KINDS = ("floor", "handler", "handler/floor")
STATE: dict[str, Any] = {}
CALLS: list[dict[str, Any]] = []
TARGETS: list[list[Any]] = []
EMPTY = {"BatchGetItem": b'{"Responses": {}, "UnprocessedKeys": {}}', "Query": b'{"Items": [], "Count": 0}'}


def use_test_env(**extra: str) -> None:
    """This process's environment minus whatever configures AWS or the service, plus TEST_ENV."""
    for name in [name for name in os.environ if name.startswith(SERVICE_ENV)]:
        del os.environ[name]
    os.environ.update(TEST_ENV, **extra)


class LambdaContext:
    function_name, function_version, memory_limit_in_mb, aws_request_id = "bench", "$LATEST", 512, "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def token(au_id: int, ttl: int = 7200) -> str:
    from payments.auth import issue_access_token

    return issue_access_token(au_id, JWT_SECRET, ttl)


def swap_body(secret: str, points: int = 110, at: float | None = None, event_id: int = 3) -> dict[str, Any]:
    """Points → coins (event 3) or coins → points (event 4) at the demo rate, 0.1."""
    from pyotp import TOTP

    sign, code = 1 if event_id == 4 else -1, TOTP(secret).at(time.time() if at is None else at)
    point = {"app_id": 1, "point_id": 1, "adjust_point_quantity": sign * points}
    coin = {"coin_id": 2, "adjust_coin_quantity": -sign * points / 10}
    return {"event_id": event_id, "otp_code": code, "point": point, "coin": coin}


def scenario_event(scenario: dict[str, Any], ttl: int = 7200) -> dict[str, Any]:
    """An API Gateway event: a swap when the scenario has an OTP secret, else payment progress."""
    from payments_cli.events import api_event

    if "otp_secret" not in scenario:
        return api_event(PROGRESS_PATH, scenario["request"], {"x-token": token(scenario["au_id"], ttl)})
    headers = {"Authorization": f"Bearer {token(scenario['au_id'], ttl)}"}
    return api_event(SWAP_PATH, swap_body(scenario["otp_secret"]), headers)


def account(au_id: int, secret: str, points: int, coins: str = "0") -> dict[str, Any]:
    wallet = {"coin_id": 2, "walletaddress": f"0x{au_id:040x}", "quantity": coins}
    point = {"app_id": 1, "point_id": 1, "mu_id": 10_000 + au_id, "quantity": points}
    return {"au_id": au_id, "otp_secret": secret, "points": [point], "wallets": [wallet]}


def willsoners(count: int) -> dict[str, Any]:
    """`count` willsoners of subcategory 1 (concern 1577's), each with its user: 90 % complete, 10 % unrated."""
    card = {"experience": "오래 만난 사람과 헤어졌어요.", "introduction": "들어주는 건 자신 있어요", "image": PICTURE}
    card |= {"subcategory_idx": [1], "keywords": ["이별", "극복", "공감"], "status": "complete"}
    found = [card | {"idx": 100_000 + n, "au_id": 1_000_000 + n, "avg_rating": n % 41 / 10 + 1} for n in range(count)]
    for willsoner in found[9::10]:
        willsoner |= {"status": "waiting", "avg_rating": None}
    user = {"gender": "여", "age": "20대 중반", "pic": PICTURE}
    return {
        "users": [user | {"au_id": w["au_id"], "nickname": f"윌스너{w['idx']}"} for w in found],
        "willsoners": found,
    }


def load(client: Any, fixture: dict[str, Any]) -> None:
    from payments.config import get_settings
    from payments_cli.fixture_loader import load_fixture, parse_fixture_text

    s, text = get_settings(), json.dumps(fixture, ensure_ascii=False)
    load_fixture(client, parse_fixture_text(text), s.willson_table, s.ledger_table, s.otp_secret_table)


class MemoryAnswers:
    """A `before-send` hook answering a client's DynamoDB calls in memory (botocore still validates, serialises,
    signs, parses), registered once before anything is timed, and last: a hook of the code measured answers first.
    Replaying, the recorded answers in order (a call out of order is an error); before (at init), "nothing found"."""

    def __init__(self, client: Any, calls: list[dict[str, Any]], replaying: bool = True) -> None:
        self.calls, self.next, self.replaying = calls, 0, replaying
        client.meta.events.register_last("before-send.dynamodb", self.send, unique_id=f"bench-{id(self)}")

    def send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        status, headers, body = 200, {}, EMPTY.get(operation, b"{}")
        if self.replaying:
            call, self.next = self.calls[self.next], (self.next + 1) % len(self.calls)
            if operation != call["operation"]:
                raise RuntimeError(f"replay expected DynamoDB {call['operation']}, the code called {operation}")
            status, headers, body = call["status"], call["headers"], call["body"].encode()
        return AWSResponse("http://memory", status, headers, SimpleNamespace(stream=lambda **_: iter([body])))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table, readable on a terminal too."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join([lines[0], "|" + "|".join("-" * (w + 2) for w in widths) + "|", *lines[1:]]) + "\n"


def target(measure: str, figure: Any, limit: str, met: bool) -> str:
    TARGETS.append([measure, figure, limit, "met" if met else "MISSED"])
    return TARGETS[-1][-1]


def recorded(work: str | Path) -> dict[str, Any]:
    return json.loads((Path(work) / "dynamodb.json").read_text(encoding="utf-8"))


def floor(modules: list[str]) -> None:
    for module in modules:
        importlib.import_module(module)
    import boto3
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from pydantic import create_model

    boto3.client("dynamodb")
    Logger(service="floor"), Tracer(service="floor"), Metrics(namespace="Floor", service="floor")
    APIGatewayRestResolver().post("/floor")(lambda: {"floor": True})
    create_model("Floor", value=(int, ...)).model_validate({"value": 1})


def cold(loops: int, name: str, args: Any) -> float:
    modules, started = json.loads((Path(args.work) / "modules.json").read_text())[name], time.process_time()
    if STATE.get("floor"):
        importlib.import_module(f"functions.{name}.app")
    else:
        STATE["floor"] = floor(modules) or True
    return time.process_time() - started


def timed(handler: Any, request: dict[str, Any], status: int) -> float:
    started = time.thread_time()
    response = handler(request, LambdaContext())
    spent = time.thread_time() - started
    if response["statusCode"] != status:
        raise RuntimeError(f"answered {response['statusCode']}: {response['body']}")
    return spent


def first(loops: int, name: str, args: Any) -> float:
    if not STATE:  # init: the events are built before it, as JSON text, and decoded after it, as a runtime does
        from payments.aws import dynamodb_client

        os.environ["PAYMENTS_PRIME_AT_INIT"] = "true"
        scenario = recorded(args.work)["answers"][HANDLERS[name]]
        memory = MemoryAnswers(dynamodb_client(), scenario["calls"], replaying=False)
        # each request a token of its own (the cache of verified tokens is per token, not per environment)
        STATE.update(texts=[json.dumps(scenario_event(scenario, 7200 + n)) for n in range(64)])  # 21 + 30 used
        STATE.update(status=scenario["status"], handler=importlib.import_module(f"functions.{name}.app").lambda_handler)
        memory.replaying = True
    return timed(STATE["handler"], json.loads(STATE["texts"].pop()), STATE["status"])


def floor_handler(scenario: dict[str, Any]) -> Any:
    """A Powertools resolver in the handlers' own decorators: the same DynamoDB calls, json.dumps of the same body."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
    from aws_lambda_powertools.logging.correlation_paths import API_GATEWAY_REST
    from botocore import xform_name

    from payments.aws import dynamodb_client
    from payments.observability import logger, metrics, tracer

    app, client, body = APIGatewayRestResolver(), dynamodb_client(), json.loads(scenario["body"])
    calls = [(getattr(client, xform_name(call["operation"])), call["params"]) for call in scenario["calls"]]

    @app.post(SWAP_PATH if "otp_secret" in scenario else PROGRESS_PATH)
    def route() -> Response[str]:
        app.current_event.json_body  # noqa: B018 - parse the request body, as any handler does
        for method, params in calls:
            method(**params)
        metrics.add_metric(name="FloorServed", unit="Count", value=1)
        return Response(scenario["status"], "application/json", json.dumps(body, ensure_ascii=False))

    @logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


def warm(loops: int, kind: str, name: str, args: Any) -> float:
    if not STATE:
        from payments.aws import dynamodb_client

        scenario = STATE["scenario"] = recorded(args.work)["answers"][name]
        if kind != "floor":
            module = "payment_progress" if name.startswith("progress") else "swap"
            STATE["handler"] = importlib.import_module(f"functions.{module}.app").lambda_handler
        if kind != "handler":
            STATE["floor"] = floor_handler(scenario)
        STATE.update(step=None, memory=MemoryAnswers(dynamodb_client(), scenario["calls"]))
    if STATE["step"] != int(time.time()) // 30:  # a swap's OTP code follows the clock: a new event per step
        STATE.update(step=int(time.time()) // 30, event=scenario_event(STATE["scenario"]))
    parts = [part for part in ("floor", "handler") if part in STATE]
    spent = {part: timed(STATE[part], STATE["event"], STATE["scenario"]["status"]) for part in parts}
    return spent["handler"] / spent["floor"] if kind == "handler/floor" else spent[kind]


def before(params: dict[str, Any], model: Any, **_: Any) -> None:
    CALLS.append({"operation": model.name, "params": json.loads(json.dumps(params, default=str))})
    params["ReturnConsumedCapacity"] = "TOTAL"  # added once the parameters the code sends are recorded


def after(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    consumed = parsed.get("ConsumedCapacity") or []
    units = sum(c.get("CapacityUnits", 0) for c in ([consumed] if isinstance(consumed, dict) else consumed))
    CALLS[-1] |= {"status": http_response.status_code, "headers": dict(http_response.headers), "units": units}
    CALLS[-1]["body"] = http_response.content.decode()


def cost(calls: list[dict[str, Any]]) -> str:
    writes = sum(call["units"] for call in calls if call["operation"] in ("PutItem", "TransactWriteItems"))
    operations = ", ".join(f"{n} {op}" for op, n in sorted(Counter(call["operation"] for call in calls).items()))
    return f"{len(calls)} ({operations}); {sum(call['units'] for call in calls) - writes:g} RCU / {writes:g} WCU"


def dynamodb(work: str, endpoint: str | None) -> None:
    """The handlers against DynamoDB Local at `endpoint`, else moto: requests and capacity units per request."""
    os.environ |= {"AWS_ENDPOINT_URL_DYNAMODB": endpoint} if endpoint else {}
    __import__("moto").mock_aws().start() if not endpoint else None
    from payments.aws import dynamodb_client
    from payments_cli.tables import create_tables

    progress, swap = (importlib.import_module(f"functions.{name}.app").lambda_handler for name in HANDLERS)
    create_tables(loader := __import__("boto3").client("dynamodb"))  # fixtures loaded with a client not recorded
    load(loader, json.loads(DEMO_FIXTURE.read_text(encoding="utf-8")))
    dynamodb_client().meta.events.register("before-parameter-build.dynamodb", before)
    dynamodb_client().meta.events.register("after-call.dynamodb", after)
    answers: dict[str, Any] = {}

    def case(name: str, scenario: dict[str, Any], status: int) -> tuple[Any, list[Any]]:
        event, start = scenario_event(scenario), len(CALLS)
        with contextlib.redirect_stdout(None):
            response = (swap if "otp_secret" in scenario else progress)(event, LambdaContext())
        if response["statusCode"] != status:
            raise RuntimeError(f"{name} answered {response['statusCode']}: {response['body']}")
        answers[name] = scenario | {"calls": CALLS[start:], "status": status, "body": response["body"]}
        return json.loads(response["body"]), CALLS[start:]

    swaps = [{"au_id": 900_000 + n, "otp_secret": DEMO_OTP_SECRET} for n in range(2)]
    load(loader, {"accounts": [account(*s.values(), 50 if n else 10**6) for n, s in enumerate(swaps)]})
    rows = [["success", *case("swap_success", swaps[0], 200)], ["identical retry", *case("", swaps[0], 200)]]
    rows += [["refused at the balances step (the 2nd account has 50 points)", *case("swap_refused", swaps[1], 409)]]
    twi, calls = sum(c["operation"] == "TransactWriteItems" for c in rows[0][2]), len(rows[0][2])
    measure = "uncontended successful swap: TransactWriteItems / all DynamoDB requests"
    target(measure, f"{twi} / {calls}", "1 / ≤ 4", twi == 1 and calls <= 4)
    print(f"### 1. DynamoDB cost per request ({'DynamoDB Local' if endpoint else 'moto'})\n")
    print(table(["swap", "return", "requests; capacity units"], [[n, a["return"], cost(c)] for n, a, c in rows]))
    rows = []  # the demo data has 4 willsoners, 3 of them listed for concern 1577; then 10,000 of its subcategory
    for size, name in ((4, "progress_3"), (10_000, "progress_30")):
        load(loader, willsoners(size - 4)) if size > 4 else None
        for match_type, label in ((None, "absent (all)"), (2, "2 (different)"), (1, "1 (same)")):
            request = {"concern_idx": 1577} | ({"match_type": match_type} if match_type else {})
            answer, calls = case(name if match_type is None else "", {"au_id": 149, "request": request}, 200)
            scan, listed = any(c["operation"] == "Scan" for c in calls), len(answer["data"]["willsoners"])
            rows.append([f"{size:,}", label, listed, cost(calls), "yes" if scan else "no"])
            measure = f"payment progress DynamoDB requests, {size:,} willsoners, match_type {label}"
            if size > 4:
                target(measure, len(calls), "≤ 3, no Scan", len(calls) <= 3 and not scan)
    print("Payment progress, caller 149, concern 1577:\n")
    print(table(["willsoners", "match_type", "listed", "requests; capacity units", "Scan"], rows))
    output = {"answers": {name: answers[name] for name in SCENARIOS}, "targets": TARGETS}
    (Path(work) / "dynamodb.json").write_text(json.dumps(output, ensure_ascii=False), encoding="utf-8")


def pyperf_worker() -> None:
    def pass_args(cmd: list[str], args: Any) -> None:
        cmd.extend(("--kinds", args.kinds, "--work", args.work))

    runner = pyperf.Runner(add_cmdline_args=pass_args)
    runner.argparser.add_argument("--kinds", required=True)
    runner.argparser.add_argument("--work", required=True)
    args = runner.parse_args()
    for name in HANDLERS if args.kinds in ("cold", "first") else ():
        runner.bench_time_func(f"{args.kinds} {name}", cold if args.kinds == "cold" else first, name, args)
    for scenario in SCENARIOS if args.kinds == "warm" else ():
        for kind in KINDS:
            runner.bench_time_func(f"{kind} {scenario}", warm, kind, scenario, args)


def suite(work: Path, kinds: str, processes: int, warmups: int, values: int) -> Any:
    print(f"[bench {time.strftime('%H:%M:%S')}] pyperf: {kinds}", file=sys.stderr, flush=True)
    options = [f"--processes={processes}", f"--warmups={warmups}", f"--values={values}", "--loops=1", "--quiet"]
    command = [sys.executable, __file__, "--kinds", kinds, "--work", str(work), "-o", str(work / kinds), *options]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return pyperf.BenchmarkSuite.load(str(work / kinds))


def per_process(bench: Any, value: Any) -> Any:
    """value(run) of each worker process's run, as a benchmark of one value per process (pyperf's median of it)."""
    metadata, runs = {"name": bench.get_name(), "unit": "second"}, bench.get_runs()
    return pyperf.Benchmark([pyperf.Run([value(r)], metadata=metadata, collect_metadata=False) for r in runs])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report_cold(work: Path, args: Any) -> None:
    command = [sys.executable, __file__, "modules"]
    listings = {name: subprocess.run([*command, name], capture_output=True, check=True) for name in HANDLERS}
    (work / "modules.json").write_text(json.dumps({name: json.loads(p.stdout) for name, p in listings.items()}))
    benchmarks, rows = suite(work, "cold", args.processes_cold, 1, 1), []
    for name in HANDLERS:
        bench = benchmarks.get_benchmark(f"cold {name}")
        share = per_process(bench, lambda run: run.values[0] / run.warmups[0][1]).median()
        measure = f"cold import {name}: own code on top of its packages' floor"
        met = target(measure, f"{share:.1%}", "≤ 5%", share <= 0.05)
        floor = per_process(bench, lambda run: run.warmups[0][1]).median()
        rows.append([name, bench.get_nrun(), ms(floor), ms(bench.median()), f"{share:.1%}", met])
    print("### 2. Cold start: own code on top of its packages' floor (fresh processes, CPU time)\n")
    print(table(["handler", "processes", "floor", "own code on top", "share", "≤ 5%"], rows))


def report_first(work: Path, args: Any) -> None:
    benchmarks, rows = suite(work, "first", args.processes_cold, 21, 30), []
    for name in HANDLERS:
        bench = benchmarks.get_benchmark(f"first {name}")
        ratio = per_process(bench, lambda run: run.warmups[0][1] / pyperf.Benchmark([run]).median()).median()
        measure = f"first request after init / warm p50 of its own process, {name} (primed)"
        met = target(measure, f"{ratio:.2f}", "≤ 1.2", ratio <= 1.2)
        first_request = per_process(bench, lambda run: run.warmups[0][1]).median()
        rows.append([name, bench.get_nrun(), ms(first_request), ms(bench.median()), f"{ratio:.2f}", met])
    print("### 3. First request after init, primed (PAYMENTS_PRIME_AT_INIT=true), CPU time of the thread\n")
    print(table(["handler", "processes", "first request", "requests 22-51", "first / own p50", "≤ 1.2×"], rows))


def report_warm(work: Path, args: Any) -> None:
    benchmarks, rows = suite(work, "warm", args.processes_warm, max(5, args.values // 8), args.values), []
    for scenario, label in SCENARIOS.items():
        floor, handler, ratio = (benchmarks.get_benchmark(f"{kind} {scenario}") for kind in KINDS)
        median = ratio.median()
        met = target(f"warm p50 {label} / its floor in the same process", f"{median:.2f}", "≤ 1.5", median <= 1.5)
        calls = "+".join(call["operation"] for call in recorded(work)["answers"][scenario]["calls"])
        p50s = [ms(floor.median()), ms(handler.median()), ms(handler.percentile(99))]
        rows.append([label, calls, *p50s, f"{median:.2f}", met])
    print("### 4. Warm CPU per request beside its floor (DynamoDB answered from memory, CPU time of the thread)\n")
    headers = ["scenario", "DynamoDB calls", "floor p50", "handler p50", "handler p99", "handler / floor", "≤ 1.5×"]
    print(table(headers, rows))


def report_contention(work: Path, args: Any, sizes: tuple[int, ...] = (3, 12, 48)) -> None:
    """Bursts of concurrent swaps on one fresh account each; TransactWriteItems counted on the wire."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.otp import wait_for_calm_otp_step
    from helpers.processes import LocalStack
    from payments_cli.dynamodb_local import DynamoDBLocal
    from payments_cli.dynamodb_proxy import DynamoDBProxy

    fixture = json.loads(DEMO_FIXTURE.read_text("utf-8"))  # one fresh account per burst
    fixture["accounts"] += [account(10_000 + n, DEMO_OTP_SECRET, 10**6) for n in range(len(sizes))]
    (work / "fixture.json").write_text(json.dumps(fixture, ensure_ascii=False), encoding="utf-8")
    rows, serve = [], ["--concurrent-dynamodb", "--fixture", str(work / "fixture.json")]
    with DynamoDBLocal() as database:
        proxy = DynamoDBProxy(database.endpoint, serialise=False).start()
        with LocalStack("--dynamodb-endpoint", proxy.endpoint, *serve) as stack:
            for n, size in enumerate(sizes):
                now, headers = wait_for_calm_otp_step(), {"Authorization": f"Bearer {token(10_000 + n)}"}
                proxy.reset()
                bodies = [swap_body(DEMO_OTP_SECRET, 10 + i, now + 30 * (i % 3 - 1)) for i in range(size)]
                with ThreadPoolExecutor(size) as pool:
                    answers = list(pool.map(lambda body, h=headers: stack.post(SWAP_PATH, body, h), bodies))
                outcomes = [f"{status}/{body.get('return')}" for status, body in answers]
                ok, used, conflict = (outcomes.count(o) for o in ("200/0", "409/32108", "409/32203"))
                stats, other = proxy.stats(), size - ok - used - conflict
                cancelled = stats["errors"].get("TransactWriteItems", {}).get("TransactionCanceledException", 0)
                rows.append([size, ok, used, conflict, other, stats["requests"]["TransactWriteItems"], cancelled])
        proxy.stop()
    print("### 5. Contention: one account, concurrent swaps (serve --concurrent-dynamodb → proxy → DynamoDB Local)\n")
    headers = ["concurrent", "successes", "32108 used", "32203 conflict", "other", "TransactWriteItems", "cancelled"]
    print(table(headers, rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes-cold", type=int, default=12, help="fresh processes per cold and first benchmark")
    parser.add_argument("--processes-warm", type=int, default=5, help="worker processes per warm benchmark")
    parser.add_argument("--values", type=int, default=150, help="timed invocations per warm worker")
    parser.add_argument("--only", default="cold,first,warm,contention", help="sections after the DynamoDB one")
    args, started = parser.parse_args(), time.monotonic()
    print(f"## Benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})\n")
    from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        with DynamoDBLocal() if is_installed() else contextlib.nullcontext() as database:
            endpoint = [database.endpoint] if database else []
            subprocess.run([sys.executable, __file__, "dynamodb", work, *endpoint], check=True)
        TARGETS.extend(recorded(work)["targets"])
        for section in args.only.split(","):
            if section != "contention" or is_installed():
                globals()[f"report_{section}"](Path(work), args)
    print("### Targets\n")
    print(table(["measure", "figure", "target", "verdict"], TARGETS))
    print(f"Load average at the end {os.getloadavg()[0]:.2f}; whole run {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    use_test_env()
    if "--kinds" in sys.argv:
        pyperf_worker()
    elif sys.argv[1:2] == ["modules"]:
        importlib.import_module(f"functions.{sys.argv[2]}.app")
        own = {*sys.stdlib_module_names, "payments", "functions", "payments_cli", "run", "pyperf", "psutil"}
        print(json.dumps([m for m in sys.modules if m.partition(".")[0] not in own and m[0] != "_"]))
    elif sys.argv[1:2] == ["dynamodb"]:
        dynamodb(sys.argv[2], sys.argv[3] if sys.argv[3:] else None)
    else:
        sys.exit(main())
