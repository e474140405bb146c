"""The Fargate task end to end: a real subprocess against a moto S3 server, judged by what lands in S3.

Given inputs in a bucket and the task's ``VIDP_*`` environment, when the task runs, then the
exit code, the objects at the output and manifest keys, the log lines and the local scratch
folder are what the state machine and an operator would see.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from pipeline.media.probe import probe
from tests.conftest import SIMPLE_SRT, ClipFactory
from tests.support.procfs import gone

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

REPO = Path(__file__).resolve().parents[2]
TASK_TIMEOUT = 120
SERVER_START_TIMEOUT = 15.0
FAKE_SECRET = "fake-secret-key-that-must-never-be-logged"  # noqa: S105 - moto accepts any
BUCKET = "vidp-task-test"
HLS_PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://169.254.169.254/latest/meta-data/\n"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@dataclass(frozen=True)
class Aws:
    endpoint: str
    s3: S3Client


@dataclass(frozen=True)
class Job:
    """One job's keys under its own prefix, and its local folders."""

    prefix: str
    work: Path  # VIDP_WORK_DIR
    tmp: Path  # TMPDIR of the task: nothing may be left there either

    def uri(self, name: str, bucket: str = BUCKET) -> str:
        return f"s3://{bucket}/{self.prefix}/{name}"


def _start(server: ThreadedMotoServer) -> None:
    """server.start() waits without a deadline (forever if the bind fails): give it one."""
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(SERVER_START_TIMEOUT)
    if starter.is_alive():
        pytest.fail(f"moto server did not start in {SERVER_START_TIMEOUT:g} s")


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    # Port 0: the OS picks a free port at bind time, so no race with another process.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    _start(server)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"moto server at {endpoint} did not answer in {SERVER_START_TIMEOUT:g} s")
            time.sleep(0.1)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key=FAKE_SECRET,
    )
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield Aws(endpoint=endpoint, s3=s3)
    finally:
        server.stop()


@pytest.fixture
def job(tmp_path: Path) -> Job:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    return Job(prefix=f"work/{uuid.uuid4().hex}", work=work, tmp=tmp)


def put(aws: Aws, uri: str, data: bytes) -> str:
    bucket, key = split(uri)
    aws.s3.put_object(Bucket=bucket, Key=key, Body=data)
    return uri


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def size_of(aws: Aws, uri: str) -> int | None:
    """Size of the object at ``uri``, or None when there is no object."""
    bucket, key = split(uri)
    try:
        return aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as err:
        if err.response["Error"]["Code"] in {"404", "NoSuchKey", "NoSuchBucket"}:
            return None
        raise


