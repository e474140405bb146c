"""The embedded local AWS: it starts and stops, holds the stack's resources, runs Lambda steps
in-process and ECS tasks as subprocesses through the task token, and starts jobs from uploads.

Judged by what a user of the real AWS would see: resources through the APIs, execution status
and history, objects, the job record. Every wait has a deadline.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import state_machine
from pipeline.local.aws import LocalAws, LocalAwsError
from pipeline.local.token_task import token_digest
from pipeline.models import WorkKeys
from tests.conftest import SIMPLE_SRT, ClipFactory

START_DEADLINE = 15.0
TOKEN_TASK = ("python", "-m", "pipeline.local.token_task")
FFMPEG_TASK = ("python", "-m", "pipeline.task")


class TranscodeFailed(Exception):
    """Raised by a stand-in handler: its class name must be the error Catch sees."""


def validate_duplicate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Stand-in ValidateInput: every job is 'already submitted', so the pipeline ends at once."""
    return {"duplicate": True, "request": event["request"], "started_at": event["started_at"]}


def transcode(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise TranscodeFailed(f"ffmpeg died on {event['name']}")


def greet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"hello": event["name"], "function": context.function_name}


STAND_INS = {"ValidateInput": validate_duplicate, "Transcode": transcode, "Greet": greet}


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(handlers=STAND_INS, task_environment={"VIDP_HEARTBEAT_SECONDS": "0.5"}) as local:
        yield local


def run(aws: LocalAws, definition: dict[str, Any], payload: Any, timeout: float = 30.0) -> dict[str, Any]:
    machine = aws.create_state_machine(f"test-{time.monotonic_ns()}", definition)
    arn = aws.start_execution(payload, name=f"run-{time.monotonic_ns()}", state_machine_arn=machine)
    return aws.wait(arn, timeout)


def types(aws: LocalAws, described: dict[str, Any]) -> list[str]:
    return [event["type"] for event in aws.history(described["executionArn"])]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- lifecycle (first: it needs the process to itself) -----------------------------------------


def test_starts_and_stops_within_deadlines_and_restores_the_environment() -> None:
    before = os.environ.get("AWS_ENDPOINT_URL")
    started = time.monotonic()
    local = LocalAws(handlers={}).start()
    try:
        assert time.monotonic() - started < START_DEADLINE
        port = local.port
        assert port_open(port)
        assert os.environ["AWS_ENDPOINT_URL"] == local.endpoint_url == f"http://127.0.0.1:{port}"
        assert os.environ["MOTO_PORT"] == str(port)
        with pytest.raises(LocalAwsError, match="already running"):
            LocalAws().start()
    finally:
        stopping = time.monotonic()
        local.stop()
    assert time.monotonic() - stopping < START_DEADLINE
    assert not port_open(port)
    assert os.environ.get("AWS_ENDPOINT_URL") == before


# --- resources -----------------------------------------------------------------------------------


def test_the_stack_resources_exist(aws: LocalAws) -> None:
    table = aws.client("dynamodb").describe_table(TableName="vidp-local-jobs")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "video_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "status-created_at-index": ["status", "created_at"],
        "source_video_id-index": ["source_video_id", "created_at"],
        "filename-index": ["filename", "created_at"],
        "batch_id-index": ["batch_id", "created_at"],
    }
    aws.client("s3").head_bucket(Bucket="vidp-local-media")

    sfn = aws.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=aws.state_machine_arn)
    assert machine["name"] == "vidp-local-pipeline"
    assert "${" not in machine["definition"]
    assert json.loads(machine["definition"]) == json.loads(state_machine.render(aws.deployed.substitutions))

    ecs = aws.client("ecs")
    definition = ecs.describe_task_definition(taskDefinition="vidp-local-ffmpeg")["taskDefinition"]
    container = definition["containerDefinitions"][0]
    assert (container["name"], container["command"]) == ("ffmpeg", list(FFMPEG_TASK))
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert ecs.describe_clusters(clusters=["vidp-local"])["clusters"][0]["status"] == "ACTIVE"


def test_env_gives_what_the_steps_need_and_a_webhook_secret(aws: LocalAws) -> None:
    env = aws.env()

    assert env["AWS_ENDPOINT_URL"] == aws.endpoint_url
    assert (env["VIDP_BUCKET"], env["VIDP_TABLE_NAME"], env["VIDP_EVENT_BUS_NAME"]) == (
        "vidp-local-media", "vidp-local-jobs", "vidp-local",
    )  # fmt: skip
    assert env["VIDP_WEBHOOK_SECRET"].startswith("whsec_") and len(env["VIDP_WEBHOOK_SECRET"]) > 30
    assert "VIDP_UNSAFE_ALLOW_LOOPBACK" not in env


