"""The callback receiver's table (DynamoDB, pk ``task_id``, sk ``webhook_id``): one item per
callback received, stored once per Standard Webhooks ``webhook-id``.

A delivery retried by the pipeline carries the same ``webhook-id``, so a conditional put keeps
the first copy and tells the caller it saw a duplicate. A task may hold several callbacks (a
failure, then the success of a reprocessing): ``for_task`` sorts them newest first. The batch and
the "latest" listings read the two GSIs of ``pipeline.deployment.CALLBACKS_INDEXES``.

Errors are translated once, here, as in ``jobs_table``: throttling, 5xx and connection failures
-> ``StorageUnavailable``; anything else DynamoDB refuses -> ``StorageFailed``; a page token that
is not one of ours -> ``page_tokens.InvalidPageToken`` (a ``ValueError``: the caller's mistake).
The payload is kept as JSON text: any JSON a caller's pipeline sends is stored as sent (a DynamoDB map refuses
numbers past 38 digits or 1e126, which JSON allows).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from pipeline.adapters import page_tokens
from pipeline.adapters.aws_errors import translate
from pipeline.adapters.dynamodb_items import (
    CONDITION_FAILED,
    TRANSIENT_CODES,
    dynamodb_client,
    error_code,
    from_item,
    to_item,
)
from pipeline.deployment import CALLBACKS_INDEXES, CALLBACKS_KIND, CALLBACKS_TABLE_KEY, CALLBACKS_TABLE_SORT
from pipeline.failures import StorageFailed, StorageUnavailable

_INDEXES = {name: (pk, sk) for name, pk, sk in CALLBACKS_INDEXES}
BATCH_INDEX, RECEIVED_INDEX = "batch_id-index", "received-index"
_BATCH_KEY, _KIND_KEY = _INDEXES[BATCH_INDEX][0], _INDEXES[RECEIVED_INDEX][0]
_TOKEN_KEYS = frozenset({CALLBACKS_TABLE_KEY, CALLBACKS_TABLE_SORT, _BATCH_KEY, "received_at"})

Source = Literal["webhook", "simulate"]


class ReceivedCallback(BaseModel):
    """One callback as the receiver stored it."""

    task_id: str
    webhook_id: str = Field(description="the Standard Webhooks webhook-id: the same on every retry")
    batch_id: str | None = None
    received_at: str = Field(description="UTC, milliseconds, Z: when the first copy arrived")
    status: str = Field(description="the payload's status: completed, failed...")
    payload: dict[str, Any] = Field(description="the JSON object received, as sent")
    verified: bool = Field(description="its Standard Webhooks signature checked out")
    source: Source = Field(description="webhook (a signed POST) or simulate (POST /test/simulate)")


@dataclass(frozen=True)
class Page:
    """Callbacks newest first, and the token of the next page (None on the last one)."""

    callbacks: list[ReceivedCallback]
    next_token: str | None


# --- operations -------------------------------------------------------------------------------


def put(callback: ReceivedCallback, *, table: str, client: Any = None) -> bool:
    """Store a callback once per (task_id, webhook_id); False if that webhook-id was already stored."""
    fields = callback.model_dump(mode="json")
    item = to_item({**fields, "payload": json.dumps(fields["payload"]), "kind": CALLBACKS_KIND})
    try:
        (client or dynamodb_client()).put_item(
            TableName=table,
            Item=item,
            ConditionExpression=f"attribute_not_exists({CALLBACKS_TABLE_SORT})",
        )
    except ClientError as err:
        if error_code(err) == CONDITION_FAILED:
            return False
        raise _error(err, f"put a callback of {callback.task_id}") from None
    except BotoCoreError as err:
        raise _error(err, f"put a callback of {callback.task_id}") from None
    return True


def for_task(task_id: str, *, table: str, client: Any = None) -> list[ReceivedCallback]:
    """Every callback of a task, newest first (a strongly consistent read: a POST is seen at once)."""
    request = {
        "TableName": table,
        "KeyConditionExpression": f"{CALLBACKS_TABLE_KEY} = :task",
        "ExpressionAttributeValues": {":task": {"S": task_id}},
        "ConsistentRead": True,
    }
    items = [item for page in _pages(request, client, f"read task {task_id}") for item in page["Items"]]
    found = [_callback(item) for item in items]
    return sorted(found, key=lambda c: (c.received_at, c.webhook_id), reverse=True)


def for_batch(
    batch_id: str, *, limit: int, next_token: str | None = None, table: str, client: Any = None
) -> Page:
    """One page of a batch's callbacks, newest first (``batch_id-index``)."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": BATCH_INDEX,
        "KeyConditionExpression": f"{_BATCH_KEY} = :batch",
        "ExpressionAttributeValues": {":batch": {"S": batch_id}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if next_token is not None:
        request["ExclusiveStartKey"] = decode_token(next_token, batch_id)
    try:
        answer = (client or dynamodb_client()).query(**request)
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"read batch {batch_id}") from None
    last = answer.get("LastEvaluatedKey")
    return Page(
        [_callback(item) for item in answer["Items"]], None if last is None else encode_token(last, batch_id)
    )


