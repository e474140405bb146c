"""``pipeline.starter``: the one StartExecution policy, and the upload trigger's Lambda, on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline import starter
from pipeline.failures import JobConflict
from pipeline.models import JobRequest

BUCKET = "vidp-test-media"
REGION = "us-east-1"
SIDECAR = {"subtitles": {"url": "https://subs.example.com/a.srt"}, "resolution": "480p"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A bucket and a one-state machine in moto; the Lambda's VIDP_* settings point at them."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        starter.stepfunctions_client.cache_clear()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="vidp-test-pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/vidp-test",
        )["stateMachineArn"]
        monkeypatch.setenv("VIDP_BUCKET", BUCKET)
        monkeypatch.setenv("VIDP_STATE_MACHINE_ARN", machine)
        starter._upload_settings.cache_clear()
        yield s3, machine
        starter._upload_settings.cache_clear()
        starter.stepfunctions_client.cache_clear()


def upload_event(key: str, bucket: str = BUCKET) -> dict[str, Any]:
    """An S3 ``Object Created`` event as EventBridge delivers it (AWS's documented shape)."""
    return {
        "version": "0",
        "id": "2d4eba74-fd51-3966-4bfa-b013c9da8ff1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-01T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00"},
            "request-id": "57H08PA84AB1JZW0",
            "requester": "123456789012",
            "source-ip-address": "198.51.100.7",
            "reason": "PutObject",
        },
    }


def executions(machine: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=machine
    )["executions"]
    return listed


def request(**fields: Any) -> JobRequest:
    return JobRequest.model_validate(
        {"video": {"s3_uri": f"s3://{BUCKET}/incoming/a.mp4"}, "subtitles": SIDECAR["subtitles"], **fields}
    )


def test_a_request_starts_one_execution_named_by_its_job_id_with_the_job_id_in_its_input(
    aws: tuple[Any, str],
) -> None:
    _, machine = aws
    job = request(task_id="t-1")

    first = starter.Starter(machine).start(job)
    again = starter.Starter(machine).start(job)  # running or ended: the same execution

    assert first.execution_arn == again.execution_arn and first.job_id == job.resolved_job_id()
    assert [e["name"] for e in executions(machine)] == [job.resolved_job_id()]
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=first.execution_arn
    )
    assert json.loads(described["input"]) == {
        **job.model_dump(mode="json", exclude_none=True),
        "job_id": first.job_id,
    }


def test_a_job_id_taken_by_another_request_is_a_conflict_and_starts_nothing(aws: tuple[Any, str]) -> None:
    _, machine = aws
    starter.Starter(machine).start(request(job_id="order-42"))

    with pytest.raises(JobConflict, match="order-42"):
        starter.Starter(machine).start(request(job_id="order-42", resolution="1080p"))

    assert len(executions(machine)) == 1


def test_the_upload_lambda_starts_a_job_once_its_video_and_sidecar_are_both_there(
    aws: tuple[Any, str],
) -> None:
    s3, machine = aws
    s3.put_object(Bucket=BUCKET, Key="incoming/a b.mp4", Body=b"video")

    waiting = starter.handler(upload_event("incoming/a+b.mp4"), None)  # the key as S3 events encode it
    assert waiting == {"started": False, "reason": "no 'incoming/a b.mp4.job.json' and no subtitles-url / "
                       "subtitles-s3-uri metadata on the video"}  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key="incoming/a b.mp4.job.json", Body=json.dumps(SIDECAR).encode())
    first = starter.handler(upload_event("incoming/a+b.mp4.job.json"), None)
    again = starter.handler(upload_event("incoming/a+b.mp4"), None)  # a duplicate / late event

    assert first["started"] and again["execution_arn"] == first["execution_arn"]
    assert [e["name"] for e in executions(machine)] == [first["job_id"]]
    got = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=first["execution_arn"]
    )
    job = json.loads(got["input"])
    assert job["video"] == {"s3_uri": f"s3://{BUCKET}/incoming/a b.mp4"}
    assert job["job_id"] == first["job_id"] and job["resolution"] == "480p"


def test_video_metadata_can_name_the_subtitles(aws: tuple[Any, str]) -> None:
    s3 = aws[0]
    s3.put_object(
        Bucket=BUCKET,
        Key="incoming/m.mp4",
        Body=b"video",
        Metadata={"subtitles-url": "https://subs.example.com/m.srt"},
    )

    started = starter.handler(upload_event("incoming/m.mp4"), None)

    assert started["started"]
    got = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=started["execution_arn"]
    )
    assert json.loads(got["input"])["subtitles"] == {"url": "https://subs.example.com/m.srt"}


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (json.dumps({**SIDECAR, "resolution": "4k"}).encode(), "invalid job description: resolution"),
        # Every job id fits an execution name (80 characters): a longer one is refused, never cut.
        (json.dumps({**SIDECAR, "job_id": "j" * 81}).encode(), "invalid job description: job_id"),
        (b" " * (starter.MAX_SIDECAR_BYTES + 1), "is larger than 65536 bytes"),
    ],
)
def test_a_bad_sidecar_starts_nothing_and_says_why(aws: tuple[Any, str], sidecar: bytes, reason: str) -> None:
    s3, machine = aws
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4", Body=b"video")
    s3.put_object(Bucket=BUCKET, Key="incoming/v.mp4.job.json", Body=sidecar)

    answer = starter.handler(upload_event("incoming/v.mp4.job.json"), None)

    assert answer["started"] is False and reason in answer["reason"]
    assert executions(machine) == []


def test_an_event_that_is_not_an_upload_of_our_bucket_starts_nothing(aws: tuple[Any, str]) -> None:
    machine = aws[1]

    other = starter.handler(upload_event("incoming/x.mp4", bucket="someone-elses"), None)
    partial = starter.handler({"source": "aws.s3", "detail": {"object": {"key": "incoming/x.mp4"}}}, None)
    gone = starter.handler(upload_event("incoming/deleted.mp4"), None)

    assert other == {"started": False, "reason": f"the upload is in bucket 'someone-elses', not {BUCKET!r}"}
    assert partial["started"] is False and partial["reason"].startswith("not an S3 event:")
    assert gone == {"started": False, "reason": "the object is gone"}
    assert executions(machine) == []
