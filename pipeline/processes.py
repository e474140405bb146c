"""Child processes that end with their parent, and what ``/proc`` says about a process (Linux).

A SIGKILL (the out-of-memory killer, a container's end, ``kill -9``) runs no ``finally``, so the
ffmpeg of a killed task would go on encoding for nobody. A child started with
``preexec_fn=die_with_parent()`` gets SIGKILL from the kernel when its parent ends, whatever
ended it. Elsewhere (no ``prctl``) it returns None: the parent's own cleanup is all there is.

Standard library only: the task, the engine and the local AWS all use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PROC = Path("/proc")


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGKILL when this process ends; None where Linux's prctl is missing.

    The kernel sends it when the *thread* that started the child ends: start the child from a
    thread that waits for it (as ``subprocess.run`` or a ``Popen`` followed by ``wait`` do).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not between fork and exec
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent ended before prctl: nobody would kill this child
            raise ProcessLookupError("the parent process ended before its child started")

    return in_child


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot: /proc/<pid>/stat field 22); None if it has ended.

    A pid and its start time name one process: a pid alone may be reused by another one. A
    zombie (ended, not yet reaped) counts as ended.
    """
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name in (...) may hold spaces
    if len(fields) < 20 or fields[0] in {"Z", "X"}:
        return None
    return int(fields[19])


def pid_namespace() -> str:
    """This process's pid namespace (its inode; "" without /proc): a pid means something only within one."""
    with contextlib.suppress(OSError):
        return str((_PROC / "self" / "ns" / "pid").readlink()).partition("[")[2].rstrip("]")
    return ""


def has_proc() -> bool:
    """Whether /proc describes the processes (Linux)."""
    return (_PROC / "self" / "stat").exists()


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process, from /proc (Linux; empty elsewhere)."""
    found = []
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        head, _, rest = text.rpartition(")")
        pid, _, comm = head.partition(" (")
        found.append((int(pid), int(rest.split()[1]), comm))
    return found
