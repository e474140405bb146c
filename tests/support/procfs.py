"""What is still running, read from /proc (Linux), and what a killed task leaves behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def running_with(text: str) -> list[str]:
    """Live processes (zombies excluded: they run nothing) whose command line holds ``text``:
    ``pid name``, for an assertion message."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        if text.encode() in cmdline and rest.split()[0] not in {"Z", "X"}:
            found.append(f"{entry.name} {name}")
    return found


def gone(text: str, within: float = 5.0) -> list[str]:
    """Wait until no live process holds ``text`` in its command line; what still does after
    ``within`` seconds (a SIGKILLed process needs a moment to end, not seconds)."""
    deadline = time.monotonic() + within
    while (left := running_with(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def killed_task_scratch(work: Path) -> Path:
    """The scratch folder a task SIGKILLed mid-job leaves: made by a real process, then killed."""
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom pipeline.task import files\n"
        "with files.scratch_folder(Path(sys.argv[1])) as folder:\n"
        "    print(folder, flush=True)\n    time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(work)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        folder = Path(child.stdout.readline().strip())
    finally:
        child.kill()
        child.wait(timeout=10)
    assert folder.parent == work and folder.is_dir()
    return folder
