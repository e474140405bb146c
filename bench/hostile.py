"""`make bench`, hostile subtitles: what the costliest SRT files the limits allow add to an encode.

The first 2 s of the bench source (1080p30) are burned at 360p and at 1080p by `vidp burn`, as a
user runs it, with an ordinary SRT ("plain") and with the worst files within the sanitizer's
limits (pipeline/media/screen_limits.py: cues and text on screen at once, text appearing per
second; pipeline/media/subtitles.py: 50,000 cues, 2,000 characters a cue). Random CJK text at
the largest font size costs libass the most: every character is a glyph it has not drawn yet.
The file those limits exist for, 50,000 cues at one instant, is timed to its refusal.

    .venv/bin/python -m bench.hostile [--out bench/results] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import srt

from bench.source import make_source, srt_text
from pipeline.config import engine_settings
from pipeline.media.screen_limits import MAX_CUES_ON_SCREEN, MAX_TEXT_ON_SCREEN, MAX_TEXT_PER_SECOND
from pipeline.media.subtitles import FONT_SIZES, MAX_LINE_CHARS

SECONDS = 2.0
FPS = 30
RESOLUTIONS = ("360p", "1080p")
# What "a few seconds over the plain encode" means here, for the 2 s clip, in CPU seconds.
MAX_EXTRA_CPU = 3.0
MAX_PEAK_MIB = 1024
MAX_REFUSAL_SECONDS = 5.0
MEDIANS = ("wall", "cpu", "peak_mib")
_CJK = [chr(code) for code in range(0x4E00, 0x9FA6)]
_BIGGEST = f"<font size={FONT_SIZES.stop - 1}>"


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + sys of the CLI and every process it waited for
    peak_mib: float  # resident memory of the biggest single process
    exit_code: int
    last_line: str  # of stderr: the refusal, for a refused file


def say(message: str) -> None:
    print(f"bench hostile: {message}", file=sys.stderr, flush=True)


Cue = tuple[int, int, str]  # start and end in milliseconds, text


def _cue(start_ms: int, end_ms: int, text: str) -> Cue:
    return start_ms, end_ms, text


def _compose(cues: list[Cue]) -> bytes:
    text: str = srt.compose(
        srt.Subtitle(i + 1, timedelta(milliseconds=start), timedelta(milliseconds=end), content)
        for i, (start, end, content) in enumerate(cues)
    )
    return text.encode("utf-8")


def _random_text(rng: random.Random, chars: int, *, line: int = MAX_LINE_CHARS) -> str:
    text = "".join(rng.choices(_CJK, k=chars))
    return "\n".join(text[i : i + line] for i in range(0, len(text), line))


def _frame_ms(frame: int) -> int:
    return frame * 1000 // FPS


def plain() -> bytes:
    """The bench's own SRT: a two-line cue every 1.5 s."""
    return srt_text(SECONDS).encode("utf-8")


def stacked_50000() -> bytes:
    """Refused: 50,000 one-word cues on screen at once (took 93 s and 462 MiB before the limits)."""
    return _compose([_cue(1000, 2000, f"c{i}") for i in range(50_000)])


def stacked_15() -> bytes:
    """The most cues on screen at once, ordinary text, for the whole clip."""
    return _compose([_cue(0, 2000, f"Speaker {i + 1}: an ordinary line") for i in range(MAX_CUES_ON_SCREEN)])


def new_screen_every_second(rng: random.Random) -> bytes:
    """The most cues and text on screen, all replaced every second: random CJK, biggest font."""
    chars = MAX_TEXT_ON_SCREEN // MAX_CUES_ON_SCREEN
    return _compose([
        _cue(second * 1000, (second + 1) * 1000, _BIGGEST + _random_text(rng, chars) + "</font>")
        for second in range(int(SECONDS)) for _ in range(MAX_CUES_ON_SCREEN)
    ])  # fmt: skip


def one_full_cue_every_second(rng: random.Random) -> bytes:
    """One cue of the most text allowed, replaced every second: random CJK, default size."""
    return _compose([
        _cue(second * 1000, (second + 1) * 1000, _random_text(rng, MAX_TEXT_ON_SCREEN))
        for second in range(int(SECONDS))
    ])  # fmt: skip


def new_cue_every_frame(rng: random.Random) -> bytes:
    """A cue a frame, as much text each as the per-second limit allows: random CJK, biggest font."""
    chars = MAX_TEXT_PER_SECOND // FPS
    frames = int(SECONDS * FPS)
    return _compose([
        _cue(_frame_ms(f), _frame_ms(f + 1), _BIGGEST + _random_text(rng, chars) + "</font>")
        for f in range(frames)
    ])  # fmt: skip


