"""The jobs table (DynamoDB, one item per video, pk ``video_id``): the record's status moves only
by conditional writes, so two executions racing on one job cannot both win.

Errors are translated once, here: throttling, 5xx and connection failures -> ``StorageUnavailable``
(retryable); a failed condition -> a ``False`` return where a function says so; anything else
(missing table, access denied, a malformed request) -> ``StorageFailed``.

Every function takes the table's name (the caller's configuration knows it) and, optionally, a
client; without one it uses a client built on first use.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters.dynamodb_items import (
    CONDITION_FAILED,
    TRANSIENT_CODES,
    dynamodb_client,
    error_code,
    from_item,
    now_iso,
    timestamp,
    to_item,
)
from pipeline.deployment import TABLE_KEY
from pipeline.failures import StorageFailed, StorageUnavailable, VidpError
from pipeline.models import CallbackDelivery, JobRecord

# The client, item conversions and times are re-exported: the table's callers read them here.
__all__ = [
    "create_processing", "delete_ended", "describe", "dynamodb_client", "from_item", "get", "index_key",
    "mark_failed", "now_iso", "put_failed", "query", "record_callback", "record_of_item", "set_progress",
    "timestamp", "to_item", "update_caller_fields",
]  # fmt: skip


# The caller's metadata is any JSON (4 KB at most): kept as JSON text, since a DynamoDB map
# refuses numbers past 38 digits or 1e126 and empty-set values that JSON allows.
_JSON_TEXT = "metadata"


def _record_item(record: JobRecord) -> dict[str, Any]:
    return to_item(_stored(record.model_dump(mode="json", exclude_none=True)))


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get(_JSON_TEXT) is not None:
        fields = {**fields, _JSON_TEXT: json.dumps(fields[_JSON_TEXT], separators=(",", ":"))}
    return fields


def record_of_item(item: dict[str, Any]) -> JobRecord:
    """A job record from its DynamoDB item."""
    fields = from_item(item)
    if isinstance(fields.get(_JSON_TEXT), str):
        fields[_JSON_TEXT] = json.loads(fields[_JSON_TEXT])
    return JobRecord.model_validate(fields)


# --- operations -------------------------------------------------------------------------------


def create_processing(record: JobRecord, *, table: str, client: Any = None) -> bool:
    """Put a new ``processing`` record; False if the video already has one (a duplicate request)."""
    return _put_new(record, table=table, client=client)


def put_failed(record: JobRecord, *, table: str, client: Any = None) -> bool:
    """Put a ``failed`` record for a request that failed before it had one; False if one exists."""
    if record.status != "failed":
        raise ValueError("put_failed needs a record with status 'failed'")
    return _put_new(record, table=table, client=client)


def _put_new(record: JobRecord, *, table: str, client: Any) -> bool:
    try:
        (client or dynamodb_client()).put_item(
            TableName=table,
            Item=_record_item(record),
            ConditionExpression=f"attribute_not_exists({TABLE_KEY})",
        )
    except ClientError as err:
        if error_code(err) == CONDITION_FAILED:
            return False
        raise _error(err, f"put {record.video_id}") from None
    except BotoCoreError as err:
        raise _error(err, f"put {record.video_id}") from None
    return True


def get(video_id: str, *, table: str, client: Any = None) -> JobRecord | None:
    """The record of a video (a strongly consistent read), or None."""
    try:
        answer = (client or dynamodb_client()).get_item(
            TableName=table, Key={TABLE_KEY: {"S": video_id}}, ConsistentRead=True
        )
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"get {video_id}") from None
    item = answer.get("Item")
    return None if item is None else record_of_item(item)


def mark_failed(
    video_id: str,
    job_id: str,
    *,
    error_code: str,
    error_message: str,
    failed_state: str,
    now: str,
    table: str,
    client: Any = None,
) -> bool:
    """processing -> failed for this job; False if the record is not (or no longer) processing it."""
    update = (
        "SET #status = :failed, error_code = :code, error_message = :message, "
        "failed_state = :state, updated_at = :now"
    )
    values = {
        ":failed": "failed",
        ":code": error_code,
        ":message": error_message,
        ":state": failed_state,
        ":now": now,
    }
    return _update_processing(video_id, job_id, update, values, table=table, client=client)


def set_progress(
    video_id: str,
    job_id: str,
    percent: float,
    *,
    now: str | None = None,
    table: str,
    client: Any = None,
) -> bool:
    """Record encoding progress (0-100); False if the job is no longer processing."""
    values = {":progress": round(min(100.0, max(0.0, percent)), 1), ":now": now or now_iso()}
    return _update_processing(
        video_id, job_id, "SET progress = :progress, updated_at = :now", values, table=table, client=client
    )


def _update_processing(
    video_id: str, job_id: str, update: str, values: dict[str, Any], *, table: str, client: Any
) -> bool:
    """``_update`` on condition that the record is still ``processing`` this very job."""
    condition = "#status = :processing AND job_id = :job"
    values = {**values, ":processing": "processing", ":job": job_id}
    return _update(video_id, update, condition, values, table=table, client=client)


def record_callback(
    video_id: str,
    delivery: CallbackDelivery,
    *,
    now: str | None = None,
    table: str,
    client: Any = None,
) -> bool:
    """Record how the callback went, whatever the status; False if the video has no record."""
    return _update(
        video_id,
        "SET callback = :callback, updated_at = :now",
        f"attribute_exists({TABLE_KEY})",
        {":callback": delivery.model_dump(mode="json", exclude_none=True), ":now": now or now_iso()},
        table=table,
        client=client,
    )


def _update(
    video_id: str,
    update: str,
    condition: str,
    values: dict[str, Any],
    *,
    table: str,
    client: Any,
) -> bool:
    names = {"#status": "status"} if "#status" in update + condition else None
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {TABLE_KEY: {"S": video_id}},
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": to_item(values),
    }
    if names:
        request["ExpressionAttributeNames"] = names
    try:
        (client or dynamodb_client()).update_item(**request)
    except ClientError as err:
        if error_code(err) == CONDITION_FAILED:
            return False
        raise _error(err, f"update {video_id}") from None
    except BotoCoreError as err:
        raise _error(err, f"update {video_id}") from None
    return True


# --- the API's reads and the caller's writes ---------------------------------------------------


MAX_QUERY_CALLS = 10
"""DynamoDB Query calls one page may take (a request must end well within API Gateway's 29 s)."""


def query(
    index: str,
    key: str,
    value: str,
    *,
    limit: int,
    start: dict[str, Any] | None = None,
    newest_first: bool = True,
    equals: dict[str, str] | None = None,
    table: str,
    client: Any = None,
) -> tuple[list[JobRecord], dict[str, Any] | None]:
    """Up to ``limit`` records whose ``key`` is ``value`` in ``index`` (sorted by its sort key),
    after ``start``; and where the next page starts (None: no more). ``equals`` narrows the
    records further (a filter: DynamoDB reads then drops, so pages are refilled until full)."""
    names = {"#k": key}
    values: dict[str, Any] = {":k": value}
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "#k = :k",
        "ScanIndexForward": not newest_first,
    }
    if equals:
        for number, (name, wanted) in enumerate(sorted(equals.items())):
            names[f"#f{number}"], values[f":f{number}"] = name, wanted
        request["FilterExpression"] = " AND ".join(f"#f{n} = :f{n}" for n in range(len(equals)))
    request |= {"ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values)}
    found: list[JobRecord] = []
    position = start
    for _ in range(MAX_QUERY_CALLS):  # a filter may drop most of a page: bounded, then a partial page
        if len(found) >= limit:
            break
        page = dict(request, Limit=limit - len(found))
        if position:
            page["ExclusiveStartKey"] = position
        try:
            answer = (client or dynamodb_client()).query(**page)
        except (ClientError, BotoCoreError) as err:
            raise _error(err, f"query {index}") from None
        found.extend(record_of_item(item) for item in answer.get("Items", []))
        position = answer.get("LastEvaluatedKey")
        if not position:
            break
    return found, position


def index_key(record: JobRecord, index_keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``ExclusiveStartKey`` that continues a query of an index right after ``record``."""
    shown = record.model_dump(mode="json")
    return to_item({name: shown[name] for name in (TABLE_KEY, *index_keys)})


def update_caller_fields(
    video_id: str,
    fields: dict[str, Any],
    *,
    expected_updated_at: str | None,
    now: str,
    table: str,
    client: Any = None,
) -> JobRecord | None:
    """Set fields the caller owns (metadata, display filename); the new record, or None when the
    record is gone or was updated since ``expected_updated_at`` (a lost update avoided)."""
    fields = _stored(fields)
    names = {f"#n{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())} | {":now": now}
    update = "SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(fields))) + ", updated_at = :now"
    condition = f"attribute_exists({TABLE_KEY})"
    if expected_updated_at is not None:
        condition += " AND updated_at = :expected"
        values[":expected"] = expected_updated_at
    try:
        answer = (client or dynamodb_client()).update_item(
            TableName=table,
            Key={TABLE_KEY: {"S": video_id}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
    except ClientError as err:
        if error_code(err) == CONDITION_FAILED:
            return None
        raise _error(err, f"update {video_id}") from None
    except BotoCoreError as err:
        raise _error(err, f"update {video_id}") from None
    return record_of_item(answer["Attributes"])


def delete_ended(video_id: str, *, table: str, client: Any = None) -> bool:
    """Delete the record of a job that is not processing; False if it is (or there is none)."""
    try:
        (client or dynamodb_client()).delete_item(
            TableName=table,
            Key={TABLE_KEY: {"S": video_id}},
            ConditionExpression=f"attribute_exists({TABLE_KEY}) AND #status <> :processing",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":processing": {"S": "processing"}},
        )
    except ClientError as err:
        if error_code(err) == CONDITION_FAILED:
            return False
        raise _error(err, f"delete {video_id}") from None
    except BotoCoreError as err:
        raise _error(err, f"delete {video_id}") from None
    return True


def describe(*, table: str, client: Any = None) -> str:
    """The table's status (``ACTIVE``...): the health check's question."""
    try:
        answer = (client or dynamodb_client()).describe_table(TableName=table)
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"describe {table}") from None
    return str(answer["Table"]["TableStatus"])


# --- errors -----------------------------------------------------------------------------------


def _error(err: ClientError | BotoCoreError, what: str) -> VidpError:
    """Translate a boto error into StorageUnavailable (transient) or StorageFailed (one line)."""
    if isinstance(err, BotoCoreError):
        return StorageUnavailable(f"jobs table: {what}: DynamoDB unreachable ({type(err).__name__})")
    code = error_code(err)
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in TRANSIENT_CODES or status >= 500:
        return StorageUnavailable(f"jobs table: {what}: DynamoDB error {code or status}, try again later")
    message = str(err.response.get("Error", {}).get("Message", "")) or code
    return StorageFailed(f"jobs table: {what}: DynamoDB refused the request ({code or status}: {message})")
