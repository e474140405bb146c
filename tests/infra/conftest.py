"""Synthesize the app once per session (jsii start and synth take ~10 s) for every infra test.

The synth is ``python app.py`` itself, so it packages the real Lambda bundle
(``scripts/bundle_lambda.py``: a few seconds when stale, instant when not) and the tests see
exactly what a deployment gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from bundle_lambda import BUNDLE_DIR  # noqa: E402

IMPORT_TIME = "import time:"
# A schedule is configured so that its DLQ is synthesized and checked too.
REPROCESS_REQUEST = {
    "video": {"s3_uri": "s3://example/incoming/a.mp4"},
    "subtitles": {"url": "https://subs.example.com/a.srt"},
}
CONTEXT = {
    "env": "dev",
    "reprocess_schedule": "rate(7 days)",
    "reprocess_request": REPROCESS_REQUEST,
    "archive_after_days": 90,
}


def run_app(
    outdir: Path, context: dict[str, Any], *, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python app.py`` with ``context`` as ``cdk synth -c ...`` passes it, no credentials, no Docker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env |= {
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),  # what `cdk synth -c ...` passes
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    return subprocess.run(
        [sys.executable, *python_flags, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@dataclass(frozen=True)
class Synth:
    """The synthesized app: its output folder, the stack's template and the assertions view."""

    outdir: Path
    template: dict[str, Any]
    assertions: Any  # aws_cdk.assertions.Template
    bundle: Path
    imported: frozenset[str]  # every module `python app.py` imported (python -X importtime)

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(kind)
        assert len(found) == 1, f"{len(found)} {kind}"
        return next(iter(found.items()))

    def named(self, kind: str, name_property: str, name: str) -> tuple[str, dict[str, Any]]:
        """The one resource of ``kind`` whose ``name_property`` is ``name`` (e.g. a table by TableName)."""
        found = [
            (k, v) for k, v in self.resources(kind).items() if v["Properties"].get(name_property) == name
        ]
        assert len(found) == 1, f"{len(found)} {kind} named {name}"
        return found[0]

    def jobs_table(self) -> tuple[str, dict[str, Any]]:
        return self.named("AWS::DynamoDB::Table", "TableName", "vidp-dev-jobs")


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """``python app.py`` as a user runs it: no AWS credentials, no Docker, CDK_OUTDIR a tmp dir."""
    from aws_cdk.assertions import Template

    outdir = tmp_path_factory.mktemp("cdk.out")
    run = run_app(outdir, CONTEXT, python_flags=("-X", "importtime"))
    imports = [line for line in run.stderr.splitlines() if line.startswith(IMPORT_TIME)]
    rest = "\n".join(line for line in run.stderr.splitlines() if not line.startswith(IMPORT_TIME))
    # A cdk-nag finding makes app.synth() raise ValidationFailed: the run fails with its report.
    assert run.returncode == 0, rest[-4000:]
    template = json.loads((outdir / "vidp-dev.template.json").read_text(encoding="utf-8"))
    imported = frozenset(line.rpartition("|")[2].strip() for line in imports)
    return Synth(
        outdir=outdir,
        template=template,
        assertions=Template.from_json(template),
        bundle=BUNDLE_DIR,
        imported=imported,
    )
