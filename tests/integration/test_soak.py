"""The soak test, reduced (``make soak`` runs the full one): 30 submissions through the local AWS
with one fault of each kind and every hostile input of issue 8, judged by each invariant.

One run for the module (about a minute and a half on two cores: tiny clips, 360p, ultrafast, a
12 s heartbeat); each test asserts one invariant, so a failure names what broke. The restart
midway is left to ``make soak`` (it needs ``LocalAws(data_dir=...)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak.checks import INVARIANTS
from bench.soak.run import SoakConfig, SoakResult, run_soak

pytestmark = pytest.mark.slow

JOBS = 30


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> SoakResult:
    config = SoakConfig(
        jobs=JOBS,
        seed=1,
        restart=False,
        heartbeat_seconds=12,
        in_flight=4,
        drain_seconds=240,
        settle_seconds=8,
        work_dir=Path(tmp_path_factory.mktemp("soak")),
    )
    return run_soak(config, say=lambda _: None)


def test_every_submission_was_made_and_every_kind_of_fault_hit_something(soak: SoakResult) -> None:
    assert all(job.submitted for job in soak.observation.jobs)
    assert len(soak.observation.jobs) == JOBS + len(soak.mix.follow_ups)
    applied = {fault.kind for fault in soak.faults if fault.applied}
    kinds = {"task_sigkill", "task_sigterm", "stop_execution", "ffmpeg_kill", "task_kill_early",
             "throttle_window", "throttle_burst"}  # fmt: skip
    assert applied >= kinds, "\n".join(str(fault) for fault in soak.faults)
    assert soak.throttle["throttled"] > 0
    retried = [job for job in soak.observation.jobs if any(not call.accepted for call in job.callbacks)]
    assert {fault for job in retried for fault in job.spec.callback_faults} == {"500", "timeout"}


@pytest.mark.parametrize("invariant", [name for name in INVARIANTS if name != "restart"])
def test_invariant(soak: SoakResult, invariant: str) -> None:
    found = [str(violation) for violation in soak.violations_of(invariant)]
    assert not found, "\n".join(found)
