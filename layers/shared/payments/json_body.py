"""Strict JSON request parsing: numbers kept exact (int / Decimal), no NaN or Infinity."""

from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from payments.errors import InvalidBody

MAX_BODY_BYTES = 16 * 1024
MAX_NESTING = 16


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_NESTING:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()], default=level)
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value], default=level)
    return level


def parse_json_object(body: str | None) -> dict[str, Any]:
    """Parse a request body that must be one JSON object; raise InvalidBody otherwise.

    Fractions and exponents become Decimal (never float); duplicate keys, NaN and Infinity,
    bodies over MAX_BODY_BYTES and nesting deeper than MAX_NESTING are refused.
    """
    if body is None or not body.strip():
        raise InvalidBody("Request body must be a JSON object")
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise InvalidBody(f"Request body is larger than {MAX_BODY_BYTES} bytes")
    if body.count("[") + body.count("{") > 4 * MAX_NESTING and _looks_deep(body):
        raise InvalidBody("Request body is nested too deeply")
    try:
        value = json.loads(
            body,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_refuse_duplicates,
        )
    except (ValueError, RecursionError, ArithmeticError) as error:
        # ArithmeticError: a number whose exponent even Decimal cannot hold
        raise InvalidBody("Request body must be a JSON object") from error
    if not isinstance(value, dict):
        raise InvalidBody("Request body must be a JSON object")
    if _depth(value) > MAX_NESTING:
        raise InvalidBody("Request body is nested too deeply")
    return value


def _looks_deep(body: str) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for char in body:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif char in "]}":
            depth -= 1
    return False


def canonical_json(value: Any) -> str:
    """One text per parsed JSON value, whatever its key order, spacing or number spelling.

    Numbers are written by value (`11`, `11.0` and `1.1e1` are all `11e0`), unquoted, so they
    never meet a string (`"11"`) or a boolean (`true` is not `1`).
    """
    if isinstance(value, dict):
        members = sorted((json.dumps(key, ensure_ascii=False), item) for key, item in value.items())
        return "{" + ",".join(f"{key}:{canonical_json(item)}" for key, item in members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, Decimal)):
        return _canonical_number(Decimal(value))
    raise TypeError(f"not a parsed JSON value: {type(value).__name__}")


def _canonical_number(value: Decimal) -> str:
    # exact, with no context: an absurd exponent (1e999999) cannot overflow
    sign, digits, exponent = without_trailing_zeros(value).as_tuple()
    return f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}"


def without_trailing_zeros(value: Decimal) -> Decimal:
    """The same number with its trailing zeros dropped, exactly (no context, so no overflow)."""
    if not value.is_finite() or value.is_zero():
        return Decimal(0) if value.is_zero() else value
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # only NaN and infinities, handled above
        return value
    while len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
        exponent += 1
    return Decimal((sign, digits, exponent))


def format_decimal(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (`Decimal('1.10')` → `1.1`)."""
    return format(without_trailing_zeros(value), "f")


class _Fraction(Exception):
    """A Decimal with a fraction: the stdlib's C encoder cannot write it exactly."""


def _whole(value: Any) -> int:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)  # exact: the C encoder writes an int digit for digit
    if isinstance(value, Decimal):
        raise _Fraction
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Serialise a response, compact; Decimals are written as exact JSON numbers, never through float.

    The stdlib's C encoder writes it when every Decimal is a whole number (written as an int); a
    fraction (`Decimal('0.3')`) sends the whole value to `_text`, which writes each Decimal's plain text.
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_whole)
    except _Fraction:
        return _text(value)


def _text(value: Any) -> str:
    """What `json.dumps(value, ensure_ascii=False, separators=(",", ":"))` writes, Decimals as exact numbers."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if kind is dict:
        return "{" + ",".join([encode_basestring(key) + ":" + _text(item) for key, item in value.items()]) + "}"
    if kind is list or kind is tuple:
        return "[" + ",".join([_text(item) for item in value]) + "]"
    if kind is Decimal and value.is_finite():
        return format_decimal(value)
    # None, booleans, floats, subclasses of str and int: as the stdlib writes them
    return json.dumps(value, ensure_ascii=False, default=_refuse)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
