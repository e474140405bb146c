"""The Fargate image definition: lint-clean, and it runs the task module it claims to run."""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "containers" / "ffmpeg-task" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_entrypoint_runs_the_task_module() -> None:
    module = importlib.import_module("pipeline.task.__main__")  # what `python -m pipeline.task` runs
    entrypoints = [json.loads(args) for name, args in instructions() if name == "ENTRYPOINT"]

    assert callable(module.main)
    assert entrypoints == [["python", "-m", "pipeline.task"]]


def test_installs_ffmpeg_and_the_fonts_subtitles_need() -> None:
    runs = " ".join(args for name, args in instructions() if name == "RUN")
    packages = {word.split("=")[0] for word in shlex.split(runs) if "=" in word and not word.startswith("-")}

    assert {"ffmpeg", "fontconfig", "fonts-dejavu-core", "fonts-noto-cjk"} <= packages
    assert "--no-install-recommends" in runs
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_runs_as_a_non_root_user() -> None:
    users = [args.split(":")[0] for name, args in instructions() if name == "USER"]

    assert users, "no USER instruction: the task would run as root"
    assert users[-1] not in {"root", "0"}
