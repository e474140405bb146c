"""Run the local ECS tasks as subprocesses, as Fargate runs the container.

moto's ECS keeps tasks RUNNING (manual progression, set by ``LocalAws``) and runs nothing. This
runner polls RunTask's results through the public ECS API, runs each task's container command
with the environment Fargate would give it (task definition + container overrides, plus
credentials and endpoint of the local AWS), then StopTask with the exit code in the reason.
A task stopped through the API gets SIGTERM, then SIGKILL after the container's stopTimeout,
as on Fargate. When a task's process ends, its whole process group is killed (a container's
end leaves nothing running), and a task dies with the local AWS that started it.

The local ECS API is unauthenticated, so it must not become a way to run commands: a task runs
only when its definition's command is exactly one of ``ENTRYPOINTS`` (the pipeline's task, and
the token task tests use), run with this interpreter (the image's ``python``). A task with a
command override, or an environment override other than the job's ``VIDP_*`` settings
(``LD_PRELOAD``, ``PYTHONPATH``, ``VIDP_FFMPEG`` ... would run other code), is stopped unrun
with a ``CannotStartContainerError`` reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.config import EngineSettings
from pipeline.deployment import CONTAINER_NAME, TASK_COMMAND
from pipeline.local.clients import Clients
from pipeline.processes import die_with_parent, processes
from pipeline.task import scratch

log = logging.getLogger(__name__)

Failure = Literal["exit", "kill", "kill-mid-encode", "kill-ffmpeg", "hang"]
"""An injected failure: exit 1 without running or reporting; SIGKILL the task soon after start;
SIGKILL the task (alone, as the kernel's OOM killer would) mid-encode; SIGKILL only the task's
ffmpeg mid-encode (the task reports it); never end."""

ENTRYPOINTS: frozenset[tuple[str, ...]] = frozenset(
    {TASK_COMMAND, ("python", "-m", "pipeline.local.token_task")}
)
"""The container commands the local AWS runs: the pipeline's task, and the token task (a stand-in
that only talks to Step Functions) for tests."""
_OVERRIDABLE_ENVIRONMENT = "VIDP_"
_DEPLOYMENT_ONLY = frozenset(f"VIDP_{name.upper()}" for name in EngineSettings.model_fields)
"""The engine's programs (``VIDP_FFMPEG`` ...) and limits: the task definition's, never a RunTask's."""
_REPO_ROOT = Path(__file__).resolve().parents[2]
_OUTPUT_LIMIT = 256 * 1024
_DEFAULT_STOP_TIMEOUT = 30.0
_OUTPUT_GRACE_SECONDS = 5.0
_CRASH = (sys.executable, "-c", "raise SystemExit(1)")
_HANG = (sys.executable, "-c", "import time\nwhile True: time.sleep(1)")


class TaskRefused(ValueError):
    """The task would run something else than its definition's own entrypoint."""


@dataclass
class TaskRun:
    """One task the runner ran: what an operator would find in the task's logs and StoppedReason."""

    task_arn: str
    argv: tuple[str, ...]
    injected: Failure | None = None
    returncode: int | None = None
    stopped_reason: str = ""
    stdout: str = ""
    stderr: str = ""
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    environment_names: tuple[str, ...] = ()
    pid: int | None = None  # of the task's process, once started
    stopped: bool = False  # StopTask has reached ECS: DescribeTasks shows the reason

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def container_argv(
    task: dict[str, Any],
    definition: dict[str, Any],
    container: str,
    entrypoints: frozenset[tuple[str, ...]] = ENTRYPOINTS,
) -> tuple[str, ...]:
    """The definition's own ``python -m ...`` as a local argv with this interpreter.

    Raises TaskRefused unless it is one of ``entrypoints`` exactly and the task overrides no command.
    """
    for override in _overrides(task, container):
        if override.get("command"):
            raise TaskRefused("command overrides are not run by the local AWS")
    spec = _container(definition["containerDefinitions"], container)
    command = (*spec.get("entryPoint", []), *spec.get("command", []))
    if command not in entrypoints:
        known = " or ".join(sorted(" ".join(entrypoint) for entrypoint in entrypoints))
        raise TaskRefused(f"the local AWS runs only {known}, not {' '.join(command)[:200]!r}")
    return (sys.executable, *command[1:])


