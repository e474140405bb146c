"""ECS: stop the Fargate tasks still running for a video.

The pipeline starts each task with ``StartedBy`` = the job's ``video_id`` (a ``vid-`` id of 28
characters fits ECS's 36), so a job's tasks are found without recording their ARNs: after a
state timeout (a hung task), a failure, a StopExecution or an execution timeout.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters import aws_clients, aws_errors

_TRANSIENT_CODES = {"ThrottlingException", "ServerException"}
_REASON_LIMIT = 255  # StopTask's reason is at most 255 characters


@lru_cache(maxsize=1)
def ecs_client() -> Any:  # no type stubs for ECS are installed
    """The shared ECS client, built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
    return aws_clients.client("ecs", config)


def stop_video_tasks(cluster: str, video_id: str, reason: str, *, client: Any = None) -> list[str]:
    """StopTask every task of ``cluster`` started by ``video_id`` that is still running; their ARNs."""
    ecs = client or ecs_client()
    try:
        arns: list[str] = []
        for page in ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, startedBy=video_id, desiredStatus="RUNNING"
        ):
            arns.extend(page.get("taskArns", []))
        for arn in arns:
            ecs.stop_task(cluster=cluster, task=arn, reason=reason[:_REASON_LIMIT])
    except (ClientError, BotoCoreError) as err:
        raise aws_errors.translate(
            err, "ECS", f"stop tasks of {video_id}", transient=_TRANSIENT_CODES
        ) from None
    return arns
