"""The soak's faults that hit whatever runs at the time, by submission number.

Per-job faults (a scripted SRT server or callback receiver, a targeted kill, a StopExecution)
are part of each job's spec (``mix``); these are the others: the local ECS runner's injected task
failures (``EcsRunner.fail_next``: the next task to start gets it), DynamoDB throttling through the
local AWS (``LocalAws.dynamodb_throttle``), and a restart of the local AWS midway.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

GlobalFault = Literal["ffmpeg_kill", "task_kill_early", "throttle_window", "throttle_burst", "restart"]


@dataclass(frozen=True)
class ScheduledFault:
    """A fault injected just before submission number ``at`` (0-based)."""

    at: int
    kind: GlobalFault
    seconds: float = 0.0  # throttle_window: how long it lasts; the runner's kill: seconds after start
    fraction: float = 0.0  # throttle_window: the share of DynamoDB calls throttled
    count: int = 0  # throttle_burst: this many DynamoDB calls in a row


@dataclass(frozen=True)
class GlobalFaultRates:
    """Faults per submitted job (at least one of each from 10 jobs on)."""

    ffmpeg_kill: float = 0.03
    task_kill_early: float = 0.03
    throttle_window: float = 0.02
    throttle_burst: float = 0.02
    throttle_fraction: float = 0.3
    throttle_seconds: float = 8.0
    burst_calls: int = 6


def _count(rate: float, jobs: int) -> int:
    return max(1, round(rate * jobs)) if jobs >= 10 else round(rate * jobs)


def build_schedule(
    jobs: int, seed: int, *, restart: bool, rates: GlobalFaultRates | None = None
) -> list[ScheduledFault]:
    """The global faults of a run of ``jobs`` submissions, sorted by ``at``; ``restart`` puts a
    restart of the local AWS at the middle."""
    rates = rates or GlobalFaultRates()
    rng = random.Random(seed * 7919 + jobs)  # noqa: S311 - a reproducible test plan
    # Not in the first few submissions (the run is warming up) nor the last fifth (a runner fault
    # armed then might find no task left to start): somewhere something runs.
    spots = range(min(3, jobs - 1), max(min(3, jobs - 1) + 1, jobs * 4 // 5))
    faults = [
        ScheduledFault(rng.choice(spots), "ffmpeg_kill", seconds=0.05)
        for _ in range(_count(rates.ffmpeg_kill, jobs))
    ]
    faults += [
        ScheduledFault(rng.choice(spots), "task_kill_early", seconds=round(rng.uniform(0.3, 1.2), 2))
        for _ in range(_count(rates.task_kill_early, jobs))
    ]
    faults += [
        ScheduledFault(
            rng.choice(spots),
            "throttle_window",
            seconds=rates.throttle_seconds,
            fraction=rates.throttle_fraction,
        )
        for _ in range(_count(rates.throttle_window, jobs))
    ]
    faults += [
        ScheduledFault(rng.choice(spots), "throttle_burst", count=rates.burst_calls)
        for _ in range(_count(rates.throttle_burst, jobs))
    ]
    if restart:
        faults.append(ScheduledFault(jobs // 2, "restart"))
    return sorted(faults, key=lambda fault: (fault.at, fault.kind))