def merged_environment(task: dict[str, Any], definition: dict[str, Any], container: str) -> dict[str, str]:
    """Task definition environment, then the container overrides: what the container sees.

    Raises TaskRefused for an override of anything but the job's ``VIDP_*`` settings.
    """
    env: dict[str, str] = {}
    for item in _container(definition["containerDefinitions"], container).get("environment", []):
        env[item["name"]] = item["value"]
    for override in _overrides(task, container):
        for item in override.get("environment", []):
            name = item["name"]
            if not name.startswith(_OVERRIDABLE_ENVIRONMENT) or name.upper() in _DEPLOYMENT_ONLY:
                raise TaskRefused(
                    f"environment override {name[:100]!r} is not run by the local AWS"
                    f" (only the job's {_OVERRIDABLE_ENVIRONMENT}* settings)"
                )
            env[item["name"]] = item["value"]
    return env


def _overrides(task: dict[str, Any], container: str) -> list[dict[str, Any]]:
    found = task.get("overrides", {}).get("containerOverrides", [])
    return [override for override in found if override.get("name") == container]


def _container(definitions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for definition in definitions:
        if definition["name"] == name:
            return definition
    raise TaskRefused(f"the task definition has no container {name!r}")


def stopped_reason(returncode: int) -> str:
    """ECS's StoppedReason for an essential container's exit, with the exit code or signal."""
    if returncode < 0:
        return f"Essential container in task exited (killed by {signal.Signals(-returncode).name})"
    return f"Essential container in task exited (exit code {returncode})"


class EcsRunner:
    """The background thread running our cluster's RUNNING tasks as local subprocesses."""

    def __init__(
        self,
        clients: Clients,
        *,
        poll_seconds: float = 0.05,
        max_concurrent: int | None = None,
        entrypoints: frozenset[tuple[str, ...]] = ENTRYPOINTS,
    ) -> None:
        self._clients = clients
        self._entrypoints = entrypoints
        self._cluster_arn = ""
        self._environment: dict[str, str] = {}
        self._poll_seconds = poll_seconds
        self._slots = threading.BoundedSemaphore(max_concurrent or max(1, os.cpu_count() or 1))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._runs: list[TaskRun] = []
        self._processes: dict[str, subprocess.Popen[str]] = {}
        self._workers: list[threading.Thread] = []
        self._failures: deque[tuple[Failure, float]] = deque()
        self._definitions: dict[str, dict[str, Any]] = {}
        self._terminating: dict[str, float] = {}  # task ARN -> when SIGKILL follows the SIGTERM

    # --- control --------------------------------------------------------------------------

    def start(self, *, cluster_arn: str, environment: Mapping[str, str]) -> None:
        """Run the tasks of ``cluster_arn``; ``environment`` reaches every container (the local
        AWS's endpoint and credentials), under the task definition's and overrides' values."""
        self._cluster_arn, self._environment = cluster_arn, dict(environment)
        # Tasks killed with an earlier local AWS (or with it) could not remove their scratch.
        if stale := scratch.remove_stale(None):
            log.info("local ECS runner: removed %d stale scratch folder(s)", len(stale))
        self._stopping.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="local-ecs-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop polling; SIGTERM running tasks (SIGKILL after ``timeout``) and wait for them."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            processes = list(self._processes.values())
            workers = list(self._workers)
        for process in processes:
            _terminate(process)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.poll() is None:
                _kill_group(process)

    def fail_next(self, count: int = 1, how: Failure = "exit", *, after_seconds: float = 0.1) -> None:
        """Make the next ``count`` tasks fail: ``exit`` 1 without running or reporting, ``kill``
        the real command with SIGKILL ``after_seconds`` after its start, ``kill-mid-encode``: the
        same ``after_seconds`` after its ffmpeg started, ``kill-ffmpeg``: SIGKILL its ffmpeg alone
        then, or ``hang``: never report, never end (only the heartbeat notices)."""
        with self._lock:
            self._failures.extend([(how, after_seconds)] * count)

    @property
    def runs(self) -> list[TaskRun]:
        """Tasks started so far, oldest first."""
        with self._lock:
            return list(self._runs)

    def wait_for_runs(self, count: int, timeout: float = 30.0) -> list[TaskRun]:
        """The first ``count`` runs once ended and stopped in ECS; TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs
            if len(runs) >= count and all(run.stopped for run in runs[:count]):
                return runs[:count]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} task run(s) not ended in {timeout:g} s: {runs}")
            time.sleep(0.02)

    # --- the poll loop -----------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._poll_once()
            except (ClientError, BotoCoreError, OSError) as err:
                if not self._stopping.is_set():
                    log.warning("local ECS runner: polling failed: %s", err)
            self._stopping.wait(self._poll_seconds)

    def _poll_once(self) -> None:
        ecs = self._clients.client("ecs")
        cluster = self._cluster_arn
        running = set(ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"])
        self._stop_tasks_stopped_through_the_api(running)
        new = sorted(running - self._seen)
        if not new:
            return
        self._seen.update(new)  # before anything can fail: a task never runs twice
        for task in ecs.describe_tasks(cluster=cluster, tasks=new)["tasks"]:
            self._launch(task)

    def _stop_tasks_stopped_through_the_api(self, running: set[str]) -> None:
        """SIGTERM a task StopTask stopped, SIGKILL it ``stopTimeout`` later (as ECS does)."""
        now = time.monotonic()
        with self._lock:
            gone = [(a, p) for a, p in self._processes.items() if a not in running and p.poll() is None]
        for arn, process in gone:
            if arn not in self._terminating:
                self._terminating[arn] = now + _DEFAULT_STOP_TIMEOUT
                _terminate(process)
            elif now > self._terminating[arn]:
                _kill_group(process)

    def _definition(self, arn: str) -> dict[str, Any]:
        if arn not in self._definitions:
            got = self._clients.client("ecs").describe_task_definition(taskDefinition=arn)
            self._definitions[arn] = got["taskDefinition"]
        return self._definitions[arn]

    def _launch(self, task: dict[str, Any]) -> None:
        arn = task["taskArn"]
        container = CONTAINER_NAME
        with self._lock:
            injected, kill_after = self._failures.popleft() if self._failures else (None, 0.0)
        try:
            definition = self._definition(task["taskDefinitionArn"])
            argv = container_argv(task, definition, container, self._entrypoints)
            env = merged_environment(task, definition, container)
        except (TaskRefused, KeyError, ClientError) as err:
            reason = f"CannotStartContainerError: {err}"
            refused = TaskRun(arn, (), stopped_reason=reason, ended_at=time.monotonic())
            with self._lock:
                self._runs.append(refused)
            self._stop_task(arn, reason)
            refused.stopped = True
            return
        if injected == "exit":
            argv = _CRASH
        elif injected == "hang":
            argv = _HANG
        run = TaskRun(arn, argv, injected=injected, environment_names=tuple(sorted(env)))
        worker = threading.Thread(
            target=self._run, args=(run, env, kill_after), name=f"task-{arn[-8:]}", daemon=True
        )
        with self._lock:
            self._runs.append(run)
            self._workers.append(worker)
        worker.start()

    def _process_environment(self, task_env: dict[str, str]) -> dict[str, str]:
        """A container's environment: nothing of this process's AWS_/VIDP_/MOTO_ settings leaks in."""
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDP_", "MOTO_", "TEST_SERVER"))
        }
        return {**base, **self._environment, **task_env, "PYTHONUNBUFFERED": "1"}

    def _run(self, run: TaskRun, task_env: dict[str, str], kill_after: float) -> None:
        with self._slots:  # Fargate capacity: tasks beyond it wait, RUNNING, like PROVISIONING ones
            if self._stopping.is_set():
                run.returncode, run.ended_at = -signal.SIGTERM, time.monotonic()
                self._finish(run)
                return
            run.started_at = time.monotonic()
            log.info("local ECS runner: task %s started", run.task_arn.rpartition("/")[2])
            try:
                process = subprocess.Popen(
                    run.argv,
                    env=self._process_environment(task_env),
                    cwd=_REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    # Its own group (a Ctrl-C in the terminal reaches us, not the task), killed
                    # whole at its end; and it dies with us, even SIGKILLed (this thread waits).
                    start_new_session=True,
                    preexec_fn=die_with_parent(),
                )
            except (OSError, subprocess.SubprocessError) as err:
                run.stderr, run.returncode, run.ended_at = str(err), 127, time.monotonic()
                self._finish(run)
                return
            run.pid = process.pid
            with self._lock:
                self._processes[run.task_arn] = process
            assert process.stdout is not None and process.stderr is not None  # noqa: S101 - PIPE
            stdout, stderr = _Tail(process.stdout), _Tail(process.stderr)
            _inject(run, process, kill_after)
            process.wait()
            _kill_group(process)  # the container has ended: nothing it started outlives it
            run.stdout, run.stderr = stdout.text(), stderr.text()
            run.returncode, run.ended_at = process.returncode, time.monotonic()
            with self._lock:
                self._processes.pop(run.task_arn, None)
        self._finish(run)

    def _finish(self, run: TaskRun) -> None:
        run.stopped_reason = stopped_reason(run.returncode if run.returncode is not None else -signal.SIGKILL)
        log.info("local ECS runner: task %s: %s", run.task_arn.rpartition("/")[2], run.stopped_reason)
        self._stop_task(run.task_arn, run.stopped_reason)
        run.stopped = True

    def _stop_task(self, arn: str, reason: str) -> None:
        try:
            self._clients.client("ecs").stop_task(cluster=self._cluster_arn, task=arn, reason=reason)
        except (ClientError, BotoCoreError, OSError) as err:
            if not self._stopping.is_set():
                log.warning("local ECS runner: StopTask %s failed: %s", arn, err)


class _Tail:
    """The last ``_OUTPUT_LIMIT`` characters of a task's stream, read on a thread (so a full pipe
    never blocks the task)."""

    def __init__(self, stream: IO[str]) -> None:
        self._text = ""
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for chunk in iter(lambda: stream.read(64 * 1024), ""):
            self._text = (self._text + chunk)[-_OUTPUT_LIMIT:]

    def text(self) -> str:
        self._reader.join(_OUTPUT_GRACE_SECONDS)
        return self._text


def _inject(run: TaskRun, process: subprocess.Popen[str], after_seconds: float) -> None:
    """Do the injected failure to the running task, if any (``exit``/``hang`` changed its argv)."""
    if run.injected == "kill":
        try:
            process.wait(after_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
    elif run.injected in {"kill-mid-encode", "kill-ffmpeg"}:
        encoders = _children(process, "ffmpeg")
        if not encoders:
            return  # the task ended before it encoded
        time.sleep(after_seconds)
        if run.injected == "kill-mid-encode":
            process.kill()  # the task alone, as the OOM killer does: its ffmpeg must die with it
            return
        for pid in encoders:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(process: subprocess.Popen[str], name: str, within: float = 60.0) -> list[int]:
    """The children of ``process`` called ``name``, once there is one; empty if it ends first."""
    deadline = time.monotonic() + within
    while process.poll() is None and time.monotonic() < deadline:
        if found := [pid for pid, ppid, comm in processes() if ppid == process.pid and comm == name]:
            return found
        time.sleep(0.02)
    return []


def _terminate(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL the task's process group (its id is the task's pid: it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
