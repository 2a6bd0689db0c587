"""Attacks on authentication, through handler events on both endpoints, and OTP attacks on the swap.

Tokens are forged with PyJWT (and by hand where PyJWT refuses to forge), against a frozen clock:
the signature is checked first, with HS256 pinned; then `au_id` and `exp`; then expiry.
One code sent by 16 requests at once, over HTTP, is test_swap_concurrency's first test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import payments.auth
from conftest import demo_fixture, load
from functions.payment_progress import app as progress_app
from functions.swap import app as swap_app
from helpers import DEMO_SECRET, SECRET, T0, api_event, balances, call, code_at, error, swap_body, swap_logs, token

# HS384/HS512 with the 34-byte development secret are forged on purpose
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

NOW = T0  # the frozen "now" of token checks, and the swap's clock
PROGRESS = "/api/v1/asker/payment/progress"
SWAP = "/v1.0/db/swap"
ASKER, DASHBOARD = 149, 19

W_INVALID = (401, {"code": "invalid_token", "message": "Access token is invalid"})
W_EXPIRED = (401, {"code": "access_token_expired", "message": "Access token expired"})
S_INVALID = (401, error(30001, "Access token is invalid"))
S_EXPIRED = (401, error(30002, "Access token expired"))
# What a request with an accepted token gets: Willson serves the page; the swap body below is judged
# after the token (and refused at the rate check, so no OTP step is spent).
OFF_RATE_SWAP = swap_body(adjust_point=-50, adjust_coin=50)
S_PAST_AUTH = (400, error(32106, "Adjust quantity is invalid"))


# --- forging ---


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge(header: dict[str, Any], claims: Any, hmac_key: bytes | None = None, signature: str | None = None) -> str:
    """A compact JWS with any header: HMAC-SHA256 signed with `hmac_key`, or the given signature."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    if signature is None:
        signature = (
            "" if hmac_key is None else b64url(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest())
        )
    return f"{signing_input}.{signature}"


def claims(au_id: Any = ASKER, exp: Any = NOW + 60, **extra: Any) -> dict[str, Any]:
    return {"au_id": au_id, "exp": exp, **extra}


def signed(payload: dict[str, Any], algorithm: str = "HS256", key: Any = SECRET, headers: dict | None = None) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key != name}


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
HS256 = {"alg": "HS256", "typ": "JWT"}


def tampered(original: str, new_claims: dict[str, Any]) -> str:
    header, _, signature = original.split(".")
    return f"{header}.{segment(new_claims)}.{signature}"


def other_signature(payload: dict[str, Any]) -> str:
    head, body, _ = signed(payload).split(".")
    foreign = signed(payload, key="not-the-server-secret-but-long-enough-for-hs256").split(".")[2]
    return f"{head}.{body}.{foreign}"


# --- sending ---


@pytest.fixture
def frozen(monkeypatch):
    """Token checks and the swap see the same fixed instant."""
    monkeypatch.setattr(payments.auth, "time", SimpleNamespace(time=lambda: NOW))
    monkeypatch.setattr(swap_app, "clock", lambda: NOW)


@pytest.fixture
def stack_db(demo, frozen):
    return demo


def send_progress(value: str | None, header: str = "x-token") -> tuple[int, Any]:
    headers = {header: value} if value is not None else {}
    return call(progress_app.lambda_handler, api_event(PROGRESS, {"concern_idx": 1577}, headers))


def send_swap(
    value: str | None, header: str = "Authorization", scheme: str = "Bearer ", body: Any = None
) -> tuple[int, Any]:
    headers = {header: f"{scheme}{value}"} if value is not None else {}
    return call(swap_app.lambda_handler, api_event(SWAP, OFF_RATE_SWAP if body is None else body, headers))


ENDPOINTS: dict[str, tuple[Callable[[str | None], tuple[int, Any]], int, dict[str, tuple[int, Any]]]] = {
    "willson": (send_progress, ASKER, {"invalid": W_INVALID, "expired": W_EXPIRED}),
    "swap": (send_swap, DASHBOARD, {"invalid": S_INVALID, "expired": S_EXPIRED}),
}


def accepted(endpoint: str, answer: tuple[int, Any]) -> bool:
    if endpoint == "willson":
        return answer[0] == 200 and answer[1]["code"] == "success"
    return answer == S_PAST_AUTH


