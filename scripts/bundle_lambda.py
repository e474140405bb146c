"""Package the Lambda steps' code without Docker: ``build/lambda/`` = runtime deps + ``pipeline/``.

``python scripts/bundle_lambda.py`` (or ``ensure_bundle()`` from ``app.py``) installs the runtime
dependencies pinned in pyproject.toml as Linux x86_64 CPython 3.12 wheels (the Lambda runtime),
whatever the build machine, then copies the package code. ``srt`` ships only an sdist, so its
wheel is built first (pure Python, so the wheel fits any platform). boto3 is left out: the
Lambda runtime has it, and the steps use only APIs that runtime's boto3 has.

The bundle is rebuilt only when stale: the dependencies are reinstalled when their pins change,
the code is recopied when a source file changes (a stamp file holds both hashes).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_DIR = ROOT / "build" / "lambda"
STAMP_NAME = ".bundle-stamp.json"
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.12"
BUNDLE_FORMAT = "2"  # bump when the way dependencies are installed changes
# In the Lambda runtime already (boto3) or only for the `vidp` CLI (typer, rich).
NOT_BUNDLED = {"boto3", "typer", "rich"}
SDIST_ONLY = {"srt"}
# Not needed by a Lambda: the embedded local AWS (moto), the Fargate task, the CLI, sample media.
CODE_EXCLUDES = ("__pycache__", "*.pyc", "cli.py")
EXCLUDED_PACKAGES = {"local", "task", "samples", "__pycache__"}


def runtime_requirements() -> list[str]:
    """The pinned runtime dependencies the Lambdas need, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = []
    for requirement in project["dependencies"]:
        name = requirement.split("==")[0].split("[")[0].strip().lower()
        if name not in NOT_BUNDLED:
            wanted.append(requirement)
    return sorted(wanted)


def _code_files() -> list[Path]:
    files = []
    for path in sorted((ROOT / "pipeline").rglob("*")):
        relative = path.relative_to(ROOT / "pipeline")
        if path.is_dir() or any(relative.match(pattern) for pattern in CODE_EXCLUDES):
            continue
        if relative.parts[0] in EXCLUDED_PACKAGES or path.suffix == ".pyc":
            continue
        files.append(path)
    return files


def _hash(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def stamps() -> dict[str, str]:
    """What the bundle must have been built from: dependency pins and code contents."""
    deps = _hash(
        [BUNDLE_FORMAT.encode(), PLATFORM.encode(), PYTHON_VERSION.encode()]
        + [r.encode() for r in runtime_requirements()]
    )
    code = _hash([str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() for p in _code_files()])
    return {"deps": deps, "code": code}


def _read_stamp(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def _install_dependencies(directory: Path) -> None:
    wheels = directory.parent / "lambda-wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    requirements = runtime_requirements()
    for requirement in requirements:
        if requirement.split("==")[0].lower() in SDIST_ONLY:
            _pip("wheel", "--quiet", "--no-deps", requirement, "-w", str(wheels))
    _pip(
        "install",
        "--quiet",
        # No .pyc: they would be for this machine's Python (not 3.12) and, stamped with build
        # times, would change the asset hash on every rebuild.
        "--no-compile",
        "--platform",
        PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--find-links",
        str(wheels),
        "--target",
        str(directory),
        *requirements,
    )
    shutil.rmtree(wheels, ignore_errors=True)
    for dist_bin in directory.glob("bin"):
        shutil.rmtree(dist_bin)  # console scripts of the dependencies: never used in a Lambda


def _copy_code(directory: Path) -> None:
    shutil.rmtree(directory / "pipeline", ignore_errors=True)
    for source in _code_files():
        target = directory / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def ensure_bundle(directory: Path = BUNDLE_DIR, *, force: bool = False) -> Path:
    """The bundle directory, (re)built if missing or stale. Needs the package index for deps."""
    wanted = stamps()
    have = {} if force else _read_stamp(directory)
    if have.get("deps") != wanted["deps"]:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        _install_dependencies(directory)
        have = {"deps": wanted["deps"]}
    if have.get("code") != wanted["code"]:
        _copy_code(directory)
    # Bytecode of whoever imported from the bundle (a local check): never ship it.
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache)
    (directory / STAMP_NAME).write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    return directory


def main() -> None:
    force = "--force" in sys.argv[1:]
    print(ensure_bundle(force=force))


if __name__ == "__main__":
    main()
