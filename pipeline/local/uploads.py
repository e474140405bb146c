"""Start a job when a video is uploaded under ``incoming/`` of the local bucket.

S3 sends ``Object Created`` to EventBridge; a rule forwards those under ``incoming/`` to an SQS
queue (``resources.py``), and this poller hands each message to ``pipeline.starter.UploadIntake``,
the same code the upload starter Lambda runs in AWS. Sidecar checks (a video that came without
its sidecar, looked at again later) go to the same queue with a delay, as they go to their own
queue in AWS; rejected uploads are put on the local bus as ``VidP Upload Rejected``.
"""

from __future__ import annotations

import json
import logging
import threading

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.failures import VidpError
from pipeline.local.clients import Clients
from pipeline.starter import DEFAULT_SIDECAR_WAIT_SECONDS, Starter, UploadIntake, UploadOutcome

log = logging.getLogger(__name__)


class UploadStarter:
    """The background thread turning upload events into named executions (or rejections)."""

    def __init__(
        self,
        clients: Clients,
        *,
        poll_seconds: float = 0.1,
        sidecar_wait_seconds: int = DEFAULT_SIDECAR_WAIT_SECONDS,
    ) -> None:
        self._clients = clients
        self._poll_seconds = poll_seconds
        self.sidecar_wait_seconds = sidecar_wait_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._outcomes: list[UploadOutcome] = []
        self._queue_url = ""
        self._intake: UploadIntake | None = None

    def start(self, *, queue_url: str, bucket: str, state_machine_arn: str, event_bus: str) -> None:
        self._queue_url = queue_url
        self._intake = UploadIntake(
            bucket=bucket,
            starter=Starter(state_machine_arn, client=self._clients.client("stepfunctions")),
            event_bus=event_bus,
            checks_queue_url=queue_url,
            sidecar_wait_seconds=self.sidecar_wait_seconds,
            s3_client=self._clients.client("s3"),
            sqs_client=self._clients.client("sqs"),
            events_client=self._clients.client("events"),
        )
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="local-upload-starter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def outcomes(self) -> list[UploadOutcome]:
        """What every message came to, oldest first."""
        with self._lock:
            return list(self._outcomes)

    @property
    def started(self) -> list[UploadOutcome]:
        """Every event that led to its execution, a new one or a duplicate's, oldest first."""
        return [outcome for outcome in self.outcomes if outcome.outcome in ("started", "duplicate")]

    @property
    def rejected(self) -> list[tuple[str, str]]:
        """(key, reason) of rejected uploads."""
        return [(o.key, o.reason) for o in self.outcomes if o.outcome == "rejected"]

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                handled = self._poll_once()
            except (ClientError, BotoCoreError, OSError, VidpError) as err:  # AWS trouble: poll again
                if not self._stopping.is_set():
                    log.warning("upload starter: polling failed: %s", err)
                handled = 0
            if not handled:
                self._stopping.wait(self._poll_seconds)

    def _poll_once(self) -> int:
        if self._intake is None:
            raise RuntimeError("the upload starter is not started")
        sqs = self._clients.client("sqs")
        got = sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        for message in messages:
            # An error reaching AWS leaves the message: it comes back (at least once).
            outcome = self._intake.handle(json.loads(message["Body"]))
            with self._lock:
                self._outcomes.append(outcome)
            sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)
