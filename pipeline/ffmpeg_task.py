"""The Fargate task (``python -m pipeline.ffmpeg_task``): download, burn and compress, upload.

The job comes from ``VIDP_*`` environment variables (ECS container overrides), read once into
``TaskConfig``. The task logs one JSON line per phase on stdout and exits with:

- 0 (EXIT_OK): the output and then its manifest are in S3;
- 3 (EXIT_INVALID): the configuration or an input can never work (InvalidInput): never retry;
- 1 (EXIT_FAILED): anything else (ffmpeg failure, S3 trouble, SIGTERM, a bug): may be retried.

The manifest is written last, so its presence means the output object is complete.

Under Step Functions (``ecs:runTask.waitForTaskToken``) the state gives ``VIDP_TASK_TOKEN``; the
task then also sends ``SendTaskHeartbeat`` every ``VIDP_HEARTBEAT_SECONDS`` while it works,
records the encode progress on the job (``VIDP_TABLE_NAME`` + ``VIDP_VIDEO_ID``; best effort) and
ends with ``SendTaskSuccess`` (the manifest) or ``SendTaskFailure`` (the error class name, e.g.
``InvalidMedia`` or ``TranscodeFailed``, and a one-line cause) before exiting as above. The
token is never logged. Without a token, nothing is reported: the exit code says it all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BeforeValidator, DirectoryPath, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from pipeline.adapters import s3
from pipeline.adapters.s3 import S3Uri
from pipeline.config import EngineSettings
from pipeline.failures import InvalidInput, TaskStopped, VidpError
from pipeline.media.engine import burn, read_subtitles
from pipeline.models import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    EncodeOptions,
    EncodeResult,
    Preset,
    Resolution,
    SubtitleStyle,
    TaskManifest,
)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 3
PROGRESS_STEP_PERCENT = 5.0
TOKEN_VARIABLE = "VIDP_TASK_TOKEN"  # noqa: S105 - the variable's name, not a secret
# SendTaskFailure's limits: error up to 256 characters, cause up to 32768.
_MAX_ERROR_NAME, _MAX_CAUSE = 256, 32768
# The token is no longer accepted (timed out, execution stopped): the work is wasted, stop it.
_TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_MAX_NAME_BYTES = 200  # file systems allow 255; leave room for the downloader's temporary suffix


# --- configuration ----------------------------------------------------------------------------


def _s3_uri(value: object) -> object:
    if isinstance(value, str):
        try:
            return S3Uri.parse(value)
        except InvalidInput as err:
            raise ValueError(str(err)) from None
    return value


# NoDecode: the value is a plain string, not JSON (pydantic-settings would try JSON for a dataclass).
S3UriField = Annotated[S3Uri, NoDecode, BeforeValidator(_s3_uri)]


class TaskConfig(BaseSettings):
    """The job, from ``VIDP_*`` environment variables. Engine limits live in EngineSettings."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True, env_ignore_empty=True)

    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    video_uri: S3UriField
    subtitles_uri: S3UriField
    output_uri: S3UriField
    manifest_uri: S3UriField | None = Field(
        default=None, description="default: manifest.json beside the output"
    )
    resolution: Resolution = "720p"
    crf: Annotated[int, Field(ge=0, le=51)] = DEFAULT_CRF
    preset: Preset = DEFAULT_PRESET
    style: SubtitleStyle = SubtitleStyle()  # JSON object
    upscale: bool = False
    quality: bool = False
    work_dir: DirectoryPath | None = Field(default=None, description="scratch root; default the temp dir")

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        # A font path inside the container would name a file of the image, never the caller's.
        font = self.style.font_file
        if font is not None:
            if not font.startswith("s3://"):
                raise ValueError("style.font_file must be an s3:// URI in a job")
            _s3_uri(font)
        if self.output_uri in {self.video_uri, self.subtitles_uri}:
            raise ValueError("the output URI must differ from the input URIs")
        if self.manifest_location in {self.output_uri, self.video_uri, self.subtitles_uri}:
            raise ValueError("the manifest URI must differ from the output and input URIs")
        return self

    @property
    def manifest_location(self) -> S3Uri:
        return self.manifest_uri or self.output_uri.sibling("manifest.json")


def describe_config_error(err: ValidationError | SettingsError) -> str:
    """One line naming each bad variable. Values are never echoed (they could be secrets)."""
    if isinstance(err, SettingsError):
        return str(err)
    problems = []
    for item in err.errors(include_input=False, include_url=False):
        loc = [str(part) for part in item["loc"]]
        name = f"VIDP_{loc[0].upper()}" if loc else "configuration"
        where = f" ({'.'.join(loc[1:])})" if len(loc) > 1 else ""
        message = "is required" if item["type"] == "missing" else item["msg"]
        problems.append(f"{name}{where}: {message}")
    return "; ".join(problems)


