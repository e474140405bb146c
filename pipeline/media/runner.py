"""Run ffmpeg with a deadline, report progress, and turn failures into typed errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

from pipeline.failures import InvalidMedia, TranscodeFailed, TranscodeTimeout
from pipeline.processes import die_with_parent

ProgressCallback = Callable[[float], None]
"""Called with the percentage done (0-100), from a reader thread."""

_STDERR_TAIL_LINES = 30
_KILL_GRACE_SECONDS = 5.0
# ffmpeg messages that mean the input itself is damaged: retrying cannot help.
_INPUT_DAMAGE_MARKERS = (
    "invalid data found when processing input",
    "moov atom not found",
    "partial file",
    "error reading header",
    "could not find codec parameters",
    "invalid nal unit size",
    "corrupt",
    "truncat",
)


def parse_progress(lines: Iterable[str], duration: float, on_progress: ProgressCallback) -> None:
    """Feed ``-progress`` key=value lines; report a percentage at each block's end."""
    position = 0.0
    for raw in lines:
        key, _, value = raw.strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit():
            position = max(position, int(value) / 1_000_000)
        elif key == "progress":
            done = (
                100.0 if value == "end" else min(99.9, 100.0 * position / duration) if duration > 0 else 0.0
            )
            on_progress(round(done, 1))


def run_ffmpeg(
    argv: list[str],
    *,
    cwd: Path,
    duration: float,
    timeout: float,
    on_progress: ProgressCallback | None = None,
    input_name: str = "input",
    local_names: Mapping[str, str] | None = None,
) -> None:
    """Run an ffmpeg argv (``-progress pipe:1`` expected) to completion or raise.

    Raises InvalidMedia when ffmpeg's errors say the input is damaged, TranscodeTimeout after
    ``timeout`` seconds (ffmpeg is killed), TranscodeFailed otherwise. ``local_names`` maps
    local paths as ffmpeg prints them to the names a caller knows, for the error message.
    """
    tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # our own process group: a kill reaches nothing else
        # A SIGKILLed caller (out of memory) runs no finally: the kernel then kills ffmpeg. This
        # thread waits for ffmpeg, so the signal comes when the process ends, not earlier.
        preexec_fn=die_with_parent(),
    )
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - set by PIPE
    readers = [
        threading.Thread(target=_collect, args=(proc.stderr, tail), daemon=True),
        threading.Thread(
            target=parse_progress, args=(proc.stdout, duration, on_progress or _ignore), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise TranscodeTimeout(
            f"ffmpeg ran longer than {timeout:g} s and was stopped (after {time.monotonic() - started:.0f} s)"
        ) from None
    finally:
        # Any exit path (a timeout, SIGTERM turned into an exception, Ctrl-C) stops ffmpeg.
        if proc.poll() is None:
            _stop(proc)
        for reader in readers:
            reader.join(timeout=_KILL_GRACE_SECONDS)
    if proc.returncode != 0:
        raise classify_failure(proc.returncode, _rename(tail, local_names or {}), input_name)


def classify_failure(returncode: int, stderr_tail: list[str], input_name: str) -> Exception:
    """Turn an ffmpeg exit status and its last stderr lines into a typed error."""
    lines = [line.strip() for line in stderr_tail if line.strip()]
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else "?"
        return TranscodeFailed(f"ffmpeg was killed by signal {-returncode} ({name})")
    for line in lines:
        if any(marker in line.lower() for marker in _INPUT_DAMAGE_MARKERS):
            return InvalidMedia(f"{input_name}: video is damaged or truncated ({_shorten(line)})")
    summary = " | ".join(_shorten(line) for line in lines[-3:]) or "no error output"
    return TranscodeFailed(f"ffmpeg exited with status {returncode}: {summary}")


def _rename(lines: Iterable[str], names: Mapping[str, str]) -> list[str]:
    renamed = []
    for line in lines:
        for path, name in names.items():
            line = line.replace(path, name)
        renamed.append(line)
    return renamed


def _shorten(line: str) -> str:
    # "[h264 @ 0x55d0c3a5c2c0] msg" -> "h264: msg": addresses vary and say nothing.
    if line.startswith("[") and " @ 0x" in line and "] " in line:
        owner, _, message = line[1:].partition("] ")
        line = f"{owner.split(' @ ')[0]}: {message}"
    return line[:160]


def _collect(stream: IO[str], tail: deque[str]) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))


def _ignore(_: float) -> None:
    return None


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM ffmpeg's process group, then SIGKILL if it does not exit in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=_KILL_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
