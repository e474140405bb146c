"""Notify (and NotifyFailure): the signed callback, its record on the job, the EventBridge event.

A callback that cannot be delivered never fails the step: how it went is recorded on the job
(``callback``) and returned. The webhook id is fixed per job and outcome, so a retried Lambda
sends the same id (receivers dedupe on it) and, once a delivery is recorded, does not send again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from pipeline.adapters import events, jobs_table, s3, webhooks
from pipeline.adapters.s3 import S3Uri
from pipeline.deployment import FAILED_EVENT, PROCESSED_EVENT
from pipeline.failures import VidpError
from pipeline.logs import logger, step_log, url_for_log
from pipeline.models import (
    AudioAnalysis,
    CallbackDelivery,
    CallbackResults,
    CompletedCallback,
    CompletedNotice,
    FailedCallback,
    FailedNotice,
    FileInfo,
    JobRecord,
    NotifyEvent,
    VideoAnalysis,
)
from pipeline.steps.settings import StepSettings, step_settings

_log = logger("notify")
_EVENT: TypeAdapter[CompletedNotice | FailedNotice] = TypeAdapter(NotifyEvent)
# Worst case of one delivery: attempts * (connect 5 s + 2 * read) + (attempts - 1) * max delay
# = 5 * 25 + 4 * 30 = 245 s with at most 5 attempts (StepSettings): inside the state's 300 s.
_CALLBACK_READ_TIMEOUT = 10.0
_CALLBACK_MAX_DELAY = 30.0


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    notice = _EVENT.validate_python(event)
    with step_log(_log, "Notify", outcome=notice.outcome):
        return notify(notice, step_settings()).model_dump(mode="json")


def notify(notice: CompletedNotice | FailedNotice, settings: StepSettings) -> CallbackDelivery:
    """Call back (if asked), record how it went, put the event; return the delivery."""
    payload: CompletedCallback | FailedCallback
    if isinstance(notice, CompletedNotice):
        payload, detail_type = completed_payload(notice, settings), PROCESSED_EVENT
    else:
        payload, detail_type = failed_payload(notice), FAILED_EVENT
    document = payload.model_dump(mode="json")
    webhook_id = f"msg_{payload.job_id or payload.video_id or 'unknown'}_{notice.outcome}"

    # The callback URL is in the job's record, never in the state (models.JobLabels).
    record = jobs_table.get(payload.video_id, table=settings.table_name) if payload.video_id else None
    if record is not None and record.job_id != payload.job_id:
        record = None  # another job's record: not this caller's URL
    callback_url = record.callback_url if record is not None else None
    delivery = _call_back(callback_url, document, webhook_id, record, settings)
    if payload.video_id is not None:
        jobs_table.record_callback(payload.video_id, delivery, table=settings.table_name)
    # The event carries no presigned URL: it is a bearer credential meant for the caller alone.
    detail = {key: value for key, value in document.items() if key != "file_url"}
    if payload.video_id is not None:
        events.put_event(detail_type, detail, bus=settings.event_bus_name)
    # else: a duplicate or conflicting request failed; the job it named belongs to another
    # execution, whose outcome is that job's (an event here would say the job failed).
    _log.info(
        "notified",
        extra={
            "job_id": payload.job_id,
            "callback": delivery.status,
            "callback_host": url_for_log(callback_url),
            "attempts": delivery.attempts,
            "http_status": delivery.http_status,
        },
    )
    return delivery


def completed_payload(notice: CompletedNotice, settings: StepSettings) -> CompletedCallback:
    """Seed 002's success payload; ``file_url`` is signed here, for the caller only."""
    job, output = notice.job, notice.output
    file_url = s3.presign_get(S3Uri(job.bucket, output.key), expires_in=settings.presign_expiry_seconds)
    return CompletedCallback(
        task_id=job.task_id,
        batch_id=job.batch_id,
        video_id=job.video_id,
        job_id=job.job_id,
        file_url=file_url,
        processing_time=_seconds_since(notice.started_at),
        results=CallbackResults(
            file_info=FileInfo(file_size=output.size, duration=output.duration),
            video_analysis=VideoAnalysis(
                codec=output.video_codec,
                resolution=f"{output.width}x{output.height}",
                quality_score=output.quality.ssim if output.quality else None,
            ),
            audio_analysis=AudioAnalysis(codec=output.audio_codec),
        ),
        metadata=job.metadata,
    )


def failed_payload(notice: FailedNotice) -> FailedCallback:
    return FailedCallback.of(notice.failed)


def _call_back(
    url: str | None,
    document: dict[str, Any],
    webhook_id: str,
    record: JobRecord | None,
    settings: StepSettings,
) -> CallbackDelivery:
    if url is None:
        return CallbackDelivery(status="skipped")
    if record is not None and record.callback is not None:
        done = record.callback
        if done.webhook_id == webhook_id and done.status == "delivered":
            return done  # a retry of this step after the receiver already has it
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        return webhooks.deliver(
            url,
            body,
            secret=webhooks.webhook_secret(),
            webhook_id=webhook_id,
            max_attempts=settings.callback_max_attempts,
            base_delay=settings.callback_base_delay_seconds,
            max_delay=_CALLBACK_MAX_DELAY,
            read_timeout=_CALLBACK_READ_TIMEOUT,
        )
    except VidpError as err:
        # No signing secret, or a URL the SSRF guard refuses: the callback can't be sent, and
        # that is recorded on the job like any other delivery failure.
        return CallbackDelivery(status="failed", webhook_id=webhook_id, error=f"{type(err).__name__}: {err}")


def _seconds_since(started_at: str) -> float:
    try:
        started = datetime.fromisoformat(started_at)
    except ValueError:
        return 0.0
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return round(max(0.0, (datetime.now(UTC) - started).total_seconds()), 3)
