"""How a job starts, written once: StartExecution of the pipeline, named by the job id.

Every way in uses it: the S3 upload trigger (``handler``, a Lambda in AWS, and
``pipeline.local.uploads`` on the local AWS), ``vidp run`` and the tests (``pipeline.local.aws``),
and the HTTP API, batches and reprocessing to come.

- The execution is named by the job id (a ``JobId`` fits an execution name), and its input is
  the request with that job id, so the same request started twice is one execution.
- The same name and input while that execution runs: StartExecution itself answers with it.
  A name already taken otherwise (``ExecutionAlreadyExists``: AWS keeps names for 90 days after
  an execution closed): the existing execution is described; the same input is the same job,
  and its execution is the answer; another input under that job id is a ``JobConflict``.
  ValidateInput's conditional put remains the last guard (a duplicate under another execution
  name records nothing twice).
- Uploads under ``incoming/`` are described by a sidecar ``<video key>.job.json`` (a JobRequest
  whose ``video`` may be left out) or by the video's metadata ``subtitles-url`` /
  ``subtitles-s3-uri``; whichever of the video and its sidecar arrives last starts the job.
  Events come at least once and in any order: a duplicate maps to the same execution.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated, Any, cast
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.adapters import s3
from pipeline.adapters.s3 import S3Uri
from pipeline.failures import JobConflict, ObjectNotFound, ObjectTooLarge
from pipeline.logs import logger, step_log
from pipeline.models import JobRequest, validation_problems

_log = logger("starter")
SIDECAR_SUFFIX = ".job.json"
MAX_SIDECAR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Started:
    """A job and the execution that runs it (a new one, or the one already running it)."""

    job_id: str
    execution_arn: str


def execution_input(request: JobRequest) -> dict[str, Any]:
    """The execution's input: the request, with the job id it resolves to."""
    payload = request.model_dump(mode="json", exclude_none=True)
    payload["job_id"] = request.resolved_job_id()
    return payload


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN StartExecution gives an execution called ``name`` of this state machine."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


