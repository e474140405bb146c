"""An execution's history as a timeline: each state run with its duration, attempts and errors.

The same view as the Step Functions console's, built from GetExecutionHistory events, so it
works against the local AWS and against AWS alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pipeline import failures

_EXECUTION_ENDS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
_ATTEMPT_EVENTS = {"TaskScheduled", "LambdaFunctionScheduled"}
_MAX_CAUSE = 200
_FAILURE_DETAILS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
}


class StateRun(BaseModel):
    """One entry of a state in an execution."""

    name: str
    type: str
    started: datetime
    ended: datetime | None = None
    attempts: int = 0
    errors: list[str] = []

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else round((self.ended - self.started).total_seconds(), 3)

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


def build_timeline(events: Sequence[Mapping[str, Any]]) -> list[StateRun]:
    """State runs in the order they were entered, from GetExecutionHistory ``events``."""
    runs: list[StateRun] = []
    current: StateRun | None = None
    for event in events:
        kind = str(event["type"])
        when: datetime = event["timestamp"]
        if kind.endswith("StateEntered"):
            if current is not None and current.ended is None:
                current.ended = when
            details = event.get("stateEnteredEventDetails", {})
            current = StateRun(
                name=details.get("name", "?"), type=kind.removesuffix("StateEntered"), started=when
            )
            runs.append(current)
        elif kind.endswith("StateExited") and current is not None:
            current.ended = when
        elif current is not None and kind in _ATTEMPT_EVENTS:
            current.attempts += 1
        elif kind in _FAILURE_DETAILS:
            details = event.get(_FAILURE_DETAILS[kind], {})
            cause = failures.one_line(failures.cause_text(details.get("cause")), _MAX_CAUSE)
            message = f"{details.get('error', kind)}: {cause}".rstrip(": ")
            if current is not None:
                current.errors.append(message)
    # A state still open when the execution ended (failed, timed out, aborted) ended with it.
    if current is not None and current.ended is None and events and events[-1]["type"] in _EXECUTION_ENDS:
        current.ended = events[-1]["timestamp"]
    return runs
