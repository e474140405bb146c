"""One soak run: submit the mix through the local AWS while injecting faults, then look.

``run_soak(SoakConfig(jobs=300))`` starts a ``LocalAws`` (the real state machine on moto, the
steps in-process, the ECS task as subprocesses with real ffmpeg), a scripted HTTP server on
127.0.0.1 for SRTs and callbacks, and a /proc watch; it submits ``mix.build_mix`` with at most
``in_flight`` executions running, fires ``schedule.build_schedule`` as it goes, waits for every
execution to end, reads back what a user would see and returns the ``Observation`` with its
violations (``checks``). Nothing of the product is patched: faults come through the local AWS's
own controls (``EcsRunner.fail_next``, ``LocalAws.dynamodb_throttle``, ECS StopTask, Step Functions
StopExecution), signals to the run's processes, and what the scripted servers answer.

Timing: the deployed BurnAndCompress waits 180 s for a heartbeat, so a task killed without a word
costs 3 minutes; ``heartbeat_seconds`` deploys the same definition with a shorter heartbeat (the
task then beats every fifth of it), as a faster deployment would.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bench.soak import media
from bench.soak.checks import Violation, check_all
from bench.soak.media import SRT, Media
from bench.soak.mix import JobFaultRates, JobSpec, Mix, build_mix
from bench.soak.model import (
    REJECTED_EVENT,
    TERMINAL,
    CallbackView,
    ExecutionView,
    JobView,
    Observation,
    ProbeResult,
    ProcessFinding,
    RecordView,
)
from bench.soak.procs import MARKER, Proc, ProcessTable, ProcessWatch, alive, kill, parent_of
from bench.soak.schedule import GlobalFaultRates, ScheduledFault, build_schedule
from pipeline.adapters import webhooks
from pipeline.adapters.jobs_table import from_item
from pipeline.local.aws import LocalAws, LocalAwsError
from pipeline.local.ecs_runner import Failure
from pipeline.logs import configure as configure_step_logs
from pipeline.models import JobRequest, video_id_for
from pipeline.starter import execution_input
from pipeline.timeline import build_timeline
from pipeline.uploads import SIDECAR_SUFFIX
from tests.support.server import LocalServer, Reply, Writer

OTHER_BUCKET = "vidp-soak-other"
UNSAFE_SRT_URL = "http://169.254.169.254/latest/meta-data/soak.srt"
CALLBACK_SILENCE_SECONDS = 11.0  # longer than Notify's 10 s read timeout: the sender gives up
WATCH_SECONDS = 180.0  # how long a targeted fault waits for its job to reach ffmpeg
FOLLOW_UP_SECONDS = 120.0  # a re-upload's v2 goes in once v1 ended, or after this long anyway
# An ffmpeg alive this long after its task died is an orphan. Nothing stops it today but the next
# progress line it writes to its dead parent (EPIPE, every 0.5 s: measured 0.25-0.36 s of life); a
# parent-death signal or the runner killing the task's processes ends it within milliseconds.
ORPHAN_SECONDS = 0.2
_RETRYABLE = (ClientError, BotoCoreError, LocalAwsError, OSError)


def _say(message: str) -> None:
    print(f"soak: {message}", flush=True)


@dataclass(frozen=True)
class SoakConfig:
    jobs: int = 300
    seed: int = 1
    restart: bool = True  # stop and start the local AWS on its data folder midway
    heartbeat_seconds: int | None = 30  # BurnAndCompress HeartbeatSeconds; None: as deployed (180)
    in_flight: int = 6  # executions running at once, at most (the local ECS runs 2 tasks at a time)
    drain_seconds: float = 1800.0  # after the last submission, how long executions may take to end
    settle_seconds: float = 30.0  # then, how long records may take to leave "processing"
    callback_base_delay: float = 0.2  # VIDP_CALLBACK_BASE_DELAY_SECONDS: the callback's backoff base
    work_dir: Path | None = None  # the run's folder (scratch, data, media, logs); default a temp dir
    keep_work_dir: bool = False
    job_rates: JobFaultRates = field(default_factory=JobFaultRates)
    global_rates: GlobalFaultRates = field(default_factory=GlobalFaultRates)


@dataclass
class FaultRecord:
    """One fault as it was injected: ``applied`` False when it found nothing to hit."""

    kind: str
    at: float  # seconds into the run
    job: str | None
    detail: str
    applied: bool = True


@dataclass
class SoakResult:
    config: SoakConfig
    run_id: str
    started_at: str
    seconds: float
    observation: Observation
    violations: list[Violation]
    faults: list[FaultRecord]
    throttle: dict[str, Any]
    mix: Mix

    def __repr__(self) -> str:
        return (
            f"SoakResult({self.run_id}: {len(self.mix.all())} submissions, {len(self.violations)} violations)"
        )

    def violations_of(self, invariant: str) -> list[Violation]:
        return [violation for violation in self.violations if violation.invariant == invariant]


def supports_data_dir() -> bool:
    """Whether this LocalAws keeps its state in a data folder (``LocalAws(data_dir=...)``)."""
    return "data_dir" in inspect.signature(LocalAws).parameters


def run_soak(config: SoakConfig, say: Callable[[str], None] = _say) -> SoakResult:
    """Run the soak described by ``config``; see the module docstring."""
    root = config.work_dir or Path(tempfile.mkdtemp(prefix="vidp-soak-"))
    try:
        return _Soak(config, root, say).run()
    finally:
        if config.work_dir is None and not config.keep_work_dir:
            shutil.rmtree(root, ignore_errors=True)


class _Soak:
    def __init__(self, config: SoakConfig, root: Path, say: Callable[[str], None]) -> None:
        self.config = config
        self.say = say
        self.run_id = "soak" + secrets.token_hex(4)
        self.root = root
        self.scratch = root / "scratch"
        self.data_dir = root / "aws-data"
        self.mix = build_mix(config.jobs, config.seed, config.job_rates)
        self.schedule = build_schedule(
            config.jobs, config.seed, restart=config.restart, rates=config.global_rates
        )
        self.views: dict[str, JobView] = {spec.key: JobView(spec) for spec in self.mix.all()}
        self.faults: list[FaultRecord] = []
        self.lock = threading.Lock()
        self.secrets: list[str] = []
        self.tokens: dict[str, str] = {}
        self.callbacks: dict[str, list[CallbackView]] = {}
        self.events: list[dict[str, Any]] = []
        self.pending: dict[str, JobSpec] = dict(self.mix.follow_ups)
        self.watchers: list[threading.Thread] = []
        self.throttle_stats: dict[str, int] = {"seen": 0, "throttled": 0}
        self.restart_error: str | None = None
        self.before_restart: dict[str, ExecutionView] = {}
        self.inputs_before_restart: dict[str, Any] = {}
        self.restarts = 0
        self.started = time.monotonic()
        self.aws: LocalAws | None = None
        self.server: LocalServer | None = None
        self.watch: ProcessWatch | None = None
        self.media: Media | None = None

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> SoakResult:
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.say(f"run {self.run_id}: {self.config.jobs} jobs, seed {self.config.seed}, folder {self.root}")
        self.media = Media.make(self.root / "media")
        with (
            _quiet_logs(self.root / "steps.log"),
            _environment({"VIDP_CALLBACK_BASE_DELAY_SECONDS": f"{self.config.callback_base_delay:g}"}),
            LocalServer() as server,
            ProcessWatch(self.run_id, orphan_seconds=ORPHAN_SECONDS) as watch,
        ):
            self.server, self.watch = server, watch
            self._start_aws()
            try:
                self._upload_media()
                probes = self._probes()
                self._submit_all()
                self._drain()
                self._settle()
                observation = self._observe()
            finally:
                self._retire_aws()
            observation.probes = probes
            observation.processes = self._process_findings(watch)
        observation.scratch = sorted(str(path) for path in self.scratch.glob("vidp-task-*"))
        observation.restart_requested = self.config.restart
        observation.restart_error = self.restart_error
        observation.restarts = self.restarts
        violations = check_all(observation)
        return SoakResult(
            config=self.config,
            run_id=self.run_id,
            started_at=started_at,
            seconds=round(time.monotonic() - self.started, 1),
            observation=observation,
            violations=violations,
            faults=self.faults,
            throttle=self.throttle_stats,
            mix=self.mix,
        )

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    def _fault(self, kind: str, job: str | None, detail: str, applied: bool = True) -> None:
        with self.lock:
            self.faults.append(FaultRecord(kind, self._elapsed(), job, detail, applied))

    @property
    def local(self) -> LocalAws:
        if self.aws is None:
            raise LocalAwsError("the local AWS is not running")
        return self.aws

    # --- the local AWS ----------------------------------------------------------------------------

    def _start_aws(self) -> None:
        environment = {MARKER: self.run_id, "VIDP_WORK_DIR": str(self.scratch)}
        if self.config.heartbeat_seconds is not None:
            environment["VIDP_HEARTBEAT_SECONDS"] = f"{max(1.0, self.config.heartbeat_seconds / 5):g}"
        # As many tasks run as executions may: Fargate gives each task its own capacity, and a task
        # waiting for a local slot sends no heartbeat.
        options: dict[str, Any] = {
            "allow_loopback": True,
            "task_environment": environment,
            "max_concurrent_tasks": self.config.in_flight,
            # A video whose sidecar never comes is rejected after this wait (5 min by default).
            "sidecar_wait_seconds": 3,
        }
        if self.config.restart and supports_data_dir():
            options["data_dir"] = self.data_dir
        aws = LocalAws(**options)
        # Known before start: a restarted local AWS reconciles (and calls back) as it starts.
        self.secrets.append(aws.webhook_secret)
        aws.start()
        if aws.webhook_secret not in self.secrets:
            self.secrets.append(aws.webhook_secret)
        self.aws = aws
        if self.config.heartbeat_seconds is not None:
            deploy_heartbeat(aws, self.config.heartbeat_seconds)

    def _retire_aws(self, *, restarting: bool = False) -> None:
        """Collect what only this LocalAws knows (task runs, events, throttle counts), then stop it.

        Before a restart, also every execution as it stands: a restarted local AWS may no longer
        list them (their histories are kept elsewhere), and the checks still need them.
        """
        aws, self.aws = self.aws, None
        if aws is None:
            return
        if restarting:
            with contextlib.suppress(*_RETRYABLE):
                executions, inputs = _executions(aws)
                self.before_restart.update(executions)
                self.inputs_before_restart.update(inputs)
        with contextlib.suppress(*_RETRYABLE):
            self._drain_events(aws)
        with contextlib.suppress(*_RETRYABLE):
            self._attribute_task_faults(aws)
        stats = aws.dynamodb_throttle.stats.as_json()
        self.throttle_stats["seen"] += stats["seen"]
        self.throttle_stats["throttled"] += stats["throttled"]
        # Stopping reconciles the executions it stops (events put on this instance's bus): keep
        # reading them until the server is gone.
        stopped = threading.Event()
        reader = threading.Thread(target=self._read_events_until, args=(aws, stopped), daemon=True)
        reader.start()
        try:
            aws.stop()
        finally:
            stopped.set()
            reader.join(timeout=10)

    def _read_events_until(self, aws: LocalAws, stopped: threading.Event) -> None:
        while not stopped.is_set():
            with contextlib.suppress(*_RETRYABLE):  # the server is going away
                self._drain_events(aws)
            stopped.wait(0.1)

    def _restart(self) -> None:
        if not supports_data_dir():
            self.restart_error = (
                "LocalAws has no data_dir: the local AWS cannot be restarted on its data, so the restart "
                "midway was not injected"
            )
            self._fault("restart", None, "not supported by this LocalAws", applied=False)
            return
        self.say("restarting the local AWS on its data folder")
        self._retire_aws(restarting=True)
        self._start_aws()
        self.restarts += 1
        self._fault("restart", None, f"stopped and started on {self.data_dir}")

    def _attribute_task_faults(self, aws: LocalAws) -> None:
        """Which job each injected task failure hit (the runner gives it to the next task)."""
        if aws.ecs_runner is None:
            return
        injected = [run for run in aws.ecs_runner.runs if run.injected is not None]
        by_job = {view.job_id: view for view in self.views.values() if view.job_id}
        for task_arn, job_id in _task_jobs(aws, [run.task_arn for run in injected]).items():
            run = next(run for run in injected if run.task_arn == task_arn)
            view = by_job.get(job_id)
            with self.lock:
                if view is not None:
                    view.faulted_attempts += 1
                for record in self.faults:
                    if record.kind == _RUNNER_FAULTS[run.injected or ""] and not record.applied:
                        record.job, record.applied = (view.spec.key if view else job_id), True
                        break

    # --- inputs --------------------------------------------------------------------------------

    def _upload_media(self) -> None:
        assert self.media is not None
        s3 = self.local.client("s3")
        bucket = self.local.bucket
        for name, path in (("short.mp4", self.media.short.path), ("long.mp4", self.media.long.path)):
            s3.upload_file(str(path), bucket, self._shared(name))
        s3.put_object(Bucket=bucket, Key=self._shared("subs.srt"), Body=SRT)
        s3.put_object(Bucket=bucket, Key=self._shared("stacked.srt"), Body=self.media.stacked_srt)
        with contextlib.suppress(ClientError):  # kept by a restarted local AWS
            s3.create_bucket(Bucket=OTHER_BUCKET)
        s3.upload_file(str(media.FONT), OTHER_BUCKET, "fonts/DejaVuSans.ttf")

    def _shared(self, name: str) -> str:
        return f"uploads/{self.run_id}/media/{name}"

    def _uri(self, key: str, bucket: str | None = None) -> str:
        return f"s3://{bucket or self.local.bucket}/{key}"

    def _copy(self, source: str, key: str) -> str:
        bucket = self.local.bucket
        self.local.client("s3").copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": source}
        )
        return self._uri(key)

    def _video(self, spec: JobSpec) -> str:
        folder = f"uploads/{self.run_id}/{spec.key}"
        if spec.kind == "bad_media":
            assert self.media is not None
            self.local.client("s3").upload_file(
                str(self.media.not_video), self.local.bucket, f"{folder}/random.mp4"
            )
            return self._uri(f"{folder}/random.mp4")
        if spec.kind == "missing_video":
            return self._uri(f"{folder}/missing.mp4")
        return self._copy(
            self._shared("long.mp4" if spec.clip == "long" else "short.mp4"), f"{folder}/{spec.filename}"
        )

    def _subtitles(self, spec: JobSpec) -> dict[str, str]:
        if spec.kind == "unsafe_url":
            return {"url": UNSAFE_SRT_URL}
        if spec.kind == "stacked_cues":
            return {
                "s3_uri": self._copy(
                    self._shared("stacked.srt"), f"uploads/{self.run_id}/{spec.key}/stacked.srt"
                )
            }
        if spec.srt_url:
            assert self.server is not None
            failures = [Reply(500, b"soak: injected failure")] * spec.srt_failures
            return {"url": self.server.route(f"/srt/{spec.key}.srt", *failures, Reply(200, SRT))}
        return {"s3_uri": self._copy(self._shared("subs.srt"), f"uploads/{self.run_id}/{spec.key}/subs.srt")}

    def _callback_url(self, spec: JobSpec) -> str:
        assert self.server is not None
        token = f"tok{secrets.token_hex(8)}"
        self.tokens[spec.key] = token
        return self.server.route(f"/cb/{spec.key}", self._callback_answer(spec)) + f"?token={token}"

    def _callback_answer(self, spec: JobSpec) -> Callable[[Writer, int], None]:
        faults = spec.callback_faults

        def answer(writer: Writer, index: int) -> None:
            fault = faults[index] if index < len(faults) else None
            self._record_callback(spec.key, index, writer.request.headers, writer.request.body, fault is None)
            if fault == "500":
                writer.reply(500, b"soak: injected failure")
            elif fault == "timeout":
                writer.wait(CALLBACK_SILENCE_SECONDS)  # no answer: the sender's read timeout fires
            else:
                writer.reply(200, b"ok")

        return answer

    def _record_callback(
        self, key: str, index: int, headers: dict[str, str], body: bytes, accepted: bool
    ) -> None:
        # Verified on arrival: a Standard Webhooks timestamp is only valid for 5 minutes.
        payload: dict[str, Any] | None = None
        for secret in list(self.secrets):
            with contextlib.suppress(Exception):
                payload = webhooks.verify(secret, headers, body)
                break
        if payload is None:
            with contextlib.suppress(ValueError):
                loaded = json.loads(body)
                payload = loaded if isinstance(loaded, dict) else None
            verified = False
        else:
            verified = True
        view = CallbackView(
            index=index,
            accepted=accepted,
            webhook_id=headers.get("webhook-id"),
            outcome=str(payload.get("status")) if payload else None,
            verified=verified,
        )
        with self.lock:
            self.callbacks.setdefault(key, []).append(view)

    def _fields(self, spec: JobSpec) -> dict[str, Any]:
        """A request for ``spec``: its own video and SRT, tiny encode settings, its callback."""
        fields: dict[str, Any] = {
            "video": {"s3_uri": self._video(spec)},
            "subtitles": self._subtitles(spec),
            "resolution": "360p",
            "preset": "ultrafast",
            "crf": 32,
            "task_id": spec.key,
            "metadata": {"soak": self.run_id, "job": spec.key},
        }
        if spec.kind == "foreign_font":
            fields["style"] = {"font_file": self._uri("fonts/DejaVuSans.ttf", OTHER_BUCKET)}
        if spec.has_callback_url:
            fields["callback_url"] = self._callback_url(spec)
        return fields

    # --- submitting ------------------------------------------------------------------------------

    def _submit_all(self) -> None:
        faults = list(self.schedule)
        for index, spec in enumerate(self.mix.jobs):
            while faults and faults[0].at <= index:
                self._fire(faults.pop(0))
            self._wait_for_room()
            try:
                self._submit(spec)
            except _RETRYABLE as err:
                self.say(f"{spec.key} ({spec.kind}): could not be submitted: {err}")
            if index % 20 == 19:
                self.say(f"{index + 1}/{len(self.mix.jobs)} submitted ({self._elapsed():.0f} s)")
        for fault in faults:
            self._fire(fault)

    def _wait_for_room(self) -> None:
        while True:
            self._pump()
            with contextlib.suppress(*_RETRYABLE):
                if self._running() < self.config.in_flight:
                    return
            time.sleep(0.25)

    def _running(self) -> int:
        return len(_list_executions(self.local, status="RUNNING"))

    def _submit(self, spec: JobSpec) -> None:
        view = self.views[spec.key]
        kind = spec.kind
        if kind in {
            "valid",
            "duplicate",
            "foreign_font",
            "bad_media",
            "missing_video",
            "unsafe_url",
            "stacked_cues",
        }:
            request = JobRequest.model_validate(self._fields(spec))
            view.job_id = request.resolved_job_id()
            view.executions.append(self.local.start_job(request))
            if kind == "duplicate":
                again = self.local.start_job(request)  # the same name and input: the same execution
                if again not in view.executions:
                    view.executions.append(again)
                # Under another name, as a second caller would: the job's own guard must hold.
                self._start_raw(
                    view, execution_input(request), f"{self.run_id}-{spec.key}-again", first=False
                )
        elif kind == "non_object":
            self._start_raw(view, media.non_object(spec.variant))
        elif kind == "failure_key":
            self._start_raw(view, media.with_failure_key(self._fields(spec), spec.variant))
        elif kind == "large_input":
            self._start_raw(view, media.large(self._fields(spec), spec.variant))
        elif kind == "deep_nesting":
            self._start_raw(view, media.deep(self._fields(spec)))
        elif kind == "job_id_conflict":
            self._submit_conflict(spec, view)
        else:
            self._upload(spec, view)
        view.submitted = True
        if spec.process_fault is not None:
            watcher = threading.Thread(target=self._process_fault, args=(spec, view), daemon=True)
            self.watchers.append(watcher)
            watcher.start()

    def _start_raw(self, view: JobView, payload: Any, name: str | None = None, *, first: bool = True) -> None:
        """StartExecution with this input as it is (boto3, as any caller could); ``first``: the
        submission itself, whose refusal is its outcome (a duplicate's refusal is only noted)."""
        try:
            started = self.local.client("stepfunctions").start_execution(
                stateMachineArn=self.local.state_machine_arn,
                name=name or f"{self.run_id}-{view.spec.key}",
                input=json.dumps(payload),
            )
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", "ClientError"))
            if first:
                view.refused = code
            else:
                self.say(f"{view.spec.key}: the second start under another name was refused: {code}")
            return
        view.executions.append(str(started["executionArn"]))

    def _submit_conflict(self, spec: JobSpec, view: JobView) -> None:
        target = self.views[spec.target] if spec.target else None
        if target is None or target.job_id is None:
            raise LocalAwsError(f"{spec.key}: no job to collide with")
        view.target_executions = list(target.executions)
        payload = {**self._fields(spec), "job_id": target.job_id}
        self._start_raw(view, payload)

    def _upload(self, spec: JobSpec, view: JobView) -> None:
        """An upload under incoming/: the sidecar first (if any), then the video."""
        assert self.media is not None
        s3, bucket = self.local.client("s3"), self.local.bucket
        folder = spec.key.removesuffix("v2")
        key = f"incoming/{self.run_id}/{folder}/clip.mp4"
        view.video_uri = self._uri(key)
        subtitles = {
            "s3_uri": self._copy(self._shared("subs.srt"), f"uploads/{self.run_id}/{folder}/subs.srt")
        }
        sidecar: bytes | None = None
        if spec.variant == "not-json":
            sidecar = b"{not json"
        elif spec.variant == "invalid-field":
            sidecar = json.dumps({"subtitles": subtitles, "resolution": "9000p"}).encode()
        elif spec.variant == "v1":
            request = {"subtitles": subtitles, "resolution": "360p", "preset": "ultrafast", "crf": 32,
                       "metadata": {"soak": self.run_id, "job": folder}}  # fmt: skip
            sidecar = json.dumps(request).encode()
        if sidecar is not None:
            s3.put_object(Bucket=bucket, Key=key + SIDECAR_SUFFIX, Body=sidecar)
        clip = self.media.v2 if spec.variant == "v2" else self.media.short
        s3.upload_file(str(clip.path), bucket, key)
        if spec.kind == "reupload":
            view.expected_duration = clip.seconds
        view.upload_started = time.monotonic()

    # --- faults --------------------------------------------------------------------------------

    def _fire(self, fault: ScheduledFault) -> None:
        try:
            self._inject(fault)
        except _RETRYABLE as err:
            self._fault(fault.kind, None, f"could not be injected: {err}", applied=False)

    def _inject(self, fault: ScheduledFault) -> None:
        aws = self.local
        if fault.kind == "restart":
            self._restart()
            return
        if fault.kind in {"ffmpeg_kill", "task_kill_early"}:
            assert aws.ecs_runner is not None
            how: Failure = "kill-ffmpeg" if fault.kind == "ffmpeg_kill" else "kill"
            aws.ecs_runner.fail_next(1, how, after_seconds=fault.seconds)
            # Applied once a task took it (``_attribute_task_faults``): the next task to start does.
            self._fault(
                fault.kind, None, f"EcsRunner.fail_next({how!r}, after_seconds={fault.seconds:g})", False
            )
        elif fault.kind == "throttle_window":
            aws.dynamodb_throttle.throttle(fraction=fault.fraction)
            threading.Timer(fault.seconds, self._end_throttle).start()
            self._fault(fault.kind, None, f"{fault.fraction:.0%} of DynamoDB calls for {fault.seconds:g} s")
        elif fault.kind == "throttle_burst":
            aws.dynamodb_throttle.throttle(count=fault.count)
            self._fault(fault.kind, None, f"the next {fault.count} DynamoDB calls")

    def _end_throttle(self) -> None:
        with contextlib.suppress(LocalAwsError):
            self.local.dynamodb_throttle.clear()

    def _process_fault(self, spec: JobSpec, view: JobView) -> None:
        assert self.watch is not None
        proc = self._wait_for_encode(view)
        try:
            if spec.process_fault == "stop_execution":
                self._stop_execution(spec, view, mid_encode=proc is not None)
            elif proc is None:
                self._fault(spec.process_fault or "", spec.key, "the job never reached ffmpeg", applied=False)
            elif spec.process_fault == "task_sigkill":
                self._kill_task(spec, view, proc.pid, proc.ppid)
            elif spec.process_fault == "task_sigterm":
                self._stop_task(spec, view)
        except _RETRYABLE as err:
            self._fault(spec.process_fault or "", spec.key, f"could not be injected: {err}", applied=False)

    def _wait_for_encode(self, view: JobView) -> Proc | None:
        """The job's ffmpeg once it runs; None if its execution ends first (or after WATCH_SECONDS)."""
        assert self.watch is not None
        deadline = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < deadline:
            proc = self.watch.wait_for_ffmpeg(view.job_id or "", 2.0)
            if proc is not None:
                return proc
            with contextlib.suppress(*_RETRYABLE):
                described = self.local.client("stepfunctions").describe_execution(
                    executionArn=view.executions[0]
                )
                if described["status"] in TERMINAL:
                    return None
        return None

    def _stop_execution(self, spec: JobSpec, view: JobView, *, mid_encode: bool) -> None:
        sfn = self.local.client("stepfunctions")
        arn = view.executions[0]
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            self._fault("stop_execution", spec.key, "the execution had already ended", applied=False)
            return
        sfn.stop_execution(executionArn=arn, error="Soak.Stopped", cause="soak: StopExecution")
        view.stopped = True
        where = "mid-encode" if mid_encode else "before its encode"
        self._fault("stop_execution", spec.key, f"StopExecution {where}")

    def _kill_task(self, spec: JobSpec, view: JobView, ffmpeg: int, task: int) -> None:
        """SIGKILL the task process mid-encode (as the kernel's OOM killer does); its ffmpeg must die too."""
        if not kill(task, signal.SIGKILL):
            self._fault("task_sigkill", spec.key, "the task had already ended", applied=False)
            return
        with self.lock:
            view.faulted_attempts += 1
        self._fault("task_sigkill", spec.key, f"SIGKILL of the task (pid {task}) while its ffmpeg ran")
        deadline = time.monotonic() + ORPHAN_SECONDS
        while alive(ffmpeg) and time.monotonic() < deadline:
            time.sleep(0.01)
        if alive(ffmpeg) and parent_of(ffmpeg) != task and self.watch is not None:
            found = next((p for p in self.watch.latest if p.pid == ffmpeg), None)
            if found is not None:
                self.watch.report(found, f"still running {ORPHAN_SECONDS:g} s after its task was SIGKILLed")

    def _stop_task(self, spec: JobSpec, view: JobView) -> None:
        """ECS StopTask of the job's running task: the runner sends SIGTERM, as Fargate does."""
        aws = self.local
        running = aws.client("ecs").list_tasks(cluster=aws.deployed.cluster_arn, desiredStatus="RUNNING")
        tasks = {arn: job for arn, job in _task_jobs(aws, running["taskArns"]).items() if job == view.job_id}
        if not tasks:
            self._fault("task_sigterm", spec.key, "no running task", applied=False)
            return
        task_arn = next(iter(tasks))
        aws.client("ecs").stop_task(
            cluster=aws.deployed.cluster_arn, task=task_arn, reason="soak: Spot interruption"
        )
        with self.lock:
            view.faulted_attempts += 1
        self._fault("task_sigterm", spec.key, "ECS StopTask mid-encode (SIGTERM)")

    # --- while it runs -----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Housekeeping between submissions: events read back, re-uploads whose time has come."""
        with contextlib.suppress(*_RETRYABLE):
            self._drain_events(self.local)
        for first, second in list(self.pending.items()):
            with contextlib.suppress(*_RETRYABLE):
                if self._follow_up_due(self.views[first]):
                    del self.pending[first]
                    self._submit(second)

    def _follow_up_due(self, view: JobView) -> bool:
        aws = self.local
        if aws.uploads is not None:
            for started in aws.uploads.started:
                if view.video_uri == self._uri(started.key) and started.execution_arn not in view.executions:
                    view.executions.append(started.execution_arn)
        waited = time.monotonic() - (view.upload_started or time.monotonic())
        if waited > FOLLOW_UP_SECONDS:
            return True
        if not view.executions:
            return False
        sfn = aws.client("stepfunctions")
        return all(sfn.describe_execution(executionArn=arn)["status"] in TERMINAL for arn in view.executions)

    def _drain_events(self, aws: LocalAws) -> None:
        got = aws.events(max_events=1000)
        with self.lock:
            self.events.extend(got)

    def _drain(self) -> None:
        deadline = time.monotonic() + self.config.drain_seconds
        last_said = 0.0
        while True:
            self._pump()
            try:
                running = self._running()
            except _RETRYABLE:
                running = -1
            busy = [thread for thread in self.watchers if thread.is_alive()]
            if running == 0 and not self.pending and not busy:
                return
            if time.monotonic() > deadline:
                self.say(f"drain: {running} executions still running after {self.config.drain_seconds:g} s")
                return
            if time.monotonic() - last_said > 15:
                self.say(f"waiting for {running} executions ({self._elapsed():.0f} s)")
                last_said = time.monotonic()
            time.sleep(0.5)

    def _settle(self) -> None:
        """Give what happens after an execution ends (reconciling stopped ones) time to finish."""
        deadline = time.monotonic() + self.config.settle_seconds
        time.sleep(min(2.0, self.config.settle_seconds))
        while time.monotonic() < deadline:
            with contextlib.suppress(*_RETRYABLE):
                if not any(record.status == "processing" for record in _records(self.local)):
                    break
            time.sleep(1.0)
        with contextlib.suppress(*_RETRYABLE):
            self._drain_events(self.local)

    # --- looking ------------------------------------------------------------------------------------

    def _probes(self) -> list[ProbeResult]:
        """Tries at the local AWS itself (issue 8 case 10), before any fault is armed."""
        return [self._probe_command_override(), self._probe_browser_origin()]

    def _probe_command_override(self) -> ProbeResult:
        aws = self.local
        target = self.root / "override-probe.mp4"
        assert self.media is not None and aws.ecs_runner is not None
        srt = self.root / "override-probe.srt"
        srt.write_bytes(SRT)
        before = len(aws.ecs_runner.runs)
        command = ["python", "-m", "pipeline.cli", "burn", str(self.media.short.path), "--srt", str(srt),
                   "-o", str(target), "--resolution", "360p", "--preset", "ultrafast"]  # fmt: skip
        parameters = aws.run_task_parameters(aws.deployed.task_definition_arn)
        network = parameters["NetworkConfiguration"]["AwsvpcConfiguration"]
        aws.client("ecs").run_task(
            cluster=aws.deployed.cluster_arn,
            taskDefinition=aws.deployed.task_definition_arn,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": network["Subnets"],
                    "securityGroups": network["SecurityGroups"],
                }
            },
            overrides={"containerOverrides": [{"name": "ffmpeg", "command": command}]},
        )
        try:
            aws.ecs_runner.wait_for_runs(before + 1, timeout=60)
        except TimeoutError:
            return ProbeResult(
                "command-override", False, "the task of a RunTask with a command override never ended"
            )
        if target.exists():
            return ProbeResult(
                "command-override",
                False,
                "a RunTask command override ran 'python -m pipeline.cli burn' and wrote its file",
            )
        return ProbeResult("command-override", True, "the command override was not run")

    def _probe_browser_origin(self) -> ProbeResult:
        request = urllib.request.Request(  # noqa: S310 - our own local endpoint
            self.local.endpoint_url + "/",
            data=b"{}",
            method="POST",
            headers={
                "Origin": "http://evil.example",
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                status = answer.status
        except urllib.error.HTTPError as err:
            status = err.code
        refused = 400 <= status < 500
        detail = f"a request with a browser Origin got HTTP {status}"
        return ProbeResult("browser-origin", refused, detail + ("" if refused else ", not refused"))

    def _observe(self) -> Observation:
        aws = self.local
        executions, inputs = _executions(aws)
        lost = {
            arn: replace(run, lost_in_restart=True)
            for arn, run in self.before_restart.items()
            if arn not in executions
        }
        executions.update(lost)
        inputs = {**self.inputs_before_restart, **inputs}
        records = _records(aws)
        by_video = {record.video_id: record for record in records}
        by_execution = {record.execution_arn: record for record in records if record.execution_arn}
        outputs = _keys(aws, "videos/")
        for view in self.views.values():
            self._discover_uploads(view, executions, inputs)
            view.record = self._record_of(view, inputs, by_video, by_execution)
            if view.record is not None:
                view.outputs = sorted(key for key in outputs if key.split("/")[1] == view.record.video_id)
            view.callbacks = sorted(self.callbacks.get(view.spec.key, []), key=lambda call: call.index)
            view.events = [event["detail-type"] for event in self.events if _about(event, view.record)]
            if view.spec.kind == "bad_sidecar":
                key = (view.video_uri or "").partition("://")[2].partition("/")[2]
                view.rejection_events = sum(
                    1
                    for event in self.events
                    if event.get("detail-type") == REJECTED_EVENT and key in json.dumps(event)
                )
            if view.spec.expect == "conflict" and view.spec.target:
                view.target_record = self.views[view.spec.target].record or self._record_of(
                    self.views[view.spec.target], inputs, by_video, by_execution
                )
            token = self.tokens.get(view.spec.key)
            if token:
                view.token_in_history = sum(
                    _count_in_history(aws, arn, token)
                    for arn in view.executions
                    if arn in executions and not executions[arn].lost_in_restart
                )
            if view.job_id is not None and self.watch is not None:
                view.process_last_seen = self.watch.last_seen.get(view.job_id)
            first = executions.get(view.executions[0]) if view.executions else None
            if (
                first is not None
                and not first.lost_in_restart
                and not (view.record and view.record.status == "saved")
            ):
                view.timeline = _timeline(aws, view.executions[0])
        owned = {view.record.video_id for view in self.views.values() if view.record}
        return Observation(
            jobs=list(self.views.values()),
            executions=executions,
            work_keys=_keys(aws, "work/"),
            orphan_outputs=[key for key in outputs if key.split("/")[1] not in owned],
            unexpected_callbacks=self._unexpected_callbacks(),
            notes={"events": len(self.events), "executions_lost_in_restart": len(lost)},
        )

    def _discover_uploads(
        self, view: JobView, executions: Mapping[str, ExecutionView], inputs: Mapping[str, Any]
    ) -> None:
        """The executions an upload started: those whose input names its video, oldest first."""
        if view.video_uri is None:
            return
        found = sorted(
            (arn for arn, given in inputs.items() if _video_of(given) == view.video_uri),
            key=lambda arn: executions[arn].started,
        )
        if view.spec.kind == "reupload":
            found = found[:1] if view.spec.variant == "v1" else found[1:]
        for arn in found:
            if arn not in view.executions:
                view.executions.append(arn)
        if view.job_id is None and view.executions and isinstance(inputs.get(view.executions[0]), dict):
            job_id = inputs[view.executions[0]].get("job_id")
            view.job_id = job_id if isinstance(job_id, str) else None

    def _record_of(
        self,
        view: JobView,
        inputs: Mapping[str, Any],
        by_video: Mapping[str, RecordView],
        by_execution: Mapping[str, RecordView],
    ) -> RecordView | None:
        if view.job_id is not None and view.spec.expect != "conflict":
            return by_video.get(video_id_for(view.job_id))
        return next((by_execution[arn] for arn in view.executions if arn in by_execution), None)

    def _unexpected_callbacks(self) -> list[str]:
        assert self.server is not None
        known = {f"/cb/{key}" for key in self.tokens}
        paths = (item.path.split("?", 1)[0] for item in self.server.received if item.method == "POST")
        return sorted({path for path in paths if path not in known})

    def _process_findings(self, watch: ProcessWatch) -> list[ProcessFinding]:
        found = [ProcessFinding(p.pid, p.name, p.job_id, problem) for p, problem in watch.findings.values()]
        time.sleep(1.0)  # the local AWS has stopped its tasks: what is left is left for good
        for proc in ProcessTable(self.run_id).scan():
            found.append(
                ProcessFinding(proc.pid, proc.name, proc.job_id, "still running after the local AWS stopped")
            )
        return found


_RUNNER_FAULTS = {
    "kill-ffmpeg": "ffmpeg_kill",
    "kill": "task_kill_early",
    "exit": "task_exit",
    "hang": "task_hang",
    "": "",
}


def deploy_heartbeat(aws: LocalAws, seconds: int) -> None:
    """The pipeline's definition with BurnAndCompress waiting ``seconds`` for a heartbeat."""
    sfn = aws.client("stepfunctions")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=aws.state_machine_arn)["definition"])
    definition["States"]["BurnAndCompress"]["HeartbeatSeconds"] = seconds
    sfn.update_state_machine(stateMachineArn=aws.state_machine_arn, definition=json.dumps(definition))


