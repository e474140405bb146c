"""The local upload trigger's poller: S3 trouble while starting a job leaves the event in its
queue and the poller running, so the job starts once S3 answers again (at least once)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline.local.uploads import UploadStarter
from tests.unit.test_starter import BUCKET, REGION, SIDECAR, upload_event


class FlakyS3:
    """S3 that answers SlowDown (HTTP 503) to its first ``failures`` calls, as S3 does under load."""

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
    def __init__(self, s3: FlakyS3) -> None:
        self.s3 = s3

    def client(self, service: str) -> Any:
        return self.s3 if service == "s3" else boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


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


def test_s3_trouble_leaves_the_event_queued_and_the_poller_running(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4", Body=b"video")
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4.job.json", Body=json.dumps(SIDECAR).encode())
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="vidp-test-pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/vidp-test",
    )["stateMachineArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="uploads", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(upload_event("incoming/v.mp4")))
    flaky = FlakyS3(s3, failures=3)
    poller = UploadStarter(Clients(flaky), poll_seconds=0.02)

    poller.start(queue_url=queue, bucket=BUCKET, state_machine_arn=machine)
    try:
        deadline = time.monotonic() + 10
        while not poller.started and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        poller.stop()

    assert flaky.failures == 0  # S3 did fail, and the poller asked again
    assert [started.key for started in poller.started] == ["incoming/v.mp4"]
    assert poller.rejected == []
