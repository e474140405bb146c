"""A task process killed outright (SIGKILL: what running out of memory looks like on Fargate), on
the local AWS with the real definition, steps, task and ffmpeg.

Given a job whose BurnAndCompress task is SIGKILLed mid-encode, then its ffmpeg does not go on
encoding for nobody (looked up in /proc), the retry's start removes the scratch folder the
killed task could not, and the job still ends saved, with one output and nothing left locally.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import state_machine
from pipeline.local.aws import LocalAws
from pipeline.local.jobs import read_record
from pipeline.models import JobRequest, video_id_for
from pipeline.samples import make_clip
from pipeline.starter import Starter
from pipeline.timeline import build_timeline
from tests.conftest import SIMPLE_SRT
from tests.support.procfs import gone, killed_task_scratch

EXECUTION_TIMEOUT = 120.0
HEARTBEAT_SECONDS = 3  # the definition's 180 s, for a test: a killed task reports nothing


def test_the_local_aws_removes_the_scratch_of_killed_tasks_when_it_starts() -> None:
    stale = killed_task_scratch(Path(tempfile.gettempdir()))  # e.g. killed with the previous local AWS

    with LocalAws(handlers={}, start_from_uploads=False):
        assert not stale.exists()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tasks' VIDP_WORK_DIR: their scratch folders, and nothing else, go here."""
    return tmp_path_factory.mktemp("task-work")


@pytest.fixture(scope="module")
def aws(work: Path) -> Iterator[LocalAws]:
    environment = {"VIDP_HEARTBEAT_SECONDS": "0.5", "VIDP_WORK_DIR": str(work), "VIDP_THREADS": "1"}
    with LocalAws(task_environment=environment) as local:
        yield local


def with_quick_heartbeat(aws: LocalAws) -> str:
    """The pipeline's definition, its BurnAndCompress missing a heartbeat after seconds, not minutes."""
    definition: dict[str, Any] = state_machine.load(aws.deployed.substitutions)
    burn = definition["States"]["BurnAndCompress"]
    burn["HeartbeatSeconds"] = HEARTBEAT_SECONDS  # then StopTimedOutTask, and another attempt at once
    return aws.create_state_machine("vidp-local-pipeline-quick-heartbeat", definition)


def test_a_task_sigkilled_mid_encode_leaves_no_ffmpeg_and_no_scratch_and_the_job_ends_saved(
    aws: LocalAws, work: Path, tmp_path: Path
) -> None:
    # About 10 s of encoding (veryslow, one thread): killed 0.2 s in, ffmpeg would go on for long.
    clip = make_clip(tmp_path / "long.mp4", width=640, height=360, seconds=8, fps=30)
    s3 = aws.client("s3")
    s3.upload_file(str(clip), aws.bucket, "uploads/oom/long.mp4")
    s3.put_object(Bucket=aws.bucket, Key="uploads/oom/subs.srt", Body=SIMPLE_SRT)
    job = JobRequest.model_validate({
        "video": {"s3_uri": f"s3://{aws.bucket}/uploads/oom/long.mp4"},
        "subtitles": {"s3_uri": f"s3://{aws.bucket}/uploads/oom/subs.srt"},
        "resolution": "360p", "preset": "veryslow",
    })  # fmt: skip
    runner = aws.ecs_runner
    assert runner is not None
    before = len(runner.runs)
    runner.fail_next(1, "kill-mid-encode", after_seconds=0.2)

    started = Starter(with_quick_heartbeat(aws), client=aws.client("stepfunctions")).start(job)
    [killed] = runner.wait_for_runs(before + 1, timeout=EXECUTION_TIMEOUT)[before:]

    assert (killed.injected, killed.stopped_reason) == (
        "kill-mid-encode", "Essential container in task exited (killed by SIGKILL)",
    )  # fmt: skip
    [stale] = list(work.iterdir())  # the killed task's scratch: no finally could remove it
    assert gone(str(stale)) == [], "the killed task's ffmpeg is still running"

    described = aws.wait(started.execution_arn, timeout=EXECUTION_TIMEOUT)

    assert described["status"] == "SUCCEEDED", described
    timeline = build_timeline(aws.history(started.execution_arn))
    burns = [state for state in timeline if state.name == "BurnAndCompress"]
    assert len(burns) == 2 and burns[0].errors[0].startswith("States.HeartbeatTimeout")
    assert "StopTimedOutTask" in [state.name for state in timeline]  # the killed task stopped, then a new one
    record = read_record(aws, video_id_for(job.resolved_job_id()))
    assert record is not None and record.status == "saved"
    listed = s3.list_objects_v2(Bucket=aws.bucket, Prefix=f"videos/{record.video_id}/")
    assert len(listed.get("Contents", [])) == 1
    retry = runner.wait_for_runs(before + 2, timeout=10)[before + 1]
    assert retry.returncode == 0 and f'"folders": ["{stale.name}"]' in retry.stdout
    assert list(work.iterdir()) == []
