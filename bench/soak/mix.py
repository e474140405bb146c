"""What the soak submits: valid jobs with per-job faults, and the hostile inputs of issue 8.

``build_mix(jobs, seed)`` is deterministic: the same arguments give the same submissions, in the
same order, with the same faults, so a failing run can be repeated. Each submission says what
must become of it (``expect``), which the checks hold it to.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal[
    "valid",  # a good request, SRT in S3 or from the SRT server
    "duplicate",  # a good request started twice by name and once more under another name
    "non_object",  # issue 8 case 1: the execution input is not a JSON object
    "failure_key",  # case 2: a top-level "failure" that is a string or a list
    "large_input",  # case 3: an input near or over the 256 KB payload limit
    "deep_nesting",  # case 4: metadata nested 500 lists deep
    "foreign_font",  # case 5: style.font_file in another bucket
    "reupload",  # case 6: new content at the same incoming/ key (v1, then v2)
    "job_id_conflict",  # case 7: an existing job id with another request
    "stacked_cues",  # case 9: thousands of cues on screen at once
    "bad_sidecar",  # case 13: an upload whose sidecar is not JSON, invalid, or missing
    "bad_media",  # random bytes named .mp4
    "missing_video",  # a video key that does not exist
    "unsafe_url",  # an SRT URL at the instance metadata address
]
Expect = Literal[
    "saved",  # the job ends saved (unless every task attempt was faulted, or it was stopped)
    "failed",  # the job ends failed with an error code (one of error_codes, if given)
    "recorded",  # the job ends saved or failed
    "refused_or_failed",  # StartExecution refuses it, or the job ends failed
    "conflict",  # the execution fails; the job it collides with stays as it was
    "rejected",  # nothing starts, and the rejection is reported (a "VidP Upload Rejected" event)
]
CallbackExpect = Literal["one", "at_most_one", "none"]
CallbackFault = Literal["500", "timeout"]
ProcessFault = Literal["task_sigkill", "task_sigterm", "stop_execution"]
Clip = Literal["short", "long", "v2", "none"]

HOSTILE_VARIANTS: dict[Kind, tuple[str, ...]] = {
    "non_object": ("string", "list", "null", "number"),
    "failure_key": ("string", "list"),
    "large_input": ("just-under-256k",),
    "deep_nesting": ("500-lists",),
    "foreign_font": ("other-bucket",),
    "job_id_conflict": ("other-request",),
    "bad_media": ("random-bytes",),
    "missing_video": ("no-such-key",),
    "unsafe_url": ("metadata-address",),
    "bad_sidecar": ("not-json", "invalid-field", "missing"),
    "reupload": ("v1",),  # its v2 is a follow-up of v1, see Submission.follow_up
}
FULL_ONLY_VARIANTS: dict[Kind, tuple[str, ...]] = {
    "large_input": ("over-256k",),
    "stacked_cues": ("2000-at-once",),
}
FULL_SOAK_JOBS = 100  # from this many jobs on, the heavier hostile inputs are in the mix too
MAX_HOSTILE_SHARE = 0.6  # a tiny run keeps some valid jobs: the first hostile kinds only
MIN_VALID_FOR_FAULTS = 10  # from this many valid jobs on, each per-job fault happens at least once

FILENAMES = ("clip.mp4", "My clip +1.mp4", "été à Paris.mp4", "a=b;c[1].mp4", "%2B plus.mp4", "x'y\",z.mp4")


@dataclass(frozen=True)
class JobSpec:
    """One submission and what must become of it."""

    key: str  # j000, j001...: the callback path, S3 folder and metadata name it
    kind: Kind
    variant: str = ""
    expect: Expect = "saved"
    error_codes: tuple[str, ...] = ()
    callback: CallbackExpect = "one"
    srt_url: bool = False  # fetch the SRT from the scripted SRT server
    srt_failures: int = 0  # ... which answers 500 this many times first
    callback_faults: tuple[CallbackFault, ...] = ()  # what the receiver answers first
    process_fault: ProcessFault | None = None
    clip: Clip = "short"
    filename: str = "clip.mp4"
    target: str | None = None  # job_id_conflict: the key of the job whose id it reuses
    follow_up: str | None = None  # reupload v1: the key of its v2

    @property
    def has_callback_url(self) -> bool:
        return self.callback != "none"


@dataclass
class Mix:
    """The submissions in order; ``follow_ups`` are submitted when their v1 has ended."""

    jobs: list[JobSpec]
    follow_ups: dict[str, JobSpec] = field(default_factory=dict)

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self.jobs)

    def all(self) -> list[JobSpec]:
        return [*self.jobs, *self.follow_ups.values()]


@dataclass(frozen=True)
class JobFaultRates:
    """Shares of the valid jobs that get each per-job fault (at least one each from 10 valid jobs on)."""

    srt_500: float = 0.08
    callback_500: float = 0.08
    callback_timeout: float = 0.03
    task_sigkill: float = 0.03
    task_sigterm: float = 0.03
    stop_execution: float = 0.04
    duplicate: float = 0.05
    srt_url: float = 0.25


def _hostile_kinds(jobs: int) -> list[tuple[Kind, str]]:
    variants = dict(HOSTILE_VARIANTS)
    if jobs >= FULL_SOAK_JOBS:
        for kind, more in FULL_ONLY_VARIANTS.items():
            variants[kind] = variants.get(kind, ()) + more
    copies = max(1, jobs // FULL_SOAK_JOBS)
    return [(kind, variant) for kind, names in variants.items() for variant in names] * copies


def hostile(key: str, kind: Kind, variant: str) -> JobSpec:
    """The spec of one hostile input: what must become of it."""
    if kind == "non_object":
        return JobSpec(key, kind, variant, expect="failed", callback="none", clip="none")
    if kind == "failure_key":
        return JobSpec(key, kind, variant, expect="failed", callback="at_most_one")
    if kind in {"large_input", "deep_nesting"}:
        return JobSpec(key, kind, variant, expect="refused_or_failed", callback="none")
    if kind == "foreign_font":
        return JobSpec(key, kind, variant, expect="failed")
    if kind == "job_id_conflict":
        return JobSpec(key, kind, variant, expect="conflict", callback="none")
    if kind == "bad_media":
        return JobSpec(key, kind, variant, expect="failed", error_codes=("INVALID_MEDIA",), clip="none")
    if kind == "missing_video":
        return JobSpec(key, kind, variant, expect="failed", error_codes=("INVALID_INPUT",), clip="none")
    if kind == "unsafe_url":
        return JobSpec(key, kind, variant, expect="failed", error_codes=("UNSAFE_URL",))
    if kind == "bad_sidecar":
        return JobSpec(key, kind, variant, expect="rejected", callback="none")
    if kind == "reupload":
        return JobSpec(key, kind, variant, expect="saved", callback="none")
    if kind == "stacked_cues":
        return JobSpec(key, kind, variant, expect="recorded")
    raise ValueError(f"not a hostile kind: {kind}")


def _count(share: float, valid: int) -> int:
    """How many of ``valid`` jobs get a fault of this ``share``: at least one from 10 jobs on."""
    return max(1, round(share * valid)) if valid >= MIN_VALID_FOR_FAULTS else round(share * valid)


VALID: tuple[Kind, str] = ("valid", "")
CONFLICT: tuple[Kind, str] = ("job_id_conflict", "other-request")


def build_mix(jobs: int, seed: int, rates: JobFaultRates | None = None) -> Mix:
    """``jobs`` submissions: the hostile inputs (once each; one copy per 100 jobs), the rest
    valid jobs, some with one per-job fault. A conflict comes after the job it collides with."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    rates = rates or JobFaultRates()
    rng = random.Random(seed)  # noqa: S311 - a reproducible test plan, not cryptography
    kinds = _hostile_kinds(jobs)[: int(jobs * MAX_HOSTILE_SHARE)]
    order = [VALID] * (jobs - len(kinds)) + [kind for kind in kinds if kind != CONFLICT]
    rng.shuffle(order)
    for _ in range(kinds.count(CONFLICT)):
        if VALID in order:
            order.insert(rng.randint(order.index(VALID) + 1, len(order)), CONFLICT)
        else:
            order.append(VALID)  # nothing to collide with: one more valid job instead

    keys = [f"j{index:03d}" for index in range(len(order))]
    faults = _per_job_faults(
        [key for key, item in zip(keys, order, strict=True) if item == VALID], rates, rng
    )
    specs: list[JobSpec] = []
    follow_ups: dict[str, JobSpec] = {}
    for key, (kind, variant) in zip(keys, order, strict=True):
        if kind == "valid":
            specs.append(_valid(key, faults[key], rng))
            continue
        spec = hostile(key, kind, variant)
        if kind == "job_id_conflict":
            spec = replace(
                spec, target=rng.choice([s.key for s in specs if s.kind in {"valid", "duplicate"}])
            )
        if kind == "reupload":
            v2 = JobSpec(f"{key}v2", "reupload", "v2", expect="saved", callback="none", clip="v2")
            follow_ups[key] = v2
            spec = replace(spec, follow_up=v2.key)
        specs.append(spec)
    return Mix(jobs=specs, follow_ups=follow_ups)