def many_lines_every_second(rng: random.Random) -> bytes:
    """The most cues on screen, each of one-character lines up to the text limit, every second."""
    lines = MAX_TEXT_ON_SCREEN // MAX_CUES_ON_SCREEN
    return _compose([
        _cue(second * 1000, (second + 1) * 1000, _BIGGEST + _random_text(rng, lines, line=1) + "</font>")
        for second in range(int(SECONDS)) for _ in range(MAX_CUES_ON_SCREEN)
    ])  # fmt: skip


def most_cues() -> bytes:
    """The most cues a file may hold (50,000), 1 ms each, back to back from the start."""
    return _compose([_cue(i, i + 1, "w") for i in range(engine_settings().max_cues)])


CASES: dict[str, Callable[[random.Random], bytes]] = {
    "plain": lambda _: plain(),
    "50,000 cues at one instant (refused)": lambda _: stacked_50000(),
    f"{MAX_CUES_ON_SCREEN} cues at once, whole clip": lambda _: stacked_15(),
    f"{MAX_CUES_ON_SCREEN} cues x {MAX_TEXT_ON_SCREEN // MAX_CUES_ON_SCREEN} CJK chars, new every second":
        new_screen_every_second,
    f"1 cue x {MAX_TEXT_ON_SCREEN} CJK chars, new every second": one_full_cue_every_second,
    f"1 cue x {MAX_TEXT_PER_SECOND // FPS} CJK chars, new every frame": new_cue_every_frame,
    f"{MAX_CUES_ON_SCREEN} cues of one-character lines, new every second": many_lines_every_second,
    "50,000 cues of 1 ms, back to back": lambda _: most_cues(),
}  # fmt: skip


def run_cli(video: Path, srt_file: Path, out: Path, resolution: str) -> Run:
    """`vidp burn` in its own process; a refusal (exit 2) is a result, not an error."""
    vidp = Path(sys.executable).with_name("vidp")
    argv = [str(vidp), "burn", str(video), "--srt", str(srt_file), "-o", str(out), "--resolution", resolution]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")  # the CLI writes little: no deadlock
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, not by Popen
    if code not in (0, 2):
        raise SystemExit(f"bench hostile: vidp burn exited with {code}:\n{stderr[-600:]}")
    lines = stderr.strip().splitlines()
    return Run(
        wall=round(wall, 3),
        cpu=round(usage.ru_utime + usage.ru_stime, 3),
        peak_mib=round(usage.ru_maxrss / 1024, 1),
        exit_code=code,
        last_line=lines[-1] if lines else "",
    )


def measure(video: Path, work: Path, repeat: int) -> list[dict[str, Any]]:
    """Every case at every resolution, ``repeat`` times interleaved; medians."""
    files: dict[str, Path] = {}
    for name, build in CASES.items():
        data = build(random.Random(name))  # noqa: S311 - the same text every run, not a secret
        assert len(data) <= engine_settings().max_subtitle_bytes, name
        files[name] = work / f"case-{len(files)}.srt"
        files[name].write_bytes(data)
    runs: dict[tuple[str, str], list[Run]] = {}
    for round_ in range(repeat):
        for resolution in RESOLUTIONS:
            for name, path in files.items():
                say(f"round {round_ + 1}/{repeat}, {resolution}: {name} ...")
                run = run_cli(video, path, work / "out.mp4", resolution)
                runs.setdefault((resolution, name), []).append(run)
                say(f"  {run.wall:.1f} s, {run.cpu:.1f} s CPU, {run.peak_mib:.0f} MiB, exit {run.exit_code}")
    rows = []
    for (resolution, name), done in runs.items():
        medians = {field: statistics.median(getattr(run, field) for run in done) for field in MEDIANS}
        rows.append({
            "resolution": resolution, "case": name, "srt_bytes": files[name].stat().st_size, **medians,
            "exit_code": done[0].exit_code, "refusal": done[0].last_line if done[0].exit_code else "",
        })  # fmt: skip
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    targets = []
    for resolution in RESOLUTIONS:
        mine = [row for row in rows if row["resolution"] == resolution]
        base = next(row for row in mine if row["case"] == "plain")
        allowed = [row for row in mine if row["exit_code"] == 0 and row is not base]
        worst = max(allowed, key=lambda row: row["cpu"])
        extra = worst["cpu"] - base["cpu"]
        targets.append({
            "target": f"{resolution}: worst allowed SRT <= plain + {MAX_EXTRA_CPU:g} s CPU",
            "measured": f"+{extra:.1f} s ({worst['case']}: {worst['cpu']:.1f} s vs {base['cpu']:.1f} s)",
            "pass": extra <= MAX_EXTRA_CPU,
        })  # fmt: skip
        peak = max(mine, key=lambda row: row["peak_mib"])
        targets.append({
            "target": f"{resolution}: peak memory <= {MAX_PEAK_MIB} MiB",
            "measured": f"{peak['peak_mib']:.0f} MiB ({peak['case']})",
            "pass": peak["peak_mib"] <= MAX_PEAK_MIB,
        })  # fmt: skip
        refused = [row for row in mine if row["exit_code"] == 2]
        said = "; ".join(f"{row['wall']:.1f} s: {row['refusal']}" for row in refused)
        targets.append({
            "target": f"{resolution}: 50,000 cues at one instant refused within {MAX_REFUSAL_SECONDS:g} s",
            "measured": said or "not refused",
            "pass": len(refused) == 1 and all(row["wall"] <= MAX_REFUSAL_SECONDS for row in refused),
        })  # fmt: skip
    return targets


