"""What the videos API takes and gives: one pydantic model per body, query and response.

Seed 000's shapes (``/api/videos/{id}``, ``/api/health``...) with this product's fields added.
Request bodies refuse unknown fields (``extra="forbid"``): a misspelt field is an error, not a
silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from pipeline.models import CallbackDelivery, JobRecord, JobStatus, Metadata

Connection = Literal["connected", "unavailable"]


# A name, not a path: no '/', '\', control characters, nor '.' or '..' alone.
def _not_dots(name: str) -> str:
    if name in {".", ".."}:
        raise ValueError("a file name, not '.' or '..'")
    return name


FileName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$"), AfterValidator(_not_dots)
]
FILE_NAME: TypeAdapter[str] = TypeAdapter(FileName)
# What the pipeline reads: videos, subtitles (SRT as its tools name it) and fonts (style.font_file).
UPLOAD_TYPES = (
    r"video/[a-z0-9.+-]+|application/(x-subrip|octet-stream)|text/(plain|srt)|font/(ttf|otf|collection)"
)
ContentType = Annotated[str, Field(max_length=127, pattern=f"^({UPLOAD_TYPES})$")]


class Health(BaseModel):
    """``GET /api/health``: 200 when everything answers, 503 ``degraded`` otherwise."""

    status: Literal["healthy", "degraded"]
    service: str
    version: str
    s3: Connection
    dynamodb: Connection
    state_machine: Connection


class UploadRequest(BaseModel):
    """``POST /api/uploads``: what is about to be uploaded."""

    model_config = ConfigDict(extra="forbid")

    filename: FileName
    content_type: ContentType = "application/octet-stream"
    size: Annotated[int, Field(gt=0, strict=True, description="bytes; S3 refuses a larger file")]


class PresignedUpload(BaseModel):
    """How to send the file: an HTML-form POST of ``fields`` then the file (``curl -F``)."""

    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str] = Field(description="form fields to send first, in this order, then `file`")


class UploadTicket(BaseModel):
    """Where the file will be (name it in a job) and how to put it there."""

    s3_uri: str
    upload: PresignedUpload
    expires_at: str


class Links(BaseModel):
    self: str = Field(description="the video's record: GET it to follow the job")
    stream: str = Field(description="the output, once saved: a 302 to a presigned URL")


class JobAccepted(BaseModel):
    """``202``: the job runs in the state machine; poll ``links.self`` or wait for the callback.

    ``status`` is the job's: ``processing`` for a new one; for a request seen before, its record's."""

    status: JobStatus = "processing"
    job_id: str
    video_id: str
    execution_arn: str
    new: bool = Field(description="false when this request had already started the job")
    links: Links


class VideoView(BaseModel):
    """``GET /api/videos/{video_id}``: seed 000's fields, then the job's."""

    id: str
    filename: str
    s3_uri: str | None = None
    link: str | None = Field(default=None, description="presigned streaming URL, only when saved")
    status: JobStatus
    file_size: int | None = None
    duration: float | None = None
    resolution: str | None = None
    created_at: str
    updated_at: str
    progress: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    failed_state: str | None = None
    attempt: int
    job_id: str
    task_id: str | None = None
    batch_id: str | None = None
    source_video_id: str | None = None
    execution_arn: str | None = None
    codecs: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    callback: CallbackDelivery | None = Field(default=None, description="how the callback went, once sent")

    @classmethod
    def of(cls, record: JobRecord, *, link: str | None = None) -> VideoView:
        shown = record.shown()
        shown.pop("video_id")
        shown.pop("request_key", None)
        return cls(id=record.video_id, link=link, **shown)


class VideoList(BaseModel):
    items: list[VideoView]
    count: int
    next_token: str | None = Field(default=None, description="pass it back to get the next page")


class VideoPatch(BaseModel):
    """``PATCH /api/videos/{video_id}``: the fields the caller owns.

    The others belong to the state machine; naming one is a 409 (seed 000's PATCH set them).
    """

    model_config = ConfigDict(extra="forbid")

    metadata: Metadata | None = None
    filename: FileName | None = Field(default=None, description="the display name")
    status: str | None = Field(default=None, description="refused: the state machine owns it")
    file_size: int | None = Field(default=None, description="refused: the state machine owns it")
    duration: float | None = Field(default=None, description="refused: the state machine owns it")
    resolution: str | None = Field(default=None, description="refused: the state machine owns it")

    @field_validator("filename", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, not null (metadata: {} clears it)")
        return value

    def pipeline_fields(self) -> list[str]:
        owned = ("status", "file_size", "duration", "resolution")
        return [name for name in owned if name in self.model_fields_set]

    def caller_fields(self) -> dict[str, Any]:
        return {
            name: getattr(self, name) for name in ("metadata", "filename") if name in self.model_fields_set
        }
