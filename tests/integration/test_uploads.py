"""Uploads under ``incoming/`` on the embedded local AWS, through the real pipeline and ffmpeg.

Reliability case 28 (issue 8, case 6): new content at an existing key is a new job with its own
record and output; the same event twice is one execution. Issue 8, case 13: a bad or missing
sidecar starts nothing and says so: a log line, and ``VidP Upload Rejected`` on the bus.
Judged by what a user sees: executions, job records, the output objects (probed with ffprobe),
the events on the bus and the log lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.aws import LocalAws
from pipeline.local.jobs import read_record
from pipeline.media.probe import probe
from pipeline.models import JobRecord, video_id_for
from pipeline.samples import make_clip
from pipeline.starter import UploadOutcome
from tests.conftest import SIMPLE_SRT

EXECUTION_TIMEOUT = 90.0
SIDECAR_WAIT_SECONDS = 1


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(sidecar_wait_seconds=SIDECAR_WAIT_SECONDS) as local:
        yield local


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different cuts of a video: 320x240 for 1.5 s, and 256x144 for 1 s."""
    folder = tmp_path_factory.mktemp("media")
    first = make_clip(folder / "first.mp4", width=320, height=240, seconds=1.5, fps=15)
    second = make_clip(folder / "second.mp4", width=256, height=144, seconds=1.0, fps=15)
    return first, second


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)
    return value


def started_under(aws: LocalAws, video_key: str) -> list[UploadOutcome]:
    """The jobs the video's or its sidecar's events started, oldest first."""
    assert aws.uploads is not None
    keys = {video_key, video_key + ".job.json"}
    return [o for o in aws.uploads.outcomes if o.key in keys and o.outcome == "started"]


def outcomes(aws: LocalAws, key: str, *kinds: str) -> list[UploadOutcome]:
    assert aws.uploads is not None
    return [o for o in aws.uploads.outcomes if o.key == key and (not kinds or o.outcome in kinds)]


class Bus:
    """The events on the local bus, read once and kept (reading removes them from the queue)."""

    def __init__(self, aws: LocalAws) -> None:
        self.aws, self.seen = aws, list[dict[str, Any]]()

    def rejections(self, key_prefix: str) -> list[dict[str, Any]]:
        self.seen.extend(self.aws.events())
        return [
            event["detail"]
            for event in self.seen
            if event["detail-type"] == "VidP Upload Rejected"
            and event["detail"]["key"].startswith(key_prefix)
        ]


@pytest.fixture(scope="module")
def bus(aws: LocalAws) -> Bus:
    return Bus(aws)


def saved(aws: LocalAws, outcome: UploadOutcome) -> JobRecord:
    described = aws.wait(outcome.execution_arn, timeout=EXECUTION_TIMEOUT)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    record = read_record(aws, video_id_for(outcome.job_id))
    assert record is not None and record.status == "saved", record
    return record


def output_of(aws: LocalAws, record: JobRecord, tmp_path: Path) -> Path:
    assert record.s3_uri is not None
    path = tmp_path / f"{record.video_id}.mp4"
    aws.client("s3").download_file(aws.bucket, record.s3_uri.removeprefix(f"s3://{aws.bucket}/"), str(path))
    return path


def executions_of(aws: LocalAws, prefix: str) -> list[str]:
    """The ARNs of the executions whose video is under ``prefix``."""
    sfn, found = aws.client("stepfunctions"), []
    for execution in aws.executions():
        payload = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        if payload["video"]["s3_uri"].startswith(f"s3://{aws.bucket}/{prefix}"):
            found.append(execution["executionArn"])
    return found


def s3_event(aws: LocalAws, key: str) -> dict[str, Any]:
    """An ``Object Created`` event for ``key`` as S3 sends it through EventBridge."""
    return {"version": "0", "id": "dup-1", "source": "aws.s3", "detail-type": "Object Created",
            "account": "123456789012", "time": "2026-12-01T12:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{aws.bucket}"],
            "detail": {"version": "0", "bucket": {"name": aws.bucket}, "object": {"key": key},
                       "request-id": "R1", "requester": "123456789012", "reason": "PutObject"}}  # fmt: skip


