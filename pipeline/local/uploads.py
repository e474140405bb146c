"""Start a job when a video is uploaded under ``incoming/`` of the local bucket.

S3 sends ``Object Created`` to EventBridge; a rule forwards those under ``incoming/`` to an SQS
queue (``resources.py``), and this poller hands each event to ``pipeline.starter.start_upload``,
the same code the upload starter Lambda runs in AWS.
"""

from __future__ import annotations

import json
import logging
import threading

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.failures import VidpError
from pipeline.local.clients import Clients
from pipeline.starter import Starter, UploadRejected, UploadStarted, start_upload, uploaded_object

log = logging.getLogger(__name__)


class UploadStarter:
    """The background thread turning upload events into named executions."""

    def __init__(self, clients: Clients, *, poll_seconds: float = 0.1) -> None:
        self._clients = clients
        self._poll_seconds = poll_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started: list[UploadStarted] = []
        self._rejected: list[tuple[str, str]] = []
        self._queue_url = ""
        self._bucket = ""
        self._starter: Starter | None = None

    def start(self, *, queue_url: str, bucket: str, state_machine_arn: str) -> None:
        self._queue_url, self._bucket = queue_url, bucket
        self._starter = Starter(state_machine_arn, client=self._clients.client("stepfunctions"))
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="local-upload-starter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def started(self) -> list[UploadStarted]:
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
            except (ClientError, BotoCoreError, OSError, VidpError) as err:  # S3 or SQS trouble: poll again
                if not self._stopping.is_set():
                    log.warning("upload starter: polling failed: %s", err)
                handled = 0
            if not handled:
                self._stopping.wait(self._poll_seconds)

    def _poll_once(self) -> int:
        sqs = self._clients.client("sqs")
        got = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        for message in messages:
            # An error reaching S3 or Step Functions leaves the message: it comes back (at least once).
            self._handle(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _handle(self, event: dict[str, object]) -> None:
        if self._starter is None:
            raise RuntimeError("the upload starter is not started")
        try:
            started = start_upload(
                event, bucket=self._bucket, starter=self._starter, s3_client=self._clients.client("s3")
            )
        except UploadRejected as err:
            key = _key_of(event)
            log.info("upload %r started nothing: %s", key, err)
            with self._lock:
                self._rejected.append((key, str(err)))
            return
        with self._lock:
            self._started.append(started)


def _key_of(event: dict[str, object]) -> str:
    try:
        return uploaded_object(event).key
    except UploadRejected:
        return "?"
