"""The Lambda steps' configuration, read once from the environment (``VIDP_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.config import EngineSettings

GIB = 1024**3
_ENGINE = EngineSettings.model_fields


class StepSettings(BaseSettings):
    """Where the steps keep things and the limits they enforce."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True)

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    table_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    event_bus_name: Annotated[str, Field(min_length=1, max_length=1600)] = "default"
    # The ECS cluster of the Fargate tasks (MarkFailed, StopTimedOutTask and the reconciler stop
    # a job's tasks); None where no step needs it.
    cluster_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:ecs:")] | None = None
    # A presigned URL signed with the Lambda role's temporary credentials stops working when that
    # session ends, whatever its X-Amz-Expires says; 12 h is the longest a role session can last,
    # so a larger value would only promise callers a validity the URL cannot have.
    presign_expiry_seconds: Annotated[int, Field(ge=60, le=43_200)] = 3600
    max_video_bytes: Annotated[int, Field(gt=0)] = 10 * GIB
    max_subtitle_bytes: Annotated[int, Field(gt=0)] = _ENGINE["max_subtitle_bytes"].default
    max_cues: Annotated[int, Field(gt=0)] = _ENGINE["max_cues"].default
    allowed_extensions: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm")
    # At most 5: the worst case of a delivery must fit the Notify state's timeout (see notify.py).
    callback_max_attempts: Annotated[int, Field(ge=1, le=5)] = 5
    callback_base_delay_seconds: Annotated[float, Field(ge=0.0, le=30.0)] = 1.0

    @field_validator("allowed_extensions")
    @classmethod
    def _lower_dotted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in value)


@lru_cache(maxsize=1)
def step_settings() -> StepSettings:
    """The settings, read on first use (tests clear the cache after changing the environment)."""
    return StepSettings()  # required fields (bucket, table_name) come from the environment
