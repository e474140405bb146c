"""`vidp local up` serves the local AWS to other processes and keeps its data folder; `vidp
executions` reads both."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.local import datadir
from pipeline.samples import make_clip
from tests.conftest import SIMPLE_SRT
from tests.support.in_flight import RecordingLocalAws, hold
from tests.support.server import LocalServer

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_up(*args: str, cwd: Path | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    """``vidp local up ARGS`` on a free port, once ready: the process, its endpoint, its first two lines."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "local", "up", "--port", str(port), "--api-port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )  # fmt: skip
    assert server.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    banner = [server.stdout.readline(), server.stdout.readline()]  # where it listens, once ready
    assert time.monotonic() < deadline and banner[0].startswith("local AWS on http://127.0.0.1:"), banner
    return server, f"http://127.0.0.1:{port}", banner


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106  # fmt: skip


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server, url, _ = local_up("--ephemeral")
    yield url
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=30)


def vidp(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pipeline.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_boto3_runs_a_job_on_local_up_and_executions_show_its_timeline(endpoint: str, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=1.0, fps=15)
    s3 = client(endpoint, "s3")
    s3.upload_file(str(clip), "vidp-local-media", "uploads/cli/clip.mp4")
    s3.put_object(Bucket="vidp-local-media", Key="uploads/cli/clip.srt", Body=SIMPLE_SRT)
    sfn = client(endpoint, "stepfunctions")
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


def test_a_killed_local_up_comes_back_from_its_data_folder_and_lists_the_lost_job(tmp_path: Path) -> None:
    """SIGKILL: no final snapshot, only the periodic one, in ./.vidp-local by default."""
    folder = tmp_path / ".vidp-local"
    clip = make_clip(tmp_path / "clip.mp4", width=320, height=240, seconds=1.0, fps=15)
    with LocalServer() as srt_server:
        server, endpoint, banner = local_up("--allow-loopback", cwd=tmp_path)
        try:
            assert banner[1].split() == ["data", "folder", str(folder)]
            client(endpoint, "s3").upload_file(str(clip), "vidp-local-media", "uploads/kill/clip.mp4")
            job = {
                "video": {"s3_uri": "s3://vidp-local-media/uploads/kill/clip.mp4"},
                "subtitles": {"url": srt_server.route("/held.srt", hold)},
            }
            sfn = client(endpoint, "stepfunctions")
            machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
            arn = sfn.start_execution(stateMachineArn=machine, name="killed", input=json.dumps(job))[
                "executionArn"
            ]
            assert srt_server.wait_for(1, timeout=READY_TIMEOUT), "FetchSubtitles never fetched"
            deadline = time.monotonic() + READY_TIMEOUT
            while not _snapshot_has_it_in_flight(folder, arn):
                assert time.monotonic() < deadline, "no snapshot shows the job in flight"
                time.sleep(0.2)
            seen_at = datetime.now(UTC)  # a snapshot ended after this has the bucket of that time too
            while (_manifest_saved_at(folder) or seen_at) <= seen_at:
                assert time.monotonic() < deadline, "the snapshot did not end"
                time.sleep(0.2)
        finally:
            server.kill()
            server.communicate(timeout=30)

    with RecordingLocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False) as again:
        got = again.client("s3").get_object(Bucket=again.bucket, Key="uploads/kill/clip.mp4")
        assert got["Body"].read() == clip.read_bytes()
        items = again.client("dynamodb").scan(TableName=again.table_name)["Items"]
        assert [item["execution_arn"]["S"] for item in items] == [arn]
        assert again.handed_over is not None and len(again.handed_over) == 1
        lost = again.handed_over[0]
        assert (lost["executionArn"], lost["status"]) == (arn, "ABORTED")
        assert lost["startDate"] < lost["stopDate"] <= datetime.now(UTC)

        url, where = again.endpoint_url, ["--data-dir", str(folder)]
        listed = vidp("executions", "list", "--endpoint-url", url, *where)
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "killed" in line)
        assert "ABORTED" in row and "earlier" in row
        shown = vidp("executions", "show", arn, "--endpoint-url", url, *where, "--json")
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert view["status"] == "ABORTED" and view["earlier_run"]
        assert [step["name"] for step in view["timeline"]][:2] == ["ValidateInput", "IsDuplicate"]
        assert view["timeline"][-1]["name"] == "FetchSubtitles" and view["timeline"][-1]["ended"]
        assert view["record"]["execution_arn"] == arn


def _manifest_saved_at(folder: Path) -> datetime | None:
    manifest = datadir.read_manifest(folder)
    return manifest.saved_at if manifest else None


def _snapshot_has_it_in_flight(folder: Path, arn: str) -> bool:
    try:
        executions = datadir.stored_executions(folder)
        items = datadir.stored_items(folder)
    except datadir.DataDirError:  # not written yet
        return False
    running = any(e.arn == arn and e.status == "RUNNING" for e in executions)
    return running and any(item.get("status", {}).get("S") == "processing" for item in items)


def test_local_up_ephemeral_keeps_nothing(tmp_path: Path) -> None:
    server, endpoint, banner = local_up("--ephemeral", cwd=tmp_path)
    try:
        assert "none (--ephemeral" in banner[1]
        client(endpoint, "s3").put_object(Bucket="vidp-local-media", Key="uploads/a.txt", Body=b"gone")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0
    assert list(tmp_path.iterdir()) == []