def test_pipeline_events_can_be_read_back(aws: LocalAws) -> None:
    aws.client("events").put_events(Entries=[{
        "Source": "vidp.pipeline", "DetailType": "VidP Video Processed", "Detail": '{"job_id": "j"}',
        "EventBusName": "vidp-local",
    }])  # fmt: skip

    events = aws.events(wait_seconds=5)

    assert [(e["detail-type"], e["detail"]) for e in events] == [("VidP Video Processed", {"job_id": "j"})]


# --- Lambda steps in-process ----------------------------------------------------------------------


def lambda_state(aws: LocalAws, step: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": aws.names.function_arn(step), "Parameters": {"name.$": "$.name"},
            **fields}  # fmt: skip


def test_a_lambda_state_runs_the_python_handler_in_process(aws: LocalAws) -> None:
    definition = {"StartAt": "Greet", "States": {"Greet": lambda_state(aws, "Greet", End=True)}}

    described = run(aws, definition, {"name": "clip.mp4"})

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"hello": "clip.mp4", "function": "vidp-local-Greet"}


def test_a_raised_exception_class_name_is_the_error_catch_sees(aws: LocalAws) -> None:
    work = lambda_state(aws, "Transcode", Next="Done", Catch=[
        {"ErrorEquals": ["TranscodeFailed"], "ResultPath": "$.error", "Next": "Handled"}])  # fmt: skip
    definition = {"StartAt": "Work", "States": {
        "Work": work, "Handled": {"Type": "Pass", "End": True}, "Done": {"Type": "Succeed"}}}  # fmt: skip

    described = run(aws, definition, {"name": "clip.mp4"})

    error = json.loads(described["output"])["error"]
    assert error["Error"] == "TranscodeFailed"
    assert json.loads(error["Cause"])["errorMessage"] == "ffmpeg died on clip.mp4"
    assert "LambdaFunctionFailed" in types(aws, described)


# --- ECS tasks through the task token ----------------------------------------------------------


def token_state(aws: LocalAws, task_definition: str, heartbeat: int = 2) -> dict[str, Any]:
    parameters = aws.run_task_parameters(task_definition)
    parameters["Overrides"] = {"ContainerOverrides": [{"Name": "ffmpeg", "Environment": [
        {"Name": "VIDP_TASK_TOKEN", "Value.$": "$$.Task.Token"},
        {"Name": "VIDP_JOB_ID", "Value.$": "$.job_id"}]}]}  # fmt: skip
    return {"StartAt": "Work", "States": {"Work": {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.waitForTaskToken",
        "Parameters": parameters, "HeartbeatSeconds": heartbeat, "TimeoutSeconds": 60, "End": True,
        "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout", "TaskStopped"], "IntervalSeconds": 1,
                   "MaxAttempts": 2, "BackoffRate": 1.0}]}}}  # fmt: skip


@pytest.fixture(scope="module")
def token_task(aws: LocalAws) -> str:
    return aws.register_task_definition("vidp-test-token", TOKEN_TASK)


def scheduled_tokens(aws: LocalAws, described: dict[str, Any]) -> list[str]:
    """The token each attempt was given, as the history's TaskScheduled parameters show it."""
    tokens = []
    for event in aws.history(described["executionArn"]):
        if event["type"] == "TaskScheduled":
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            environment = parameters["Overrides"]["ContainerOverrides"][0]["Environment"]
            tokens.append(next(v["Value"] for v in environment if v["Name"] == "VIDP_TASK_TOKEN"))
    return tokens


def test_the_ecs_runner_runs_a_task_that_reports_through_its_token(aws: LocalAws, token_task: str) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)

    described = run(aws, token_state(aws, token_task), {"job_id": "job-1"})

    assert described["status"] == "SUCCEEDED", described
    result = json.loads(described["output"])
    assert result["job_id"] == "job-1"
    assert result["token_sha256"] == token_digest(scheduled_tokens(aws, described)[0])
    # Task definition environment + container overrides, as Fargate merges them:
    assert {"VIDP_TASK_TOKEN", "VIDP_JOB_ID", "VIDP_THREADS", "VIDP_HEARTBEAT_SECONDS"} <= set(
        result["variables"]
    )
    [task_run] = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=10)[runs_before:]
    assert task_run.returncode == 0 and task_run.stopped_reason.endswith("(exit code 0)")
    stopped = aws.client("ecs").describe_tasks(cluster=aws.deployed.cluster_arn, tasks=[task_run.task_arn])
    assert stopped["tasks"][0]["stoppedReason"] == task_run.stopped_reason