@lru_cache(maxsize=1)
def stepfunctions_client() -> Any:  # no type stubs for Step Functions are installed
    """The shared Step Functions client, built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.client("stepfunctions", config=config)


class Starter:
    """Starts executions of one state machine (the pipeline's, or another one for tests)."""

    def __init__(self, state_machine_arn: str, *, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or stepfunctions_client()

    def start(self, request: JobRequest) -> Started:
        """Start the pipeline for ``request``, or find the execution that already runs it."""
        return self.start_execution(execution_input(request), name=request.resolved_job_id())

    def start_execution(self, payload: Mapping[str, Any], *, name: str) -> Started:
        """StartExecution named ``name``; the same name and input again is the existing execution.

        Raises JobConflict when the name belongs to an execution with another input.
        """
        text = json.dumps(payload)
        try:
            started = self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=text
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            arn = execution_arn(self.state_machine_arn, name)
            existing = self.client.describe_execution(executionArn=arn)
            if json.loads(existing["input"]) != json.loads(text):
                raise JobConflict(
                    f"job {name!r} already exists with another request: give this one another job_id"
                ) from None
            return Started(job_id=name, execution_arn=arn)
        return Started(job_id=name, execution_arn=str(started["executionArn"]))


# --- uploads under incoming/ ------------------------------------------------------------------


class UploadRejected(ValueError):
    """The upload does not describe a job that can start (yet)."""


@dataclass(frozen=True)
class UploadStarted(Started):
    """An upload event and the execution it maps to; ``key`` as S3 knows it."""

    key: str = ""


def job_keys(key: str) -> tuple[str, str]:
    """(video key, sidecar key) for an event about either of them."""
    if key.endswith(SIDECAR_SUFFIX):
        return key.removesuffix(SIDECAR_SUFFIX), key
    return key, key + SIDECAR_SUFFIX


def uploaded_object(event: Mapping[str, Any]) -> S3Uri:
    """The object an S3 ``Object Created`` event (through EventBridge) is about."""
    try:
        parsed = S3EventNotificationEventBridgeModel.model_validate(event)
    except ValidationError as err:
        raise UploadRejected(f"not an S3 event: {validation_problems(err)}") from None
    return S3Uri(parsed.detail.bucket.name, parsed.detail.object.key)


def start_upload(
    event: Mapping[str, Any], *, bucket: str, starter: Starter, s3_client: Any = None
) -> UploadStarted:
    """Start the job of one upload event in ``bucket``; UploadRejected says why not."""
    uploaded = uploaded_object(event)
    if uploaded.bucket != bucket:
        raise UploadRejected(f"the upload is in bucket {uploaded.bucket!r}, not {bucket!r}")
    key = _existing_key(bucket, uploaded.key, s3_client)
    request = request_for_upload(bucket, key, s3_client=s3_client)
    try:
        started = starter.start(request)
    except JobConflict as err:
        raise UploadRejected(str(err)) from None
    return UploadStarted(job_id=started.job_id, execution_arn=started.execution_arn, key=key)


def _existing_key(bucket: str, key: str, client: Any) -> str:
    """The key as S3 knows it: events may carry it URL-encoded (``+`` for spaces); decode once."""
    if s3.head_or_none(S3Uri(bucket, key), client=client) is not None:
        return key
    decoded = unquote_plus(key)
    if decoded != key and s3.head_or_none(S3Uri(bucket, decoded), client=client) is not None:
        return decoded
    raise UploadRejected("the object is gone")


def request_for_upload(bucket: str, key: str, *, s3_client: Any = None) -> JobRequest:
    """The JobRequest of the video ``key`` (or of the video beside the sidecar ``key``)."""
    video_key, sidecar_key = job_keys(key)
    video = s3.head_or_none(S3Uri(bucket, video_key), client=s3_client)
    if video is None:
        raise UploadRejected(f"waiting for the video {video_key!r}")
    sidecar = _read_sidecar(S3Uri(bucket, sidecar_key), s3_client)
    fields: dict[str, Any] = {"video": {"s3_uri": str(S3Uri(bucket, video_key))}}
    if sidecar is not None:
        fields.update(sidecar)
    else:
        metadata = {name.lower(): value for name, value in video.metadata.items()}
        if "subtitles-url" in metadata:
            fields["subtitles"] = {"url": metadata["subtitles-url"]}
        elif "subtitles-s3-uri" in metadata:
            fields["subtitles"] = {"s3_uri": metadata["subtitles-s3-uri"]}
        else:
            raise UploadRejected(
                f"no {sidecar_key!r} and no subtitles-url / subtitles-s3-uri metadata on the video"
            )
    try:
        return JobRequest.model_validate(fields)
    except ValidationError as err:
        raise UploadRejected(f"invalid job description: {validation_problems(err)}") from None


def _read_sidecar(uri: S3Uri, client: Any) -> dict[str, Any] | None:
    try:
        raw = s3.read_capped(uri, MAX_SIDECAR_BYTES, client=client)
    except ObjectNotFound:
        return None
    except ObjectTooLarge:
        raise UploadRejected(f"{uri.key!r} is larger than {MAX_SIDECAR_BYTES} bytes") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UploadRejected(f"{uri.key!r} is not JSON") from None
    if not isinstance(data, dict):
        raise UploadRejected(f"{uri.key!r} is not a JSON object")
    return cast(dict[str, Any], data)


# --- the upload trigger's Lambda ---------------------------------------------------------------


class UploadSettings(BaseSettings):
    """The upload starter Lambda's configuration (``VIDP_BUCKET``, ``VIDP_STATE_MACHINE_ARN``)."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True)

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    state_machine_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:states:")]


@cache
def _upload_settings() -> UploadSettings:
    return UploadSettings()  # required fields come from the environment


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Start the job of one upload event; AWS errors propagate (async retries, then the DLQ)."""
    settings = _upload_settings()
    with step_log(_log, "UploadStarter"):
        try:
            started = start_upload(event, bucket=settings.bucket, starter=Starter(settings.state_machine_arn))
        except UploadRejected as err:
            _log.info("upload started nothing", extra={"reason": str(err)})
            return {"started": False, "reason": str(err)}
        _log.info("upload started a job", extra={"job_id": started.job_id})
        return {"started": True, "job_id": started.job_id, "execution_arn": started.execution_arn}
