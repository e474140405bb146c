"""StopTimedOutTask: after BurnAndCompress timed out, stop its Fargate task before trying again.

A state timeout (no heartbeat, or the state's TimeoutSeconds) ends the wait for the task token,
not the task: a hung task would keep running beside the retry's. It is stopped here (every task
still running for the video), and the number of timeouts so far is counted for the Choice that
decides between another attempt and MarkFailed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.adapters import ecs
from pipeline.logs import logger, step_log
from pipeline.models import Job
from pipeline.steps.settings import step_settings

_log = logger("stop_timed_out_task")


class TimedOutState(BaseModel):
    """The state after BurnAndCompress's timeout Catch (``$``): the job and the count so far."""

    model_config = ConfigDict(extra="ignore")

    job: Job
    timeouts: int = 0


class TimeoutsCounted(BaseModel):
    """The result at ``$.timeout``."""

    timeouts: int
    stopped_tasks: int


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    state = TimedOutState.model_validate(event["state"])
    with step_log(_log, "StopTimedOutTask", job_id=state.job.job_id):
        return stop_timed_out_task(state, cluster=step_settings().cluster_arn).model_dump()


def stop_timed_out_task(state: TimedOutState, *, cluster: str | None) -> TimeoutsCounted:
    """Stop the video's running tasks (errors are retried by the state); count this timeout."""
    stopped: list[str] = []
    if cluster is not None:
        stopped = ecs.stop_video_tasks(
            cluster, state.job.video_id, f"job {state.job.job_id}: BurnAndCompress timed out"
        )
    counted = TimeoutsCounted(timeouts=state.timeouts + 1, stopped_tasks=len(stopped))
    _log.info("task timed out", extra=counted.model_dump())
    return counted
