"""MarkFailed: turn a caught error into a failed job record and the report NotifyFailure sends.

Every execution that fails leaves a ``failed`` record, including one whose request never became
a job (ValidateInput failed): its job id is salvaged from the execution's input, which this step
reads itself (DescribeExecution), so the failure branch never carries the caller's input (its
size, its shape, its callback URL) through the states. An input that is not a JSON object gives a
record keyed by the execution. MarkFailed degrades rather than fails: an unreadable failure is
reported as such, and a clean-up that S3 or ECS refuses is logged, not raised. If it fails all
the same (the table unreachable through every retry), the reconciler records the job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline import deployment, failures
from pipeline.adapters import ecs, executions, jobs_table, s3
from pipeline.adapters.executions import Unreadable
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
    JobTags,
    MarkFailedEvent,
    Metadata,
    Resolution,
    video_id_for,
)
from pipeline.steps.settings import StepSettings, step_settings

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
        return mark_failed(parsed, step_settings()).model_dump(mode="json")


def mark_failed(event: MarkFailedEvent, settings: StepSettings) -> FailureReport:
    """Record the failure (processing -> failed, or a new failed record) and report it."""
    failure = describe_failure(event.state)
    _log.info("failure", extra=failure.model_dump())
    now = jobs_table.now_iso()
    job = _trusted_job(event.state, failure.failed_state)
    if job is not None:
        return _fail_job(job, failure, now, settings)
    raw = executions.describe(event.execution_arn).input
    return fail_request(raw, failure, event.execution_arn, now, settings.table_name)


# --- what failed ------------------------------------------------------------------------------


def describe_failure(state: dict[str, Any]) -> Failure:
    """The failed state, the error name, its code and a one-line message, from ``state.failure``.

    The Catches put the error at ``$.failure.<StateName>`` (ValidateInput's through the
    ValidationFailed state, which builds the state afresh). A state that was retried after a
    timeout leaves no entry behind, so there is one entry; ValidateInput's wins if there are more.
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


def _report(failure: Failure, job_id: str, video_id: str, tags: JobTags) -> FailureReport:
    return FailureReport(**failure.model_dump(), job_id=job_id, video_id=video_id, **tags.tags())


# --- a job that exists --------------------------------------------------------------------------


def _trusted_job(state: dict[str, Any], failed_state: str) -> Job | None:
    """``state.job``, once ValidateInput has written it (the failure branch of ValidateInput
    starts from a fresh state: nothing of the caller's input is there)."""
    if failed_state == _FIRST_STATE or "job" not in state:
        return None
    try:
        return Job.model_validate(state["job"])
    except ValidationError:
        return None


def _fail_job(job: Job, failure: Failure, now: str, settings: StepSettings) -> FailureReport:
    report = _report(failure, job.job_id, job.video_id, job)
    table = settings.table_name
    if not mark(job.video_id, job.job_id, failure, now, table):
        record = jobs_table.get(job.video_id, table=table)
        if record is not None and record.status == "saved":
            # Saved by RecordMetadata (a duplicate's race or a retry): its output stays.
            _log.warning("job already saved: left as it is", extra={"job_id": job.job_id})
            return report
        # Already failed: this Lambda is a retry, and the clean-up below is idempotent.
    stop_tasks(settings.cluster_arn, job.video_id, f"job {job.job_id} failed: {failure.error_code}")
    clean_up(job.bucket, job.job_id, job.final_key)
    return report


def mark(video_id: str, job_id: str, failure: Failure, now: str, table: str) -> bool:
    """processing -> failed with the failure's code, message and state."""
    return jobs_table.mark_failed(video_id, job_id, **failure.record_fields(), now=now, table=table)


def stop_tasks(cluster: str | None, video_id: str, reason: str) -> None:
    """StopTask what still runs for the video (best effort: logged, not raised)."""
    if cluster is None:
        return
    try:
        stopped = ecs.stop_video_tasks(cluster, video_id, reason)
    except (StorageUnavailable, StorageFailed) as err:
        _log.warning("stopping the job's tasks failed", extra={"video_id": video_id, "error": str(err)})
        return
    if stopped:
        _log.info("stopped the job's tasks", extra={"video_id": video_id, "tasks": len(stopped)})


def clean_up(bucket: str, job_id: str, final_key: str) -> None:
    """Nothing at the final key, nothing under work/{job_id}/ (best effort: logged, not raised)."""
    try:
        final = S3Uri(bucket, final_key)
        head = s3.head_or_none(final)
        if head is not None and head.metadata.get(deployment.OUTPUT_JOB_ID) == job_id:
            s3.delete(final)
        s3.delete_prefix(bucket, deployment.work_prefix(job_id))
    except (StorageUnavailable, StorageFailed) as err:
        # Raising would fail the execution before the failure callback; a lifecycle rule on
        # work/ is the backstop for what is left.
        _log.warning("clean-up failed", extra={"job_id": job_id, "error": str(err)})


# --- a request that never became a job ------------------------------------------------------------


class Salvaged(JobLabels):
    """What can be trusted of a request that failed validation."""

    job_id: str
    filename: str = _UNKNOWN_FILENAME
    resolution: str | None = None

    @property
    def video_id(self) -> str:
        return video_id_for(self.job_id)


def salvage(raw: Any, execution_arn: str) -> Salvaged:
    """The job id ValidateInput would have used, and the fields of the request that are valid.

    A valid request gives its own job id (so a resubmission finds this record); otherwise its
    ``job_id`` if well-formed, else ``job-`` + SHA-256 of the canonical input. An input that is
    not a JSON object has no job in it: its record is keyed by the execution.
    """
    if not isinstance(raw, dict):
        return Salvaged(job_id="job-" + hashlib.sha256(execution_arn.encode()).hexdigest()[:32])
    try:
        request = JobRequest.model_validate(raw)
    except (ValidationError, RecursionError):
        request = None
    if request is not None:
        return Salvaged(
            job_id=request.resolved_job_id(),
            filename=_filename(raw),
            resolution=request.resolution,
            **request.labels(),
        )
    try:
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (RecursionError, ValueError):
        canonical = execution_arn
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
    except (ValidationError, TypeError, ValueError, RecursionError):
        return {}


def _filename(raw: dict[str, Any]) -> str:
    video = raw.get("video")
    uri = video.get("s3_uri") if isinstance(video, dict) else None
    if not isinstance(uri, str):
        return _UNKNOWN_FILENAME
    return uri.rpartition("/")[2][:255] or _UNKNOWN_FILENAME


def fail_request(raw: Any, failure: Failure, execution_arn: str, now: str, table: str) -> FailureReport:
    """The failed record of a request that never became a job (``raw``: the execution input)."""
    if isinstance(raw, Unreadable):
        raw = None  # keyed by the execution, like any input that is not an object
    got = salvage(raw, execution_arn)
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
        # ValidateInput claimed the job and then failed (a timeout after its put), or this
        # Lambda is a retry after its put: the record is ours.
        mark(got.video_id, got.job_id, failure, now, table)
        return report
    # Another execution owns this job: this one was a duplicate (or a conflicting) request that
    # failed. Its record and its caller's callback belong to that execution: touch neither.
    _log.info("failed duplicate of an existing job", extra={"job_id": got.job_id})
    return report.model_copy(update={"video_id": None})
