"""Conversion between DynamoDB attribute values and Python values (numbers stay Decimal)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items()}


def to_attribute(value: Any) -> dict[str, Any]:
    return dict(_serializer.serialize(value))


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {key: _deserializer.deserialize(value) for key, value in item.items()}
