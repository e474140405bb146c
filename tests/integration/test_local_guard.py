"""What the local AWS refuses a stranger: its endpoint takes any credentials, so neither a web
page (through the browser) nor an ECS call may make it do what it was not built to.

Given the running local AWS, when a request carries what a browser adds for a page (Origin,
Sec-Fetch-Site, a rebound Host), or a task asks for another command or environment than its
definition's, then it is refused with a clear answer and nothing happened: no bucket, no queue,
no state machine, no file written, no reset.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.deployment import CONTAINER_NAME
from pipeline.local.aws import LocalAws
from pipeline.local.clients import make_client
from pipeline.local.ecs_runner import TaskRun
from pipeline.local.guard import is_loopback
from tests.conftest import SIMPLE_SRT, ClipFactory

PAGE = {"Origin": "http://evil.example"}
RUN_DEADLINE = 60.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(handlers={}, start_from_uploads=False) as local:
        yield local


def client(aws: LocalAws, service: str, headers: dict[str, str] | None = None) -> Any:
    """A boto3 client of the local AWS sending ``headers`` too, as a page's fetch() would with them."""
    made = make_client(aws.endpoint_url, service, max_attempts=1)

    def add(request: Any, **_: Any) -> None:
        for name, value in (headers or {}).items():
            request.headers[name] = value

    made.meta.events.register("before-sign", add)
    return made


