"""The Fargate task's runtime in-process, on moto: what a job finds on disk while it runs.

Given a job variant run by the task's runtime, when its ffmpeg pass runs, then every local file
(the downloads and the engine's job folder) is inside one private folder under VIDP_WORK_DIR,
the process's temp folder setting is untouched, and nothing is left afterwards.
(End to end as a subprocess: tests/integration/test_ffmpeg_task.py.)
"""

from __future__ import annotations

import dataclasses
import json
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pipeline.config import EngineSettings
from pipeline.models import EncodeOptions, SubtitleStyle, TaskManifest
from pipeline.task import files, whole_file
from pipeline.task.__main__ import EXIT_OK, run_job
from pipeline.task.config import ReportSettings, TaskConfig
from pipeline.task.variant import Variant, Workspace
from tests.conftest import SIMPLE_SRT, ClipFactory
from tests.support.aws import BUCKET, Aws
from tests.support.procfs import killed_task_scratch


def test_the_jobs_files_stay_in_the_task_scratch_folder_and_tempfile_tempdir_is_untouched(
    aws: Aws, clip: ClipFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = TaskConfig(
        job_id="scratch-1",
        video_uri=aws.put("incoming/s1/in.mp4", clip("in.mp4", width=160, height=120).read_bytes()),
        subtitles_uri=aws.put("work/s1/subtitles.srt", SIMPLE_SRT),
        output_uri=f"s3://{BUCKET}/work/s1/output.mp4",
        work_dir=work,
        resolution="360p",
        preset="ultrafast",
    )
    tempdir_before = tempfile.tempdir
    seen: dict[str, Any] = {}

    def observed(config: TaskConfig, workspace: Workspace) -> TaskManifest:
        """The whole-file job, looking at the disk while its ffmpeg pass runs."""

        def look(percent: float) -> None:
            if not seen:
                seen["files"] = {path.relative_to(work).as_posix() for path in work.rglob("*")}
                seen["mode"] = stat.S_IMODE(workspace.scratch.stat().st_mode)
                seen["tempdir"] = tempfile.tempdir
            workspace.on_progress(percent)

        return whole_file.run(config, dataclasses.replace(workspace, on_progress=look))

    variant = Variant(kind="observed-whole-file", config=TaskConfig, run=observed)

    code = run_job(variant, config, EngineSettings(threads=2), ReportSettings(), reporter=None)

    assert code == EXIT_OK
    [task] = {name.partition("/")[0] for name in seen["files"]}
    assert task.startswith("vidp-task-") and seen["mode"] == 0o700
    [job] = {name.split("/")[1] for name in seen["files"] if name.startswith(f"{task}/vidp-job-")}
    assert {
        f"{task}/video/in.mp4",
        f"{task}/subtitles/subtitles.srt",
        f"{task}/{job}/subtitles.srt",  # the engine's clean SRT and fonts folder
        f"{task}/{job}/fonts",
        f"{task}/.output.mp4.partial",
    } <= seen["files"]
    assert seen["tempdir"] == tempfile.tempdir == tempdir_before
    assert list(work.iterdir()) == []
    assert set(aws.keys("work/s1/")) == {
        "work/s1/subtitles.srt",
        "work/s1/output.mp4",
        "work/s1/manifest.json",
    }
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged[0]["event"] == "start" and logged[0]["kind"] == "observed-whole-file"
    assert logged[-1]["event"] == "done"


def test_the_engine_gets_every_encode_field_of_the_job() -> None:
    chosen = {"resolution": "1080p", "crf": 31, "preset": "slow", "upscale": True, "quality": True}
    assert {*chosen, "style"} == set(EncodeOptions.model_fields)  # a new field is chosen here too
    style = SubtitleStyle(bold=True, font_file="s3://fonts-bucket/brand.ttf")
    config = TaskConfig(
        job_id="options-1",
        video_uri="s3://in-bucket/a.mp4",
        subtitles_uri="s3://in-bucket/a.srt",
        output_uri="s3://out-bucket/a.mp4",
        style=style,
        **chosen,
    )
    downloaded = style.model_copy(update={"font_file": "/scratch/font/brand.ttf"})

    assert config.encode_options() == EncodeOptions(style=style, **chosen)
    assert config.encode_options(style=downloaded) == EncodeOptions(style=downloaded, **chosen)


def test_a_missing_input_is_invalid_input_as_the_task_has_always_reported_it(
    aws: Aws, tmp_path: Path
) -> None:
    from pipeline.adapters.s3 import S3Uri
    from pipeline.failures import InvalidInput
    from pipeline.task import files

    with pytest.raises(InvalidInput) as caught:
        files.download_video(S3Uri(BUCKET, "incoming/gone/clip.mp4"), tmp_path)

    # The class name is the error name Step Functions records; the adapter's ObjectNotFound is
    # a kind of it, but the state has always failed with InvalidInput here.
    assert type(caught.value) is InvalidInput
    assert str(caught.value) == f"s3://{BUCKET}/incoming/gone/clip.mp4: object not found"


class Looked(BaseModel):
    folders: list[str]


def test_a_start_removes_the_scratch_folders_of_killed_tasks_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    stale = killed_task_scratch(work)
    (work / "vidp-task-kept").mkdir()  # not named as ours: never touched
    config = TaskConfig(
        job_id="sweep-1",
        video_uri=f"s3://{BUCKET}/incoming/sweep/in.mp4",
        subtitles_uri=f"s3://{BUCKET}/work/sweep/subtitles.srt",
        output_uri=f"s3://{BUCKET}/work/sweep/output.mp4",
        work_dir=work,
    )

    seen: list[Looked] = []

    def look(config: TaskConfig, workspace: Workspace) -> Looked:
        """A job that only looks at the work folder while it runs."""
        seen.append(Looked(folders=sorted(path.name for path in work.iterdir())))
        return seen[-1]

    with files.scratch_folder(work) as running:  # another task, still running
        code = run_job(
            Variant(kind="look", config=TaskConfig, run=look),
            config,
            EngineSettings(threads=1),
            ReportSettings(),
            reporter=None,
        )
        assert running.exists()
    assert code == EXIT_OK
    [looked] = seen
    assert running.name in looked.folders and "vidp-task-kept" in looked.folders
    assert stale.name not in looked.folders and not stale.exists()
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["folders"] for e in logged if e["event"] == "stale-scratch-removed"] == [[stale.name]]
    assert sorted(path.name for path in work.iterdir()) == ["vidp-task-kept"]
