"""``pipeline.starter``: the one StartExecution policy, and the upload trigger's Lambda, on moto.

Judged by what a user sees: the executions (names, inputs), the ``VidP Upload Rejected`` events
on the bus, the Lambda's answer, its log lines and the EMF metrics CloudWatch would read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline import starter, uploads
from pipeline.adapters import events, s3
from pipeline.adapters.executions import stepfunctions_client
from pipeline.deployment import EVENT_SOURCE, METRIC_NAMESPACE, UPLOADS_REJECTED_METRIC
from pipeline.failures import JobConflict
from pipeline.models import JobRequest

BUCKET = "vidp-test-media"
REGION = "us-east-1"
BUS = "vidp-test"
SERVICE = "vidp-test-UploadStarter"
SIDECAR = {"subtitles": {"url": "https://subs.example.com/a.srt"}, "resolution": "480p"}


@dataclass
class Moto:
    s3: Any
    machine: str
    events_queue: str
    checks_queue: str

    def put(self, key: str, body: bytes | dict[str, Any] = b"video", **extra: Any) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data, **extra)

    def executions(self) -> list[dict[str, Any]]:
        return executions(self.machine)

    def execution_input(self, arn: str) -> dict[str, Any]:
        described = boto3.client("stepfunctions", region_name=REGION).describe_execution(executionArn=arn)
        loaded: dict[str, Any] = json.loads(described["input"])
        return loaded

    def rejections(self) -> list[dict[str, Any]]:
        """``VidP Upload Rejected`` events the bus delivered (read and removed)."""
        sqs = boto3.client("sqs", region_name=REGION)
        got = sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        bodies = [json.loads(m["Body"]) for m in got.get("Messages", [])]
        for message in got.get("Messages", []):
            sqs.delete_message(QueueUrl=self.events_queue, ReceiptHandle=message["ReceiptHandle"])
        return [b for b in bodies if b["detail-type"] == "VidP Upload Rejected"]

    def sidecar_checks(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Sidecar checks that have become visible within ``wait`` s (read and removed)."""
        sqs = boto3.client("sqs", region_name=REGION)
        deadline = time.monotonic() + wait
        while True:
            got = sqs.receive_message(QueueUrl=self.checks_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if messages or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for message in messages:
            sqs.delete_message(QueueUrl=self.checks_queue, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]


def _clear_caches() -> None:
    for factory in (stepfunctions_client, starter.sqs_client, events.events_client, s3.s3_client):
        factory.cache_clear()
    starter._upload_settings.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    """A bucket, a one-state machine, the bus (read back through a queue) and the sidecar check
    queue in moto; the Lambda's settings point at them."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        _clear_caches()
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="vidp-test-pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/vidp-test",
        )["stateMachineArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        events_queue = sqs.create_queue(QueueName="vidp-test-events")["QueueUrl"]
        checks_queue = sqs.create_queue(QueueName="vidp-test-sidecar-checks")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        bridge = boto3.client("events", region_name=REGION)
        bridge.create_event_bus(Name=BUS)
        bridge.put_rule(
            Name="readback", EventBusName=BUS, EventPattern=json.dumps({"source": [EVENT_SOURCE]})
        )
        bridge.put_targets(Rule="readback", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
        monkeypatch.setenv("VIDP_BUCKET", BUCKET)
        monkeypatch.setenv("VIDP_STATE_MACHINE_ARN", machine)
        monkeypatch.setenv("VIDP_EVENT_BUS_NAME", BUS)
        monkeypatch.setenv("VIDP_SIDECAR_CHECKS_QUEUE_URL", checks_queue)
        monkeypatch.setenv("VIDP_SIDECAR_WAIT_SECONDS", "1")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
        yield Moto(s3=client, machine=machine, events_queue=events_queue, checks_queue=checks_queue)
        _clear_caches()


def upload_event(
    key: str, bucket: str = BUCKET, etag: str = "b1946ac92492d2347c6235b4d2611184"
) -> dict[str, Any]:
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
            "object": {"key": key, "size": 5, "etag": etag, "sequencer": "00"},
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


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- StartExecution ---------------------------------------------------------------------------


def test_a_request_starts_one_execution_named_by_its_job_id_with_the_job_id_in_its_input(aws: Moto) -> None:
    job = request(task_id="t-1")

    first = starter.Starter(aws.machine).start(job)
    again = starter.Starter(aws.machine).start(job)  # running or ended: the same execution

    assert first.execution_arn == again.execution_arn and first.job_id == job.resolved_job_id()
    assert (first.new, again.new) == (True, False)
    assert [e["name"] for e in aws.executions()] == [job.resolved_job_id()]
    assert aws.execution_input(first.execution_arn) == {
        **job.model_dump(mode="json", exclude_none=True),
        "job_id": first.job_id,
    }


def test_a_job_id_taken_by_another_request_is_a_conflict_and_starts_nothing(aws: Moto) -> None:
    starter.Starter(aws.machine).start(request(job_id="order-42"))

    with pytest.raises(JobConflict, match="order-42"):
        starter.Starter(aws.machine).start(request(job_id="order-42", resolution="1080p"))

    assert len(aws.executions()) == 1


# --- which upload starts which job ---------------------------------------------------------------


def test_a_video_then_its_sidecar_starts_the_job_once_and_the_late_check_rejects_nothing(aws: Moto) -> None:
    aws.put("incoming/a b.mp4")

    waiting = starter.handler(upload_event("incoming/a+b.mp4"), None)  # the key as S3 events encode it
    assert waiting["outcome"] == "waiting"
    assert waiting["reason"].startswith("no 'incoming/a b.mp4.job.json' and no subtitles-url")
    aws.put("incoming/a b.mp4.job.json", SIDECAR)
    first = starter.handler(upload_event("incoming/a+b.mp4.job.json"), None)
    again = starter.handler(upload_event("incoming/a+b.mp4"), None)  # a duplicate / late event
    [check] = aws.sidecar_checks(wait=5)  # delayed by VIDP_SIDECAR_WAIT_SECONDS
    checked = starter.handler(check, None)

    assert first["outcome"] == "started" and again["outcome"] == "duplicate"
    assert again["execution_arn"] == first["execution_arn"]
    assert [e["name"] for e in aws.executions()] == [first["job_id"]]
    job = aws.execution_input(first["execution_arn"])
    assert job["video"] == {"s3_uri": f"s3://{BUCKET}/incoming/a b.mp4"}
    assert job["job_id"] == first["job_id"] and job["resolution"] == "480p"
    assert checked == {
        "outcome": "ignored",
        "key": "incoming/a b.mp4",
        "reason": "'incoming/a b.mp4.job.json' came: its own event decided",
    }
    assert aws.rejections() == []


def test_a_sidecar_before_its_video_waits_for_the_video_and_rejects_nothing(aws: Moto) -> None:
    aws.put("incoming/s.mp4.job.json", SIDECAR)

    waiting = starter.handler(upload_event("incoming/s.mp4.job.json"), None)
    aws.put("incoming/s.mp4")
    started = starter.handler(upload_event("incoming/s.mp4"), None)

    assert waiting == {
        "outcome": "waiting",
        "key": "incoming/s.mp4.job.json",
        "reason": "waiting for the video 'incoming/s.mp4': its upload starts the job",
    }
    assert started["outcome"] == "started"
    assert aws.sidecar_checks() == [] and aws.rejections() == []


def test_a_video_whose_sidecar_never_comes_is_rejected_after_the_wait(
    aws: Moto, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put("incoming/lonely.mp4")

    starter.handler(upload_event("incoming/lonely.mp4"), None)
    assert aws.rejections() == []  # not yet: the sidecar may follow
    [check] = aws.sidecar_checks(wait=5)
    answer = starter.handler({"Records": [sqs_record(check)]}, None)  # as the check queue delivers it

    reason = (
        "no 'incoming/lonely.mp4.job.json' within 1 s of the video, and no subtitles-url / "
        "subtitles-s3-uri metadata on it"
    )
    assert answer == {"outcome": "rejected", "key": "incoming/lonely.mp4", "reason": reason}
    [event] = aws.rejections()
    assert event["source"] == EVENT_SOURCE
    assert event["detail"] == {"bucket": BUCKET, "key": "incoming/lonely.mp4", "reason": reason}
    assert aws.executions() == []
    captured = capsys.readouterr()
    logged = [line for line in json_lines(captured.err) if line["message"] == "upload rejected"]
    assert [(line["key"], line["reason"], line["level"]) for line in logged] == [
        ("incoming/lonely.mp4", reason, "WARNING")
    ]
    [emf] = [line for line in json_lines(captured.out) if "_aws" in line and UPLOADS_REJECTED_METRIC in line]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRIC_NAMESPACE and directive["Dimensions"] == [["service"]]
    assert emf["service"] == SERVICE and emf[UPLOADS_REJECTED_METRIC] == [1.0]


def test_a_video_uploaded_again_during_the_wait_is_left_to_its_new_event(aws: Moto) -> None:
    aws.put("incoming/r.mp4", b"first")
    starter.handler(upload_event("incoming/r.mp4"), None)
    aws.put("incoming/r.mp4", b"second", Metadata={"subtitles-url": "https://subs.example.com/r.srt"})

    [check] = aws.sidecar_checks(wait=5)

    assert (
        starter.handler(check, None)["reason"] == "the video was uploaded again: that upload's event decides"
    )
    assert aws.rejections() == []


def sqs_record(body: dict[str, Any]) -> dict[str, Any]:
    """One record of an SQS batch as Lambda's event source mapping delivers it."""
    return {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:vidp-test-sidecar-checks",
        "awsRegion": REGION,
    }


def test_video_metadata_can_name_the_subtitles(aws: Moto) -> None:
    aws.put("incoming/m.mp4", Metadata={"subtitles-url": "https://subs.example.com/m.srt"})

    started = starter.handler(upload_event("incoming/m.mp4"), None)

    assert started["outcome"] == "started"
    assert aws.execution_input(started["execution_arn"])["subtitles"] == {
        "url": "https://subs.example.com/m.srt"
    }


# --- versions: new content at the same key is a new job (reliability case 28) --------------------


def test_new_content_at_the_same_key_is_a_new_job_and_the_same_version_again_is_not(
    aws: Moto, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put("incoming/v.mp4.job.json", SIDECAR)
    aws.put("incoming/v.mp4", b"first cut")
    first = starter.handler(upload_event("incoming/v.mp4"), None)
    aws.put("incoming/v.mp4", b"corrected cut")

    second = starter.handler(upload_event("incoming/v.mp4"), None)
    twice = starter.handler(upload_event("incoming/v.mp4"), None)
    # The first upload's event, late (S3 events come in any order): what is there now decides.
    late = starter.handler(upload_event("incoming/v.mp4", etag="stale"), None)

    assert (first["outcome"], second["outcome"], twice["outcome"], late["outcome"]) == (
        "started", "started", "duplicate", "duplicate")  # fmt: skip
    assert first["job_id"] != second["job_id"] == twice["job_id"] == late["job_id"]
    assert sorted(e["name"] for e in aws.executions()) == sorted([first["job_id"], second["job_id"]])
    assert aws.execution_input(second["execution_arn"])["video"] == {
        "s3_uri": f"s3://{BUCKET}/incoming/v.mp4"
    }
    logged = [line for line in json_lines(capsys.readouterr().err) if line.get("outcome") == "duplicate"]
    assert [line["message"] for line in logged] == ["upload is a duplicate of an already-started version"] * 2
    assert all(line["job_id"] == second["job_id"] for line in logged)


def test_a_changed_sidecar_or_s3_srt_is_a_new_job(aws: Moto) -> None:
    srt = f"s3://{BUCKET}/incoming/t.srt"
    aws.put("incoming/t.srt", b"1\n00:00:00,000 --> 00:00:01,000\nTYPO\n")
    aws.put("incoming/t.mp4")
    aws.put("incoming/t.mp4.job.json", {"subtitles": {"s3_uri": srt}})
    first = starter.handler(upload_event("incoming/t.mp4.job.json"), None)

    aws.put("incoming/t.srt", b"1\n00:00:00,000 --> 00:00:01,000\nFIXED\n")
    srt_upload = starter.handler(upload_event("incoming/t.srt"), None)
    aws.put("incoming/t.mp4.job.json", {"subtitles": {"s3_uri": srt}})  # the same sidecar again
    corrected = starter.handler(upload_event("incoming/t.mp4.job.json"), None)
    aws.put("incoming/t.mp4.job.json", {"subtitles": {"s3_uri": srt}, "resolution": "360p"})
    smaller = starter.handler(upload_event("incoming/t.mp4.job.json"), None)

    assert srt_upload["outcome"] == "ignored" and srt_upload["reason"].startswith("a subtitles or font file")
    assert [first["outcome"], corrected["outcome"], smaller["outcome"]] == ["started"] * 3
    assert len({first["job_id"], corrected["job_id"], smaller["job_id"]}) == 3
    assert aws.execution_input(smaller["execution_arn"])["resolution"] == "360p"


def test_in_a_versioned_bucket_the_same_bytes_uploaded_again_are_a_new_version(aws: Moto) -> None:
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    aws.put("incoming/w.mp4.job.json", SIDECAR)
    aws.put("incoming/w.mp4", b"same bytes")
    first = starter.handler(upload_event("incoming/w.mp4"), None)
    aws.put("incoming/w.mp4", b"same bytes")

    again = starter.handler(upload_event("incoming/w.mp4"), None)
    duplicate = starter.handler(upload_event("incoming/w.mp4"), None)

    assert (first["outcome"], again["outcome"], duplicate["outcome"]) == ("started", "started", "duplicate")
    assert first["job_id"] != again["job_id"] == duplicate["job_id"]


def test_in_an_unversioned_bucket_the_same_bytes_again_are_the_same_version(aws: Moto) -> None:
    aws.put("incoming/u.mp4.job.json", SIDECAR)
    aws.put("incoming/u.mp4", b"same bytes")
    first = starter.handler(upload_event("incoming/u.mp4"), None)
    aws.put("incoming/u.mp4", b"same bytes")

    again = starter.handler(upload_event("incoming/u.mp4"), None)

    assert again["outcome"] == "duplicate" and again["job_id"] == first["job_id"]


def test_a_sidecar_naming_its_job_id_keeps_it_and_says_a_new_version_needs_a_new_one(aws: Moto) -> None:
    aws.put("incoming/n.mp4.job.json", {**SIDECAR, "job_id": "order-7"})
    aws.put("incoming/n.mp4", b"first cut")
    first = starter.handler(upload_event("incoming/n.mp4"), None)
    aws.put("incoming/n.mp4", b"corrected cut")

    again = starter.handler(upload_event("incoming/n.mp4"), None)
    aws.put("incoming/n.mp4.job.json", {**SIDECAR, "job_id": "order-7", "resolution": "720p"})
    other = starter.handler(upload_event("incoming/n.mp4.job.json"), None)

    assert first["job_id"] == again["job_id"] == "order-7" and again["outcome"] == "duplicate"
    assert again["reason"].endswith("(its sidecar names the job_id: a new version needs a new job_id)")
    assert (
        other["outcome"] == "rejected"
        and "job 'order-7' already exists with another request" in other["reason"]
    )
    assert [event["detail"]["key"] for event in aws.rejections()] == ["incoming/n.mp4.job.json"]
    assert [e["name"] for e in aws.executions()] == ["order-7"]


# --- rejected uploads: each one said, put on the bus, counted ---------------------------------------


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b"{not json", "'incoming/v.mp4.job.json' is not JSON"),
        (b"[1, 2]", "'incoming/v.mp4.job.json' is not a JSON object"),
        (json.dumps({**SIDECAR, "resolution": "4k"}).encode(), "invalid job description: resolution"),
        # Every job id fits an execution name (80 characters): a longer one is refused, never cut.
        (json.dumps({**SIDECAR, "job_id": "j" * 81}).encode(), "invalid job description: job_id"),
        (b" " * (uploads.MAX_SIDECAR_BYTES + 1), "is larger than 65536 bytes"),
    ],
)
@pytest.mark.parametrize("video_first", [True, False])
def test_a_bad_sidecar_is_rejected_with_its_reason_on_the_bus(
    aws: Moto, sidecar: bytes, reason: str, video_first: bool
) -> None:
    if video_first:
        aws.put("incoming/v.mp4")
    aws.put("incoming/v.mp4.job.json", sidecar)

    answer = starter.handler(upload_event("incoming/v.mp4.job.json"), None)

    assert answer["outcome"] == "rejected" and reason in answer["reason"]
    [event] = aws.rejections()
    assert event["detail-type"] == "VidP Upload Rejected"
    assert event["detail"]["key"] == "incoming/v.mp4.job.json" and reason in event["detail"]["reason"]
    assert aws.executions() == []


