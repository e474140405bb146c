"""What the soak saw at the end of a run: plain data the checks judge and the report prints.

It is read back from the local AWS as a user of AWS would see it (executions, the jobs table,
the bucket, the events), from the scripted servers (callbacks received) and from /proc; the
checks (``checks``) take only this, so they can be tested on hand-made observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.soak.mix import JobSpec

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
SAVED, FAILED = "saved", "failed"
COMPLETED_CALLBACK, FAILED_CALLBACK = "completed", "failed"
PROCESSED_EVENT, FAILED_EVENT, REJECTED_EVENT = (
    "VidP Video Processed",
    "VidP Video Failed",
    "VidP Upload Rejected",
)


@dataclass(frozen=True)
class ExecutionView:
    """One execution, as DescribeExecution shows it (times in epoch seconds)."""

    arn: str
    status: str
    started: float
    stopped: float | None = None
    error: str | None = None
    cause: str | None = None
    # Listed before a restart of the local AWS, not after it: as last seen before the restart.
    lost_in_restart: bool = False

    @property
    def seconds(self) -> float | None:
        return None if self.stopped is None else self.stopped - self.started


@dataclass(frozen=True)
class RecordView:
    """The job record's fields the checks read."""

    video_id: str
    job_id: str
    status: str
    execution_arn: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    s3_uri: str | None = None
    duration: float | None = None
    callback_status: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class CallbackView:
    """One POST the callback receiver got on a job's path; ``accepted``: it answered 2xx."""

    index: int
    accepted: bool
    webhook_id: str | None
    outcome: str | None  # the payload's "status": completed / failed
    verified: bool


@dataclass
class JobView:
    """One submission and everything seen of it."""

    spec: JobSpec
    job_id: str | None = None
    executions: list[str] = field(default_factory=list)  # the first one owns the job
    refused: str | None = None  # StartExecution refused it, with this error code
    submitted: bool = False  # the harness got as far as submitting it (uploads: the video is in)
    record: RecordView | None = None
    outputs: list[str] = field(default_factory=list)  # keys under videos/{record.video_id}/
    callbacks: list[CallbackView] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # detail types of the events about this job
    faulted_attempts: int = 0  # task attempts a fault hit (injected or targeted)
    token_in_history: int = 0  # how many history events carry the callback URL's token
    expected_duration: float | None = None  # reupload: the duration of the content uploaded
    process_last_seen: float | None = None  # epoch seconds a process of this job was last alive
    rejection_events: int = 0  # bad_sidecar: "VidP Upload Rejected" events naming its key
    target_record: RecordView | None = None  # job_id_conflict: the record of the job it collides with
    target_executions: list[str] = field(default_factory=list)  # ... and the executions of that job
    stopped: bool = False  # a StopExecution of its execution was accepted
    timeline: str = ""  # how its execution went, state by state (kept for jobs not saved)
    video_uri: str | None = None  # uploads: the incoming/ object whose events start the job
    upload_started: float | None = None  # uploads: when the video went in (monotonic seconds)


@dataclass(frozen=True)
class ProcessFinding:
    """A process of the run that should not be there: ``problem`` says why."""

    pid: int
    name: str
    job_id: str | None
    problem: str


@dataclass(frozen=True)
class ProbeResult:
    """A direct try at the local AWS (not a job): ``refused`` is what must happen."""

    name: str
    refused: bool
    detail: str


@dataclass
class Observation:
    """Everything the checks judge."""

    jobs: list[JobView]
    executions: dict[str, ExecutionView]
    work_keys: list[str] = field(default_factory=list)
    orphan_outputs: list[str] = field(default_factory=list)  # videos/ objects no job accounts for
    processes: list[ProcessFinding] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    unexpected_callbacks: list[str] = field(default_factory=list)  # paths no job was given
    restart_requested: bool = False
    restart_error: str | None = None  # why the restart could not be done
    restarts: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
