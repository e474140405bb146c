"""The one ffmpeg pass: scale -> burn subtitles at output size -> yuv420p -> H.264/AAC MP4.

Nothing from the caller reaches the filtergraph: the subtitles and fonts live at fixed
relative names inside the job's private folder (ffmpeg runs with that folder as its working
directory), sizes are integers computed here, and style values are validated by the model
and by ``style.force_style``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.media.probe import ffmpeg_input
from pipeline.media.style import force_style
from pipeline.models import RESOLUTIONS, EncodeOptions, MediaInfo, VideoStream

SUBTITLES_NAME = "subtitles.srt"
FONTS_DIR_NAME = "fonts"
AUDIO_BITRATE = "128k"

# HDR (PQ/HLG) -> SDR BT.709 with zimg: linearise, tone-map, back to BT.709 limited range.
_TONEMAP = (
    "zscale=tin={transfer}:min=bt2020nc:pin=bt2020:t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv"
)


@dataclass(frozen=True)
class EncodePlan:
    """An ffmpeg argv to run inside the job folder, and the picture size it produces."""

    argv: list[str]
    width: int
    height: int


def _even(value: float) -> int:
    return max(2, round(value / 2.0) * 2)


def output_size(video: VideoStream, target: int, *, upscale: bool = False) -> tuple[int, int]:
    """Size whose short side is ``target`` (displayed orientation), aspect kept, both even.

    A source whose short side is already at or below the target keeps its size (rounded down
    to even numbers) unless ``upscale`` is set.
    """
    width, height = video.width, video.height
    short = min(width, height)
    if short <= target and not upscale:
        return max(2, width - width % 2), max(2, height - height % 2)
    factor = target / short
    if width <= height:
        return target, _even(height * factor)
    return _even(width * factor), target


def video_filter(source: MediaInfo, width: int, height: int, style_overrides: str) -> str:
    """The filtergraph: only integers, fixed names and validated style values."""
    steps = [f"scale={width}:{height}:flags=bicubic", "setsar=1"]
    if source.video.hdr and source.video.color_transfer:
        steps.append(_TONEMAP.format(transfer=source.video.color_transfer))
    steps.append(
        f"subtitles=filename={SUBTITLES_NAME}:fontsdir={FONTS_DIR_NAME}:force_style='{style_overrides}'"
    )
    # 10-bit or 4:2:2/4:4:4 input would otherwise give High 10/4:4:4 H.264 that browsers reject.
    steps.append("format=yuv420p")
    return ",".join(steps)


def build_command(
    source: MediaInfo,
    options: EncodeOptions,
    *,
    input_path: Path,
    output_path: Path,
    threads: int,
    ffmpeg: str = "ffmpeg",
    font_name: str | None = None,
) -> EncodePlan:
    """The argv of the single ffmpeg pass, to run with the job folder as working directory."""
    width, height = output_size(source.video, RESOLUTIONS[options.resolution], upscale=options.upscale)
    overrides = force_style(options.style, width, height, font_name=font_name)
    argv = [
        ffmpeg,
        "-hide_banner", "-nostdin", "-nostats", "-y",
        "-loglevel", "error",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file",
        "-threads", str(threads),
        "-i", ffmpeg_input(input_path),
        "-map", "0:v:0",
        "-map", "0:a:0?",
        # Phone videos carry GPS position and device tags: never republish them.
        "-map_metadata", "-1",
        "-map_chapters", "-1",
        "-filter_threads", str(threads),
        "-vf", video_filter(source, width, height, overrides),
        # Keep source timestamps: forcing a constant rate drifts VFR phone video off its audio.
        "-fps_mode", "vfr",
        "-c:v", "libx264",
        "-preset", options.preset,
        "-crf", str(options.crf),
        "-pix_fmt", "yuv420p",
        "-threads", str(threads),
    ]  # fmt: skip
    if source.video.hdr:
        argv += ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    if source.audio is not None:
        argv += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
        if (source.audio.channels or 0) > 2:
            argv += ["-ac", "2"]
    argv += [
        "-max_muxing_queue_size", "1024",
        "-movflags", "+faststart",
        "-f", "mp4",
        ffmpeg_input(output_path),
    ]  # fmt: skip
    return EncodePlan(argv=argv, width=width, height=height)
