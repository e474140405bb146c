"""The job's files: the scratch folder, inputs from S3 into it, outputs and the manifest back.

Shared by every job variant, so they all name local copies, clean up and write S3 the same way.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from pipeline.adapters import s3
from pipeline.adapters.s3 import S3Uri
from pipeline.config import EngineSettings
from pipeline.failures import InvalidInput, ObjectNotFound, VidpError
from pipeline.media.engine import read_subtitles
from pipeline.models import SubtitleStyle
from pipeline.task import scratch

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_MAX_NAME_BYTES = 200  # file systems allow 255; leave room for the downloader's temporary suffix


@contextlib.contextmanager
def scratch_folder(work_root: Path | None) -> Iterator[Path]:
    """A private (0700) folder under ``work_root`` (default: the temp dir), removed however the job ends.

    Every local file of the job lives in it: jobs pass it on to the engine as ``scratch``. A
    SIGKILL leaves it behind; ``remove_stale_scratch`` at the next start removes it.
    """
    folder = scratch.create(work_root)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_scratch(work_root: Path | None) -> list[Path]:
    """Remove the scratch folders under ``work_root`` left by tasks that were killed; return them."""
    return scratch.remove_stale(work_root)


def local_copy(folder: Path, uri: S3Uri, fallback: str) -> Path:
    """Where to download ``uri``: its own name when usable, so engine messages name the caller's file.

    Each input gets its own folder, so names cannot collide; a name the file system would
    refuse or misread (``..``, too long) falls back to ``fallback`` plus the key's suffix.
    """
    folder.mkdir()
    name = uri.name
    if (
        name in {"", ".", ".."}
        or "\0" in name
        or len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES
    ):
        suffix = Path(name).suffix
        name = fallback + (suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else "")
    return folder / name


def fetch(uri: S3Uri, path: Path) -> None:
    """Download an input. A missing one is reported as InvalidInput, the error name the state
    has always failed with (the adapter's ObjectNotFound is one of its kinds)."""
    try:
        s3.download(uri, path)
    except ObjectNotFound as err:
        raise InvalidInput(str(err)) from None


def download_video(uri: S3Uri, scratch: Path) -> Path:
    """Download the source video into ``scratch``; return its local path."""
    video = local_copy(scratch / "video", uri, fallback="video")
    fetch(uri, video)
    return video


def download_subtitles(uri: S3Uri, scratch: Path, engine: EngineSettings) -> bytes:
    """Download the clean SRT into ``scratch``; return its bytes (never more than the engine allows)."""
    path = local_copy(scratch / "subtitles", uri, fallback="subtitles")
    fetch(uri, path)
    return read_subtitles(path, engine)


def download_font(style: SubtitleStyle, scratch: Path) -> SubtitleStyle:
    """Download the style's ``s3://`` font, if any; return the style naming the local copy."""
    if style.font_file is None:
        return style
    uri = S3Uri.parse(style.font_file)
    font = local_copy(scratch / "font", uri, fallback="font")
    fetch(uri, font)
    return style.model_copy(update={"font_file": str(font)})


@dataclass(frozen=True)
class Inputs:
    """A burn's inputs, local."""

    video: Path
    subtitles: bytes
    style: SubtitleStyle  # with font_file pointing at the downloaded font, if any


def download_inputs(
    video: S3Uri, subtitles: S3Uri, style: SubtitleStyle, scratch: Path, engine: EngineSettings
) -> Inputs:
    """Download the video, the clean SRT and the style's font (if any) into ``scratch``."""
    return Inputs(
        video=download_video(video, scratch),
        subtitles=download_subtitles(subtitles, scratch, engine),
        style=download_font(style, scratch),
    )


def upload_output(path: Path, uri: S3Uri) -> None:
    """Upload an encoded MP4; if that does not complete, leave nothing at ``uri``."""
    try:
        s3.upload(path, uri, content_type="video/mp4")
    except BaseException:
        # A failed upload leaves nothing behind, but a SIGTERM can land while a single PUT is
        # in flight and boto3 lets that PUT finish: remove what it may have written.
        with contextlib.suppress(VidpError):
            s3.delete(uri)
        raise


def write_manifest(uri: S3Uri, manifest: BaseModel) -> None:
    """Write the job's manifest: last, after every output it names is complete."""
    s3.put_json(uri, manifest.model_dump(mode="json"))


def delete_outputs(*uris: S3Uri) -> None:
    """Delete what the task wrote (a job that ended meanwhile keeps nothing of it)."""
    for uri in uris:
        s3.delete(uri)
