"""The whole pipeline on the embedded local AWS: the real definition, steps, task and ffmpeg.

Each scenario is judged by what a user sees: the execution's status and history, the job
record, the objects in the bucket, the callbacks a real receiver got, the events put.
"""

from __future__ import annotations

import json
import os
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
from tests.conftest import SIMPLE_SRT
from tests.support.receiver import CallbackReceiver
from tests.support.server import LocalServer, Reply

EXECUTION_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(allow_loopback=True) as local:
        yield local


@pytest.fixture(scope="module")
def srt_server() -> Iterator[LocalServer]:
    """SRT files on 127.0.0.1: each test routes its own path."""
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("media") / "clip.mp4", width=320, height=240, seconds=1.5, fps=15
    )


def upload(aws: LocalAws, path: Path, key: str) -> str:
    aws.client("s3").upload_file(str(path), aws.bucket, key)
    return f"s3://{aws.bucket}/{key}"


def subtitles_in_s3(aws: LocalAws, key: str, data: bytes = SIMPLE_SRT) -> dict[str, str]:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=data)
    return {"s3_uri": f"s3://{aws.bucket}/{key}"}


def run(aws: LocalAws, request: JobRequest) -> tuple[dict[str, Any], JobRecord | None, list[StateRun]]:
    """Start the job, wait for its end (with a deadline); return execution, record, timeline."""
    arn = aws.start_job(request)
    described = aws.wait(arn, timeout=EXECUTION_TIMEOUT)
    record = read_record(aws, video_id_for(request.resolved_job_id()))
    return described, record, build_timeline(aws.history(arn))


def state(timeline: list[StateRun], name: str) -> StateRun:
    return next(run for run in timeline if run.name == name)


