"""The rules probe applies to ffprobe's description (real files are in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import EngineSettings
from pipeline.failures import InvalidMedia
from pipeline.media.probe import describe

SETTINGS = EngineSettings(max_duration_seconds=3600, max_dimension=8192, max_streams=4)


def video(**extra: Any) -> dict[str, Any]:
    stream = {"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
              "avg_frame_rate": "30000/1001", "pix_fmt": "yuv420p"}  # fmt: skip
    return {**stream, **extra}


def audio(**extra: Any) -> dict[str, Any]:
    return {"codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "48000", **extra}


def ffprobe(*streams: dict[str, Any], fmt: str = "mov,mp4,m4a,3gp,3g2,mj2", duration: str = "10.0",
            packets: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"format": {"format_name": fmt, "duration": duration}, "streams": list(streams),
            "packets": packets or []}  # fmt: skip


def test_a_normal_video_is_described() -> None:
    info = describe(ffprobe(video(), audio()), size=123, name="a.mp4", settings=SETTINGS)
    assert (info.video.width, info.video.height, info.video.fps) == (1920, 1080, 29.97)
    assert info.audio is not None and info.audio.channels == 2 and info.audio.sample_rate == 48000
    assert info.duration == 10.0 and info.size == 123 and not info.video.hdr


def test_rotation_swaps_the_displayed_size() -> None:
    rotated = video(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}])
    info = describe(ffprobe(rotated), size=1, name="phone.mov", settings=SETTINGS)
    assert (info.video.width, info.video.height, info.video.rotation) == (1080, 1920, 270)


def test_anamorphic_pixels_give_the_displayed_width() -> None:
    info = describe(ffprobe(video(width=720, height=576, sample_aspect_ratio="64:45")), size=1, name="dv.mkv",
                    settings=SETTINGS)  # fmt: skip
    assert (info.video.width, info.video.height) == (1024, 576)


def test_hdr_transfer_and_ten_bit_depth_are_reported() -> None:
    info = describe(ffprobe(video(pix_fmt="yuv420p10le", color_transfer="smpte2084")), size=1, name="hdr.mp4",
                    settings=SETTINGS)  # fmt: skip
    assert info.video.hdr and info.video.bit_depth == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ffprobe(video(), fmt="hls"), "is a playlist"),
        (ffprobe(video(), fmt="concat"), "is a playlist"),
        (ffprobe(audio()), "audio-only"),
        (ffprobe(video(codec_name="png"), fmt="png_pipe"), "still image"),
        (ffprobe(video(codec_name="mjpeg"), fmt="image2"), "still image"),
        (ffprobe(video(width=10000, height=100)), "larger than the limit of 8192"),
        (ffprobe(video(), duration="7200"), "more than the limit of 3600"),
        (ffprobe(video(), duration="N/A"), "no measurable duration"),
        (ffprobe(video(), audio(), audio(), audio(), audio()), "5 streams"),
        (ffprobe(video(codec_tag_string="encv")), "encrypted"),
        (
            ffprobe(video(), packets=[{"side_data_list": [{"side_data_type": "Encryption info"}]}]),
            "encrypted",
        ),
        (ffprobe(video(width=0)), "no decodable picture"),
    ],
)
def test_unusable_inputs_are_rejected_with_a_reason(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMedia) as err:
        describe(data, size=1, name="in.mp4", settings=SETTINGS)
    assert message in str(err.value)
    assert str(err.value).startswith("in.mp4: ")
    assert "\n" not in str(err.value)


def test_cover_art_is_not_taken_for_the_video() -> None:
    cover = video(codec_name="mjpeg", disposition={"attached_pic": 1})
    with pytest.raises(InvalidMedia, match="audio-only"):
        describe(ffprobe(audio(), cover), size=1, name="song.m4a", settings=SETTINGS)
