"""The reconciler: every execution that ends badly leaves its job recorded, whatever stopped it.

Catches cannot see everything: StopExecution and the execution's own timeout skip them, and
Step Functions' runtime errors (an input it cannot read or carry, MarkFailed failing through its
retries) fail the execution at once. So every execution of the pipeline that ends ``ABORTED``,
``TIMED_OUT`` or ``FAILED`` comes here: in AWS through an EventBridge rule on Step Functions'
status-change events (``handler``), on the local AWS from ``pipeline.local.watcher``.

The job is found the way MarkFailed finds it (``salvage`` of the execution's input). Then:

- its record is ``processing`` under this execution: marked failed (``ABORTED``, ``TIMED_OUT`` or
  the execution's error), its Fargate task stopped, the final key and ``work/`` cleaned, the
  failure callback and event sent;
- no record: a failed record is put (keyed by the execution when the input has no job), and the
  callback and event sent;
- a record that is already terminal, or another execution's (a duplicate): nothing to do.

Every write is conditional and every notice idempotent, so a redelivered event does nothing twice.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline import deployment, failures
from pipeline.adapters import executions, jobs_table
from pipeline.adapters.executions import Unreadable
from pipeline.failures import StorageFailed
from pipeline.logs import logger, step_log
from pipeline.models import FailedNotice, Failure, FailureReport, JobRequest, validation_problems
from pipeline.steps import mark_failed, notify
from pipeline.steps.settings import StepSettings, step_settings

_log = logger("reconciler")

STATUS_CHANGE = "Step Functions Execution Status Change"
ENDED_BADLY = ("ABORTED", "TIMED_OUT", "FAILED")
_INPUT_ERRORS = {
    "States.DataLimitExceeded": "the execution's data is over Step Functions' 256 KB limit",
    "States.RecursionError": "the execution input is nested too deeply",
}

Action = Literal["marked", "recorded", "already-recorded", "not-ours", "ignored"]


class ExecutionEnded(BaseModel):
    """The ``detail`` of a Step Functions status-change event (what this module reads of it)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn")
    status: str
    input: str | None = Field(default=None, description="absent when too large for the event")
    error: str | None = None
    cause: str | None = None


class Reconciled(BaseModel):
    """What the reconciler did for one execution."""

    action: Action
    job_id: str | None = None
    video_id: str | None = None
    error_code: str | None = None


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """The EventBridge target: one status-change event."""
    detail = ExecutionEnded.model_validate(EventBridgeModel.model_validate(event).detail)
    with step_log(_log, "Reconciler", execution_arn=detail.execution_arn, status=detail.status):
        return reconcile(detail, step_settings()).model_dump()


def reconcile(ended: ExecutionEnded, settings: StepSettings) -> Reconciled:
    """Record the job of an execution that ended badly, if nothing recorded it yet."""
    if ended.status not in ENDED_BADLY:
        return Reconciled(action="ignored")
    arn = ended.execution_arn
    raw = executions.parse_input(ended.input) if ended.input is not None else executions.describe(arn).input
    got = mark_failed.salvage(None if isinstance(raw, Unreadable) else raw, arn)
    table = settings.table_name
    record = jobs_table.get(got.video_id, table=table)
    if record is not None and record.execution_arn != arn:
        return Reconciled(action="not-ours", job_id=got.job_id)
    if record is not None and record.status != "processing":
        return Reconciled(action="already-recorded", job_id=got.job_id, video_id=got.video_id)

    failure = ended_failure(ended, raw, _last_state(arn))
    now = jobs_table.now_iso()
    if record is None:
        report = mark_failed.fail_request(raw, failure, arn, now, table)
        action: Action = "recorded"
    else:
        if not mark_failed.mark(record.video_id, record.job_id, failure, now, table):
            # MarkFailed or RecordMetadata got there first (the execution was stopping).
            return Reconciled(action="already-recorded", job_id=record.job_id, video_id=record.video_id)
        reason = f"job {record.job_id}: execution {ended.status}"
        mark_failed.stop_tasks(settings.cluster_arn, record.video_id, reason)
        final_key = deployment.final_key(record.video_id, record.filename, record.resolution or "")
        mark_failed.clean_up(settings.bucket, record.job_id, final_key)
        report = FailureReport(**failure.model_dump(), job_id=record.job_id, video_id=record.video_id)
        report = report.model_copy(update=_tags(raw))
        action = "marked"
    _log.warning("job recorded failed", extra={"job_id": report.job_id, **failure.model_dump()})
    notify.notify(FailedNotice(outcome="failed", failed=report), settings)
    return Reconciled(
        action=action, job_id=report.job_id, video_id=report.video_id, error_code=failure.error_code
    )


def ended_failure(ended: ExecutionEnded, raw: Any, state: str | None) -> Failure:
    """The failure a record states for an execution that ended ``ended.status`` in ``state``."""
    where = state or "the execution"

    def failure(code: str, text: str, name: str) -> Failure:
        return Failure(error_code=code, error=text, error_name=name, failed_state=state or "Unknown")

    if ended.status == "ABORTED":
        cause = failures.one_line(failures.cause_text(ended.cause), 200)
        text = (
            "the execution was stopped" + (f" in {state}" if state else "") + (f": {cause}" if cause else "")
        )
        return failure(failures.ABORTED, text, "ExecutionAborted")
    if ended.status == "TIMED_OUT":
        return failure(
            failures.TIMED_OUT, f"the execution ran past its time limit in {where}", "ExecutionTimedOut"
        )
    error = ended.error or "Unknown"
    if isinstance(raw, Unreadable):
        return failure("INVALID_INPUT", raw.reason, error)
    problem = request_problem(raw)
    if problem is not None:
        # Step Functions gave up before ValidateInput could say it (e.g. moto's interpreter on an
        # input nested hundreds deep): the record says what ValidateInput would have.
        return failure("INVALID_INPUT", problem, error)
    if error in _INPUT_ERRORS:
        return failure("INVALID_INPUT", _INPUT_ERRORS[error], error)
    return failure(failures.error_code(error), failures.failure_message(error, ended.cause, where), error)


def request_problem(raw: Any) -> str | None:
    """What is wrong with the execution input as a JobRequest (ValidateInput's words), or None."""
    try:
        JobRequest.model_validate(raw)
    except ValidationError as err:
        return f"invalid request: {validation_problems(err, first_only=True)}"
    except RecursionError:
        return "invalid request: the input is nested too deeply"
    return None


def _last_state(execution_arn: str) -> str | None:
    try:
        return executions.last_state(execution_arn)
    except StorageFailed:
        return None  # the history is gone (a restored local AWS): the record says "Unknown"


def _tags(raw: Any) -> dict[str, Any]:
    """The caller's ids and metadata for the failure callback, from the input as far as valid."""
    if not isinstance(raw, dict):
        return {}
    return mark_failed.salvage(raw, "").tags()