class ReportSettings(BaseSettings):
    """How the task reports to Step Functions and records progress (all optional)."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True, env_ignore_empty=True)

    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    table_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None = None
    video_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")] | None = None


# --- the manifest -----------------------------------------------------------------------------


def make_manifest(config: TaskConfig, result: EncodeResult) -> TaskManifest:
    # output_path is a path inside this container: meaningless to anyone reading the manifest.
    fields = result.model_dump(exclude={"output_path"})
    return TaskManifest(
        job_id=config.job_id,
        output_uri=str(config.output_uri),
        output_bucket=config.output_uri.bucket,
        output_key=config.output_uri.key,
        video_uri=str(config.video_uri),
        subtitles_uri=str(config.subtitles_uri),
        **fields,
    )


# --- logging and signals ----------------------------------------------------------------------

_log_lock = threading.Lock()


def log(event: str, job_id: str | None, **fields: Any) -> None:
    """One JSON line on stdout (progress comes from ffmpeg's reader thread, hence the lock)."""
    line = json.dumps({"event": event, "job_id": job_id, **fields}, default=str)
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class ProgressLog:
    """An on_progress callback that logs (and passes on to ``record``) at most once per
    PROGRESS_STEP_PERCENT."""

    def __init__(self, job_id: str, record: Callable[[float], None] | None = None) -> None:
        self.job_id = job_id
        self._record = record
        self._next = 0.0

    def __call__(self, percent: float) -> None:
        if percent >= self._next:
            log("progress", self.job_id, percent=percent)
            if self._record is not None:
                self._record(percent)
            self._next = (percent // PROGRESS_STEP_PERCENT + 1) * PROGRESS_STEP_PERCENT


def stop_on_signals() -> None:
    """Turn the first SIGTERM/SIGINT into TaskStopped, so every ``finally`` runs.

    The engine's runner kills ffmpeg in its ``finally``; ``run`` removes the scratch folder in
    its own. A second signal is ignored so it cannot interrupt that cleanup (ECS sends SIGKILL
    after the stop timeout anyway).
    """
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        raise TaskStopped(f"stopped by {signal.Signals(signum).name} before the job finished")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# --- the job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    video: Path
    subtitles: bytes
    style: SubtitleStyle  # with font_file pointing at the downloaded font, if any


def local_copy(folder: Path, uri: S3Uri, fallback: str) -> Path:
    """Where to download ``uri``: its own name when usable, so engine messages name the caller's file.

    Each input gets its own folder, so names cannot collide; a name the file system would
    refuse or misread (``..``, too long) falls back to ``fallback`` plus the key's suffix.
    """
    folder.mkdir()
    name = uri.name
    if (
        name in {"", ".", ".."}
        or "\0" in name
        or len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES
    ):
        suffix = Path(name).suffix
        name = fallback + (suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else "")
    return folder / name


def download_inputs(config: TaskConfig, engine: EngineSettings, workdir: Path) -> Inputs:
    """Download the video, the clean SRT and the style's font (if any) into ``workdir``."""
    video = local_copy(workdir / "video", config.video_uri, fallback="video")
    s3.download(config.video_uri, video)
    srt_path = local_copy(workdir / "subtitles", config.subtitles_uri, fallback="subtitles")
    s3.download(config.subtitles_uri, srt_path)
    style = config.style
    if style.font_file is not None:
        font_uri = S3Uri.parse(style.font_file)
        font = local_copy(workdir / "font", font_uri, fallback="font")
        s3.download(font_uri, font)
        style = style.model_copy(update={"font_file": str(font)})
    return Inputs(video=video, subtitles=read_subtitles(srt_path, engine), style=style)


def encode(
    config: TaskConfig,
    engine: EngineSettings,
    inputs: Inputs,
    output: Path,
    record_progress: Callable[[float], None] | None = None,
) -> EncodeResult:
    """One ffmpeg pass through the media engine, logging progress."""
    options = EncodeOptions(
        resolution=config.resolution,
        crf=config.crf,
        preset=config.preset,
        style=inputs.style,
        upscale=config.upscale,
        quality=config.quality,
    )
    progress = ProgressLog(config.job_id, record_progress)
    return burn(inputs.video, inputs.subtitles, output, options, settings=engine, on_progress=progress)


def upload_output(config: TaskConfig, output: Path) -> None:
    """Upload the encoded file; if that does not complete, leave nothing at the output key."""
    try:
        s3.upload(output, config.output_uri, content_type="video/mp4")
    except BaseException:
        # A failed upload leaves nothing behind, but a SIGTERM can land while a single PUT is
        # in flight and boto3 lets that PUT finish: remove what it may have written.
        with contextlib.suppress(VidpError):
            s3.delete(config.output_uri)
        raise


@contextlib.contextmanager
def scratch_folder(work_root: Path) -> Iterator[Path]:
    """A private (0700) folder under ``work_root``, also used by the engine for its temp files.

    Everything the job writes locally lives in it, and it is removed however the job ends.
    """
    folder = Path(tempfile.mkdtemp(prefix="vidp-task-", dir=work_root))
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(folder, ignore_errors=True)


def run(
    config: TaskConfig, engine: EngineSettings, record_progress: Callable[[float], None] | None = None
) -> TaskManifest:
    """Download -> encode -> upload the output -> write the manifest. Raises on any failure."""
    with scratch_folder(config.work_dir or Path(tempfile.gettempdir())) as workdir:
        inputs = download_inputs(config, engine, workdir)
        log("downloaded", config.job_id, video_bytes=inputs.video.stat().st_size)
        result = encode(config, engine, inputs, workdir / "output.mp4", record_progress)
        log(
            "encoded",
            config.job_id,
            width=result.width,
            height=result.height,
            size=result.size,
            cues=result.cues,
            encode_seconds=result.encode_seconds,
        )
        upload_output(config, Path(result.output_path))
        log("uploaded", config.job_id, output_uri=str(config.output_uri), size=result.size)
        manifest = make_manifest(config, result)
        s3.put_json(config.manifest_location, manifest.model_dump(mode="json"))
        return manifest


# --- reporting to Step Functions and to the job record ---------------------------------------


@lru_cache(maxsize=1)
def stepfunctions_client() -> Any:  # no type stubs for Step Functions are installed
    """The Step Functions client, built on first use; boto3 honours AWS_ENDPOINT_URL like S3's."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)
    return boto3.client("stepfunctions", config=config)


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class Reporter:
    """The task's side of ``.waitForTaskToken``: heartbeats, then success or failure, once.

    The token identifies this attempt of the state; it never appears in a log line.
    """

    def __init__(self, token: str, job_id: str | None = None, client: Any = None) -> None:
        self._token = token
        self.job_id = job_id
        self._client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.token_gone = False

    def __repr__(self) -> str:
        return f"Reporter(job_id={self.job_id!r})"  # never the token

    @property
    def client(self) -> Any:
        return self._client or stepfunctions_client()

    @contextlib.contextmanager
    def heartbeats(self, every_seconds: float) -> Iterator[None]:
        """Send a heartbeat now and every ``every_seconds`` from a background thread until the block ends."""
        _ = self.client  # built here: boto3's default session must not build two clients at once
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(every_seconds,), name="heartbeat", daemon=True
        )
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join(timeout=every_seconds + 5)

    def _beat(self, every_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.client.send_task_heartbeat(taskToken=self._token)
            except ClientError as err:
                code = _error_code(err)
                if code in _TOKEN_GONE:
                    # The state timed out or the execution ended: nobody waits for this work.
                    log("heartbeat_refused", self.job_id, code=code)
                    self.token_gone = True
                    if not self._stop.is_set():  # still working: stop, as ECS would (TaskStopped)
                        os.kill(os.getpid(), signal.SIGTERM)
                    return
                log("heartbeat_failed", self.job_id, code=code)
            except BotoCoreError as err:
                log("heartbeat_failed", self.job_id, code=type(err).__name__)
            self._stop.wait(every_seconds)

    def succeed(self, manifest: TaskManifest) -> None:
        """SendTaskSuccess with the manifest as the state's result."""
        self.client.send_task_success(taskToken=self._token, output=manifest.model_dump_json())
        log("reported", self.job_id, outcome="success")

    def fail(self, error: str, cause: str) -> None:
        """SendTaskFailure: ``error`` is what Retry/Catch match, ``cause`` one line for people."""
        self.client.send_task_failure(
            taskToken=self._token, error=error[:_MAX_ERROR_NAME], cause=cause[:_MAX_CAUSE]
        )
        log("reported", self.job_id, outcome="failure", error=error)


class ProgressRecorder:
    """Writes the latest encode percent to the job record from its own thread (best effort).

    ffmpeg's progress reader must never wait for DynamoDB, and a failed write never fails the
    job: it is logged and the next percent is tried.
    """

    def __init__(self, video_id: str, job_id: str, table: str) -> None:
        self.video_id, self.job_id, self.table = video_id, job_id, table
        self._latest: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write_loop, name="progress", daemon=True)

    def __enter__(self) -> ProgressRecorder:
        try:
            from pipeline.adapters import jobs_table

            jobs_table.dynamodb_client()  # built here, not beside the main thread's clients
        except Exception as err:  # progress is informative: never let it fail the job
            log("progress_not_recorded", self.job_id, error=type(err).__name__)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)

    def __call__(self, percent: float) -> None:
        with self._lock:
            self._latest = percent
        self._wake.set()

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                percent, self._latest = self._latest, None
            if percent is not None:
                self._write(percent)  # the last one too (100): the record shows the encode ended
            if self._stop.is_set():
                return

    def _write(self, percent: float) -> None:
        try:
            from pipeline.adapters import jobs_table  # only the Step Functions path needs DynamoDB

            jobs_table.set_progress(self.video_id, self.job_id, percent, table=self.table)
        except Exception as err:  # progress is informative: never let it fail the job
            log("progress_not_recorded", self.job_id, percent=percent, error=type(err).__name__)


