"""The soak's invariants: each a function of an ``Observation`` returning its violations.

A violation names the invariant, the submission it is about (``j017``, or ``-`` for the run) and
what was seen, in one line. ``check_all`` runs every invariant in ``INVARIANTS`` order; the
reduced soak test asserts each of them separately, so a failure says which one broke.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bench.soak.model import (
    COMPLETED_CALLBACK,
    FAILED,
    FAILED_CALLBACK,
    FAILED_EVENT,
    PROCESSED_EVENT,
    SAVED,
    TERMINAL,
    ExecutionView,
    JobView,
    Observation,
    RecordView,
)

TASK_ATTEMPTS = 3  # BurnAndCompress: the first attempt and two retries of a task failure
DURATION_TOLERANCE = 0.35  # seconds: an output's duration is its source's, within a frame or two
PROCESS_GRACE_SECONDS = 40.0  # ECS: SIGTERM, SIGKILL 30 s later (stopTimeout), and a poll or two
_SHOWN = 5


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str  # the job key, or "-" for the run as a whole
    message: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.message}"


Check = Callable[[Observation], list[Violation]]


def _label(job: JobView) -> str:
    spec = job.spec
    return f"{spec.kind}/{spec.variant}" if spec.variant else spec.kind


def needs_record(job: JobView) -> bool:
    """Must end with a job record: everything submitted but conflicts, rejected uploads and
    inputs StartExecution itself refused."""
    return job.submitted and job.spec.expect not in {"conflict", "rejected"} and job.refused is None


def owner(job: JobView, obs: Observation) -> ExecutionView | None:
    """The execution that runs the job: the one its record names, else the first one started."""
    if job.record is not None and job.record.execution_arn in job.executions:
        return obs.executions.get(job.record.execution_arn)
    return obs.executions.get(job.executions[0]) if job.executions else None


def _status_of(job: JobView, obs: Observation) -> str:
    run = owner(job, obs)
    return "no execution" if run is None else run.status


# --- the invariants -------------------------------------------------------------------------


def terminal(obs: Observation) -> list[Violation]:
    """Every submission that must start an execution started one, and every execution ended."""
    found = []
    for job in obs.jobs:
        if not job.submitted or job.spec.expect == "rejected" or job.refused is not None:
            continue
        if not job.executions:
            found.append(Violation("terminal", job.spec.key, f"{_label(job)}: nothing started for it"))
        for arn in job.executions:
            run = obs.executions.get(arn)
            if run is None:
                found.append(Violation("terminal", job.spec.key, f"{_label(job)}: execution {arn} is gone"))
            elif run.status not in TERMINAL and not run.lost_in_restart:
                found.append(
                    Violation("terminal", job.spec.key, f"{_label(job)}: execution still {run.status}")
                )
    return found


def recorded(obs: Observation) -> list[Violation]:
    """Every job ends with a record, saved or failed."""
    found = []
    for job in obs.jobs:
        if not needs_record(job):
            continue
        run = owner(job, obs)
        ended = f"execution {run.status}" + (f" ({run.error})" if run and run.error else "") if run else ""
        if job.record is None:
            found.append(
                Violation(
                    "recorded", job.spec.key, f"{_label(job)}: no job record; {ended or 'no execution'}"
                )
            )
        elif job.record.status not in {SAVED, FAILED}:
            found.append(
                Violation(
                    "recorded", job.spec.key, f"{_label(job)}: record still {job.record.status}; {ended}"
                )
            )
    return found


def accounted(obs: Observation) -> list[Violation]:
    """Saved + failed = jobs submitted (those that must end recorded)."""
    jobs = [job for job in obs.jobs if needs_record(job)]
    statuses = Counter(job.record.status if job.record else "no record" for job in jobs)
    ended = statuses[SAVED] + statuses[FAILED]
    if ended == len(jobs):
        return []
    rest = ", ".join(
        f"{count} {status}" for status, count in sorted(statuses.items()) if status not in {SAVED, FAILED}
    )
    message = (
        f"{statuses[SAVED]} saved + {statuses[FAILED]} failed = {ended}, not {len(jobs)} submitted ({rest})"
    )
    return [Violation("accounted", "-", message)]


def outcome(obs: Observation) -> list[Violation]:
    """Each submission ends as its kind must: valid jobs saved (faults are transient), bad input
    failed with its code, a stopped execution's job failed ABORTED, a conflict refused."""
    found: list[Violation] = []
    for job in obs.jobs:
        found.extend(
            Violation("outcome", job.spec.key, f"{_label(job)}: {problem}") for problem in _outcome(job, obs)
        )
    return found


