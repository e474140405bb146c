"""What the tables' adapters (jobs, callbacks) share about DynamoDB: the client, the error codes
that mean "try again" or "the condition failed", items and the times they hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.adapters import aws_clients

__all__ = ["CONDITION_FAILED", "TRANSIENT_CODES", "dynamodb_client", "error_code", "from_item", "now_iso",
           "timestamp", "to_item"]  # fmt: skip

CONDITION_FAILED = "ConditionalCheckFailedException"
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "LimitExceededException",
    }
)
"""Error codes worth retrying (throttling, DynamoDB busy or down)."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:  # no type stubs for DynamoDB are installed
    """The shared DynamoDB client, built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)
    return aws_clients.client("dynamodb", config)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


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