def keys(aws: LocalAws, prefix: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def request(video: str, subtitles: dict[str, str], **fields: Any) -> JobRequest:
    return JobRequest.model_validate({"video": {"s3_uri": video}, "subtitles": subtitles,
                                      "resolution": "360p", "preset": "ultrafast", **fields})  # fmt: skip


def test_success_path_saves_records_calls_back_and_cleans_up(aws: LocalAws, clip: Path) -> None:
    video = upload(aws, clip, "uploads/success/My clip.mp4")
    with CallbackReceiver(aws.webhook_secret) as receiver:
        job = request(video, subtitles_in_s3(aws, "uploads/success/subs.srt"), callback_url=receiver.url,
                      task_id="task-001", batch_id="batch-7", metadata={"origin": "test"})  # fmt: skip
        described, record, timeline = run(aws, job)
        callbacks = receiver.wait_for(1, timeout=10)

    assert described["status"] == "SUCCEEDED"
    assert [step.name for step in timeline] == [
        "ValidateInput", "IsDuplicate", "FetchSubtitles", "BurnAndCompress",
        "Finalise", "RecordMetadata", "Notify", "Done",
    ]  # fmt: skip
    assert record is not None and record.status == "saved"
    assert (record.resolution, record.codecs, record.task_id, record.batch_id) == (
        "320x240", "h264/aac", "task-001", "batch-7")  # fmt: skip
    assert record.file_size and record.duration and abs(record.duration - 1.5) < 0.2
    final_key = record.s3_uri.removeprefix(f"s3://{aws.bucket}/") if record.s3_uri else ""
    assert final_key == f"videos/{record.video_id}/My_clip_360p.mp4"
    assert keys(aws, final_key) == [final_key]
    assert keys(aws, f"work/{record.job_id}/") == []
    (callback,) = callbacks
    assert callback.verified, callback.error
    body = callback.payload
    assert (body["status"], body["task_id"], body["video_id"]) == ("completed", "task-001", record.video_id)
    assert body["results"]["video_analysis"]["resolution"] == "320x240"
    assert body["metadata"] == {"origin": "test"} and final_key in body["file_url"]
    assert record.callback is not None and record.callback.status == "delivered"
    events = aws.events(wait_seconds=5)
    processed = [e for e in events if e["detail-type"] == "VidP Video Processed"]
    assert any(e["detail"]["video_id"] == record.video_id for e in processed)


def test_invalid_video_fails_cleanly_without_retrying_the_task(aws: LocalAws, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(4096))
    video = upload(aws, broken, "uploads/broken/broken.mp4")
    with CallbackReceiver(aws.webhook_secret) as receiver:
        job = request(video, subtitles_in_s3(aws, "uploads/broken/subs.srt"), callback_url=receiver.url)
        described, record, timeline = run(aws, job)
        (callback,) = receiver.wait_for(1, timeout=10)

    assert described["status"] == "FAILED" and described["error"] == "InvalidMedia"
    assert record is not None and record.status == "failed"
    assert (record.error_code, record.failed_state) == ("INVALID_MEDIA", "BurnAndCompress")
    assert "not a readable video" in (record.error_message or "")
    assert state(timeline, "BurnAndCompress").attempts == 1  # never retried
    assert callback.verified and callback.payload["status"] == "failed"
    assert callback.payload["error_code"] == "INVALID_MEDIA"
    assert keys(aws, f"work/{record.job_id}/") == [] and keys(aws, f"videos/{record.video_id}/") == []


def test_srt_url_answering_404_fails_the_job(aws: LocalAws, clip: Path, srt_server: LocalServer) -> None:
    video = upload(aws, clip, "uploads/srt404/clip.mp4")
    url = srt_server.route("/missing.srt", Reply(404, b"nope"))
    described, record, timeline = run(aws, request(video, {"url": url}))
    assert described["status"] == "FAILED"
    assert record is not None and (record.error_code, record.failed_state) == (
        "INVALID_SUBTITLES",
        "FetchSubtitles",
    )
    assert "404" in (record.error_message or "")
    assert state(timeline, "FetchSubtitles").attempts == 1


def test_srt_server_500_then_200_is_retried_and_the_retry_is_in_the_history(
    aws: LocalAws, clip: Path, srt_server: LocalServer
) -> None:
    video = upload(aws, clip, "uploads/flaky/clip.mp4")
    url = srt_server.route("/flaky.srt", Reply(500, b"nope"), Reply(200, SIMPLE_SRT))
    described, record, timeline = run(aws, request(video, {"url": url}))
    assert described["status"] == "SUCCEEDED"
    assert record is not None and record.status == "saved"
    fetch = state(timeline, "FetchSubtitles")
    assert fetch.attempts == 2 and fetch.errors and fetch.errors[0].startswith("SubtitleFetchFailed")
    assert [item.path for item in srt_server.received].count("/flaky.srt") == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/subs.srt",
        "http://[::ffff:169.254.169.254]/x",
    ],
)
def test_srt_url_to_a_private_or_metadata_address_is_refused(aws: LocalAws, clip: Path, url: str) -> None:
    video = upload(aws, clip, f"uploads/ssrf-{abs(hash(url))}/clip.mp4")
    described, record, timeline = run(aws, request(video, {"url": url}))
    assert described["status"] == "FAILED"
    assert record is not None and (record.error_code, record.failed_state) == ("UNSAFE_URL", "FetchSubtitles")
    assert state(timeline, "FetchSubtitles").attempts == 1


def test_ffmpeg_killed_once_is_retried_and_writes_one_output(aws: LocalAws, tmp_path: Path) -> None:
    longer = make_clip(tmp_path / "longer.mp4", width=1280, height=720, seconds=4, fps=25)
    video = upload(aws, longer, "uploads/crash/clip.mp4")
    assert aws.ecs_runner is not None
    aws.ecs_runner.fail_next(1, "kill-ffmpeg", after_seconds=0.05)
    described, record, timeline = run(aws, request(video, subtitles_in_s3(aws, "uploads/crash/subs.srt")))
    assert described["status"] == "SUCCEEDED"
    encode = state(timeline, "BurnAndCompress")
    assert encode.attempts == 2 and "TranscodeFailed" in encode.errors[0]
    assert record is not None and record.status == "saved"
    assert len(keys(aws, f"videos/{record.video_id}/")) == 1 and keys(aws, f"work/{record.job_id}/") == []


def test_callback_500_then_200_is_delivered_with_the_same_webhook_id(aws: LocalAws, clip: Path) -> None:
    video = upload(aws, clip, "uploads/cb-retry/clip.mp4")
    with CallbackReceiver(aws.webhook_secret, statuses=[500, 200]) as receiver:
        job = request(video, subtitles_in_s3(aws, "uploads/cb-retry/subs.srt"), callback_url=receiver.url)
        described, record, _ = run(aws, job)
        received = receiver.wait_for(2, timeout=10)
    assert described["status"] == "SUCCEEDED"
    assert [r.status for r in received] == [500, 200] and all(r.verified for r in received)
    assert received[0].webhook_id == received[1].webhook_id
    assert record is not None and record.callback is not None
    assert (record.callback.status, record.callback.attempts) == ("delivered", 2)


