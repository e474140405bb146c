"""The soak's inputs: tiny generated clips, SRTs (a plain one, one with thousands of stacked cues),
a font, bytes that are no video, and the hostile execution inputs of issue 8."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.samples import make_clip

SRT = (
    "1\n00:00:00,100 --> 00:00:00,800\nSOAK été [1]\n\n"
    "2\n00:00:00,900 --> 00:00:01,900\nSECOND: 'cue', {\\fs99}\n"
).encode()
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
AWS_INPUT_LIMIT = 256 * 1024  # StartExecution's input limit in AWS
STACKED_CUES = 2000
NESTING_DEPTH = 500


@dataclass(frozen=True)
class Clip:
    path: Path
    seconds: float


@dataclass(frozen=True)
class Media:
    """Generated once per run in ``folder``."""

    short: Clip  # most jobs: a second of 320x240
    long: Clip  # jobs with a process fault: ffmpeg runs about a second, long enough to be hit
    v2: Clip  # the corrected content a re-upload brings: another duration, so it can be told apart
    not_video: Path
    stacked_srt: bytes

    @classmethod
    def make(cls, folder: Path) -> Media:
        folder.mkdir(parents=True, exist_ok=True)
        not_video = folder / "random.mp4"
        not_video.write_bytes(os.urandom(8192))
        return cls(
            short=_clip(folder / "short.mp4", width=320, height=240, seconds=1.0, fps=15),
            long=_clip(folder / "long.mp4", width=640, height=360, seconds=12.0, fps=25),
            v2=_clip(folder / "v2.mp4", width=320, height=240, seconds=2.0, fps=15),
            not_video=not_video,
            stacked_srt=stacked_srt(STACKED_CUES),
        )


def _clip(path: Path, *, width: int, height: int, seconds: float, fps: int) -> Clip:
    return Clip(make_clip(path, width=width, height=height, seconds=seconds, fps=fps), seconds)


def stacked_srt(cues: int) -> bytes:
    """``cues`` cues all on screen from 0.5 s to 1.5 s (issue 8 case 9)."""
    blocks = (f"{n}\n00:00:00,500 --> 00:00:01,500\nstacked {n}\n" for n in range(1, cues + 1))
    return "\n".join(blocks).encode()


def non_object(variant: str) -> Any:
    """Execution inputs that are JSON but not an object (case 1)."""
    return {"string": "a string", "list": [1, 2], "null": None, "number": 42}[variant]


def with_failure_key(fields: dict[str, Any], variant: str) -> dict[str, Any]:
    """A request with a top-level ``failure`` the Catch's ResultPath cannot extend (case 2)."""
    return {**fields, "failure": "boom" if variant == "string" else ["boom"]}


def large(fields: dict[str, Any], variant: str) -> dict[str, Any]:
    """A request whose input is just under AWS's 256 KB limit, or over it (case 3)."""
    target = AWS_INPUT_LIMIT - 200 if variant == "just-under-256k" else 300_000
    base = len(json.dumps({**fields, "metadata": {"blob": ""}}).encode())
    return {**fields, "metadata": {"blob": "x" * max(0, target - base)}}


def deep(fields: dict[str, Any]) -> dict[str, Any]:
    """A request whose metadata is nested NESTING_DEPTH lists deep (case 4)."""
    nested: list[Any] = []
    for _ in range(NESTING_DEPTH - 1):
        nested = [nested]
    return {**fields, "metadata": {"deep": nested}}
