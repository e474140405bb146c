"""The execution timeline built from GetExecutionHistory events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.timeline import build_timeline

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def event(kind: str, second: float, **details: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": T0 + timedelta(seconds=second), **details}


def entered(kind: str, name: str, second: float) -> dict[str, Any]:
    return event(f"{kind}StateEntered", second, stateEnteredEventDetails={"name": name})


def exited(kind: str, name: str, second: float) -> dict[str, Any]:
    return event(f"{kind}StateExited", second, stateExitedEventDetails={"name": name})


def test_a_retried_task_shows_its_attempts_errors_and_duration() -> None:
    lambda_error = json.dumps(
        {"errorType": "SubtitleFetchFailed", "errorMessage": "subtitle URL answered 500"}
    )
    history = [
        event("ExecutionStarted", 0),
        entered("Task", "FetchSubtitles", 0.1),
        event("LambdaFunctionScheduled", 0.1),
        event("LambdaFunctionFailed", 0.3,
              lambdaFunctionFailedEventDetails={"error": "SubtitleFetchFailed", "cause": lambda_error}),
        event("LambdaFunctionScheduled", 2.3),
        event("LambdaFunctionSucceeded", 2.5),
        exited("Task", "FetchSubtitles", 2.5),
        entered("Succeed", "Done", 2.6),
        exited("Succeed", "Done", 2.6),
        event("ExecutionSucceeded", 2.6),
    ]  # fmt: skip
    runs = build_timeline(history)
    assert [(run.name, run.type) for run in runs] == [("FetchSubtitles", "Task"), ("Done", "Succeed")]
    fetch = runs[0]
    assert (fetch.attempts, fetch.retries, fetch.seconds) == (2, 1, 2.4)
    assert fetch.errors == ["SubtitleFetchFailed: subtitle URL answered 500"]


def test_a_state_open_when_the_execution_failed_ends_with_it() -> None:
    history = [
        entered("Task", "BurnAndCompress", 1),
        event("TaskScheduled", 1),
        event(
            "TaskTimedOut", 181, taskTimedOutEventDetails={"error": "States.HeartbeatTimeout", "cause": ""}
        ),
        event("ExecutionFailed", 181, executionFailedEventDetails={"error": "States.HeartbeatTimeout"}),
    ]
    (run,) = build_timeline(history)
    assert run.seconds == 180 and run.errors[0] == "States.HeartbeatTimeout"


def test_a_running_state_stays_open() -> None:
    (run,) = build_timeline([entered("Task", "BurnAndCompress", 1), event("TaskScheduled", 1)])
    assert run.ended is None and run.seconds is None and run.attempts == 1
