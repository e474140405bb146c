"""The ``vidp`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from pipeline.errors import InvalidInput, VidpError
from pipeline.models import DEFAULT_CRF, DEFAULT_PRESET, EncodeOptions, EncodeResult, SubtitleStyle

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="VidP: burn SRT subtitles into a video and compress it, locally or on AWS Step Functions.",
)
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    print(f"vidp: error: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


def parse_style(pairs: list[str]) -> SubtitleStyle:
    """``KEY=VALUE`` pairs into a SubtitleStyle; an unknown key or bad value is invalid input."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--style expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value
    try:
        return SubtitleStyle.model_validate(values)
    except ValidationError as err:
        raise InvalidInput(f"invalid --style: {_first_error(err)}") from None


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{where}: {first['msg']}"


def _summary(result: EncodeResult) -> str:
    quality = f", SSIM {result.quality.ssim:.4f}, PSNR {result.quality.psnr:.2f} dB" if result.quality else ""
    return (
        f"{result.output_path}\n  {result.width}x{result.height} {result.video_codec}/"
        f"{result.audio_codec or 'no audio'}, {result.duration:.2f} s, {result.size / 1e6:.2f} MB, "
        f"{result.cues} cues burned, encoded in {result.encode_seconds:.1f} s{quality}"
    )


@app.command()
def burn(
    input_video: Annotated[Path, typer.Argument(metavar="INPUT", help="video file to process")],
    srt: Annotated[Path, typer.Option("--srt", help="SRT subtitle file (any common encoding)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output MP4 path")],
    resolution: Annotated[str, typer.Option(help="360p, 480p, 720p or 1080p (short side)")] = "720p",
    crf: Annotated[int, typer.Option(help="x264 CRF, 0-51 (lower is better quality)")] = DEFAULT_CRF,
    preset: Annotated[str, typer.Option(help="x264 preset")] = DEFAULT_PRESET,
    style: Annotated[
        list[str] | None, typer.Option("--style", help="subtitle style KEY=VALUE (repeatable)")
    ] = None,
    upscale: Annotated[bool, typer.Option(help="allow output larger than the source")] = False,
    quality: Annotated[bool, typer.Option(help="measure SSIM/PSNR against the source")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")] = False,
) -> None:
    """Burn subtitles into INPUT and compress it in one ffmpeg pass."""
    from pipeline.media.engine import burn as run_burn
    from pipeline.media.engine import read_subtitles

    try:
        options = EncodeOptions.model_validate(
            {
                "resolution": resolution,
                "crf": crf,
                "preset": preset,
                "style": parse_style(style or []),
                "upscale": upscale,
                "quality": quality,
            }
        )
    except ValidationError as err:
        _fail(f"invalid option {_first_error(err)}", EXIT_INVALID)
    except InvalidInput as err:
        _fail(str(err), EXIT_INVALID)

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]encoding"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with bar:
            task = bar.add_task("encode", total=100)
            result = run_burn(
                input_video,
                read_subtitles(srt),
                output,
                options,
                on_progress=lambda done: bar.update(task, completed=done),
            )
    except InvalidInput as err:
        _fail(str(err), EXIT_INVALID)
    except VidpError as err:
        _fail(str(err), EXIT_FAILED)
    except OSError as err:
        _fail(f"{err.strerror or err} ({err.filename or 'file'})", EXIT_FAILED)

    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        console.print(_summary(result), highlight=False)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="where to write the sample and result")] = Path(
        "out"
    ),
) -> None:
    """Burn the bundled sample SRT into a generated 10 s 1080p clip (720p output)."""
    from pipeline.media.engine import burn as run_burn
    from pipeline.samples import make_clip, sample_srt

    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "sample-source.mp4"
    console = Console(stderr=True)
    console.print(f"generating a 10 s 1080p sample clip: {source}")
    make_clip(source, width=1920, height=1080, seconds=10)
    try:
        result = run_burn(source, sample_srt(), out_dir / "sample-720p.mp4", EncodeOptions(quality=True))
    except VidpError as err:
        _fail(str(err), EXIT_FAILED)
    console.print("subtitled and compressed:", highlight=False)
    print(_summary(result))


if __name__ == "__main__":  # pragma: no cover
    app()
