"""`vidp burn` end to end: real ffmpeg on generated media, judged by what comes out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.media.engine import burn
from pipeline.media.probe import probe
from pipeline.models import EncodeOptions, SubtitleStyle
from tests.conftest import SIMPLE_SRT, ClipFactory
from tests.helpers import band, count_unlike, gray_frame

GRAY = "color=c=0x808080"
CLI_TIMEOUT = 120


def vidp(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def burn_json(
    video: Path, srt: Path, out: Path, *extra: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    done = vidp("burn", video, "--srt", srt, "-o", out, "--resolution", "360p", "--preset", "ultrafast",
                "--json", *extra, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def caption_pixels(video: Path, at: float) -> int:
    """Pixels in the bottom quarter of a gray picture that are not gray: burned text."""
    return count_unlike(band(gray_frame(video, at), 0.75, 1.0), reference=0x80)


def test_subtitles_are_burned_in_at_cue_times_only(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("gray.mp4", pattern=GRAY, width=640, height=360, seconds=2.6)
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")

    assert caption_pixels(tmp_path / "out.mp4", 0.5) > 300  # cue 1
    assert caption_pixels(tmp_path / "out.mp4", 1.25) < 20  # between cues
    assert caption_pixels(tmp_path / "out.mp4", 2.0) > 300  # cue 2
    top = count_unlike(band(gray_frame(tmp_path / "out.mp4", 0.5), 0.0, 0.5), reference=0x80)
    assert top < 20  # bottom-centre by default
    assert result["cues"] == 2
    assert (result["width"], result["height"]) == (640, 360)
    assert (result["video_codec"], result["audio_codec"], result["pix_fmt"]) == ("h264", "aac", "yuv420p")
    assert result["size"] == (tmp_path / "out.mp4").stat().st_size


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
     ("utf-32-le", b"\xff\xfe\x00\x00"), ("cp1252", b"")],
)  # fmt: skip
def test_srt_in_any_common_encoding_is_burned(
    clip: ClipFactory, tmp_path: Path, encoding: str, bom: bytes
) -> None:
    text = "1\r\n00:00:00,100 --> 00:00:01,500\r\nOù est l'été ? Ça va.\r\n"
    video = clip("gray.mp4", pattern=GRAY, width=480, height=270, seconds=1.6, audio=False)
    srt = write(tmp_path / "s.srt", bom + text.encode(encoding))
    burn_json(video, srt, tmp_path / "out.mp4")
    assert caption_pixels(tmp_path / "out.mp4", 0.8) > 200


def test_cjk_text_renders_as_distinct_glyphs_not_boxes(clip: ClipFactory, tmp_path: Path) -> None:
    """Tofu boxes (or nothing) would look the same for any two strings; real glyphs differ."""
    video = clip("gray.mp4", pattern=GRAY, width=480, height=270, seconds=1.2, audio=False)
    crops = []
    for name, text in (("a", "字幕表示"), ("b", "中文可以")):
        srt = write(tmp_path / f"{name}.srt", f"1\n00:00:00,000 --> 00:00:01,200\n{text}\n".encode())
        burn_json(video, srt, tmp_path / f"{name}.mp4")
        crops.append(band(gray_frame(tmp_path / f"{name}.mp4", 0.6), 0.75, 1.0))
    assert count_unlike(crops[0], 0x80) > 200
    differing = sum(1 for x, y in zip(crops[0], crops[1], strict=True) if abs(x - y) > 60)
    assert differing > 200


def test_rotated_phone_video_comes_out_upright_portrait(clip: ClipFactory, tmp_path: Path) -> None:
    stored = clip("stored.mp4", width=640, height=360, seconds=1.0)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(rotated)], check=True)  # fmt: skip
    assert probe(rotated).video.width == 360  # displayed portrait
    result = burn_json(rotated, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    assert (result["width"], result["height"]) == (360, 640)
    assert probe(tmp_path / "out.mp4").video.rotation == 0  # rotated once, not flagged again


def test_portrait_source_scales_its_short_side(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("portrait.mp4", width=540, height=960, seconds=1.0)
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    assert (result["width"], result["height"]) == (360, 640)


def test_video_without_audio_gives_video_only_output(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("silent.mp4", audio=False, seconds=1.0)
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    assert result["audio_codec"] is None
    assert probe(tmp_path / "out.mp4").audio is None


def test_ten_bit_input_comes_out_eight_bit_yuv420p(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("tenbit.mp4", seconds=1.0, extra_output_args=("-pix_fmt", "yuv420p10le"))
    assert probe(video).video.bit_depth == 10
    burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    made = probe(tmp_path / "out.mp4").video
    assert (made.pix_fmt, made.bit_depth) == ("yuv420p", 8)


def test_hdr_pq_input_is_tone_mapped_to_sdr_bt709(clip: ClipFactory, tmp_path: Path) -> None:
    pq = ("-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
          "-colorspace", "bt2020nc")  # fmt: skip
    video = clip("hdr.mp4", seconds=1.0, extra_output_args=pq)
    assert probe(video).video.hdr
    burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    made = probe(tmp_path / "out.mp4").video
    assert (made.color_transfer, made.pix_fmt, made.hdr) == ("bt709", "yuv420p", False)


def test_odd_source_dimensions_give_even_output(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("odd.mp4", width=321, height=241, seconds=1.0, extra_output_args=("-pix_fmt", "yuv444p"))
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    assert (result["width"], result["height"]) == (320, 240)


def test_hevc_input_is_transcoded_to_h264(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip(
        "hevc.mp4", seconds=1.0, extra_output_args=("-c:v", "libx265", "-x265-params", "log-level=error")
    )
    assert probe(video).video.codec == "hevc"
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4")
    assert result["video_codec"] == "h264"


def test_quality_is_measured_when_asked(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("q.mp4", width=640, height=360, seconds=1.0)
    result = burn_json(video, write(tmp_path / "s.srt", SIMPLE_SRT), tmp_path / "out.mp4", "--quality")
    assert 0.8 < result["quality"]["ssim"] <= 1.0
    assert result["quality"]["psnr"] > 20


@pytest.mark.parametrize(
    "name",
    ["we'ird: na,me [x];.mp4", "spaced name ü 字幕.mp4", "-starts-with-dash.mp4", "100%,50%.mp4"],
)
def test_file_names_with_filtergraph_characters_work(clip: ClipFactory, tmp_path: Path, name: str) -> None:
    video = clip(name, pattern=GRAY, seconds=1.0)
    srt = write(tmp_path / name.replace(".mp4", ".srt"), SIMPLE_SRT)
    out = tmp_path / ("out " + name)
    burn_json(video, srt, out)
    assert caption_pixels(out, 0.5) > 100


def make_truncated(clip: ClipFactory, tmp_path: Path, *, faststart: bool) -> Path:
    extra = ("-movflags", "+faststart") if faststart else ()
    whole = clip("whole.mp4", width=640, height=360, seconds=2.0, extra_output_args=extra)
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda clip, tmp: write(tmp / "zero.mp4", b""), "file is empty"),
        (lambda clip, tmp: write(tmp / "noise.mp4", os.urandom(64 * 1024)), "not a readable video"),
        (lambda clip, tmp: make_truncated(clip, tmp, faststart=False), "not a readable video"),
        (lambda clip, tmp: make_truncated(clip, tmp, faststart=True), "truncated"),
        (lambda clip, tmp: clip("song.mp4", pattern=GRAY, extra_output_args=("-vn",)), "audio-only"),
        (
            lambda clip, tmp: write(tmp / "missing.mp4", b"x").unlink() or tmp / "missing.mp4",
            "file not found",
        ),
    ],
    ids=[
        "zero-length",
        "random-bytes",
        "truncated-moov-at-end",
        "truncated-faststart",
        "audio-only",
        "missing",
    ],
)
def test_bad_video_exits_2_with_one_clear_line_and_no_output(
    clip: ClipFactory, tmp_path: Path, maker: Any, message: str
) -> None:
    video = maker(clip, tmp_path)
    out = tmp_path / "out.mp4"
    done = vidp("burn", video, "--srt", write(tmp_path / "s.srt", SIMPLE_SRT), "-o", out)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vidp: error: ")
    assert not out.exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_encrypted_video_is_rejected(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("enc.mp4", seconds=1.0, extra_output_args=(
        "-encryption_scheme", "cenc-aes-ctr", "-encryption_key", "76a6c65c5ea762046bd749a2e632ccbb",
        "-encryption_kid", "a7e61c373e219033c21091fa607bf3b8"))  # fmt: skip
    done = vidp("burn", video, "--srt", write(tmp_path / "s.srt", SIMPLE_SRT), "-o", tmp_path / "out.mp4")
    assert done.returncode == 2 and "is encrypted" in done.stderr


def test_image_renamed_mp4_is_rejected(tmp_path: Path) -> None:
    image = tmp_path / "picture.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1",
                    "-f", "image2", "-c:v", "png", str(image)], check=True)  # fmt: skip
    done = vidp("burn", image, "--srt", write(tmp_path / "s.srt", SIMPLE_SRT), "-o", tmp_path / "out.mp4")
    assert done.returncode == 2 and "still image" in done.stderr


def test_hls_playlist_named_srt_is_rejected_before_ffmpeg_runs(clip: ClipFactory, tmp_path: Path) -> None:
    # A stand-in ffmpeg that leaves a mark if anyone runs it (ffprobe stays real).
    marker = tmp_path / "ffmpeg-ran"
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    fake.chmod(0o755)
    video = clip("v.mp4", seconds=1.0)
    playlist = write(
        tmp_path / "subs.srt", b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nhttp://169.254.169.254/x.ts\n"
    )
    done = vidp("burn", video, "--srt", playlist, "-o", tmp_path / "out.mp4", env={"VIDP_FFMPEG": str(fake)})
    assert done.returncode == 2 and "HLS playlist" in done.stderr
    assert not marker.exists()


def test_empty_srt_gives_the_reference_services_error(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("v.mp4", seconds=1.0)
    done = vidp("burn", video, "--srt", write(tmp_path / "s.srt", b"\n\n"), "-o", tmp_path / "out.mp4")
    assert done.returncode == 2 and "SRT file is empty" in done.stderr


@pytest.mark.parametrize(
    "style",
    ["font_family=x':movie=/etc/passwd", "colour=#FFF';drawtext=textfile=/etc/passwd", "font_size=9999",
     "nonsense=1", "no-equals-sign"],
)  # fmt: skip
def test_style_values_that_try_to_escape_are_rejected(clip: ClipFactory, tmp_path: Path, style: str) -> None:
    video = clip("v.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"
    done = vidp("burn", video, "--srt", write(tmp_path / "s.srt", SIMPLE_SRT), "-o", out, "--style", style)
    assert done.returncode == 2 and "style" in done.stderr and done.stderr.count("\n") == 1
    assert not out.exists()


def unlike_in(frame: tuple[int, int, bytes], rows: tuple[float, float], cols: tuple[float, float]) -> int:
    width, height, pixels = frame
    count = 0
    for y in range(int(rows[0] * height), int(rows[1] * height)):
        row = pixels[y * width + int(cols[0] * width) : y * width + int(cols[1] * width)]
        count += count_unlike(row, reference=0x80, tolerance=100)
    return count


def test_box_and_alignment_place_the_caption(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("gray.mp4", pattern=GRAY, width=640, height=360, seconds=1.0, audio=False)
    srt = write(tmp_path / "s.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    burn_json(video, srt, tmp_path / "boxed.mp4", "--style", "background_opacity=1", "--style",
              "background_colour=black", "--style", "vertical_align=top", "--style", "horizontal_align=right",
              "--style", "font_size=60")  # fmt: skip
    frame = gray_frame(tmp_path / "boxed.mp4", 0.5)
    top_right = unlike_in(frame, rows=(0.0, 0.3), cols=(0.75, 1.0))
    assert top_right > 1500  # a black box, not just thin glyph strokes
    for rows, cols in [((0.0, 0.3), (0.0, 0.5)), ((0.35, 1.0), (0.0, 1.0))]:
        assert unlike_in(frame, rows, cols) < 20  # nothing anywhere else


def test_custom_font_file_is_used(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("gray.mp4", pattern=GRAY, width=640, height=360, seconds=1.0, audio=False)
    srt = write(tmp_path / "s.srt", SIMPLE_SRT)
    burn_json(video, srt, tmp_path / "default.mp4")
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    # the custom font is given by file; its family is read from the file
    result = burn_json(video, srt, tmp_path / "custom.mp4", "--style", f"font_file={font}")
    assert result["cues"] == 2
    assert caption_pixels(tmp_path / "custom.mp4", 0.5) > caption_pixels(tmp_path / "default.mp4", 0.5)


def test_ffmpeg_failure_exits_1_and_leaves_no_output(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("v.mp4", seconds=1.0)
    out = tmp_path / "out.mp4"
    done = vidp("burn", video, "--srt", write(tmp_path / "s.srt", SIMPLE_SRT), "-o", out,
                env={"VIDP_FFMPEG": "/bin/false"})  # fmt: skip
    assert done.returncode == 1 and "ffmpeg exited with status 1" in done.stderr
    assert not out.exists() and list(tmp_path.glob(".*partial")) == []


def test_missing_output_folder_and_oversized_srt_are_invalid_input(clip: ClipFactory, tmp_path: Path) -> None:
    video = clip("v.mp4", seconds=1.0)
    srt = write(tmp_path / "s.srt", SIMPLE_SRT)
    done = vidp("burn", video, "--srt", srt, "-o", tmp_path / "no-such-folder" / "out.mp4")
    assert done.returncode == 2 and "output folder" in done.stderr and "does not exist" in done.stderr

    big = write(tmp_path / "big.srt", SIMPLE_SRT * 40)
    done = vidp(
        "burn", video, "--srt", big, "-o", tmp_path / "out.mp4", env={"VIDP_MAX_SUBTITLE_BYTES": "1000"}
    )
    assert done.returncode == 2
    assert f"SRT file is {big.stat().st_size} bytes, over the limit of 1000 bytes" in done.stderr


def test_the_job_folder_is_made_under_the_scratch_folder_given_and_removed(
    clip: ClipFactory, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    seen: list[set[str]] = []

    def look(_percent: float) -> None:  # called while ffmpeg runs, so while the job folder exists
        seen.append({path.relative_to(scratch).as_posix() for path in scratch.rglob("*")})

    font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
    options = EncodeOptions(resolution="360p", preset="ultrafast", style=SubtitleStyle(font_file=font))
    burn(
        clip("v.mp4", seconds=1.0),
        SIMPLE_SRT,
        tmp_path / "out.mp4",
        options,
        on_progress=look,
        scratch=scratch,
    )

    assert seen, "no progress while ffmpeg ran"
    [job] = {name.partition("/")[0] for name in seen[0]}
    assert job.startswith("vidp-job-")
    assert {f"{job}/subtitles.srt", f"{job}/fonts/custom.ttf"} <= seen[0]
    assert list(scratch.iterdir()) == []
    assert (tmp_path / "out.mp4").is_file()
    assert not any(Path(tempfile.gettempdir()).glob(job))  # not in the system temp folder either
