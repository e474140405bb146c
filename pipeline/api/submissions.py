"""How the API starts jobs: a JobRequest (``POST /api/jobs``), or seed 000's form with the two
files (``POST /api/process-video/``), both through ``pipeline.starter`` (one execution per job id).

- The same request twice is the same job: the starter names the execution by the job id, which
  the request determines. An ``Idempotency-Key`` header names the job instead (``idem-`` + its
  hash): the same key with another request is a 409, as StartExecution's names are.
- The job's record says which execution runs it now: once a job's video was deleted (``DELETE
  /api/videos/{id}``), the same request runs it again, in an execution named ``<job id>-run<N>``
  (Step Functions keeps a closed execution's name for 90 days).
- The form's files go under ``uploads/form-<hash of both files>/``: the same two files with the
  same options are the same request, hence the same job. Not under ``incoming/``, where a video
  without its sidecar would also be taken by the upload trigger (and rejected after its wait).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters import aws_errors, executions, http, jobs_table, s3
from pipeline.adapters.s3 import S3Uri
from pipeline.api.errors import Conflict, PayloadTooLarge, Unprocessable
from pipeline.deployment import UPLOADS_PREFIX
from pipeline.failures import JobConflict, UnsafeUrl
from pipeline.models import JobRequest, JobStatus, video_id_for
from pipeline.starter import Started, Starter, execution_input

MAX_FORM_SRT_BYTES = 5 * 1024 * 1024  # FetchSubtitles' own limit: refused here before anything is stored
SRT_CONTENT_TYPE = "application/x-subrip"
MAX_RUNS = 100
MAX_EXECUTION_NAME = 80


@dataclass(frozen=True)
class FormFile:
    """One file of the multipart form."""

    filename: str
    content: bytes
    content_type: str


def idempotent_job_id(key: str) -> str:
    """The job an ``Idempotency-Key`` names."""
    return "idem-" + hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Submitted:
    """The job a request names, the execution running it (or that ran it), and its status."""

    started: Started
    status: JobStatus


def start(
    request: JobRequest, *, idempotency_key: str | None, state_machine_arn: str, table: str
) -> Submitted:
    """Start ``request`` (or find it started); the key, when given, is the job's identity.

    A URL the SSRF guard would refuse whatever DNS says (another scheme, credentials, a private
    or metadata IP address) is a 422 now rather than a failed job or callback later.
    """
    for field, url in (("callback_url", request.callback_url), ("subtitles.url", request.subtitles.url)):
        if url is not None:
            try:
                http.precheck(url)
            except UnsafeUrl as err:
                raise Unprocessable(f"{field}: {err}") from None
    if idempotency_key is not None:
        job_id = idempotent_job_id(idempotency_key)
        if request.job_id is not None and request.job_id != job_id:
            raise Conflict("the body's job_id and the Idempotency-Key name two different jobs: give one")
        request = request.model_copy(update={"job_id": job_id})
    try:
        return _submit(Starter(state_machine_arn), request, table=table)
    except JobConflict:
        if idempotency_key is None:
            raise
        raise JobConflict(
            "this Idempotency-Key was used for another request: give this one a new key"
        ) from None
    except (ClientError, BotoCoreError) as err:
        raise aws_errors.translate(err, "Step Functions", f"start job {request.resolved_job_id()}") from None


def _submit(starter: Starter, request: JobRequest, *, table: str) -> Submitted:
    started = starter.start(request)
    if started.new:
        return Submitted(started, "processing")
    record = jobs_table.get(video_id_for(started.job_id), table=table)
    if record is not None:
        arn = record.execution_arn or started.execution_arn
        return Submitted(Started(started.job_id, arn, new=False), record.status)
    if executions.is_running(started.execution_arn):
        return Submitted(started, "processing")  # not yet recorded by ValidateInput
    return Submitted(_run_again(starter, request), "processing")


def _run_again(starter: Starter, request: JobRequest) -> Started:
    """The job ran and its video was deleted since: run it again, in the next free execution name."""
    job_id, payload = request.resolved_job_id(), execution_input(request)
    for run in range(2, MAX_RUNS + 1):
        name = f"{job_id}-run{run}"
        if len(name) > MAX_EXECUTION_NAME:
            break
        started = starter.start_execution(payload, name=name)
        if started.new or executions.is_running(started.execution_arn):
            return started
    raise Conflict(f"job {job_id!r} cannot run again under its id: give the request a new job_id")


@dataclass(frozen=True)
class Form:
    """Seed 000's two files, and where they go: ``uploads/form-<hash of both>/``."""

    video: FormFile
    srt: FormFile
    bucket: str

    @property
    def folder(self) -> str:
        digest = hashlib.sha256()
        for part in (self.video.filename, self.video.content, self.srt.filename, self.srt.content):
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big") + data)
        return f"{UPLOADS_PREFIX}form-{digest.hexdigest()[:32]}/"

    @property
    def video_uri(self) -> S3Uri:
        return S3Uri(self.bucket, self.folder + self.video.filename)

    @property
    def srt_uri(self) -> S3Uri:
        return S3Uri(self.bucket, self.folder + "subtitles-" + self.srt.filename)

    def store(self, *, max_video_bytes: int) -> None:
        """Put both files in the bucket (413 when one is over its limit)."""
        if len(self.video.content) > max_video_bytes:
            raise PayloadTooLarge(
                f"video: {len(self.video.content)} bytes, over the limit of {max_video_bytes}"
            )
        if len(self.srt.content) > MAX_FORM_SRT_BYTES:
            raise PayloadTooLarge(
                f"srt_file: {len(self.srt.content)} bytes, over the limit of {MAX_FORM_SRT_BYTES}"
            )
        s3.put_bytes(self.video_uri, self.video.content, content_type=self.video.content_type)
        s3.put_bytes(self.srt_uri, self.srt.content, content_type=SRT_CONTENT_TYPE)
