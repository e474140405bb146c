"""What an upload under ``incoming/`` describes: the job its video and sidecar ask for, and which
version of them that job is for.

- A video ``incoming/a.mp4`` is described by its sidecar ``incoming/a.mp4.job.json`` (a
  JobRequest whose ``video`` may be left out) or by its metadata ``subtitles-url`` /
  ``subtitles-s3-uri``. Subtitles and font files uploaded there (``.srt``, ``.ttf``...) are
  companions that jobs name; a folder marker (``incoming/x/``) is nothing.
- A job is one *version* of the upload: each object it is made of (the video, its sidecar, an
  SRT under ``incoming/``) counts by its version id in a versioned bucket, else by its ETag,
  both from HeadObject: an event may be late, repeated or out of order, and HeadObject says
  what is there now (nothing is read from the event but the bucket and key). The job id hashes
  the request and these versions, so new content at the same key is a new job (its own record
  and output), and any event for the same version maps to the same execution name. A sidecar
  that names its ``job_id`` keeps it: that id is its one job.
- The objects are read before the job starts, so a version is never paired with older content
  (HeadObject first, then the read; the job itself reads the video later still).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError

from pipeline.adapters import s3
from pipeline.adapters.s3 import ObjectHead, S3Uri
from pipeline.deployment import INCOMING_PREFIX
from pipeline.failures import ObjectNotFound, ObjectTooLarge
from pipeline.models import JobRequest, validation_problems

SIDECAR_SUFFIX = ".job.json"
MAX_SIDECAR_BYTES = 64 * 1024
COMPANION_SUFFIXES = (".srt", ".ttf", ".otf", ".ttc")
"""Files a job names (its subtitles, its font): their own upload starts nothing."""

UploadKind = Literal["video", "sidecar", "companion", "folder", "stray json"]


class UploadRejected(ValueError):
    """The upload cannot start a job: the uploader is told why (log, event, metric)."""


class UploadWaiting(Exception):
    """Not yet: the job can start once another object is there."""


class WaitingForVideo(UploadWaiting):
    """A sidecar came before its video: the video's own upload event will start the job."""


class WaitingForSidecar(UploadWaiting):
    """A video came with neither a sidecar nor subtitles metadata: its sidecar may follow."""

    def __init__(self, message: str, *, video_key: str, sidecar_key: str, video_version: str) -> None:
        super().__init__(message)
        self.video_key, self.sidecar_key, self.video_version = video_key, sidecar_key, video_version


def kind_of(key: str) -> UploadKind:
    """What an object under incoming/ is, from its key."""
    lowered = key.lower()
    if key.endswith("/"):
        return "folder"
    if key.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if lowered.endswith(COMPANION_SUFFIXES):
        return "companion"
    if lowered.endswith(".json"):
        return "stray json"
    return "video"


def job_keys(key: str) -> tuple[str, str]:
    """(video key, sidecar key) for an event about either of them."""
    if key.endswith(SIDECAR_SUFFIX):
        return key.removesuffix(SIDECAR_SUFFIX), key
    return key, key + SIDECAR_SUFFIX


def version_of(head: ObjectHead) -> str:
    """The object's version: its version id in a versioned bucket, else its ETag (its content)."""
    if head.version_id and head.version_id != "null":
        return head.version_id
    return head.etag.strip('"')


@dataclass(frozen=True)
class UploadVersion:
    """The versions of the objects one job is made of (None: there is no such object)."""

    video: str
    sidecar: str | None
    subtitles: str | None

    def text(self) -> str:
        return f"video={self.video};sidecar={self.sidecar or '-'};subtitles={self.subtitles or '-'}"


@dataclass(frozen=True)
class DescribedUpload:
    """The job an upload asks for (its job id resolved) and the version it is for."""

    request: JobRequest
    version: UploadVersion
    named_job_id: bool
    """The sidecar names the job id: a new version under it is no new job."""

    @property
    def job_id(self) -> str:
        return self.request.resolved_job_id()


def upload_job_id(request: JobRequest, version: UploadVersion) -> str:
    """``job-`` + SHA-256 of the request and the version: a new version is a new job."""
    digest = hashlib.sha256(f"{request.idempotency_key()}\n{version.text()}".encode()).hexdigest()
    return "job-" + digest[:32]


def describe_upload(bucket: str, key: str, *, client: Any = None) -> DescribedUpload:
    """The job of the video ``key`` (or of the video beside the sidecar ``key``).

    UploadRejected: the sidecar or the request it makes is bad. WaitingForVideo: there is a
    sidecar but no video yet. WaitingForSidecar: a video with nothing describing its job.
    """
    video_key, sidecar_key = job_keys(key)
    sidecar_uri = S3Uri(bucket, sidecar_key)
    sidecar_head = s3.head_or_none(sidecar_uri, client=client)
    sidecar = _read_sidecar(sidecar_uri, client) if sidecar_head is not None else None
    fields: dict[str, Any] = {"video": {"s3_uri": str(S3Uri(bucket, video_key))}}
    # A bad sidecar is said at once, whether or not its video is there yet.
    request = _request({**fields, **sidecar}) if sidecar is not None else None
    video = s3.head_or_none(S3Uri(bucket, video_key), client=client)
    if video is None:
        raise WaitingForVideo(f"waiting for the video {video_key!r}: its upload starts the job")
    if request is None:
        metadata = {name.lower(): value for name, value in video.metadata.items()}
        if "subtitles-url" in metadata:
            fields["subtitles"] = {"url": metadata["subtitles-url"]}
        elif "subtitles-s3-uri" in metadata:
            fields["subtitles"] = {"s3_uri": metadata["subtitles-s3-uri"]}
        else:
            raise WaitingForSidecar(
                f"no {sidecar_key!r} and no subtitles-url / subtitles-s3-uri metadata on the video",
                video_key=video_key,
                sidecar_key=sidecar_key,
                video_version=version_of(video),
            )
        request = _request(fields)
    version = UploadVersion(
        video=version_of(video),
        sidecar=version_of(sidecar_head) if sidecar is not None and sidecar_head is not None else None,
        subtitles=_subtitles_version(request, bucket, client),
    )
    if request.job_id is not None:
        return DescribedUpload(request=request, version=version, named_job_id=True)
    resolved = request.model_copy(update={"job_id": upload_job_id(request, version)})
    return DescribedUpload(request=resolved, version=version, named_job_id=False)


def _request(fields: dict[str, Any]) -> JobRequest:
    try:
        return JobRequest.model_validate(fields)
    except ValidationError as err:
        raise UploadRejected(f"invalid job description: {validation_problems(err)}") from None


def _subtitles_version(request: JobRequest, bucket: str, client: Any) -> str | None:
    """The version of an SRT uploaded under incoming/ (the upload trigger reads nothing else)."""
    if request.subtitles.s3_uri is None:
        return None
    uri = S3Uri.parse(request.subtitles.s3_uri)
    if uri.bucket != bucket or not uri.key.startswith(INCOMING_PREFIX):
        return None
    head = s3.head_or_none(uri, client=client)
    return version_of(head) if head is not None else "missing"


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
