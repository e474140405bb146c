"""ValidateInput: parse the request, check the video object, create the job record (= dedupe)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from pipeline.adapters import jobs_table, s3
from pipeline.adapters.s3 import S3Uri
from pipeline.deployment import INCOMING_PREFIX, UPLOADS_PREFIX
from pipeline.failures import InvalidInput, JobConflict, ObjectNotFound
from pipeline.logs import logger, step_log
from pipeline.models import Job, JobRecord, JobRequest, Validated, ValidateInputEvent, validation_problems
from pipeline.steps.settings import StepSettings, step_settings

_log = logger("validate_input")
_CALLER_PREFIXES = (INCOMING_PREFIX, UPLOADS_PREFIX)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    parsed = ValidateInputEvent.model_validate(event)
    with step_log(_log, "ValidateInput", execution_arn=parsed.execution_arn):
        return validate_input(parsed, step_settings()).model_dump(mode="json")


def validate_input(event: ValidateInputEvent, settings: StepSettings) -> Validated:
    """Check the request and its video, then claim the job with a conditional put.

    The record already existing means another execution has this job: a duplicate, unless the
    record names this very execution (this Lambda was retried after its put succeeded, or the
    execution was redriven), in which case the job is ours and carries on.
    """
    request = parse_request(event.request)
    video = S3Uri.parse(request.video.s3_uri)
    if video.bucket != settings.bucket:
        raise InvalidInput(f"the video must be in s3://{settings.bucket}/, not in bucket {video.bucket!r}")
    _font_is_an_input(request, settings.bucket)
    extension = PurePosixPath(video.name).suffix.lower()
    if extension not in settings.allowed_extensions:
        allowed = " ".join(settings.allowed_extensions)
        raise InvalidInput(f"video file type {extension or '(none)'!r} is not accepted (allowed: {allowed})")
    try:
        head = s3.head(video)
    except ObjectNotFound:
        raise InvalidInput(f"video object not found: {video}") from None
    if head.size == 0:
        raise InvalidInput(f"video object is empty (0 bytes): {video}")
    if head.size > settings.max_video_bytes:
        raise InvalidInput(
            f"video object is {head.size} bytes, over the limit of {settings.max_video_bytes} bytes: {video}"
        )

    job = Job.from_request(
        request,
        bucket=video.bucket,
        video_key=video.key,
        video_size=head.size,
        created_at=normalise_time(event.started_at),
    )
    record = JobRecord.claimed(job, request, execution_arn=event.execution_arn, now=jobs_table.now_iso())
    table = settings.table_name
    if jobs_table.create_processing(record, table=table):
        return Validated(duplicate=False, job=job)
    existing = jobs_table.get(job.video_id, table=table)
    ours = (
        existing is not None
        and existing.execution_arn == event.execution_arn
        and existing.status == "processing"
    )
    if ours:
        return Validated(duplicate=False, job=job)
    if existing is not None and existing.request_key not in (None, record.request_key):
        # The caller's job_id names a job that asked for something else: doing nothing and
        # succeeding would tell this caller its request was done. (Records older than
        # request_key cannot tell: a duplicate, as before.)
        raise JobConflict(
            f"job {job.job_id!r} already exists with another request: give this one another job_id"
        )
    _log.info(
        "duplicate request",
        extra={
            "job_id": job.job_id,
            "video_id": job.video_id,
            "status": existing.status if existing else None,
        },
    )
    return Validated(duplicate=True, job=job)


def _font_is_an_input(request: JobRequest, bucket: str) -> None:
    """A style's font is read by the task like the video: only from where callers put inputs in
    this bucket (the task role may read nothing else in AWS; the local AWS has no IAM to say so)."""
    if request.style.font_file is None:
        return
    font = S3Uri.parse(request.style.font_file)
    if font.bucket != bucket or not font.key.startswith(_CALLER_PREFIXES):
        inputs = " or ".join(f"s3://{bucket}/{prefix}" for prefix in _CALLER_PREFIXES)
        raise InvalidInput(f"style.font_file must be under {inputs}, not {font}")


def parse_request(raw: Any) -> JobRequest:
    """The execution input as a JobRequest, or InvalidInput naming the first bad field (not its value)."""
    try:
        return JobRequest.model_validate(raw)
    except ValidationError as err:
        raise InvalidInput(f"invalid request: {validation_problems(err, first_only=True)}") from None


def normalise_time(text: str) -> str:
    """``$$.Execution.StartTime`` in the record's format (engines differ in precision and zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return jobs_table.now_iso()
    return jobs_table.timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
