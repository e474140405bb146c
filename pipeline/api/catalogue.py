"""The videos as the API shows them: list (a Query per filter, newest first), read, change what the
caller owns, delete. Routes call these; these call the adapters.

Listing never scans. A filter is served by its index (``pipeline.deployment.TABLE_INDEXES``, each
sorted by ``created_at``); with several filters the most selective one is the Query and the
others filter its pages. With none, the three ``status`` partitions of ``status-created_at-index``
are read side by side and merged, newest first; the page token keeps one position per status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pipeline.adapters import executions, jobs_table, page_tokens, s3
from pipeline.adapters.page_tokens import InvalidPageToken
from pipeline.adapters.s3 import S3Uri
from pipeline.api.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from pipeline.deployment import TABLE_INDEXES, TABLE_KEY, VIDEOS_PREFIX
from pipeline.models import JobRecord

STATUSES = ("processing", "saved", "failed")
# The filter that becomes the Query when several are given: the most selective first.
FILTERS = ("batch_id", "source_video_id", "filename", "status")
_INDEX = {partition: (name, sort) for name, partition, sort in TABLE_INDEXES}
_ENDED = "end"


@dataclass(frozen=True)
class Page:
    records: list[JobRecord]
    next_token: str | None


_BAD_TOKEN = "next_token: not a token this API gave for these filters (start again without it)"  # noqa: S105


def _scope(filters: dict[str, str]) -> str:
    return "videos:" + hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:16]


def _encode(filters: dict[str, str], position: Any) -> str:
    return page_tokens.encode(position, scope=_scope(filters))


def _decode(filters: dict[str, str], token: str) -> Any:
    try:
        return page_tokens.decode(token, scope=_scope(filters))
    except InvalidPageToken:
        raise BadRequest(_BAD_TOKEN) from None


def _start_key(value: Any, partition: str, wanted: str) -> dict[str, Any] | None:
    """A page's ExclusiveStartKey, checked against the index being read (``page_tokens``)."""
    if value is None:
        return None
    _, sort = _INDEX[partition]
    keys = {TABLE_KEY, partition} | ({sort} if sort else set())
    try:
        return page_tokens.start_key(value, keys=keys, partition=(partition, wanted))
    except InvalidPageToken:
        raise BadRequest(_BAD_TOKEN) from None


def list_videos(filters: dict[str, str], *, limit: int, token: str | None, skip: int, table: str) -> Page:
    """One page of the records matching ``filters``, newest first (``skip``: seed 000's offset)."""
    position = _decode(filters, token) if token else None
    while skip > 0:  # seed 000's `skip`: read the skipped records page by page, then the page
        step = min(skip, 100)
        skipped = _page(filters, limit=step, position=position, table=table)
        skip -= len(skipped.records)
        if skipped.next_token is None:
            return Page([], None)
        position = _decode(filters, skipped.next_token)
    return _page(filters, limit=limit, position=position, table=table)


def _page(filters: dict[str, str], *, limit: int, position: Any, table: str) -> Page:
    if filters:
        return _filtered(filters, limit=limit, position=position, table=table)
    return _merged(limit=limit, position=position or {}, table=table)


def _filtered(filters: dict[str, str], *, limit: int, position: Any, table: str) -> Page:
    key = next(name for name in FILTERS if name in filters)
    index, _ = _INDEX[key]
    records, last = jobs_table.query(
        index,
        key,
        filters[key],
        limit=limit,
        start=_start_key(position, key, filters[key]),
        equals={name: value for name, value in filters.items() if name != key},
        table=table,
    )
    return Page(records, _encode(filters, last) if last else None)


def _merged(*, limit: int, position: Any, table: str) -> Page:
    if not isinstance(position, dict):
        raise BadRequest("next_token: not a token this API gave (start again without it)")
    index, sort = _INDEX["status"]
    keys = ("status", sort) if sort else ("status",)
    fetched: dict[str, tuple[list[JobRecord], bool]] = {}
    for status in STATUSES:
        cursor = position.get(status)
        if cursor == _ENDED:
            continue
        records, last = jobs_table.query(
            index, "status", status, limit=limit, start=_start_key(cursor, "status", status), table=table
        )
        fetched[status] = (records, last is None)
    candidates = [record for records, _ in fetched.values() for record in records]
    # On created_at alone: the sort is stable, so each status keeps DynamoDB's own order among
    # equal times, and the last record taken from a status is where its next page starts.
    candidates.sort(key=lambda r: r.created_at, reverse=True)
    taken = candidates[:limit]
    after = dict(position)
    for status, (records, exhausted) in fetched.items():
        mine = [record for record in taken if record.status == status]
        if mine and (len(mine) < len(records) or not exhausted):
            after[status] = jobs_table.index_key(mine[-1], keys)
        elif len(mine) == len(records) and exhausted:
            after[status] = _ENDED
    more = any(after.get(status) != _ENDED for status in STATUSES)
    return Page(taken, _encode({}, after) if more else None)


def record_of(video_id: str, *, table: str) -> JobRecord:
    record = jobs_table.get(video_id, table=table)
    if record is None:
        raise NotFound(f"no video {video_id!r}")
    return record


def streaming_link(record: JobRecord, *, expires_in: int) -> str | None:
    """A presigned GET of the output, for a saved video only."""
    if record.status != "saved" or not record.s3_uri:
        return None
    return s3.presign_get(S3Uri.parse(record.s3_uri), expires_in=expires_in)


def change(video_id: str, fields: dict[str, Any], *, if_match: str | None, now: str, table: str) -> JobRecord:
    """Set the caller's fields; 412 if the record changed since the ``If-Match`` updated_at."""
    current = record_of(video_id, table=table)
    expected = _etag(if_match)
    if expected is not None and expected != current.updated_at:
        raise PreconditionFailed(
            f"video {video_id!r} was updated at {current.updated_at}, not {expected}: read it again"
        )
    if not fields:
        return current
    changed = jobs_table.update_caller_fields(
        video_id, fields, expected_updated_at=expected, now=now, table=table
    )
    if changed is None:  # gone, or updated between the read and the write
        latest = record_of(video_id, table=table)
        raise PreconditionFailed(f"video {video_id!r} was updated at {latest.updated_at}: read it again")
    return changed


def _etag(if_match: str | None) -> str | None:
    """The ``updated_at`` an If-Match names; None for none or ``*`` (any version)."""
    if if_match is None or if_match.strip() == "*":
        return None
    return if_match.strip().removeprefix("W/").strip('"')


def delete(video_id: str, *, bucket: str, table: str) -> None:
    """Delete the outputs, then the record; 409 while the job is processing.

    Its execution counts: a record is ``saved`` before Notify has sent the callback, whose
    presigned URL must not point at a deleted object. Outputs first: if the record's delete
    fails, the record stays and a second DELETE finishes the job.
    """
    record = record_of(video_id, table=table)
    running = record.execution_arn is not None and executions.is_running(record.execution_arn)
    if record.status == "processing" or running:
        raise Conflict(f"video {video_id!r} is processing: delete it once its execution has ended")
    s3.delete_prefix(bucket, f"{VIDEOS_PREFIX}{video_id}/")
    if not jobs_table.delete_ended(video_id, table=table):
        latest = jobs_table.get(video_id, table=table)
        if latest is None:
            raise NotFound(f"no video {video_id!r}")
        raise Conflict(f"video {video_id!r} is processing again: delete it once it has ended")
