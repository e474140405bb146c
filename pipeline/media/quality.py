"""SSIM and PSNR of an output against its source scaled to the same size."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pipeline.config import EngineSettings, engine_settings
from pipeline.failures import TranscodeFailed, TranscodeTimeout
from pipeline.media.probe import ffmpeg_input
from pipeline.models import QualityScore
from pipeline.processes import die_with_parent

_SSIM = re.compile(r"SSIM .*All:([0-9.]+)")
_PSNR = re.compile(r"PSNR .*average:([0-9.]+|inf)")


def quality_command(
    output: Path, source: Path, width: int, height: int, *, threads: int, ffmpeg: str
) -> list[str]:
    """ffmpeg argv comparing ``output`` (distorted) with ``source`` scaled to width x height."""
    graph = (
        "[0:v]setsar=1,format=yuv420p,split=2[d1][d2];"
        f"[1:v]scale={width}:{height}:flags=bicubic,setsar=1,format=yuv420p,split=2[r1][r2];"
        "[d1][r1]ssim;[d2][r2]psnr"
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
        "-protocol_whitelist", "file", "-threads", str(threads),
        "-i", ffmpeg_input(output),
        "-threads", str(threads),
        "-i", ffmpeg_input(source),
        "-filter_threads", str(threads),
        "-lavfi", graph, "-f", "null", "-",
    ]  # fmt: skip


def measure_quality(
    output: Path, source: Path, width: int, height: int, settings: EngineSettings | None = None
) -> QualityScore:
    """SSIM (0-1, 1 = identical) and PSNR (dB) over all frames. Burned captions count as a difference."""
    settings = settings or engine_settings()
    threads, ffmpeg, timeout = settings.threads, settings.ffmpeg, settings.quality_timeout_seconds
    argv = quality_command(output, source, width, height, threads=threads, ffmpeg=ffmpeg)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
    except subprocess.TimeoutExpired:
        raise TranscodeTimeout(f"quality measurement ran longer than {timeout:g} s") from None
    ssim, psnr = _SSIM.search(done.stderr), _PSNR.search(done.stderr)
    if done.returncode != 0 or ssim is None or psnr is None:
        raise TranscodeFailed("quality measurement failed: " + done.stderr.strip()[-200:])
    return QualityScore(
        ssim=round(float(ssim.group(1)), 5),
        psnr=99.0 if psnr.group(1) == "inf" else round(float(psnr.group(1)), 3),
    )