def batch_counts(batch_id: str, *, table: str, client: Any = None) -> dict[str, int]:
    """How many callbacks of the batch have each status (the whole batch, every page)."""
    request = {
        "TableName": table,
        "IndexName": BATCH_INDEX,
        "KeyConditionExpression": f"{_BATCH_KEY} = :batch",
        "ExpressionAttributeValues": {":batch": {"S": batch_id}},
        "ProjectionExpression": "#status",
        "ExpressionAttributeNames": {"#status": "status"},
    }
    counts: Counter[str] = Counter()
    for page in _pages(request, client, f"count batch {batch_id}"):
        counts.update(str(item.get("status", {}).get("S", "")) for item in page["Items"])
    return dict(counts)


def latest(limit: int, *, table: str, client: Any = None) -> list[ReceivedCallback]:
    """The ``limit`` callbacks received last, newest first (``received-index``)."""
    request = {
        "TableName": table,
        "IndexName": RECEIVED_INDEX,
        "KeyConditionExpression": "#kind = :kind",
        "ExpressionAttributeNames": {"#kind": _KIND_KEY},
        "ExpressionAttributeValues": {":kind": {"S": CALLBACKS_KIND}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    found: list[ReceivedCallback] = []
    for page in _pages(request, client, "read the latest callbacks"):  # a page stops at 1 MB
        found.extend(_callback(item) for item in page["Items"])
        if len(found) >= limit:
            break
    return found[:limit]


# --- page tokens ------------------------------------------------------------------------------


def encode_token(last_key: dict[str, Any], batch_id: str) -> str:
    """A ``LastEvaluatedKey`` of this batch's listing as an opaque URL-safe token."""
    return page_tokens.encode(last_key, scope=f"batch:{batch_id}")


def decode_token(token: str, batch_id: str) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` of a token ``for_batch`` gave for this very batch."""
    position = page_tokens.decode(token, scope=f"batch:{batch_id}")
    return page_tokens.start_key(position, keys=_TOKEN_KEYS, partition=(_BATCH_KEY, batch_id))


# --- helpers ----------------------------------------------------------------------------------


def _pages(request: dict[str, Any], client: Any, what: str) -> Iterator[dict[str, Any]]:
    paginator = (client or dynamodb_client()).get_paginator("query")
    try:
        yield from paginator.paginate(**request)
    except (ClientError, BotoCoreError) as err:
        raise _error(err, what) from None


def _callback(item: dict[str, Any]) -> ReceivedCallback:
    fields = from_item(item)
    if isinstance(fields.get("payload"), str):
        fields["payload"] = json.loads(fields["payload"])
    return ReceivedCallback.model_validate(fields)


def _error(err: ClientError | BotoCoreError, what: str) -> StorageUnavailable | StorageFailed:
    return translate(err, "callbacks table", what, transient=TRANSIENT_CODES)
