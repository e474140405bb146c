"""A local AWS that keeps what it would hand to the reconciler, and an SRT server route that keeps
a job in flight (FetchSubtitles waiting) for as long as a test needs."""

from __future__ import annotations

from typing import Any

from pipeline.local.aws import LocalAws
from tests.support.server import Writer

HOLD_SECONDS = 60.0  # longer than any test needs; closing the server ends it at once


class RecordingLocalAws(LocalAws):
    """The local AWS, keeping what it would hand to the reconciler instead of reconciling."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handed_over: list[dict[str, Any]] | None = None

    def _reconcile_lost(self, lost: list[dict[str, Any]]) -> None:
        self.handed_over = lost


def hold(writer: Writer, index: int) -> None:
    """An SRT server that never answers: FetchSubtitles waits, the job stays in flight."""
    writer.wait(HOLD_SECONDS)
