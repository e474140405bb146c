"""The task's configuration: ``VIDP_*`` environment variables (ECS container overrides), read once.

``JobConfig`` is what every job variant's configuration has; ``TaskConfig`` is the whole-file
job's. ``ReportSettings`` says how to report to Step Functions. Engine limits (``VIDP_THREADS``,
timeouts) live in ``pipeline.config.EngineSettings``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import BeforeValidator, DirectoryPath, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from pipeline.adapters.s3 import S3Uri
from pipeline.deployment import MANIFEST_NAME
from pipeline.failures import InvalidInput
from pipeline.models import EncodeFields

_SETTINGS = SettingsConfigDict(env_prefix="VIDP_", extra="ignore", frozen=True, env_ignore_empty=True)

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigError(ValueError):
    """The environment describes a job that can never run; ``str(err)`` is one line, without values."""


def read(settings: Callable[[], SettingsT]) -> SettingsT:
    """Read one settings class from the environment; any problem becomes a ConfigError."""
    try:
        return settings()
    except (ValidationError, SettingsError) as err:
        raise ConfigError(describe_config_error(err)) from None


def describe_config_error(err: ValidationError | SettingsError) -> str:
    """One line naming each bad variable. Values are never echoed (they could be secrets)."""
    if isinstance(err, SettingsError):
        return str(err)
    problems = []
    for item in err.errors(include_input=False, include_url=False):
        loc = [str(part) for part in item["loc"]]
        name = f"VIDP_{loc[0].upper()}" if loc else "configuration"
        where = f" ({'.'.join(loc[1:])})" if len(loc) > 1 else ""
        message = "is required" if item["type"] == "missing" else item["msg"]
        problems.append(f"{name}{where}: {message}")
    return "; ".join(problems)


def _s3_uri(value: object) -> object:
    if isinstance(value, str):
        try:
            return S3Uri.parse(value)
        except InvalidInput as err:
            raise ValueError(str(err)) from None
    return value


# NoDecode: the value is a plain string, not JSON (pydantic-settings would try JSON for a dataclass).
S3UriField = Annotated[S3Uri, NoDecode, BeforeValidator(_s3_uri)]


class JobConfig(BaseSettings):
    """What the runtime needs from every job variant's configuration (each variant extends it)."""

    model_config = _SETTINGS

    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    work_dir: DirectoryPath | None = Field(default=None, description="scratch root; default the temp dir")

    @property
    @abstractmethod
    def manifest_location(self) -> S3Uri:
        """Where the job writes its manifest, last: its presence means the outputs are complete."""

    @abstractmethod
    def locations(self) -> dict[str, str]:
        """The S3 URIs the job reads and writes, by name, for the ``start`` log line."""


class TaskConfig(JobConfig, EncodeFields):
    """The whole-file job: one video and its clean SRT in, one MP4 and its manifest out."""

    video_uri: S3UriField
    subtitles_uri: S3UriField
    output_uri: S3UriField
    manifest_uri: S3UriField | None = Field(
        default=None, description="default: manifest.json beside the output"
    )
    # resolution, crf, preset, style (a JSON object), upscale, quality: EncodeFields'.

    @model_validator(mode="after")
    def _check(self) -> TaskConfig:
        # A font path inside the container would name a file of the image, never the caller's.
        font = self.style.font_file
        if font is not None:
            if not font.startswith("s3://"):
                raise ValueError("style.font_file must be an s3:// URI in a job")
            _s3_uri(font)
        if self.output_uri in {self.video_uri, self.subtitles_uri}:
            raise ValueError("the output URI must differ from the input URIs")
        if self.manifest_location in {self.output_uri, self.video_uri, self.subtitles_uri}:
            raise ValueError("the manifest URI must differ from the output and input URIs")
        return self

    @property
    def manifest_location(self) -> S3Uri:
        return self.manifest_uri or self.output_uri.sibling(MANIFEST_NAME)

    def locations(self) -> dict[str, str]:
        return {
            "video_uri": str(self.video_uri),
            "subtitles_uri": str(self.subtitles_uri),
            "output_uri": str(self.output_uri),
            "manifest_uri": str(self.manifest_location),
        }


class ReportSettings(BaseSettings):
    """How the task reports to Step Functions and records progress (all optional)."""

    model_config = _SETTINGS

    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    table_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")] | None = None
    video_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")] | None = None
