"""`make bench`: three ways to make a 720p subtitled copy of one 1080p clip, timed and scored.

(a) reference: the service this product replaces. Pass 1 burns the subtitles at 1080p, pass 2
    scales to 720p; both libx264 preset medium CRF 23 + AAC. Its time covers both passes.
(b) vidp: our CLI as a user runs it (`vidp burn ... --json`): Python start, probes, the encode
    and the output check.
(c) bare ffmpeg: exactly the argv our engine runs for (b) (from `prepare`), nothing around it.

Then a sweep of presets x CRF through the engine's argv, with (a) on the same excerpt, to
choose the defaults. Results: bench/results/run-*.json (raw) and bench/results/latest.md.
Last, the hostile subtitles case (bench/hostile.py): bench/results/hostile-*.json and hostile.md.

    .venv/bin/python -m bench.run [--seconds 30] [--out bench/results] [--skip-sweep] [--repeat 1]
                                  [--skip-hostile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import hostile
from bench.report import markdown
from bench.source import make_source, make_srt
from pipeline.config import engine_settings
from pipeline.media.engine import prepare
from pipeline.media.probe import ffmpeg_input, probe
from pipeline.media.quality import measure_quality
from pipeline.models import DEFAULT_CRF, DEFAULT_PRESET, EncodeOptions

REFERENCE_ENCODE = ("-c:v", "libx264", "-preset", "medium", "-crf", "23", "-c:a", "aac", "-b:a", "128k")
SWEEP_PRESETS = ("veryfast", "faster", "fast", "medium")
SWEEP_CRFS = (21, 23, 25)
SWEEP_SECONDS = 10.0
DEFAULTS = EncodeOptions(resolution="720p")  # what `vidp burn --resolution 720p` asks for


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds, start of the first process to the end of the last
    cpu: float  # seconds, user + sys of every process in the tree
    peak_mib: float  # resident memory of the biggest single process in the tree


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_timed(argvs: list[list[str]], cwd: Path, log: Path) -> Timing:
    """Run commands one after another; add up wall and CPU time, keep the highest peak RSS.

    ``os.wait4`` on the direct child returns its rusage including every descendant it waited
    for (ffmpeg, ffprobe under the CLI), and ru_maxrss is the largest of them (KiB on Linux).
    """
    wall = cpu = peak = 0.0
    for argv in argvs:
        with log.open("ab") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            _, status, usage = os.wait4(proc.pid, 0)
            wall += time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-600:]
            raise SystemExit(f"bench: {Path(argv[0]).name} exited with {proc.returncode}:\n{tail}")
        cpu += usage.ru_utime + usage.ru_stime
        peak = max(peak, usage.ru_maxrss / 1024)
    return Timing(round(wall, 3), round(cpu, 3), round(peak, 1))


def run_reference(source: Path, srt: Path, out: Path, work: Path) -> Timing:
    """(a) burn at source resolution, then a second encode to scale: the reference service."""
    shutil.copyfile(srt, work / "subs.srt")  # a plain relative name in the filtergraph
    pass1 = work / "reference-pass1.mp4"
    ffmpeg = ["ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    burn = [*ffmpeg, "-i", ffmpeg_input(source), "-vf", "subtitles=subs.srt", *REFERENCE_ENCODE]
    scale = [*ffmpeg, "-i", ffmpeg_input(pass1), "-vf", "scale=-2:720", *REFERENCE_ENCODE]
    argvs = [[*burn, ffmpeg_input(pass1)], [*scale, ffmpeg_input(out)]]
    try:
        return run_timed(argvs, work, work / "reference.log")
    finally:
        pass1.unlink(missing_ok=True)


def run_cli(source: Path, srt: Path, out: Path, work: Path) -> Timing:
    """(b) the vidp CLI with its defaults, in its own process, as a user runs it."""
    vidp = Path(sys.executable).with_name("vidp")
    argv = [str(vidp), "burn", str(source.resolve()), "--srt", str(srt.resolve()), "--resolution", "720p"]
    argv += ["-o", str(out.resolve()), "--json"]
    return run_timed([argv], work, work / "cli.log")


def run_engine(source: Path, srt: Path, out: Path, work: Path, options: EncodeOptions = DEFAULTS) -> Timing:
    """(c) the engine's own ffmpeg argv, run bare in the job folder the engine prepared."""
    with prepare(source, srt.read_bytes(), out, options) as job:
        return run_timed([job.plan.argv], job.workdir, work / "engine.log")


