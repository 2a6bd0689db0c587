"""Bad input on both endpoints: schemathesis against docs/openapi.json over HTTP, then hand-picked cases.

Every answer must be a catalogued one: never a 5xx, always the endpoint's own envelope
(`{"code", "message"}` for Willson, `{"return", "message"}` for the swap) with a code of its
catalogue and that code's HTTP status.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ROOT
from functions.payment_progress import app as progress_app
from functions.swap import app as swap_app
from helpers import T0, api_event, balances, call, code_at, error, swap_body, swap_logs, token
from helpers.processes import LocalStack
from payments.errors import DASHBOARD_CATALOGUE, WILLSON_CATALOGUE
from payments.json_body import MAX_BODY_BYTES, MAX_NESTING
from seed_values import WALLET

DOC_PATH = ROOT / "docs" / "openapi.json"
PROGRESS = "/api/v1/asker/payment/progress"
SWAP = "/v1.0/db/swap"
INT64_MAX = 2**63 - 1
FUZZ_EXAMPLES = 50

WILLSON_STATUS = {entry.code: entry.status for entry in WILLSON_CATALOGUE.values()}
SWAP_STATUS = {entry.code: entry.status for entry in DASHBOARD_CATALOGUE.values()}


def willson(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message}


def refused(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return {entry.code: entry.status for entry in DASHBOARD_CATALOGUE.values()}[code], error(code, message)


W_BODY = willson(400, "invalid_parameter", "Request body must be a JSON object")
W_TOO_LARGE = willson(400, "invalid_parameter", f"Request body is larger than {MAX_BODY_BYTES} bytes")
W_TOO_DEEP = willson(400, "invalid_parameter", "Request body is nested too deeply")
W_CONCERN = willson(400, "invalid_parameter", "concern_idx must be an integer")
W_MATCH_TYPE = willson(400, "invalid_parameter", "match_type must be 1 or 2")
W_NOT_FOUND = willson(404, "not_found", "Result not found")
W_INTERNAL = willson(500, "internal_error", "Internal server error")
S_BODY = refused(32110, "Request body is invalid")
S_EVENT = refused(32100, "EventID is invalid")
S_APP = refused(32101, "AppID is invalid")
S_POINT = refused(32102, "PointID is invalid")
S_COIN = refused(32104, "CoinID is invalid")
S_ADJUST = refused(32106, "Adjust quantity is invalid")
S_OTP = refused(32107, "OTP code is invalid")
S_UNKNOWN = refused(32202, "Unknown swap error")


def assert_catalogued(path: str, status: int, body: Any) -> None:
    """The answer is the endpoint's success envelope, or a catalogued error with its own status."""
    assert status < 500, (status, body)
    assert isinstance(body, dict), body
    if path == PROGRESS:
        if status == 200:
            assert (body["code"], body["message"], set(body)) == ("success", "success", {"code", "message", "data"})
            return
        assert set(body) == {"code", "message"}, body
        assert isinstance(body["message"], str) and body["message"]
        assert WILLSON_STATUS.get(body["code"]) == status, body
    else:
        if status == 200:
            assert (body["return"], body["message"], set(body)) == (0, "success", {"return", "message", "value"})
            return
        assert set(body) == {"return", "message"}, body
        assert SWAP_STATUS.get(body["return"]) == status, body
        entry = next(entry for entry in DASHBOARD_CATALOGUE.values() if entry.code == body["return"])
        assert body["message"] == entry.message


# --- schemathesis against the committed document, through the local stack ---

SCHEMA = schemathesis.openapi.from_path(DOC_PATH)
SCHEMA_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def auth_headers(path: str) -> dict[str, str]:
    if path == PROGRESS:
        return {"x-token": token(149)}
    return {"Authorization": f"Bearer {token(19)}"}


