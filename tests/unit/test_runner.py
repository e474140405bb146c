"""The ffmpeg runner: progress, deadlines and error classes (with stand-in processes)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipeline.failures import InvalidMedia, TranscodeFailed, TranscodeTimeout
from pipeline.media.runner import classify_failure, parse_progress, run_ffmpeg
from tests.support.procfs import gone, running_with


def test_progress_is_reported_per_block_and_ends_at_100() -> None:
    seen: list[float] = []
    lines = ["frame=1", "out_time_us=N/A", "progress=continue", "out_time_us=2500000", "progress=continue",
             "out_time_us=5000000", "progress=continue", "out_time_us=9990000", "progress=end"]  # fmt: skip
    parse_progress(lines, 10.0, seen.append)
    assert seen == [0.0, 25.0, 50.0, 100.0]


def test_progress_never_claims_done_before_the_end() -> None:
    seen: list[float] = []
    parse_progress(["out_time_us=12000000", "progress=continue"], 10.0, seen.append)
    assert seen == [99.9]


def test_a_process_past_its_deadline_is_killed(tmp_path: Path) -> None:
    script = "import time; print('progress=continue', flush=True); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(TranscodeTimeout, match=r"longer than 0\.5 s"):
        run_ffmpeg([sys.executable, "-c", script], cwd=tmp_path, duration=1.0, timeout=0.5)
    assert time.monotonic() - started < 10


def test_a_failing_process_reports_the_tail_of_its_errors(tmp_path: Path) -> None:
    script = "import sys; print('[libx264 @ 0x55d0c3a5c2c0] out of memory', file=sys.stderr); sys.exit(187)"
    with pytest.raises(TranscodeFailed, match=r"status 187: libx264: out of memory"):
        run_ffmpeg([sys.executable, "-c", script], cwd=tmp_path, duration=1.0, timeout=30)


def test_damaged_input_messages_become_invalid_media() -> None:
    error = classify_failure(
        1, ["[mov,mp4 @ 0x1] moov atom not found", "in.mp4: Invalid data found"], "in.mp4"
    )
    assert isinstance(error, InvalidMedia)
    assert str(error) == "in.mp4: video is damaged or truncated (mov,mp4: moov atom not found)"


def test_killed_by_a_signal_is_transient() -> None:
    error = classify_failure(-9, [], "in.mp4")
    assert type(error) is TranscodeFailed and "signal 9 (SIGKILL)" in str(error)


def test_the_process_dies_with_its_caller_even_when_the_caller_is_sigkilled(tmp_path: Path) -> None:
    # The caller runs a stand-in ffmpeg that would sleep a minute, and is killed as the OOM
    # killer kills: no finally runs. The stand-in's argv carries a mark the caller's does not.
    mark = f"stand-in-ffmpeg-{uuid.uuid4().hex}"
    caller = (
        "import pathlib, sys\n"
        "from pipeline.media.runner import run_ffmpeg\n"
        f"mark = {mark[:10]!r} + {mark[10:]!r}\n"
        "argv = [sys.executable, '-c', 'import time; time.sleep(60)', mark]\n"
        "run_ffmpeg(argv, cwd=pathlib.Path('.'), duration=1.0, timeout=120)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", caller], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not running_with(mark):
            assert process.poll() is None and time.monotonic() < deadline, "the stand-in never started"
            time.sleep(0.05)

        process.kill()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert gone(mark) == [], "the stand-in ffmpeg outlived its SIGKILLed caller"