@dataclass
class _Faults:
    process: ProcessFault | None = None
    duplicate: bool = False
    srt_500: int = 0
    callback: tuple[CallbackFault, ...] = ()
    srt_url: bool = False


def _per_job_faults(keys: list[str], rates: JobFaultRates, rng: random.Random) -> dict[str, _Faults]:
    """At most one process fault and one network fault per job, so each outcome can be explained."""
    faults = {key: _Faults() for key in keys}
    pool = rng.sample(keys, len(keys))
    process: tuple[ProcessFault, ...] = ("task_sigkill", "task_sigterm", "stop_execution")
    for name in process:
        chosen, pool = (
            pool[: _count(getattr(rates, name), len(keys))],
            pool[_count(getattr(rates, name), len(keys)) :],
        )
        for key in chosen:
            faults[key].process = name
    for key in pool[: _count(rates.duplicate, len(keys))]:
        faults[key].duplicate = True
    network = rng.sample(keys, len(keys))
    srt, network = network[: _count(rates.srt_500, len(keys))], network[_count(rates.srt_500, len(keys)) :]
    for key in srt:
        faults[key].srt_500 = rng.randint(1, 2)
    errors, network = (
        network[: _count(rates.callback_500, len(keys))],
        network[_count(rates.callback_500, len(keys)) :],
    )
    for key in errors:
        faults[key].callback = (("500",), ("500", "500"))[rng.randint(0, 1)]
    for key in network[: _count(rates.callback_timeout, len(keys))]:
        faults[key].callback = ("timeout",)
    for key in keys:
        faults[key].srt_url = faults[key].srt_500 > 0 or rng.random() < rates.srt_url
    return faults


def _valid(key: str, faults: _Faults, rng: random.Random) -> JobSpec:
    return JobSpec(
        key,
        "duplicate" if faults.duplicate else "valid",
        expect="saved",
        srt_url=faults.srt_url,
        srt_failures=faults.srt_500,
        callback_faults=faults.callback,
        process_fault=faults.process,
        # A process fault needs ffmpeg to run long enough to be hit mid-encode.
        clip="long" if faults.process else "short",
        filename=rng.choice(FILENAMES),
    )
