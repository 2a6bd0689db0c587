"""Entry point of the `payments` console script."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import Field, TypeAdapter, ValidationError

DEMO_FIXTURE = Path(__file__).with_name("demo_fixture.json")
DEFAULT_REGION = "us-east-1"
TOKEN_TTL_SECONDS = 24 * 3600


class CliError(Exception):
    """A failure the user can act on: printed as one line on stderr, exit status `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _prepare_environment(endpoint: str | None, *, find_local_stack: bool = True) -> None:
    """Local defaults, set before any handler or client is created.

    The DynamoDB endpoint: `endpoint` (--dynamodb-endpoint), else AWS_ENDPOINT_URL_DYNAMODB (or
    AWS_ENDPOINT_URL), else the one of the live local stack (the `payments serve` that recorded itself and still
    answers), else AWS itself. With several live local stacks it refuses, naming them, rather than guess.
    """
    if (
        endpoint is None
        and find_local_stack
        and not (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL"))
    ):
        from payments_cli.state import SeveralLocalStacks, recorded_endpoint

        try:
            endpoint = recorded_endpoint()
        except SeveralLocalStacks as error:
            raise CliError(str(error), status=2) from None
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", DEFAULT_REGION))
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    if endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint


def _ledger() -> Any:
    """The ledger repository on the configured tables (the ops commands' only way to the ledger)."""
    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository

    settings = get_settings()
    return LedgerRepository(_client(), settings.ledger_table, settings.otp_secret_table)


def _client() -> Any:
    from payments.aws import dynamodb_client

    return dynamodb_client()


def _scan_client(segments: int) -> Any:
    """A DynamoDB client for a whole-table scan: the handlers' bounds (3 s reads, 2 attempts) are a request's, not
    an ops tool's; a page of a large table may take longer, and throttling is waited out (standard retries)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 10},
        connect_timeout=5,
        read_timeout=120,
        max_pool_connections=segments + 4,
    )
    return boto3.client("dynamodb", config=config)


def _load_fixture_file(path: Path) -> dict[str, int]:
    from payments.config import get_settings
    from payments_cli.fixture_loader import load_fixture, parse_fixture_text

    settings = get_settings()
    fixture = parse_fixture_text(path.read_text(encoding="utf-8"))
    return load_fixture(
        _client(), fixture, settings.willson_table, settings.ledger_table, settings.otp_secret_table, source=str(path)
    )


def _demo_ids(path: Path) -> tuple[int, int, int]:
    """(asker au_id, one of their concerns, dashboard au_id) to show in the start banner."""
    data = json.loads(path.read_text(encoding="utf-8"))
    concern = (data.get("concerns") or [{"au_id": 149, "idx": 1577}])[0]
    accounts = data.get("accounts") or [{"au_id": 19}]
    dashboard = next((a for a in accounts if a.get("otp_secret")), accounts[0])
    return int(concern["au_id"]), int(concern["idx"]), int(dashboard["au_id"])


def cmd_serve(args: argparse.Namespace) -> int:
    from payments_cli.dynamodb_proxy import DynamoDBProxy
    from payments_cli.emulator import EmbeddedDynamoDB

    if args.cors_origin:
        os.environ["CORS_ALLOWED_ORIGINS"] = ",".join(args.cors_origin)
    cors_origins = _cors_origins()
    endpoint = args.dynamodb_endpoint or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        _probe_dynamodb(endpoint)
    emulator: EmbeddedDynamoDB | DynamoDBProxy | None = None
    if not endpoint:
        emulator = EmbeddedDynamoDB().start()
        endpoint = emulator.endpoint
        handlers_endpoint = endpoint
    elif args.concurrent_dynamodb:
        handlers_endpoint = endpoint
    else:
        emulator = DynamoDBProxy(endpoint).start()
        handlers_endpoint = emulator.endpoint
    _prepare_environment(handlers_endpoint)

    from payments.auth import issue_access_token
    from payments.config import get_settings
    from payments_cli.server import FunctionPool, LocalApiServer
    from payments_cli.tables import create_tables
    from payments_cli.template import load_template, routes

    created = create_tables(_client())
    fixture = Path(args.fixture) if args.fixture else (DEMO_FIXTURE if created else None)
    if fixture is not None:
        counts = _load_fixture_file_or_fail(fixture)
        print(f"Loaded {fixture}: " + ", ".join(f"{name} {count}" for name, count in counts.items() if count))
    template = load_template()
    pools: dict[tuple[str, str], FunctionPool] = {}
    by_function: dict[str, FunctionPool] = {}
    for route in routes(template):  # one pool per function: its POST and OPTIONS share execution environments
        if route.function not in by_function:
            by_function[route.function] = FunctionPool(route)
        pools[(route.method, route.path)] = by_function[route.function]
    from payments_cli.openapi_page import extra_pages

    try:
        server = LocalApiServer((args.host, args.port), pools, extra_pages())
    except OSError as error:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}") from None
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}"
    asker, concern, dashboard = _demo_ids(fixture or DEMO_FIXTURE)
    secret = get_settings().jwt_secret
    willson_token = issue_access_token(asker, secret, TOKEN_TTL_SECONDS)
    dashboard_token = issue_access_token(dashboard, secret, TOKEN_TTL_SECONDS)
    if isinstance(emulator, EmbeddedDynamoDB):
        print(f"DynamoDB: {endpoint} (embedded emulator, in memory)")
    elif emulator is not None:
        print(f"DynamoDB: {endpoint} (one request at a time, through {emulator.endpoint})")
    else:
        print(f"DynamoDB: {endpoint}")
    from payments_cli.state import record_serve, remove_record

    record = record_serve(handlers_endpoint, url, endpoint if endpoint != handlers_endpoint else "")
    print(f"DynamoDB endpoint recorded for the other commands (payments otp code, load-fixture, …): {record.path}")
    print(f"Local stack listening on {url}")
    print("CORS: " + (", ".join(cors_origins) + " allowed" if cors_origins else "off (no --cors-origin)"))
    print(f"Demo token (au_id {asker}): {willson_token}")
    if dashboard != asker:
        print(f"Demo token (au_id {dashboard}): {dashboard_token}")
    print("Try:")
    print(
        f"  curl -s -X POST {url}/api/v1/asker/payment/progress -H 'Content-Type: application/json' "
        f"-H 'x-token: {willson_token}' -d '{{\"concern_idx\": {concern}}}'"
    )
    print(
        f"  curl -s -X POST {url}/v1.0/db/swap -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {dashboard_token}' "
        f'-d \'{{"event_id": 3, "otp_code": "<code from: payments otp code --au-id {dashboard}>", '
        f'"point": {{"app_id": 1, "point_id": 1, "adjust_point_quantity": -110}}, '
        f'"coin": {{"coin_id": 2, "adjust_coin_quantity": 11}}}}\''
    )
    print(f"  OpenAPI: {url}/docs", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    from payments.repositories.shared_items import forget_all
    from payments_cli.state import DATA_RELOADED_SIGNAL

    # `payments load-fixture` sends it: every environment reads apps, rates, tickets, listings again
    signal.signal(DATA_RELOADED_SIGNAL, lambda signum, frame: forget_all())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        remove_record(record)
        server.server_close()
        if emulator:
            emulator.stop()
    return 0


def _probe_dynamodb(endpoint: str) -> None:
    """Fail now, in one line, when the given DynamoDB cannot be reached (not later, behind a proxy)."""
    import boto3

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
    )
    client.list_tables(Limit=1)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _load_fixture_file_or_fail(path: Path) -> dict[str, int]:
    from payments_cli.fixture_loader import FixtureError

    try:
        return _load_fixture_file(path)
    except FixtureError as error:
        raise CliError(f"fixture refused, nothing written: {error}", status=2) from None
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", status=2) from None


def _cors_origins() -> tuple[str, ...]:
    """The allowed origins (--cors-origin, else CORS_ALLOWED_ORIGINS), checked as the handlers will read them."""
    from payments.config import normalise_origin

    text = os.environ.get("CORS_ALLOWED_ORIGINS", "")
    try:
        return tuple(dict.fromkeys(normalise_origin(item) for item in text.split(",") if item.strip()))
    except ValueError as error:
        raise CliError(f"CORS origin refused: {error}", status=2) from None


def cmd_create_tables(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    from payments_cli.tables import create_tables

    created = create_tables(_client())
    print("Created: " + (", ".join(created) if created else "nothing (all tables exist)"))
    return 0


def cmd_load_fixture(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    counts = _load_fixture_file_or_fail(Path(args.path))
    print("Loaded: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if endpoint:
        from payments_cli.state import tell_data_reloaded

        for stack in tell_data_reloaded(endpoint):  # else they would keep apps, rates, tickets… up to their TTL
            print(f"Local stack {stack.url} (pid {stack.pid}) reads its shared items again")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    _prepare_environment(None, find_local_stack=False)
    from payments.auth import issue_access_token
    from payments.config import get_settings

    print(issue_access_token(args.au_id, get_settings().jwt_secret, args.ttl, milliseconds=args.milliseconds))
    return 0


def cmd_otp_enroll(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    import io

    import pyotp
    import qrcode

    secret = pyotp.random_base32()
    _ledger().enroll_otp(args.au_id, secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=f"au_id {args.au_id}", issuer_name="Willson Points")
    print(uri)
    code = qrcode.QRCode(border=1)
    code.add_data(uri)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    print(buffer.getvalue())
    return 0


def cmd_otp_code(args: argparse.Namespace) -> int:
    """The current code of an enrolled account (a development stand-in for an authenticator app)."""
    _prepare_environment(args.dynamodb_endpoint)
    import pyotp

    repository = _ledger()
    secret = repository.get_otp_secret(args.au_id)
    if not secret:
        raise CliError(
            f"au_id {args.au_id} has no OTP enrolled (an unknown account, or never enrolled: "
            f"payments otp enroll --au-id {args.au_id})"
        )
    print(pyotp.TOTP(secret).now())
    return 0


def cmd_otp_unlock(args: argparse.Namespace) -> int:
    """Lift an account's OTP lock and forget its wrong codes (ops: the user has proven who they are)."""
    _prepare_environment(args.dynamodb_endpoint)
    import time

    repository = _ledger()
    guard = repository.get_otp_guard(args.au_id)
    repository.unlock_otp(args.au_id, int(time.time() * 1000))
    state = "was locked" if guard.is_locked(int(time.time() * 1000)) else "was not locked"
    print(f"au_id {args.au_id}: OTP unlocked ({state}; {len(guard.failures)} recent wrong codes forgotten)")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Replay every account's entries (payments_cli.reconcile); broken accounts on stderr (or in --json), exit 1."""
    _prepare_environment(args.dynamodb_endpoint)
    import time

    from payments.config import get_settings
    from payments.repositories.ledger_scan import LedgerScanner
    from payments_cli.reconcile import reconcile_with_progress

    started = time.monotonic()
    show = sys.stderr.isatty() and not os.environ.get("CI") and not args.json
    scanner = LedgerScanner(_scan_client(args.segments), get_settings().ledger_table)
    report = reconcile_with_progress(scanner, args.segments, show)
    if args.json:
        document = {**report.as_json(), "segments": args.segments, "seconds": round(time.monotonic() - started, 3)}
        print(json.dumps(document, indent=2))
    else:
        print(report.summary())
        for line in report.broken_lines():
            print(line, file=sys.stderr)
    return 1 if report.broken else 0


def cmd_adjust(args: argparse.Namespace) -> int:
    """Set one balance through the adjustment path (payments_cli.adjust): the entry is written with it."""
    _prepare_environment(args.dynamodb_endpoint)
    from payments.config import get_settings
    from payments.repositories.adjustments import AdjustmentConflict, AdjustmentRepository, PointTarget, WalletTarget
    from payments_cli.adjust import AdjustFailed, AdjustRefused, adjust_balance, default_actor

    if args.coin_id is not None and (args.app_id is not None or args.point_id is not None):
        raise CliError("give either --app-id and --point-id or --coin-id, not both", status=2)
    if args.coin_id is None and (args.app_id is None or args.point_id is None):
        raise CliError("give --app-id and --point-id (a point balance) or --coin-id (a wallet)", status=2)
    target = WalletTarget(args.coin_id) if args.coin_id is not None else PointTarget(args.app_id, args.point_id)
    repository = AdjustmentRepository(_client(), get_settings().ledger_table)
    try:
        line = adjust_balance(
            repository, args.au_id, target, args.quantity, args.reason, args.id, args.actor or default_actor()
        )
    except AdjustRefused as error:
        raise CliError(f"refused, nothing written: {error}", status=2) from None
    except (AdjustFailed, AdjustmentConflict) as error:
        raise CliError(str(error)) from None
    print(line)
    return 0


def cmd_migrate_otp_secrets(args: argparse.Namespace) -> int:
    """Move OTP secrets still on ledger items to the OTP secret table (payments_cli.migrate_otp_secrets)."""
    _prepare_environment(args.dynamodb_endpoint)
    from payments.config import get_settings
    from payments_cli.migrate_otp_secrets import migrate_otp_secrets

    settings = get_settings()
    report = migrate_otp_secrets(
        _client(), settings.ledger_table, settings.otp_secret_table, dry_run=args.dry_run, out=sys.stdout
    )
    print(report.summary())
    return 0 if report.complete else 1


def cmd_audit(args: argparse.Namespace) -> int:
    """The continuous auditor's checks on the ledger's stream, until Ctrl-C (payments_cli.audit_follow)."""
    _prepare_environment(args.dynamodb_endpoint)
    from payments.config import get_settings
    from payments_cli.audit_follow import run

    return run(_client(), get_settings().ledger_table, args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="payments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_endpoint(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--dynamodb-endpoint",
            metavar="URL",
            help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS)",
        )
        return sub

    serve = with_endpoint(commands.add_parser("serve", help="run the local stack (both routes over HTTP)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=3000)
    serve.add_argument("--fixture", metavar="PATH", help="load this fixture (and only it) before serving")
    serve.add_argument(
        "--cors-origin",
        metavar="URL",
        action="append",
        default=[],
        help="browser origin allowed to call the API (repeatable; default: CORS_ALLOWED_ORIGINS, "
        "comma-separated; none: CORS off)",
    )
    serve.add_argument(
        "--concurrent-dynamodb",
        action="store_true",
        help="send concurrent requests to --dynamodb-endpoint as they come (only for an endpoint that "
        "serialises conditional transactions itself, such as DynamoDB Local; moto's server does not)",
    )
    serve.set_defaults(func=cmd_serve)
    serve.description = (
        "Without --dynamodb-endpoint (or AWS_ENDPOINT_URL_DYNAMODB) an embedded, serialised "
        "DynamoDB emulator runs in-process."
    )

    with_endpoint(commands.add_parser("create-tables", help="create the template's tables if missing")).set_defaults(
        func=cmd_create_tables
    )

    load = with_endpoint(commands.add_parser("load-fixture", help="validate and load a fixture (all or nothing)"))
    load.add_argument("path", metavar="PATH")
    load.set_defaults(func=cmd_load_fixture)

    token = commands.add_parser("token", help="sign an access token (JWT_SECRET)")
    token.add_argument("--au-id", type=_positive_int, required=True)
    token.add_argument("--ttl", type=_positive_int, default=3600, help="seconds until it expires (default 3600)")
    token.add_argument("--milliseconds", action="store_true", help="write exp in milliseconds, as the issuer does")
    token.add_argument("--dynamodb-endpoint", metavar="URL", help="accepted for symmetry; not used")
    token.set_defaults(func=cmd_token)

    otp = commands.add_parser("otp", help="authenticator (TOTP) enrolment")
    otp_commands = otp.add_subparsers(dest="otp_command", required=True, metavar="OTP_COMMAND")
    enroll = with_endpoint(otp_commands.add_parser("enroll", help="new secret: otpauth:// URI and a QR code"))
    enroll.add_argument("--au-id", type=_positive_int, required=True)
    enroll.set_defaults(func=cmd_otp_enroll)
    code = with_endpoint(otp_commands.add_parser("code", help="current code of an enrolled account (development)"))
    code.add_argument("--au-id", type=_positive_int, required=True)
    code.set_defaults(func=cmd_otp_code)
    unlock = with_endpoint(otp_commands.add_parser("unlock", help="lift an account's OTP lock (ops)"))
    unlock.add_argument("--au-id", type=_positive_int, required=True)
    unlock.set_defaults(func=cmd_otp_unlock)

    reconcile = with_endpoint(
        commands.add_parser("reconcile", help="replay every account's entries (swaps, adjustments) to its balances")
    )
    reconcile.add_argument(
        "--segments", type=_segments, default=1, help="parallel scan segments, one thread each (1-64, default 1)"
    )
    reconcile.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    reconcile.set_defaults(func=cmd_reconcile)
    adjust = with_endpoint(
        commands.add_parser("adjust", help="set one balance (ops correction), written with its adjustment entry")
    )
    adjust.add_argument("--au-id", type=_positive_int, required=True)
    adjust.add_argument("--app-id", type=_positive_int, help="a point balance: its app ...")
    adjust.add_argument("--point-id", type=_positive_int, help="... and point")
    adjust.add_argument("--coin-id", type=_positive_int, help="a wallet: its coin")
    adjust.add_argument(
        "--quantity", required=True, help="the new balance: an integer for points, a decimal string for coins"
    )
    adjust.add_argument("--reason", required=True, help="why (kept in the entry)")
    adjust.add_argument(
        "--id", help="the adjustment's id: the same id again changes nothing (default: a new one, printed)"
    )
    adjust.add_argument("--actor", help="who makes it (default: the user name)")
    adjust.set_defaults(func=cmd_adjust)
    migrate = with_endpoint(
        commands.add_parser("migrate-otp-secrets", help="move OTP secrets left on ledger items to their own table")
    )
    migrate.add_argument("--dry-run", action="store_true", help="write nothing: say what would move")
    migrate.set_defaults(func=cmd_migrate_otp_secrets)
    audit = with_endpoint(commands.add_parser("audit", help="follow the ledger's stream with the auditor's checks"))
    from payments_cli.audit_follow import add_arguments as audit_arguments

    audit_arguments(audit)
    audit.set_defaults(func=cmd_audit)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (and the --help hint) instead of the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _argument(annotation: Any, refusals: dict[str, str]) -> Callable[[str], int]:
    """An argparse type from a pydantic type: `refusals` maps pydantic's error types to argparse's message."""
    adapter: TypeAdapter[int] = TypeAdapter(annotation)

    def parse(text: str) -> int:
        try:
            return adapter.validate_strings(text.strip())
        except ValidationError as error:
            kind = error.errors()[0]["type"]
            raise argparse.ArgumentTypeError(f"{refusals.get(kind, refusals['*'])}: {text!r}") from None

    return parse


_positive_int = _argument(
    Annotated[int, Field(gt=0, lt=2**63)],
    {"greater_than": "must be positive", "less_than": "too large", "*": "not an integer"},
)
_port = _argument(Annotated[int, Field(ge=0, le=65535)], {"*": "not a port number"})
_segments = _argument(Annotated[int, Field(ge=1, le=64)], {"*": "not a number of segments from 1 to 64"})


def _failure_line(error: Exception) -> str:
    """One line saying what went wrong with DynamoDB (or what else did), and what to do."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    # a repository's own error (LedgerReadFailed …) says the same as the botocore error it wraps
    while isinstance(error.__cause__, Exception) and not isinstance(error, (BotoCoreError, ClientError)):
        error = error.__cause__
    if isinstance(error, EndpointConnectionError):
        return (
            f"cannot reach DynamoDB at {error.kwargs.get('endpoint_url')}: start `payments serve` (the other "
            "commands then find it), or pass --dynamodb-endpoint URL (or set AWS_ENDPOINT_URL_DYNAMODB)"
        )
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found: for a local stack, start `payments serve` or pass --dynamodb-endpoint URL"
    if isinstance(error, NoRegionError):
        return "no AWS region set: set AWS_REGION"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            return f"DynamoDB: {message or 'table not found'} (create the tables: payments create-tables)"
        return f"DynamoDB refused the request: {code}: {message}"
    if isinstance(error, BotoCoreError):
        return f"DynamoDB: {error}"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = " ".join(part for part in (args.command, getattr(args, "otp_command", None)) if part)
    try:
        return int(args.func(args))
    except CliError as error:
        print(f"payments {command}: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - a command line never shows a traceback
        print(f"payments {command}: {_failure_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