def markdown(record: dict[str, Any], raw_name: str) -> str:
    machine = record["machine"]
    lines = [
        "# Benchmark: hostile subtitles",
        "",
        f"Run {record['started']} ({record['seconds_total']:.0f} s in all); raw figures in `{raw_name}`.",
        "",
        f"- Machine: {machine['nproc']} CPUs, load average at start {machine['load_average_at_start'][0]}; "
        f"{machine['ffmpeg']}.",
        f"- Clip: the first {SECONDS:g} s of the bench source (1080p{FPS}), burned by `vidp burn` with its "
        "defaults at each resolution. CPU is user + sys of the CLI and every process it waited for "
        "(ffprobe, ffmpeg); peak is the biggest single process. With a busy machine compare CPU, not wall.",
        f"- Limits: {MAX_CUES_ON_SCREEN} cues and {MAX_TEXT_ON_SCREEN} characters on screen at once, "
        f"{MAX_TEXT_PER_SECOND} characters appearing per second, 50,000 cues, 2,000 characters a cue.",
        "- Before the limits, 50,000 cues at one instant took 93 s of encoding and 462 MiB on a 2 s "
        "360p clip (0.35 s without subtitles).",
        "",
        "| resolution | SRT | bytes | wall s | CPU s | CPU over plain | peak MiB | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for resolution in RESOLUTIONS:
        mine = [row for row in record["rows"] if row["resolution"] == resolution]
        base = next(row for row in mine if row["case"] == "plain")
        for row in mine:
            lines.append(
                f"| {resolution} | {row['case']} | {row['srt_bytes']} | {row['wall']:.1f} | "
                f"{row['cpu']:.1f} | {row['cpu'] - base['cpu']:+.1f} | {row['peak_mib']:.0f} | "
                f"{row['refusal'] or 'burned'} |"
            )
    lines += ["", "## Targets", ""]
    for target in record["targets"]:
        lines.append(f"- **{'PASS' if target['pass'] else 'FAIL'}** {target['target']}: {target['measured']}")
    return "\n".join(lines) + "\n"


def run(cache: Path, out_dir: Path, repeat: int = 1) -> dict[str, Any]:
    """Measure, write bench/results/hostile-*.json and hostile.md, return the record."""
    from bench.run import machine  # the same machine description as the main bench

    started = datetime.now()
    say(f"source: the first {SECONDS:g} s of the bench source (cached in {cache}) ...")
    video = make_source(cache, SECONDS)
    record: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="vidp-bench-hostile-") as tmp:
        record["rows"] = measure(video.resolve(), Path(tmp), repeat)
    record["targets"] = verdicts(record["rows"])
    record["seconds_total"] = round((datetime.now() - started).total_seconds(), 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"hostile-{started:%Y%m%dT%H%M%S}.json"
    raw.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "hostile.md").write_text(markdown(record, raw.name), encoding="utf-8")
    say(f"wrote {raw} and {out_dir / 'hostile.md'}")
    for target in record["targets"]:
        say(f"{'PASS' if target['pass'] else 'FAIL'}  {target['target']}: {target['measured']}")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, medians reported (1)")
    args = parser.parse_args(argv)
    run(args.out / ".cache", args.out, max(1, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
