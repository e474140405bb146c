"""Bundled sample media for the demo and the benchmark: an SRT file and generated clips."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

from pipeline.media.probe import ffmpeg_input


def sample_srt() -> bytes:
    """The bundled multilingual sample SRT (English, French, Japanese, Chinese, tags)."""
    return resources.files(__package__).joinpath("sample.srt").read_bytes()


def make_clip(
    path: Path,
    *,
    width: int = 1280,
    height: int = 720,
    seconds: float = 10.0,
    fps: int = 30,
    audio: bool = True,
    pattern: str = "testsrc2",
    extra_output_args: tuple[str, ...] = (),
    ffmpeg: str = "ffmpeg",
) -> Path:
    """Generate a deterministic H.264/AAC test clip with lavfi (moving picture, a tone).

    ``pattern`` is a lavfi video source, with or without options (``"color=c=gray"``).
    """
    argv = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"{pattern}{':' if '=' in pattern else '='}size={width}x{height}:rate={fps}",
    ]  # fmt: skip
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    argv += ["-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "96k"]
    argv += [*extra_output_args, ffmpeg_input(path)]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return path
