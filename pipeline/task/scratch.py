"""The task's scratch folders, named for the process that owns them, and the sweep of stale ones.

A task killed with SIGKILL (out of memory) cannot remove its scratch folder: the next start
does. A folder's name says whose it is, ``vidp-task-<pid namespace>-<pid>-<start ticks>-<random>``,
so a later start removes exactly the folders whose owner is gone, never a live task's (a pid
alone could have been reused; a folder from another pid namespace is left to its own).

Standard library only: the local ECS runner sweeps the temp dir at its start too.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from pipeline.processes import has_proc, pid_namespace, start_ticks

PREFIX = "vidp-task-"
_NAME = re.compile(r"^vidp-task-(?P<namespace>\d*)-(?P<pid>\d+)-(?P<ticks>\d+)-[A-Za-z0-9_]+$")


def create(work_root: Path | None) -> Path:
    """A new private (0700) folder under ``work_root`` (default: the temp dir), named for this process."""
    pid = os.getpid()
    owner = f"{pid_namespace()}-{pid}-{start_ticks(pid) or 0}"
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{owner}-", dir=work_root))


def remove_stale(work_root: Path | None) -> list[Path]:
    """Remove the scratch folders under ``work_root`` whose owner process has ended; return them."""
    root = Path(work_root or tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return []  # a missing root is the configuration's problem, reported where it is used
    removed = []
    for path in entries:
        if _is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _is_stale(path: Path) -> bool:
    match = _NAME.fullmatch(path.name)
    if match is None or match["namespace"] != pid_namespace():
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False  # a link, or someone else's: not ours to remove
    return not _alive(int(match["pid"]), int(match["ticks"]))


def _alive(pid: int, ticks: int) -> bool:
    if has_proc():
        return start_ticks(pid) == ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process has that pid now
    return True
