"""How a job starts, written once: StartExecution of the pipeline, named by the job id.

Every way in uses it: the S3 upload trigger (``handler``, a Lambda in AWS, and
``pipeline.local.uploads`` on the local AWS), ``vidp run`` and the tests (``pipeline.local.aws``),
and the HTTP API, batches and reprocessing to come.

- The execution is named by the job id (a ``JobId`` fits an execution name), and its input is
  the request with that job id, so the same request started twice is one execution.
- The name is looked up first: an execution of that name with the same input is the job,
  already started (AWS keeps names for 90 days after an execution closed); another input under
  that job id is a ``JobConflict``. Two starts racing both reach StartExecution, which answers
  the second with the running execution (same name and input) or ``ExecutionAlreadyExists``.
  ValidateInput's conditional put remains the last guard (a duplicate under another execution
  name records nothing twice).
- Uploads under ``incoming/`` (``pipeline.uploads`` says what they describe): each event ends in
  one outcome, logged on one line: ``started``; ``duplicate`` (the same version again);
  ``waiting`` (a sidecar before its video: the video's event starts the job; a video before its
  sidecar: looked at again after ``sidecar_wait_seconds``, through a delayed queue message, and
  rejected then if no sidecar came); ``ignored`` (gone, a companion file, a folder marker); or
  ``rejected``, which is also put on the pipeline's bus as ``VidP Upload Rejected`` with the key
  and the reason, and counted by the Lambda's ``UploadsRejected`` metric (alarmed on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, SqsModel
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.adapters import aws_clients, events, s3
from pipeline.adapters.executions import stepfunctions_client
from pipeline.adapters.s3 import S3Uri
from pipeline.deployment import METRIC_NAMESPACE, UPLOAD_REJECTED_EVENT, UPLOADS_REJECTED_METRIC
from pipeline.failures import JobConflict
from pipeline.logs import configure, logger, step_log
from pipeline.models import JobRequest, validation_problems
from pipeline.uploads import (
    SIDECAR_SUFFIX,
    UploadRejected,
    WaitingForSidecar,
    WaitingForVideo,
    describe_upload,
    kind_of,
    version_of,
)

_log = logger("starter")
MAX_SIDECAR_WAIT_SECONDS = 900  # SQS's longest message delay
DEFAULT_SIDECAR_WAIT_SECONDS = 300


@dataclass(frozen=True)
class Started:
    """A job and the execution that runs it; ``new``: this call started it."""

    job_id: str
    execution_arn: str
    new: bool = True


def execution_input(request: JobRequest) -> dict[str, Any]:
    """The execution's input: the request, with the job id it resolves to."""
    payload = request.model_dump(mode="json", exclude_none=True)
    payload["job_id"] = request.resolved_job_id()
    return payload


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN StartExecution gives an execution called ``name`` of this state machine."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


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
        arn = execution_arn(self.state_machine_arn, name)
        existing = self._described(arn)
        if existing is None:
            try:
                started = self.client.start_execution(
                    stateMachineArn=self.state_machine_arn, name=name, input=text
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                    raise
                existing = self.client.describe_execution(executionArn=arn)
            else:
                return Started(job_id=name, execution_arn=str(started["executionArn"]))
        if json.loads(existing["input"]) != json.loads(text):
            raise JobConflict(
                f"job {name!r} already exists with another request: give this one another job_id"
            )
        return Started(job_id=name, execution_arn=arn, new=False)

    def _described(self, arn: str) -> dict[str, Any] | None:
        try:
            described: dict[str, Any] = self.client.describe_execution(executionArn=arn)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return described


# --- uploads under incoming/ ------------------------------------------------------------------

Outcome = Literal["started", "duplicate", "waiting", "ignored", "rejected"]


def metric_name(outcome: Outcome) -> str:
    """The metric counting an outcome: ``UploadsStarted``... ``UploadsRejected`` (alarmed on)."""
    return UPLOADS_REJECTED_METRIC if outcome == "rejected" else f"Uploads{outcome.capitalize()}"


@lru_cache(maxsize=1)
def sqs_client() -> Any:  # no type stubs for SQS are installed
    """The shared SQS client (sidecar checks), built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)
    return aws_clients.client("sqs", config)


class UploadIgnored(Exception):
    """The event is about nothing a job is made of (any more)."""


@dataclass(frozen=True)
class UploadOutcome:
    """What one upload event (or sidecar check) came to; ``key`` as S3 knows it."""

    outcome: Outcome
    key: str
    reason: str = ""
    job_id: str = ""
    execution_arn: str = ""

    def answer(self) -> dict[str, Any]:
        """The Lambda's return value (seen in tests and in the console)."""
        fields = {"reason": self.reason, "job_id": self.job_id, "execution_arn": self.execution_arn}
        return {"outcome": self.outcome, "key": self.key, **{k: v for k, v in fields.items() if v}}


class SidecarCheck(BaseModel):
    """A video that came with nothing describing its job, looked at again once its sidecar had
    time to come (a delayed queue message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: Literal["sidecar"] = "sidecar"
    bucket: str
    video_key: str
    video_version: str
    waited_seconds: int


class UploadRejectedDetail(BaseModel):
    """The detail of ``VidP Upload Rejected``."""

    bucket: str
    key: str
    reason: str


def uploaded_object(event: Mapping[str, Any]) -> S3Uri:
    """The object an S3 ``Object Created`` event (through EventBridge) is about."""
    try:
        parsed = S3EventNotificationEventBridgeModel.model_validate(event)
    except ValidationError as err:
        raise UploadRejected(f"not an S3 event: {validation_problems(err)}") from None
    return S3Uri(parsed.detail.bucket.name, parsed.detail.object.key)


@dataclass(frozen=True)
class UploadIntake:
    """Turns upload events and sidecar checks into outcomes: the Lambda's logic, and the local
    AWS's. ``checks_queue_url``: where sidecar checks go (with a delay) and come back from."""

    bucket: str
    starter: Starter
    event_bus: str
    checks_queue_url: str
    sidecar_wait_seconds: int = DEFAULT_SIDECAR_WAIT_SECONDS
    s3_client: Any = None
    sqs_client: Any = None
    events_client: Any = None

    def handle(self, message: Mapping[str, Any]) -> UploadOutcome:
        """One message: an S3 upload event, or a SidecarCheck. AWS errors propagate (retried)."""
        configure()
        outcome = self._check(message) if message.get("check") == "sidecar" else self._upload(message)
        self._log(outcome)
        return outcome

    def _upload(self, event: Mapping[str, Any]) -> UploadOutcome:
        try:
            uploaded = uploaded_object(event)
        except UploadRejected as err:
            return self._rejected("?", str(err))
        if uploaded.bucket != self.bucket:
            return self._rejected(
                uploaded.key, f"the upload is in bucket {uploaded.bucket!r}, not {self.bucket!r}"
            )
        key = uploaded.key
        try:
            key = self._existing(uploaded.key)
            kind = kind_of(key)
            if kind == "folder":
                raise UploadIgnored("a folder marker")
            if kind == "companion":
                raise UploadIgnored(
                    "a subtitles or font file: the job naming it reads it (upload its sidecar or video "
                    "again to process a new version)"
                )
            if kind == "stray json":
                raise UploadRejected(
                    f"{key!r} is neither a video nor a sidecar: "
                    f"a sidecar is named '<video key>{SIDECAR_SUFFIX}'"
                )
            described = describe_upload(self.bucket, key, client=self.s3_client)
            started = self.starter.start(described.request)
        except UploadIgnored as err:
            return UploadOutcome("ignored", key, str(err))
        except WaitingForVideo as err:
            return UploadOutcome("waiting", key, str(err))
        except WaitingForSidecar as err:
            return self._wait_for_sidecar(key, err)
        except (UploadRejected, JobConflict) as err:
            return self._rejected(key, str(err))
        if started.new:
            return UploadOutcome("started", key, "", started.job_id, started.execution_arn)
        reason = f"the version {described.version.text()} already started job {started.job_id!r}"
        if described.named_job_id:
            reason += " (its sidecar names the job_id: a new version needs a new job_id)"
        return UploadOutcome("duplicate", key, reason, started.job_id, started.execution_arn)

    def _existing(self, key: str) -> str:
        """The key as S3 knows it: events may carry it URL-encoded (``+`` for spaces); decode once."""
        for candidate in dict.fromkeys((key, unquote_plus(key))):
            if s3.head_or_none(S3Uri(self.bucket, candidate), client=self.s3_client) is not None:
                return candidate
        raise UploadIgnored("the object is gone")

    def _wait_for_sidecar(self, key: str, waiting: WaitingForSidecar) -> UploadOutcome:
        if self.sidecar_wait_seconds <= 0:
            return self._rejected(key, str(waiting))
        check = SidecarCheck(
            bucket=self.bucket,
            video_key=waiting.video_key,
            video_version=waiting.video_version,
            waited_seconds=self.sidecar_wait_seconds,
        )
        (self.sqs_client or sqs_client()).send_message(
            QueueUrl=self.checks_queue_url,
            MessageBody=check.model_dump_json(),
            DelaySeconds=self.sidecar_wait_seconds,
        )
        reason = (
            f"{waiting}: waiting {self.sidecar_wait_seconds} s for {waiting.sidecar_key!r}, "
            "then the upload is rejected"
        )
        return UploadOutcome("waiting", key, reason)

    def _check(self, message: Mapping[str, Any]) -> UploadOutcome:
        """Reject the video if it is still the same version and still has nothing describing it."""
        try:
            check = SidecarCheck.model_validate(message)
        except ValidationError as err:
            return self._rejected("?", f"not a sidecar check: {validation_problems(err)}")
        key, sidecar_key = check.video_key, check.video_key + SIDECAR_SUFFIX
        if check.bucket != self.bucket:
            return self._rejected(key, f"a sidecar check of bucket {check.bucket!r}, not {self.bucket!r}")
        video = s3.head_or_none(S3Uri(self.bucket, key), client=self.s3_client)
        if video is None:
            return UploadOutcome("ignored", key, "the video is gone")
        if version_of(video) != check.video_version:
            return UploadOutcome("ignored", key, "the video was uploaded again: that upload's event decides")
        if s3.head_or_none(S3Uri(self.bucket, sidecar_key), client=self.s3_client) is not None:
            return UploadOutcome("ignored", key, f"{sidecar_key!r} came: its own event decided")
        return self._rejected(
            key,
            f"no {sidecar_key!r} within {check.waited_seconds} s of the video, and no subtitles-url / "
            "subtitles-s3-uri metadata on it",
        )

    def _rejected(self, key: str, reason: str) -> UploadOutcome:
        detail = UploadRejectedDetail(bucket=self.bucket, key=key, reason=reason)
        events.put_event(
            UPLOAD_REJECTED_EVENT,
            detail.model_dump(mode="json"),
            bus=self.event_bus,
            client=self.events_client,
        )
        return UploadOutcome("rejected", key, reason)

    def _log(self, outcome: UploadOutcome) -> None:
        fields = {"outcome": outcome.outcome, "key": outcome.key, "reason": outcome.reason or None}
        if outcome.job_id:
            fields |= {"job_id": outcome.job_id, "execution_arn": outcome.execution_arn}
        if outcome.outcome == "rejected":
            _log.warning("upload rejected", extra=fields)
        elif outcome.outcome == "duplicate":
            _log.info("upload is a duplicate of an already-started version", extra=fields)
        else:
            _log.info(f"upload {outcome.outcome}", extra=fields)


# --- the upload trigger's Lambda ---------------------------------------------------------------


class UploadSettings(BaseSettings):
    """The upload starter Lambda's configuration (``VIDP_*``); Powertools reads its own
    ``POWERTOOLS_SERVICE_NAME`` (the metrics' ``service`` dimension)."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True)

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    state_machine_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:states:")]
    event_bus_name: Annotated[str, Field(min_length=1)]
    sidecar_checks_queue_url: str = ""
    sidecar_wait_seconds: Annotated[int, Field(ge=0, le=MAX_SIDECAR_WAIT_SECONDS)] = (
        DEFAULT_SIDECAR_WAIT_SECONDS
    )

    @model_validator(mode="after")
    def _queue_when_waiting(self) -> UploadSettings:
        if self.sidecar_wait_seconds and not self.sidecar_checks_queue_url:
            raise ValueError("VIDP_SIDECAR_CHECKS_QUEUE_URL is needed when VIDP_SIDECAR_WAIT_SECONDS > 0")
        return self


@cache
def _upload_settings() -> UploadSettings:
    return UploadSettings()  # required fields come from the environment


def _messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    """An EventBridge S3 event, or the sidecar checks of an SQS batch."""
    if "Records" not in event:
        return [event]
    return [json.loads(str(record.body)) for record in SqsModel.model_validate(event).Records]


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Handle an upload event or a batch of sidecar checks; AWS errors propagate (retried, then
    the DLQ). Each outcome is counted (``UploadsStarted``, ``UploadsRejected``...)."""
    settings = _upload_settings()
    intake = UploadIntake(
        bucket=settings.bucket,
        starter=Starter(settings.state_machine_arn),
        event_bus=settings.event_bus_name,
        checks_queue_url=settings.sidecar_checks_queue_url,
        sidecar_wait_seconds=settings.sidecar_wait_seconds,
    )
    metrics = Metrics(namespace=METRIC_NAMESPACE)
    with step_log(_log, "UploadStarter"):
        try:
            outcomes = [intake.handle(message) for message in _messages(event)]
            for outcome in outcomes:
                metrics.add_metric(name=metric_name(outcome.outcome), unit=MetricUnit.Count, value=1)
        finally:
            metrics.flush_metrics()
    if len(outcomes) == 1:
        return outcomes[0].answer()
    return {"outcomes": [outcome.answer() for outcome in outcomes]}
