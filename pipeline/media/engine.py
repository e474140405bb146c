"""The media engine: probe -> clean subtitles -> one ffmpeg pass -> verified output.

``burn`` is what the CLI and the Fargate task call. The output file appears at its final path
only when it is complete and verified; on any failure nothing is left there.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import EngineSettings, engine_settings
from pipeline.failures import InvalidInput, InvalidMedia, InvalidSubtitles
from pipeline.media.command import FONTS_DIR_NAME, SUBTITLES_NAME, EncodePlan, build_command
from pipeline.media.fonts import install_font
from pipeline.media.probe import ffmpeg_input, probe
from pipeline.media.quality import measure_quality
from pipeline.media.runner import ProgressCallback, run_ffmpeg
from pipeline.media.subtitles import CleanSubtitles, sanitize_srt
from pipeline.models import EncodeOptions, EncodeResult, MediaInfo

# An output shorter than this share of the source means ffmpeg stopped at damaged data.
_MIN_OUTPUT_SHARE = 0.9
_DURATION_SLACK_SECONDS = 0.5


@dataclass(frozen=True)
class PreparedJob:
    """Everything needed to run the encode: the job folder, the plan, the inputs it was made from."""

    workdir: Path
    plan: EncodePlan
    source: MediaInfo
    subtitles: CleanSubtitles


def read_subtitles(path: Path, settings: EngineSettings | None = None) -> bytes:
    """Read a subtitle file, never more than the size limit allows (the sanitizer rejects it)."""
    settings = settings or engine_settings()
    try:
        size = path.stat().st_size
        if size > settings.max_subtitle_bytes:
            raise InvalidSubtitles(
                f"SRT file is {size} bytes, over the limit of {settings.max_subtitle_bytes} bytes"
            )
        with path.open("rb") as handle:
            return handle.read(settings.max_subtitle_bytes + 1)
    except OSError as err:
        raise InvalidSubtitles(f"{path.name}: cannot read subtitle file ({err.strerror})") from None


@contextlib.contextmanager
def prepare(
    video: Path,
    subtitles: bytes,
    output: Path,
    options: EncodeOptions,
    settings: EngineSettings | None = None,
    *,
    scratch: Path | None = None,
) -> Iterator[PreparedJob]:
    """Probe and validate every input, write the job folder, and plan the ffmpeg pass.

    Every check that can reject the job runs here, before ffmpeg starts. The job folder (clean
    SRT at a fixed name, private fonts folder) is made under ``scratch`` (default: the system
    temp folder) and removed when the context ends.
    """
    settings = settings or engine_settings()
    source = probe(video, settings)
    clean = sanitize_srt(subtitles, max_bytes=settings.max_subtitle_bytes, max_cues=settings.max_cues)
    with tempfile.TemporaryDirectory(prefix="vidp-job-", dir=scratch) as tmp:
        workdir = Path(tmp)
        (workdir / SUBTITLES_NAME).write_text(clean.text, encoding="utf-8")
        fonts = workdir / FONTS_DIR_NAME
        fonts.mkdir()
        font_name = None
        if options.style.font_file:
            font_name = install_font(Path(options.style.font_file), fonts)
        plan = build_command(
            source,
            options,
            input_path=video,
            output_path=output,
            threads=settings.threads,
            ffmpeg=settings.ffmpeg,
            font_name=font_name,
        )
        yield PreparedJob(workdir=workdir, plan=plan, source=source, subtitles=clean)


def partial_path(output: Path) -> Path:
    """Where ffmpeg writes before the output is verified: hidden, beside the final path."""
    return output.with_name(f".{output.name}.partial")


def burn(
    video: Path,
    subtitles: bytes,
    output: Path,
    options: EncodeOptions | None = None,
    *,
    settings: EngineSettings | None = None,
    on_progress: ProgressCallback | None = None,
    scratch: Path | None = None,
) -> EncodeResult:
    """Burn ``subtitles`` (SRT bytes, any encoding) into ``video`` and compress it to ``output``.

    The engine's own files (the job folder) go under ``scratch``, default the system temp folder:
    the Fargate task passes its private folder, so one removal clears everything it wrote.
    """
    options = options or EncodeOptions()
    settings = settings or engine_settings()
    output = output.resolve()
    if not output.parent.is_dir():
        raise InvalidInput(f"output folder {output.parent} does not exist")
    partial = partial_path(output)
    try:
        with prepare(video, subtitles, partial, options, settings, scratch=scratch) as job:
            started = time.monotonic()
            run_ffmpeg(
                job.plan.argv,
                cwd=job.workdir,
                duration=job.source.duration,
                timeout=settings.encode_timeout_seconds,
                on_progress=on_progress,
                input_name=video.name,
                local_names={ffmpeg_input(video): video.name, ffmpeg_input(partial): output.name},
            )
            encode_seconds = time.monotonic() - started
        made = probe(partial, settings)
        check_complete(job.source, made, video.name)
        quality = None
        if options.quality:
            quality = measure_quality(partial, video, made.video.width, made.video.height, settings)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return EncodeResult(
        output_path=str(output),
        resolution=options.resolution,
        duration=made.duration,
        width=made.video.width,
        height=made.video.height,
        video_codec=made.video.codec,
        audio_codec=made.audio.codec if made.audio else None,
        pix_fmt=made.video.pix_fmt,
        size=made.size,
        bit_rate=made.bit_rate,
        crf=options.crf,
        preset=options.preset,
        cues=job.subtitles.cues,
        encode_seconds=round(encode_seconds, 3),
        quality=quality,
    )


def check_complete(source: MediaInfo, made: MediaInfo, name: str) -> None:
    """Raise InvalidMedia when the output is much shorter than the source said it was."""
    if made.duration + _DURATION_SLACK_SECONDS < source.duration * _MIN_OUTPUT_SHARE:
        raise InvalidMedia(
            f"{name}: video is truncated or damaged: only {made.duration:.1f} s of "
            f"{source.duration:.1f} s could be decoded"
        )
