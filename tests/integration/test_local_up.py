"""`vidp local up` serves the local AWS to other processes; `vidp executions` reads it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pipeline.samples import make_clip
from tests.conftest import SIMPLE_SRT

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "local", "up", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    banner = server.stdout.readline()  # the first line says where it listens, once ready
    assert time.monotonic() < deadline and banner.startswith("local AWS on http://127.0.0.1:"), banner
    yield f"http://127.0.0.1:{port}"
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=30)


def vidp(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pipeline.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_boto3_runs_a_job_on_local_up_and_executions_show_its_timeline(endpoint: str, tmp_path: Path) -> None:
    def client(service: str):  # type: ignore[no-untyped-def]
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106  # fmt: skip

    clip = make_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=1.0, fps=15)
    s3 = client("s3")
    s3.upload_file(str(clip), "vidp-local-media", "uploads/cli/clip.mp4")
    s3.put_object(Bucket="vidp-local-media", Key="uploads/cli/clip.srt", Body=SIMPLE_SRT)
    sfn = client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    job = {
        "video": {"s3_uri": "s3://vidp-local-media/uploads/cli/clip.mp4"},
        "subtitles": {"s3_uri": "s3://vidp-local-media/uploads/cli/clip.srt"},
        "resolution": "360p",
    }
    arn = sfn.start_execution(stateMachineArn=machine, name="from-boto3", input=json.dumps(job))[
        "executionArn"
    ]
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end in time"
        time.sleep(0.2)

    listed = vidp("executions", "list", "--endpoint-url", endpoint)
    assert listed.returncode == 0 and "from-boto3" in listed.stdout and "SUCCEEDED" in listed.stdout
    shown = vidp("executions", "show", arn, "--endpoint-url", endpoint, "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["status"] == "SUCCEEDED" and view["record"]["status"] == "saved"
    assert [step["name"] for step in view["timeline"]][-1] == "Done"