def exact_integers(value: Any) -> Any:
    """The same JSON value with integral floats written as integers (1577.0 → 1577)."""
    if isinstance(value, dict):
        return {key: exact_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact_integers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@pytest.mark.local_stack
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("path", [PROGRESS, SWAP], ids=["progress", "swap"])
def test_schemathesis_finds_no_5xx_and_only_catalogued_answers(stack, path, mode):
    # Given the committed OpenAPI document and a caller with a valid token
    operation = SCHEMA[path]["POST"]
    strategy = operation.as_strategy(generation_mode=mode, headers=auth_headers(path))
    base_url = f"http://127.0.0.1:{stack.port}"
    answers: Counter[tuple[int, Any]] = Counter()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send(case: schemathesis.Case) -> None:
        if mode is GenerationMode.POSITIVE:
            # JSON Schema's "integer" admits 1577.0; the service (as documented) takes integers written as such
            case.body = exact_integers(case.body)
        # When schemathesis sends a generated request over HTTP
        response = case.call(base_url=base_url, timeout=30)
        body = response.json()
        # Then the answer is catalogued and conforms to the document
        assert_catalogued(path, response.status_code, body)
        if mode is GenerationMode.POSITIVE and path == PROGRESS:
            # a well-formed request is served, or its concern / willsoners are not found
            assert response.status_code in (200, 404), (case.body, body)
        case.validate_response(response, checks=SCHEMA_CHECKS)
        answers[(response.status_code, body.get("code", body.get("return")))] += 1

    send()
    assert sum(answers.values()) >= FUZZ_EXAMPLES // 2, answers
    assert all(status < 500 for status, _ in answers)


# --- hand-picked cases through handler events ---


def progress(
    raw: str | None, headers: dict[str, str] | None = None, au_id: int | None = 149, base64_body: bool = False
) -> tuple[int, Any]:
    all_headers = {"x-token": token(au_id)} if au_id is not None else {}
    all_headers.update(headers or {})
    event = api_event(PROGRESS, None, all_headers, raw=raw)
    event["isBase64Encoded"] = base64_body
    return call(progress_app.lambda_handler, event)


def swap(
    raw: str | None, headers: dict[str, str] | None = None, au_id: int | None = 19, base64_body: bool = False
) -> tuple[int, Any]:
    all_headers = {"Authorization": f"Bearer {token(au_id)}"} if au_id is not None else {}
    all_headers.update(headers or {})
    event = api_event(SWAP, None, all_headers, raw=raw)
    event["isBase64Encoded"] = base64_body
    return call(swap_app.lambda_handler, event)


def swap_raw(**replacements: str) -> str:
    """The seed's valid swap (code of T0) with some values replaced by raw JSON text."""
    body = swap_body()
    placeholders = {name: f"@@{name}@@" for name in replacements}
    for name, marker in placeholders.items():
        for part in (body, body["point"], body["coin"]):
            if name in part:
                part[name] = marker
    raw = json.dumps(body)
    for name, text in replacements.items():
        raw = raw.replace(f'"{placeholders[name]}"', text)
    return raw


def padded(prefix: str, total_bytes: int, filler: str = "x") -> str:
    """`prefix` + `"pad": "<filler...>"}` of exactly `total_bytes` UTF-8 bytes (filler of 1 or 3 bytes)."""
    head = prefix + ', "pad": "'
    room = total_bytes - len(head.encode()) - len('"}')
    width = len(filler.encode())
    text = filler * (room // width) + "x" * (room % width)
    result = head + text + '"}'
    assert len(result.encode()) == total_bytes
    return result


# body size: 16 KiB counted in UTF-8 bytes, inclusive, checked before anything else


def test_progress_body_of_exactly_16_kib_is_read_one_byte_more_is_refused(demo):
    # Given bodies of exactly MAX_BODY_BYTES and one byte more
    exact = padded('{"concern_idx": 1577', MAX_BODY_BYTES)
    over = padded('{"concern_idx": 1577', MAX_BODY_BYTES + 1)
    # When they are sent, then the first is served and the second refused
    assert progress(exact)[0] == 200
    assert progress(over) == W_TOO_LARGE
    # bytes, not characters: 3-byte Hangul over the limit in far fewer characters
    hangul = padded('{"concern_idx": 1577', MAX_BODY_BYTES + 2, filler="가")
    assert len(hangul) < MAX_BODY_BYTES
    assert progress(hangul) == W_TOO_LARGE
    # the size is judged before the token
    assert progress(over, au_id=None) == W_TOO_LARGE


def test_swap_body_of_exactly_16_kib_is_served_one_byte_more_is_refused(ledger):
    prefix = swap_raw()[:-1]
    assert swap(padded(prefix, MAX_BODY_BYTES + 1)) == S_BODY
    assert swap(padded(prefix, MAX_BODY_BYTES + 1), au_id=None) == S_BODY
    status, body = swap(padded(prefix, MAX_BODY_BYTES))
    assert status == 200
    assert body["value"]["log_id"] == 1


# nesting: at most MAX_NESTING levels, the top object counted


def nested(levels: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    inner = "[]" if opener == "[" else "{}"
    value = inner if levels == 1 else opener + ('"k": ' if opener == "{" else "") + nested(levels - 1, opener) + closer
    return value


def test_nesting_up_to_the_limit_is_read_deeper_is_refused(demo):
    # the top object is level 1, so MAX_NESTING - 1 more levels fit
    assert progress(f'{{"concern_idx": 1577, "x": {nested(MAX_NESTING - 1)}}}')[0] == 200
    assert progress(f'{{"concern_idx": 1577, "x": {nested(MAX_NESTING - 1, "{")}}}')[0] == 200
    assert progress(f'{{"concern_idx": 1577, "x": {nested(MAX_NESTING)}}}') == W_TOO_DEEP
    assert progress(f'{{"concern_idx": 1577, "x": {nested(MAX_NESTING, "{")}}}') == W_TOO_DEEP
    # thousands of levels are refused without recursion trouble
    deep = '{"concern_idx": 1577, "x": ' + "[" * 7000 + "]" * 7000 + "}"
    assert len(deep) < MAX_BODY_BYTES
    assert progress(deep) == W_TOO_DEEP
    # unbalanced brackets are not JSON at all
    assert progress('{"concern_idx": 1577, "x": ' + "[" * 7000 + "}") in (W_TOO_DEEP, W_BODY)
    # brackets inside strings are text, not nesting
    assert progress('{"concern_idx": 1577, "x": "' + "[{" * 100 + '"}')[0] == 200


def test_swap_nesting(ledger):
    assert swap(swap_raw()[:-1] + f', "x": {nested(MAX_NESTING)}}}') == S_BODY
    assert swap("[" * 7000 + "]" * 7000, au_id=None) == S_BODY
    assert swap(swap_raw()[:-1] + f', "x": {nested(MAX_NESTING - 1)}}}')[0] == 200


# duplicate keys, anywhere in the object

DUPLICATE_KEYS = [
    '{"concern_idx": 1577, "concern_idx": 1578}',
    '{"concern_idx": 1577, "concern_idx": 1577}',
    '{"concern_idx": 1577, "match_type": 1, "match_type": 2}',
    '{"concern_idx": 1577, "x": {"a": 1, "a": 1}}',
    '{"concern_idx": 1577, "x": [{"a": 1, "a": 2}]}',
]


def test_progress_duplicate_keys(demo, subtests):
    for raw in DUPLICATE_KEYS:
        with subtests.test(raw=raw):
            assert progress(raw) == W_BODY


def test_swap_duplicate_keys(ledger):
    raw = swap_raw()
    assert swap(raw.replace('"event_id": 3', '"event_id": 3, "event_id": 3')) == S_BODY
    assert swap(raw.replace('"app_id": 1', '"app_id": 1, "app_id": 1')) == S_BODY
    assert swap(raw.replace('"coin_id": 2', '"coin_id": 2, "coin_id": 3')) == S_BODY
    assert swap_logs(ledger) == []


# Content-Type is not read: the body is parsed whatever it says

CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
]


def test_content_type_is_ignored(ledger, subtests):
    for content_type in CONTENT_TYPES:
        with subtests.test(content_type=content_type):
            headers = {"Content-Type": content_type}
            assert progress('{"concern_idx": 1577}', headers=headers)[0] == 200
            assert swap(swap_raw(adjust_point_quantity="-50", adjust_coin_quantity="50"), headers=headers) == S_ADJUST
            # a form-encoded body is not JSON
            assert progress("concern_idx=1577", headers=headers) == W_BODY
            assert swap("event_id=3&otp_code=123456", headers=headers) == S_BODY


# numbers: NaN, Infinity, huge exponents, -0, int64 overflow, fractions


def test_non_finite_numbers_are_not_json(ledger, subtests):
    for literal in ("NaN", "Infinity", "-Infinity", "nan", "inf"):
        with subtests.test(literal=literal):
            assert progress(f'{{"concern_idx": {literal}}}') == W_BODY
            assert progress(f'{{"concern_idx": 1577, "match_type": {literal}}}') == W_BODY
            assert swap(swap_raw(adjust_coin_quantity=literal)) == S_BODY
            assert swap(swap_raw(adjust_point_quantity=literal)) == S_BODY
            assert swap(swap_raw(event_id=literal), au_id=None) == S_BODY


PROGRESS_NUMBERS = [
    ('{"concern_idx": 1e400}', W_CONCERN),
    ('{"concern_idx": -1e400}', W_CONCERN),
    ('{"concern_idx": 1e-400}', W_CONCERN),
    ('{"concern_idx": 1577.0}', W_CONCERN),
    ('{"concern_idx": 1.577e3}', W_CONCERN),
    ('{"concern_idx": 1577e0}', W_CONCERN),
    ('{"concern_idx": 9223372036854775808}', W_CONCERN),
    ('{"concern_idx": -9223372036854775808}', W_NOT_FOUND),
    ('{"concern_idx": 123456789012345678901234567890}', W_CONCERN),
    ('{"concern_idx": 9223372036854775807}', W_NOT_FOUND),
    ('{"concern_idx": -0}', W_NOT_FOUND),
    ('{"concern_idx": 0}', W_NOT_FOUND),
    ('{"concern_idx": -0.0}', W_CONCERN),
    ('{"concern_idx": 1577, "match_type": 1e400}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "match_type": 1.0}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "match_type": -0}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "match_type": 18446744073709551617}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "x": 1e400, "y": -0.0}', (200, "success")),
]


def test_progress_numbers(demo, subtests):
    for raw, expected in PROGRESS_NUMBERS:
        with subtests.test(raw=raw):
            status, body = progress(raw)
            assert ((status, body["code"]) if expected[1] == "success" else (status, body)) == expected


SWAP_NUMBERS = [
    ({"adjust_coin_quantity": "1e400"}, S_ADJUST),
    ({"adjust_coin_quantity": "-1e400"}, S_ADJUST),
    ({"adjust_coin_quantity": "1e-400"}, S_ADJUST),
    ({"adjust_coin_quantity": "1E18"}, S_ADJUST),
    ({"adjust_coin_quantity": "-0"}, S_ADJUST),
    ({"adjust_coin_quantity": "-0.0"}, S_ADJUST),
    ({"adjust_point_quantity": "-0"}, S_ADJUST),
    ({"adjust_point_quantity": "1e400"}, S_ADJUST),
    ({"adjust_point_quantity": "-110.0"}, S_ADJUST),
    ({"adjust_point_quantity": "-1.1e2"}, S_ADJUST),
    ({"adjust_point_quantity": str(-(2**63))}, S_ADJUST),
    ({"adjust_point_quantity": str(2**63)}, S_ADJUST),
    ({"adjust_point_quantity": str(-(2**64))}, S_ADJUST),
    ({"event_id": str(2**63 + 3)}, S_EVENT),
    ({"event_id": "3.0"}, S_EVENT),
    ({"event_id": "-0"}, S_EVENT),
    ({"event_id": "1e400"}, S_EVENT),
    ({"app_id": str(2**63)}, S_APP),
    ({"app_id": "1.0"}, S_APP),
    ({"app_id": "-0"}, S_APP),
    ({"point_id": str(2**63 + 1)}, S_POINT),
    ({"point_id": "1e0"}, S_POINT),
    ({"coin_id": str(2**64 + 2)}, S_COIN),
    ({"coin_id": "2.0"}, S_COIN),
]


def test_swap_numbers(ledger, subtests):
    for replacements, expected in SWAP_NUMBERS:
        with subtests.test(**replacements):
            assert swap(swap_raw(**replacements)) == expected
    assert swap_logs(ledger) == []


def test_swap_exact_decimal_survives_spelling(ledger):
    # 11 coins written as 1.1e1 and 11.000: the same exact amount, answered as 11
    status, body = swap(swap_raw(adjust_coin_quantity="1.1e1"))
    assert status == 200
    assert body["value"]["coin"] == {
        "coin_id": 2,
        "walletaddress": WALLET,
        "previous_coin_quantity": 0,
        "adjust_coin_quantity": 11,
        "coin_quantity": 11,
    }
    assert balances(ledger) == (1990, Decimal("11"))


# booleans and strings where integers or numbers are expected

PROGRESS_WRONG_TYPES = [
    ('{"concern_idx": true}', W_CONCERN),
    ('{"concern_idx": false}', W_CONCERN),
    ('{"concern_idx": "1577"}', W_CONCERN),
    ('{"concern_idx": " 1577"}', W_CONCERN),
    ('{"concern_idx": "0x62b"}', W_CONCERN),
    ('{"concern_idx": null}', W_CONCERN),
    ('{"concern_idx": [1577]}', W_CONCERN),
    ('{"concern_idx": {"idx": 1577}}', W_CONCERN),
    ('{"concern_idx": 1577, "match_type": true}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "match_type": "1"}', W_MATCH_TYPE),
    ('{"concern_idx": 1577, "match_type": [1]}', W_MATCH_TYPE),
    ("{}", willson(400, "invalid_parameter", "concern_idx is required")),
    ('{"match_type": 1}', willson(400, "invalid_parameter", "concern_idx is required")),
]


def test_progress_wrong_types(demo, subtests):
    for raw, expected in PROGRESS_WRONG_TYPES:
        with subtests.test(raw=raw):
            assert progress(raw) == expected


SWAP_WRONG_TYPES = [
    ("event_id", "true", S_EVENT),
    ("event_id", '"3"', S_EVENT),
    ("event_id", "null", S_EVENT),
    ("app_id", "true", S_APP),
    ("app_id", '"1"', S_APP),
    ("app_id", "[1]", S_APP),
    ("point_id", "false", S_POINT),
    ("point_id", '"1"', S_POINT),
    ("point_id", "{}", S_POINT),
    ("coin_id", "true", S_COIN),
    ("coin_id", '"2"', S_COIN),
    ("adjust_point_quantity", "true", S_ADJUST),
    ("adjust_point_quantity", '"-110"', S_ADJUST),
    ("adjust_point_quantity", "null", S_ADJUST),
    ("adjust_coin_quantity", "false", S_ADJUST),
    ("adjust_coin_quantity", '"11"', S_ADJUST),
    ("adjust_coin_quantity", '"1.1e1"', S_ADJUST),
    ("adjust_coin_quantity", "[11]", S_ADJUST),
    # three OTP failures: fewer than the five that lock the account
    ("otp_code", "true", S_OTP),
    ("otp_code", "123456", S_OTP),
    ("otp_code", "null", S_OTP),
]


def test_swap_wrong_types(ledger, subtests):
    for field, literal, expected in SWAP_WRONG_TYPES:
        with subtests.test(field=field, literal=literal):
            assert swap(swap_raw(**{field: literal})) == expected
    assert swap_logs(ledger) == []


def test_swap_sections_of_the_wrong_type(ledger):
    raw = swap_raw()
    assert swap(raw.replace('"point": {', '"point": [{').replace('}, "coin"', '}], "coin"')) == S_APP
    body = swap_body()
    body["coin"] = "2"
    assert swap(json.dumps(body)) == S_COIN


# unicode and control characters


def test_unicode_and_escaped_control_characters_in_ignored_fields_are_harmless(ledger):
    memo = '"한국어 😀 \\u0000\\u001f\\u007f\\u202e\\u2028\\ufeff"'
    assert progress(f'{{"concern_idx": 1577, "memo": {memo}, "메모": 1}}')[0] == 200
    status, body = swap(swap_raw()[:-1] + f', "memo": {memo}, "메모": 1}}')
    assert status == 200
    assert body["value"]["log_id"] == 1


def test_raw_control_characters_inside_strings_are_not_json(ledger):
    assert progress('{"concern_idx": 1577, "memo": "a\x00b"}') == W_BODY
    assert progress('{"concern_idx": 1577, "memo": "line\nbreak"}') == W_BODY
    assert swap(swap_raw(otp_code='"12345\x01"')) == S_BODY


@pytest.mark.parametrize(
    "code",
    [
        "１２３４５６",  # full-width digits of the right code are not accepted
        "١٢٣٤٥٦",  # Arabic-Indic digits
        "RIGHT\n",  # the right code and a newline
        " RIGHT",  # the right code after a space
        "RIGHT\u0000",  # the right code and NUL
        "RIGHT\u200b",  # the right code and a zero-width space
    ],
)
def test_otp_codes_with_unicode_lookalikes_are_invalid(ledger, code):
    right = code_at(T0)
    if code == "１２３４５６":
        code = "".join(chr(ord(digit) + 0xFEE0) for digit in right)
    elif code == "١٢٣٤٥٦":
        code = "".join(chr(ord(digit) - ord("0") + 0x0660) for digit in right)
    else:
        code = code.replace("RIGHT", right)
    assert swap(swap_raw(otp_code=json.dumps(code))) == S_OTP
    assert swap_logs(ledger) == []


# not a JSON object: empty, arrays, scalars, invalid UTF-8

NOT_OBJECTS = [
    None,
    "",
    " ",
    "\n\t",
    "[]",
    '[{"concern_idx": 1577}]',
    '"{}"',
    "1577",
    "null",
    "true",
    "{",
    '{"concern_idx": 1577',
    '{"concern_idx": 1577} {}',
    "{'concern_idx': 1577}",
    '\ufeff{"concern_idx": 1577}',
    '{"concern_idx": 1577,}',
    "{concern_idx: 1577}",
]


def test_not_a_json_object(ledger, subtests):
    for raw in NOT_OBJECTS:
        with subtests.test(raw=raw):
            # refused as a body, before the token is looked at
            assert progress(raw) == W_BODY
            assert progress(raw, au_id=None) == W_BODY
            assert swap(raw) == S_BODY
            assert swap(raw, au_id=None) == S_BODY


INVALID_UTF8 = [
    b'{"concern_idx": 1577, "memo": "\xff\xfe"}',
    b"\xc3\x28",
    b'{"a": "\xed\xa0\x80"}',
    b"\x80" * 10,
    '{"concern_idx": 1577}'.encode("utf-16"),
]


def test_invalid_utf8_bytes_through_base64_events(ledger, subtests):
    for payload in INVALID_UTF8:
        with subtests.test(payload=payload):
            encoded = base64.b64encode(payload).decode("ascii")
            assert progress(encoded, base64_body=True) == W_BODY
            assert swap(encoded, base64_body=True) == S_BODY


def test_base64_flag_with_text_that_is_not_base64(ledger):
    assert progress("{not base64!}", base64_body=True) == W_BODY
    assert swap("{not base64!}", base64_body=True) == S_BODY


def test_valid_utf8_through_a_base64_event_is_read(ledger):
    encoded = base64.b64encode('{"concern_idx": 1577, "memo": "가"}'.encode()).decode("ascii")
    assert progress(encoded, base64_body=True)[0] == 200


# --- numbers beyond Decimal's range and lone surrogates (once 500s, now catalogued 4xx) ---


def test_exponent_beyond_what_decimal_can_hold_is_an_invalid_body(ledger):
    assert progress('{"concern_idx": 1e99999999999999999999}') == W_BODY
    assert swap(swap_raw(adjust_coin_quantity="1e99999999999999999999")) == S_BODY


def test_swap_exponent_beyond_emax_is_an_adjust_error(ledger):
    assert swap(swap_raw(adjust_coin_quantity="1e999999999")) == S_ADJUST
    assert swap(swap_raw(event_id="1e999999999"))[1]["return"] == 32100
    assert swap_logs(ledger) == []


def test_swap_lone_surrogates_are_judged_not_crashed(ledger):
    assert swap(swap_raw(otp_code='"\\ud800"')) == S_OTP
    status, _ = swap(swap_raw()[:-1] + ', "\\udfff": 1}')
    assert status < 500


# --- the same over real HTTP, through the local stack ---


def post_bytes(stack: LocalStack, path: str, payload: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.local_stack
def test_over_http_bad_bytes_sizes_and_content_types(stack):
    progress_auth = {"x-token": token(149)}
    swap_auth = {"Authorization": f"Bearer {token(19)}"}
    off_rate = swap_raw(adjust_point_quantity="-50", adjust_coin_quantity="50").encode()
    # invalid UTF-8 bytes
    assert post_bytes(stack, PROGRESS, b'{"concern_idx": 1577, "m": "\xff"}', progress_auth) == W_BODY
    assert post_bytes(stack, SWAP, b'{"event_id": 3, "m": "\xc3\x28"}', swap_auth) == S_BODY
    # no body at all
    assert post_bytes(stack, PROGRESS, b"", progress_auth) == W_BODY
    assert post_bytes(stack, SWAP, b"", swap_auth) == S_BODY
    # over the limit (but far under API Gateway's own)
    big = padded('{"concern_idx": 1577', MAX_BODY_BYTES + 1).encode()
    assert post_bytes(stack, PROGRESS, big, progress_auth) == W_TOO_LARGE
    assert post_bytes(stack, SWAP, padded(off_rate.decode()[:-1], MAX_BODY_BYTES + 1).encode(), swap_auth) == S_BODY
    # Content-Type is not read
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        extra = {"Content-Type": content_type} if content_type else {}
        status, body = post_bytes(stack, PROGRESS, b'{"concern_idx": 1577}', {**progress_auth, **extra})
        assert (status, body["code"]) == (200, "success")
        assert post_bytes(stack, SWAP, off_rate, {**swap_auth, **extra}) == S_ADJUST
    # a JSON array, deeply nested JSON
    assert post_bytes(stack, PROGRESS, b'[{"concern_idx": 1577}]', progress_auth) == W_BODY
    assert post_bytes(stack, SWAP, b"[" * 5000 + b"]" * 5000, swap_auth) == S_BODY
