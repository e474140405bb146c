"""ffprobe a local file into a MediaInfo, or say in one line why the pipeline can't take it."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.config import EngineSettings, engine_settings
from pipeline.failures import InvalidMedia
from pipeline.models import AudioStream, MediaInfo, VideoStream
from pipeline.processes import die_with_parent

# Demuxers that read other files or URLs named inside the input: never followed.
_PLAYLIST_FORMATS = {"hls", "concat", "ffconcat", "dash", "webm_dash_manifest", "m3u8", "tee"}
# Single pictures and image sequences probe as "video" streams but are not videos.
_IMAGE_FORMAT_SUFFIXES = ("_pipe",)
_IMAGE_FORMATS = {"image2", "png", "jpeg", "gif", "webp", "bmp", "tiff", "apng"}
_IMAGE_CODECS = {"png", "mjpeg", "jpegls", "gif", "bmp", "tiff", "webp", "jpeg2000"}
_HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}


def ffmpeg_input(path: Path) -> str:
    """The input/output argument for a local file: ``file:`` + absolute path.

    The prefix stops ffmpeg from reading a name such as ``a:b.mp4`` as a protocol, and the
    absolute path stops a name starting with ``-`` from being read as an option.
    """
    return "file:" + str(path.resolve())


def run_ffprobe(path: Path, settings: EngineSettings) -> dict[str, Any]:
    """Raw ffprobe JSON for a local file, with a time limit and only the file protocol."""
    argv = [
        settings.ffprobe,
        "-v", "error",
        "-protocol_whitelist", "file",
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        # The first packets carry "Encryption info" side data when the file is CENC-encrypted.
        "-show_packets",
        "-read_intervals", "%+#4",
        "-show_entries", "packet=stream_index:packet_side_data=side_data_type",
        ffmpeg_input(path),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=settings.probe_timeout_seconds,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
    except subprocess.TimeoutExpired:
        raise InvalidMedia(
            f"{path.name}: ffprobe did not finish in {settings.probe_timeout_seconds:g} s"
        ) from None
    if done.returncode != 0:
        # ffprobe names the file by its full local path: show the caller only its name.
        reason = (
            _last_line(done.stderr)
            .replace(ffmpeg_input(path) + ": ", "")
            .replace(ffmpeg_input(path), path.name)
        )
        raise InvalidMedia(f"{path.name}: not a readable video ({reason})")
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise InvalidMedia(f"{path.name}: ffprobe gave no usable description") from None
    return data


def probe(path: Path, settings: EngineSettings | None = None) -> MediaInfo:
    """Describe a local video file, or raise InvalidMedia with a one-line reason."""
    settings = settings or engine_settings()
    if not path.is_file():
        raise InvalidMedia(f"{path.name}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise InvalidMedia(f"{path.name}: file is empty (0 bytes)")
    return describe(run_ffprobe(path, settings), size=size, name=path.name, settings=settings)


def describe(data: dict[str, Any], *, size: int, name: str, settings: EngineSettings) -> MediaInfo:
    """Turn ffprobe JSON into MediaInfo, applying the pipeline's limits."""
    fmt = data.get("format") or {}
    container = str(fmt.get("format_name") or "")
    formats = set(container.split(","))
    if formats & _PLAYLIST_FORMATS:
        raise InvalidMedia(f"{name}: is a playlist ({container}), not a video file")
    streams: list[dict[str, Any]] = list(data.get("streams") or [])
    if len(streams) > settings.max_streams:
        raise InvalidMedia(
            f"{name}: has {len(streams)} streams, more than the limit of {settings.max_streams}"
        )
    if _is_encrypted(streams, list(data.get("packets") or [])):
        raise InvalidMedia(f"{name}: is encrypted (DRM/CENC); only clear media can be processed")

    video_streams = [s for s in streams if s.get("codec_type") == "video" and not _is_picture(s)]
    if not video_streams:
        if any(s.get("codec_type") == "audio" for s in streams):
            raise InvalidMedia(f"{name}: has no video stream (audio-only file)")
        if (
            any(s.get("codec_type") == "video" for s in streams)
            or formats & _IMAGE_FORMATS
            or any(f.endswith(_IMAGE_FORMAT_SUFFIXES) for f in formats)
        ):
            raise InvalidMedia(f"{name}: is a still image, not a video")
        raise InvalidMedia(f"{name}: has no video stream")
    if formats & _IMAGE_FORMATS or any(f.endswith(_IMAGE_FORMAT_SUFFIXES) for f in formats):
        raise InvalidMedia(f"{name}: is an image ({container}), not a video")

    video = _video_stream(video_streams[0], name, settings)
    duration = _duration(fmt, video_streams[0])
    if duration is None or duration <= 0:
        raise InvalidMedia(f"{name}: has no measurable duration (truncated or not a video)")
    if duration > settings.max_duration_seconds:
        raise InvalidMedia(
            f"{name}: lasts {duration:.0f} s, more than the limit of {settings.max_duration_seconds:.0f} s"
        )
    audio_streams = [s for s in streams if s.get("codec_type") == "audio"]
    return MediaInfo(
        container=container,
        duration=round(duration, 3),
        size=size,
        bit_rate=_int(fmt.get("bit_rate")),
        video=video,
        audio=_audio_stream(audio_streams[0]) if audio_streams else None,
    )


