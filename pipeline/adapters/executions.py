"""Step Functions, read by the failure branch and the reconciler: an execution's input and the
state it was in. Only what these need: starting executions is ``pipeline.starter``'s.

Errors reading are ``StorageUnavailable`` (throttling, 5xx, unreachable: retried) or
``StorageFailed`` (anything else), one line each, like the other adapters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters import aws_clients, aws_errors
from pipeline.failures import StorageFailed, StorageUnavailable

_TRANSIENT_CODES = {"ThrottlingException", "ServiceUnavailable", "InternalFailure"}
_HISTORY_PAGE = 50


@lru_cache(maxsize=1)
def stepfunctions_client() -> Any:  # no type stubs for Step Functions are installed
    """The shared Step Functions client, built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return aws_clients.client("stepfunctions", config)


@dataclass(frozen=True)
class Unreadable:
    """An execution input that is not JSON (or nests too deeply to be read)."""

    reason: str


@dataclass(frozen=True)
class Execution:
    """What DescribeExecution says about an execution that the failure branch needs."""

    arn: str
    name: str
    status: str
    input: Any  # the parsed input, or an Unreadable
    error: str | None = None
    cause: str | None = None


def parse_input(text: str | None) -> Any:
    """An execution's input text as JSON, or ``Unreadable`` saying why not."""
    if text is None:
        return Unreadable("the input is not available")
    try:
        return json.loads(text)
    except RecursionError:
        return Unreadable("the input is nested too deeply to be read")
    except ValueError:
        return Unreadable("the input is not JSON")


def describe(execution_arn: str, *, client: Any = None) -> Execution:
    """DescribeExecution, input parsed."""
    try:
        got = (client or stepfunctions_client()).describe_execution(executionArn=execution_arn)
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"describe {execution_arn.rpartition(':')[2]}") from None
    return Execution(
        arn=execution_arn,
        name=str(got.get("name", execution_arn.rpartition(":")[2])),
        status=str(got["status"]),
        input=parse_input(got.get("input")),
        error=got.get("error"),
        cause=got.get("cause"),
    )


def is_running(execution_arn: str, *, client: Any = None) -> bool:
    """Whether the execution is still RUNNING; False too when Step Functions no longer knows it
    (AWS keeps a closed execution 90 days, while its job's record stays)."""
    try:
        got = (client or stepfunctions_client()).describe_execution(executionArn=execution_arn)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise _error(err, f"describe {execution_arn.rpartition(':')[2]}") from None
    except BotoCoreError as err:
        raise _error(err, f"describe {execution_arn.rpartition(':')[2]}") from None
    return str(got["status"]) == "RUNNING"


def describe_machine(state_machine_arn: str, *, client: Any = None) -> str:
    """The state machine's status (``ACTIVE``...): the health check's question."""
    try:
        got = (client or stepfunctions_client()).describe_state_machine(stateMachineArn=state_machine_arn)
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"describe {state_machine_arn.rpartition(':')[2]}") from None
    return str(got.get("status", "ACTIVE"))


def last_state(execution_arn: str, *, client: Any = None) -> str | None:
    """The state the execution entered last (where it was when stopped), or None."""
    try:
        got = (client or stepfunctions_client()).get_execution_history(
            executionArn=execution_arn, reverseOrder=True, maxResults=_HISTORY_PAGE
        )
    except (ClientError, BotoCoreError) as err:
        raise _error(err, f"history of {execution_arn.rpartition(':')[2]}") from None
    # The newest page first; the latest entry is the one with the highest id (whatever the
    # order of the page: moto's ignores reverseOrder and answers the whole history).
    entered = [
        event for event in got.get("events", [])
        if event.get("stateEnteredEventDetails") and str(event.get("type", "")).endswith("StateEntered")
    ]  # fmt: skip
    if not entered:
        return None
    latest = max(entered, key=lambda event: int(event.get("id", 0)))
    return str(latest["stateEnteredEventDetails"]["name"])


def _error(err: ClientError | BotoCoreError, what: str) -> StorageUnavailable | StorageFailed:
    return aws_errors.translate(err, "Step Functions", what, transient=_TRANSIENT_CODES)