def test_a_task_crashing_once_is_retried_with_a_fresh_token(aws: LocalAws, token_task: str) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(1, "exit")  # exit 1 without reporting: only the heartbeat notices

    described = run(aws, token_state(aws, token_task), {"job_id": "job-2"})

    assert described["status"] == "SUCCEEDED", described
    history = types(aws, described)
    assert history.count("TaskSubmitted") == 2 and "TaskTimedOut" in history
    first, second = scheduled_tokens(aws, described)
    assert first != second
    assert json.loads(described["output"])["token_sha256"] == token_digest(second)
    crashed, succeeded = aws.ecs_runner.wait_for_runs(runs_before + 2, timeout=10)[runs_before:]
    assert (crashed.injected, crashed.returncode, succeeded.returncode) == ("exit", 1, 0)


def test_a_killed_task_is_stopped_with_its_signal_and_retried(aws: LocalAws, token_task: str) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(1, "kill")

    described = run(aws, token_state(aws, token_task), {"job_id": "job-3"})

    assert described["status"] == "SUCCEEDED", described
    killed = aws.ecs_runner.wait_for_runs(runs_before + 2, timeout=10)[runs_before]
    assert killed.stopped_reason == "Essential container in task exited (killed by SIGKILL)"


def test_the_runner_refuses_a_command_that_is_not_a_pipeline_module(aws: LocalAws) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    shell = aws.register_task_definition("vidp-test-shell", ("sh", "-c", "touch /tmp/pwned"))

    network = {
        "subnets": list(aws.deployed.subnet_ids),
        "securityGroups": list(aws.deployed.security_group_ids),
    }
    task = aws.client("ecs").run_task(
        cluster=aws.deployed.cluster_arn, taskDefinition=shell, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network},
    )["tasks"][0]  # fmt: skip

    [refused] = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=10)[runs_before:]
    assert refused.task_arn == task["taskArn"] and refused.argv == ()
    assert refused.stopped_reason.startswith("CannotStartContainerError: ")
    described = aws.client("ecs").describe_tasks(cluster=aws.deployed.cluster_arn, tasks=[task["taskArn"]])
    assert described["tasks"][0]["lastStatus"] == "STOPPED"


def test_stop_task_through_the_api_sends_sigterm(aws: LocalAws, token_task: str) -> None:
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)
    aws.ecs_runner.fail_next(1, "hang")
    machine = aws.create_state_machine(
        f"hang-{time.monotonic_ns()}", token_state(aws, token_task, heartbeat=30)
    )
    execution = aws.start_execution({"job_id": "job-4"}, name="hang", state_machine_arn=machine)
    ecs, cluster = aws.client("ecs"), aws.deployed.cluster_arn
    runner = aws.ecs_runner
    [task_arn] = wait_for(lambda: [r.task_arn for r in runner.runs[runs_before:]], 10, "the task")

    ecs.stop_task(cluster=cluster, task=task_arn, reason="operator")

    [hung] = runner.wait_for_runs(runs_before + 1, timeout=10)[runs_before:]
    assert hung.returncode == -15  # SIGTERM, as ECS sends
    aws.client("stepfunctions").stop_execution(executionArn=execution)


# --- the real Fargate task under Step Functions ---------------------------------------------------


@pytest.fixture(scope="module")
def ffmpeg_state(aws: LocalAws) -> dict[str, Any]:
    """BurnAndCompress of the pipeline's definition, alone: same resource, overrides and retries."""
    pipeline = state_machine.load(aws.deployed.substitutions)
    state = dict(pipeline["States"]["BurnAndCompress"])
    state.pop("Next")
    state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]
    state["Next"] = "Done"
    states = {"BurnAndCompress": state, "Caught": {"Type": "Pass", "End": True}, "Done": {"Type": "Succeed"}}
    return {"StartAt": "BurnAndCompress", "States": states}


def job_input(aws: LocalAws, job_id: str, video_key: str) -> dict[str, Any]:
    """What BurnAndCompress reads of the state: the job's video, options and work keys."""
    options = {"resolution": "360p", "crf": 30, "preset": "ultrafast", "style": {}, "upscale": False,
               "quality": False}  # fmt: skip
    work = WorkKeys.of(job_id)
    return {
        "job": {"job_id": job_id, "video_id": f"vid-{job_id}", "bucket": aws.bucket,
                "video_key": video_key, "options": options, "work": work.model_dump()},
        "subtitles": {"key": work.subtitles},
    }  # fmt: skip


