"""bench/results/latest.md from one run's record (the same dict as the run's JSON file)."""

from __future__ import annotations

from typing import Any

from bench.source import CUE_EVERY_SECONDS
from pipeline.models import DEFAULT_CRF, DEFAULT_PRESET

SOURCE_DESCRIPTION = (
    "1080p30 Mandelbrot zoom (every pixel moves, fine detail along the set's edge) with a moving "
    "testsrc2 card and mild grain, x264 CRF 12; a 440 Hz AAC tone; a two-line cue every "
    f"{CUE_EVERY_SECONDS:g} s (accents, CJK, Hangul)"
)


def _mb(size: float) -> str:
    return f"{size / 1e6:.2f}"


def _main_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | wall s | CPU s | peak MiB | size MB | SSIM | PSNR dB | SSIM above captions |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, row in summary.items():
        lines.append(
            f"| ({key}) {row['label']} | {row['wall']:.1f} | {row['cpu']:.1f} | {row['peak_mib']:.0f} | "
            f"{_mb(row['size'])} | {row['ssim']:.4f} | {row['psnr']:.2f} | {row['ssim_picture']:.4f} |"
        )
    return lines


def _sweep_table(sweep: dict[str, Any]) -> list[str]:
    ref = sweep["reference"]
    lines = [
        f"## Sweep: engine argv by preset and CRF, first {sweep['seconds']:g} s",
        "",
        f"Reference (a) on the same {sweep['seconds']:g} s: {ref['wall']:.1f} s wall, "
        f"{ref['cpu']:.1f} s CPU, "
        f"{_mb(ref['size'])} MB, SSIM {ref['ssim']:.4f}, PSNR {ref['psnr']:.2f} dB, "
        f"SSIM above captions {ref['ssim_picture']:.4f}. "
        "\"beats (a)\": at least 3x faster, SSIM >= (a)'s and size <= (a)'s.",
        "",
        "| preset | CRF | wall s | CPU s | size MB | SSIM | PSNR dB | SSIM above captions "
        "| faster than (a) | size / (a) | beats (a) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for row in sweep["rows"]:
        speedup = ref["wall"] / row["wall"]
        size_ratio = row["size"] / ref["size"]
        beats = speedup >= 3 and row["ssim"] >= ref["ssim"] and size_ratio <= 1
        default = (row["preset"], row["crf"]) == (DEFAULT_PRESET, DEFAULT_CRF)
        name = row["preset"] + (" (default)" if default else "")
        lines.append(
            f"| {name} | {row['crf']} | {row['wall']:.1f} | {row['cpu']:.1f} | {_mb(row['size'])} | "
            f"{row['ssim']:.4f} | {row['psnr']:.2f} | {row['ssim_picture']:.4f} | {speedup:.2f}x | "
            f"{size_ratio:.3f} | {'yes' if beats else 'no'} |"
        )
    return lines


def _busy_warning(machine: dict[str, Any]) -> list[str]:
    load = machine["load_average_at_start"][0]
    if load <= 0.5 * machine["cpus_usable"]:
        return []
    return [
        f"- **Busy machine**: load average {load} at start on {machine['cpus_usable']} CPUs, so wall "
        "times are inflated and noisy; compare CPU times, or run again idle or with `--repeat 3`."
    ]


def markdown(record: dict[str, Any], raw_name: str) -> str:
    machine, source, summary = record["machine"], record["source"], record["summary"]
    ratios = record["ratios"]
    rounds = max(run["round"] for run in record["runs"])
    a, b = summary["a"], summary["b"]
    lines = [
        "# Benchmark: burn subtitles and compress to 720p",
        "",
        f"Run {record['started']} ({record['seconds_total']:.0f} s in all); raw figures in `{raw_name}`.",
        "",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), load average at start "
        f"{machine['load_average_at_start'][0]}; {machine['ffmpeg']}; Python {machine['python']}; "
        f"engine threads {machine['engine_threads']}.",
        f"- Source: {source['seconds']:g} s {SOURCE_DESCRIPTION}.",
        f"- Timings are the median of {rounds} interleaved round(s). CPU is user + sys of the whole "
        "process tree, peak is the largest single process's resident memory. SSIM/PSNR compare the "
        "output with the source scaled to the output size, so the burned captions count as a difference, "
        "and (a) draws them with libass defaults at 1080p, (b) with the engine's style at 720p; "
        '"SSIM above captions" compares the top three quarters of the frame only: the encoding alone.',
        *_busy_warning(machine),
        "",
        *_main_table(summary),
        "",
        f"- (b) / (c) wall: {ratios['b_over_c_wall']:.3f} (CPU: {ratios['b_over_c_cpu']:.3f})",
        f"- (a) / (b) wall: {ratios['a_over_b_wall']:.2f}x (CPU: {ratios['a_over_b_cpu']:.2f}x)",
        f"- SSIM (b) vs (a): {b['ssim']:.4f} vs {a['ssim']:.4f} ({ratios['ssim_b_minus_a']:+.4f}); "
        f"above the captions {b['ssim_picture']:.4f} vs {a['ssim_picture']:.4f} "
        f"({ratios['ssim_picture_b_minus_a']:+.4f})",
        f"- size (b) / (a): {ratios['size_b_over_a']:.3f}",
        "",
        "## Targets",
        "",
        *[
            f"- **{'PASS' if target['pass'] else 'FAIL'}** {target['target']}: {target['measured']}"
            for target in record["targets"]
        ],
        "",
    ]
    if record["sweep"]:
        lines += [*_sweep_table(record["sweep"]), ""]
    else:
        lines += ["Sweep skipped (`--skip-sweep`).", ""]
    return "\n".join(lines)