# Each attack: a token for the endpoint's user (au_id), and what it must get.
ATTACKS: dict[str, tuple[Callable[[int], str], str]] = {
    # control: a well-formed token is accepted
    "valid": (lambda au: signed(claims(au)), "accepted"),
    # alg none, in every spelling, with or without a signature
    "alg none (PyJWT)": (lambda au: jwt.encode(claims(au), None, algorithm="none"), "invalid"),
    "alg None": (lambda au: forge({"alg": "None", "typ": "JWT"}, claims(au)), "invalid"),
    "alg NONE": (lambda au: forge({"alg": "NONE"}, claims(au)), "invalid"),
    "alg nOnE": (lambda au: forge({"alg": "nOnE"}, claims(au)), "invalid"),
    "alg none, real signature kept": (
        lambda au: forge({"alg": "none"}, claims(au), signature=signed(claims(au)).split(".")[2]),
        "invalid",
    ),
    "no alg at all": (lambda au: forge({"typ": "JWT"}, claims(au), hmac_key=SECRET.encode()), "invalid"),
    # HS/RS confusion
    "alg RS256 header, HMAC-signed with the server secret": (
        lambda au: forge({"alg": "RS256", "typ": "JWT"}, claims(au), hmac_key=SECRET.encode()),
        "invalid",
    ),
    "HS256 signed with an RSA public key PEM as the secret": (
        lambda au: forge(HS256, claims(au), hmac_key=RSA_PUBLIC_PEM),
        "invalid",
    ),
    "RS256 properly signed with an RSA key": (lambda au: signed(claims(au), "RS256", RSA_KEY), "invalid"),
    "RS256 with the attacker's key embedded as jwk": (
        lambda au: signed(
            claims(au),
            "RS256",
            RSA_KEY,
            headers={"jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))},
        ),
        "invalid",
    ),
    "HS384 with the server secret": (lambda au: signed(claims(au), "HS384"), "invalid"),
    "HS512 with the server secret": (lambda au: signed(claims(au), "HS512"), "invalid"),
    # tampering and signatures
    "payload re-encoded for another user, original signature": (
        lambda au: tampered(signed(claims(au + 1)), claims(au)),
        "invalid",
    ),
    "payload with a later exp, original signature": (
        lambda au: tampered(signed(claims(au, exp=NOW - 10)), claims(au, exp=NOW + 3600)),
        "invalid",
    ),
    "signature of another secret": (lambda au: other_signature(claims(au)), "invalid"),
    "signature stripped": (lambda au: signed(claims(au)).rsplit(".", 1)[0] + ".", "invalid"),
    "signature of the empty secret": (lambda au: forge(HS256, claims(au), hmac_key=b""), "invalid"),
    # claims
    "missing exp": (lambda au: signed(without(claims(au), "exp")), "invalid"),
    "missing au_id": (lambda au: signed(without(claims(au), "au_id")), "invalid"),
    "au_id as a string": (lambda au: signed(claims(str(au))), "invalid"),
    "au_id true": (lambda au: signed(claims(True)), "invalid"),
    "au_id as a float": (lambda au: signed(claims(float(au))), "invalid"),
    "au_id null": (lambda au: signed(claims(None)), "invalid"),
    "au_id 0": (lambda au: signed(claims(0)), "invalid"),
    "au_id negative": (lambda au: signed(claims(-au)), "invalid"),
    "au_id beyond int64": (lambda au: signed(claims(2**63 + au)), "invalid"),
    "au_id as a list": (lambda au: signed(claims([au])), "invalid"),
    "exp as a string": (lambda au: signed(claims(au, exp=str(int(NOW + 60)))), "invalid"),
    "exp true": (lambda au: signed(claims(au, exp=True)), "invalid"),
    "exp null": (lambda au: signed(claims(au, exp=None)), "invalid"),
    "claims not an object": (lambda au: forge(HS256, [au, NOW + 60], hmac_key=SECRET.encode()), "invalid"),
    # expiry, seconds
    "expired by one second": (lambda au: signed(claims(au, exp=NOW - 1)), "expired"),
    "exp exactly now": (lambda au: signed(claims(au, exp=NOW)), "expired"),
    "exp half a second ago": (lambda au: signed(claims(au, exp=NOW - 0.5)), "expired"),
    "exp in one second": (lambda au: signed(claims(au, exp=NOW + 1)), "accepted"),
    "exp in half a second": (lambda au: signed(claims(au, exp=NOW + 0.5)), "accepted"),
    # expiry, milliseconds (the issuer's unit)
    "exp in milliseconds, 1 s before now": (lambda au: signed(claims(au, exp=int((NOW - 1) * 1000))), "expired"),
    "exp in milliseconds, 1 s after now": (lambda au: signed(claims(au, exp=int((NOW + 1) * 1000))), "accepted"),
    "exp in milliseconds, exactly now": (lambda au: signed(claims(au, exp=int(NOW * 1000))), "expired"),
    "exp 10^11 is seconds (year 5138)": (lambda au: signed(claims(au, exp=10**11)), "accepted"),
    "exp 10^11 + 1 is milliseconds (1973)": (lambda au: signed(claims(au, exp=10**11 + 1)), "expired"),
    # signature before expiry
    "expired with a bad signature": (lambda au: other_signature(claims(au, exp=NOW - 1)), "invalid"),
    "expired (ms) with a bad signature": (lambda au: other_signature(claims(au, exp=int((NOW - 1) * 1000))), "invalid"),
    "expired alg none": (lambda au: jwt.encode(claims(au, exp=NOW - 1), None, algorithm="none"), "invalid"),
    "expired, tampered": (lambda au: tampered(signed(claims(au + 1, exp=NOW - 1)), claims(au, exp=NOW - 1)), "invalid"),
    "expired, au_id a string": (lambda au: signed(claims(str(au), exp=NOW - 1)), "invalid"),
    # not a JWT at all
    "empty": (lambda au: "", "invalid"),
    "one segment": (lambda au: "abc", "invalid"),
    "two segments": (lambda au: signed(claims(au)).rsplit(".", 1)[0], "invalid"),
    "four segments": (lambda au: signed(claims(au)) + ".x", "invalid"),
    "three dots": (lambda au: "...", "invalid"),
    "header not base64": (lambda au: "!!!." + signed(claims(au)).split(".", 1)[1], "invalid"),
    "header not JSON": (lambda au: b64url(b"alg") + "." + signed(claims(au)).split(".", 1)[1], "invalid"),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_token_attacks(stack_db, endpoint, subtests):
    # (one database per endpoint: none of these requests writes anything but idempotency bookkeeping)
    send, au_id, refusals = ENDPOINTS[endpoint]
    for attack, (make, outcome) in ATTACKS.items():
        with subtests.test(attack=attack):
            # Given a token crafted for the attack
            forged = make(au_id)
            # When it is presented the way the endpoint expects
            answer = send(forged)
            # Then it is accepted only when it must be, and refused with the exact catalogued answer otherwise
            if outcome == "accepted":
                assert accepted(endpoint, answer), answer
            else:
                assert answer == refusals[outcome]


def test_no_token_at_all(stack_db):
    assert send_progress(None) == W_INVALID
    assert send_swap(None) == S_INVALID


def test_token_in_the_other_endpoints_header_is_not_read(stack_db):
    # Given valid tokens, each sent in the header of the other API
    assert send_progress(f"Bearer {token(ASKER)}", header="Authorization") == W_INVALID
    assert send_swap(token(DASHBOARD), header="x-token", scheme="") == S_INVALID
    # and the Willson token header given a Bearer prefix
    assert send_progress(f"Bearer {token(ASKER)}") == W_INVALID


@pytest.mark.parametrize(
    "scheme, outcome",
    [
        ("Bearer ", "accepted"),
        ("bearer ", "accepted"),
        ("BEARER ", "accepted"),
        ("Bearer  ", "accepted"),
        ("Basic ", "invalid"),
        ("Token ", "invalid"),
        ("Bearer", "invalid"),
        ("", "invalid"),
        ("JWT ", "invalid"),
    ],
)
def test_bearer_scheme(stack_db, scheme, outcome):
    answer = send_swap(token(DASHBOARD), scheme=scheme)
    assert answer == (S_PAST_AUTH if outcome == "accepted" else S_INVALID)


def test_header_names_are_case_insensitive(stack_db):
    assert send_progress(token(ASKER), header="X-Token")[0] == 200
    assert send_progress(token(ASKER), header="X-TOKEN")[0] == 200
    assert send_swap(token(DASHBOARD), header="AUTHORIZATION") == S_PAST_AUTH


def test_token_of_another_user_acts_as_that_user_only(stack_db):
    # A valid token of au_id 26 cannot read asker 149's concern
    assert send_progress(token(26)) == (404, {"code": "not_found", "message": "Result not found"})
    # and au_id 26 has no point account to swap from
    assert send_swap(token(26), body=swap_body()) == (404, error(32201, "App point information does not exist"))


def test_a_millisecond_token_one_second_from_expiry_completes_a_swap(stack_db):
    # Given the issuer's kind of token (exp in ms), valid for one more second
    issued = signed(claims(DASHBOARD, exp=int((NOW + 1) * 1000)))
    # When the seed's swap is sent with it
    status, body = send_swap(issued, body=swap_body())
    # Then it completes
    assert status == 200
    assert body["value"]["log_id"] == 1
    assert balances(stack_db) == (2100 - 110, Decimal("11"))


# --- OTP brute force ---


def wrong_codes(count: int, when: float = NOW) -> list[str]:
    """Codes an attacker would try in order, skipping the ones valid at t-1, t and t+1."""
    valid = {code_at(when + offset) for offset in (-30, 0, 30)}
    return [code for code in (f"{n:06d}" for n in range(count + 3)) if code not in valid][:count]


def test_otp_brute_force_reaches_the_lockout(stack_db):
    # Given an attacker holding a valid token but not the authenticator
    bearer = token(DASHBOARD)
    before = balances(stack_db)
    # When five wrong codes are tried
    for code in wrong_codes(5):
        assert send_swap(bearer, body=swap_body(otp_code=code)) == (401, error(32107, "OTP code is invalid"))
    # Then the sixth attempt is refused even with the right code, and a wrong one too
    locked = (429, error(32109, "Too many OTP attempts"))
    assert send_swap(bearer, body=swap_body()) == locked
    assert send_swap(bearer, body=swap_body(adjust_point=-20, adjust_coin=2)) == locked
    assert send_swap(bearer, body=swap_body(otp_code=wrong_codes(6)[-1])) == locked
    # and nothing moved
    assert balances(stack_db) == before
    assert swap_logs(stack_db) == []


def test_four_wrong_codes_do_not_lock(stack_db):
    bearer = token(DASHBOARD)
    for code in wrong_codes(4):
        assert send_swap(bearer, body=swap_body(otp_code=code))[1]["return"] == 32107
    status, _ = send_swap(bearer, body=swap_body())
    assert status == 200


def test_malformed_codes_count_towards_the_lockout(stack_db):
    bearer = token(DASHBOARD)
    for code in ("12345", "abcdef", 123456, None, "1234567"):
        body = (
            swap_body(otp_code=code) if code is not None else {k: v for k, v in swap_body().items() if k != "otp_code"}
        )
        assert send_swap(bearer, body=body) == (401, error(32107, "OTP code is invalid"))
    assert send_swap(bearer, body=swap_body()) == (429, error(32109, "Too many OTP attempts"))


def test_the_lockout_is_per_account(dynamodb, frozen):
    # Given two enrolled accounts with the same authenticator secret
    fixture = demo_fixture()
    fixture["accounts"].append(
        {
            "au_id": 20,
            "otp_secret": DEMO_SECRET,
            "points": [{"app_id": 1, "point_id": 1, "mu_id": 29, "quantity": 500}],
            "wallets": [{"coin_id": 2, "walletaddress": "0xdef", "quantity": "0"}],
        }
    )
    load(dynamodb, fixture)
    # When account 19 is locked by brute force
    for code in wrong_codes(5):
        send_swap(token(DASHBOARD), body=swap_body(otp_code=code))
    assert send_swap(token(DASHBOARD), body=swap_body())[1]["return"] == 32109
    # Then account 20 still swaps with its right code
    status, body = send_swap(token(20), body=swap_body())
    assert (status, body["value"]["au_id"]) == (200, 20)
