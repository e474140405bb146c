"""Each moto workaround of ``pipeline.local.workarounds``: its bug's effect is gone, and the bug is
still there in moto without it.

The ``..._still_has_...`` tests FAIL when moto fixes the bug upstream: then delete the
workaround and its tests. This file is the one place to check after a moto upgrade.

Tiny state machines run on moto's interpreter in-process (``mock_aws``); every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from pipeline.local import lambdas, workarounds

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/test"
DEADLINE = 15.0
AWS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class TranscodeFailed(Exception):
    """A handler's error: its class name is the Step Functions error name."""


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process with its interpreter on, and every workaround applied."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        workarounds.apply_all()
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


def start(definition: dict[str, Any], payload: Any = None) -> str:
    """Start an execution of a new state machine; its ARN."""
    sfn = client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=machine, name="run", input=json.dumps(payload or {}))
    return str(started["executionArn"])


def execute(definition: dict[str, Any], payload: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a state machine to its end: (DescribeExecution, history events)."""
    sfn = client("stepfunctions")
    arn = start(definition, payload)
    deadline = time.monotonic() + DEADLINE
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.02)
    return described, sfn.get_execution_history(executionArn=arn)["events"]


def task(resource: str, parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": resource,
            "Parameters": parameters, "End": True, **fields}}}  # fmt: skip


def output(described: dict[str, Any]) -> Any:
    return json.loads(described["output"])


# --- token tasks through SQS: the test plays the worker --------------------------------------


class Worker:
    """Reads ``{"token": ...}`` messages and answers each with the next scripted reply."""

    def __init__(self, replies: list[Callable[[Any, str], None]]) -> None:
        self.queue_url = client("sqs").create_queue(QueueName="work")["QueueUrl"]
        self.replies = list(replies)
        self.tokens: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        sqs, sfn = client("sqs"), client("stepfunctions")
        while not self._stop.is_set():
            for message in sqs.receive_message(QueueUrl=self.queue_url).get("Messages", []):
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                token = json.loads(message["Body"])["token"]
                self.tokens.append(token)
                if self.replies:
                    with contextlib.suppress(ClientError):  # a token whose state has moved on
                        self.replies.pop(0)(sfn, token)
            self._stop.wait(0.02)


def fail(error: str, cause: str = "") -> Callable[[Any, str], None]:
    return lambda sfn, token: sfn.send_task_failure(taskToken=token, error=error, cause=cause)


def succeed(result: Any) -> Callable[[Any, str], None]:
    return lambda sfn, token: sfn.send_task_success(taskToken=token, output=json.dumps(result))


def token_task(worker: Worker, **fields: Any) -> dict[str, Any]:
    parameters = {"QueueUrl": worker.queue_url, "MessageBody": {"token.$": "$$.Task.Token"}}
    return task("arn:aws:states:::sqs:sendMessage.waitForTaskToken", parameters, **fields)


RETRY_BOOM = {
    "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 1, "BackoffRate": 1.0}]
}


def test_a_retried_token_task_gets_a_fresh_token(aws: None) -> None:
    with Worker([fail("Boom"), succeed({"ok": 2})]) as worker:
        described, events = execute(token_task(worker, TimeoutSeconds=10, **RETRY_BOOM))

    assert described["status"] == "SUCCEEDED", described
    assert output(described) == {"ok": 2}
    assert len(worker.tokens) == 2 and worker.tokens[0] != worker.tokens[1]
    assert [e["type"] for e in events].count("TaskSubmitted") == 2


def test_moto_still_has_retry_reusing_the_token(aws: None) -> None:
    bug = workarounds.without("wait_for_task_token_retry_reuses_token")
    with bug, Worker([fail("Boom"), succeed({"ok": 2})]) as worker:
        described, _ = execute(token_task(worker, TimeoutSeconds=10, **RETRY_BOOM))

    assert described["status"] == "FAILED" and described["error"] == "Boom"


def test_a_missed_heartbeat_is_states_heartbeat_timeout(aws: None) -> None:
    with Worker([]) as worker:
        described, events = execute(token_task(worker, HeartbeatSeconds=1, TimeoutSeconds=10))

    assert described["status"] == "FAILED"
    assert described["error"] == "States.HeartbeatTimeout"
    assert "TaskTimedOut" in [e["type"] for e in events]


def test_moto_still_reports_a_missed_heartbeat_as_states_timeout(aws: None) -> None:
    with workarounds.without("heartbeat_timeout_reported_as_timeout"), Worker([]) as worker:
        described, _ = execute(token_task(worker, HeartbeatSeconds=1, TimeoutSeconds=10))

    assert described["error"] == "States.Timeout"


def timed_out_token(worker: Worker) -> tuple[str, str]:
    """(execution ARN, token) of a token task that missed its heartbeat; the execution goes on
    (it waits 3 s in the state after the Catch)."""
    definition = token_task(worker, HeartbeatSeconds=1, TimeoutSeconds=10, Next="Later",
                            Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Later"}])  # fmt: skip
    del definition["States"]["Work"]["End"]
    definition["States"]["Later"] = {"Type": "Wait", "Seconds": 3, "End": True}
    arn = start(definition)
    sfn, deadline = client("stepfunctions"), time.monotonic() + DEADLINE
    while "WaitStateEntered" not in [
        e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]
    ]:
        assert time.monotonic() < deadline, "the token task did not time out"
        time.sleep(0.05)
    return arn, worker.tokens[0]


def test_a_token_whose_state_timed_out_is_refused(aws: None) -> None:
    with Worker([]) as worker:
        _, token = timed_out_token(worker)

        with pytest.raises(ClientError) as refused:
            client("stepfunctions").send_task_heartbeat(taskToken=token)

    # AWS says TaskTimedOut; moto, TaskDoesNotExist (see the workaround): refused either way.
    assert refused.value.response["Error"]["Code"] == "TaskDoesNotExist"


def test_moto_still_accepts_a_token_whose_state_timed_out(aws: None) -> None:
    with workarounds.without("closed_token_still_accepted"), Worker([]) as worker:
        _, token = timed_out_token(worker)

        client("stepfunctions").send_task_heartbeat(taskToken=token)  # no error


CATCH_ALL = {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]}


def caught_token_task(worker: Worker) -> dict[str, Any]:
    definition = token_task(worker, TimeoutSeconds=10, **CATCH_ALL)
    del definition["States"]["Work"]["End"]
    definition["States"]["Work"]["Next"] = "Caught"
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    return definition


def test_send_task_failure_keeps_its_cause(aws: None) -> None:
    with Worker([fail("InvalidMedia", "INVALID_MEDIA: in.mp4: not a readable video")]) as worker:
        described, _ = execute(caught_token_task(worker))

    assert output(described)["error"] == {
        "Error": "InvalidMedia",
        "Cause": "INVALID_MEDIA: in.mp4: not a readable video",
    }


def test_moto_still_drops_the_cause_of_send_task_failure(aws: None) -> None:
    bug = workarounds.without("send_task_failure_drops_cause")
    with bug, Worker([fail("InvalidMedia", "the cause")]) as worker:
        described, _ = execute(caught_token_task(worker))

    assert output(described)["error"]["Cause"] is None


TIMES = {"StartAt": "Times", "States": {"Times": {"Type": "Pass", "End": True, "Parameters": {
         "start.$": "$$.Execution.StartTime", "entered.$": "$$.State.EnteredTime"}}}}  # fmt: skip


def test_context_times_are_in_aws_format(aws: None) -> None:
    described, _ = execute(TIMES)

    times = output(described)
    assert AWS_TIME.match(times["start"]) and AWS_TIME.match(times["entered"]), times
    assert times["start"] <= times["entered"]


def test_moto_still_writes_context_times_with_isoformat(aws: None) -> None:
    # (Unpatched, $$.Execution.StartTime is a datetime: in an output it breaks DescribeExecution.)
    entered = {"StartAt": "T", "States": {"T": {"Type": "Pass", "End": True,
               "Parameters": {"entered.$": "$$.State.EnteredTime"}}}}  # fmt: skip
    with workarounds.without("context_times_not_in_aws_format"):
        described, _ = execute(entered)

    assert not AWS_TIME.match(output(described)["entered"])


def test_aws_timestamp_converts_naive_and_aware_times() -> None:
    assert workarounds.aws_timestamp("2026-01-02T03:04:05.678901+00:00") == "2026-01-02T03:04:05.678Z"
    assert workarounds.aws_timestamp("2026-01-02T04:04:05.678901+01:00") == "2026-01-02T03:04:05.678Z"
    assert workarounds.aws_timestamp("2026-01-02T03:04:05") == "2026-01-02T03:04:05.000Z"


# --- ECS RunTask -------------------------------------------------------------------------------


def fargate(*, container_memory: bool = True, dns_hostnames: bool = True) -> dict[str, str]:
    """A cluster, a Fargate task definition and a subnet, made with or without the workarounds."""
    ec2, ecs = client("ec2"), client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    if dns_hostnames:
        workarounds.fargate_run_task_needs_vpc_dns_hostnames(ec2, vpc)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    container = {"name": "app", "image": "app:1", "command": ["python", "-m", "pipeline.task"]}
    if container_memory:
        container = workarounds.fargate_run_task_needs_container_memory(container, "2048")
    definition = ecs.register_task_definition(
        family="app", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024",
        memory="2048", containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
    cluster = ecs.create_cluster(clusterName="c")["cluster"]["clusterArn"]
    return {"cluster": cluster, "definition": definition, "subnet": subnet, "group": group}


def run_task(resources: dict[str, str]) -> dict[str, Any]:
    return client("ecs").run_task(  # type: ignore[no-any-return]
        cluster=resources["cluster"], taskDefinition=resources["definition"], launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {
            "subnets": [resources["subnet"]], "securityGroups": [resources["group"]]}},
    )  # fmt: skip


def test_fargate_run_task_works_with_container_memory_and_dns_hostnames(aws: None) -> None:
    assert run_task(fargate())["tasks"][0]["lastStatus"] == "RUNNING"


def test_moto_still_fails_fargate_run_task_without_container_memory(aws: None) -> None:
    with pytest.raises(TypeError):  # HTTP 500 from a moto server
        run_task(fargate(container_memory=False))


def test_moto_still_fails_fargate_run_task_without_dns_hostnames(aws: None) -> None:
    with pytest.raises(AttributeError):  # HTTP 500 from a moto server
        run_task(fargate(dns_hostnames=False))


def ecs_token_task(resources: dict[str, str]) -> dict[str, Any]:
    parameters = {
        "Cluster": resources["cluster"],
        "TaskDefinition": resources["definition"],
        "LaunchType": "FARGATE",
        "NetworkConfiguration": {"AwsvpcConfiguration": {
            "Subnets": [resources["subnet"]], "SecurityGroups": [resources["group"]]}},
        "Overrides": {"ContainerOverrides": [{"Name": "app", "Environment": [
            {"Name": "VIDP_TASK_TOKEN", "Value.$": "$$.Task.Token"}]}]},
    }  # fmt: skip
    return task("arn:aws:states:::ecs:runTask.waitForTaskToken", parameters, TimeoutSeconds=10)


def answer_ecs_tasks(cluster: str, stop: threading.Event) -> None:
    """Play the container: read the token from the task's overrides, report success."""
    ecs, sfn, seen = client("ecs"), client("stepfunctions"), set()
    while not stop.is_set():
        arns = set(ecs.list_tasks(cluster=cluster)["taskArns"]) - seen
        for described in ecs.describe_tasks(cluster=cluster, tasks=list(arns))["tasks"] if arns else []:
            seen.add(described["taskArn"])
            env = described["overrides"]["containerOverrides"][0]["environment"]
            sfn.send_task_success(taskToken=env[0]["value"], output=json.dumps({"ran": described["taskArn"]}))
        stop.wait(0.02)


def test_ecs_run_task_parameters_reach_ecs(aws: None) -> None:
    resources = fargate()
    stop = threading.Event()
    answering = threading.Thread(target=answer_ecs_tasks, args=(resources["cluster"], stop), daemon=True)
    answering.start()
    try:
        described, events = execute(ecs_token_task(resources))
    finally:
        stop.set()
        answering.join(5)

    assert described["status"] == "SUCCEEDED", described
    assert output(described)["ran"].startswith("arn:aws:ecs:")
    submitted = next(e for e in events if e["type"] == "TaskSubmitted")
    # The response is in Step Functions' PascalCase too, as on AWS.
    run_task_output = json.loads(submitted["taskSubmittedEventDetails"]["output"])
    assert run_task_output["Tasks"][0]["TaskArn"].startswith("arn:aws:ecs:")


def test_moto_still_passes_ecs_parameters_unnormalised(aws: None) -> None:
    resources = fargate()
    with workarounds.without("ecs_run_task_parameters_not_normalised"):
        described, _ = execute(ecs_token_task(resources))

    # moto's ECS gets ``Cluster=...`` instead of ``cluster=...`` and fails on it.
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "Cluster" in described["cause"], described["cause"]


# --- Lambda in-process -------------------------------------------------------------------------

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:vidp-local-{}"


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"got": event, "function": context.function_name}