def _list_executions(aws: LocalAws, status: str | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"stateMachineArn": aws.state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    pages = aws.client("stepfunctions").get_paginator("list_executions").paginate(**kwargs)
    return [execution for page in pages for execution in page["executions"]]


def _executions(aws: LocalAws) -> tuple[dict[str, ExecutionView], dict[str, Any]]:
    """Every execution of the pipeline, described; and each one's input (parsed JSON)."""
    sfn = aws.client("stepfunctions")
    views, inputs = {}, {}
    for item in _list_executions(aws):
        arn = item["executionArn"]
        described = sfn.describe_execution(executionArn=arn)
        stopped = described.get("stopDate")
        views[arn] = ExecutionView(
            arn=arn,
            status=described["status"],
            started=described["startDate"].timestamp(),
            stopped=stopped.timestamp() if stopped else None,
            error=described.get("error"),
            cause=described.get("cause"),
        )
        with contextlib.suppress(ValueError, TypeError):
            inputs[arn] = json.loads(described.get("input") or "null")
    return views, inputs


def _video_of(given: Any) -> str | None:
    if isinstance(given, dict) and isinstance(given.get("video"), dict):
        uri = given["video"].get("s3_uri")
        return uri if isinstance(uri, str) else None
    return None


def _records(aws: LocalAws) -> list[RecordView]:
    """Every item of the jobs table, read tolerantly (a record may miss fields a JobRecord needs)."""
    dynamodb = aws.client("dynamodb")
    kwargs: dict[str, Any] = {"TableName": aws.table_name, "ConsistentRead": True}
    found = []
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            data = from_item(item)
            callback = data.get("callback")
            found.append(
                RecordView(
                    video_id=str(data.get("video_id", "")),
                    job_id=str(data.get("job_id", "")),
                    status=str(data.get("status", "")),
                    execution_arn=data.get("execution_arn"),
                    error_code=data.get("error_code"),
                    error_message=data.get("error_message"),
                    s3_uri=data.get("s3_uri"),
                    duration=float(data["duration"]) if data.get("duration") is not None else None,
                    callback_status=callback.get("status") if isinstance(callback, dict) else None,
                    created_at=str(data.get("created_at", "")),
                )
            )
        if not page.get("LastEvaluatedKey"):
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _keys(aws: LocalAws, prefix: str) -> list[str]:
    s3 = aws.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def _about(event: dict[str, Any], record: RecordView | None) -> bool:
    detail = event.get("detail")
    if record is None or not isinstance(detail, dict):
        return False
    return detail.get("video_id") == record.video_id or (
        bool(record.job_id) and detail.get("job_id") == record.job_id
    )


def _timeline(aws: LocalAws, arn: str) -> str:
    """``State xN (errors)`` for each state entered, as the console's execution view shows it."""
    parts = []
    for run in build_timeline(aws.history(arn)):
        errors = f" ({'; '.join(error.split(':')[0] for error in run.errors)})" if run.errors else ""
        parts.append(f"{run.name}" + (f" x{run.attempts}" if run.attempts > 1 else "") + errors)
    return " > ".join(parts)


def _count_in_history(aws: LocalAws, arn: str, token: str) -> int:
    """History events after the caller's own input that carry ``token``.

    The input a caller gives StartExecution is in the history as given (ExecutionStarted, and
    ValidateInput's entry and Lambda input, retries included): from the first later state on,
    nothing may carry it (the URL lives in the job record).
    """
    count, past_the_input = 0, False
    for event in aws.history(arn):
        entered = event.get("stateEnteredEventDetails", {}).get("name")
        if entered is not None and entered != "ValidateInput":
            past_the_input = True
        if past_the_input and token in json.dumps(event, default=str):
            count += 1
    return count


def _task_jobs(aws: LocalAws, task_arns: list[str]) -> dict[str, str]:
    """Task ARN -> the VIDP_JOB_ID its container overrides carry."""
    found: dict[str, str] = {}
    ecs = aws.client("ecs")
    for start in range(0, len(task_arns), 100):
        described = ecs.describe_tasks(cluster=aws.deployed.cluster_arn, tasks=task_arns[start : start + 100])
        for task in described["tasks"]:
            for override in task.get("overrides", {}).get("containerOverrides", []):
                for item in override.get("environment", []):
                    if item["name"] == "VIDP_JOB_ID":
                        found[task["taskArn"]] = item["value"]
    return found


@contextlib.contextmanager
def _quiet_logs(path: Path) -> Iterator[None]:
    """The steps' JSON log lines and the local AWS's warnings go to a file, not the terminal."""
    configure_step_logs()  # its stderr handler stays (it would be added again), silenced
    handler = logging.FileHandler(path, encoding="utf-8")
    saved: list[tuple[logging.Logger, bool, int]] = []
    silenced: list[tuple[logging.Handler, int]] = []
    for logger in (logging.getLogger("vidp"), logging.getLogger("pipeline"), logging.getLogger("moto")):
        saved.append((logger, logger.propagate, logger.level))
        for existing in logger.handlers:
            handler.setFormatter(existing.formatter)
            silenced.append((existing, existing.level))
            existing.setLevel(logging.CRITICAL + 1)
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for existing, level in silenced:
            existing.setLevel(level)
        for logger, propagate, level in saved:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
