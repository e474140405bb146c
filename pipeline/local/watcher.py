"""Run the reconciler for every pipeline execution that ends badly, as AWS's EventBridge rule does.

In AWS, Step Functions puts an ``Execution Status Change`` event on the default bus when an
execution ends, and a rule sends ``ABORTED``, ``TIMED_OUT`` and ``FAILED`` ones to the reconciler
Lambda (``pipeline.reconciler``). moto puts no such event (``tests/unit/test_moto_workarounds.py``
shows it), so this thread lists the executions that ended badly and hands each, once, to the same
handler, in-process, with the event AWS would send. A handler error is retried at the next
polls (EventBridge retries too), then logged and dropped.

``reconcile(description)`` takes an execution the local AWS no longer knows (one that was in
flight when a previous run stopped, restored from the data folder): its job is reconciled the same way.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.local.clients import Clients
from pipeline.local.resources import ACCOUNT, REGION

log = logging.getLogger(__name__)

ENDED_BADLY = ("ABORTED", "TIMED_OUT", "FAILED")
MAX_ATTEMPTS = 5
Reconciler = Callable[[dict[str, Any], Any], Any]


def status_change_event(description: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge event AWS puts for an execution's status change (DescribeExecution's shape)."""
    detail = {
        "executionArn": description["executionArn"],
        "stateMachineArn": description.get("stateMachineArn"),
        "name": description.get("name"),
        "status": description["status"],
        "startDate": _millis(description.get("startDate")),
        "stopDate": _millis(description.get("stopDate")),
        "input": description.get("input"),
        "inputDetails": {"included": description.get("input") is not None},
        "error": description.get("error"),
        "cause": description.get("cause"),
    }
    return {
        "version": "0",
        "id": f"local-{description['executionArn'].rpartition(':')[2]}-{description['status']}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [description["executionArn"]],
        "detail": detail,
    }


def _millis(moment: Any) -> int | None:
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    if isinstance(moment, int | float):
        return int(moment)
    return None


class ExecutionWatcher:
    """The background thread feeding ended executions of one state machine to the reconciler."""

    def __init__(
        self, clients: Clients, *, handler: Reconciler | None = None, poll_seconds: float = 0.1
    ) -> None:
        self._clients = clients
        self._handler = handler
        self._poll_seconds = poll_seconds
        self._machines: list[str] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one reconciliation at a time: the poll thread, stop(), reconcile()
        self._done: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._results: list[dict[str, Any]] = []

    def start(self, state_machine_arn: str) -> None:
        self.watch(state_machine_arn)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="local-execution-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, after one last pass (executions the local AWS just stopped are reconciled)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.poll_once()

    def watch(self, state_machine_arn: str) -> None:
        """Watch another state machine's executions too (in AWS: another ARN in the rule's pattern)."""
        with self._lock:
            if state_machine_arn not in self._machines:
                self._machines.append(state_machine_arn)

    @property
    def results(self) -> list[dict[str, Any]]:
        """What the reconciler answered, oldest first (``{"executionArn", "status", **answer}``)."""
        with self._lock:
            return list(self._results)

    def reconcile(self, description: Mapping[str, Any]) -> None:
        """Reconcile one execution now (DescribeExecution's shape; ``input`` should be there)."""
        with self._lock:
            self._hand_over(description)

    def _loop(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self.poll_once()

    def poll_once(self) -> None:
        try:
            ended = self._ended()
        except (ClientError, BotoCoreError, OSError) as err:
            if not self._stopping.is_set():
                log.warning("execution watcher: listing failed: %s", err)
            return
        for arn in ended:
            try:
                description = self._clients.client("stepfunctions").describe_execution(executionArn=arn)
            except (ClientError, BotoCoreError, OSError) as err:
                log.warning("execution watcher: describe %s failed: %s", arn, err)
                continue
            with self._lock:
                self._hand_over(description)

    def _ended(self) -> list[str]:
        sfn = self._clients.client("stepfunctions")
        found: list[str] = []
        with self._lock:
            machines = list(self._machines)
        for machine, status in ((m, s) for m in machines for s in ENDED_BADLY):
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine, statusFilter=status
            )
            for page in pages:
                found.extend(
                    e["executionArn"] for e in page["executions"] if e["executionArn"] not in self._done
                )
        return found

    def _hand_over(self, description: Mapping[str, Any]) -> None:
        arn = str(description["executionArn"])
        if arn in self._done:
            return
        handler = self._handler or _reconciler()
        try:
            answer = handler(status_change_event(description), None)
        except Exception as err:  # as a Lambda's: any error is retried, none ends the watcher
            attempts = self._attempts[arn] = self._attempts.get(arn, 0) + 1
            if attempts < MAX_ATTEMPTS:
                log.info("reconciler: %s failed (attempt %d), retried: %s", arn, attempts, err)
                return
            log.error("reconciler: %s failed %d times, dropped: %s", arn, attempts, err)
            answer = {"action": "dropped", "error": str(err)}
        self._done.add(arn)
        self._results.append({"executionArn": arn, "status": description["status"], **dict(answer)})
        if answer.get("action") in {"marked", "recorded"}:
            log.info(
                "reconciler: %s %s: %s", arn.rpartition(":")[2], description["status"], json.dumps(answer)
            )


def _reconciler() -> Reconciler:
    from pipeline.reconciler import handler  # imported at first use, like a Lambda's cold start

    return handler
