"""How the API starts jobs: a JobRequest (``POST /api/jobs``), or seed 000's form with the two
files (``POST /api/process-video/``), both through ``pipeline.starter`` (one execution per job id).

- The same request twice is the same job: the starter names the execution by the job id, which
  the request determines. An ``Idempotency-Key`` header names the job instead (``idem-`` + its
  hash): the same key with another request is a 409, as StartExecution's names are.
- The form's files go under ``uploads/form-<hash of both files>/``: the same two files with the
  same options are the same request, hence the same job. Not under ``incoming/``, where a video
  without its sidecar would also be taken by the upload trigger (and rejected after its wait).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pipeline.adapters import s3
from pipeline.adapters.s3 import S3Uri
from pipeline.api.errors import Conflict, PayloadTooLarge
from pipeline.deployment import UPLOADS_PREFIX
from pipeline.models import JobRequest
from pipeline.starter import Started, Starter

MAX_FORM_SRT_BYTES = 5 * 1024 * 1024  # FetchSubtitles' own limit: refused here before anything is stored
SRT_CONTENT_TYPE = "application/x-subrip"


@dataclass(frozen=True)
class FormFile:
    """One file of the multipart form."""

    filename: str
    content: bytes
    content_type: str


def idempotent_job_id(key: str) -> str:
    """The job an ``Idempotency-Key`` names."""
    return "idem-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def start(request: JobRequest, *, idempotency_key: str | None, state_machine_arn: str) -> Started:
    """Start ``request`` (or find it started); the key, when given, is the job's identity."""
    if idempotency_key is not None:
        job_id = idempotent_job_id(idempotency_key)
        if request.job_id is not None and request.job_id != job_id:
            raise Conflict("the body's job_id and the Idempotency-Key name two different jobs: give one")
        request = request.model_copy(update={"job_id": job_id})
    return Starter(state_machine_arn).start(request)


def store_form(video: FormFile, srt: FormFile, *, bucket: str, max_video_bytes: int) -> tuple[S3Uri, S3Uri]:
    """Put the form's video and SRT in the bucket; where they are."""
    if len(video.content) > max_video_bytes:
        raise PayloadTooLarge(f"video: {len(video.content)} bytes, over the limit of {max_video_bytes}")
    if len(srt.content) > MAX_FORM_SRT_BYTES:
        raise PayloadTooLarge(f"srt_file: {len(srt.content)} bytes, over the limit of {MAX_FORM_SRT_BYTES}")
    digest = hashlib.sha256()
    for part in (video.filename, video.content, srt.filename, srt.content):
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    folder = f"{UPLOADS_PREFIX}form-{digest.hexdigest()[:32]}/"
    video_uri = S3Uri(bucket, folder + video.filename)
    srt_uri = S3Uri(bucket, folder + "subtitles-" + srt.filename)
    s3.put_bytes(video_uri, video.content, content_type=video.content_type)
    s3.put_bytes(srt_uri, srt.content, content_type=SRT_CONTENT_TYPE)
    return video_uri, srt_uri
