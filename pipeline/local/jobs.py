"""A job on the local AWS as a user sees it on AWS: upload, start, watch, collect.

``vidp run`` and ``vidp executions`` are thin shells over these functions; they need only a
``Deployment`` (boto3 clients and the resource names), so they work on ``LocalAws`` in this
process and on a ``vidp local up`` server in another one (``clients.Endpoint``). Executions of
earlier runs of a ``vidp local up`` are read from its data folder (``datadir``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.adapters import jobs_table
from pipeline.deployment import TABLE_KEY, UPLOADS_PREFIX
from pipeline.local import datadir
from pipeline.local.clients import Deployment
from pipeline.local.datadir import StoredExecution
from pipeline.models import JobRecord, JobRequest, video_id_for
from pipeline.starter import Starter
from pipeline.timeline import StateRun, build_timeline

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class Observation:
    """One look at an execution: what the console's execution view shows."""

    execution_arn: str
    status: str
    timeline: list[StateRun]
    record: JobRecord | None
    error: str | None = None
    cause: str | None = None
    earlier_run: str | None = None  # the run of the data folder it is from, if not the running one

    @property
    def current_state(self) -> str | None:
        return self.timeline[-1].name if self.timeline and self.timeline[-1].ended is None else None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def upload_inputs(aws: Deployment, video: Path, srt: str) -> tuple[str, dict[str, str]]:
    """Upload the video (and the SRT when it is a file) under ``uploads/``.

    Returns the video's s3:// URI and the JobRequest ``subtitles`` object (URL or s3://).
    """
    s3 = aws.client("s3")
    folder = UPLOADS_PREFIX + _digest(video)[:16]
    video_key = f"{folder}/{video.name}"
    s3.upload_file(str(video), aws.names.bucket, video_key)
    if srt.startswith(("http://", "https://")):
        return f"s3://{aws.names.bucket}/{video_key}", {"url": srt}
    srt_path = Path(srt)
    srt_key = f"{folder}/{srt_path.name}"
    s3.upload_file(str(srt_path), aws.names.bucket, srt_key)
    return f"s3://{aws.names.bucket}/{video_key}", {"s3_uri": f"s3://{aws.names.bucket}/{srt_key}"}


def history(aws: Deployment, execution_arn: str) -> list[dict[str, Any]]:
    """Every GetExecutionHistory event, oldest first."""
    pages = aws.client("stepfunctions").get_paginator("get_execution_history")
    return [event for page in pages.paginate(executionArn=execution_arn) for event in page["events"]]


def observe(aws: Deployment, execution_arn: str) -> Observation:
    """Status, timeline and job record of an execution, as of now."""
    described = aws.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return Observation(
        execution_arn=execution_arn,
        status=described["status"],
        timeline=build_timeline(history(aws, execution_arn)),
        record=record_of_execution(aws, described),
        error=described.get("error"),
        cause=described.get("cause"),
    )


def live_executions(aws: Deployment) -> list[dict[str, Any]]:
    """ListExecutions of the pipeline, every page, newest first."""
    sfn = aws.client("stepfunctions")
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"stateMachineArn": aws.names.state_machine_arn, "maxResults": 1000}
    while True:
        page = sfn.list_executions(**kwargs)
        found.extend(page["executions"])
        if not page.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]


def earlier_executions(stored: list[StoredExecution], live: list[dict[str, Any]]) -> list[StoredExecution]:
    """The ``stored`` executions (``datadir.stored_executions``) not among ``live``: earlier runs',
    newest first. One is the same as a live one when its ARN and start date are (names repeat
    across runs)."""
    running = {(item["executionArn"], item["startDate"]) for item in live}
    return [e for e in reversed(stored) if (e.arn, e.description.get("startDate")) not in running]


