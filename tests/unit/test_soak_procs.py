"""The soak's /proc watch: it finds the run's task and ffmpeg processes by their marker, and only them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench.soak.procs import MARKER, ProcessTable, ProcessWatch

LONG_FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5",
               "-t", "30", "-f", "null", "-"]  # fmt: skip
IDLE_TASK = [sys.executable, "-c", "import time; time.sleep(30)"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def spawn(
    started: list[subprocess.Popen[bytes]], argv: list[str], run: str, job: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, MARKER: run, "VIDP_JOB_ID": job}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started.append(process)
    return process


def scan_until(table: ProcessTable, count: int) -> set[tuple[int, str, str | None]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = {(proc.pid, proc.name, proc.job_id) for proc in table.scan()}
        if len(found) >= count:
            return found
        time.sleep(0.02)
    return found


def test_finds_the_runs_ffmpeg_and_not_another_runs(started: list[subprocess.Popen[bytes]]) -> None:
    ours = spawn(started, LONG_FFMPEG, "run-a", "job-1")
    spawn(started, LONG_FFMPEG, "run-b", "job-2")
    spawn(started, IDLE_TASK, "run-a", "job-3")  # marked, but neither ffmpeg nor the task module

    assert scan_until(ProcessTable("run-a"), 1) == {(ours.pid, "ffmpeg", "job-1")}


def test_a_process_seen_before_its_exec_is_found_once_it_is_ffmpeg(
    started: list[subprocess.Popen[bytes]],
) -> None:
    # A child is seen first with its parent's name (a shell here, pytest or python in the soak).
    shell = spawn(started, ["sh", "-c", "sleep 0.5; exec " + " ".join(LONG_FFMPEG)], "run-d", "job-5")
    table = ProcessTable("run-d")
    assert table.scan() == []

    assert scan_until(table, 1) == {(shell.pid, "ffmpeg", "job-5")}


def test_an_ffmpeg_whose_parent_is_no_task_of_the_run_is_reported_as_orphaned(
    started: list[subprocess.Popen[bytes]],
) -> None:
    orphan = spawn(started, LONG_FFMPEG, "run-c", "job-4")  # its parent is this test, not a task

    with ProcessWatch("run-c", orphan_seconds=0.3) as watch:
        assert watch.wait_for_ffmpeg("job-4", timeout=10) is not None
        deadline = time.monotonic() + 10
        while orphan.pid not in watch.findings and time.monotonic() < deadline:
            time.sleep(0.05)

    proc, problem = watch.findings[orphan.pid]
    assert (proc.name, proc.job_id) == ("ffmpeg", "job-4")
    assert problem.startswith("kept running") and "after its task was gone" in problem
    assert watch.last_seen["job-4"] > 0
