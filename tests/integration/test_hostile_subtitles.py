"""SRT files that are valid but cost libass far more than the encode, through the real pipeline.

50,000 cues at one instant (2 MB, inside the size and cue limits) took 93 s and 462 MiB to burn
into a 2 s clip: the job is refused at FetchSubtitles instead, recorded failed with one line,
its failure callback sent, nothing encoded. `make bench` measures what the limits still allow.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.aws import LocalAws
from pipeline.local.jobs import read_record
from pipeline.models import JobRecord, JobRequest, video_id_for
from pipeline.samples import make_clip
from pipeline.timeline import StateRun, build_timeline
from tests.support.receiver import CallbackReceiver

# Refused, this ends in a few seconds; burned, as before the limit, it takes about a minute.
EXECUTION_TIMEOUT = 45.0
STACKED = 50_000
STACKED_MESSAGE = f"SRT file has {STACKED} cues on screen at once at 00:00:00,500; at most 15 can overlap"


def stacked_srt(count: int) -> bytes:
    """``count`` cues, all on screen from 0.5 s to 1.5 s."""
    return b"".join(b"%d\n00:00:00,500 --> 00:00:01,500\nc%d\n\n" % (i, i) for i in range(1, count + 1))


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(allow_loopback=True) as local:
        yield local


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", width=160, height=120, seconds=2, fps=15)


def start(aws: LocalAws, clip: Path, name: str, srt: bytes, **fields: Any) -> JobRequest:
    s3 = aws.client("s3")
    s3.upload_file(str(clip), aws.bucket, f"uploads/{name}/clip.mp4")
    s3.put_object(Bucket=aws.bucket, Key=f"uploads/{name}/subs.srt", Body=srt)
    return JobRequest.model_validate({
        "video": {"s3_uri": f"s3://{aws.bucket}/uploads/{name}/clip.mp4"},
        "subtitles": {"s3_uri": f"s3://{aws.bucket}/uploads/{name}/subs.srt"},
        "resolution": "360p", "preset": "ultrafast", **fields,
    })  # fmt: skip


def run(aws: LocalAws, job: JobRequest) -> tuple[dict[str, Any], JobRecord | None, list[StateRun]]:
    arn = aws.start_job(job)
    described = aws.wait(arn, timeout=EXECUTION_TIMEOUT)
    record = read_record(aws, video_id_for(job.resolved_job_id()))
    return described, record, build_timeline(aws.history(arn))


def keys(aws: LocalAws, prefix: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_job_with_50000_cues_at_one_instant_fails_at_once_saying_why(aws: LocalAws, clip: Path) -> None:
    with CallbackReceiver(aws.webhook_secret) as receiver:
        job = start(aws, clip, "stacked", stacked_srt(STACKED), callback_url=receiver.url)
        described, record, timeline = run(aws, job)
        (callback,) = receiver.wait_for(1, timeout=10)

    assert described["status"] == "FAILED" and described["error"] == "InvalidSubtitles"
    assert record is not None and record.status == "failed"
    assert (record.error_code, record.failed_state) == ("INVALID_SUBTITLES", "FetchSubtitles")
    assert record.error_message == STACKED_MESSAGE
    names = [step.name for step in timeline]
    assert "BurnAndCompress" not in names
    assert next(step for step in timeline if step.name == "FetchSubtitles").attempts == 1  # not retried
    assert callback.verified, callback.error
    assert (callback.payload["status"], callback.payload["error_code"]) == ("failed", "INVALID_SUBTITLES")
    assert keys(aws, f"work/{record.job_id}/") == [] and keys(aws, f"videos/{record.video_id}/") == []


def test_a_job_with_15_cues_at_one_instant_is_burned(aws: LocalAws, clip: Path) -> None:
    described, record, _ = run(aws, start(aws, clip, "fifteen", stacked_srt(15)))

    assert described["status"] == "SUCCEEDED", described
    assert record is not None and record.status == "saved"
    assert record.s3_uri is not None and keys(aws, f"videos/{record.video_id}/")


def test_vidp_burn_refuses_the_same_file_with_the_same_line(clip: Path, tmp_path: Path) -> None:
    srt = tmp_path / "stacked.srt"
    srt.write_bytes(stacked_srt(STACKED))
    out = tmp_path / "out.mp4"

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "burn", str(clip), "--srt", str(srt), "-o", str(out)],
        capture_output=True, text=True, timeout=EXECUTION_TIMEOUT, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"vidp: error: {STACKED_MESSAGE}"]
    assert list(tmp_path.iterdir()) == [srt]
