"""The soak's invariants on hand-made observations: each holds for a clean run and names what
breaks it; and the report made of them. (The soak itself, against the local AWS:
tests/integration/test_soak.py.)"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.soak.checks import INVARIANTS, Violation, check_all
from bench.soak.mix import JobSpec, Mix, build_mix, hostile
from bench.soak.model import (
    FAILED_EVENT,
    PROCESSED_EVENT,
    REJECTED_EVENT,
    CallbackView,
    ExecutionView,
    JobView,
    Observation,
    ProbeResult,
    ProcessFinding,
    RecordView,
)
from bench.soak.report import percentile, write_report
from bench.soak.run import FaultRecord, SoakConfig, SoakResult
from bench.soak.schedule import build_schedule

ARN = "arn:aws:states:us-east-1:123456789012:execution:vidp-local-pipeline:"


def execution(name: str, status: str = "SUCCEEDED", **fields: object) -> ExecutionView:
    return ExecutionView(arn=ARN + name, status=status, started=100.0, stopped=104.0, **fields)  # type: ignore[arg-type]


def saved_job(key: str = "j000") -> tuple[JobView, ExecutionView]:
    run = execution(f"job-{key}")
    record = RecordView(
        video_id=f"vid-{key}", job_id=f"job-{key}", status="saved", execution_arn=run.arn,
        s3_uri=f"s3://bucket/videos/vid-{key}/clip_360p.mp4", duration=1.0,
    )  # fmt: skip
    job = JobView(
        spec=JobSpec(key, "valid"),
        job_id=record.job_id,
        executions=[run.arn],
        submitted=True,
        record=record,
        outputs=[f"videos/vid-{key}/clip_360p.mp4"],
        callbacks=[CallbackView(0, True, f"msg_job-{key}_completed", "completed", True)],
        events=[PROCESSED_EVENT],
    )
    return job, run


def failed_job(
    spec: JobSpec, code: str = "INVALID_MEDIA", status: str = "FAILED"
) -> tuple[JobView, ExecutionView]:
    run = execution(f"job-{spec.key}", status)
    record = RecordView(
        video_id=f"vid-{spec.key}", job_id=f"job-{spec.key}", status="failed", execution_arn=run.arn,
        error_code=code, error_message="clip.mp4: not a readable video",
    )  # fmt: skip
    callbacks = (
        [CallbackView(0, True, f"msg_job-{spec.key}_failed", "failed", True)] if spec.has_callback_url else []
    )
    job = JobView(
        spec=spec, job_id=record.job_id, executions=[run.arn], submitted=True, record=record,
        callbacks=callbacks, events=[FAILED_EVENT],
    )  # fmt: skip
    return job, run


def observe(*pairs: tuple[JobView, ExecutionView], **fields: object) -> Observation:
    return Observation(
        jobs=[job for job, _ in pairs], executions={run.arn: run for _, run in pairs}, **fields
    )  # type: ignore[arg-type]


def invariants(obs: Observation) -> set[str]:
    return {violation.invariant for violation in check_all(obs)}


def test_a_clean_run_violates_nothing() -> None:
    obs = observe(
        saved_job("j000"),
        failed_job(hostile("j001", "bad_media", "random-bytes")),
        failed_job(replace(JobSpec("j002", "valid"), process_fault="stop_execution"), "ABORTED", "ABORTED"),
    )
    obs.jobs[2].stopped = True

    assert check_all(obs) == []


def test_every_invariant_has_a_name_the_report_and_the_test_use() -> None:
    assert list(INVARIANTS) == [
        "terminal", "recorded", "accounted", "outcome", "consistent", "outputs", "callbacks", "events",
        "work_empty", "processes", "scratch", "secrets", "clean_errors", "uploads_rejected", "probes",
        "restart",
    ]  # fmt: skip


def test_a_running_or_vanished_execution_and_a_submission_that_started_nothing_are_not_terminal() -> None:
    running_job, running = saved_job("j000")
    gone_job, _ = saved_job("j001")
    nothing = JobView(spec=JobSpec("j002v2", "reupload", "v2", callback="none"), submitted=True)

    obs = Observation(
        jobs=[running_job, gone_job, nothing], executions={running.arn: replace(running, status="RUNNING")}
    )
    found = [v for v in check_all(obs) if v.invariant == "terminal"]

    assert [(v.subject, v.message.split(": ", 1)[1]) for v in found] == [
        ("j000", "execution still RUNNING"),
        ("j001", f"execution {ARN}job-j001 is gone"),
        ("j002v2", "nothing started for it"),
    ]


def test_a_record_left_processing_or_missing_breaks_recorded_and_the_count() -> None:
    stuck, run = saved_job("j000")
    stuck.record = replace(stuck.record, status="processing")  # type: ignore[type-var]
    missing, other = failed_job(hostile("j001", "non_object", "string"))
    missing.record = None

    found = check_all(observe((stuck, run), (missing, other)))

    assert [str(v) for v in found if v.invariant in {"recorded", "accounted"}] == [
        "[recorded] j000: valid: record still processing; execution SUCCEEDED",
        "[recorded] j001: non_object/string: no job record; execution FAILED",
        "[accounted] -: 0 saved + 0 failed = 0, not 2 submitted (1 no record, 1 processing)",
    ]


def test_a_valid_job_failed_by_transient_faults_breaks_outcome_unless_every_attempt_was_hit() -> None:
    job, run = failed_job(JobSpec("j000", "valid"), "TIMEOUT")

    assert "outcome" in invariants(observe((job, run)))
    job.faulted_attempts = 3
    assert "outcome" not in invariants(observe((job, run)))


def test_bad_input_must_fail_with_its_code() -> None:
    spec = hostile("j000", "bad_media", "random-bytes")
    wrong_code = failed_job(spec, "INTERNAL_ERROR")
    saved, run = saved_job("j001")
    saved.spec = hostile("j001", "foreign_font", "other-bucket")

    found = [str(v) for v in check_all(observe(wrong_code, (saved, run))) if v.invariant == "outcome"]

    assert found == [
        "[outcome] j000: bad_media/random-bytes: failed with INTERNAL_ERROR, not INVALID_MEDIA",
        "[outcome] j001: foreign_font/other-bucket: saved, but this input must be refused",
    ]


def test_a_stopped_execution_must_end_aborted_and_its_job_failed_aborted() -> None:
    job, run = failed_job(JobSpec("j000", "valid", process_fault="stop_execution"), "TIMEOUT")
    job.stopped = True

    found = [v.message for v in check_all(observe((job, run))) if v.invariant == "outcome"]

    assert found == [
        "valid: StopExecution was accepted, but the execution ended FAILED (None)",
        "valid: the job is failed TIMEOUT, not ABORTED",
    ]


def test_an_execution_cut_short_by_a_restart_needs_its_job_failed_aborted() -> None:
    job, run = saved_job("j000")
    job.record = replace(job.record, status="processing")  # type: ignore[type-var]
    cut = replace(run, status="RUNNING", stopped=None, lost_in_restart=True)
    assert invariants(observe((job, cut))) >= {"recorded"}
    assert "terminal" not in invariants(observe((job, cut)))  # its history may live elsewhere now

    job.record = replace(job.record, status="failed", error_code="ABORTED", error_message="stopped")  # type: ignore[type-var]
    job.callbacks = [CallbackView(0, True, "msg_job-j000_failed", "failed", True)]
    job.events, job.outputs = [FAILED_EVENT], []
    assert check_all(observe((job, cut))) == []


def test_a_job_saved_just_before_the_local_aws_stopped_is_not_an_aborted_one() -> None:
    job, run = saved_job("j000")  # listed RUNNING just before the stop, saved before it took effect
    cut = replace(run, status="RUNNING", stopped=None, lost_in_restart=True)

    assert check_all(observe((job, cut))) == []
    bad, bad_run = failed_job(hostile("j001", "bad_media", "random-bytes"))  # it failed on its own
    assert check_all(observe((bad, replace(bad_run, status="RUNNING", lost_in_restart=True)))) == []


def test_a_stopped_or_timed_out_execution_may_have_saved_its_job_first_but_a_failed_one_not() -> None:
    job, run = saved_job("j000")

    assert check_all(observe((job, replace(run, status="ABORTED")))) == []
    assert check_all(observe((job, replace(run, status="TIMED_OUT")))) == []
    job.stopped = True  # the soak's own StopExecution came mid-encode: before any save
    assert [v.message for v in check_all(observe((job, replace(run, status="ABORTED"))))] == [
        "valid: the job is saved, not failed ABORTED"
    ]


def test_an_id_conflict_must_fail_and_leave_the_existing_job_alone() -> None:
    target, target_run = saved_job("j000")
    conflict = JobView(
        spec=hostile("j001", "job_id_conflict", "other-request"), job_id=target.job_id, submitted=True,
        executions=[ARN + "conflict"], target_record=target.record, target_executions=[target_run.arn],
    )  # fmt: skip
    succeeded = execution("conflict", "SUCCEEDED")

    found = [
        v.message
        for v in check_all(observe((target, target_run), (conflict, succeeded)))
        if v.subject == "j001"
    ]

    assert found == [
        "job_id_conflict/other-request: "
        "an existing job id with another request SUCCEEDED instead of failing as a conflict"
    ]
    assert check_all(observe((target, target_run), (conflict, replace(succeeded, status="FAILED")))) == []


def test_execution_and_record_must_agree() -> None:
    job, run = saved_job("j000")
    failed, failed_run = failed_job(hostile("j001", "bad_media", "random-bytes"))

    found = check_all(
        observe((job, replace(run, status="FAILED")), (failed, replace(failed_run, status="SUCCEEDED")))
    )

    assert [str(v) for v in found if v.invariant == "consistent"] == [
        "[consistent] j000: valid: execution FAILED, job saved",
        "[consistent] j001: bad_media/random-bytes: execution SUCCEEDED, job failed",
    ]


def test_outputs_exactly_one_for_saved_none_for_failed_no_strays() -> None:
    two, run = saved_job("j000")
    two.outputs = [*two.outputs, "videos/vid-j000/clip_360p (1).mp4"]
    failed, other = failed_job(hostile("j001", "bad_media", "random-bytes"))
    failed.outputs = ["videos/vid-j001/clip_360p.mp4"]

    obs = observe((two, run), (failed, other), orphan_outputs=["videos/x/y.mp4"])

    found = [v.subject for v in check_all(obs) if v.invariant == "outputs"]

    assert found == ["j000", "j001", "-"]


@pytest.mark.parametrize(
    ("callbacks", "problem"),
    [
        ([], "0 callbacks delivered, not 1 (job saved)"),
        ([CallbackView(0, True, "a", "completed", True), CallbackView(1, True, "a", "completed", True)],
         "webhook id a delivered 2 times"),
        ([CallbackView(0, True, "a", "completed", True), CallbackView(1, True, "b", "completed", True)],
         "2 deliveries (webhook ids), not one"),
        ([CallbackView(0, True, "a", "failed", True)], "callback says ['failed'], the job is saved"),
        ([CallbackView(0, True, "a", "completed", False)], "a callback whose signature does not verify"),
    ],
)  # fmt: skip
def test_callbacks_one_delivery_with_the_jobs_outcome(callbacks: list[CallbackView], problem: str) -> None:
    job, run = saved_job()
    job.callbacks = callbacks

    assert problem in [
        v.message.split(": ", 1)[1] for v in check_all(observe((job, run))) if v.invariant == "callbacks"
    ]


def test_retries_of_one_delivery_are_not_duplicates() -> None:
    job, run = saved_job()
    job.callbacks = [
        CallbackView(0, False, "a", "completed", True),
        CallbackView(1, True, "a", "completed", True),
    ]

    assert check_all(observe((job, run))) == []


def test_events_must_match_the_outcome() -> None:
    job, run = saved_job()
    job.events = [FAILED_EVENT]

    assert [v.message for v in check_all(observe((job, run))) if v.invariant == "events"] == [
        "valid: no 'VidP Video Processed' event (saved)",
        "valid: a 'VidP Video Failed' event, but it is saved",
    ]


def test_leftovers_work_processes_scratch_tokens() -> None:
    job, run = saved_job()
    job.token_in_history = 23
    job.process_last_seen = run.stopped + 100  # type: ignore[operator]
    obs = observe(
        (job, run),
        work_keys=["work/job-j000/output.mp4"],
        processes=[ProcessFinding(42, "ffmpeg", "job-j000", "kept running 1 s after its task was SIGKILLed")],
        scratch=["/tmp/x/vidp-task-abc"],
    )

    found = [str(v) for v in check_all(obs)]

    assert found == [
        "[work_empty] -: 1 objects in 1 work/ folders left: j000:job-j000",
        "[processes] j000: ffmpeg pid 42: kept running 1 s after its task was SIGKILLed",
        "[processes] j000: its task ran 100 s after its execution SUCCEEDED",
        "[scratch] -: 1 scratch folders left: /tmp/x/vidp-task-abc",
        "[secrets] j000: the callback URL's token is in 23 history events",
    ]


def test_a_stack_trace_or_a_multi_line_message_is_not_a_clean_error() -> None:
    job, run = failed_job(hostile("j000", "non_object", "string"), "INVALID_INPUT")
    cause = (
        '{"errorMessage": "1 validation error", "errorType": "ValidationError", "stackTrace": ["  File x"]}'
    )
    job.record = replace(job.record, error_message="line one\nline two")  # type: ignore[type-var]

    found = [
        v.message
        for v in check_all(observe((job, replace(run, cause=cause))))
        if v.invariant == "clean_errors"
    ]

    assert found == [
        "non_object/string: a stack trace in the Cause (None)",
        "non_object/string: a multi-line error message",
    ]


def test_a_bad_sidecar_starts_nothing_and_is_reported() -> None:
    quiet = JobView(spec=hostile("j000", "bad_sidecar", "not-json"), submitted=True)
    started = JobView(spec=hostile("j001", "bad_sidecar", "missing"), submitted=True, executions=[ARN + "x"],
                      rejection_events=1)  # fmt: skip
    obs = Observation(jobs=[quiet, started], executions={ARN + "x": execution("x")})

    assert [str(v) for v in check_all(obs) if v.invariant == "uploads_rejected"] == [
        "[uploads_rejected] j000: bad_sidecar/not-json: no 'VidP Upload Rejected' event",
        f"[uploads_rejected] j001: bad_sidecar/missing: it started ['{ARN}x']",
    ]
    assert REJECTED_EVENT == "VidP Upload Rejected"


def test_a_reupload_must_bring_the_new_content() -> None:
    job, run = saved_job("j000v2")
    job.spec, job.expected_duration = JobSpec("j000v2", "reupload", "v2", callback="none", clip="v2"), 2.0
    job.callbacks = []

    assert [v.invariant for v in check_all(observe((job, run)))] == ["outcome"]


def test_probes_and_restart() -> None:
    obs = Observation(
        jobs=[], executions={}, probes=[ProbeResult("browser-origin", False, "HTTP 200")],
        restart_requested=True, restart_error="LocalAws has no data_dir",
    )  # fmt: skip

    assert check_all(obs) == [
        Violation("probes", "browser-origin", "HTTP 200"),
        Violation("restart", "-", "LocalAws has no data_dir"),
    ]


def test_the_mix_is_reproducible_and_has_every_hostile_kind() -> None:
    first, again = build_mix(30, seed=4), build_mix(30, seed=4)

    assert first.all() == again.all()
    kinds = {spec.kind for spec in first.all()}
    assert kinds >= {
        "valid", "duplicate", "non_object", "failure_key", "large_input", "deep_nesting", "foreign_font",
        "reupload", "job_id_conflict", "bad_sidecar", "bad_media", "missing_video", "unsafe_url",
    }  # fmt: skip
    keys = [spec.key for spec in first.jobs]
    conflict = next(spec for spec in first.jobs if spec.kind == "job_id_conflict")
    assert conflict.target is not None and keys.index(conflict.target) < keys.index(conflict.key)
    faulted = [spec for spec in first.jobs if spec.process_fault]
    assert sorted(spec.process_fault or "" for spec in faulted) == [
        "stop_execution",
        "task_sigkill",
        "task_sigterm",
    ]
    assert all(spec.clip == "long" for spec in faulted)


def test_the_schedule_puts_the_restart_midway() -> None:
    schedule = build_schedule(300, seed=1, restart=True)

    assert [fault.at for fault in schedule if fault.kind == "restart"] == [150]
    assert {fault.kind for fault in schedule} == {
        "ffmpeg_kill", "task_kill_early", "throttle_window", "throttle_burst", "restart"
    }  # fmt: skip
    assert schedule == sorted(schedule, key=lambda fault: (fault.at, fault.kind))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


def test_the_report_counts_times_faults_and_invariants(tmp_path: Path) -> None:
    saved, saved_run = saved_job("j000")
    failed, failed_run = failed_job(hostile("j001", "bad_media", "random-bytes"))
    failed.outputs = ["videos/vid-j001/clip_360p.mp4"]
    obs = observe((saved, saved_run), (failed, replace(failed_run, stopped=110.0)))
    faults = [
        FaultRecord("task_sigkill", 3.0, "j000", "SIGKILL"),
        FaultRecord("restart", 5.0, None, "-", False),
    ]
    result = SoakResult(
        config=SoakConfig(jobs=2, restart=False), run_id="soaktest", started_at="2026-01-02T03:04:05+00:00",
        seconds=12.5, observation=obs, violations=check_all(obs), throttle={"seen": 40, "throttled": 3},
        faults=faults, mix=Mix(jobs=[saved.spec, failed.spec]),
    )  # fmt: skip

    path = write_report(result, tmp_path)

    text = path.read_text(encoding="utf-8")
    assert path.name == "soak-20260102T030405.md" and (tmp_path / "soak-latest.md").read_text() == text
    assert "**1 saved + 1 failed = 2**" in text
    assert "| valid jobs, saved | 1 | 4.0 | 4.0 |" in text and "| every execution | 2 | 4.0 | 10.0 |" in text
    assert "| task_sigkill | 1 | 0 |" in text and "| restart | 0 | 1 |" in text
    assert "DynamoDB: 3 of 40 calls answered ProvisionedThroughputExceededException." in text
    assert "| outputs | 1 |" in text and "| terminal | ok |" in text
    assert "- j001: bad_media/random-bytes: failed, yet outputs ['videos/vid-j001/clip_360p.mp4']" in text
    detail = json.loads(path.with_suffix(".json").read_text())
    assert (detail["saved"], detail["failed"], detail["violations"]) == (1, 1, 1)
    assert detail["violation_list"] == [
        {"invariant": "outputs", "subject": "j001",
         "message": "bad_media/random-bytes: failed, yet outputs ['videos/vid-j001/clip_360p.mp4']"}
    ]  # fmt: skip
