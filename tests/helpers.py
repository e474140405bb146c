"""Helpers for tests that look at real pixels of real encodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.media.probe import ffmpeg_input


def gray_frame(video: Path, at: float) -> tuple[int, int, bytes]:
    """Decode the frame shown at ``at`` seconds as 8-bit luma: (width, height, pixels)."""
    size = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", ffmpeg_input(video)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split(",")  # fmt: skip
    width, height = int(size[0]), int(size[1])
    pixels = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{at}", "-i", ffmpeg_input(video),
         "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert len(pixels) == width * height, "decoded frame has the wrong size"
    return width, height, pixels


def band(frame: tuple[int, int, bytes], top: float, bottom: float) -> bytes:
    """Rows between ``top`` and ``bottom`` (fractions of the height) of a gray frame."""
    width, height, pixels = frame
    return pixels[int(top * height) * width : int(bottom * height) * width]


def count_unlike(pixels: bytes, reference: int, tolerance: int = 40) -> int:
    """How many pixels differ from ``reference`` luma by more than ``tolerance``."""
    return sum(1 for value in pixels if abs(value - reference) > tolerance)