def test_a_callback_that_keeps_failing_never_fails_a_saved_job(aws: LocalAws, clip: Path) -> None:
    video = upload(aws, clip, "uploads/cb-down/clip.mp4")
    with CallbackReceiver(aws.webhook_secret, statuses=[503] * 10) as receiver:
        job = request(video, subtitles_in_s3(aws, "uploads/cb-down/subs.srt"), callback_url=receiver.url)
        described, record, _ = run(aws, job)
    assert described["status"] == "SUCCEEDED"
    assert record is not None and record.status == "saved"
    assert record.callback is not None and record.callback.status == "failed"
    assert record.callback.http_status == 503 and record.callback.attempts == len(receiver.received) > 1


def test_the_same_job_started_twice_is_one_job_with_one_callback(aws: LocalAws, clip: Path) -> None:
    video = upload(aws, clip, "uploads/twice/clip.mp4")
    with CallbackReceiver(aws.webhook_secret) as receiver:
        job = request(video, subtitles_in_s3(aws, "uploads/twice/subs.srt"), callback_url=receiver.url)
        first, second = aws.start_job(job), aws.start_job(job)
        assert first == second  # same name and input: the same execution
        assert aws.wait(first, timeout=EXECUTION_TIMEOUT)["status"] == "SUCCEEDED"
        # The same job under another execution name (a re-delivered event) is a no-op.
        payload = {**job.model_dump(mode="json", exclude_none=True), "job_id": job.resolved_job_id()}
        other = aws.start_execution(payload, name="redelivered-" + job.resolved_job_id()[:40])
        assert aws.wait(other, timeout=EXECUTION_TIMEOUT)["status"] == "SUCCEEDED"
        assert [r.name for r in build_timeline(aws.history(other))][-1] == "AlreadySubmitted"
        receiver.wait_for(2, timeout=2)  # a second callback, if any, would arrive by now
    assert len(receiver.received) == 1
    names = [e["name"] for e in aws.executions() if job.resolved_job_id() in e["name"]]
    assert sorted(names) == sorted([job.resolved_job_id(), "redelivered-" + job.resolved_job_id()[:40]])


def vidp(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=cwd, check=False)


def test_vidp_run_prints_the_result_and_saves_the_output(clip: Path, tmp_path: Path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_bytes(SIMPLE_SRT)
    with CallbackReceiver("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") as receiver:
        hook = receiver.url + "?token=tok-never-shown"
        done = vidp("run", "--video", clip, "--srt", srt, "--resolution", "360p", "--json",
                    "--callback-url", hook, cwd=tmp_path)  # fmt: skip
        assert receiver.wait_for(1, timeout=10)[0].path.endswith("?token=tok-never-shown")
    assert done.returncode == 0, done.stderr
    assert "tok-never-shown" not in done.stdout + done.stderr  # the record is shown without its URL
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCEEDED" and result["record"]["status"] == "saved"
    assert Path(result["output_path"]).is_file() and Path(result["output_path"]).parent == tmp_path / "out"
    assert [step["state"] for step in result["timeline"]][-1] == "Done"
    assert result["execution_arn"].endswith(result["job_id"])


def test_vidp_run_on_a_bad_video_exits_2_with_one_line(tmp_path: Path) -> None:
    bad, srt = tmp_path / "bad.mp4", tmp_path / "subs.srt"
    bad.write_bytes(b"not a video at all" * 100)
    srt.write_bytes(SIMPLE_SRT)
    done = vidp("run", "--video", bad, "--srt", srt, cwd=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("vidp: error: job failed in BurnAndCompress: INVALID_MEDIA")


def test_vidp_run_without_a_callback_url_calls_the_products_own_receiver(clip: Path, tmp_path: Path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_bytes(SIMPLE_SRT)
    done = vidp("run", "--video", clip, "--srt", srt, "--resolution", "360p", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "callback (completed) received by the local receiver, signature verified" in done.stderr
    assert json.loads(done.stdout)["record"]["callback"]["status"] == "delivered"
