"""Pydantic contracts: what flows between the CLI, the media engine, the task and the states.

Every value that can reach ffmpeg's filtergraph is constrained here by a strict pattern or a
numeric range, so nothing a caller sends can be read by ffmpeg as filtergraph syntax.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class EncodeOptions(BaseModel):
    """What the engine is asked to produce."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: Resolution = "720p"
    crf: Annotated[int, Field(ge=0, le=51)] = DEFAULT_CRF
    preset: Preset = DEFAULT_PRESET
    style: SubtitleStyle = SubtitleStyle()
    upscale: bool = Field(default=False, description="allow output larger than the source")
    quality: bool = Field(default=False, description="measure SSIM/PSNR against the source")


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