def transcode(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise TranscodeFailed(f"ffmpeg died on {event['name']}")


def unserialisable(event: dict[str, Any], context: Any) -> Any:
    return {"when": object()}


HANDLERS = {"Echo": echo, "Transcode": transcode, "Unserialisable": unserialisable}


@pytest.fixture
def routed(aws: None) -> Iterator[None]:
    workarounds.lambda_invoke_needs_docker(lambdas.handler_lookup("vidp-local-", HANDLERS))
    yield
    workarounds.stop_routing_lambda_invoke()


def lambda_task(step: str, **fields: Any) -> dict[str, Any]:
    return task(FUNCTION.format(step), {"name.$": "$.name"}, **fields)


def test_a_lambda_task_runs_the_python_handler(routed: None) -> None:
    described, events = execute(lambda_task("Echo"), {"name": "clip.mp4"})

    assert described["status"] == "SUCCEEDED", described
    assert output(described) == {"got": {"name": "clip.mp4"}, "function": "vidp-local-Echo"}
    assert "LambdaFunctionSucceeded" in [e["type"] for e in events]


def test_a_raised_exception_is_the_error_catch_sees(routed: None) -> None:
    definition = lambda_task("Transcode", **CATCH_ALL)
    del definition["States"]["Work"]["End"]
    definition["States"]["Work"]["Next"] = "Caught"
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}

    described, _ = execute(definition, {"name": "clip.mp4"})

    error = output(described)["error"]
    assert error["Error"] == "TranscodeFailed"
    cause = json.loads(error["Cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("TranscodeFailed", "ffmpeg died on clip.mp4")


def test_an_unserialisable_result_is_a_marshal_error(routed: None) -> None:
    described, _ = execute(lambda_task("Unserialisable"), {"name": "x"})

    assert (described["status"], described["error"]) == ("FAILED", "Runtime.MarshalError")


def test_a_step_without_handler_fails_naming_it(routed: None) -> None:
    described, _ = execute(lambda_task("Nope"), {"name": "x"})

    assert described["error"] == "HandlerNotFound"
    assert "'Nope'" in described["cause"]


def create_function(name: str) -> str:
    """A real function in moto's Lambda, whose code would answer {"ran": "moto"}."""
    role = client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'ran': 'moto'}\n")
    created = client("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    return str(created["FunctionArn"])


def test_a_function_that_exists_in_moto_runs_in_process_too(routed: None) -> None:
    arn = create_function("vidp-local-Echo")

    described, _ = execute(task(arn, {"name": "x"}))

    assert output(described) == {"got": {"name": "x"}, "function": "vidp-local-Echo"}


@pytest.mark.skipif(Path("/var/run/docker.sock").exists(), reason="moto would try to run Docker here")
def test_moto_still_cannot_run_a_lambda_without_docker(aws: None) -> None:
    workarounds.stop_routing_lambda_invoke()
    arn = create_function("vidp-local-Echo")

    described, _ = execute(task(arn, {"name": "x"}))

    assert described["status"] == "FAILED"
    assert "error running docker" in described["cause"]


# --- the interpreter's port, and apply_all ---------------------------------------------------


def test_the_interpreter_calls_our_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings

    monkeypatch.delenv("MOTO_PORT", raising=False)
    workarounds.interpreter_calls_port_5000(4567)

    assert settings.moto_server_port() == "4567"


def test_moto_still_leaves_moto_port_unset_for_a_threaded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings

    monkeypatch.delenv("MOTO_PORT", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        port = server.get_host_and_port()[1]
        assert settings.moto_server_port() == "5000" != str(port)
    finally:
        server.stop()


def test_apply_all_is_idempotent_and_without_puts_patches_back() -> None:
    workarounds.apply_all()
    before = {name: getattr(cls, name) for cls, name in workarounds._originals}
    workarounds.apply_all()
    assert {name: getattr(cls, name) for cls, name in workarounds._originals} == before

    with workarounds.without("heartbeat_timeout_reported_as_timeout"):
        assert "heartbeat_timeout_reported_as_timeout" not in workarounds.applied()
    assert workarounds.applied() == {
        "ecs_run_task_parameters_not_normalised",
        "wait_for_task_token_retry_reuses_token",
        "closed_token_still_accepted",
        "heartbeat_timeout_reported_as_timeout",
        "post_object_policy_not_enforced",
        "send_task_failure_drops_cause",
        "context_times_not_in_aws_format",
        "ecs_run_task_drops_started_by",
        "stopped_execution_reported_as_failed",
    }
    with pytest.raises(ValueError, match="no such workaround"):
        workarounds.without("typo").__enter__()


# --- 11. RunTask's StartedBy ----------------------------------------------------------------------


def started_by_task(resources: dict[str, str]) -> dict[str, Any]:
    definition = ecs_token_task(resources)
    definition["States"]["Work"]["Parameters"]["StartedBy"] = "vid-0123"
    definition["States"]["Work"]["TimeoutSeconds"] = 2
    return definition


def test_run_task_keeps_started_by(aws: None) -> None:
    resources = fargate()
    start(started_by_task(resources))
    deadline = time.monotonic() + DEADLINE
    while not (
        found := client("ecs").list_tasks(cluster=resources["cluster"], startedBy="vid-0123")["taskArns"]
    ):
        assert time.monotonic() < deadline, "no task started by vid-0123"
        time.sleep(0.02)
    assert len(found) == 1


def test_moto_still_drops_started_by(aws: None) -> None:
    resources = fargate()
    with workarounds.without("ecs_run_task_drops_started_by"):
        execute(started_by_task(resources))  # ends at its 2 s timeout: nobody answers the token

    assert client("ecs").list_tasks(cluster=resources["cluster"])["taskArns"]  # a task ran
    assert client("ecs").list_tasks(cluster=resources["cluster"], startedBy="vid-0123")["taskArns"] == []


# --- 12. StopExecution and the execution's timeout during a token wait ----------------------------


def waiting(worker: Worker, **fields: Any) -> dict[str, Any]:
    """A token task nobody answers or heartbeats, with a long heartbeat (as a hung container)."""
    return token_task(worker, HeartbeatSeconds=30, TimeoutSeconds=60, **fields)


def stop_when_waiting(worker: Worker, arn: str) -> dict[str, Any]:
    sfn = client("stepfunctions")
    deadline = time.monotonic() + DEADLINE
    while not worker.tokens:
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.02)
    sfn.stop_execution(executionArn=arn, cause="stop")
    stopped_by = time.monotonic() + 5.0
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > stopped_by:
            break
        time.sleep(0.02)
    return described  # type: ignore[no-any-return]


def test_a_stopped_execution_ends_aborted_at_once(aws: None) -> None:
    with Worker([]) as worker:
        described = stop_when_waiting(worker, start(waiting(worker)))

    assert described["status"] == "ABORTED"


def test_an_execution_past_its_timeout_ends_timed_out_at_once(aws: None) -> None:
    with Worker([]) as worker:
        definition = {**waiting(worker), "TimeoutSeconds": 1}
        described, _ = execute(definition)

    assert described["status"] == "TIMED_OUT"


def test_moto_still_ends_a_stopped_execution_failed(aws: None) -> None:
    sfn = client("stepfunctions")
    with workarounds.without("stopped_execution_reported_as_failed"), Worker([]) as worker:
        arn = start(waiting(worker))
        deadline = time.monotonic() + DEADLINE
        while not worker.tokens:
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
        sfn.stop_execution(executionArn=arn, cause="stop")
        sfn.send_task_heartbeat(taskToken=worker.tokens[0])  # wakes the wait (moto waits for it)
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "still running"
            time.sleep(0.02)

    assert described["status"] == "FAILED"  # AWS: ABORTED


# --- EventBridge: Step Functions' status-change events (pipeline.local.watcher stands in) --------


def test_moto_still_puts_no_execution_status_change_event(aws: None) -> None:
    sqs, bridge = client("sqs"), client("events")
    queue = sqs.create_queue(QueueName="changes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bridge.put_rule(Name="changes", EventPattern=json.dumps({"source": ["aws.states"]}))
    bridge.put_targets(Rule="changes", Targets=[{"Id": "q", "Arn": queue_arn}])

    described, _ = execute({"StartAt": "Fail", "States": {"Fail": {"Type": "Fail", "Error": "Boom"}}})

    assert described["status"] == "FAILED"
    time.sleep(0.5)
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []


# --- POST Object policies -------------------------------------------------------------------------


@contextlib.contextmanager
def s3_server() -> Iterator[tuple[Any, str]]:
    """A moto server (HTML-form uploads need one: they are plain HTTP POSTs) and a bucket on it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint,
                          aws_access_key_id="x", aws_secret_access_key="x")  # noqa: S106  # fmt: skip
        s3.create_bucket(Bucket="forms")
        yield s3, endpoint
    finally:
        server.stop()


def form_upload(s3: Any, body: bytes, *, max_bytes: int = 10, content_type: str = "video/mp4") -> int:
    """Upload ``body`` with a presigned POST allowing ``max_bytes`` of ``video/mp4``; the status."""
    post = s3.generate_presigned_post(
        "forms", "up/clip.mp4", Fields={"Content-Type": "video/mp4"},
        Conditions=[{"Content-Type": "video/mp4"}, ["content-length-range", 1, max_bytes]], ExpiresIn=60,
    )  # fmt: skip
    fields = {**post["fields"], "Content-Type": content_type}
    answer = httpx.post(
        post["url"], data=fields, files={"file": ("clip.mp4", body, content_type)}, timeout=10
    )
    return answer.status_code


def stored(s3: Any) -> bool:
    return bool(s3.list_objects_v2(Bucket="forms", Prefix="up/clip.mp4").get("KeyCount"))


def test_a_form_upload_outside_its_policy_is_refused() -> None:
    workarounds.apply_all()
    with s3_server() as (s3, _):
        assert form_upload(s3, b"x" * 11) == 400 and not stored(s3)
        assert form_upload(s3, b"x" * 5, content_type="text/html") == 403 and not stored(s3)
        assert form_upload(s3, b"x" * 10) == 204 and stored(s3)


def test_moto_still_stores_a_form_upload_its_policy_refuses() -> None:
    workarounds.apply_all()
    with workarounds.without("post_object_policy_not_enforced"), s3_server() as (s3, _):
        assert form_upload(s3, b"x" * 11) == 204 and stored(s3)