def report_failure(reporter: Reporter | None, error: str, message: str) -> None:
    """Tell Step Functions the attempt failed (if it is waiting); a refused report is logged."""
    if reporter is None or reporter.token_gone:
        return
    try:
        reporter.fail(error, message)
    except (ClientError, BotoCoreError) as err:
        code = _error_code(err) if isinstance(err, ClientError) else type(err).__name__
        log("report_failed", reporter.job_id, code=code)


def fail(job_id: str | None, code: str, message: str, exit_code: int) -> int:
    """Log the failure (JSON on stdout, one line on stderr) and return the exit code."""
    log("error", job_id, code=code, message=message, exit_code=exit_code)
    print(f"ffmpeg_task: error: {code}: {message}", file=sys.stderr, flush=True)
    return exit_code


def failed(
    reporter: Reporter | None, job_id: str | None, err: BaseException, code: str, message: str, exit_code: int
) -> int:
    """Report the failure under the exception's class name (the Step Functions error), then ``fail``."""
    report_failure(reporter, type(err).__name__, message)
    return fail(job_id, code, message, exit_code)


def main() -> int:
    """Run one job from the environment; return the process exit code."""
    stop_on_signals()
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    reporter = Reporter(token) if token else None
    try:
        # Engine limits too: a bad VIDP_THREADS is a configuration error, found before any work.
        config, engine, report = TaskConfig(), EngineSettings(), ReportSettings()
    except (ValidationError, SettingsError) as err:
        message = f"invalid configuration: {describe_config_error(err)}"
        report_failure(reporter, InvalidInput.__name__, message)
        return fail(None, "INVALID_CONFIG", message, EXIT_INVALID)
    if reporter is not None:
        reporter.job_id = config.job_id
    started = time.monotonic()
    log(
        "start",
        config.job_id,
        video_uri=str(config.video_uri),
        subtitles_uri=str(config.subtitles_uri),
        output_uri=str(config.output_uri),
        manifest_uri=str(config.manifest_location),
        reporting=reporter is not None,
    )
    try:
        manifest = run_reporting(config, engine, report, reporter)
    except InvalidInput as err:
        return failed(reporter, config.job_id, err, err.code, str(err), EXIT_INVALID)
    except VidpError as err:
        return failed(reporter, config.job_id, err, err.code, str(err), EXIT_FAILED)
    except Exception as err:
        traceback.print_exc()
        message = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        return failed(reporter, config.job_id, err, "INTERNAL_ERROR", message, EXIT_FAILED)
    if reporter is not None:
        try:
            reporter.succeed(manifest)
        except (ClientError, BotoCoreError) as err:
            # The output is complete, but the state will time out and retry: say why.
            code = _error_code(err) if isinstance(err, ClientError) else type(err).__name__
            return fail(config.job_id, "REPORT_FAILED", f"SendTaskSuccess failed: {code}", EXIT_FAILED)
    log(
        "done",
        config.job_id,
        manifest_uri=str(config.manifest_location),
        seconds=round(time.monotonic() - started, 3),
    )
    return EXIT_OK


def run_reporting(
    config: TaskConfig, engine: EngineSettings, report: ReportSettings, reporter: Reporter | None
) -> TaskManifest:
    """``run``, with heartbeats and progress records when Step Functions waits for a token."""
    with contextlib.ExitStack() as stack:
        record: Callable[[float], None] | None = None
        if reporter is not None:
            stack.enter_context(reporter.heartbeats(report.heartbeat_seconds))
            if report.table_name and report.video_id:
                record = stack.enter_context(
                    ProgressRecorder(report.video_id, config.job_id, report.table_name)
                )
        return run(config, engine, record)


if __name__ == "__main__":
    sys.exit(main())
