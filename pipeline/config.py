"""Typed configuration, read once from the environment (``VIDP_*``)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _available_cpus() -> int:
    """CPUs this process may run on (affinity), the local default for ffmpeg threads.

    In Fargate the task definition sets VIDP_THREADS from the task's vCPU: a container can
    see more CPUs than its share, so the count seen here is only right on a plain machine.
    """
    return max(1, len(os.sched_getaffinity(0)))


class EngineSettings(BaseSettings):
    """Limits and tools of the media engine."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True)

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    threads: Annotated[int, Field(ge=1, le=64)] = Field(default_factory=_available_cpus)
    probe_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    encode_timeout_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    quality_timeout_seconds: Annotated[float, Field(gt=0)] = 3600.0
    max_duration_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    max_dimension: Annotated[int, Field(gt=0)] = 8192
    max_streams: Annotated[int, Field(gt=0)] = 16
    max_subtitle_bytes: Annotated[int, Field(gt=0)] = 5 * 1024 * 1024
    max_cues: Annotated[int, Field(gt=0)] = 50_000


@lru_cache(maxsize=1)
def engine_settings() -> EngineSettings:
    return EngineSettings()
