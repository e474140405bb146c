"""MarkFailed: turn a caught error into a failed job record and the report NotifyFailure sends.

Every execution that fails leaves a ``failed`` record, including one whose request never became
a job (ValidateInput failed): its job id is salvaged from the raw request. MarkFailed has no
Catch, so it degrades rather than fails: an unreadable failure is reported as such, and a
clean-up that S3 refuses is logged, not raised.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline import deployment, failures
from pipeline.adapters import jobs_table, s3
from pipeline.adapters.s3 import S3Uri
from pipeline.failures import StorageFailed, StorageUnavailable
from pipeline.logs import logger, step_log
from pipeline.models import (
    CaughtError,
    ExternalId,
    Failure,
    FailureReport,
    HttpUrlText,
    Job,
    JobId,
    JobLabels,
    JobRecord,
    JobRequest,
    MarkFailedEvent,
    Metadata,
    Resolution,
    video_id_for,
)
from pipeline.steps.settings import step_settings

_log = logger("mark_failed")
_FIRST_STATE = "ValidateInput"
_UNKNOWN_FILENAME = "unknown"
_JOB_ID: TypeAdapter[str] = TypeAdapter(JobId)
_EXTERNAL_ID: TypeAdapter[str] = TypeAdapter(ExternalId)
_HTTP_URL: TypeAdapter[str] = TypeAdapter(HttpUrlText)
_RESOLUTION: TypeAdapter[str] = TypeAdapter(Resolution)
_METADATA: TypeAdapter[dict[str, Any]] = TypeAdapter(Metadata)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    parsed = MarkFailedEvent.model_validate(event)
    with step_log(_log, "MarkFailed", execution_arn=parsed.execution_arn):
        return mark_failed(parsed, table=step_settings().table_name).model_dump(mode="json")


def mark_failed(event: MarkFailedEvent, *, table: str) -> FailureReport:
    """Record the failure (processing -> failed, or a new failed record) and report it."""
    failure = describe_failure(event.state)
    _log.info("failure", extra=failure.model_dump())
    now = jobs_table.now_iso()
    job = _trusted_job(event.state, failure.failed_state)
    if job is not None:
        return _fail_job(job, failure, now, table)
    return _fail_request(_raw_request(event.state), failure, event.execution_arn, now, table)


# --- what failed ------------------------------------------------------------------------------


def describe_failure(state: dict[str, Any]) -> Failure:
    """The failed state, the error name, its code and a one-line message, from ``state.failure``.

    The Catches put the error at ``$.failure.<StateName>``. Before ValidateInput succeeds the
    state is the caller's input, which may itself hold a ``failure`` key: so ValidateInput's
    entry wins when present (it can only be there if ValidateInput failed), and otherwise the
    last entry is the one the Catch wrote.
    """
    caught_by_state = state.get("failure")
    if not isinstance(caught_by_state, dict) or not caught_by_state:
        return Failure(
            error_code=failures.INTERNAL_ERROR,
            error="the execution failed but its error was not passed to MarkFailed",
            error_name="Unknown",
            failed_state="Unknown",
        )
    failed_state = _FIRST_STATE if _FIRST_STATE in caught_by_state else list(caught_by_state)[-1]
    try:
        caught = CaughtError.model_validate(caught_by_state[failed_state])
    except ValidationError:
        caught = CaughtError(error="Unknown")
    return Failure(
        error_code=failures.error_code(caught.error),
        error=failures.failure_message(caught.error, caught.cause, failed_state),
        error_name=caught.error,
        failed_state=failed_state,
    )


def _report(failure: Failure, job_id: str, video_id: str, labels: JobLabels) -> FailureReport:
    return FailureReport(**failure.model_dump(), job_id=job_id, video_id=video_id, **labels.labels())


# --- a job that exists --------------------------------------------------------------------------


def _trusted_job(state: dict[str, Any], failed_state: str) -> Job | None:
    """``state.job``, but only once ValidateInput has written it.

    Before that, the state is the caller's input: a ``job`` in it is the caller's, and trusting
    it would let a request mark another job failed and delete its files.
    """
    if failed_state == _FIRST_STATE or "job" not in state:
        return None
    try:
        return Job.model_validate(state["job"])
    except ValidationError:
        return None


def _fail_job(job: Job, failure: Failure, now: str, table: str) -> FailureReport:
    report = _report(failure, job.job_id, job.video_id, job)
    if not _mark(job.video_id, job.job_id, failure, now, table):
        record = jobs_table.get(job.video_id, table=table)
        if record is not None and record.status == "saved":
            # Saved by RecordMetadata (a duplicate's race or a retry): its output stays.
            _log.warning("job already saved: left as it is", extra={"job_id": job.job_id})
            return report
        # Already failed: this Lambda is a retry, and the clean-up below is idempotent.
    _clean_up(job)
    return report


def _mark(video_id: str, job_id: str, failure: Failure, now: str, table: str) -> bool:
    return jobs_table.mark_failed(video_id, job_id, **failure.record_fields(), now=now, table=table)


def _clean_up(job: Job) -> None:
    """Nothing at the final key, nothing under work/{job_id}/ (best effort: logged, not raised)."""
    try:
        final = S3Uri(job.bucket, job.final_key)
        head = s3.head_or_none(final)
        if head is not None and head.metadata.get(deployment.OUTPUT_JOB_ID) == job.job_id:
            s3.delete(final)
        s3.delete_prefix(job.bucket, job.work.prefix)
    except (StorageUnavailable, StorageFailed) as err:
        # Raising would fail the execution before the failure callback; a lifecycle rule on
        # work/ is the backstop for what is left.
        _log.warning("clean-up failed", extra={"job_id": job.job_id, "error": str(err)})


# --- a request that never became a job ------------------------------------------------------------


class Salvaged(JobLabels):
    """What can be trusted of a request that failed validation."""

    job_id: str
    filename: str = _UNKNOWN_FILENAME
    resolution: str | None = None

    @property
    def video_id(self) -> str:
        return video_id_for(self.job_id)


def _raw_request(state: dict[str, Any]) -> dict[str, Any]:
    """The execution input: the state before ValidateInput, without what the Catch added."""
    return {key: value for key, value in state.items() if key != "failure"}


def salvage(raw: dict[str, Any]) -> Salvaged:
    """The job id ValidateInput would have used, and the fields of the request that are valid.

    A valid request gives its own job id (so a resubmission finds this record); otherwise its
    ``job_id`` if well-formed, else ``job-`` + SHA-256 of the canonical input.
    """
    try:
        request = JobRequest.model_validate(raw)
    except ValidationError:
        request = None
    if request is not None:
        return Salvaged(
            job_id=request.resolved_job_id(),
            filename=_filename(raw),
            resolution=request.resolution,
            **request.labels(),
        )
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return Salvaged(
        job_id=_valid(_JOB_ID, raw.get("job_id"))
        or "job-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32],
        filename=_filename(raw),
        callback_url=_valid(_HTTP_URL, raw.get("callback_url")),
        task_id=_valid(_EXTERNAL_ID, raw.get("task_id")),
        batch_id=_valid(_EXTERNAL_ID, raw.get("batch_id")),
        source_video_id=_valid(_EXTERNAL_ID, raw.get("source_video_id")),
        resolution=_valid(_RESOLUTION, raw.get("resolution")),
        metadata=_valid_metadata(raw.get("metadata")),
    )


def _valid(adapter: TypeAdapter[str], value: Any) -> str | None:
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError:
        return None


def _valid_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    try:
        return _METADATA.validate_python(value)
    except (ValidationError, TypeError, ValueError):
        return {}


def _filename(raw: dict[str, Any]) -> str:
    video = raw.get("video")
    uri = video.get("s3_uri") if isinstance(video, dict) else None
    if not isinstance(uri, str):
        return _UNKNOWN_FILENAME
    return uri.rpartition("/")[2][:255] or _UNKNOWN_FILENAME


def _fail_request(
    raw: dict[str, Any], failure: Failure, execution_arn: str, now: str, table: str
) -> FailureReport:
    got = salvage(raw)
    record = JobRecord.new(
        job_id=got.job_id,
        filename=got.filename,
        status="failed",
        labels=got,
        resolution=got.resolution,
        created_at=now,
        updated_at=now,
        execution_arn=execution_arn,
        **failure.record_fields(),
    )
    report = _report(failure, got.job_id, got.video_id, got)
    if jobs_table.put_failed(record, table=table):
        return report
    existing = jobs_table.get(got.video_id, table=table)
    if existing is not None and existing.execution_arn == execution_arn:
        # ValidateInput claimed the job and then failed (a timeout after its put): it is ours.
        _mark(got.video_id, got.job_id, failure, now, table)
        return report
    # Another execution owns this job: this one was a duplicate request that failed. Its record
    # and its caller's callback belong to that execution, so this one touches neither.
    _log.info("failed duplicate of an existing job", extra={"job_id": got.job_id})
    return report.model_copy(update={"video_id": None, "callback_url": None})
