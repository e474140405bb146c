"""Start a job when a video is uploaded under ``incoming/`` of the local bucket.

S3 sends ``Object Created`` to EventBridge; a rule forwards those under ``incoming/`` to an SQS
queue (``resources.py``), and this starter reads the queue. The job is described by a sidecar
``<video key>.job.json`` (a JobRequest, ``video`` optional) or by the video's metadata
``subtitles-url`` / ``subtitles-s3-uri``. Whichever of the video and its sidecar arrives last
starts the job. Events come at least once and in any order: the execution is named by the
job id derived from the request, so a duplicate maps to the same execution.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from pipeline.models import JobRequest

if TYPE_CHECKING:
    from pipeline.local.aws import LocalAws

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".job.json"
MAX_SIDECAR_BYTES = 64 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class UploadRejected(ValueError):
    """The upload does not describe a job that can start (yet)."""


@dataclass(frozen=True)
class Started:
    """An upload event and the execution it maps to."""

    key: str
    job_id: str
    execution_arn: str


def job_keys(key: str) -> tuple[str, str]:
    """(video key, sidecar key) for an event about either of them."""
    if key.endswith(SIDECAR_SUFFIX):
        return key.removesuffix(SIDECAR_SUFFIX), key
    return key, key + SIDECAR_SUFFIX


class UploadStarter:
    """The background thread turning upload events into named executions."""

    def __init__(self, aws: LocalAws, *, poll_seconds: float = 0.1) -> None:
        self._aws = aws
        self._poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started: list[Started] = []
        self._rejected: list[tuple[str, str]] = []

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="local-upload-starter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def started(self) -> list[Started]:
        """Every event that led to StartExecution (duplicates included), oldest first."""
        with self._lock:
            return list(self._started)

    @property
    def rejected(self) -> list[tuple[str, str]]:
        """(key, reason) of events that started nothing."""
        with self._lock:
            return list(self._rejected)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                handled = self._poll_once()
            except (ClientError, BotoCoreError, OSError) as err:
                if not self._stopping.is_set():
                    log.warning("upload starter: polling failed: %s", err)
                handled = 0
            if not handled:
                self._stopping.wait(self._poll_seconds)

    def _poll_once(self) -> int:
        sqs = self._aws.client("sqs")
        url = self._aws.deployed.uploads_queue_url
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            # An error reaching S3 or Step Functions leaves the message: it comes back (at least once).
            self.handle_event(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def handle_event(self, event: dict[str, Any]) -> Started | None:
        """One ``Object Created`` event: start its job, or record why not."""
        detail = event.get("detail", {})
        bucket = detail.get("bucket", {}).get("name", "")
        raw_key = str(detail.get("object", {}).get("key", ""))
        if bucket != self._aws.names.bucket:
            return None
        try:
            key = self._existing_key(bucket, raw_key)
            request = self.request_for(bucket, key)
            arn = self._aws.start_job(request)
        except UploadRejected as err:
            log.info("upload %r started nothing: %s", raw_key, err)
            with self._lock:
                self._rejected.append((raw_key, str(err)))
            return None
        started = Started(key=key, job_id=request.resolved_job_id(), execution_arn=arn)
        with self._lock:
            self._started.append(started)
        return started

    def _existing_key(self, bucket: str, key: str) -> str:
        """The key as S3 knows it: events may carry it URL-encoded (``+`` for spaces); decode once."""
        if self._head(bucket, key) is not None:
            return key
        decoded = unquote_plus(key)
        if decoded != key and self._head(bucket, decoded) is not None:
            return decoded
        raise UploadRejected("the object is gone")

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            got: dict[str, Any] = self._aws.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise
        return got

    def request_for(self, bucket: str, key: str) -> JobRequest:
        """The JobRequest of the video ``key`` (or of the video beside the sidecar ``key``)."""
        video_key, sidecar_key = job_keys(key)
        video = self._head(bucket, video_key)
        if video is None:
            raise UploadRejected(f"waiting for the video {video_key!r}")
        sidecar = self._read_sidecar(bucket, sidecar_key)
        video_uri = f"s3://{bucket}/{video_key}"
        if sidecar is not None:
            fields = {"video": {"s3_uri": video_uri}, **sidecar}
        else:
            metadata = {k.lower(): v for k, v in video.get("Metadata", {}).items()}
            if "subtitles-url" in metadata:
                subtitles = {"url": metadata["subtitles-url"]}
            elif "subtitles-s3-uri" in metadata:
                subtitles = {"s3_uri": metadata["subtitles-s3-uri"]}
            else:
                raise UploadRejected(
                    f"no {sidecar_key!r} and no subtitles-url / subtitles-s3-uri metadata on the video"
                )
            fields = {"video": {"s3_uri": video_uri}, "subtitles": subtitles}
        try:
            return JobRequest.model_validate(fields)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}"
                for e in err.errors(include_input=False, include_url=False)
            )
            raise UploadRejected(f"invalid job description: {problems}") from None

    def _read_sidecar(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            got = self._aws.client("s3").get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise
        with got["Body"] as body:
            raw = body.read(MAX_SIDECAR_BYTES + 1)
        if len(raw) > MAX_SIDECAR_BYTES:
            raise UploadRejected(f"{key!r} is larger than {MAX_SIDECAR_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise UploadRejected(f"{key!r} is not JSON") from None
        if not isinstance(data, dict):
            raise UploadRejected(f"{key!r} is not a JSON object")
        return data