def _outcome(job: JobView, obs: Observation) -> list[str]:
    spec, record, run = job.spec, job.record, owner(job, obs)
    if not job.submitted or spec.expect == "rejected":
        return []
    if spec.expect == "conflict":
        return _conflict(job, run)
    if spec.expect == "refused_or_failed" and job.refused is not None:
        return []
    if job.stopped or (run is not None and (run.status in {"ABORTED", "TIMED_OUT"} or _cut_by_restart(run))):
        return _stopped_outcome(job, record, run)
    if record is None or record.status not in {SAVED, FAILED}:
        return []  # the "recorded" invariant reports it
    if record.status == FAILED:
        return _failed_outcome(job, record)
    return _saved_outcome(job, record)


def _cut_by_restart(run: ExecutionView) -> bool:
    """Running when the local AWS stopped, and not listed after its restart."""
    return run.lost_in_restart and run.status not in TERMINAL


def _stopped_outcome(job: JobView, record: RecordView | None, run: ExecutionView | None) -> list[str]:
    """A StopExecution (the soak's own, mid-encode) ends the execution ABORTED and the job failed
    ABORTED. An execution that ended ABORTED or TIMED_OUT otherwise, or that a stop of the local
    AWS cut short, may have saved its job first (the record's conditional writes keep it saved);
    if not, the job is failed with that code (or, for bad input, its own)."""
    ended = run.status if run is not None else "gone"
    cut = run is not None and _cut_by_restart(run)
    problems = []
    if job.stopped and ended != "ABORTED" and not cut:
        problems.append(
            f"StopExecution was accepted, but the execution ended {ended} ({run.error if run else '-'})"
        )
    if record is None or record.status not in {SAVED, FAILED}:
        return problems  # the "recorded" invariant reports it
    wanted = "ABORTED" if job.stopped or cut else ended
    if record.status == SAVED:
        if job.stopped or job.spec.expect not in {"saved", "recorded"}:
            problems.append(f"the job is saved, not failed {wanted}")
    elif record.error_code != wanted and not (
        job.spec.expect == "failed" and record.error_code in job.spec.error_codes
    ):
        problems.append(f"the job is failed {record.error_code}, not {wanted}")
    return problems


def _failed_outcome(job: JobView, record: RecordView) -> list[str]:
    spec, problems = job.spec, []
    if not (record.error_code and record.error_message):
        problems.append("failed without an error code and message")
    if spec.expect == "saved" and job.faulted_attempts < TASK_ATTEMPTS:
        problems.append(
            f"failed ({record.error_code}: {record.error_message}) after transient faults only{_how(job)}"
        )
    if spec.expect == "failed" and spec.error_codes and record.error_code not in spec.error_codes:
        problems.append(f"failed with {record.error_code}, not {' or '.join(spec.error_codes)}")
    return problems


def _how(job: JobView) -> str:
    return f"; {job.timeline}" if job.timeline else ""


def _saved_outcome(job: JobView, record: RecordView) -> list[str]:
    if job.spec.expect in {"failed", "refused_or_failed"}:
        return ["saved, but this input must be refused"]
    wanted = job.expected_duration
    if wanted is not None and (record.duration is None or abs(record.duration - wanted) > DURATION_TOLERANCE):
        return [f"the output lasts {record.duration} s, the content uploaded {wanted} s: not the new content"]
    return []


def _conflict(job: JobView, run: ExecutionView | None) -> list[str]:
    problems = []
    if run is not None and run.status == "SUCCEEDED":
        problems.append("an existing job id with another request SUCCEEDED instead of failing as a conflict")
    target = job.target_record
    if target is not None and job.target_executions and target.execution_arn not in job.target_executions:
        problems.append(f"the existing job's record now names execution {target.execution_arn}")
    return problems


def consistent(obs: Observation) -> list[Violation]:
    """The execution that runs a job and the job's record agree: SUCCEEDED is saved, FAILED failed."""
    found = []
    for job in obs.jobs:
        run, record = owner(job, obs), job.record
        if run is None or record is None or run.status not in TERMINAL or job.spec.expect == "conflict":
            continue
        if run.status == "SUCCEEDED" and record.status == FAILED:
            found.append(
                Violation("consistent", job.spec.key, f"{_label(job)}: execution SUCCEEDED, job failed")
            )
        # A stop or a timeout can come after the job was saved: only FAILED contradicts saved.
        if run.status == "FAILED" and record.status == SAVED:
            found.append(
                Violation("consistent", job.spec.key, f"{_label(job)}: execution {run.status}, job saved")
            )
    return found


