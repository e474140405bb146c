"""The ffmpeg command: output geometry, the filtergraph, and what may never enter it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.failures import InvalidStyle
from pipeline.media.command import build_command, output_size, video_filter
from pipeline.media.style import ass_colour, force_style
from pipeline.models import AudioStream, EncodeOptions, MediaInfo, SubtitleStyle, VideoStream


def media(
    width: int, height: int, *, audio: AudioStream | None = None, transfer: str | None = None
) -> MediaInfo:
    video = VideoStream(
        codec="h264", width=width, height=height, coded_width=width, coded_height=height, rotation=0,
        fps=30.0, pix_fmt="yuv420p", bit_depth=8, color_transfer=transfer,
        hdr=transfer in {"smpte2084", "arib-std-b67"},
    )  # fmt: skip
    return MediaInfo(container="mov", duration=2.0, size=1, bit_rate=None, video=video, audio=audio)


@pytest.mark.parametrize(
    ("source", "target", "upscale", "expected"),
    [
        ((1920, 1080), 720, False, (1280, 720)),  # landscape 16:9
        ((1080, 1920), 720, False, (720, 1280)),  # portrait: the short side is the width
        ((640, 480), 360, False, (480, 360)),  # 4:3
        ((1919, 1079), 720, False, (1280, 720)),  # odd source: even output
        ((3840, 1600), 1080, False, (2592, 1080)),  # scope: long side rounded to even
        ((320, 240), 720, False, (320, 240)),  # never upscaled unless asked
        ((320, 240), 360, True, (480, 360)),  # upscaled when asked
        ((641, 361), 720, False, (640, 360)),  # kept size, rounded down to even
        ((1280, 720), 720, False, (1280, 720)),  # already at the target
    ],
)
def test_output_size_makes_short_side_the_target(
    source: tuple[int, int], target: int, upscale: bool, expected: tuple[int, int]
) -> None:
    width, height = output_size(media(*source).video, target, upscale=upscale)
    assert (width, height) == expected
    assert width % 2 == 0 and height % 2 == 0


def test_command_is_one_pass_with_scale_then_subtitles_then_yuv420p(tmp_path: Path) -> None:
    plan = build_command(
        media(1920, 1080, audio=AudioStream(codec="aac", channels=2, sample_rate=48000)),
        EncodeOptions(resolution="480p", crf=28, preset="fast"),
        input_path=tmp_path / "in.mp4",
        output_path=tmp_path / "out.mp4",
        threads=3,
    )
    argv = plan.argv
    assert argv.count("-i") == 1
    graph = argv[argv.index("-vf") + 1]
    assert graph.index("scale=854:480") < graph.index("subtitles=") < graph.index("format=yuv420p")
    assert "PlayResX=854,PlayResY=480" in graph
    assert argv[argv.index("-crf") + 1] == "28" and argv[argv.index("-preset") + 1] == "fast"
    assert argv[argv.index("-c:a") + 1] == "aac" and "0:a:0?" in argv
    assert argv[argv.index("-movflags") + 1] == "+faststart"
    assert argv.count("-threads") == 2 and all(
        argv[i + 1] == "3" for i, a in enumerate(argv) if a == "-threads"
    )
    assert argv[-1] == "file:" + str((tmp_path / "out.mp4").resolve())
    assert (plan.width, plan.height) == (854, 480)


def test_no_audio_track_means_no_audio_options(tmp_path: Path) -> None:
    argv = build_command(
        media(640, 360), EncodeOptions(), input_path=tmp_path / "a", output_path=tmp_path / "b", threads=1
    ).argv
    assert "-c:a" not in argv


def test_hdr_source_is_tone_mapped_to_bt709() -> None:
    graph = video_filter(media(1920, 1080, transfer="smpte2084"), 1280, 720, "FontSize=40")
    assert "tonemap=tonemap=hable" in graph and "tin=smpte2084" in graph
    assert "tonemap" not in video_filter(media(1920, 1080), 1280, 720, "FontSize=40")


def test_caller_file_names_never_enter_the_filtergraph(tmp_path: Path) -> None:
    weird = tmp_path / "we'ird: na,me [x];.mp4"
    plan = build_command(
        media(640, 360), EncodeOptions(), input_path=weird, output_path=tmp_path / "o;ut.mp4", threads=1
    )
    graph = plan.argv[plan.argv.index("-vf") + 1]
    assert "we'ird" not in graph and "o;ut" not in graph
    assert "subtitles=filename=subtitles.srt:fontsdir=fonts:" in graph


@pytest.mark.parametrize(
    "family",
    [
        "x':movie=/etc/passwd",
        "DejaVu Sans,Outline=99",
        "a[b]",
        "semi;colon",
        "back\\slash",
        "new\nline",
        "",
        "x" * 65,
    ],
)
def test_style_font_family_that_could_escape_is_rejected(family: str) -> None:
    with pytest.raises(ValidationError):
        SubtitleStyle(font_family=family)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("colour", "#FFF'"),
        ("colour", "&H00FFFFFF"),
        ("outline_colour", "red;"),
        ("opacity", 1.5),
        ("font_size", 0),
        ("font_size", 10_000),
        ("outline_width", -1),
        ("margin_vertical", 99_999),
        ("horizontal_align", "middle"),
        ("font_file", "evil.srt"),
        ("unknown_key", "1"),
    ],
)
def test_style_values_out_of_pattern_or_range_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        SubtitleStyle.model_validate({field: value})


def test_style_maps_to_libass_overrides_in_output_pixels() -> None:
    style = SubtitleStyle(
        font_family="Noto Sans CJK JP",
        font_size=48,
        bold=True,
        colour="yellow",
        opacity=0.5,
        background_opacity=0.8,
        horizontal_align="left",
        vertical_align="top",
        margin_vertical=20,
    )
    rendered = force_style(style, 1280, 720)
    fields = dict(item.split("=", 1) for item in rendered.split(","))
    assert fields["FontName"] == "Noto Sans CJK JP"
    assert fields["FontSize"] == "48" and fields["Bold"] == "-1"
    assert fields["PrimaryColour"] == "&H8000FFFF"  # yellow, half transparent (AABBGGRR)
    assert fields["BorderStyle"] == "4" and fields["BackColour"] == "&H33000000"  # box, 80% opaque
    assert fields["Alignment"] == "5" and fields["MarginV"] == "20"
    assert (fields["PlayResX"], fields["PlayResY"]) == ("1280", "720")


def test_auto_sizes_follow_the_output_height() -> None:
    small = dict(item.split("=", 1) for item in force_style(SubtitleStyle(), 640, 360).split(","))
    large = dict(item.split("=", 1) for item in force_style(SubtitleStyle(), 1920, 1080).split(","))
    assert int(large["FontSize"]) == 3 * int(small["FontSize"])
    assert float(large["Outline"]) > float(small["Outline"])


def test_ass_colour_is_alpha_blue_green_red() -> None:
    assert ass_colour("#112233", 1.0) == "&H00332211"
    assert ass_colour("#112233", 0.0) == "&HFF332211"


def test_force_style_refuses_unsafe_characters_even_from_a_trusted_caller() -> None:
    with pytest.raises(InvalidStyle):
        force_style(SubtitleStyle(), 640, 360, font_name="Evil'Font")