def observe_stored(stored: StoredExecution, record: JobRecord | None) -> Observation:
    """What :func:`observe` shows, for an execution kept in the data folder."""
    described = stored.description
    return Observation(
        execution_arn=stored.arn,
        status=stored.status,
        timeline=build_timeline(stored.history),
        record=record,
        error=described.get("error"),
        cause=described.get("cause"),
        earlier_run=stored.run,
    )


def stored_record(data_dir: Path, described: dict[str, Any]) -> JobRecord | None:
    """The job record of an execution as the data folder's last snapshot of the table holds it."""
    video_id = _video_id_of(described)
    for item in datadir.stored_items(data_dir) if video_id else ():
        if item.get(TABLE_KEY, {}).get("S") == video_id:
            return jobs_table.record_of_item(item)
    return None


def follow(
    aws: Deployment,
    execution_arn: str,
    *,
    timeout: float,
    on_update: Callable[[Observation], None] | None = None,
    interval: float = 0.3,
) -> Observation:
    """Observe until the execution ends or ``timeout`` seconds pass (status then still RUNNING)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = observe(aws, execution_arn)
        if on_update is not None:
            on_update(seen)
        if seen.finished or time.monotonic() >= deadline:
            return seen
        time.sleep(interval)


def record_of_execution(aws: Deployment, described: dict[str, Any]) -> JobRecord | None:
    """The job record an execution wrote: looked up by its execution input's job id."""
    video_id = _video_id_of(described)
    return read_record(aws, video_id) if video_id else None


def _video_id_of(described: dict[str, Any]) -> str | None:
    try:
        request = JobRequest.model_validate_json(described.get("input") or "")
    except ValueError:
        return None
    return video_id_for(request.resolved_job_id())


def read_record(aws: Deployment, video_id: str) -> JobRecord | None:
    """The job record as DynamoDB holds it, or None."""
    return jobs_table.get(video_id, table=aws.names.table, client=aws.client("dynamodb"))


def download(aws: Deployment, s3_uri: str, target: Path) -> Path:
    """Copy an object of the local bucket to a local file."""
    bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    aws.client("s3").download_file(bucket, key, str(target))
    return target


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class RunResult:
    """What ``vidp run`` reports: the README's ``--json`` object."""

    status: str
    video_id: str
    job_id: str
    execution_arn: str
    output_path: str | None
    observation: Observation

    def as_json(self) -> dict[str, Any]:
        record = self.observation.record
        return {
            "status": self.status,
            "video_id": self.video_id,
            "job_id": self.job_id,
            "execution_arn": self.execution_arn,
            "output_path": self.output_path,
            "record": record.shown() if record else None,
            "timeline": [
                {"state": run.name, "type": run.type, "seconds": run.seconds, "attempts": run.attempts,
                 "retries": run.retries, "errors": run.errors}
                for run in self.observation.timeline
            ],
        }  # fmt: skip


def run_job(
    aws: Deployment,
    request_fields: dict[str, Any],
    video: Path,
    srt: str,
    *,
    out_dir: Path,
    timeout: float,
    on_update: Callable[[Observation], None] | None = None,
) -> RunResult:
    """Upload the inputs, start the pipeline for them, follow it, and fetch the output if saved."""
    video_uri, subtitles = upload_inputs(aws, video, srt)
    request = JobRequest.model_validate(
        {**request_fields, "video": {"s3_uri": video_uri}, "subtitles": subtitles}
    )
    starter = Starter(aws.names.state_machine_arn, client=aws.client("stepfunctions"))
    execution_arn = starter.start(request).execution_arn
    seen = follow(aws, execution_arn, timeout=timeout, on_update=on_update)
    output_path = None
    if seen.status == "SUCCEEDED" and seen.record is not None and seen.record.s3_uri:
        name = seen.record.s3_uri.rsplit("/", 1)[-1]
        output_path = str(download(aws, seen.record.s3_uri, out_dir / name).resolve())
    job_id = request.resolved_job_id()
    return RunResult(seen.status, video_id_for(job_id), job_id, execution_arn, output_path, seen)