def outputs(obs: Observation) -> list[Violation]:
    """A saved job has exactly one output, where its record says; a failed one none; no strays."""
    found = []
    for job in obs.jobs:
        record = job.record
        if record is None or record.status not in {SAVED, FAILED}:
            continue
        if record.status == SAVED:
            key = (record.s3_uri or "").partition("://")[2].partition("/")[2]
            if job.outputs != [key]:
                found.append(
                    Violation(
                        "outputs", job.spec.key, f"{_label(job)}: saved at {key!r}, outputs {job.outputs}"
                    )
                )
        elif job.outputs:
            found.append(
                Violation("outputs", job.spec.key, f"{_label(job)}: failed, yet outputs {job.outputs}")
            )
    if obs.orphan_outputs:
        shown = ", ".join(obs.orphan_outputs[:_SHOWN])
        found.append(Violation("outputs", "-", f"{len(obs.orphan_outputs)} outputs of no job: {shown}"))
    return found


def callbacks(obs: Observation) -> list[Violation]:
    """One delivery per job that gave a callback URL, its outcome the record's, signed, never twice."""
    found: list[Violation] = []
    for job in obs.jobs:
        found.extend(Violation("callbacks", job.spec.key, f"{_label(job)}: {p}") for p in _callbacks(job))
    for path in obs.unexpected_callbacks:
        found.append(Violation("callbacks", "-", f"a callback to {path}, a path no job was given"))
    return found


def _callbacks(job: JobView) -> list[str]:
    spec = job.spec
    if not spec.has_callback_url:
        return [f"{len(job.callbacks)} callbacks, but it gave no callback URL"] if job.callbacks else []
    if not job.submitted:
        return []
    problems = []
    accepted = [call for call in job.callbacks if call.accepted]
    ids = Counter(call.webhook_id for call in accepted)
    if len({call.webhook_id for call in job.callbacks}) > 1:
        problems.append(f"{len({c.webhook_id for c in job.callbacks})} deliveries (webhook ids), not one")
    problems += [f"webhook id {wid} delivered {n} times" for wid, n in ids.items() if n > 1]
    if any(not call.verified for call in job.callbacks):
        problems.append("a callback whose signature does not verify")
    record = job.record
    expected = None
    if record is not None and record.status in {SAVED, FAILED}:
        expected = COMPLETED_CALLBACK if record.status == SAVED else FAILED_CALLBACK
    outcomes = [call.outcome for call in accepted]
    if spec.callback == "one" and len(accepted) != 1:
        problems.append(
            f"{len(accepted)} callbacks delivered, not 1"
            + ("" if accepted else f" (job {_record_state(job)})")
        )
    if spec.callback == "at_most_one" and len(accepted) > 1:
        problems.append(f"{len(accepted)} callbacks delivered, not at most 1")
    if expected is not None and any(got != expected for got in outcomes):
        problems.append(f"callback says {outcomes}, the job is {record.status if record else '?'}")
    return problems


def _record_state(job: JobView) -> str:
    return job.record.status if job.record else "without a record"


def events(obs: Observation) -> list[Violation]:
    """A finished job's outcome was put as an event (Processed or Failed), never the other one."""
    found = []
    for job in obs.jobs:
        record = job.record
        if record is None or record.status not in {SAVED, FAILED} or job.spec.expect == "conflict":
            continue
        wanted, other = (
            (PROCESSED_EVENT, FAILED_EVENT) if record.status == SAVED else (FAILED_EVENT, PROCESSED_EVENT)
        )
        if wanted not in job.events:
            found.append(
                Violation("events", job.spec.key, f"{_label(job)}: no {wanted!r} event ({record.status})")
            )
        if other in job.events:
            found.append(
                Violation(
                    "events", job.spec.key, f"{_label(job)}: a {other!r} event, but it is {record.status}"
                )
            )
    return found


def work_empty(obs: Observation) -> list[Violation]:
    """Nothing is left under work/."""
    if not obs.work_keys:
        return []
    folders = sorted({key.split("/")[1] if key.count("/") > 1 else key for key in obs.work_keys})
    by_job = {job.job_id: job.spec.key for job in obs.jobs if job.job_id}
    shown = ", ".join(f"{by_job.get(folder, '?')}:{folder[:16]}" for folder in folders[:_SHOWN])
    message = f"{len(obs.work_keys)} objects in {len(folders)} work/ folders left: {shown}"
    return [Violation("work_empty", "-", message)]


