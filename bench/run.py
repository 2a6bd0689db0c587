"""Performance benchmarks of the two handlers: `make bench` (never a test; budget < 5 minutes on 2 cores).

1. Cold start   fresh interpreters import each handler, beside its third-party floor  (bench/cold.py)
2. Warm         in-process invocations, DynamoDB answered from memory, beside a
                Powertools hello world                                              (bench/warm.py)
3. DynamoDB     round trips, items and capacity units per request, against DynamoDB
                Local with 10 / 1,000 / 10,000 willsoners                          (bench/costs.py)
4. Contention   swaps through `payments serve` in front of DynamoDB Local, on one
                account and on many; a counting proxy (bench/proxy.py) sees every
                TransactWriteItems attempt                                           (this file)

Prints Markdown tables and whether each target is met. `--markdown PATH` also writes them there.
Sections can be chosen with `--only cold,warm,costs,contention` (the default is all four).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import ms, table, us, verdict  # noqa: E402

COLD_TARGET = 1.15
WARM_TARGET = 2.0
HANDLERS = ("payment_progress", "swap")
PAYMENTS = Path(common.PYTHON).with_name("payments")
BUDGET_SECONDS = 300
# Pace of an otherwise idle 2-core machine: one cold-start child, and sections 3 + 4 together.
QUIET_PROCESS_SECONDS = 1.1
REST_QUIET_SECONDS = 70

_sections: dict[int, list[str]] = {0: []}
_current = 0
_targets: list[tuple[int, list[str]]] = []


def target(row: list[str]) -> None:
    """A line of the Targets table, listed under the section being reported."""
    _targets.append((_current, row))


def say(text: str = "") -> None:
    """Report text; sections run in another order than they are numbered, so it is printed at the end."""
    _sections[_current].append(text)


def section(number: int, title: str) -> None:
    global _current
    _current = number
    _sections[number] = ["", f"## {number}. {title}", ""]


def report() -> str:
    return "\n".join(line for number in sorted(_sections) for line in _sections[number])


def progress(text: str) -> None:
    """Progress goes to stderr, so stdout holds only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_child(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[Any, float]:
    started = time.perf_counter()
    process = subprocess.run([common.PYTHON, *args], env=env, capture_output=True, text=True,
                             cwd=str(common.ROOT), timeout=timeout)
    wall = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return common.read_result(process.stdout), wall


# --- machine -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


# --- 1. cold start -----------------------------------------------------------------------------


def cold_start(answers: Path | None, rounds: int, lambda_rounds: int, started: float) -> None:
    section(1, "Cold start (fresh process, import of the handler module)")
    test_env = common.child_env()
    # What Lambda sets that changes the import: X-Ray's recorder builds no sampling client inside
    # Lambda, and tracing is on (template: Tracing: Active), so Tracer patches botocore at init.
    lambda_env = common.child_env({"LAMBDA_TASK_ROOT": str(common.ROOT / "functions")},
                                  drop=["POWERTOOLS_TRACE_DISABLED"])

    def run(kind: str, name: str, env: dict[str, str], first: bool) -> dict[str, Any]:
        args = [str(common.BENCH / "cold.py"), kind, name]
        if first and answers is not None and kind == "handler":
            args += ["--answers", str(answers)]
        result, wall = run_child(args, env, timeout=60)
        result["wall_s"] = wall
        return result

    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    plans = [("test env", test_env, rounds, True), ("Lambda-like env", lambda_env, lambda_rounds, False)]
    for env_name, env, count, first in plans:
        if env_name != "test env":
            # An extra: run it only if, at the pace this machine has shown, the rest still fits the budget.
            wall = common.median([r["wall_s"] for key, runs in results.items() for r in runs])
            slowness = wall / QUIET_PROCESS_SECONDS
            needed = (count + 1) * 4 * wall + REST_QUIET_SECONDS * slowness
            if time.monotonic() - started + needed > BUDGET_SECONDS * 0.9:
                progress(f"skipping cold start in the {env_name}: the machine is {slowness:.1f}x slower than "
                         "a quiet one and the time budget would not hold")
                continue
        progress(f"cold start, {env_name}: {count} rounds of 4 fresh processes (+1 discarded warm-up round)")
        for round_number in range(count + 1):
            for name in HANDLERS:
                # alternate which goes first, so drift on a busy machine falls on both alike
                order = ("handler", "floor") if (round_number + HANDLERS.index(name)) % 2 else ("floor", "handler")
                for kind in order:
                    result = run(kind, name, env, first)
                    if round_number:
                        results.setdefault((env_name, kind, name), []).append(result)

    def med(env_name: str, kind: str, name: str, key: str) -> float:
        return common.median([r[key] for r in results[(env_name, kind, name)]])

    rows = []
    for env_name, _, count, _ in plans:
        if (env_name, "handler", HANDLERS[0]) not in results:
            continue
        for name in HANDLERS:
            handlers = results[(env_name, "handler", name)]
            floors = results[(env_name, "floor", name)]
            # Ratios of the runs made side by side in the same round (same moment of a shared machine).
            ratio_imports = common.median([h["import_cpu_s"] / f["imports_cpu_s"] for h, f in zip(handlers, floors)])
            ratio_init = common.median([h["import_cpu_s"] / f["init_cpu_s"] for h, f in zip(handlers, floors)])
            own = common.median([f["own_on_floor_cpu_s"] for f in floors])
            same_process = common.median([1 + f["own_on_floor_cpu_s"] / f["init_cpu_s"] for f in floors])
            rows.append([env_name, name, count, ms(med(env_name, "handler", name, "import_cpu_s")),
                         ms(med(env_name, "floor", name, "imports_cpu_s")), f"{ratio_imports:.2f}",
                         ms(med(env_name, "floor", name, "init_cpu_s")), f"{ratio_init:.2f}",
                         verdict(ratio_init, COLD_TARGET) if env_name == "test env" else "(informative)",
                         ms(own), f"{same_process:.3f}",
                         ms(med(env_name, "handler", name, "import_s")),
                         ms(med(env_name, "handler", name, "wall_s"), 0),
                         f"{med(env_name, 'handler', name, 'rss_mb'):.0f} MB"])
            if env_name == "test env":
                target([f"cold start {name}: import / floor B (packages + their init), CPU time",
                        f"{ratio_init:.2f}", f"≤ {COLD_TARGET}", verdict(ratio_init, COLD_TARGET)])
                target([f"cold start {name}: import / floor A (package imports only), CPU time",
                        f"{ratio_imports:.2f}", f"≤ {COLD_TARGET}", verdict(ratio_imports, COLD_TARGET)])
    say(table(["env", "handler", "runs", "handler import", "floor A: imports", "ratio A",
               "floor B: imports + init", "ratio B", f"B ≤ {COLD_TARGET}", "handler on top of B",
               "(B + on top) / B", "import, elapsed", "process wall", "max RSS"], rows))
    say()
    say("Medians over the runs; a ratio is the median of the per-round ratios (handler and floor children "
        "run back to back in each round, their order alternating). The import columns are CPU time of the "
        "child around the import "
        "(`time.process_time`, which other work on a shared machine does not inflate; on an idle machine it "
        "is within a few % of the elapsed time, shown as `import, elapsed`). Interpreter start is excluded; "
        "`process wall` is the whole child process. Floor A imports only the third-party packages the "
        "handler uses (botocore/boto3, pydantic, PyJWT, Powertools event_handler/logging/metrics/tracing, "
        "aws_xray_sdk.core which Tracer() always imports; swap: pyotp and the idempotency utility). Floor B "
        "adds what any handler on those packages builds at init: one DynamoDB client, Logger/Tracer/Metrics, "
        "a resolver with one route, one pydantic model, and for swap the idempotency persistence layer. "
        "`handler on top of B` is the handler's import inside the floor-B process, after it: what the "
        "project's own code adds (its modules, settings, its own DynamoDB client with botocore's model "
        "already loaded), without the noise of comparing two processes; `(B + on top) / B` is the ratio it "
        f"implies. The target is judged in the test env (the tests' environment, {rounds} runs); the "
        f"Lambda-like env ({lambda_rounds} runs, fewer, so noisier) is informative: it sets LAMBDA_TASK_ROOT "
        "and leaves tracing on, as deployed: X-Ray's recorder then builds no sampling client, and Tracer "
        "patches the libraries X-Ray supports (botocore among them) at init.")

    if ("test env", "handler", HANDLERS[0]) in results:
        say()
        rows = []
        for name in HANDLERS:
            runs = results[("test env", "handler", name)]
            if "first_request_s" in runs[0]:
                rows.append([name, ms(med("test env", "handler", name, "import_cpu_s")),
                             ms(common.median([r["first_request_cpu_s"] for r in runs])),
                             ms(common.median([r["second_request_cpu_s"] for r in runs])),
                             ms(common.median([r["import_cpu_s"] + r["first_request_cpu_s"] for r in runs]))])
        if rows:
            say("First requests of a fresh process (test env, CPU time, DynamoDB answered from memory):")
            say()
            say(table(["handler", "import", "1st request", "2nd request", "import + 1st request"], rows))

        say()
        say("Where the floor's time goes (CPU time, median per step, steps in import order; the last line is "
            "not in either floor):")
        say()
        columns = [(env_name, name) for env_name in ("test env", "Lambda-like env") for name in HANDLERS
                   if (env_name, "floor", name) in results]
        steps: dict[tuple[str, str], dict[str, float]] = {}
        for key in columns:
            laps: dict[str, list[float]] = {}
            for result in results[(key[0], "floor", key[1])]:
                for label, seconds in result["cpu_laps"].items():
                    laps.setdefault(label, []).append(seconds)
            steps[key] = {label: common.median(values) for label, values in laps.items()}
        labels = list(steps[("test env", "swap")])
        say(table(["step", *(f"{name} floor, {env_name}" for env_name, name in columns)],
                  [[label, *(ms(steps[key][label]) if label in steps[key] else "—" for key in columns)]
                   for label in labels]))
        say()
        for name in HANDLERS:
            handler_modules = set(results[("test env", "handler", name)][0]["module_names"])
            floor_modules = set(results[("test env", "floor", name)][0]["module_names"])
            own = ("payments", "functions", "common", "cold")
            extra = sorted(m for m in handler_modules - floor_modules if not m.startswith(own))
            own_count = sum(1 for m in handler_modules if m.startswith(("payments", "functions")))
            say(f"- {name}: its import loads {own_count} modules of its own and, beyond floor B's, these "
                f"third-party/stdlib modules: {', '.join(extra) if extra else 'none'}.")
        say()
        say("Compile time of the project's own modules each handler imports (paid at every cold start "
            "when the deployment package ships no .pyc; included above only on the discarded warm-up run):")
        say()
        rows = []
        for name in HANDLERS:
            files = own_modules(name)
            rows.append([name, len(files), sum(len(Path(f).read_text(encoding="utf-8").splitlines()) for f in files),
                         ms(compile_time(files))])
        say(table(["handler", "own modules", "lines", "compile (median of 5)"], rows))


def own_modules(name: str) -> list[str]:
    code = (f"import sys, functions.{name}.app; root = {str(common.ROOT)!r}; "
            "print('\\n'.join(sorted(m.__file__ for m in list(sys.modules.values()) "
            "if getattr(m, '__file__', None) and m.__file__.startswith(root) and '/.venv' not in m.__file__)))")
    output = subprocess.run([common.PYTHON, "-c", code], env=common.child_env(), capture_output=True, text=True,
                            cwd=str(common.ROOT), check=True).stdout
    return [line for line in output.splitlines() if line.endswith(".py") and "/bench/" not in line]


def compile_time(files: list[str]) -> float:
    sources = [(Path(f).read_text(encoding="utf-8"), f) for f in files]
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for source, filename in sources:
            compile(source, filename, "exec", dont_inherit=True)
        samples.append(time.perf_counter() - started)
    return common.median(samples)


# --- 2. warm overhead --------------------------------------------------------------------------


def warm(answers: Path, rounds: int, block: int, report: bool = True) -> None:
    if report:
        section(2, "Warm overhead (in-process invocations, DynamoDB answered from memory)")
        progress(f"warm overhead: {rounds} x {block} invocations per scenario")
    result, _ = run_child([str(common.BENCH / "warm.py"), "--answers-out", str(answers), "--rounds", str(rounds),
                           "--block", str(block)], common.child_env(), timeout=200)
    if not report:
        return
    hello, observed, with_item, *handlers = result["scenarios"]
    rows = []
    for scenario in result["scenarios"]:
        baseline = scenario is hello
        p50_ratio = scenario["cpu_p50_s"] / hello["cpu_p50_s"]
        p99_ratio = scenario["cpu_p99_s"] / hello["cpu_p99_s"]
        is_handler = scenario in handlers
        rows.append([scenario["name"], scenario["samples"], us(scenario["cpu_p50_s"]), us(scenario["cpu_p99_s"]),
                     "—" if baseline else f"{p50_ratio:.1f}", "—" if baseline else f"{p99_ratio:.1f}",
                     verdict(p50_ratio, WARM_TARGET) if is_handler else "—",
                     f"{scenario['cpu_p50_s'] / with_item['cpu_p50_s']:.1f}" if is_handler else "—",
                     f"{us(scenario['p50_s'])} / {us(scenario['p99_s'])}",
                     len(scenario["dynamodb_calls"]), scenario["wrong_status"]])
        if is_handler:
            target([f"warm p50 {scenario['name']} / hello world (CPU time)", f"{p50_ratio:.1f}",
                    f"≤ {WARM_TARGET}", verdict(p50_ratio, WARM_TARGET)])
    say(table(["invocation", "n", "p50", "p99", "p50 / hello", "p99 / hello", f"p50 ≤ {WARM_TARGET}× hello",
               "p50 / hello+GetItem", "elapsed p50 / p99", "DynamoDB calls", "wrong status"], rows))
    say()
    say("p50/p99 are CPU time of the invoking thread per invocation (`time.thread_time`, its own cost of "
        f"{us(result['cpu_timer_overhead_s'])} subtracted), which preemption by other work does not inflate; "
        "the elapsed figures are beside them. Each invocation is the real `lambda_handler` with an API Gateway "
        "event built like tests/conftest.py's; the handler's own boto3 client answers from recorded responses "
        "through a `before-call` hook (as botocore's Stubber does), so botocore still validates and serialises "
        "every call; no network, no signing, no response parsing. Scenarios are interleaved in blocks of "
        f"{block}; the first block of each is discarded. `wrong status` counts answers other than the "
        "expected 200 (409 for the refused swap): 0 means every timed request did what it should.")
    say()
    say("Where a warm request's time goes (mean elapsed time per request over 300 more invocations; timers "
        "wrapped around botocore's BaseClient._make_api_call, the token check, the item decoding (boto3 "
        "TypeDeserializer) and the response JSON):")
    say()
    rows = []
    for name, split in result["breakdown"].items():
        named = split["botocore_s"] + split["token_s"] + split["decode_s"] + split["dumps_s"]
        rows.append([name, us(split["total_s"]), f"{split['dynamodb_calls']:.0f}",
                     f"{us(split['botocore_s'])} ({split['botocore_s'] / split['total_s']:.0%})",
                     us(split["token_s"]), us(split["decode_s"]), us(split["dumps_s"]),
                     us(split["total_s"] - named)])
    say(table(["invocation", "mean", "DynamoDB calls", "botocore client-side", "token check", "item decoding",
               "response JSON", "rest (Powertools, pydantic, service)"], rows))
    say()
    cost = result["response_json"]
    why = (" It copies the whole object to mark Decimals, then builds a regex from a fresh uuid4 marker on every "
           "call, so `re` compiles a new pattern each time (compiling one such pattern: "
           f"{us(cost['compile_s'])}) and re's pattern cache churns." if cost["fresh_regex_per_call"] else "")
    say(f"Response JSON: `payments.json_body.dumps` takes {us(cost['payments_dumps_s'])} (CPU, median) for the "
        f"{cost['bytes']:,}-byte payment-progress answer with 30 willsoners, where `json.dumps` of the same "
        f"object takes {us(cost['json_dumps_s'])}.{why}")
    say()
    say(f"Powertools alone: the Logger/Tracer/Metrics decorators the handlers wear cost "
        f"{us(observed['cpu_p50_s'] - hello['cpu_p50_s'])} per request at p50 (EMF metrics flushed to stdout, "
        f"here /dev/null; X-Ray disabled); one botocore call answered from memory costs "
        f"{us(with_item['cpu_p50_s'] - hello['cpu_p50_s'])}.")


# --- 3. DynamoDB cost --------------------------------------------------------------------------


def costs(endpoint: str, sizes: str) -> None:
    section(3, "DynamoDB cost per request (DynamoDB Local, ReturnConsumedCapacity=TOTAL)")
    progress(f"DynamoDB cost: loading {sizes} willsoners with the fixture loader into DynamoDB Local")
    result, wall = run_child([str(common.BENCH / "costs.py"), "--sizes", sizes],
                             common.child_env({"AWS_ENDPOINT_URL_DYNAMODB": endpoint}), timeout=240)
    rows = []
    for row in result["progress"]["rows"]:
        operations = ", ".join(f"{count} {name}" for name, count in row["operations"].items())
        match = {None: "absent (all)", 2: "2 (different)", 1: "1 (same)"}[row["match_type"]]
        rows.append([f"{row['willsoners']:,}", match, row["listed"], row["round_trips"], operations,
                     row["items_read"], f"{row['read_units']:g}", "yes" if "Scan" in row["operations"] else "no"])
        if row["willsoners"] == max(r["willsoners"] for r in result["progress"]["rows"]):
            target([f"payment progress DynamoDB requests, {row['willsoners']:,} willsoners, match_type {match}",
                    str(row["round_trips"]), "≤ 3, no Scan",
                    "met" if row["round_trips"] <= 3 and "Scan" not in row["operations"] else "MISSED"])
    say("Payment progress (caller 149, concern 1577 of the demo data; the generated willsoners share its "
        "subcategory, 90 % complete):")
    say()
    say(table(["willsoners", "match_type", "listed", "round trips", "requests", "items read", "read units", "Scan"],
              rows))
    say()
    loads = ", ".join(f"{int(size):,}: {seconds:.1f} s" for size, seconds in result["progress"]["load_s"].items())
    say(f"Loading time with payments_cli.fixture_loader into DynamoDB Local (table grown in place): {loads}.")
    say()
    rows = []
    for row in result["swap"]:
        def part(summary: dict[str, Any]) -> str:
            operations = ", ".join(f"{count} {name}" for name, count in summary["operations"].items()) or "none"
            errors = f"; refused: {', '.join(summary['errors'])}" if summary["errors"] else ""
            return (f"{summary['round_trips']} ({operations}){errors}; read {summary['items_read']}, "
                    f"wrote {summary['items_written']}; {summary['read_units']:g} RCU / {summary['write_units']:g} WCU")
        rows.append([row["case"], row["answer"], row["all"]["round_trips"], part(row["swap"]),
                     part(row["idempotency"])])
        if row["case"] == "success":
            transact = row["all"]["operations"].get("TransactWriteItems", 0)
            ok = transact == 1 and row["all"]["round_trips"] <= 4
            target(["uncontended successful swap: TransactWriteItems / all DynamoDB requests",
                    f"{transact} / {row['all']['round_trips']}", "1 / ≤ 4", "met" if ok else "MISSED"])
    say("Swap (fresh accounts; the split is by table: Ledger = the swap's own requests, Idempotency = the "
        "Powertools idempotency utility's). The replay's refused PutItem is the utility finding the stored "
        "success (ReturnValuesOnConditionCheckFailure gives it the record in the same round trip):")
    say()
    say(table(["case", "return", "round trips", "swap's own (Ledger table)", "idempotency utility"], rows))
    say()
    say("Capacity units are those DynamoDB Local reports. On DynamoDB itself a transactional write costs 2 write "
        "units per item (KB), so a swap's TransactWriteItems of 4 items is billed 8 write request units; "
        "strongly consistent reads cost 1 read unit per 4 KB item, eventually consistent ones half.")
    retried = [row for row in result["progress"]["rows"] if row["http_attempts"] != row["round_trips"]]
    retried += [row for row in result["swap"] if row["http_attempts"] != row["all"]["round_trips"]]
    say()
    say("botocore's HTTP attempts (`before-send`) equal the round trips (`before-call`) in every case above: no "
        "request was retried by botocore." if not retried else
        f"botocore retried some requests over HTTP ({len(retried)} cases): the round trips above count API calls.")
    progress(f"DynamoDB cost done in {wall:.0f} s")


# --- 4. contention -----------------------------------------------------------------------------


class Proxy:
    def __init__(self, upstream: str) -> None:
        self._process = subprocess.Popen([common.PYTHON, str(common.BENCH / "proxy.py"), "--upstream", upstream],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                         cwd=str(common.ROOT))
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PROXY-PORT "):
            self.stop()
            raise RuntimeError(f"proxy did not start: {line!r}")
        self.port = int(line.split()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def reset(self) -> None:
        self._call("POST", "/__reset")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/__stats")

    def stop(self) -> None:
        from payments_cli.dynamodb_local import stop_process

        stop_process(self._process)


class Serve:
    """`payments serve` as a separate process, started the way tests/local_stack.py starts it."""

    def __init__(self, dynamodb_endpoint: str, fixture: Path) -> None:
        from payments_cli.dynamodb_local import free_port

        self.port = free_port()
        env = common.child_env({"POWERTOOLS_METRICS_DISABLED": "true"})
        help_text = subprocess.run([str(PAYMENTS), "serve", "--help"], capture_output=True, text=True, env=env).stdout
        # DynamoDB Local makes each transaction atomic itself, so serve may send it requests concurrently
        # (as Lambda functions do to DynamoDB); without the flag serve forwards one request at a time.
        self.concurrent = "--concurrent-dynamodb" in help_text
        self._process = subprocess.Popen(
            [str(PAYMENTS), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--dynamodb-endpoint", dynamodb_endpoint, "--fixture", str(fixture),
             *(["--concurrent-dynamodb"] if self.concurrent else [])],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd="/")
        assert self._process.stdout is not None
        deadline = time.monotonic() + 120
        banner = []
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"serve exited early: {banner}")
            banner.append(line.rstrip("\n"))
            if line.startswith("  OpenAPI:"):
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.stop()
        raise RuntimeError("serve did not start in time")

    def _drain(self) -> None:
        assert self._process.stdout is not None
        for _ in self._process.stdout:
            pass

    def stop(self) -> None:
        from payments_cli.dynamodb_local import stop_process

        stop_process(self._process)


class Client:
    """One keep-alive HTTP connection to serve (one per load-generating thread)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, float]:
        payload = json.dumps(body).encode()
        started = time.perf_counter()
        for attempt in range(2):
            try:
                self._connection.request("POST", path, body=payload,
                                         headers={"Content-Type": "application/json", **headers})
                response = self._connection.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self._connection.close()
                self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
                if attempt:
                    raise
        return response.status, json.loads(data) if data else None, time.perf_counter() - started

    def close(self) -> None:
        self._connection.close()


def _otp(secret: str, offset_steps: int = 0) -> str:
    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def _wait_for_room_in_step(seconds_needed: float) -> None:
    """Wait until at least 1 s has passed in the current 30 s OTP step and `seconds_needed` remain."""
    while True:
        into = time.time() % 30
        if 1.0 <= into <= 30 - seconds_needed:
            return
        time.sleep(0.1)


def _outcome(status: int, body: Any) -> str:
    code = body.get("return") if isinstance(body, dict) else None
    if status == 200 and code == 0:
        return "success"
    return str(code if code is not None else status)


def burst(port: int, au_id: int, secret: str, size: int, token: str) -> dict[str, Any]:
    """`size` concurrent swaps on one account, codes spread over steps t-1, t, t+1, bodies all different."""
    clients = [Client(port) for _ in range(size)]
    barrier = threading.Barrier(size + 1)
    codes = [_otp(secret, offset) for offset in (-1, 0, 1)]
    outcomes: list[tuple[str, float]] = [("", 0.0)] * size

    def one(index: int) -> None:
        body = common.swap_body(codes[index % 3], -10 * (index + 1), index + 1)
        barrier.wait()
        status, answer, elapsed = clients[index].post(common.SWAP_PATH, body, {"Authorization": f"Bearer {token}"})
        outcomes[index] = (_outcome(status, answer), elapsed)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(size)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    for client in clients:
        client.close()
    counted: dict[str, int] = {}
    for outcome, _ in outcomes:
        counted[outcome] = counted.get(outcome, 0) + 1
    return {"requests": size, "outcomes": counted, "wall_s": wall,
            "latencies": [elapsed for outcome, elapsed in outcomes if outcome == "success"]}


def many_accounts(port: int, accounts: list[tuple[int, str, str]], concurrency: int,
                  max_seconds: float) -> dict[str, Any]:
    """Each account swaps once (code of the step current when sent); `concurrency` requests in flight."""
    lock = threading.Lock()
    queue = iter(accounts)
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    deadline = time.perf_counter() + max_seconds

    def worker() -> None:
        client = Client(port)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    account = next(queue, None)
                if account is None:
                    return
                au_id, secret, token = account
                status, answer, elapsed = client.post(common.SWAP_PATH, common.swap_body(_otp(secret)),
                                                      {"Authorization": f"Bearer {token}"})
                outcome = _outcome(status, answer)
                with lock:
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    if outcome == "success":
                        latencies.append(elapsed)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"requests": sum(outcomes.values()), "outcomes": outcomes, "wall_s": wall, "latencies": latencies}


def contention(endpoint: str, workdir: Path, many: int, concurrency: int, seconds: float) -> None:
    section(4, "Contention (swaps through `payments serve` → counting proxy → DynamoDB Local, loopback)")
    from payments.auth import issue_access_token

    warmup, bursts = 32, (3, 12, 48)
    first = 500_000
    fixture, secrets = common.accounts_fixture(first, warmup + len(bursts) + many)
    fixture_path = workdir / "contention_fixture.json"
    fixture_path.write_text(json.dumps(fixture), encoding="utf-8")
    tokens = {au_id: issue_access_token(au_id, common.JWT_SECRET, 3600) for au_id in secrets}
    ids = sorted(secrets)
    warm_ids, hot_ids, many_ids = ids[:warmup], ids[warmup:warmup + len(bursts)], ids[warmup + len(bursts):]

    progress(f"contention: starting the counting proxy and `payments serve` with {len(ids)} generated accounts")
    proxy = Proxy(endpoint)
    serve = None
    try:
        started = time.perf_counter()
        serve = Serve(proxy.endpoint, fixture_path)
        progress(f"serve listening after {time.perf_counter() - started:.1f} s (fixture loaded); warming up")
        many_accounts(serve.port, [(a, secrets[a], tokens[a]) for a in warm_ids], 16, 30)
        rows = []

        def record(name: str, result: dict[str, Any], stats: dict[str, Any]) -> None:
            outcomes = result["outcomes"]
            successes = outcomes.get("success", 0)
            transact = stats["requests"].get("TransactWriteItems", 0)
            cancelled = sum(stats["errors"].get("TransactWriteItems", {}).values())
            reads = stats["requests"].get("BatchGetItem", 0)
            other = {k: v for k, v in outcomes.items() if k not in ("success", "32108", "32203")}
            latencies = result["latencies"]
            rows.append([
                name, result["requests"], successes, outcomes.get("32108", 0), outcomes.get("32203", 0),
                ", ".join(f"{k}: {v}" for k, v in other.items()) or "0",
                f"{result['wall_s']:.2f} s", f"{successes / result['wall_s']:.1f}",
                transact, cancelled,
                f"{transact / successes:.2f}" if successes else "—",
                f"{(transact - successes) / successes:.2f}" if successes else "—",
                f"{reads / result['requests']:.2f}",
                f"{ms(common.percentile(latencies, 50), 0)} / {ms(common.percentile(latencies, 99), 0)}"
                if latencies else "—",
            ])
            return None

        progress("contention: one-account bursts")
        for size, au_id in zip(bursts, hot_ids):
            _wait_for_room_in_step(6)
            proxy.reset()
            result = burst(serve.port, au_id, secrets[au_id], size, tokens[au_id])
            record(f"one account, {size} concurrent", result, proxy.stats())
        progress(f"contention: {len(many_ids)} accounts, {concurrency} concurrent, ≤ {seconds:.0f} s")
        proxy.reset()
        result = many_accounts(serve.port, [(a, secrets[a], tokens[a]) for a in many_ids], concurrency, seconds)
        stats = proxy.stats()
        record(f"many accounts, {concurrency} concurrent", result, stats)
        many_rate = result["outcomes"].get("success", 0) / result["wall_s"]
        concurrent = serve.concurrent
    finally:
        if serve is not None:
            serve.stop()
        proxy.stop()
    say(table(["scenario", "requests", "successes", "32108 used", "32203 conflict", "other", "wall",
               "successes/s", "TransactWriteItems", "of which cancelled", "TWI per success",
               "retries per success", "BatchGetItem per request", "success latency p50 / p99"], rows))
    say()
    mode = ("sends their DynamoDB requests to DynamoDB Local as they come, as Lambda functions do to DynamoDB "
            "(DynamoDB Local makes each transaction atomic itself)" if concurrent
            else "forwards one DynamoDB request at a time (this serve has no --concurrent-dynamodb)")
    say(f"`payments serve{' --concurrent-dynamodb' if concurrent else ''}` runs 8 execution environments per "
        f"function (8 swaps in the handler at once; more wait in its HTTP threads) and {mode}. "
        "TransactWriteItems attempts and cancellations are counted on the wire by bench/proxy.py between serve "
        "and DynamoDB Local; `retries per success` = (attempts − successes) / successes, so a request that lost "
        "its race and then found its OTP step used (32108) counts as one attempt without a success. One account "
        "accepts at most 3 swaps per 30 s (one per OTP step t−1, t, t+1), so a burst on one account can only "
        "ever end with 3 successes: its successes/s is that burst's, and the sustained ceiling of one account is "
        "0.1 swaps/s whatever the backend. Everything (load generator, serve, proxy, DynamoDB Local) shares this "
        "machine's CPUs, which bound the many-account rate.")
    target([f"many accounts: successful swaps per second ({concurrency} concurrent, local stack)",
            f"{many_rate:.1f}", "(no target)", "—"])


# --- main --------------------------------------------------------------------------------------


def run_sections(args: argparse.Namespace, only: set[str], started: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as temp:
        workdir = Path(temp)
        answers = workdir / "answers.json"
        if "warm" in only:
            warm(answers, args.warm_rounds, args.warm_block)
        elif "cold" in only:
            warm(answers, 1, 5, report=False)  # only to record the answers of the cold child's first requests
        if "cold" in only:
            # The Lambda-like cold-start rounds are an extra: skipped when the machine is too slow for them.
            cold_start(answers if answers.exists() else None, args.cold_rounds, args.lambda_rounds, started)
        if "costs" in only or "contention" in only:
            from payments_cli.dynamodb_local import DynamoDBLocal, is_installed

            if not is_installed():
                say()
                say("DynamoDB Local is not installed (make dynamodb-local): sections 3 and 4 skipped.")
            else:
                progress("starting DynamoDB Local")
                with DynamoDBLocal() as database:
                    # Contention first, on empty tables: the fixture loader scans the Willson table on
                    # every load, which is slow once section 3 has put 10,000 willsoners in it.
                    if "contention" in only:
                        seconds = args.seconds
                        if time.monotonic() - started > BUDGET_SECONDS * 0.5:
                            seconds = min(seconds, 8.0)
                            progress(f"behind schedule: contention run shortened to {seconds:.0f} s")
                        contention(database.endpoint, workdir, args.accounts, args.concurrency, seconds)
                    if "costs" in only:
                        costs(database.endpoint, args.sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cold,warm,costs,contention")
    parser.add_argument("--cold-rounds", type=int, default=10)
    parser.add_argument("--lambda-rounds", type=int, default=5)
    parser.add_argument("--warm-rounds", type=int, default=20)
    parser.add_argument("--warm-block", type=int, default=50)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--accounts", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--markdown", help="also write the report to this file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    started = time.monotonic()

    info = machine()
    say("# Benchmarks")
    say()
    say(f"Machine: {info['nproc']} CPUs, {info['cpu']}, {info['platform']}; Python {info['python']}; "
        f"load average at start {info['load']}.")
    python = common.PYTHON
    if python.startswith(str(common.ROOT)):
        python = str(Path(python).relative_to(common.ROOT))
    say(f"Command: DYNAMODB_LOCAL_DIR=… {python} bench/run.py {' '.join(sys.argv[1:])}".rstrip())

    failed = None
    try:
        run_sections(args, only, started)
    except Exception as error:  # noqa: BLE001 - print what was measured, then fail
        failed = error
        progress(f"FAILED: {error!r}")

    section(5, "Targets")
    say(table(["measure", "figure", "target", "verdict"], [row for _, row in sorted(_targets, key=lambda t: t[0])]))
    elapsed = time.monotonic() - started
    say()
    say(f"Load average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}; whole run {elapsed:.0f} s.")
    if max(os.getloadavg()[0], float(info["load"].split()[0])) > (os.cpu_count() or 1):
        say("The load average exceeded the number of CPUs: other work shared the machine, so absolute times are "
            "inflated (ratios, counts and items are not affected the same way).")
    if failed is not None:
        say(f"**The run failed:** {failed!r}")
    text = report()
    print(text, flush=True)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    if failed is not None:
        raise failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
