"""Shared fixtures: small generated media so the suite stays fast."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.samples import make_clip, sample_srt

ClipFactory = Callable[..., Path]

SIMPLE_SRT = (
    b"1\n00:00:00,200 --> 00:00:00,900\nHELLO WORLD\n\n2\n00:00:01,600 --> 00:00:02,400\nSECOND CUE\n"
)


@pytest.fixture
def clip(tmp_path: Path) -> ClipFactory:
    """Make a small lavfi clip in tmp_path: ``clip("a.mp4", width=320, height=240, seconds=2)``."""

    def make(name: str = "clip.mp4", **kwargs: Any) -> Path:
        kwargs.setdefault("width", 320)
        kwargs.setdefault("height", 240)
        kwargs.setdefault("seconds", 2.0)
        kwargs.setdefault("fps", 15)
        return make_clip(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def simple_srt() -> bytes:
    """Two cues: 0.2-0.9 s and 1.6-2.4 s, nothing in between."""
    return SIMPLE_SRT


@pytest.fixture
def bundled_srt() -> bytes:
    return sample_srt()
