"""FetchSubtitles: get the SRT (SSRF-guarded URL or s3:// URI), sanitize it, store the clean SRT."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pipeline.adapters import http, jobs_table, s3
from pipeline.adapters.s3 import S3Uri
from pipeline.failures import (
    HttpUnavailable,
    InvalidSubtitles,
    ObjectNotFound,
    ObjectTooLarge,
    ResponseTooLarge,
    SubtitleFetchFailed,
)
from pipeline.logs import logger, step_log, url_for_log
from pipeline.media.subtitles import sanitize_srt
from pipeline.models import Job, JobEvent, SubtitlesFetched
from pipeline.steps.settings import StepSettings, step_settings

_log = logger("fetch_subtitles")
# Statuses worth asking again later: the server is busy or broken right now.
_TRANSIENT_STATUSES = {408, 425, 429}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    job = JobEvent.model_validate(event).job
    with step_log(_log, "FetchSubtitles", job_id=job.job_id, source=_source_for_log(job)):
        return fetch_subtitles(job, step_settings()).model_dump(mode="json")


def fetch_subtitles(job: Job, settings: StepSettings) -> SubtitlesFetched:
    """Fetch, sanitize and store the job's SRT at ``job.work.subtitles``; raise why it can't be used."""
    if job.subtitles.s3_uri is not None:
        data = _from_s3(S3Uri.parse(job.subtitles.s3_uri), settings)
    elif job.subtitles.url is not None:
        data = _from_url(job.subtitles.url, settings)
    else:  # SubtitleSource's validator makes this unreachable
        raise InvalidSubtitles("the job names no subtitle source")
    clean = sanitize_srt(data, max_bytes=settings.max_subtitle_bytes, max_cues=settings.max_cues)
    stored = S3Uri(job.bucket, job.work.subtitles)
    s3.put_bytes(stored, clean.text.encode("utf-8"), content_type="text/plain; charset=utf-8")
    record = jobs_table.get(job.video_id, table=settings.table_name)
    if record is None or record.job_id != job.job_id or record.status != "processing":
        # The job ended (stopped, timed out) while this step ran, and whoever ended it has
        # cleaned work/, maybe before this write: take it back, so nothing of the job is left.
        s3.delete(stored)
        _log.warning("job ended while its subtitles were fetched", extra={"job_id": job.job_id})
    return SubtitlesFetched(
        key=job.work.subtitles, cues=clean.cues, encoding=clean.encoding, dropped=clean.dropped
    )


def _from_s3(uri: S3Uri, settings: StepSettings) -> bytes:
    if uri.bucket != settings.bucket:
        raise InvalidSubtitles(
            f"the subtitles must be in s3://{settings.bucket}/, not in bucket {uri.bucket!r}"
        )
    try:
        return s3.read_capped(uri, settings.max_subtitle_bytes)
    except ObjectTooLarge as over:
        raise _too_large(settings, over.size) from None
    except ObjectNotFound:
        raise InvalidSubtitles(f"subtitle object not found: {uri}") from None


def _from_url(url: str, settings: StepSettings) -> bytes:
    """GET the SRT. Messages name the host only: a URL's path or query may hold a token."""
    host = urlsplit(url).hostname or "?"
    try:
        response = http.get(url, max_bytes=settings.max_subtitle_bytes)
    except ResponseTooLarge:
        raise _too_large(settings) from None
    except HttpUnavailable as err:
        raise SubtitleFetchFailed(f"subtitle URL on {host} could not be fetched: {err}") from None
    status = response.status
    if 200 <= status < 300:
        return response.body
    if status >= 500 or status in _TRANSIENT_STATUSES:
        raise SubtitleFetchFailed(f"subtitle URL on {host} answered {status}, try again later")
    raise InvalidSubtitles(f"subtitle URL on {host} answered {status}")


def _too_large(settings: StepSettings, size: int | None = None) -> InvalidSubtitles:
    actual = f" ({size} bytes)" if size is not None else ""
    return InvalidSubtitles(f"SRT file is over the limit of {settings.max_subtitle_bytes} bytes{actual}")


def _source_for_log(job: Job) -> str | None:
    return job.subtitles.s3_uri or url_for_log(job.subtitles.url)
