"""The README's HTTP API examples, run as they are written (bash, curl, jq) against `vidp local up`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.samples import make_clip
from tests.conftest import SIMPLE_SRT
from tests.integration.test_local_up import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- api-example: start -->\n```bash\n(.*?)```\n<!-- api-example: end -->", text, re.S
    )
    assert found, "the README has no api-example block"
    return found.group(1)


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """``vidp local up`` on free ports, as a user starts it; its API's URL once it is ready."""
    aws_port, api_port = free_port(), free_port()
    argv = [sys.executable, "-m", "pipeline.cli", "local", "up", "--port", str(aws_port),
            "--api-port", str(api_port), "--ephemeral"]  # fmt: skip
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert server.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    lines: list[str] = []
    while not any("HTTP API" in line for line in lines):
        lines.append(server.stdout.readline())
        assert time.monotonic() < deadline and server.poll() is None, lines
    assert f"http://127.0.0.1:{api_port}/api" in "".join(lines)
    yield f"http://127.0.0.1:{api_port}"
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=30)


def test_the_readme_curl_examples_work_as_written(api_url: str, tmp_path: Path) -> None:
    make_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=1.5, fps=15)
    (tmp_path / "clip.srt").write_bytes(SIMPLE_SRT)

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_example()],
        cwd=tmp_path, env={**os.environ, "API": api_url},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout
    health = json.loads(out.splitlines()[0])
    assert health["status"] == "healthy" and health["state_machine"] == "connected"
    accepted = json.loads((tmp_path / "job.json").read_text())
    assert accepted["status"] == "processing" and accepted["links"]["stream"].endswith(accepted["video_id"])
    assert f'"id":"{accepted["video_id"]}"' in out and '"status":"saved"' in out
    assert (tmp_path / "first-kilobyte.mp4").stat().st_size == 1024
    assert (tmp_path / "first-kilobyte.mp4").read_bytes()[4:8] == b"ftyp"
    second = json.loads((tmp_path / "job2.json").read_text())
    assert second["status"] == "processing" and second["job_id"].startswith("idem-")
    codes = [line for line in out.splitlines() if re.fullmatch(r"\d{3}", line)]
    assert codes == ["206", "412", "204", "404"], out
    assert '"reviewed": true' in out and '"docs-batch"' not in out
