"""The local upload trigger's poller: S3 or EventBridge trouble while handling an upload leaves
the event in its queue and the poller running, so the job starts (or the rejection is put) once
AWS answers again (at least once)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline.deployment import EVENT_SOURCE
from pipeline.local.uploads import UploadStarter
from tests.unit.test_starter import BUCKET, BUS, REGION, SIDECAR, upload_event


class Flaky:
    """A client answering HTTP 503 to its first ``failures`` calls, as S3 (SlowDown) and
    EventBridge do under load."""

    def __init__(self, real: Any, failures: int) -> None:
        self._real, self.failures = real, failures

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failures > 0:
                self.failures -= 1
                error = {
                    "Error": {"Code": "SlowDown", "Message": "slow"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                }
                raise ClientError(error, name)  # type: ignore[arg-type]
            return method(*args, **kwargs)

        return call


class Clients:
    def __init__(self, **flaky: Flaky) -> None:
        self.flaky = flaky

    def client(self, service: str) -> Any:
        return self.flaky.get(service) or boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def deploy(sidecar: bytes) -> tuple[str, str]:
    """A bucket with a video and its sidecar, a machine, the bus read back through a queue, and
    the uploads queue holding the video's event; returns (machine ARN, uploads queue URL)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4", Body=b"video")
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4.job.json", Body=sidecar)
    machine: str = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="vidp-test-pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/vidp-test",
    )["stateMachineArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    readback = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=readback, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge = boto3.client("events", region_name=REGION)
    bridge.create_event_bus(Name=BUS)
    bridge.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    bridge.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    queue: str = sqs.create_queue(QueueName="uploads", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(upload_event("incoming/v.mp4")))
    return machine, queue


def run_until(poller: UploadStarter, machine: str, queue: str, done: Callable[[], bool]) -> None:
    poller.start(queue_url=queue, bucket=BUCKET, state_machine_arn=machine, event_bus=BUS)
    try:
        deadline = time.monotonic() + 10
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        poller.stop()


def test_s3_trouble_leaves_the_event_queued_and_the_poller_running(aws: None) -> None:
    machine, queue = deploy(json.dumps(SIDECAR).encode())
    flaky = Flaky(boto3.client("s3", region_name=REGION), failures=3)
    poller = UploadStarter(Clients(s3=flaky), poll_seconds=0.02)

    run_until(poller, machine, queue, lambda: bool(poller.started))

    assert flaky.failures == 0  # S3 did fail, and the poller asked again
    assert [started.key for started in poller.started] == ["incoming/v.mp4"]
    assert poller.rejected == []


def test_eventbridge_trouble_delays_a_rejection_but_never_loses_it(aws: None) -> None:
    machine, queue = deploy(b"{not json")
    flaky = Flaky(boto3.client("events", region_name=REGION), failures=2)
    poller = UploadStarter(Clients(events=flaky), poll_seconds=0.02)

    run_until(poller, machine, queue, lambda: bool(poller.rejected))

    assert flaky.failures == 0
    assert poller.rejected == [("incoming/v.mp4", "'incoming/v.mp4.job.json' is not JSON")]
    got = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=queue.replace("/uploads", "/events"), MaxNumberOfMessages=10
    )
    [event] = [json.loads(m["Body"]) for m in got["Messages"]]
    assert event["detail-type"] == "VidP Upload Rejected"
    assert event["detail"] == {"bucket": BUCKET, "key": "incoming/v.mp4", "reason": poller.rejected[0][1]}
