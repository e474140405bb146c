"""The processes of one soak run, found in /proc by a marker in their environment.

Every task the local ECS runner starts gets ``VIDP_SOAK_RUN=<run id>`` from its task definition,
and ffmpeg inherits the task's environment, so the run's processes are told apart from any other
on the machine (other runs, other engineers' tests) without guessing from names alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass

MARKER = "VIDP_SOAK_RUN"
_TICKS = os.sysconf("SC_CLK_TCK")
_YOUNG_SECONDS = 10.0  # a process younger than this may not have exec'd its final command yet


@dataclass(frozen=True)
class Proc:
    """One process of the run: ``name`` is ``ffmpeg`` or ``pipeline.task``."""

    pid: int
    ppid: int
    name: str
    job_id: str | None


def _stat(pid: int) -> tuple[str, int, str, float] | None:
    """(command name, parent pid, state, start in seconds after boot) from /proc/<pid>/stat; None
    once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    return head.partition(" (")[2], int(fields[1]), fields[0], int(fields[19]) / _TICKS


def _uptime() -> float:
    with open("/proc/uptime", "rb") as handle:
        return float(handle.read().split()[0])


def _read(pid: int, name: str) -> list[str]:
    """A NUL-separated /proc/<pid>/ file (cmdline, environ) as strings; empty once it is gone."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _identify(pid: int, comm: str, run_id: str) -> tuple[str, str | None] | None:
    kind = None
    if comm == "ffmpeg":
        kind = "ffmpeg"
    elif comm.startswith("python") and _read(pid, "cmdline")[1:3] == ["-m", "pipeline.task"]:
        kind = "pipeline.task"
    if kind is None:
        return None
    env = dict(item.partition("=")[::2] for item in _read(pid, "environ"))
    if env.get(MARKER) != run_id:
        return None
    return kind, env.get("VIDP_JOB_ID")


class ProcessTable:
    """Finds the run's processes; each process is identified once per command name once it is a
    few seconds old (reading /proc is slow in some sandboxes); the run's own are looked at again,
    for their parent and state."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        # (pid, command name) -> (kind, job id), or None for a process that is none of the run's.
        self._identities: dict[tuple[int, str], tuple[str, str | None] | None] = {}
        self._others: set[int] = set()  # pids known to be no process of the run, as named then

    def scan(self) -> list[Proc]:
        """The live (not zombie) ffmpeg and ``pipeline.task`` processes carrying the run's marker."""
        pids = {int(name) for name in os.listdir("/proc") if name.isdigit()}  # noqa: PTH208 - names only
        self._others &= pids
        self._identities = {key: value for key, value in self._identities.items() if key[0] in pids}
        found = []
        uptime = _uptime()
        for pid in pids - self._others:
            stat = _stat(pid)
            if stat is None or stat[2] == "Z":
                continue
            comm, ppid, _, started = stat
            key = (pid, comm)
            # Between fork and exec a child shows its parent's name and command line.
            if key not in self._identities or (
                self._identities[key] is None and uptime - started < _YOUNG_SECONDS
            ):
                self._identities[key] = _identify(pid, comm, self.run_id)
            identity = self._identities[key]
            if identity is not None:
                found.append(Proc(pid=pid, ppid=ppid, name=identity[0], job_id=identity[1]))
            elif uptime - started >= _YOUNG_SECONDS and comm != "ffmpeg" and not comm.startswith("python"):
                self._others.add(pid)  # long past its exec, and neither: it never will be
        return found


def run_processes(run_id: str) -> list[Proc]:
    """The run's live ffmpeg and ``pipeline.task`` processes (one scan)."""
    return ProcessTable(run_id).scan()


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] != "Z"


def parent_of(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def kill(pid: int, sig: signal.Signals) -> bool:
    """Send ``sig``; False if the process was already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        return True
    return False


class ProcessWatch:
    """Samples the run's processes from a background thread (every ``interval`` s).

    It keeps, per job id, when a process of that job was last alive, and reports a job's ffmpeg
    whose parent is no task of the run (its task died and it kept running) for longer than
    ``orphan_seconds``. ``wait_for_ffmpeg`` lets a fault wait until a job is mid-encode.
    """

    def __init__(self, run_id: str, *, interval: float = 0.05, orphan_seconds: float = 0.2) -> None:
        self.run_id = run_id
        self._table = ProcessTable(run_id)
        self._interval = interval
        self._orphan_seconds = orphan_seconds
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-process-watch", daemon=True)
        self._latest: list[Proc] = []
        self.last_seen: dict[str, float] = {}  # job id -> epoch seconds
        self._orphaned_since: dict[int, float] = {}
        self.findings: dict[int, tuple[Proc, str]] = {}  # pid -> (process, problem)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def latest(self) -> list[Proc]:
        with self._changed:
            return list(self._latest)

    def report(self, proc: Proc, problem: str) -> None:
        with self._changed:
            self.findings.setdefault(proc.pid, (proc, problem))

    def wait_for_ffmpeg(self, job_id: str, timeout: float) -> Proc | None:
        """The job's ffmpeg once it runs, or None after ``timeout`` s."""

        def found() -> Proc | None:
            return next((p for p in self._latest if p.name == "ffmpeg" and p.job_id == job_id), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self._stop.is_set(), timeout=timeout)
            return found()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def _sample(self) -> None:
        procs = self._table.scan()
        now = time.time()
        tasks = {p.pid for p in procs if p.name == "pipeline.task"}
        with self._changed:
            self._latest = procs
            for proc in procs:
                if proc.job_id:
                    self.last_seen[proc.job_id] = now
                if proc.name == "ffmpeg" and proc.job_id and proc.ppid not in tasks:
                    since = self._orphaned_since.setdefault(proc.pid, now)
                    if now - since >= self._orphan_seconds:
                        problem = (
                            f"kept running {now - since:.1f} s after its task was gone (parent {proc.ppid})"
                        )
                        self.findings.setdefault(proc.pid, (proc, problem))
            self._changed.notify_all()
