"""The whole-file job (``VIDP_TASK_KIND=whole-file``, the default): the task of every job today.

Download the video, the clean SRT and the style's font -> one ffmpeg pass over the whole video
-> upload the output -> write its manifest beside it. Raises on any failure.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.failures import TaskStopped
from pipeline.media.engine import burn
from pipeline.models import EncodeResult, TaskManifest
from pipeline.task import files
from pipeline.task.config import TaskConfig
from pipeline.task.reporting import log
from pipeline.task.variant import Variant, Workspace


def run(config: TaskConfig, workspace: Workspace) -> TaskManifest:
    """Download -> encode -> upload the output -> write the manifest; return the manifest."""
    scratch, engine = workspace.scratch, workspace.engine
    inputs = files.download_inputs(config.video_uri, config.subtitles_uri, config.style, scratch, engine)
    log("downloaded", config.job_id, video_bytes=inputs.video.stat().st_size)
    result = burn(
        inputs.video,
        inputs.subtitles,
        scratch / "output.mp4",
        config.encode_options(style=inputs.style),
        settings=engine,
        on_progress=workspace.on_progress,
        scratch=scratch,
    )
    log(
        "encoded",
        config.job_id,
        width=result.width,
        height=result.height,
        size=result.size,
        cues=result.cues,
        encode_seconds=result.encode_seconds,
    )
    files.upload_output(Path(result.output_path), config.output_uri)
    log("uploaded", config.job_id, output_uri=str(config.output_uri), size=result.size)
    manifest = make_manifest(config, result)
    files.write_manifest(config.manifest_location, manifest)
    if not workspace.still_ours():
        # Stopped (or failed) while this task ran: whoever ended the job has cleaned work/, maybe
        # before these writes landed. Take them back, so nothing of the job stays behind.
        files.delete_outputs(config.output_uri, config.manifest_location)
        raise TaskStopped(f"job {config.job_id} ended while its task ran: its output is removed")
    return manifest


def make_manifest(config: TaskConfig, result: EncodeResult) -> TaskManifest:
    """What Finalise reads: where the output is, what it came from, and what the engine made."""
    # output_path is a path inside this container: meaningless to anyone reading the manifest.
    fields = result.model_dump(exclude={"output_path"})
    return TaskManifest(
        job_id=config.job_id,
        output_uri=str(config.output_uri),
        output_bucket=config.output_uri.bucket,
        output_key=config.output_uri.key,
        video_uri=str(config.video_uri),
        subtitles_uri=str(config.subtitles_uri),
        **fields,
    )


VARIANT = Variant(kind="whole-file", config=TaskConfig, run=run)
