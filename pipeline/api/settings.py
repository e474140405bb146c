"""The videos API's configuration, read once from the environment (``VIDP_*``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3


class ApiSettings(BaseSettings):
    """Where the API finds the pipeline, and how long the URLs it signs live."""

    model_config = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True)

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    table_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]
    state_machine_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:states:")]
    # A URL signed with the Lambda role's session stops working when that session ends (12 h at
    # most), whatever its expiry says: see pipeline.steps.settings.
    presign_expiry_seconds: Annotated[int, Field(ge=60, le=43_200)] = 3600
    upload_expiry_seconds: Annotated[int, Field(ge=60, le=43_200)] = 900
    max_video_bytes: Annotated[int, Field(gt=0)] = 10 * GIB


@lru_cache(maxsize=1)
def api_settings() -> ApiSettings:
    """The settings, read on first use (the local AWS clears the cache when it restarts)."""
    return ApiSettings()  # required fields come from the environment
