"""Issue 8: every job ends recorded, whatever the caller sends and however the execution ends.

Each case goes through the real definition on the local AWS (moto's interpreter, the real steps,
the real task), is started the way a hostile caller would (StartExecution with boto3), and is
judged by what a user sees: the execution's status, the job record, the failure callback a real
receiver got, the event on the bus, the objects left, the task's process.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import state_machine
from pipeline.local.aws import LocalAws
from pipeline.local.jobs import read_record
from pipeline.models import JobRecord, JobRequest, video_id_for
from pipeline.samples import make_clip
from pipeline.timeline import build_timeline
from tests.conftest import SIMPLE_SRT
from tests.support.receiver import CallbackReceiver, Received

DEADLINE = 90.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(allow_loopback=True, task_environment={"VIDP_HEARTBEAT_SECONDS": "0.3"}) as local:
        yield local


@pytest.fixture(scope="module")
def receiver(aws: LocalAws) -> Iterator[CallbackReceiver]:
    with CallbackReceiver(aws.webhook_secret) as server:
        yield server


@pytest.fixture(scope="module")
def video(aws: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> str:
    clip = make_clip(
        tmp_path_factory.mktemp("media") / "clip.mp4", width=320, height=240, seconds=1.5, fps=15
    )
    aws.client("s3").upload_file(str(clip), aws.bucket, "uploads/recorded/clip.mp4")
    aws.client("s3").put_object(Bucket=aws.bucket, Key="uploads/recorded/clip.srt", Body=SIMPLE_SRT)
    return f"s3://{aws.bucket}/uploads/recorded/clip.mp4"


def valid(video: str, **fields: Any) -> dict[str, Any]:
    subtitles = {"s3_uri": video.replace(".mp4", ".srt")}
    return {
        "video": {"s3_uri": video},
        "subtitles": subtitles,
        "resolution": "360p",
        "preset": "ultrafast",
        **fields,
    }


def start(aws: LocalAws, payload: Any, *, machine: str | None = None) -> str:
    """StartExecution as any boto3 caller would: an input of any JSON, a name of its own."""
    sfn = aws.client("stepfunctions")
    started = sfn.start_execution(
        stateMachineArn=machine or aws.state_machine_arn,
        name=f"hostile-{time.monotonic_ns()}",
        input=json.dumps(payload),
    )
    arn: str = started["executionArn"]
    return arn


def wait_for_record(aws: LocalAws, video_id: str, status: str, timeout: float = 30.0) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = read_record(aws, video_id)
        if record is not None and record.status == status:
            return record
        if time.monotonic() > deadline:
            executions = aws.client("stepfunctions").list_executions(stateMachineArn=aws.state_machine_arn)
            ended = [(e["name"], e["status"]) for e in executions["executions"]][:5]
            results = aws.watcher.results[-3:] if aws.watcher else None
            raise AssertionError(f"{video_id}: {record}; latest executions {ended}; reconciled {results}")
        time.sleep(0.05)


def callbacks_for(receiver: CallbackReceiver, job_id: str, timeout: float = 15.0) -> list[Received]:
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in receiver.received if c.payload.get("job_id") == job_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def failed_events(aws: LocalAws, job_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        events = aws.events(wait_seconds=0.5)
        found = [
            e for e in events if e["detail-type"] == "VidP Video Failed" and e["detail"]["job_id"] == job_id
        ]
    return found


def keys(aws: LocalAws, prefix: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def keyed_by_execution(arn: str) -> str:
    return "job-" + hashlib.sha256(arn.encode()).hexdigest()[:32]


def wait_until_entered(aws: LocalAws, arn: str, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while state not in [run.name for run in build_timeline(aws.history(arn))]:
        assert time.monotonic() < deadline, f"{state} not entered"
        time.sleep(0.05)


def variant(aws: LocalAws, change: Any) -> str:
    """Another state machine from the pipeline's own rendered definition, ``change``d (shorter
    timeouts), watched by the reconciler like the pipeline."""
    definition = json.loads(state_machine.render(aws.deployed.substitutions))
    change(definition)
    machine = aws.create_state_machine(f"variant-{time.monotonic_ns()}", definition)
    assert aws.watcher is not None
    aws.watcher.watch(machine)
    return machine


# --- 1. input that is not an object ------------------------------------------------------------


@pytest.mark.parametrize("payload", ["a string", [1, 2], None, 42])
def test_an_input_that_is_not_an_object_is_recorded_failed_keyed_by_its_execution(
    aws: LocalAws, payload: Any
) -> None:
    arn = start(aws, payload)
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    assert "Traceback" not in described.get("cause", "")
    job_id = keyed_by_execution(arn)
    record = wait_for_record(aws, video_id_for(job_id), "failed")
    assert (record.job_id, record.execution_arn, record.error_code) == (job_id, arn, "INVALID_INPUT")
    assert record.failed_state == "ValidateInput"
    assert failed_events(aws, job_id)


# --- 2. a top-level "failure" key of the caller's ----------------------------------------------


@pytest.mark.parametrize("failure", ["not an object", ["a", "list"]])
def test_a_failure_key_of_the_callers_cannot_break_the_catch(
    aws: LocalAws, video: str, receiver: CallbackReceiver, failure: Any
) -> None:
    payload = valid(
        video, job_id=f"failure-key-{type(failure).__name__}", failure=failure, callback_url=receiver.url
    )
    arn = start(aws, payload)
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    record = wait_for_record(aws, video_id_for(payload["job_id"]), "failed")
    assert (record.execution_arn, record.error_code) == (arn, "INVALID_INPUT")
    assert "failure" in (record.error_message or "")
    [callback] = callbacks_for(receiver, payload["job_id"])
    assert callback.verified and callback.payload["error_code"] == "INVALID_INPUT"


# --- 3. input near the payload limit -------------------------------------------------------------


def test_a_300_kb_input_is_recorded_failed_with_a_clear_code(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    payload = valid(video, job_id="large-input", callback_url=receiver.url, metadata={"blob": "x" * 300_000})
    arn = start(aws, payload)
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED"
    record = wait_for_record(aws, video_id_for("large-input"), "failed")
    assert (record.execution_arn, record.error_code) == (arn, "INVALID_INPUT")
    assert "metadata" in (record.error_message or "")
    [callback] = callbacks_for(receiver, "large-input")
    assert callback.verified and callback.payload["error_code"] == "INVALID_INPUT"


# --- 4. deep nesting -----------------------------------------------------------------------------


def test_an_input_nested_500_deep_is_recorded_failed(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    deep: Any = "bottom"
    for _ in range(500):
        deep = [deep]
    payload = valid(video, job_id="deep-input", callback_url=receiver.url, metadata={"deep": deep})
    arn = start(aws, payload)
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED"
    record = wait_for_record(aws, video_id_for("deep-input"), "failed")
    assert (record.execution_arn, record.error_code) == (arn, "INVALID_INPUT")
    [callback] = callbacks_for(receiver, "deep-input")
    assert callback.verified and callback.payload["error_code"] == "INVALID_INPUT"


# --- 7. the same job id with another request -------------------------------------------------------


def test_an_existing_job_id_with_another_request_is_a_conflict_and_leaves_the_job_alone(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    first = valid(video, job_id="order-1", callback_url=receiver.url)
    done = aws.wait(start(aws, first), DEADLINE)
    assert done["status"] == "SUCCEEDED"
    saved = wait_for_record(aws, video_id_for("order-1"), "saved")
    outputs = keys(aws, f"videos/{saved.video_id}/")

    other = valid(video, job_id="order-1", callback_url=receiver.url, resolution="480p")
    arn = start(aws, other)
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED" and described["error"] == "JobConflict"
    assert "already exists with another request" in described["cause"]
    after = read_record(aws, saved.video_id)
    assert after == saved  # untouched: same status, execution, output, callback
    assert keys(aws, f"videos/{saved.video_id}/") == outputs
    assert [c.payload["status"] for c in callbacks_for(receiver, "order-1")] == ["completed"]
    assert failed_events(aws, "order-1", timeout=1.0) == []  # job order-1 did not fail


# --- 8. executions that skip every Catch ------------------------------------------------------------


def test_a_stopped_execution_is_recorded_aborted_its_task_stopped_and_work_cleaned(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(how="hang")
    payload = valid(video, job_id="stopped-job", callback_url=receiver.url)
    arn = start(aws, payload)
    wait_until_entered(aws, arn, "BurnAndCompress")
    aws.client("stepfunctions").stop_execution(executionArn=arn, cause="operator: wrong file")

    record = wait_for_record(aws, video_id_for("stopped-job"), "failed")
    assert (record.error_code, record.failed_state, record.execution_arn) == (
        "ABORTED",
        "BurnAndCompress",
        arn,
    )
    assert record.error_message == "the execution was stopped in BurnAndCompress"  # moto drops the cause
    [callback] = callbacks_for(receiver, "stopped-job")
    assert callback.verified and callback.payload["error_code"] == "ABORTED"
    [run] = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=30)[runs_before:]
    assert run.returncode is not None and run.returncode < 0  # stopped by a signal, not left running
    assert keys(aws, "work/stopped-job/") == []
    assert aws.wait(arn)["status"] == "ABORTED"


def test_an_execution_timeout_is_recorded_timed_out_and_its_task_stopped(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    def short(definition: dict[str, Any]) -> None:
        definition["TimeoutSeconds"] = 4

    machine = variant(aws, short)
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(how="hang")
    arn = start(aws, valid(video, job_id="timed-out-job", callback_url=receiver.url), machine=machine)

    assert aws.wait(arn, DEADLINE)["status"] == "TIMED_OUT"
    record = wait_for_record(aws, video_id_for("timed-out-job"), "failed")
    assert (record.error_code, record.failed_state) == ("TIMED_OUT", "BurnAndCompress")
    [callback] = callbacks_for(receiver, "timed-out-job")
    assert callback.verified and callback.payload["error_code"] == "TIMED_OUT"
    [run] = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=30)[runs_before:]
    assert run.returncode is not None and run.returncode < 0
    assert keys(aws, "work/timed-out-job/") == []


def test_a_task_that_times_out_is_stopped_before_the_next_attempt(aws: LocalAws, video: str) -> None:
    def no_heartbeat_for_long(definition: dict[str, Any]) -> None:
        definition["States"]["BurnAndCompress"]["HeartbeatSeconds"] = 6

    machine = variant(aws, no_heartbeat_for_long)
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(how="hang")
    payload = valid(video, job_id="hung-task-job")
    arn = start(aws, payload, machine=machine)

    described = aws.wait(arn, DEADLINE)
    assert described["status"] == "SUCCEEDED", described
    hung, retried = aws.ecs_runner.wait_for_runs(runs_before + 2, timeout=30)[runs_before:]
    assert hung.injected == "hang" and hung.returncode is not None and hung.returncode < 0
    assert retried.returncode == 0
    assert hung.ended_at is not None and hung.ended_at < retried.ended_at  # stopped, not left to run
    timeline = [run.name for run in build_timeline(aws.history(arn))]
    assert "StopTimedOutTask" in timeline and timeline.count("BurnAndCompress") >= 1
    assert wait_for_record(aws, video_id_for("hung-task-job"), "saved").progress == 100


# --- 14. the callback URL and its token ----------------------------------------------------------------


def test_the_callback_token_is_only_in_the_callers_input_never_in_later_states(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    token = "tok-" + hashlib.sha256(b"secret").hexdigest()[:20]
    url = f"{receiver.url}?token={token}"
    arn = start(aws, valid(video, job_id="token-job", callback_url=url))
    assert aws.wait(arn, DEADLINE)["status"] == "SUCCEEDED"
    [callback] = callbacks_for(receiver, "token-job")
    assert callback.verified

    history = aws.history(arn)
    with_token = [event["type"] for event in history if token in json.dumps(event, default=str)]
    # The caller's own input, entering the first state: nothing after ValidateInput carries it.
    assert with_token and len(with_token) <= 3, with_token
    first_exit = next(i for i, e in enumerate(history) if e["type"] == "TaskStateExited")
    assert not [e for e in history[first_exit:] if token in json.dumps(e, default=str)]
    assert callback.path.endswith(f"?token={token}")  # the caller still gets its own URL


def test_a_failed_job_keeps_its_callback_token_out_of_the_failure_branch(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    token = "tok-" + hashlib.sha256(b"failure").hexdigest()[:20]
    arn = start(
        aws, valid(video, job_id="token-failed", callback_url=f"{receiver.url}?token={token}", crf=99)
    )
    assert aws.wait(arn, DEADLINE)["status"] == "FAILED"
    assert callbacks_for(receiver, "token-failed")

    history = aws.history(arn)
    names = [e.get("stateEnteredEventDetails", {}).get("name") for e in history]
    first_failure_state = names.index("ValidationFailed")
    assert not [e for e in history[first_failure_state:] if token in json.dumps(e, default=str)]


def test_a_valid_request_still_succeeds_through_start_job(aws: LocalAws, video: str) -> None:
    # The door the product uses (pipeline.starter) is unchanged by all of the above.
    request = JobRequest.model_validate(valid(video, job_id="plain-job"))
    assert aws.wait(aws.start_job(request), DEADLINE)["status"] == "SUCCEEDED"


# --- 5. a font from another bucket ------------------------------------------------------------------


def test_a_font_from_another_bucket_is_refused_like_a_video_from_there(
    aws: LocalAws, video: str, receiver: CallbackReceiver
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="fonts/Brand.ttf", Body=b"\0\1\0\0 not really a font")
    style = {"font_file": "s3://someone-elses-bucket/fonts/Brand.ttf"}
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    arn = start(aws, valid(video, job_id="foreign-font", style=style, callback_url=receiver.url))
    described = aws.wait(arn, DEADLINE)

    assert described["status"] == "FAILED" and described["error"] == "InvalidInput"
    record = wait_for_record(aws, video_id_for("foreign-font"), "failed")
    assert (record.error_code, record.failed_state) == ("INVALID_INPUT", "ValidateInput")
    assert "style.font_file must be under" in (record.error_message or "")
    [callback] = callbacks_for(receiver, "foreign-font")
    assert callback.payload["error_code"] == "INVALID_INPUT"
    assert keys(aws, "work/foreign-font/") == []
    assert len(aws.ecs_runner.runs) == runs_before  # no task ever read it


# --- 8 (continued). a task that finishes after its job was ended keeps nothing ------------------------


def test_a_task_finishing_after_its_job_ended_takes_its_output_back(aws: LocalAws, video: str) -> None:
    from pipeline.adapters import jobs_table

    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    arn = start(aws, valid(video, job_id="ended-under-task"))
    wait_until_entered(aws, arn, "BurnAndCompress")
    # Someone else ended the job meanwhile (a reconciler, an operator) and cleaned work/: the
    # task still encodes and uploads, and must take back what it wrote.
    record = wait_for_record(aws, video_id_for("ended-under-task"), "processing")
    assert jobs_table.mark_failed(
        record.video_id, record.job_id, error_code="ABORTED", error_message="ended elsewhere",
        failed_state="BurnAndCompress", now=jobs_table.now_iso(), table=aws.table_name,
        client=aws.client("dynamodb"),
    )  # fmt: skip

    assert aws.wait(arn, DEADLINE)["status"] == "FAILED"
    runs = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=30)[runs_before:]
    assert runs and all("ended while its task ran" in run.stderr for run in runs), [r.stderr for r in runs]
    assert keys(aws, "work/ended-under-task/") == []
    assert keys(aws, f"videos/{record.video_id}/") == []
    after = read_record(aws, record.video_id)
    assert after is not None and (after.status, after.error_code) == ("failed", "ABORTED")