def _video_stream(stream: dict[str, Any], name: str, settings: EngineSettings) -> VideoStream:
    codec = str(stream.get("codec_name") or "")
    coded_w, coded_h = _int(stream.get("width")) or 0, _int(stream.get("height")) or 0
    if not codec or coded_w <= 0 or coded_h <= 0:
        raise InvalidMedia(f"{name}: video stream has no decodable picture (codec or size unknown)")
    if max(coded_w, coded_h) > settings.max_dimension:
        raise InvalidMedia(
            f"{name}: picture is {coded_w}x{coded_h}, larger than the limit of {settings.max_dimension}"
        )
    # Pixel aspect first (anamorphic sources), then rotation: the displayed picture.
    sar = _ratio(stream.get("sample_aspect_ratio")) or Fraction(1)
    shown_w = round(coded_w * sar) if sar > 0 else coded_w
    shown_h = coded_h
    rotation = _rotation(stream)
    if rotation % 180 == 90:
        shown_w, shown_h = shown_h, shown_w
    transfer = stream.get("color_transfer")
    return VideoStream(
        codec=codec,
        width=shown_w,
        height=shown_h,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        fps=_fps(stream),
        pix_fmt=stream.get("pix_fmt"),
        bit_depth=_bit_depth(stream),
        color_transfer=transfer,
        hdr=transfer in _HDR_TRANSFERS,
    )


def _audio_stream(stream: dict[str, Any]) -> AudioStream:
    return AudioStream(
        codec=str(stream.get("codec_name") or "unknown"),
        channels=_int(stream.get("channels")),
        sample_rate=_int(stream.get("sample_rate")),
    )


def _is_picture(stream: dict[str, Any]) -> bool:
    """Cover art (attached picture) or a single-image codec: not the video to process."""
    disposition = stream.get("disposition") or {}
    return bool(disposition.get("attached_pic")) or stream.get("codec_name") in _IMAGE_CODECS


def _is_encrypted(streams: list[dict[str, Any]], packets: list[dict[str, Any]]) -> bool:
    for packet in packets:
        for side in packet.get("side_data_list") or []:
            if "encryption" in str(side.get("side_data_type", "")).lower():
                return True
    for stream in streams:
        if str(stream.get("codec_tag_string", "")).lower() in {"encv", "enca"}:
            return True
        for side in stream.get("side_data_list") or []:
            if "encryption" in str(side.get("side_data_type", "")).lower():
                return True
    return False


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and str(tag).lstrip("-").isdigit() else 0


def _duration(fmt: dict[str, Any], stream: dict[str, Any]) -> float | None:
    for value in (fmt.get("duration"), stream.get("duration")):
        number = _float(value)
        if number is not None:
            return number
    return None


def _fps(stream: dict[str, Any]) -> float | None:
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _ratio(stream.get(key))
        if rate and rate > 0:
            return round(float(rate), 3)
    return None


def _bit_depth(stream: dict[str, Any]) -> int | None:
    raw = _int(stream.get("bits_per_raw_sample"))
    if raw:
        return raw
    pix_fmt = str(stream.get("pix_fmt") or "")
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8 if pix_fmt else None


def _ratio(value: object) -> Fraction | None:
    if not isinstance(value, str) or (":" not in value and "/" not in value):
        return None
    num, _, den = value.replace(":", "/").partition("/")
    try:
        return Fraction(int(num), int(den)) if int(den) else None
    except ValueError:
        return None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no details"
