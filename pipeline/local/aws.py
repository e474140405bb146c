"""``LocalAws``: the embedded AWS on 127.0.0.1 that runs the real state machine on one machine.

A moto server in this process, with its Step Functions interpreter enabled, the resources of
the CDK stack (``resources.py``), Lambda steps run in-process (``lambdas``, reached through a moto
workaround), the ECS task run as a local subprocess (``ecs_runner``) and uploads under
``incoming/`` starting executions (``uploads``). boto3 or the AWS CLI reach it with
``--endpoint-url`` / ``AWS_ENDPOINT_URL``.

moto keeps its state in process-wide backends and the interpreter reads ``MOTO_PORT`` from the
environment, so one ``LocalAws`` runs per process at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from functools import _lru_cache_wrapper
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from pipeline.local import lambdas, workarounds
from pipeline.local.clients import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, make_client
from pipeline.local.datadir import SNAPSHOT_SECONDS, DataDir, PeriodicSnapshots, Restored, take_snapshot
from pipeline.local.ecs_runner import EcsRunner
from pipeline.local.faults import DynamoDbThrottle
from pipeline.local.guard import refuse_browsers
from pipeline.local.resources import (
    ACCOUNT,
    REGION,
    Deployed,
    LocalNames,
    create_all,
    register_task_definition,
)
from pipeline.local.uploads import UploadStarter
from pipeline.local.watcher import ExecutionWatcher
from pipeline.models import JobRequest
from pipeline.starter import DEFAULT_SIDECAR_WAIT_SECONDS, Starter
from pipeline.steps.registry import Handler

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 15.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_QUIET_LOGGERS = {
    "werkzeug": logging.WARNING,
    "moto.stepfunctions.parser.asl.component.eval_component": logging.CRITICAL,
}

_active: LocalAws | None = None
_active_lock = threading.Lock()


class LocalAwsError(RuntimeError):
    """The local AWS could not start, or a wait ran past its deadline."""


def webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class LocalAws:
    """The local AWS: ``with LocalAws() as aws: aws.start_job(request)``.

    ``handlers``: step name -> Lambda handler, default the pipeline's steps
    (``pipeline.steps.registry``, each imported at its first invocation). ``allow_loopback`` sets
    ``VIDP_UNSAFE_ALLOW_LOOPBACK=1`` for the steps and the task (127.0.0.1 callbacks and SRT
    servers in tests and demos), off by default. ``sidecar_wait_seconds``: how long a video
    uploaded under ``incoming/`` without its sidecar waits for it before it is rejected.
    ``export_env`` puts ``env()`` into ``os.environ`` while running: the in-process Lambda
    handlers read their configuration from there, as on AWS. ``reconcile`` runs the reconciler
    for executions that end badly (``watcher``), as the EventBridge rule does in AWS.
    ``data_dir`` keeps the bucket, the table and the executions in that folder (``datadir``):
    restored at start, written every ``snapshot_seconds`` and at stop. None (the default) keeps
    nothing, as tests and ``make demo`` want.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        handlers: Mapping[str, Handler] | None = None,
        allow_loopback: bool = False,
        run_ecs_tasks: bool = True,
        start_from_uploads: bool = True,
        sidecar_wait_seconds: int = DEFAULT_SIDECAR_WAIT_SECONDS,
        export_env: bool = True,
        task_environment: Mapping[str, str] | None = None,
        max_concurrent_tasks: int | None = None,
        names: LocalNames | None = None,
        quiet: bool = True,
        reconcile: bool = True,
        data_dir: Path | str | None = None,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
    ) -> None:
        self.names = names or LocalNames()
        self.data_dir = None if data_dir is None else Path(data_dir).expanduser().resolve()
        self.restored: Restored | None = None
        self._snapshot_seconds = snapshot_seconds
        self._data: DataDir | None = None
        self._snapshots: PeriodicSnapshots | None = None
        self.webhook_secret = webhook_secret()
        self.allow_loopback = allow_loopback
        self._port = port
        self._handlers = handlers
        self._export_env = export_env
        self._task_environment = {
            "VIDP_THREADS": "2",
            "VIDP_TABLE_NAME": self.names.table,
            **(task_environment or {}),
        }
        self._quiet = quiet
        self._server: ThreadedMotoServer | None = None
        self._deployed: Deployed | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_log_levels: dict[str, int] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.ecs_runner: EcsRunner | None = (
            EcsRunner(self, max_concurrent=max_concurrent_tasks) if run_ecs_tasks else None
        )
        self.uploads: UploadStarter | None = (
            UploadStarter(self, sidecar_wait_seconds=sidecar_wait_seconds) if start_from_uploads else None
        )
        self.watcher: ExecutionWatcher | None = ExecutionWatcher(self) if reconcile else None
        # Off until asked for: ``aws.dynamodb_throttle.throttle(fraction=0.2)`` (pipeline.local.faults).
        self.dynamodb_throttle = DynamoDbThrottle()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server, apply the workarounds, create the resources, start the runners."""
        global _active  # moto's backends and MOTO_PORT are process-wide
        with _active_lock:
            if _active is not None:
                raise LocalAwsError("a LocalAws is already running in this process: stop it first")
            _active = self
        self.restored = None  # until this start has restored the folder, nothing may be written over it
        try:
            if self.data_dir is not None:  # a foreign or corrupt folder is refused before anything starts
                self._data = DataDir.open(self.data_dir, self.names)
            self._start_server()
            self._configure_moto()
            self._saved_env.setdefault("MOTO_PORT", os.environ.get("MOTO_PORT"))
            workarounds.apply_all(port=self.port, lambda_lookup=self._lookup)
            self._deployed = create_all(self.client, self.names, self._task_environment)
            if self._data is not None:
                self.restored = self._data.restore(self)
            if self._export_env:
                self._set_environment(self.env())
                if not self.allow_loopback:  # the test/demo switch is off unless asked for
                    self._unset_environment("VIDP_UNSAFE_ALLOW_LOOPBACK")
            if self.ecs_runner is not None:
                self.ecs_runner.start(cluster_arn=self.deployed.cluster_arn, environment=self.container_env())
            if self.uploads is not None:
                self.uploads.start(
                    queue_url=self.deployed.uploads_queue_url,
                    bucket=self.bucket,
                    state_machine_arn=self.state_machine_arn,
                    event_bus=self.names.event_bus,
                )
            if self.watcher is not None:
                self.watcher.start(self.state_machine_arn)
            if self._data is not None and self.restored is not None:
                self._snapshots = PeriodicSnapshots(self._data, self, self._snapshot_seconds)
                self._snapshots.start()
                if self.restored.lost:
                    self._reconcile_lost(self.restored.lost)
        except BaseException:
            self.stop()
            raise
        return self

    def _reconcile_lost(self, lost: list[dict[str, Any]]) -> None:
        """Executions that ended with the previous run of this data folder, called once at start.

        ``lost`` holds DescribeExecution dicts (dates as datetimes): those RUNNING in the last
        snapshot, set to ``"status": "ABORTED"`` with the snapshot's time as ``stopDate``, and those
        of jobs whose record was still ``processing`` (a clean stop aborted them). Their jobs must
        be marked failed ``ABORTED`` and their failure callbacks sent, as for any aborted execution:
        the reconciler does it (a job already recorded is left as it is).
        """
        for described in lost:
            log.warning(
                "execution %s was %s when the local AWS stopped: reconciling its job",
                described["executionArn"], described["status"],
            )  # fmt: skip
            if self.watcher is not None:
                self.watcher.reconcile(described)

    def stop(self) -> None:
        """Stop the runners, every running execution and the server; restore the environment."""
        global _active
        if self.uploads is not None:
            self.uploads.stop()
        if self.ecs_runner is not None:
            self.ecs_runner.stop()
        if self._snapshots is not None:
            self._snapshots.stop()
            self._snapshots = None
        if self._server is not None and self._deployed is not None:
            self._stop_running_executions()
            if self.watcher is not None:
                self.watcher.stop()  # the executions just stopped are reconciled (ABORTED)
        if self._data is not None:
            # Only over a restored folder (a failed start must not overwrite it with nothing), and
            # after StopExecution: those executions are kept ABORTED, their jobs reconciled next start.
            if self.restored is not None and self._server is not None:
                take_snapshot(self._data, self)
            self._data.close()
            self._data = None
        workarounds.stop_routing_lambda_invoke()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._restore_environment()
        for name, level in self._saved_log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._saved_log_levels.clear()
        self._clients.clear()
        with _active_lock:
            if _active is self:
                _active = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_server(self) -> None:
        if self._quiet:
            # Request lines, and moto's ERROR log of every failed state (failures are expected here).
            for name, level in _QUIET_LOGGERS.items():
                logger = logging.getLogger(name)
                self._saved_log_levels[name] = logger.level
                logger.setLevel(level)
        # EC2 (the task's VPC) loads ~1300 default AMIs per region otherwise: 0.25 s for nothing.
        self._set_environment({"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=not self._quiet)
        # start() waits for the bind without a deadline: give it one.
        starter = threading.Thread(target=server.start, daemon=True, name="moto-start")
        starter.start()
        starter.join(START_TIMEOUT_SECONDS)
        if starter.is_alive():
            raise LocalAwsError(f"moto server did not start in {START_TIMEOUT_SECONDS:g} s")
        refuse_browsers(server)  # no web page may drive the local AWS (installed before moto's reset)
        self._server = server
        self.dynamodb_throttle.install(server)
        self._port = server.get_host_and_port()[1]

    def _configure_moto(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # Backends are process-wide: a previous LocalAws in this process left its resources.
        self._moto_api("/moto-api/reset", {}, deadline)
        self._moto_api("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}}, deadline)
        # Tasks stay RUNNING until the ECS runner stops them with the container's exit code.
        manual = {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}
        self._moto_api("/moto-api/state-manager/set-transition", manual, deadline)

    def _moto_api(self, path: str, body: Mapping[str, Any], deadline: float) -> None:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 of our own server
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                    return
            except OSError as err:
                if time.monotonic() > deadline:
                    raise LocalAwsError(f"moto server at {self.endpoint_url} did not answer: {err}") from err
                time.sleep(0.05)

    def _stop_running_executions(self) -> None:
        # moto never cancels an execution's threads: stop what is still running.
        sfn = self.client("stepfunctions")
        try:
            for machine in sfn.list_state_machines()["stateMachines"]:
                running = sfn.list_executions(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )
                for execution in running["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"], cause="local AWS stopping")
        except (ClientError, OSError) as err:
            log.warning("could not stop running executions: %s", err)

    # --- environment -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise LocalAwsError("the local AWS is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def deployed(self) -> Deployed:
        if self._deployed is None:
            raise LocalAwsError("the local AWS is not running")
        return self._deployed

    @property
    def state_machine_arn(self) -> str:
        return self.deployed.state_machine_arn

    @property
    def bucket(self) -> str:
        return self.names.bucket

    @property
    def table_name(self) -> str:
        return self.names.table

    def aws_env(self) -> dict[str, str]:
        """``AWS_*`` variables reaching this local AWS with fake credentials (nothing else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def container_env(self) -> dict[str, str]:
        """What every local container gets from this AWS: endpoint, fake credentials, the test switch."""
        extra = {"VIDP_UNSAFE_ALLOW_LOOPBACK": "1"} if self.allow_loopback else {}
        return {**self.aws_env(), **extra}

    def env(self) -> dict[str, str]:
        """The ``VIDP_*`` and ``AWS_*`` variables the steps, the task and the CLI need."""
        variables = {
            **self.aws_env(),
            "VIDP_BUCKET": self.names.bucket,
            "VIDP_TABLE_NAME": self.names.table,
            "VIDP_EVENT_BUS_NAME": self.names.event_bus,
            "VIDP_WEBHOOK_SECRET": self.webhook_secret,
            "VIDP_CALLBACKS_TABLE_NAME": self.names.callbacks_table,
            "VIDP_RECEIVER_SIMULATE": "1",  # the receiver's POST /test/simulate: on locally, off in prod
        }
        if self._deployed is not None:
            variables["VIDP_STATE_MACHINE_ARN"] = self._deployed.state_machine_arn
            variables["VIDP_CLUSTER_ARN"] = self._deployed.cluster_arn
        if self.allow_loopback:
            variables["VIDP_UNSAFE_ALLOW_LOOPBACK"] = "1"
        return variables

    def _set_environment(self, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        _reset_client_caches()

    def _unset_environment(self, *names: str) -> None:
        for name in names:
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        if self._export_env:
            _reset_client_caches()

    def client(self, service: str) -> Any:
        """A boto3 client for this local AWS (cached per service; clients are thread-safe)."""
        with self._clients_lock:  # building clients on one boto3 session is not thread-safe
            return self._client(service)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = make_client(self.endpoint_url, service)
        return self._clients[service]

    # --- Lambda handlers ---------------------------------------------------------------------

    def _lookup(self, function: str) -> Handler | None:
        return lambdas.handler_lookup(self.names.function_prefix, self._handlers)(function)

    # --- more resources (tests and demos) ---------------------------------------------------

    def register_task_definition(
        self, family: str, command: tuple[str, ...], environment: Mapping[str, str] | None = None
    ) -> str:
        """Another Fargate task definition on our cluster's terms; the ECS runner runs its tasks."""
        env = {**self._task_environment, **(environment or {})}
        return register_task_definition(self.client("ecs"), self.names, env, family=family, command=command)

    def run_task_parameters(self, task_definition_arn: str) -> dict[str, Any]:
        """``ecs:runTask`` Parameters for an ASL state, as the pipeline's (without Overrides)."""
        deployed = self.deployed
        return {
            "Cluster": deployed.cluster_arn,
            "TaskDefinition": task_definition_arn,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets": list(deployed.subnet_ids),
                    "SecurityGroups": list(deployed.security_group_ids),
                    "AssignPublicIp": "DISABLED",
                }
            },
        }

    # --- executions ----------------------------------------------------------------------------

    def create_state_machine(self, name: str, definition: Mapping[str, Any] | str) -> str:
        """Another state machine on this local AWS (tests use tiny ones); returns its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        created = self.client("stepfunctions").create_state_machine(
            name=name, definition=text, roleArn=f"arn:aws:iam::{ACCOUNT}:role/{self.names.prefix}-test"
        )
        arn: str = created["stateMachineArn"]
        return arn

    def start_job(self, request: JobRequest | Mapping[str, Any]) -> str:
        """Start the pipeline for a JobRequest (``pipeline.starter``: named by its job id, so the
        same request twice is one execution); return the execution's ARN."""
        job = request if isinstance(request, JobRequest) else JobRequest.model_validate(request)
        return Starter(self.state_machine_arn, client=self.client("stepfunctions")).start(job).execution_arn

    def start_execution(
        self, payload: Mapping[str, Any], *, name: str, state_machine_arn: str | None = None
    ) -> str:
        """StartExecution (always named: moto gives ``:None`` ARNs without a name) of the pipeline
        or another state machine; the same name and input again gives the existing execution."""
        starter = Starter(state_machine_arn or self.state_machine_arn, client=self.client("stepfunctions"))
        return starter.start_execution(payload, name=name).execution_arn

    def wait(self, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
        """DescribeExecution once the execution has ended; LocalAwsError after ``timeout`` s."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in TERMINAL:
                return described
            if time.monotonic() > deadline:
                raise LocalAwsError(f"{execution_arn} still {described['status']} after {timeout:g} s")
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event of an execution, oldest first."""
        from pipeline.local import jobs

        return jobs.history(self, execution_arn)

    def executions(self, state_machine_arn: str | None = None) -> list[dict[str, Any]]:
        """Every execution of the pipeline (or another state machine), newest first."""
        sfn = self.client("stepfunctions")
        listed: list[dict[str, Any]] = sfn.list_executions(
            stateMachineArn=state_machine_arn or self.state_machine_arn
        )["executions"]
        return listed

    def events(self, *, wait_seconds: float = 0.0, max_events: int = 100) -> list[dict[str, Any]]:
        """Events put on our bus with source ``vidp.pipeline``, read back (and removed) from the queue.

        Waits up to ``wait_seconds`` for the first one.
        """
        sqs = self.client("sqs")
        url = self.deployed.events_queue_url
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_seconds
        while len(found) < max_events:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                if found or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        return found


def _reset_client_caches() -> None:
    """Forget the clients and settings the Lambda code cached (lru_cache): adapters, steps, starter.

    They are built on first use from the environment: one cached while another LocalAws ran
    would call a closed port, or sign callbacks with the previous webhook secret.
    """
    for name, module in list(sys.modules.items()):
        prefixes = ("pipeline.adapters", "pipeline.steps", "pipeline.starter", "pipeline.api")
        if not name.startswith(prefixes) or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, _lru_cache_wrapper):
                value.cache_clear()