VARIANTS = {
    "a": ("reference: 2 passes, medium CRF 23", run_reference),
    "b": (f"vidp burn (CLI, {DEFAULT_PRESET} CRF {DEFAULT_CRF})", run_cli),
    "c": ("bare ffmpeg, engine argv", run_engine),
}


def picture_ssim(output: Path, source: Path, width: int, height: int) -> float:
    """SSIM of the top three quarters of the frame, where no caption is drawn.

    Whole-frame SSIM counts the burned captions as a difference, and (a) and (b) draw them
    differently (margins, outline); this compares the encoded pictures alone.
    """
    crop = f"crop={width}:{height * 3 // 8 * 2}:0:0"
    graph = (
        f"[0:v]setsar=1,format=yuv420p,{crop}[out];"
        f"[1:v]scale={width}:{height}:flags=bicubic,setsar=1,format=yuv420p,{crop}[ref];[out][ref]ssim"
    )
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-i", ffmpeg_input(output), "-i", ffmpeg_input(source)]
    argv += ["-lavfi", graph, "-f", "null", "-"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
    found = re.search(r"SSIM .*All:([0-9.]+)", done.stderr)
    assert found, done.stderr[-300:]
    return round(float(found.group(1)), 5)


def score(output: Path, source: Path) -> dict[str, Any]:
    """Size, picture size, SSIM and PSNR against the source scaled to the output's size."""
    settings = engine_settings()
    made = probe(output)
    quality = measure_quality(output, source, made.video.width, made.video.height, settings)
    return {
        "size": made.size,
        "width": made.video.width,
        "height": made.video.height,
        "duration": made.duration,
        "ssim": quality.ssim,
        "psnr": quality.psnr,
        "ssim_picture": picture_ssim(output, source, made.video.width, made.video.height),
    }


def compare(source: Path, srt: Path, work: Path, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run (a), (b), (c) interleaved ``repeat`` times; medians of the timings, then scores."""
    runs: list[dict[str, Any]] = []
    for round_ in range(repeat):
        for key, (label, runner) in VARIANTS.items():
            say(f"round {round_ + 1}/{repeat}: ({key}) {label} ...")
            out = work / f"{key}.mp4"
            timing = runner(source, srt, out, work)
            runs.append({"variant": key, "round": round_ + 1, **asdict(timing), "size": out.stat().st_size})
            say(f"  {timing.wall:.1f} s wall, {timing.cpu:.1f} s CPU, {timing.peak_mib:.0f} MiB peak")
    summary: dict[str, Any] = {}
    for key, (label, _) in VARIANTS.items():
        mine = [run for run in runs if run["variant"] == key]
        say(f"scoring ({key}) ...")
        summary[key] = {
            "label": label,
            **{field: statistics.median(run[field] for run in mine) for field in ("wall", "cpu", "peak_mib")},
            **score(work / f"{key}.mp4", source),  # x264 is deterministic: every round's file is the same
        }
    return runs, summary


def verdicts(summary: dict[str, Any]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The ratios the targets are about, and PASS/FAIL for each target."""
    a, b, c = summary["a"], summary["b"], summary["c"]
    ratios = {
        "b_over_c_wall": round(b["wall"] / c["wall"], 3),
        "b_over_c_cpu": round(b["cpu"] / c["cpu"], 3),
        "a_over_b_wall": round(a["wall"] / b["wall"], 2),
        "a_over_b_cpu": round(a["cpu"] / b["cpu"], 2),
        "ssim_b_minus_a": round(b["ssim"] - a["ssim"], 5),
        "ssim_picture_b_minus_a": round(b["ssim_picture"] - a["ssim_picture"], 5),
        "size_b_over_a": round(b["size"] / a["size"], 3),
    }
    targets = [
        {
            "target": "(b) wall <= 1.03 x (c) wall",
            "measured": f"{ratios['b_over_c_wall']:.3f} x",
            "pass": ratios["b_over_c_wall"] <= 1.03,
        },
        {
            "target": "(b) at least 3x faster than (a), SSIM >= (a)'s, size <= (a)'s",
            "measured": f"{ratios['a_over_b_wall']:.2f}x faster, SSIM {b['ssim']:.4f} vs {a['ssim']:.4f}, "
            f"size {ratios['size_b_over_a']:.3f} x",
            "pass": ratios["a_over_b_wall"] >= 3 and b["ssim"] >= a["ssim"] and b["size"] <= a["size"],
        },
        {
            "target": "(b) peak memory <= 1 GiB",
            "measured": f"{b['peak_mib']:.0f} MiB",
            "pass": b["peak_mib"] <= 1024,
        },
    ]
    return ratios, targets


def sweep(cache: Path, work: Path, seconds: float) -> dict[str, Any]:
    """The engine's argv for each preset x CRF on an excerpt, and (a) on the same excerpt."""
    source, srt = make_source(cache, seconds), make_srt(cache, seconds)
    say(f"sweep on the first {seconds:g} s: reference (a) ...")
    out = work / "sweep.mp4"
    reference = {**asdict(run_reference(source, srt, out, work)), **score(out, source)}
    rows = []
    for preset in SWEEP_PRESETS:
        for crf in SWEEP_CRFS:
            say(f"sweep: {preset} CRF {crf} ...")
            options = EncodeOptions(resolution="720p", preset=preset, crf=crf)
            timing = run_engine(source, srt, out, work, options)
            rows.append({"preset": preset, "crf": crf, **asdict(timing), **score(out, source)})
    out.unlink(missing_ok=True)
    return {"seconds": seconds, "source": source.name, "reference": reference, "rows": rows}


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": models[0] if models else platform.processor(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "ffmpeg": ffmpeg.splitlines()[0].split(" Copyright")[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "engine_threads": engine_settings().threads,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the generated source (30)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the preset x CRF sweep")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of (a) (b) (c), medians reported (1)")
    parser.add_argument("--skip-hostile", action="store_true", help="skip the hostile subtitles case")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1:
        parser.error("--seconds must be > 0 and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now()
    cache = args.out / ".cache"
    record: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine()}
    say(f"source: {args.seconds:g} s 1080p30 (generated once, cached in {cache}) ...")
    source, srt = make_source(cache, args.seconds), make_srt(cache, args.seconds)
    record["source"] = {"path": str(source), "seconds": args.seconds, "size": source.stat().st_size}
    with prepare(source, srt.read_bytes(), Path("/OUTPUT.mp4"), DEFAULTS) as job:
        record["engine_argv"] = job.plan.argv  # what (c) runs, and (b) inside the CLI
    with tempfile.TemporaryDirectory(prefix="vidp-bench-") as tmp:
        work = Path(tmp)
        record["runs"], record["summary"] = compare(source, srt, work, args.repeat)
        record["ratios"], record["targets"] = verdicts(record["summary"])
        record["sweep"] = None if args.skip_sweep else sweep(cache, work, min(SWEEP_SECONDS, args.seconds))
    record["seconds_total"] = round((datetime.now() - started).total_seconds(), 1)

    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"run-{started:%Y%m%dT%H%M%S}.json"
    raw.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (args.out / "latest.md").write_text(markdown(record, raw.name), encoding="utf-8")
    say(f"wrote {raw} and {args.out / 'latest.md'} in {record['seconds_total']:.0f} s")
    for target in record["targets"]:
        say(f"{'PASS' if target['pass'] else 'FAIL'}  {target['target']}: {target['measured']}")
    if not args.skip_hostile:
        hostile.run(cache, args.out, args.repeat)  # bench/results/hostile.md
    return 0


if __name__ == "__main__":
    sys.exit(main())
