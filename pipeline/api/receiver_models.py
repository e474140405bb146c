"""The callback receiver's contracts (seed 002): what it accepts, what it answers, its settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.adapters.callbacks_table import ReceivedCallback
from pipeline.models import ExternalId, HttpUrlText, Metadata

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""A path's task or batch id: the pipeline's ``ExternalId``."""
MAX_CALLBACK_BYTES = 256 * 1024
"""A callback's body at most: far above the pipeline's (a few KB), well under DynamoDB's 400 KB item."""


class ReceiverSettings(BaseSettings):
    """Where the receiver keeps callbacks, and whether ``POST /test/simulate`` is served."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True, env_ignore_empty=True)

    callbacks_table_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    receiver_simulate: bool = False


@lru_cache(maxsize=1)
def receiver_settings() -> ReceiverSettings:
    """The settings, read on first use (tests clear the cache after changing the environment)."""
    return ReceiverSettings()  # callbacks_table_name comes from the environment


class CallbackPayload(BaseModel):
    """What a received callback's JSON object must hold; every other field is kept as sent."""

    model_config = ConfigDict(extra="allow")

    status: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    task_id: ExternalId | None = None
    batch_id: ExternalId | None = None


class CallbackStored(BaseModel):
    """``POST /callback/{task_id}``'s answer: stored, or already stored under this webhook-id."""

    stored: bool = Field(description="the callback is in the table (now, or from an earlier delivery)")
    duplicate: bool = Field(description="this webhook-id had been received before: not stored twice")
    task_id: str
    webhook_id: str


class TaskCallbacks(BaseModel):
    """``GET /callback/{task_id}``: every callback of the task, newest first."""

    task_id: str
    count: int
    latest: ReceivedCallback
    callbacks: list[ReceivedCallback]


class BatchCallbacks(BaseModel):
    """``GET /callback/batch/{batch_id}``: a page of the batch's callbacks, newest first."""

    batch_id: str
    count: int = Field(description="callbacks on this page")
    total: int = Field(description="callbacks of the whole batch")
    counts: dict[str, int] = Field(description="callbacks of the whole batch by status")
    callbacks: list[ReceivedCallback]
    next_token: str | None = Field(description="pass it back for the next page; null on the last")


class CallbackResults(BaseModel):
    """``GET /test/results``: the callbacks received last, newest first."""

    count: int
    callbacks: list[ReceivedCallback]


class SimulateRequest(BaseModel):
    """``POST /test/simulate``: every field optional; the rest of seed 002's example is filled in."""

    model_config = ConfigDict(extra="forbid")

    task_id: ExternalId = "test-task-001"
    status: Literal["completed", "failed"] = "completed"
    batch_id: ExternalId | None = None
    file_url: HttpUrlText = "https://example.com/test.mp4"
    processing_time: Annotated[float, Field(ge=0, le=86_400)] = 15.23
    error: Annotated[str, Field(max_length=500)] = "Unable to download file: HTTP 404 Not Found"
    error_code: Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,64}$")] = "FILE_NOT_FOUND"
    metadata: Metadata | None = None

    def payload(self) -> dict[str, Any]:
        """Seed 002's success or error example with this request's values."""
        named = {"status": self.status, "task_id": self.task_id, "batch_id": self.batch_id}
        ids = {key: value for key, value in named.items() if value is not None}
        extra = {"metadata": self.metadata} if self.metadata is not None else {}
        if self.status == "failed":
            return {**ids, "error": self.error, "error_code": self.error_code, **extra}
        results = {
            "file_info": {"file_size": 2048576, "duration": 30.067, "format": "mp4"},
            "video_analysis": {"codec": "h264", "resolution": "1920x1080", "quality_score": 0.85},
            "audio_analysis": {"codec": "aac", "quality_score": 0.9},
        }
        timing = {"file_url": self.file_url, "processing_time": self.processing_time}
        return {**ids, **timing, "results": results, **extra}


class Simulated(BaseModel):
    """``POST /test/simulate``'s answer: the callback stored, as ``GET /callback/{task_id}`` shows it."""

    stored: bool
    task_id: str
    webhook_id: str
    callback: ReceivedCallback
