"""The upload starter Lambda: an S3 ``Object Created`` event under ``incoming/`` -> a named execution.

EventBridge cannot name a Step Functions execution, and the raw S3 event is not a JobRequest;
this function reads the job the same way the local mode does (``pipeline.local.uploads``: a
``<video key>.job.json`` sidecar or ``subtitles-url`` / ``subtitles-s3-uri`` metadata on the
video) and calls StartExecution named by the job id. Events come at least once and in any
order; a duplicate gets ``ExecutionAlreadyExists`` for 90 days and is dropped here, and after
that ValidateInput's conditional put of the job record still makes it a no-op.

Packaged by ``scripts/bundle_lambda.py`` beside ``pipeline/``; handler ``upload_starter.handler``.
Environment: ``VIDP_BUCKET``, ``VIDP_STATE_MACHINE_ARN``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import boto3
from botocore.exceptions import ClientError

from pipeline.local.uploads import UploadStarter
from pipeline.models import JobRequest

log = logging.getLogger()
log.setLevel(logging.INFO)
_MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class _Names:
    bucket: str


def execution_name(job_id: str) -> str:
    """The job id, or a stable digest of it when longer than an execution name may be."""
    if len(job_id) <= _MAX_EXECUTION_NAME:
        return job_id
    return "job-" + hashlib.sha256(job_id.encode()).hexdigest()[:32]


class _AwsStarter:
    """What ``UploadStarter`` needs from its AWS: clients, the bucket name and start_job."""

    def __init__(self, bucket: str, state_machine_arn: str) -> None:
        self.names = _Names(bucket)
        self._state_machine_arn = state_machine_arn

    @cache  # noqa: B019 - one instance per cold start
    def client(self, service: str) -> Any:
        return cast(Any, boto3.client)(service)  # the service name is data here

    def start_job(self, request: JobRequest) -> str:
        job_id = request.resolved_job_id()
        payload = request.model_dump(mode="json", exclude_none=True)
        payload["job_id"] = job_id
        name = execution_name(job_id)
        try:
            started = self.client("stepfunctions").start_execution(
                stateMachineArn=self._state_machine_arn, name=name, input=json.dumps(payload)
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            log.info(json.dumps({"event": "duplicate", "job_id": job_id}))
            return self._state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
        arn: str = started["executionArn"]
        return arn


@cache
def _starter() -> UploadStarter:
    aws = _AwsStarter(os.environ["VIDP_BUCKET"], os.environ["VIDP_STATE_MACHINE_ARN"])
    return UploadStarter(aws)  # type: ignore[arg-type]  # duck-typed: client, names, start_job


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Start the job of one upload event; AWS errors propagate (async retries, then the DLQ)."""
    started = _starter().handle_event(event)
    if started is None:
        log.info(json.dumps({"event": "not_started", "key": event.get("detail", {}).get("object", {})}))
        return {"started": False}
    log.info(json.dumps({"event": "started", "job_id": started.job_id, "execution": started.execution_arn}))
    return {"started": True, "job_id": started.job_id, "execution_arn": started.execution_arn}
