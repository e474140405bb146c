"""Pydantic contracts: what flows between the CLI, the media engine, the task and the states.

Every value that can reach ffmpeg's filtergraph is constrained here by a strict pattern or a
numeric range, so nothing a caller sends can be read by ffmpeg as filtergraph syntax.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline import deployment

Resolution = Literal["360p", "480p", "720p", "1080p"]
RESOLUTIONS: dict[str, int] = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080}

Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
# Chosen from `make bench` (README, "Choosing the defaults"): on the benchmark clip this pair
# gives a smaller file and a higher SSIM than the reference two-pass service, several times faster.
DEFAULT_PRESET: Preset = "veryfast"
DEFAULT_CRF = 23

_NAMED_COLOURS = {
    "white": "#FFFFFF",
    "black": "#000000",
    "yellow": "#FFFF00",
    "red": "#FF0000",
    "green": "#00FF00",
    "blue": "#0000FF",
    "cyan": "#00FFFF",
    "magenta": "#FF00FF",
    "grey": "#808080",
    "gray": "#808080",
}

Colour = Annotated[str, Field(pattern=r"^#[0-9A-F]{6}$", description="#RRGGBB (or a basic colour name)")]
Opacity = Annotated[float, Field(ge=0.0, le=1.0)]
Pixels = Annotated[float, Field(ge=0.0, le=64.0)]
Margin = Annotated[int, Field(ge=0, le=2000)]


class SubtitleStyle(BaseModel):
    """How burned-in subtitles look. Sizes are pixels at the output resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Letters, digits, spaces, '_' and '-' only: the value is written into an ASS style.
    font_family: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")] = "DejaVu Sans"
    font_size: Literal["auto"] | Annotated[int, Field(ge=6, le=300)] = "auto"
    bold: bool = False
    italic: bool = False
    colour: Colour = "#FFFFFF"
    opacity: Opacity = 1.0
    outline_colour: Colour = "#000000"
    outline_width: Pixels | None = Field(default=None, description="None: scaled to the output height")
    shadow_colour: Colour = "#000000"
    shadow_opacity: Opacity = 0.6
    shadow_offset: Pixels = 0.0
    background_colour: Colour = "#000000"
    background_opacity: Opacity = Field(default=0.0, description="above 0 draws a box behind the text")
    horizontal_align: Literal["left", "center", "right"] = "center"
    vertical_align: Literal["top", "middle", "bottom"] = "bottom"
    margin_horizontal: Margin | None = Field(default=None, description="None: scaled to the output width")
    margin_vertical: Margin | None = Field(default=None, description="None: scaled to the output height")
    # A TrueType/OpenType file: a local path for the CLI, an s3:// URI in a job. The engine
    # copies it to a fixed name in a private fonts folder; the path never enters the filtergraph.
    font_file: str | None = None

    @field_validator("colour", "outline_colour", "shadow_colour", "background_colour", mode="before")
    @classmethod
    def _normalise_colour(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return _NAMED_COLOURS.get(text.lower(), text.upper())
        return value

    @field_validator("font_file")
    @classmethod
    def _font_extension(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().endswith((".ttf", ".otf", ".ttc")):
            raise ValueError("font_file must be a .ttf, .otf or .ttc file")
        return value


class EncodeFields(BaseModel):
    """What a job asks the engine for, declared once: the request, the Fargate task's
    configuration and the engine's options all carry these fields."""

    resolution: Resolution = "720p"
    crf: Annotated[int, Field(ge=0, le=51)] = DEFAULT_CRF
    preset: Preset = DEFAULT_PRESET
    style: SubtitleStyle = SubtitleStyle()
    upscale: bool = Field(default=False, description="allow output larger than the source")
    quality: bool = Field(default=False, description="measure SSIM/PSNR against the source")

    def encode_options(self, style: SubtitleStyle | None = None) -> EncodeOptions:
        """These fields as the engine's options; ``style`` replaces this style (for instance the
        same style naming a downloaded font's local path)."""
        fields = {name: getattr(self, name) for name in EncodeFields.model_fields}
        return EncodeOptions(**{**fields, "style": style or self.style})


class EncodeOptions(EncodeFields):
    """What the engine is asked to produce."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoStream(BaseModel):
    codec: str
    width: int = Field(description="displayed width (rotation and pixel aspect applied)")
    height: int = Field(description="displayed height (rotation and pixel aspect applied)")
    coded_width: int
    coded_height: int
    rotation: int = Field(description="degrees the player rotates the stored picture")
    fps: float | None
    pix_fmt: str | None
    bit_depth: int | None
    color_transfer: str | None
    hdr: bool


class AudioStream(BaseModel):
    codec: str
    channels: int | None
    sample_rate: int | None


class MediaInfo(BaseModel):
    """What ffprobe says about a file, reduced to what the pipeline decides on."""

    container: str
    duration: float
    size: int
    bit_rate: int | None
    video: VideoStream
    audio: AudioStream | None


class QualityScore(BaseModel):
    """Output compared to the source scaled to the same size (burned captions included)."""

    ssim: float
    psnr: float


class EncodeResult(BaseModel):
    """What the engine produced: the CLI's `--json` and the task's manifest."""

    output_path: str
    resolution: Resolution
    duration: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    pix_fmt: str | None
    size: int
    bit_rate: int | None
    crf: int
    preset: Preset
    cues: int = Field(description="subtitle cues burned in")
    encode_seconds: float
    quality: QualityScore | None = None


class TaskManifest(BaseModel):
    """What the Fargate task writes beside its output (``manifest.json``) and Finalise reads."""

    schema_version: Literal[1] = 1
    job_id: str
    output_uri: str
    output_bucket: str
    output_key: str
    video_uri: str
    subtitles_uri: str
    size: int = Field(description="bytes of the output object")
    duration: float
    width: int
    height: int
    resolution: Resolution
    video_codec: str
    audio_codec: str | None
    pix_fmt: str | None
    bit_rate: int | None
    crf: int
    preset: Preset
    cues: int
    encode_seconds: float
    quality: QualityScore | None


# --- jobs: what flows through the state machine ---------------------------------------------

# Fits a Step Functions execution name (80 characters, none of the forbidden ones).
JobId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")]
# Ids that come from the caller (seed 002's task_id/batch_id, the main service's video id).
ExternalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
S3UriText = Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$", max_length=1100)]
HttpUrlText = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2048)]
JobStatus = Literal["processing", "saved", "failed"]
MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 16


def validation_problems(err: ValidationError, *, whole: str = "request", first_only: bool = False) -> str:
    """What is wrong, as ``field.path: message`` joined by ``; ``; never the values (a request
    may hold secrets). ``whole`` names a problem of the value as a whole."""
    items = err.errors(include_url=False, include_input=False)
    shown = items[:1] if first_only else items
    return "; ".join(f"{'.'.join(str(part) for part in e['loc']) or whole}: {e['msg']}" for e in shown)


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iterative: any depth can be measured)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _metadata_size(value: dict[str, Any]) -> dict[str, Any]:
    # Depth first: a value nested hundreds deep cannot be serialised (json, pydantic) at all.
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValueError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
    if len(json.dumps(value, separators=(",", ":"), default=str).encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes of JSON")
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata_size)]


class VideoSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    s3_uri: S3UriText


class SubtitleSource(BaseModel):
    """Where the SRT is: an http(s) URL (the subtitle service) or an S3 object. Exactly one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrlText | None = None
    s3_uri: S3UriText | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SubtitleSource:
        if (self.url is None) == (self.s3_uri is None):
            raise ValueError("subtitles needs exactly one of url or s3_uri")
        return self


class JobTags(BaseModel):
    """What a caller attaches to a job and gets back in its callback: its ids and metadata.

    The job and the failure report carry them through the states; ``tags()`` copies them across.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: ExternalId | None = None
    batch_id: ExternalId | None = None
    source_video_id: ExternalId | None = None
    metadata: Metadata = Field(default_factory=dict, description="free, echoed in the callback")

    def tags(self) -> dict[str, Any]:
        """The tag fields as keyword arguments for another model that carries them."""
        return {name: getattr(self, name) for name in JobTags.model_fields}


class JobLabels(JobTags):
    """The tags and the callback URL: what a request and a job record carry.

    The callback URL often holds a token in its query string, and a state's input and output are
    kept in the execution history: so it goes from the request to the job record, and the states
    carry only the tags (Notify reads the URL from the record).
    """

    callback_url: HttpUrlText | None = None

    def labels(self) -> dict[str, Any]:
        """The label fields as keyword arguments for another model that carries them."""
        return {name: getattr(self, name) for name in JobLabels.model_fields}


class JobRequest(JobLabels, EncodeFields):
    """The execution input: StartExecution, an S3 upload's sidecar, or a reprocessing schedule."""

    video: VideoSource
    subtitles: SubtitleSource
    job_id: JobId | None = Field(default=None, description="derived from the request when absent")

    @field_validator("style")
    @classmethod
    def _font_from_s3(cls, value: SubtitleStyle) -> SubtitleStyle:
        if value.font_file is not None and not value.font_file.startswith("s3://"):
            raise ValueError("style.font_file must be an s3:// URI in a job")
        return value

    def idempotency_key(self) -> str:
        """SHA-256 of the request without its job_id: the same request always maps to one job."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude={"job_id"}), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def resolved_job_id(self) -> str:
        return self.job_id or "job-" + self.idempotency_key()[:32]


def video_id_for(job_id: str) -> str:
    """The record key of the video a job produces: deterministic, so retries find the same item."""
    return "vid-" + hashlib.sha256(job_id.encode()).hexdigest()[:24]


class WorkKeys(BaseModel):
    """The job's work files in the bucket (``work/{job_id}/...``, ``pipeline.deployment``'s layout).

    They travel in the state (``$.job.work``), so the definition reads keys, not the layout.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str
    subtitles: str = Field(description="the clean SRT FetchSubtitles writes")
    output: str = Field(description="the encoded MP4 the task uploads")
    manifest: str = Field(description="the task's manifest, written after the output")

    @classmethod
    def of(cls, job_id: str) -> WorkKeys:
        return cls(
            prefix=deployment.work_prefix(job_id),
            subtitles=deployment.work_key(job_id, deployment.SUBTITLES_NAME),
            output=deployment.work_key(job_id, deployment.OUTPUT_NAME),
            manifest=deployment.work_key(job_id, deployment.MANIFEST_NAME),
        )


class Job(JobTags):
    """What ValidateInput puts at ``$.job``: every later state reads only this (small) object.

    No callback URL (see ``JobLabels``): it is in the job record.
    """

    job_id: JobId
    video_id: str
    bucket: str
    video_key: str
    video_size: int
    filename: str = Field(description="the source video's file name, as uploaded")
    subtitles: SubtitleSource
    options: EncodeOptions
    work: WorkKeys
    created_at: str
    attempt: int = 1

    @model_validator(mode="before")
    @classmethod
    def _work_of_an_older_state(cls, data: Any) -> Any:
        # An execution started before jobs carried their work keys (or redriven from then) has
        # a $.job without them: they follow from the job id, as they always have.
        if isinstance(data, dict) and "work" not in data and isinstance(data.get("job_id"), str):
            data = {**data, "work": WorkKeys.of(data["job_id"]).model_dump()}
        # ... and one started before the callback URL moved to the record has it here: the
        # record is where Notify looks now, so this copy is dropped.
        if isinstance(data, dict) and "callback_url" in data:
            data = {key: value for key, value in data.items() if key != "callback_url"}
        return data

    @model_validator(mode="after")
    def _work_follows_the_layout(self) -> Job:
        if self.work != WorkKeys.of(self.job_id):
            raise ValueError("work keys must be the job's work/{job_id}/ folder")
        return self

    @classmethod
    def from_request(
        cls, request: JobRequest, *, bucket: str, video_key: str, video_size: int, created_at: str
    ) -> Job:
        job_id = request.resolved_job_id()
        return cls(
            job_id=job_id,
            video_id=video_id_for(job_id),
            bucket=bucket,
            video_key=video_key,
            video_size=video_size,
            filename=video_key.rpartition("/")[2],
            subtitles=request.subtitles,
            options=request.encode_options(),
            work=WorkKeys.of(job_id),
            created_at=created_at,
            **request.tags(),
        )

    @property
    def final_key(self) -> str:
        return deployment.final_key(self.video_id, self.filename, self.options.resolution)


class SubtitlesFetched(BaseModel):
    """FetchSubtitles' result at ``$.subtitles``: the clean SRT is in S3, not in the state."""

    key: str
    cues: int
    encoding: str
    dropped: int


class OutputFacts(BaseModel):
    """What an encoded output is (Finalise reads it from the task's manifest, or from the final
    object's metadata)."""

    size: int = Field(description="bytes of the output object")
    duration: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    quality: QualityScore | None = None


class FinalOutput(OutputFacts):
    """Finalise's result at ``$.output``: where the video is and what it is.

    No presigned URL here: state output is kept in the execution history, and a URL signed with
    the Lambda role's session carries its token. Notify signs the URL it sends to the caller.
    """

    s3_uri: str
    key: str
    codecs: str = Field(description='"h264/aac", or "h264" without audio')


class Failure(BaseModel):
    """What MarkFailed makes of a caught error at ``$.failed``."""

    error_code: str
    error: str = Field(description="one line, for people")
    error_name: str = Field(description="the Step Functions error name")
    failed_state: str

    def record_fields(self) -> dict[str, str]:
        """The failure as the job record stores it."""
        return {"error_code": self.error_code, "error_message": self.error, "failed_state": self.failed_state}


class FailureReport(Failure, JobTags):
    """MarkFailed's result: the failure and what NotifyFailure needs to tell the caller (the
    callback URL is in the record of ``video_id``; no ``video_id``, no callback)."""

    job_id: str | None = None
    video_id: str | None = None


class CallbackDelivery(BaseModel):
    """How the callback went, recorded on the job."""

    status: Literal["delivered", "failed", "skipped"]
    webhook_id: str | None = None
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None


class JobRecord(BaseModel):
    """One DynamoDB item per video (pk ``video_id``). Status moves only by conditional writes."""

    video_id: str
    job_id: str
    filename: str
    status: JobStatus
    created_at: str
    updated_at: str
    execution_arn: str | None = None
    attempt: int = 1
    source_video_id: str | None = None
    task_id: str | None = None
    batch_id: str | None = None
    resolution: str | None = Field(
        default=None, description='the requested "720p" until saved, then the actual "1280x720"'
    )
    progress: float | None = None
    s3_uri: str | None = None
    file_size: int | None = None
    duration: float | None = None
    codecs: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    failed_state: str | None = None
    callback: CallbackDelivery | None = None
    callback_url: str | None = Field(
        default=None, description="where Notify calls back; may hold a token: never shown or logged"
    )
    request_key: str | None = Field(
        default=None,
        description="JobRequest.idempotency_key(): the same job id with another request conflicts",
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="the caller's, from the request; PATCH /api/videos/{id} may change it"
    )

    @classmethod
    def new(
        cls,
        *,
        job_id: str,
        filename: str,
        status: JobStatus,
        labels: JobLabels,
        resolution: str | None,
        created_at: str,
        updated_at: str,
        execution_arn: str,
        **fields: Any,
    ) -> JobRecord:
        """The first record of a job: ValidateInput's claim, or MarkFailed's for a request that
        never became a job. The record keeps the caller's ids, metadata and callback URL."""
        ids = labels.model_dump(include={"source_video_id", "task_id", "batch_id", "callback_url"})
        if labels.metadata:
            ids["metadata"] = labels.metadata
        times = {"created_at": created_at, "updated_at": updated_at}
        return cls(
            video_id=video_id_for(job_id),
            job_id=job_id,
            filename=filename,
            status=status,
            execution_arn=execution_arn,
            resolution=resolution,
            **times,
            **ids,
            **fields,
        )

    def shown(self) -> dict[str, Any]:
        """The record as people see it (CLI, API): without the callback URL, which may hold a
        token, and without empty fields."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"callback_url"})

    @classmethod
    def claimed(cls, job: Job, request: JobRequest, *, execution_arn: str, now: str) -> JobRecord:
        """ValidateInput's record: the job is ``processing`` from now on."""
        return cls.new(
            job_id=job.job_id,
            filename=job.filename,
            status="processing",
            labels=request,
            request_key=request.idempotency_key(),
            resolution=job.options.resolution,
            created_at=job.created_at,
            updated_at=now,
            execution_arn=execution_arn,
            progress=0.0,
        )


class FileInfo(BaseModel):
    file_size: int
    duration: float
    format: Literal["mp4"] = "mp4"


class VideoAnalysis(BaseModel):
    codec: str
    resolution: str = Field(description="WIDTHxHEIGHT")
    quality_score: float | None = Field(description="SSIM against the source, when measured")


class AudioAnalysis(BaseModel):
    codec: str | None


class CallbackResults(BaseModel):
    file_info: FileInfo
    video_analysis: VideoAnalysis
    audio_analysis: AudioAnalysis


class CompletedCallback(BaseModel):
    """Seed 002's success payload, extended with the job's ids."""

    status: Literal["completed"] = "completed"
    task_id: str | None
    batch_id: str | None
    video_id: str
    job_id: str
    file_url: str
    processing_time: float = Field(description="seconds from execution start to finalised output")
    results: CallbackResults
    metadata: dict[str, Any]


class FailedCallback(BaseModel):
    """Seed 002's error payload, extended with the job's ids and the failed state."""

    status: Literal["failed"] = "failed"
    task_id: str | None
    batch_id: str | None
    video_id: str | None
    job_id: str | None
    error: str
    error_code: str
    failed_state: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, report: FailureReport) -> FailedCallback:
        """The callback of a failure MarkFailed reported."""
        return cls.model_validate(report.model_dump(include=set(cls.model_fields) - {"status"}))