def refused(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def raw(aws: LocalAws, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One plain HTTP request to the local endpoint: status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", aws.port, timeout=10)
    try:
        connection.request(method, path, body=b"{}", headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


# --- a web page cannot drive the local AWS ----------------------------------------------------------


def test_a_create_bucket_with_a_browser_origin_is_refused_and_creates_nothing(aws: LocalAws) -> None:
    refused(lambda: client(aws, "s3", PAGE).create_bucket(Bucket="made-by-a-web-page"))

    names = [bucket["Name"] for bucket in aws.client("s3").list_buckets()["Buckets"]]
    assert aws.bucket in names and "made-by-a-web-page" not in names


def queue_names(aws: LocalAws) -> list[str]:
    return [url.rpartition("/")[2] for url in aws.client("sqs").list_queues().get("QueueUrls", [])]


def machine_names(aws: LocalAws) -> list[str]:
    return [m["name"] for m in aws.client("stepfunctions").list_state_machines()["stateMachines"]]


def table_names(aws: LocalAws) -> list[str]:
    return list(aws.client("dynamodb").list_tables()["TableNames"])


@pytest.mark.parametrize(
    ("service", "call", "unchanged"),
    [
        ("sqs", lambda c, aws: c.create_queue(QueueName="page-queue"),
         lambda aws: "page-queue" not in queue_names(aws)),
        ("dynamodb", lambda c, aws: c.delete_table(TableName=aws.table_name),
         lambda aws: aws.table_name in table_names(aws)),
        ("stepfunctions", lambda c, aws: c.create_state_machine(
            name="page-machine", roleArn="arn:aws:iam::123456789012:role/x",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})),
         lambda aws: "page-machine" not in machine_names(aws)),
    ],
    ids=["sqs", "dynamodb", "stepfunctions"],
)  # fmt: skip
def test_every_service_refuses_a_browser_origin(
    aws: LocalAws,
    service: str,
    call: Callable[[Any, LocalAws], Any],
    unchanged: Callable[[LocalAws], bool],
) -> None:
    refused(lambda: call(client(aws, service, PAGE), aws))

    assert unchanged(aws)


def test_moto_reset_from_a_page_is_refused_with_a_short_answer(aws: LocalAws) -> None:
    status, body = raw(aws, "POST", "/moto-api/reset", {**PAGE, "Content-Type": "application/json"})

    assert status == 403
    assert body.startswith(b"Forbidden: ") and body.count(b"\n") == 1 and len(body) < 200
    assert aws.table_name in table_names(aws)  # not reset


def test_a_request_a_page_makes_without_origin_is_refused_by_its_fetch_metadata(aws: LocalAws) -> None:
    # An <img> or a form GET carries no Origin, but the browser says whose page asked.
    refused(lambda: client(aws, "sqs", {"Sec-Fetch-Site": "cross-site"}).create_queue(QueueName="img-queue"))
    assert "img-queue" not in queue_names(aws)

    # The same call from a command-line client (no such headers), or typed in the address bar, works.
    client(aws, "sqs", {"Sec-Fetch-Site": "none"}).create_queue(QueueName="typed-queue")
    client(aws, "sqs").create_queue(QueueName="cli-queue")
    assert {"typed-queue", "cli-queue"} <= set(queue_names(aws))


def test_a_request_for_another_host_name_dns_rebinding_is_refused(aws: LocalAws) -> None:
    status, body = raw(aws, "PUT", "/rebound-bucket", {"Host": f"evil.example:{aws.port}"})

    assert status == 403 and body.startswith(b"Forbidden: ")
    names = [bucket["Name"] for bucket in aws.client("s3").list_buckets()["Buckets"]]
    assert "rebound-bucket" not in names


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:4566", True), ("localhost:4566", True), ("LOCALHOST", True), ("[::1]:4566", True),
     ("bucket.localhost:4566", True), ("127.8.9.10", True), ("evil.example:4566", False),
     ("10.0.0.1:4566", False), ("localhost.evil.example", False), ("", False), ("[oops", False)],
)  # fmt: skip
def test_loopback_host_names(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- the ECS runner runs only the definition's own entrypoint ----------------------------------------


def run_task(aws: LocalAws, task_definition: str, override: dict[str, Any] | None = None) -> TaskRun:
    """RunTask through the ECS API, as any caller of the endpoint can; the runner's account of it."""
    assert aws.ecs_runner is not None
    before = len(aws.ecs_runner.runs)
    network = {
        "subnets": list(aws.deployed.subnet_ids),
        "securityGroups": list(aws.deployed.security_group_ids),
    }
    overrides = {"containerOverrides": [{"name": CONTAINER_NAME, **override}]} if override else {}
    task = aws.client("ecs").run_task(
        cluster=aws.deployed.cluster_arn, taskDefinition=task_definition, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": network}, overrides=overrides,
    )["tasks"][0]  # fmt: skip
    [ran] = aws.ecs_runner.wait_for_runs(before + 1, timeout=RUN_DEADLINE)[before:]
    assert ran.task_arn == task["taskArn"]
    return ran


def stopped_reason(aws: LocalAws, ran: TaskRun) -> str:
    described = aws.client("ecs").describe_tasks(cluster=aws.deployed.cluster_arn, tasks=[ran.task_arn])
    [task] = described["tasks"]
    assert task["lastStatus"] == "STOPPED"
    return str(task["stoppedReason"])


def burn_command(clip: ClipFactory, tmp_path: Path) -> tuple[list[str], Path]:
    """``python -m pipeline.cli burn`` of a real clip to a path of the caller's choosing."""
    srt = tmp_path / "subs.srt"
    srt.write_bytes(SIMPLE_SRT)
    out = tmp_path / "written.mp4"
    video = clip("in.mp4", width=160, height=120, seconds=1.0)
    return ["python", "-m", "pipeline.cli", "burn", str(video), "--srt", str(srt), "-o", str(out)], out


def test_a_command_override_is_not_run(aws: LocalAws, clip: ClipFactory, tmp_path: Path) -> None:
    command, out = burn_command(clip, tmp_path)

    ran = run_task(aws, aws.deployed.task_definition_arn, {"command": command})

    reason = "CannotStartContainerError: command overrides are not run by the local AWS"
    assert ran.stopped_reason == stopped_reason(aws, ran) == reason
    assert ran.argv == () and ran.pid is None
    assert not out.exists()


def test_a_definition_registered_through_the_api_with_another_module_is_not_run(
    aws: LocalAws, clip: ClipFactory, tmp_path: Path
) -> None:
    command, out = burn_command(clip, tmp_path)
    stranger = aws.register_task_definition("stranger-burn", tuple(command))  # the public ECS API

    ran = run_task(aws, stranger)

    reason = stopped_reason(aws, ran)
    assert reason.startswith("CannotStartContainerError: the local AWS runs only ")
    assert "python -m pipeline.task" in reason and "pipeline.cli burn" in reason
    assert not out.exists()


@pytest.mark.parametrize("name", ["PYTHONPATH", "VIDP_FFPROBE", "VIDP_ffmpeg"])
def test_an_environment_override_that_would_run_other_code_is_not_run(
    aws: LocalAws, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    program = tmp_path / "program"
    program.write_text(f"#!/bin/sh\ntouch {marker}\n")
    program.chmod(0o755)
    value = str(tmp_path if name == "PYTHONPATH" else program)

    ran = run_task(aws, aws.deployed.task_definition_arn, {"environment": [{"name": name, "value": value}]})

    assert stopped_reason(aws, ran) == (
        f"CannotStartContainerError: environment override {name!r} is not run by the local AWS"
        " (only the job's VIDP_* settings)"
    )
    assert not marker.exists()


def test_the_pipeline_task_still_runs_with_its_vidp_overrides(aws: LocalAws) -> None:
    # Its own command, the job in VIDP_* overrides (as BurnAndCompress gives it): it runs, and
    # here says its configuration is incomplete (exit 3), as it would on Fargate.
    override = {"environment": [{"name": "VIDP_JOB_ID", "value": "guard-1"}]}

    ran = run_task(aws, aws.deployed.task_definition_arn, override)

    assert ran.returncode == 3 and stopped_reason(aws, ran).endswith("(exit code 3)")
    assert "INVALID_CONFIG" in ran.stderr
