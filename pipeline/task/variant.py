"""The seam between the task's runtime and its jobs.

A job variant (``whole_file`` today) is its configuration class and one ``run`` function. The
runtime (``__main__``) reads the configuration, makes the scratch folder, starts the reporting,
calls ``run`` with a ``Workspace``, and sends ``run``'s result model with SendTaskSuccess. A
variant raises the pipeline's typed errors; the runtime turns them into exit codes and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from pipeline.config import EngineSettings
from pipeline.media.runner import ProgressCallback
from pipeline.task.config import JobConfig

ConfigT = TypeVar("ConfigT", bound=JobConfig)
ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True)
class Workspace:
    """What the runtime gives a job."""

    scratch: Path
    """A private (0700) folder for every local file of the job (the engine's too); the runtime
    removes it however the job ends."""
    engine: EngineSettings
    on_progress: ProgressCallback
    """Encode progress (0-100): logged, and recorded on the job when Step Functions waits."""
    still_ours: Callable[[], bool] = field(default=lambda: True)
    """Whether the job is still this task's to finish (its record still ``processing`` it): asked
    after the outputs are written, since the job may have been stopped meanwhile."""


@dataclass(frozen=True)
class Variant(Generic[ConfigT, ResultT]):
    """One kind of job the task can run."""

    kind: str
    """Its ``VIDP_TASK_KIND``, e.g. ``whole-file``; logged by the ``start`` line."""
    config: type[ConfigT]
    """Read from the environment before any work; a validation error is an invalid configuration."""
    run: Callable[[ConfigT, Workspace], ResultT]
    """The job itself. Its result is the state's output under Step Functions."""