def processes(obs: Observation) -> list[Violation]:
    """No ffmpeg or task process of the run is orphaned, or outlives its job's execution."""
    by_job = {job.job_id: job.spec.key for job in obs.jobs if job.job_id}
    found = [
        Violation(
            "processes", by_job.get(item.job_id or "", "-"), f"{item.name} pid {item.pid}: {item.problem}"
        )
        for item in obs.processes
    ]
    for job in obs.jobs:
        run = owner(job, obs)
        if job.process_last_seen is None or run is None or run.stopped is None:
            continue
        late = job.process_last_seen - run.stopped
        if late > PROCESS_GRACE_SECONDS:
            found.append(
                Violation(
                    "processes", job.spec.key, f"its task ran {late:.0f} s after its execution {run.status}"
                )
            )
    return found


def scratch(obs: Observation) -> list[Violation]:
    """No task scratch folder is left on disk."""
    if not obs.scratch:
        return []
    return [
        Violation(
            "scratch", "-", f"{len(obs.scratch)} scratch folders left: {', '.join(obs.scratch[:_SHOWN])}"
        )
    ]


def secrets(obs: Observation) -> list[Violation]:
    """The callback URL's query (a token) is in no history event after the caller's own input."""
    return [
        Violation(
            "secrets", job.spec.key, f"the callback URL's token is in {job.token_in_history} history events"
        )
        for job in obs.jobs
        if job.token_in_history
    ]


TRACEBACK_MARKS = ("Traceback (most recent call last)", '"stackTrace"')


def clean_errors(obs: Observation) -> list[Violation]:
    """Errors reach users as one line: no stack trace in a Cause, no multi-line error message."""
    found = []
    for job in obs.jobs:
        for arn in job.executions:
            run = obs.executions.get(arn)
            if run is not None and run.cause and any(mark in run.cause for mark in TRACEBACK_MARKS):
                found.append(
                    Violation(
                        "clean_errors",
                        job.spec.key,
                        f"{_label(job)}: a stack trace in the Cause ({run.error})",
                    )
                )
        message = job.record.error_message if job.record else None
        if message and ("\n" in message or any(mark in message for mark in TRACEBACK_MARKS)):
            found.append(
                Violation("clean_errors", job.spec.key, f"{_label(job)}: a multi-line error message")
            )
    return found


def uploads_rejected(obs: Observation) -> list[Violation]:
    """An upload whose sidecar is bad or missing starts nothing, and says so (an event)."""
    found = []
    for job in obs.jobs:
        if job.spec.expect != "rejected" or not job.submitted:
            continue
        if job.executions:
            found.append(
                Violation("uploads_rejected", job.spec.key, f"{_label(job)}: it started {job.executions}")
            )
        if job.rejection_events == 0:
            found.append(
                Violation("uploads_rejected", job.spec.key, f"{_label(job)}: no 'VidP Upload Rejected' event")
            )
    return found


def probes(obs: Observation) -> list[Violation]:
    """The local AWS refuses what only an attacker would send it."""
    return [Violation("probes", probe.name, probe.detail) for probe in obs.probes if not probe.refused]


def restart(obs: Observation) -> list[Violation]:
    """When asked for, the local AWS was restarted midway on its data folder."""
    if not obs.restart_requested:
        return []
    if obs.restart_error is not None:
        return [Violation("restart", "-", obs.restart_error)]
    if obs.restarts == 0:
        return [Violation("restart", "-", "the restart midway never happened")]
    return []


INVARIANTS: dict[str, Check] = {
    "terminal": terminal,
    "recorded": recorded,
    "accounted": accounted,
    "outcome": outcome,
    "consistent": consistent,
    "outputs": outputs,
    "callbacks": callbacks,
    "events": events,
    "work_empty": work_empty,
    "processes": processes,
    "scratch": scratch,
    "secrets": secrets,
    "clean_errors": clean_errors,
    "uploads_rejected": uploads_rejected,
    "probes": probes,
    "restart": restart,
}


def check_all(obs: Observation) -> list[Violation]:
    """Every invariant's violations, in ``INVARIANTS`` order."""
    return [violation for check in INVARIANTS.values() for violation in check(obs)]
