"""Entry point of the `payments` console script."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEMO_FIXTURE = Path(__file__).with_name("demo_fixture.json")
DEFAULT_REGION = "us-east-1"
TOKEN_TTL_SECONDS = 24 * 3600


def _prepare_environment(endpoint: str | None) -> None:
    """Local defaults, set before any handler or client is created."""
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", DEFAULT_REGION))
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    if endpoint:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint


def _client() -> Any:
    from payments.aws import dynamodb_client

    return dynamodb_client()


def _load_fixture_file(path: Path) -> dict[str, int]:
    from payments.config import get_settings
    from payments_cli.fixture_loader import load_fixture, parse_fixture_text

    settings = get_settings()
    fixture = parse_fixture_text(path.read_text(encoding="utf-8"))
    return load_fixture(_client(), fixture, settings.willson_table, settings.ledger_table, settings.otp_secret_table)


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

    endpoint = args.dynamodb_endpoint or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
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
        counts = _load_fixture_file(fixture)
        print(f"Loaded {fixture}: " + ", ".join(f"{name} {count}" for name, count in counts.items() if count))
    template = load_template()
    pools = {(route.method, route.path): FunctionPool(route) for route in routes(template)}
    from payments_cli.openapi_page import extra_pages

    server = LocalApiServer((args.host, args.port), pools, extra_pages())
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
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
    print(f"Local stack listening on {url}")
    print(f"Demo token (au_id {asker}): {willson_token}")
    if dashboard != asker:
        print(f"Demo token (au_id {dashboard}): {dashboard_token}")
    print("Try:")
    print(f"  curl -s -X POST {url}/api/v1/asker/payment/progress -H 'Content-Type: application/json' "
          f"-H 'x-token: {willson_token}' -d '{{\"concern_idx\": {concern}}}'")
    print(f"  curl -s -X POST {url}/v1.0/db/swap -H 'Content-Type: application/json' "
          f"-H 'Authorization: Bearer {dashboard_token}' -d '{{\"event_id\": 3, \"otp_code\": \"<code from: payments otp code --au-id {dashboard}>\", "
          f"\"point\": {{\"app_id\": 1, \"point_id\": 1, \"adjust_point_quantity\": -110}}, "
          f"\"coin\": {{\"coin_id\": 2, \"adjust_coin_quantity\": 11}}}}'")
    print(f"  OpenAPI: {url}/docs", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if emulator:
            emulator.stop()
    return 0


def cmd_create_tables(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    from payments_cli.tables import create_tables

    created = create_tables(_client())
    print("Created: " + (", ".join(created) if created else "nothing (all tables exist)"))
    return 0


def cmd_load_fixture(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    from payments_cli.fixture_loader import FixtureError

    try:
        counts = _load_fixture_file(Path(args.path))
    except FixtureError as error:
        print(f"Fixture refused, nothing written: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"Cannot read {args.path}: {error}", file=sys.stderr)
        return 2
    print("Loaded: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    _prepare_environment(None)
    from payments.auth import issue_access_token
    from payments.config import get_settings

    print(issue_access_token(args.au_id, get_settings().jwt_secret, args.ttl, milliseconds=args.milliseconds))
    return 0


def cmd_otp_enroll(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    import io

    import pyotp
    import qrcode

    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository

    secret = pyotp.random_base32()
    LedgerRepository(_client(), get_settings().ledger_table, get_settings().otp_secret_table).enroll_otp(args.au_id, secret)
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

    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository

    settings = get_settings()
    secret = LedgerRepository(_client(), settings.ledger_table, settings.otp_secret_table).get_otp_secret(args.au_id)
    if not secret:
        print(f"au_id {args.au_id} has no OTP enrolled", file=sys.stderr)
        return 1
    print(pyotp.TOTP(secret).now())
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    _prepare_environment(args.dynamodb_endpoint)
    from payments.config import get_settings
    from payments.repositories.ledger import LedgerRepository
    from payments_cli.reconcile import reconcile

    settings = get_settings()
    report = reconcile(LedgerRepository(_client(), settings.ledger_table, settings.otp_secret_table).iter_ledger_items())
    print(report.summary())
    for line in report.problems:
        print(f"BROKEN {line}")
    return 1 if report.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_endpoint(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--dynamodb-endpoint", metavar="URL",
                         help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS)")
        return sub

    serve = with_endpoint(commands.add_parser("serve", help="run the local stack (both routes over HTTP)"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--fixture", metavar="PATH", help="load this fixture (and only it) before serving")
    serve.add_argument("--concurrent-dynamodb", action="store_true",
                       help="send concurrent requests to --dynamodb-endpoint as they come (only for an endpoint that "
                            "serialises conditional transactions itself, such as DynamoDB Local; moto's server does not)")
    serve.set_defaults(func=cmd_serve)
    serve.description = ("Without --dynamodb-endpoint (or AWS_ENDPOINT_URL_DYNAMODB) an embedded, serialised "
                         "DynamoDB emulator runs in-process.")

    with_endpoint(commands.add_parser("create-tables", help="create the template's tables if missing")).set_defaults(
        func=cmd_create_tables)

    load = with_endpoint(commands.add_parser("load-fixture", help="validate and load a fixture (all or nothing)"))
    load.add_argument("path", metavar="PATH")
    load.set_defaults(func=cmd_load_fixture)

    token = commands.add_parser("token", help="sign an access token (JWT_SECRET)")
    token.add_argument("--au-id", type=int, required=True)
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    token.add_argument("--milliseconds", action="store_true", help="write exp in milliseconds, as the issuer does")
    token.add_argument("--dynamodb-endpoint", metavar="URL", help="accepted for symmetry; not used")
    token.set_defaults(func=cmd_token)

    otp = commands.add_parser("otp", help="authenticator (TOTP) enrolment")
    otp_commands = otp.add_subparsers(dest="otp_command", required=True, metavar="OTP_COMMAND")
    enroll = with_endpoint(otp_commands.add_parser("enroll", help="new secret: otpauth:// URI and a QR code"))
    enroll.add_argument("--au-id", type=int, required=True)
    enroll.set_defaults(func=cmd_otp_enroll)
    code = with_endpoint(otp_commands.add_parser("code", help="current code of an enrolled account (development)"))
    code.add_argument("--au-id", type=int, required=True)
    code.set_defaults(func=cmd_otp_code)

    reconcile = with_endpoint(commands.add_parser("reconcile", help="check every account's swap log chain"))
    reconcile.set_defaults(func=cmd_reconcile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