# --- step events: what each Lambda receives (the ASL's Parameters) and returns ---------------


class ValidateInputEvent(BaseModel):
    """ValidateInput's event: the raw execution input, unparsed, and the execution's identity."""

    model_config = ConfigDict(extra="forbid")

    request: Any = Field(description="the execution input as given: parsing it is ValidateInput's job")
    execution_arn: str
    started_at: str = Field(description="$$.Execution.StartTime (ISO 8601)")


class Validated(BaseModel):
    """ValidateInput's result; it replaces the whole state (ResultPath ``$``)."""

    duplicate: bool = Field(description="the job was already recorded by another execution: stop")
    job: Job


class JobEvent(BaseModel):
    """FetchSubtitles' and Finalise's event."""

    model_config = ConfigDict(extra="forbid")

    job: Job


class CompletedNotice(BaseModel):
    """Notify's event on success."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["completed"]
    job: Job
    output: FinalOutput
    started_at: str


class FailedNotice(BaseModel):
    """Notify's event on failure (the NotifyFailure state)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["failed"]
    failed: FailureReport


# Notify's event: one Lambda serves both the Notify and the NotifyFailure states.
NotifyEvent = Annotated[CompletedNotice | FailedNotice, Field(discriminator="outcome")]


class CaughtError(BaseModel):
    """What a Catch puts at ``$.failure.<StateName>``."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class MarkFailedEvent(BaseModel):
    """MarkFailed's event: the whole state at the time of the Catch, and the execution (whose
    input MarkFailed reads itself when ValidateInput failed: the state no longer holds it)."""

    model_config = ConfigDict(extra="forbid")

    state: dict[str, Any]
    execution_arn: str