def put_processing_record(aws: LocalAws, job_id: str) -> None:
    item = {"video_id": {"S": f"vid-{job_id}"}, "job_id": {"S": job_id}, "status": {"S": "processing"}}
    aws.client("dynamodb").put_item(TableName=aws.table_name, Item=item)


def test_the_ffmpeg_task_reports_its_manifest_and_progress(
    aws: LocalAws, ffmpeg_state: dict[str, Any], clip: ClipFactory
) -> None:
    s3 = aws.client("s3")
    s3.upload_file(str(clip("in.mp4", width=160, height=120, seconds=1.0)), aws.bucket, "incoming/t1/in.mp4")
    s3.put_object(Bucket=aws.bucket, Key="work/t1/subtitles.srt", Body=SIMPLE_SRT)
    put_processing_record(aws, "t1")

    described = run(aws, ffmpeg_state, job_input(aws, "t1", "incoming/t1/in.mp4"), timeout=60)

    assert described["status"] == "SUCCEEDED", described
    encode = json.loads(described["output"])["encode"]  # the manifest, through SendTaskSuccess
    assert (encode["job_id"], encode["output_key"], encode["height"]) == ("t1", "work/t1/output.mp4", 120)
    assert s3.head_object(Bucket=aws.bucket, Key="work/t1/output.mp4")["ContentLength"] == encode["size"]
    record = aws.client("dynamodb").get_item(TableName=aws.table_name, Key={"video_id": {"S": "vid-t1"}})
    assert float(record["Item"]["progress"]["N"]) == 100


def test_the_ffmpeg_task_reports_invalid_media_with_its_cause(
    aws: LocalAws, ffmpeg_state: dict[str, Any], tmp_path: Path
) -> None:
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="incoming/t2/random.mp4", Body=os.urandom(4096))
    s3.put_object(Bucket=aws.bucket, Key="work/t2/subtitles.srt", Body=SIMPLE_SRT)

    described = run(aws, ffmpeg_state, job_input(aws, "t2", "incoming/t2/random.mp4"), timeout=60)

    error = json.loads(described["output"])["error"]
    assert error["Error"] == "InvalidMedia"  # never retried
    assert error["Cause"] == "random.mp4: not a readable video (Invalid data found when processing input)"
    assert types(aws, described).count("TaskSubmitted") == 1


def test_an_unknown_task_kind_fails_the_state_as_invalid_input_without_a_retry(
    aws: LocalAws, ffmpeg_state: dict[str, Any]
) -> None:
    state = copy.deepcopy(ffmpeg_state["States"]["BurnAndCompress"])
    [container] = state["Parameters"]["Overrides"]["ContainerOverrides"]
    container["Environment"].append({"Name": "VIDP_TASK_KIND", "Value": "segment"})
    definition = {**ffmpeg_state, "States": {**ffmpeg_state["States"], "BurnAndCompress": state}}

    described = run(aws, definition, job_input(aws, "t4", "incoming/t4/in.mp4"), timeout=60)

    error = json.loads(described["output"])["error"]
    assert error["Error"] == "InvalidInput"
    assert error["Cause"] == (
        "invalid configuration: VIDP_TASK_KIND: unknown task kind (known kinds: whole-file)"
    )
    assert types(aws, described).count("TaskSubmitted") == 1


# --- uploads start jobs -----------------------------------------------------------------------------


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)
    return value


def test_an_upload_under_incoming_starts_one_execution_even_if_its_event_comes_twice(aws: LocalAws) -> None:
    assert aws.uploads is not None
    key = "incoming/upload test/my clip+1.mp4"
    aws.client("s3").put_object(
        Bucket=aws.bucket, Key=key, Body=b"not really a video",
        Metadata={"subtitles-s3-uri": f"s3://{aws.bucket}/subs/my clip.srt"},
    )  # fmt: skip
    uploads = aws.uploads

    def starts() -> list[Any]:
        return [started for started in uploads.started if started.key == key]

    wait_for(starts, 10, "the upload's execution")
    # The same event again, as S3 may deliver it (at least once):
    duplicate = {"version": "0", "id": "dup-1", "source": "aws.s3", "detail-type": "Object Created",
                 "account": "123456789012", "time": "2026-12-01T12:00:00Z", "region": "us-east-1",
                 "resources": [f"arn:aws:s3:::{aws.bucket}"],
                 "detail": {"version": "0", "bucket": {"name": aws.bucket}, "object": {"key": key},
                            "request-id": "R1", "requester": "123456789012",
                            "reason": "PutObject"}}  # fmt: skip
    aws.client("sqs").send_message(QueueUrl=aws.deployed.uploads_queue_url, MessageBody=json.dumps(duplicate))
    wait_for(lambda: len(starts()) == 2, 10, "the duplicate event")

    started = starts()
    assert started[0].execution_arn == started[1].execution_arn
    execution = aws.wait(started[0].execution_arn, 15)
    assert execution["name"] == started[0].job_id and len(execution["name"]) <= 80
    request = json.loads(execution["input"])
    assert request["video"]["s3_uri"] == f"s3://{aws.bucket}/{key}"
    assert request["subtitles"] == {"s3_uri": f"s3://{aws.bucket}/subs/my clip.srt"}
    named = [e for e in aws.executions() if e["name"] == started[0].job_id]
    assert len(named) == 1


