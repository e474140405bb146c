"""The benchmark's input: a deterministic 1080p30 clip with detail and motion, and a dense SRT.

The picture is a Mandelbrot zoom rendered at full 1080p (fine detail along the set's edge,
every pixel moving), a testsrc2 card gliding over it (sharp edges, a running clock) and mild
film grain. The zoom speed is fixed in frames, not relative to the clip length, so the first
10 s of a 30 s source and a 10 s source are the same pictures.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
from pathlib import Path

from pipeline.media.probe import ffmpeg_input

WIDTH, HEIGHT, FPS = 1920, 1080, 30
# 3.0 -> 0.02 wide over 900 frames (30 s): a 150x zoom into the edge of the set.
VIDEO_GRAPH = (
    f"mandelbrot=size={WIDTH}x{HEIGHT}:rate={FPS}:maxiter=512:start_scale=3:end_scale=0.02:end_pts=900,"
    "format=yuv420p[bg];"
    f"testsrc2=size=640x360:rate={FPS},format=yuv420p[card];"
    "[bg][card]overlay=x='(W-w)*(0.5+0.45*sin(0.7*t))':y='(H-h)*(0.5+0.45*cos(0.5*t))',"
    "noise=alls=2:allf=t:all_seed=42[v]"
)
AUDIO_GRAPH = "sine=frequency=440:beep_factor=4:sample_rate=48000,aformat=channel_layouts=stereo[a]"
# Near-lossless, so the reference is the picture above and not x264's idea of it.
ENCODE_ARGS = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "192k")  # fmt: skip

CUE_EVERY_SECONDS = 1.5
CUE_SECONDS = 1.4
_FIRST_LINES = (
    "Café crème et croissants, s'il vous plaît.",
    "Über den Wolken: Grüße aus München!",
    "¿Dónde está la estación, señor Muñoz?",
    "Noël, Zoë et Anaïs à l'hôtel près du théâtre.",
    "The quick brown fox jumps over the lazy dog.",
)
_SECOND_LINES = (
    "字幕のテストです。東京は晴れ。",
    "这是一个中文字幕测试。",
    "São Paulo — ação, coração, informação.",
    "자막 테스트입니다. 안녕하세요!",
    "Smørrebrød, crème brûlée & jalapeño.",
)


def _key(seconds: float) -> str:
    text = "|".join([VIDEO_GRAPH, AUDIO_GRAPH, *ENCODE_ARGS, f"{seconds:g}"])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def make_source(cache_dir: Path, seconds: float) -> Path:
    """The generated clip of ``seconds``, made once and kept in ``cache_dir`` keyed by its parameters."""
    path = cache_dir / f"source-{seconds:g}s-{_key(seconds)}.mp4"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    argv = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-filter_complex", f"{VIDEO_GRAPH};{AUDIO_GRAPH}",
        "-map", "[v]", "-map", "[a]", "-t", f"{seconds:g}", *ENCODE_ARGS,
        "-f", "mp4", ffmpeg_input(partial),
    ]  # fmt: skip
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    partial.replace(path)  # only a complete file ever has the cached name
    return path


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def srt_text(seconds: float) -> str:
    """A cue every 1.5 s, two lines each (accents, CJK, Hangul), covering ``seconds``."""
    cues = []
    count = math.ceil(seconds / CUE_EVERY_SECONDS)
    for i in range(count):
        start = i * CUE_EVERY_SECONDS
        first = _FIRST_LINES[i % len(_FIRST_LINES)]
        second = _SECOND_LINES[(i * 2) % len(_SECOND_LINES)]
        timing = f"{_timestamp(start)} --> {_timestamp(start + CUE_SECONDS)}"
        cues.append(f"{i + 1}\n{timing}\n[{i + 1}] {first}\n{second}\n")
    return "\n".join(cues)


def make_srt(cache_dir: Path, seconds: float) -> Path:
    path = cache_dir / f"subtitles-{seconds:g}s.srt"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(srt_text(seconds), encoding="utf-8")
    return path