def read_json(aws: Aws, uri: str) -> Any:
    bucket, key = split(uri)
    return json.loads(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def keys_under(aws: Aws, prefix: str) -> set[str]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return {item["Key"] for item in listed.get("Contents", [])}


def task_env(aws: Aws, job: Job, **vidp: str) -> dict[str, str]:
    """The environment ECS would give the container: AWS access plus the job's VIDP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDP_"))}
    env.update(
        AWS_ENDPOINT_URL=aws.endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(job.tmp.parent / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(job.tmp.parent / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        TMPDIR=str(job.tmp),
        VIDP_WORK_DIR=str(job.work),
        VIDP_THREADS="2",
        VIDP_JOB_ID="job-" + job.prefix.rpartition("/")[2][:12],
        VIDP_RESOLUTION="360p",
        VIDP_PRESET="ultrafast",
    )
    env.update({f"VIDP_{name.upper()}": value for name, value in vidp.items()})
    return env


def run_task(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.task"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TASK_TIMEOUT,
        check=False,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The task's stderr, which must be exactly one line."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def assert_nothing_left(job: Job) -> None:
    assert list(job.work.iterdir()) == []
    assert list(job.tmp.iterdir()) == []


def standard_inputs(aws: Aws, job: Job, clip: ClipFactory) -> dict[str, str]:
    return {
        "video_uri": put(aws, job.uri("source.mp4"), clip("in.mp4").read_bytes()),
        "subtitles_uri": put(aws, job.uri("clean.srt"), SIMPLE_SRT),
        "output_uri": job.uri("output.mp4"),
    }


def test_success_uploads_output_then_manifest(aws: Aws, job: Job, clip: ClipFactory, tmp_path: Path) -> None:
    inputs = standard_inputs(aws, job, clip)

    done = run_task(task_env(aws, job, **inputs, upscale="true"))

    assert done.returncode == 0, done.stderr
    size = size_of(aws, job.uri("output.mp4"))
    assert size is not None
    local = tmp_path / "downloaded.mp4"
    aws.s3.download_file(BUCKET, f"{job.prefix}/output.mp4", str(local))
    made = probe(local)
    assert (made.video.codec, made.video.pix_fmt) == ("h264", "yuv420p")
    assert (made.video.width, made.video.height) == (480, 360)  # 360p asked, upscale allowed

    manifest = read_json(aws, job.uri("manifest.json"))
    assert manifest["size"] == size
    assert manifest["output_uri"] == inputs["output_uri"]
    assert (manifest["output_bucket"], manifest["output_key"]) == (BUCKET, f"{job.prefix}/output.mp4")
    assert (manifest["width"], manifest["height"], manifest["cues"]) == (480, 360, 2)
    assert manifest["video_codec"] == "h264"
    assert manifest["job_id"].startswith("job-")
    assert "output_path" not in manifest  # a container path means nothing to Finalise

    logged = events(done.stdout)
    phases = [e["event"] for e in logged if e["event"] != "progress"]
    assert phases == ["start", "downloaded", "encoded", "uploaded", "done"]
    assert logged[0]["kind"] == "whole-file"  # VIDP_TASK_KIND unset: the default job
    percents = [e["percent"] for e in logged if e["event"] == "progress"]
    assert percents and percents[-1] == 100.0
    assert all(later - earlier >= 5 for earlier, later in itertools.pairwise(percents))
    assert FAKE_SECRET not in done.stdout + done.stderr
    assert done.stderr == ""
    assert_nothing_left(job)


def test_invalid_video_exits_3_and_writes_nothing(aws: Aws, job: Job) -> None:
    video = put(aws, job.uri("random.mp4"), os.urandom(64 * 1024))
    srt = put(aws, job.uri("clean.srt"), SIMPLE_SRT)

    done = run_task(task_env(aws, job, video_uri=video, subtitles_uri=srt, output_uri=job.uri("output.mp4")))

    assert done.returncode == 3
    line = error_line(done)
    assert "INVALID_MEDIA" in line and "random.mp4: not a readable video" in line
    assert keys_under(aws, job.prefix) == {f"{job.prefix}/random.mp4", f"{job.prefix}/clean.srt"}
    assert events(done.stdout)[-1]["event"] == "error"
    assert_nothing_left(job)


def test_missing_video_object_exits_3_naming_it(aws: Aws, job: Job) -> None:
    srt = put(aws, job.uri("clean.srt"), SIMPLE_SRT)
    missing = job.uri("never uploaded.mp4")

    done = run_task(
        task_env(aws, job, video_uri=missing, subtitles_uri=srt, output_uri=job.uri("output.mp4"))
    )

    assert done.returncode == 3
    line = error_line(done)
    assert missing in line and "not found" in line
    assert size_of(aws, job.uri("output.mp4")) is None
    assert_nothing_left(job)


def test_srt_that_is_an_hls_playlist_exits_3(aws: Aws, job: Job, clip: ClipFactory) -> None:
    inputs = standard_inputs(aws, job, clip)
    put(aws, inputs["subtitles_uri"], HLS_PLAYLIST)

    done = run_task(task_env(aws, job, **inputs))

    assert done.returncode == 3
    assert "INVALID_SUBTITLES" in error_line(done)
    assert size_of(aws, job.uri("output.mp4")) is None
    assert size_of(aws, job.uri("manifest.json")) is None
    assert_nothing_left(job)


def slow_inputs(aws: Aws, job: Job, clip: ClipFactory) -> dict[str, str]:
    """Inputs for an encode slow enough (about 10 s on 2 cores with veryslow) to signal it mid-way."""
    source = clip("long.mp4", width=640, height=360, seconds=8, fps=30)
    return {
        "video_uri": put(aws, job.uri("long.mp4"), source.read_bytes()),
        "subtitles_uri": put(aws, job.uri("clean.srt"), SIMPLE_SRT),
        "output_uri": job.uri("output.mp4"),
    }


@contextlib.contextmanager
def encoding(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The task as a subprocess, once it logs encode progress (ffmpeg runs); killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.task"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if json.loads(line)["event"] == "progress":
                break
            assert time.monotonic() < deadline, "no progress line in 60 s"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sigterm_mid_encode_stops_ffmpeg_and_leaves_nothing(aws: Aws, job: Job, clip: ClipFactory) -> None:
    env = task_env(aws, job, **slow_inputs(aws, job, clip), preset="veryslow", threads="1")
    with encoding(env) as proc:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=30)
    assert proc.stderr is not None
    stderr = proc.stderr.read()

    assert returncode == 1, stderr
    assert "TASK_STOPPED" in stderr
    assert size_of(aws, job.uri("output.mp4")) is None
    assert size_of(aws, job.uri("manifest.json")) is None
    assert_nothing_left(job)
    assert not ffmpeg_running_in(job.work), "ffmpeg outlived the task"


def test_sigkill_mid_encode_leaves_no_ffmpeg_and_the_next_start_removes_its_scratch(
    aws: Aws, job: Job, clip: ClipFactory
) -> None:
    env = task_env(aws, job, **slow_inputs(aws, job, clip), preset="veryslow", threads="1")
    with encoding(env) as proc:
        proc.kill()  # as the OOM killer does: no handler, no finally
        returncode = proc.wait(timeout=30)

    assert returncode == -signal.SIGKILL
    assert gone(str(job.work)) == [], "ffmpeg outlived the SIGKILLed task"
    [stale] = list(job.work.iterdir())  # what no finally could remove
    assert size_of(aws, job.uri("manifest.json")) is None

    done = run_task(task_env(aws, job, **standard_inputs(aws, job, clip)))  # the next start

    assert done.returncode == 0, done.stderr
    swept = [e["folders"] for e in events(done.stdout) if e["event"] == "stale-scratch-removed"]
    assert swept == [[stale.name]]
    assert_nothing_left(job)


def ffmpeg_running_in(folder: Path) -> bool:
    """Whether any process still has ``folder`` in its command line (ffmpeg writes its output there)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def test_output_bucket_missing_exits_1_and_leaves_nothing(aws: Aws, job: Job, clip: ClipFactory) -> None:
    # The output location is the pipeline's own configuration, not the caller's input: a missing
    # bucket is an operator problem (exit 1, retried a bounded number of times), not INVALID_INPUT.
    # The manifest URI points at the real bucket: it must not be written when the upload failed.
    inputs = {
        **standard_inputs(aws, job, clip),
        "output_uri": job.uri("output.mp4", bucket="no-such-bucket"),
        "manifest_uri": job.uri("manifest.json"),
    }

    done = run_task(task_env(aws, job, **inputs))

    assert done.returncode == 1
    line = error_line(done)
    assert "STORAGE_FAILED" in line and "no-such-bucket" in line
    assert keys_under(aws, job.prefix) == {f"{job.prefix}/source.mp4", f"{job.prefix}/clean.srt"}
    assert "uploaded" not in [e["event"] for e in events(done.stdout)]
    assert_nothing_left(job)


def test_keys_with_awkward_characters_work(aws: Aws, job: Job, clip: ClipFactory) -> None:
    odd = "my vidéo + 'q', [x]; a=b %2B 字幕"
    inputs = {
        "video_uri": put(aws, job.uri(f"{odd}.mp4"), clip("in.mp4").read_bytes()),
        "subtitles_uri": put(aws, job.uri(f"{odd}.srt"), SIMPLE_SRT),
        "output_uri": job.uri(f"out/{odd} result.mp4"),
    }

    done = run_task(task_env(aws, job, **inputs))

    assert done.returncode == 0, done.stderr
    size = size_of(aws, inputs["output_uri"])
    assert size is not None
    manifest = read_json(aws, job.uri("out/manifest.json"))
    assert manifest["output_key"] == f"{job.prefix}/out/{odd} result.mp4"
    assert manifest["video_uri"] == inputs["video_uri"]
    assert manifest["size"] == size
    assert_nothing_left(job)


def test_style_font_from_s3_is_downloaded_and_used(aws: Aws, job: Job, clip: ClipFactory) -> None:
    font = put(aws, job.uri("fonts/Brand Font.ttf"), DEJAVU.read_bytes())
    style = json.dumps({"font_file": font, "font_size": 20})

    # The kind named as a deployment may name it: the default one.
    done = run_task(
        task_env(aws, job, **standard_inputs(aws, job, clip), style=style, task_kind="whole-file")
    )

    assert done.returncode == 0, done.stderr
    assert size_of(aws, job.uri("manifest.json")) is not None
    assert_nothing_left(job)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"video_uri": None}, "VIDP_VIDEO_URI: is required"),
        ({"video_uri": "https://example.com/a.mp4"}, "VIDP_VIDEO_URI"),
        ({"crf": "99"}, "VIDP_CRF"),
        ({"threads": "0"}, "VIDP_THREADS"),
        ({"output_uri": "JOB/a.mp4"}, "output URI must differ"),
        ({"style": '{"font_size": "huge"'}, "style"),
        ({"style": '{"font_file": "/etc/passwd.ttf"}'}, "s3:// URI"),
        ({"task_kind": "segment"}, "VIDP_TASK_KIND: unknown task kind (known kinds: whole-file)"),
    ],
)
def test_invalid_configuration_exits_3_naming_the_variable(
    aws: Aws, job: Job, variables: dict[str, str | None], named: str
) -> None:
    base = {"video_uri": job.uri("a.mp4"), "subtitles_uri": job.uri("a.srt"), "output_uri": job.uri("o.mp4")}
    values = {**base, **variables}  # None: the variable is not set; "JOB/": the job's folder
    env = task_env(
        aws, job, **{k: v.replace("JOB/", job.uri("")) for k, v in values.items() if v is not None}
    )

    done = run_task(env)

    assert done.returncode == 3
    line = error_line(done)
    assert "INVALID_CONFIG" in line and named in line
    assert FAKE_SECRET not in done.stdout + done.stderr
