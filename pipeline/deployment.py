"""The facts every layer shares about one deployment, written once: models, adapters, the local
AWS and the CDK app all read them from here.

- the media bucket's key layout (``incoming/``, ``uploads/``, ``work/{job_id}/``, ``videos/...``);
- the jobs table's key and its global secondary indexes;
- resource names of a deployment (``vidp-<env>-*`` in AWS, ``vidp-local-*`` locally);
- the Fargate task's container name and command, the events' source and detail types.

Standard library only: ``python app.py`` and a Lambda cold start import it, so it must stay light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- the media bucket ---------------------------------------------------------------------------

INCOMING_PREFIX = "incoming/"
"""Uploads here start a job (the S3 trigger)."""
UPLOADS_PREFIX = "uploads/"
"""Uploads a job names explicitly (``vidp run``, the API's presigned uploads)."""
WORK_PREFIX = "work/"
"""One folder per job, ``work/{job_id}/``: cleared by Finalise or MarkFailed (and a lifecycle rule)."""
VIDEOS_PREFIX = "videos/"
"""Finished outputs, ``videos/{video_id}/{name}_{resolution}.mp4``."""
INPUT_PREFIXES = (INCOMING_PREFIX, UPLOADS_PREFIX, WORK_PREFIX)
"""Where a job may read its video, subtitles and font from."""

OUTPUT_METADATA_PREFIX = "vidp-"
"""User metadata (``x-amz-meta-vidp-*``) a final output carries: what it is, and which job wrote it."""
OUTPUT_JOB_ID = OUTPUT_METADATA_PREFIX + "job-id"

SUBTITLES_NAME = "subtitles.srt"
OUTPUT_NAME = "output.mp4"
MANIFEST_NAME = "manifest.json"
_MAX_STEM = 100


def work_prefix(job_id: str) -> str:
    """``work/{job_id}/``: everything a job writes before its output is final."""
    return f"{WORK_PREFIX}{job_id}/"


def work_key(job_id: str, name: str) -> str:
    """A file of the job's work folder, e.g. ``work/{job_id}/output.mp4``."""
    return work_prefix(job_id) + name


def final_key(video_id: str, filename: str, resolution: str) -> str:
    """``videos/{video_id}/{name}_{resolution}.mp4``; the name keeps only safe characters."""
    stem = filename.rsplit(".", 1)[0]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:_MAX_STEM].strip("_")
    return f"{VIDEOS_PREFIX}{video_id}/{safe or 'video'}_{resolution}.mp4"


# --- the jobs table -----------------------------------------------------------------------------

TABLE_KEY = "video_id"
"""The partition key: one record per video."""
TABLE_INDEXES: tuple[tuple[str, str, str | None], ...] = (
    ("status-created_at-index", "status", "created_at"),
    ("source_video_id-index", "source_video_id", "created_at"),
    ("filename-index", "filename", "created_at"),
    ("batch_id-index", "batch_id", "created_at"),
)
"""Global secondary indexes: (name, partition key, sort key or None); every key is a string.

Each is sorted by ``created_at`` so the API lists any filter newest first with one Query (seed
000's names; an existing stack created before the sort keys must recreate the table, as
CloudFormation changes one GSI per update and no key schema in place)."""

CALLBACKS_TABLE_KEY = "task_id"
CALLBACKS_TABLE_SORT = "webhook_id"
"""The callback receiver's table: one item per callback received (a task may get several: a
failure, then the success of a reprocessing), stored once per ``webhook-id``."""
CALLBACKS_KIND = "callback"
"""The constant partition of ``received-index``: every callback, newest first (``/test/results``)."""
CALLBACKS_INDEXES: tuple[tuple[str, str, str | None], ...] = (
    ("batch_id-index", "batch_id", "received_at"),
    ("received-index", "kind", "received_at"),
)

# --- compute and events -------------------------------------------------------------------------

CONTAINER_NAME = "ffmpeg"
"""The task definition's container, which the state machine's ContainerOverrides name."""
TASK_COMMAND = ("python", "-m", "pipeline.task")
"""The container's command (the image's ENTRYPOINT; the local ECS runner runs the same)."""
EVENT_SOURCE = "vidp.pipeline"
PROCESSED_EVENT = "VidP Video Processed"
FAILED_EVENT = "VidP Video Failed"
UPLOAD_REJECTED_EVENT = "VidP Upload Rejected"
"""An upload under incoming/ that starts no job (a bad or missing sidecar...): its key and why."""
METRIC_NAMESPACE = "VidP"
UPLOADS_REJECTED_METRIC = "UploadsRejected"
"""Counted by the upload starter (Powertools EMF, one per rejected upload); alarmed on."""


def upload_event_pattern(bucket: str) -> dict[str, Any]:
    """The EventBridge pattern of uploads that start a job: S3 ``Object Created`` under incoming/."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": INCOMING_PREFIX}]}},
    }


# --- names --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Resource names of one deployment: ``{prefix}-{what}`` (``vidp-dev-jobs``, ``vidp-local-jobs``).

    In AWS the bucket's name is left to CloudFormation (it must be globally unique); the local
    AWS uses ``bucket``.
    """

    prefix: str

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    @property
    def bucket(self) -> str:
        return self.name("media")

    @property
    def table(self) -> str:
        return self.name("jobs")

    @property
    def callbacks_table(self) -> str:
        """The callback receiver's table (seed 002's results)."""
        return self.name("callbacks")

    @property
    def state_machine(self) -> str:
        return self.name("pipeline")

    @property
    def cluster(self) -> str:
        return self.prefix

    @property
    def task_family(self) -> str:
        return self.name("ffmpeg")

    @property
    def event_bus(self) -> str:
        return self.prefix

    def function(self, step: str) -> str:
        """The Lambda function of a step (``ValidateInput`` -> ``vidp-dev-ValidateInput``)."""
        return self.name(step)