def test_what_is_not_an_upload_of_ours_is_rejected_and_what_is_gone_is_ignored(aws: Moto) -> None:
    other = starter.handler(upload_event("incoming/x.mp4", bucket="someone-elses"), None)
    partial = starter.handler({"source": "aws.s3", "detail": {"object": {"key": "incoming/x.mp4"}}}, None)
    gone = starter.handler(upload_event("incoming/deleted.mp4"), None)

    assert other["reason"] == f"the upload is in bucket 'someone-elses', not {BUCKET!r}"
    assert partial["outcome"] == "rejected" and partial["reason"].startswith("not an S3 event:")
    assert gone == {"outcome": "ignored", "key": "incoming/deleted.mp4", "reason": "the object is gone"}
    assert [e["detail"]["key"] for e in aws.rejections()] == ["incoming/x.mp4", "?"]
    assert aws.executions() == []


def test_a_json_that_is_not_named_as_a_sidecar_is_rejected_and_a_folder_marker_ignored(aws: Moto) -> None:
    aws.put("incoming/clip.mp4.json", SIDECAR)
    aws.put("incoming/new folder/", b"")

    stray = starter.handler(upload_event("incoming/clip.mp4.json"), None)
    folder = starter.handler(upload_event("incoming/new+folder/"), None)

    assert stray["reason"] == (
        "'incoming/clip.mp4.json' is neither a video nor a sidecar: a sidecar is named '<video key>.job.json'"
    )
    assert folder["outcome"] == "ignored"
    assert [e["detail"]["key"] for e in aws.rejections()] == ["incoming/clip.mp4.json"]


def test_with_no_wait_a_video_without_a_sidecar_is_rejected_at_once(
    aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDP_SIDECAR_WAIT_SECONDS", "0")
    starter._upload_settings.cache_clear()
    aws.put("incoming/now.mp4")

    answer = starter.handler(upload_event("incoming/now.mp4"), None)

    assert answer["outcome"] == "rejected" and answer["reason"].startswith("no 'incoming/now.mp4.job.json'")
    assert len(aws.rejections()) == 1 and aws.sidecar_checks() == []


def test_a_wait_without_a_queue_to_wait_in_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="VIDP_SIDECAR_CHECKS_QUEUE_URL is needed"):
        starter.UploadSettings(
            bucket=BUCKET,
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:x",
            event_bus_name=BUS,
            sidecar_wait_seconds=60,
        )
