"""The task's entry point, ``python -m pipeline.task``: one job from the environment, one exit code.

The runtime here knows no job: it picks the variant ``VIDP_TASK_KIND`` names, reads its
configuration, runs it in a scratch folder with the reporting, and maps what it raised to an
exit code (0 / 3 / 1, see the package docstring), a JSON ``error`` line and one stderr line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config import EngineSettings
from pipeline.failures import (
    INTERNAL_ERROR,
    INVALID_CONFIG,
    REPORT_FAILED,
    InvalidInput,
    TaskStopped,
    VidpError,
)
from pipeline.task import files, whole_file
from pipeline.task.config import ConfigError, ReportSettings, read
from pipeline.task.reporting import (
    TOKEN_VARIABLE,
    ProgressLog,
    ProgressRecorder,
    Reporter,
    error_code,
    job_still_processing,
    log,
    report_failure,
)
from pipeline.task.variant import ConfigT, ResultT, Variant, Workspace

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 3
PROGRAM = "vidp-task"
KIND_VARIABLE = "VIDP_TASK_KIND"
DEFAULT_VARIANT = whole_file.VARIANT
VARIANTS: dict[str, Variant[Any, Any]] = {variant.kind: variant for variant in (whole_file.VARIANT,)}
"""Every job the task can run, by ``VIDP_TASK_KIND``: a new variant is a module and an entry here."""


def main() -> int:
    """Run one job from the environment; return the process exit code."""
    stop_on_signals()
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    reporter = Reporter(token) if token else None
    try:
        variant = choose_variant(os.environ.get(KIND_VARIABLE, ""))
        # Engine limits too: a bad VIDP_THREADS is a configuration error, found before any work.
        config, engine, report = read(variant.config), read(EngineSettings), read(ReportSettings)
    except ConfigError as err:
        message = f"invalid configuration: {err}"
        report_failure(reporter, InvalidInput.__name__, message)
        return fail(None, INVALID_CONFIG, message, EXIT_INVALID)
    return run_job(variant, config, engine, report, reporter)


def choose_variant(kind: str) -> Variant[Any, Any]:
    """The variant ``kind`` names; empty means the default (whole-file)."""
    kind = kind.strip()
    if not kind:
        return DEFAULT_VARIANT
    try:
        return VARIANTS[kind]
    except KeyError:
        # The value is not echoed, like any other configuration value.
        known = ", ".join(VARIANTS)
        raise ConfigError(f"{KIND_VARIABLE}: unknown task kind (known kinds: {known})") from None


def run_job(
    variant: Variant[ConfigT, ResultT],
    config: ConfigT,
    engine: EngineSettings,
    report: ReportSettings,
    reporter: Reporter | None,
) -> int:
    """Run the job, report how it ended (when Step Functions waits), and return the exit code."""
    if reporter is not None:
        reporter.job_id = config.job_id
    started = time.monotonic()
    log("start", config.job_id, kind=variant.kind, **config.locations(), reporting=reporter is not None)
    try:
        result = run_with_reporting(variant, config, engine, report, reporter)
    except InvalidInput as err:
        return failed(reporter, config.job_id, err, err.code, str(err), EXIT_INVALID)
    except VidpError as err:
        return failed(reporter, config.job_id, err, err.code, str(err), EXIT_FAILED)
    except Exception as err:
        traceback.print_exc()
        message = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        return failed(reporter, config.job_id, err, INTERNAL_ERROR, message, EXIT_FAILED)
    if reporter is not None:
        try:
            reporter.succeed(result)
        except (ClientError, BotoCoreError) as err:
            # The output is complete, but the state will time out and retry: say why.
            message = f"SendTaskSuccess failed: {error_code(err)}"
            return fail(config.job_id, REPORT_FAILED, message, EXIT_FAILED)
    log(
        "done",
        config.job_id,
        manifest_uri=str(config.manifest_location),
        seconds=round(time.monotonic() - started, 3),
    )
    return EXIT_OK


def run_with_reporting(
    variant: Variant[ConfigT, ResultT],
    config: ConfigT,
    engine: EngineSettings,
    report: ReportSettings,
    reporter: Reporter | None,
) -> ResultT:
    """``variant.run`` in a scratch folder, with heartbeats and progress records when Step Functions waits."""
    with contextlib.ExitStack() as stack:
        record = None
        if reporter is not None:
            stack.enter_context(reporter.heartbeats(report.heartbeat_seconds))
            if report.table_name and report.video_id:
                record = stack.enter_context(
                    ProgressRecorder(report.video_id, config.job_id, report.table_name)
                )
        # A task SIGKILLed earlier (out of memory) could not remove its scratch folder: do it now.
        if stale := files.remove_stale_scratch(config.work_dir):
            log("stale-scratch-removed", config.job_id, folders=[path.name for path in stale])
        # Entered last, so removed first, while the heartbeats still tell Step Functions we work.
        scratch = stack.enter_context(files.scratch_folder(config.work_dir))
        progress = ProgressLog(config.job_id, record)
        workspace = Workspace(scratch=scratch, engine=engine, on_progress=progress)
        if record is not None and report.table_name and report.video_id:
            video_id, table = report.video_id, report.table_name
            workspace = Workspace(
                scratch=scratch,
                engine=engine,
                on_progress=progress,
                still_ours=lambda: job_still_processing(video_id, config.job_id, table),
            )
        return variant.run(config, workspace)


def stop_on_signals() -> None:
    """Turn the first SIGTERM/SIGINT into TaskStopped, so every ``finally`` runs.

    The engine's runner kills ffmpeg in its ``finally``; the scratch folder is removed in its
    own. A second signal is ignored so it cannot interrupt that cleanup (ECS sends SIGKILL
    after the stop timeout anyway).
    """
    stopping = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            return
        stopping.set()
        raise TaskStopped(f"stopped by {signal.Signals(signum).name} before the job finished")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def failed(
    reporter: Reporter | None, job_id: str | None, err: BaseException, code: str, message: str, exit_code: int
) -> int:
    """Report the failure under the exception's class name (the Step Functions error), then ``fail``."""
    report_failure(reporter, type(err).__name__, message)
    return fail(job_id, code, message, exit_code)


def fail(job_id: str | None, code: str, message: str, exit_code: int) -> int:
    """Log the failure (JSON on stdout, one line on stderr) and return the exit code."""
    log("error", job_id, code=code, message=message, exit_code=exit_code)
    print(f"{PROGRAM}: error: {code}: {message}", file=sys.stderr, flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
