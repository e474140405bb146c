"""The package's layering, read from the code itself: imports point down, no cycles, and each
Lambda loads only what its own step uses.

Every import counts, at module level, inside functions and under ``TYPE_CHECKING`` alike: a
type-level loop is still a loop a reader has to untangle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.steps.registry import STEP_MODULES

ROOT = Path(__file__).resolve().parents[2]
LIGHT = {"pipeline.deployment", "pipeline.failures"}  # imported by CDK synth and every cold start
ABOVE_ADAPTERS = (
    "pipeline.steps",
    "pipeline.local",
    "pipeline.task",
    "pipeline.starter",
    "pipeline.uploads",
    "pipeline.reconciler",
    "pipeline.cli",
    "pipeline.api",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(*folders: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = sources("pipeline", "state_machine", "infra") | {"app": ROOT / "app.py"}


def imported_names(path: Path) -> Iterator[str]:
    """Every module ``path`` imports; ``from a import b`` names ``a.b`` when that is a module."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, base]).strip(".")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)


def imports_of(name: str) -> set[str]:
    return {
        imported for imported in imported_names(MODULES[name]) if imported in MODULES and imported != name
    }


def test_the_graph_is_read_from_real_imports() -> None:
    # A check of the checker: these edges exist, so an empty graph cannot pass the rules below.
    assert "pipeline.adapters.s3" in imports_of("pipeline.steps.finalise")
    assert "pipeline.local.lambdas" in imports_of("pipeline.local.aws")
    assert "pipeline.deployment" in imports_of("infra.table")


def test_adapters_import_no_step_no_task_and_no_local_aws() -> None:
    for name in (n for n in MODULES if n.startswith("pipeline.adapters")):
        above = {i for i in imports_of(name) if i.startswith(ABOVE_ADAPTERS)}
        assert not above, f"{name} imports {sorted(above)}"


def test_infra_and_the_cdk_app_never_import_the_local_aws() -> None:
    for name in (n for n in MODULES if n.startswith("infra") or n == "app"):
        local = {i for i in imports_of(name) if i.startswith("pipeline.local")}
        assert not local, f"{name} imports {sorted(local)}"


def test_a_step_imports_no_other_step() -> None:
    steps = set(STEP_MODULES.values())
    for name in steps:
        assert not imports_of(name) & (steps - {name}), name


def test_the_shared_facts_import_only_the_standard_library() -> None:
    for name in LIGHT:
        imported = set(imported_names(MODULES[name]))
        third_party = {
            i for i in imported if i.split(".")[0] not in sys.stdlib_module_names and i != "__future__"
        }
        assert not third_party, f"{name} imports {sorted(third_party)}"


def test_there_is_no_import_cycle_in_the_product() -> None:
    graph = {name: {i for i in imports_of(name) if i.startswith("pipeline")} for name in MODULES}
    graph = {name: edges for name, edges in graph.items() if name.startswith("pipeline")}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(graph.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


# --- what a Lambda cold start loads -----------------------------------------------------------

_LOADED = "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
_LOADED += "print(json.dumps(sorted(sys.modules)))"


def loaded_by(module: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", _LOADED, module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(run.stdout))


HTTP_STEPS = {"FetchSubtitles", "Notify"}  # they call out: SRT URLs and callbacks


@pytest.mark.parametrize("step", sorted(STEP_MODULES))
def test_a_lambda_step_loads_only_its_own_step_and_what_it_uses(step: str) -> None:
    loaded = loaded_by(STEP_MODULES[step])

    assert STEP_MODULES[step] in loaded
    assert not (set(STEP_MODULES.values()) - {STEP_MODULES[step]}) & loaded
    assert ("httpx" in loaded) is (step in HTTP_STEPS)
    assert ("srt" in loaded) is (step == "FetchSubtitles")
    assert ("charset_normalizer" in loaded) is (step == "FetchSubtitles")
    # (httpx loads rich for its command line when rich is installed, as the CLI's venv has it;
    # the Lambda bundle leaves rich out, so there httpx does without.)
    assert not {name for name in loaded if name.split(".")[0] in {"moto", "typer", "aws_cdk"}}
    assert not {
        name for name in loaded if name.startswith(("pipeline.local", "pipeline.task", "pipeline.cli"))
    }


def test_the_upload_starter_lambda_loads_no_step_no_http_and_no_local_aws() -> None:
    loaded = loaded_by("pipeline.starter")

    assert not set(STEP_MODULES.values()) & loaded
    assert not {name for name in loaded if name.split(".")[0] in {"moto", "httpx", "srt"}}
    assert not {name for name in loaded if name.startswith("pipeline.local")}


def test_the_api_lambda_loads_no_step_no_task_and_no_local_aws() -> None:
    loaded = loaded_by("pipeline.api.videos")

    assert not set(STEP_MODULES.values()) & loaded
    assert not {name for name in loaded if name.split(".")[0] in {"moto", "typer", "aws_cdk", "srt"}}
    above = ("pipeline.local", "pipeline.task", "pipeline.cli")
    assert not {name for name in loaded if name.startswith(above)}
