"""What the task tells the outside world: JSON log lines, Step Functions, the job record.

Step Functions waits for the task with ``.waitForTaskToken``: ``Reporter`` sends heartbeats while
the job runs and ends with SendTaskSuccess or SendTaskFailure; ``ProgressRecorder`` writes the
encode percentage to the job record. Neither knows which job variant runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from pipeline.adapters import aws_clients

PROGRESS_STEP_PERCENT = 5.0
TOKEN_VARIABLE = "VIDP_TASK_TOKEN"  # noqa: S105 - the variable's name, not a secret
# SendTaskFailure's limits: error up to 256 characters, cause up to 32768.
_MAX_ERROR_NAME, _MAX_CAUSE = 256, 32768
# The token is no longer accepted (timed out, execution stopped): the work is wasted, stop it.
_TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}

# --- log lines --------------------------------------------------------------------------------

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


# --- Step Functions ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def stepfunctions_client() -> Any:  # no type stubs for Step Functions are installed
    """The Step Functions client, built on first use; boto3 honours AWS_ENDPOINT_URL like S3's."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=30)
    return aws_clients.client("stepfunctions", config)


def error_code(err: ClientError | BotoCoreError) -> str:
    """The AWS error code of a refused call, or the class name when the call never got an answer."""
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", ""))
    return type(err).__name__


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
                code = error_code(err)
                if code in _TOKEN_GONE:
                    # The state timed out or the execution ended: nobody waits for this work.
                    log("heartbeat_refused", self.job_id, code=code)
                    self.token_gone = True
                    if not self._stop.is_set():  # still working: stop, as ECS would (TaskStopped)
                        os.kill(os.getpid(), signal.SIGTERM)
                    return
                log("heartbeat_failed", self.job_id, code=code)
            except BotoCoreError as err:
                log("heartbeat_failed", self.job_id, code=error_code(err))
            self._stop.wait(every_seconds)

    def succeed(self, result: BaseModel) -> None:
        """SendTaskSuccess with the job's result (the whole-file job's manifest) as the state's result."""
        self.client.send_task_success(taskToken=self._token, output=result.model_dump_json())
        log("reported", self.job_id, outcome="success")

    def fail(self, error: str, cause: str) -> None:
        """SendTaskFailure: ``error`` is what Retry/Catch match, ``cause`` one line for people."""
        self.client.send_task_failure(
            taskToken=self._token, error=error[:_MAX_ERROR_NAME], cause=cause[:_MAX_CAUSE]
        )
        log("reported", self.job_id, outcome="failure", error=error)


def report_failure(reporter: Reporter | None, error: str, message: str) -> None:
    """Tell Step Functions the attempt failed (if it is waiting); a refused report is logged."""
    if reporter is None or reporter.token_gone:
        return
    try:
        reporter.fail(error, message)
    except (ClientError, BotoCoreError) as err:
        log("report_failed", reporter.job_id, code=error_code(err))


# --- the job record ---------------------------------------------------------------------------


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


def job_still_processing(video_id: str, job_id: str, table: str) -> bool:
    """The encode is done (progress 100) if the record still has this job ``processing``; False
    once the job was ended by someone else (stopped, timed out, marked failed).

    A DynamoDB error counts as still processing: Finalise and MarkFailed decide from there.
    """
    from pipeline.adapters import jobs_table  # only the Step Functions path needs DynamoDB

    try:
        return jobs_table.set_progress(video_id, job_id, 100.0, table=table)
    except Exception as err:  # informative, like progress: never fails the job by itself
        log("progress_not_recorded", job_id, percent=100.0, error=type(err).__name__)
        return True
