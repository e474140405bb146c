"""DynamoDB items and the times they hold, shared by the tables' adapters (jobs, callbacks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

__all__ = ["from_item", "now_iso", "timestamp", "to_item"]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def timestamp(moment: datetime) -> str:
    """A time as the record stores it: UTC, milliseconds, ``Z`` (the format of
    ``$$.Execution.StartTime``), so ``created_at`` and ``updated_at`` sort as text."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return timestamp(datetime.now(UTC))


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON-able dict as a DynamoDB item: numbers as N (exact decimals), None attributes omitted."""
    exact = json.loads(json.dumps(data), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in exact.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_plain(item) for item in value]
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (N as int or float)."""
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}