def test_an_upload_with_a_sidecar_starts_its_job_in_either_order(aws: LocalAws) -> None:
    assert aws.uploads is not None
    s3 = aws.client("s3")
    sidecar = {"subtitles": {"url": "https://subs.example.com/a.srt"}, "resolution": "480p", "task_id": "t-9"}
    s3.put_object(Bucket=aws.bucket, Key="incoming/b/video.mp4.job.json", Body=json.dumps(sidecar).encode())
    s3.put_object(Bucket=aws.bucket, Key="incoming/b/video.mp4", Body=b"video")

    started = wait_for(
        lambda: [s for s in aws.uploads.started if s.key.startswith("incoming/b/")], 10, "start"
    )

    execution = aws.wait(started[0].execution_arn, 15)
    request = json.loads(execution["input"])
    assert (request["resolution"], request["task_id"]) == ("480p", "t-9")
    assert request["video"] == {"s3_uri": f"s3://{aws.bucket}/incoming/b/video.mp4"}
    rejected = [reason for key, reason in aws.uploads.rejected if key.startswith("incoming/b/")]
    assert rejected == []  # waiting for the video is no rejection: its own event starts the job


def test_an_upload_without_a_job_description_starts_nothing_while_it_waits_for_one(aws: LocalAws) -> None:
    # (Rejected once the wait is over: tests/integration/test_uploads.py.)
    assert aws.uploads is not None
    aws.client("s3").put_object(Bucket=aws.bucket, Key="incoming/c/lonely.mp4", Body=b"video")

    reasons = wait_for(
        lambda: [o.reason for o in aws.uploads.outcomes if o.key == "incoming/c/lonely.mp4"], 10, "wait"
    )

    assert reasons[0].startswith("no 'incoming/c/lonely.mp4.job.json'")
    assert reasons[0].endswith(
        "waiting 300 s for 'incoming/c/lonely.mp4.job.json', then the upload is rejected"
    )
    assert not [s for s in aws.uploads.started if s.key.startswith("incoming/c/")]


def test_a_task_whose_state_timed_out_stops_itself(
    aws: LocalAws, ffmpeg_state: dict[str, Any], clip: ClipFactory
) -> None:
    # A long encode under a state that gives up after 12 s (and needs a heartbeat every 8 s:
    # the task's first one follows its start, which takes seconds on a loaded machine).
    state = {**ffmpeg_state["States"]["BurnAndCompress"], "TimeoutSeconds": 12, "HeartbeatSeconds": 8}
    state.pop("Retry")
    definition = {**ffmpeg_state, "States": {**ffmpeg_state["States"], "BurnAndCompress": state}}
    s3 = aws.client("s3")
    s3.upload_file(
        str(clip("long.mp4", width=640, height=360, seconds=16, fps=30)), aws.bucket, "incoming/t3/a.mp4"
    )
    s3.put_object(Bucket=aws.bucket, Key="work/t3/subtitles.srt", Body=SIMPLE_SRT)
    payload = job_input(aws, "t3", "incoming/t3/a.mp4")
    # veryslow up to 1080p: minutes of encoding on any machine, far past the state's 12 s.
    payload["job"]["options"].update(preset="veryslow", resolution="1080p", upscale=True)
    assert aws.ecs_runner is not None
    runs_before = len(aws.ecs_runner.runs)

    described = run(aws, definition, payload, timeout=30)

    # The heartbeats kept it alive past HeartbeatSeconds: it is the state's timeout that ended it.
    assert json.loads(described["output"])["error"]["Error"] == "States.Timeout"
    [stale] = aws.ecs_runner.wait_for_runs(runs_before + 1, timeout=15)[runs_before:]
    assert stale.returncode == 1 and "TASK_STOPPED" in stale.stderr  # refused heartbeat -> it stopped
    assert "heartbeat_refused" in stale.stdout
    assert "Contents" not in s3.list_objects_v2(Bucket=aws.bucket, Prefix="work/t3/output")