def test_new_content_at_the_same_key_is_a_second_job_and_the_same_event_twice_is_one(
    aws: LocalAws, clips: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, key = aws.client("s3"), "incoming/versions/talk.mp4"
    s3.put_object(Bucket=aws.bucket, Key="incoming/versions/talk.srt", Body=SIMPLE_SRT)
    sidecar = {"subtitles": {"s3_uri": f"s3://{aws.bucket}/incoming/versions/talk.srt"},
               "resolution": "360p", "preset": "ultrafast", "task_id": "talk-1"}  # fmt: skip
    s3.put_object(Bucket=aws.bucket, Key=key + ".job.json", Body=json.dumps(sidecar).encode())
    s3.upload_file(str(clips[0]), aws.bucket, key)
    # Whichever of the video's and the sidecar's events comes last finds both: one job.
    [first] = wait_for(lambda: started_under(aws, key), "the first upload's job")
    first_record = saved(aws, first)

    s3.upload_file(str(clips[1]), aws.bucket, key)  # a corrected cut, under the same name
    second = wait_for(lambda: started_under(aws, key)[1:], "the second upload's job")[0]
    second_record = saved(aws, second)
    # The second upload's event, delivered again (S3 delivers at least once):
    aws.client("sqs").send_message(
        QueueUrl=aws.deployed.uploads_queue_url, MessageBody=json.dumps(s3_event(aws, key))
    )
    [duplicate] = wait_for(
        lambda: [o for o in outcomes(aws, key, "duplicate") if o.job_id == second.job_id], "the duplicate"
    )

    assert len(started_under(aws, key)) == 2 and first.job_id != second.job_id
    assert first_record.video_id != second_record.video_id
    assert duplicate.execution_arn == second.execution_arn
    names = [e["name"] for e in aws.executions()]
    assert names.count(first.job_id) == names.count(second.job_id) == 1
    assert executions_of(aws, "incoming/versions/") == [second.execution_arn, first.execution_arn]
    assert (first_record.resolution, second_record.resolution) == ("320x240", "256x144")
    assert first_record.task_id == second_record.task_id == "talk-1"
    old, new = probe(output_of(aws, first_record, tmp_path)), probe(output_of(aws, second_record, tmp_path))
    assert (old.video.width, old.video.height) == (320, 240)
    assert (new.video.width, new.video.height) == (256, 144) and abs(new.duration - 1.0) < 0.2
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    duplicates = [
        line for line in logged if line.get("outcome") == "duplicate" and line["job_id"] == second.job_id
    ]
    assert [line["message"] for line in duplicates] == ["upload is a duplicate of an already-started version"]


@pytest.mark.parametrize(
    ("case", "sidecar", "reason"),
    [
        ("not-json", b"{resolution: 480p", "'incoming/rejected/not-json/v.mp4.job.json' is not JSON"),
        ("bad-field", json.dumps({"subtitles": {"url": "https://subs.example.com/a"}, "crf": 99}).encode(),
         "invalid job description: crf: Input should be less than or equal to 51"),
        ("none", None, "no 'incoming/rejected/none/v.mp4.job.json' within 1 s of the video, and no "
         "subtitles-url / subtitles-s3-uri metadata on it"),
    ],
)  # fmt: skip
def test_a_bad_or_missing_sidecar_starts_nothing_and_is_said_on_the_bus_and_in_the_log(
    aws: LocalAws,
    bus: Bus,
    capsys: pytest.CaptureFixture[str],
    case: str,
    sidecar: bytes | None,
    reason: str,
) -> None:
    s3, folder = aws.client("s3"), f"incoming/rejected/{case}/"
    video = folder + "v.mp4"
    if sidecar is not None:
        s3.put_object(Bucket=aws.bucket, Key=video + ".job.json", Body=sidecar)
    s3.put_object(Bucket=aws.bucket, Key=video, Body=b"\0\0\0\x18ftypmp42 a video")

    rejected = wait_for(lambda: [r for r in bus.rejections(folder) if r["key"] == video], "the rejection")

    assert rejected == [{"bucket": aws.bucket, "key": video, "reason": reason}]
    if sidecar is not None:  # the sidecar's own event is rejected for the same reason
        sidecars = wait_for(lambda: [r for r in bus.rejections(folder) if r["key"] != video], "sidecar")
        assert sidecars == [{"bucket": aws.bucket, "key": video + ".job.json", "reason": reason}]
    assert executions_of(aws, folder) == []
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    lines = [line for line in logged if line["message"] == "upload rejected" and line["key"] == video]
    assert [(line["level"], line["reason"]) for line in lines] == [("WARNING", reason)]


def test_a_video_whose_sidecar_follows_within_the_wait_starts_its_job_and_is_not_rejected(
    aws: LocalAws, bus: Bus
) -> None:
    s3, video = aws.client("s3"), "incoming/ordered/v.mp4"
    s3.put_object(Bucket=aws.bucket, Key=video, Body=b"\0\0\0\x18ftypmp42 a video")
    wait_for(lambda: outcomes(aws, video, "waiting"), "the video waiting for its sidecar")
    sidecar = {"subtitles": {"s3_uri": f"s3://{aws.bucket}/uploads/ordered/none.srt"}}
    s3.put_object(Bucket=aws.bucket, Key=video + ".job.json", Body=json.dumps(sidecar).encode())

    [started] = wait_for(lambda: outcomes(aws, video + ".job.json", "started"), "the sidecar's job")
    [checked] = wait_for(lambda: outcomes(aws, video, "ignored"), "the sidecar check")

    assert checked.reason == "'incoming/ordered/v.mp4.job.json' came: its own event decided"
    assert executions_of(aws, "incoming/ordered/") == [started.execution_arn]
    assert bus.rejections("incoming/ordered/") == []
