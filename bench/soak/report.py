"""The soak's report: counts, job times, faults injected and the invariants, as Markdown and JSON.

Written to ``bench/results/soak-<time>.md`` and ``.json``, and copied to ``soak-latest.md``.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.soak.checks import INVARIANTS, needs_record, owner
from bench.soak.model import FAILED, SAVED
from bench.soak.run import SoakResult

_SHOWN_PER_INVARIANT = 12


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` 0.5 = median); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(result: SoakResult) -> dict[str, Any]:
    """The numbers of a run, JSON-ready."""
    obs = result.observation
    by_kind: dict[str, Counter[str]] = {}
    for job in obs.jobs:
        if not job.submitted:
            state = "not submitted"
        elif job.refused is not None:
            state = f"refused ({job.refused})"
        elif job.record is not None:
            state = job.record.status
        elif job.spec.expect == "rejected":
            state = "started nothing" if not job.executions else "started"
        elif job.spec.expect == "conflict":
            run = owner(job, obs)
            state = f"execution {run.status}" if run else "no execution"
        else:
            state = "no record"
        by_kind.setdefault(job.spec.kind, Counter())[state] += 1
    seconds_by_kind: dict[str, list[float]] = {}
    for job in obs.jobs:
        run = owner(job, obs)
        if run is not None and run.seconds is not None:
            seconds_by_kind.setdefault(job.spec.kind, []).append(run.seconds)
    recorded_jobs = [job for job in obs.jobs if needs_record(job)]
    valid_times = [
        seconds
        for job in obs.jobs
        if job.spec.kind in {"valid", "duplicate"} and job.record and job.record.status == SAVED
        for run in [owner(job, obs)]
        if run is not None and (seconds := run.seconds) is not None
    ]
    all_times = [run.seconds for run in obs.executions.values() if run.seconds is not None]
    faults: dict[str, Counter[str]] = {}
    for fault in result.faults:
        faults.setdefault(fault.kind, Counter())["applied" if fault.applied else "missed"] += 1
    per_invariant = Counter(violation.invariant for violation in result.violations)
    return {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "seconds": result.seconds,
        "config": {
            "jobs": result.config.jobs,
            "seed": result.config.seed,
            "restart": result.config.restart,
            "heartbeat_seconds": result.config.heartbeat_seconds,
            "in_flight": result.config.in_flight,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "submissions": len(obs.jobs),
        "jobs_to_record": len(recorded_jobs),
        "saved": sum(1 for job in recorded_jobs if job.record and job.record.status == SAVED),
        "failed": sum(1 for job in recorded_jobs if job.record and job.record.status == FAILED),
        "by_kind": {kind: dict(counts) for kind, counts in sorted(by_kind.items())},
        "seconds_by_kind": {
            kind: {"p50": _round(percentile(values, 0.5)), "max": _round(max(values))}
            for kind, values in sorted(seconds_by_kind.items())
        },
        "executions_lost_in_restart": obs.notes.get("executions_lost_in_restart", 0),
        "executions": dict(Counter(run.status for run in obs.executions.values())),
        "job_seconds": {
            "valid_saved": {
                "count": len(valid_times),
                "p50": _round(percentile(valid_times, 0.5)),
                "p95": _round(percentile(valid_times, 0.95)),
            },
            "all_executions": {
                "count": len(all_times),
                "p50": _round(percentile(all_times, 0.5)),
                "p95": _round(percentile(all_times, 0.95)),
            },
        },
        "faults": {kind: dict(counts) for kind, counts in sorted(faults.items())},
        "dynamodb_throttle": result.throttle,
        "restarts": obs.restarts,
        "invariants": {name: per_invariant.get(name, 0) for name in INVARIANTS},
        "violations": len(result.violations),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def markdown(result: SoakResult) -> str:
    data = summary(result)
    config, times = data["config"], data["job_seconds"]
    lines = [
        f"# Soak run {data['run_id']} ({data['started_at']})",
        "",
        f"{config['jobs']} submissions, seed {config['seed']}, restart midway: {config['restart']}, "
        f"BurnAndCompress heartbeat {config['heartbeat_seconds'] or 180} s, at most {config['in_flight']} "
        f"executions at once; {data['machine']['cpus']} CPUs; {data['seconds']:.0f} s in all.",
        "",
        "## Counts",
        "",
        f"- jobs that must end recorded: {data['jobs_to_record']}: "
        f"**{data['saved']} saved + {data['failed']} failed = {data['saved'] + data['failed']}**",
        f"- executions: {_counts(data['executions'])}"
        + (
            f" ({data['executions_lost_in_restart']} not listed after the restart: as last seen before it)"
            if data["executions_lost_in_restart"]
            else ""
        ),
        "",
        "| kind | submissions | outcome | seconds p50 | max |",
        "|---|---:|---|---:|---:|",
    ]
    for kind, counts in data["by_kind"].items():
        kind_times = data["seconds_by_kind"].get(kind, {})
        p50, slowest = kind_times.get("p50", ""), kind_times.get("max", "")
        lines.append(f"| {kind} | {sum(counts.values())} | {_counts(counts)} | {p50} | {slowest} |")
    lines += [
        "",
        "## Job time (execution start to end, seconds)",
        "",
        "| | count | p50 | p95 |",
        "|---|---:|---:|---:|",
        f"| valid jobs, saved | {times['valid_saved']['count']} | {times['valid_saved']['p50']} | "
        f"{times['valid_saved']['p95']} |",
        f"| every execution | {times['all_executions']['count']} | {times['all_executions']['p50']} | "
        f"{times['all_executions']['p95']} |",
        "",
        "## Faults injected",
        "",
        "| fault | applied | missed (nothing to hit) |",
        "|---|---:|---:|",
    ]
    for kind, counts in data["faults"].items():
        lines.append(f"| {kind} | {counts.get('applied', 0)} | {counts.get('missed', 0)} |")
    throttle = data["dynamodb_throttle"]
    lines += [
        f"| per-job: SRT server 500s | {_per_job(result, 'srt')} | |",
        f"| per-job: callback 500s | {_per_job(result, '500')} | |",
        f"| per-job: callback timeouts | {_per_job(result, 'timeout')} | |",
        "",
        f"DynamoDB: {throttle['throttled']} of {throttle['seen']} calls answered "
        "ProvisionedThroughputExceededException.",
        "",
        "## Invariants",
        "",
        "| invariant | violations |",
        "|---|---:|",
    ]
    for name, count in data["invariants"].items():
        lines.append(f"| {name} | {'ok' if count == 0 else count} |")
    for name in INVARIANTS:
        found = result.violations_of(name)
        if not found:
            continue
        lines += ["", f"### {name}: {len(found)}", ""]
        lines += [f"- {violation.subject}: {violation.message}" for violation in found[:_SHOWN_PER_INVARIANT]]
        if len(found) > _SHOWN_PER_INVARIANT:
            lines.append(f"- ... and {len(found) - _SHOWN_PER_INVARIANT} more (see the JSON report)")
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items(), key=lambda item: -item[1]))


def _per_job(result: SoakResult, what: str) -> int:
    specs = result.mix.all()
    if what == "srt":
        return sum(1 for spec in specs if spec.srt_failures)
    return sum(1 for spec in specs if what in spec.callback_faults)


def write_report(result: SoakResult, report_dir: Path) -> Path:
    """Write the Markdown and JSON reports; return the Markdown's path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = result.started_at.replace("-", "").replace(":", "").replace("+0000", "").split("+")[0]
    text = markdown(result)
    path = report_dir / f"soak-{stamp}.md"
    path.write_text(text, encoding="utf-8")
    (report_dir / "soak-latest.md").write_text(text, encoding="utf-8")
    detail = {
        **summary(result),
        "violation_list": [asdict(violation) for violation in result.violations],
        "fault_list": [asdict(fault) for fault in result.faults],
    }
    path.with_suffix(".json").write_text(json.dumps(detail, indent=2) + "\n", encoding="utf-8")
    return path
