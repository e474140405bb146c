"""Every workaround for moto 5.2.5 that the local AWS needs, in one place.

Each function is named for the bug it works around, says what moto does and what AWS does,
and is applied by ``apply_all()`` (idempotent). ``tests/unit/test_moto_workarounds.py`` shows
that each bug's effect is gone, and has a test that fails once moto fixes the bug itself:
after a moto upgrade, that file is the one place to check.

Most are patches of methods of moto's Step Functions interpreter, which runs in this process
(in the threads of the moto server ``LocalAws`` starts); ``without()`` takes them off again so
a test can show the bug. The Lambda routing uses only botocore's public event system; two are
requirements moto puts on the resources, applied where they are created.
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast
from xml.sax.saxutils import escape

import boto3
import botocore.session
from botocore import xform_name
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.model import OperationModel, ServiceModel
from botocore.response import StreamingBody
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.s3.responses import S3Response
from moto.stepfunctions.parser import api as sfn_api
from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    resource,
    state_task_service_callback,
    state_task_service_ecs,
)
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackConsumerTimeout,
    HeartbeatTimeoutError,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse

from pipeline.local import lambdas
from pipeline.local.lambdas import HandlerLookup

ResourceCondition = resource.ResourceCondition
StateTaskServiceCallback = state_task_service_callback.StateTaskServiceCallback
StateTaskServiceEcs = state_task_service_ecs.StateTaskServiceEcs

_lock = threading.RLock()
_INHERITED = object()  # the class had no method of its own: the patch is deleted to undo it
# (class, method name) -> what the class itself had before a workaround replaced it.
_originals: dict[tuple[type, str], Any] = {}
# workaround name -> the (class, method name) pairs it replaced.
_patches: dict[str, list[tuple[type, str]]] = {}


def _replace(workaround: str, cls: type, name: str, function: Callable[..., Any]) -> None:
    key = (cls, name)
    if key in _originals:
        return  # applied already
    _originals[key] = cls.__dict__.get(name, _INHERITED)
    setattr(cls, name, function)
    _patches.setdefault(workaround, []).append(key)


def _restore(cls: type, name: str) -> None:
    original = _originals.pop((cls, name))
    if original is _INHERITED:
        delattr(cls, name)
    else:
        setattr(cls, name, original)


def _original(cls: type, name: str) -> Any:
    """moto's method (possibly inherited), whether or not a workaround replaced it."""
    if (cls, name) not in _originals:
        return getattr(cls, name)
    original = _originals[(cls, name)]
    if original is not _INHERITED:
        return original
    return next(base.__dict__[name] for base in cls.__mro__[1:] if name in base.__dict__)


# --- 1. ECS RunTask parameters reach boto3 in the ASL's PascalCase (moto issue 10076) ---------


@lru_cache(maxsize=8)
def _service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def _operation_model(service: str, snake_action: str) -> OperationModel:
    model = _service_model(service)
    by_snake = {xform_name(name): name for name in model.operation_names}
    return model.operation_model(by_snake[snake_action])


def ecs_run_task_parameters_not_normalised() -> None:
    """``ecs:runTask`` fails whatever the integration pattern (moto issue 10076).

    moto: ``StateTaskService._normalise_parameters`` and ``_normalise_response`` are empty, so
    the ASL's ``Cluster``, ``TaskDefinition``, ``NetworkConfiguration.AwsvpcConfiguration``...
    reach ``boto3 ecs.run_task`` as they are: "Parameter validation failed: Missing required
    parameter in input: taskDefinition, Unknown parameter in input: Cluster...". AWS maps the
    PascalCase parameters onto the API's members and answers in PascalCase.

    Fix: restore both methods on the ECS integration from botocore's operation model, with the
    converters moto still has (``_to_boto_request``, ``_from_boto_response``). Only ECS: the
    only one of our integrations that relies on them.
    """

    def _normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        shape = _operation_model(service, action).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def _normalise_response(
        self: Any,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        shape = _operation_model(service, action).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)

    name = ecs_run_task_parameters_not_normalised.__name__
    _replace(name, StateTaskServiceEcs, "_normalise_parameters", _normalise_parameters)
    _replace(name, StateTaskServiceEcs, "_normalise_response", _normalise_response)


# --- 2. a retried .waitForTaskToken attempt gets the failed attempt's token ------------------


def wait_for_task_token_retry_reuses_token() -> None:
    """A Retry of a ``.waitForTaskToken`` task fails at once, with the first attempt's error.

    moto: the token is made once, when the state is entered (``_eval_body``); Retry runs
    ``_eval_execution`` again with the same token, whose callback endpoint still holds the first
    attempt's failure (or timeout), so every retry "fails" instantly and the new task's own
    report is never awaited. AWS: every attempt gets a new ``$$.Task.Token``.

    Fix: on a retry (``$$.State.RetryCount`` > 0) issue a fresh token and register its callback
    endpoint before the attempt evaluates its parameters.
    """
    original = _original(StateTaskServiceCallback, "_eval_execution")

    def _eval_execution(self: Any, env: Environment) -> None:
        state: Mapping[str, Any] = env.states.context_object.context_object_data.get("State") or {}
        retrying = state.get("RetryCount", 0) > 0
        if retrying and self.resource.condition == ResourceCondition.WaitForTaskToken:
            token = env.states.context_object.update_task_token()
            env.callback_pool_manager.add(token)
        original(self, env)

    name = wait_for_task_token_retry_reuses_token.__name__
    _replace(name, StateTaskServiceCallback, "_eval_execution", _eval_execution)


# --- 3. a token whose state has moved on is still accepted ------------------------------------


def closed_token_still_accepted() -> None:
    """``SendTaskHeartbeat``/``Success``/``Failure`` with a token whose state already ended
    (timed out, or reported) succeed silently while the execution runs.

    moto: a callback endpoint is never closed (``CallbackEndpoint.report`` is never called), so
    a task that outlived its state (heartbeat timeout -> Retry starts another task) keeps
    working, and both write the same output. AWS refuses the token (``TaskTimedOut``), which is
    how the container learns to stop (``pipeline.task`` then stops itself).

    Fix: once the task state's wait for its token ends, close the token's endpoint. moto then
    refuses it with ``TaskDoesNotExist`` (its check for ``TaskTimedOut`` looks at the wrong
    exception; our task treats both alike), once ``TaskDoesNotExist`` gets the message its
    constructor requires (moto raises it without one: a ``TypeError``, HTTP 500).
    """
    original = _original(StateTaskServiceCallback, "_eval_integration_pattern")

    def _eval_integration_pattern(self: Any, env: Environment, *args: Any, **kwargs: Any) -> None:
        task: Mapping[str, Any] = env.states.context_object.context_object_data.get("Task") or {}
        try:
            original(self, env, *args, **kwargs)
        finally:
            endpoint = env.callback_pool_manager.get(task["Token"]) if "Token" in task else None
            if endpoint is not None and endpoint.consumer_error is None:
                endpoint.report(CallbackConsumerTimeout())

    def __init__(self: Any, message: str = "Task does not exist anymore") -> None:
        AWSError.__init__(self, message, "TaskDoesNotExist", 400)

    name = closed_token_still_accepted.__name__
    _replace(name, StateTaskServiceCallback, "_eval_integration_pattern", _eval_integration_pattern)
    _replace(name, sfn_api.TaskDoesNotExist, "__init__", __init__)


# --- 4. a missed heartbeat is reported as States.Timeout --------------------------------------


def heartbeat_timeout_reported_as_timeout() -> None:
    """A task that misses its heartbeat fails with ``States.Timeout``.

    moto: ``HeartbeatTimeoutError`` is a ``TimeoutError`` and ``StateTask._from_error`` makes
    every ``TimeoutError`` ``States.Timeout``. AWS: ``States.HeartbeatTimeout``, which a
    Retry/Catch on it and the failed job's recorded error name expect.
    """
    original = _original(StateTaskServiceCallback, "_from_error")

    def _from_error(self: Any, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, HeartbeatTimeoutError):
            error = StatesErrorNameType.StatesHeartbeatTimeout
            details = TaskTimedOutEventDetails(
                resourceType=self._get_sfn_resource_type(),
                resource=self._get_sfn_resource(),
                error=error.to_name(),
            )
            return FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=error),
                event_type=HistoryEventType.TaskTimedOut,
                # EventDetails is a total TypedDict with one key per event type: moto sets one.
                event_details=cast(EventDetails, {"taskTimedOutEventDetails": details}),
            )
        failure: FailureEvent = original(self, env, ex)
        return failure

    name = heartbeat_timeout_reported_as_timeout.__name__
    _replace(name, StateTaskServiceCallback, "_from_error", _from_error)


# --- 5. SendTaskFailure loses its cause ---------------------------------------------------------


def send_task_failure_drops_cause() -> None:
    """``SendTaskFailure``'s ``cause`` never reaches the execution.

    moto: the API handler reads only ``taskToken`` and ``error``, so the TaskFailed event and
    the caught error (``$.failure...Cause``) have no cause. AWS passes it on: it is the task's
    one-line explanation, which the failed job records as its error message.
    """

    def send_task_failure(self: Any) -> ActionResult:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    name = send_task_failure_drops_cause.__name__
    _replace(name, StepFunctionResponse, "send_task_failure", send_task_failure)


# --- 6. context object times are not in AWS's format ------------------------------------------


def aws_timestamp(moment: datetime.datetime | str) -> str:
    """``2026-01-02T03:04:05.678Z``: how AWS writes ``$$.Execution.StartTime``, ``$$.State.EnteredTime``."""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)  # moto's times are naive UTC
    moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def context_times_not_in_aws_format() -> None:
    """``$$.Execution.StartTime`` and ``$$.State.EnteredTime`` differ from AWS's.

    moto: a Python ``isoformat()`` with microseconds and ``+00:00``
    (``2026-01-02T03:04:05.678901+00:00``). AWS: milliseconds and ``Z``
    (``2026-01-02T03:04:05.678Z``). The job record stores them (``created_at``,
    ``updated_at``) and sorts them as text, beside times the steps write in AWS's format.
    """
    original_environment = _original(ExecutionWorker, "_get_evaluation_environment")
    original_input = _original(CommonStateField, "_eval_state_input")

    def _get_evaluation_environment(self: Any) -> Environment:
        env: Environment = original_environment(self)
        execution = env.states.context_object.context_object_data["Execution"]
        execution["StartTime"] = aws_timestamp(execution["StartTime"])
        return env

    def _eval_state_input(self: Any, env: Environment) -> None:
        # _eval_body has just set State.EnteredTime, and evaluates the input next.
        state = env.states.context_object.context_object_data.get("State")
        if state and "EnteredTime" in state:
            state["EnteredTime"] = aws_timestamp(state["EnteredTime"])
        original_input(self, env)

    name = context_times_not_in_aws_format.__name__
    _replace(name, ExecutionWorker, "_get_evaluation_environment", _get_evaluation_environment)
    _replace(name, CommonStateField, "_eval_state_input", _eval_state_input)


# --- 7. the interpreter calls services on port 5000 -------------------------------------------


def interpreter_calls_port_5000(port: int) -> None:
    """The state machine's own DynamoDB/ECS/S3 calls go to ``http://localhost:5000``.

    moto: the interpreter builds its clients for ``localhost:$MOTO_PORT`` (default 5000) and
    ``ThreadedMotoServer`` does not set ``MOTO_PORT``. AWS: the service endpoints.
    Fix: set ``MOTO_PORT`` to our server's port (moto reads it at each call).
    """
    os.environ["MOTO_PORT"] = str(port)


# --- 8. Lambda tasks need Docker ----------------------------------------------------------------


_lookup: HandlerLookup | None = None
_ROUTER_ID = "vidp-local-lambda-invoke"


def _capture_invoke(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # The same request context reaches before-call: no state shared between threads.
    context["vidp_invoke"] = dict(params)


def _answer_invoke(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    params = context.get("vidp_invoke")
    lookup = _lookup
    if params is None or lookup is None:
        return None
    function = str(params.get("FunctionName", ""))
    handler = lookup(function)
    if handler is None:
        return None  # not one of ours: moto's own Lambda answers
    raw = params.get("Payload", b"")
    payload = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    body, function_error = lambdas.invoke_in_process(handler, function, payload)
    parsed: dict[str, Any] = {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "Payload": StreamingBody(io.BytesIO(body), len(body)),
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}},
    }
    if function_error is not None:
        parsed["FunctionError"] = function_error
    return AWSResponse("http://lambda.local/invocations", 200, HTTPHeaders(), None), parsed


def lambda_invoke_needs_docker(lookup: HandlerLookup) -> None:
    """Lambda tasks fail ("error running docker") or only echo canned payloads.

    moto runs a function's code in a Docker container; without Docker it cannot run it (or,
    with ``lambda.use_docker=False``, returns a canned payload). AWS runs the function.

    Fix: the interpreter builds its clients with ``boto3.client(...)`` on boto3's default
    session, so two botocore event hooks on that session route ``lambda.Invoke`` to a Python
    handler in this process: ``before-parameter-build`` keeps the parameters, ``before-call``
    answers without any HTTP call. A raised exception becomes ``FunctionError: Unhandled`` with
    the runtime's payload ``{"errorType": <class name>, "errorMessage": <str>, ...}``, which the
    interpreter turns into the state's error name, as AWS does: Retry/Catch on the class name
    work. Names ``lookup`` does not know fall through to moto.

    Install after the moto server or ``mock_aws`` has started: ``mock_aws`` swaps the default
    session while it is active. Registering again only replaces the lookup.
    """
    global _lookup  # the hooks are registered once; the lookup is what changes
    with _lock:
        _lookup = lookup
        events = boto3._get_default_session().events
        events.register("before-parameter-build.lambda.Invoke", _capture_invoke, unique_id=_ROUTER_ID + "-p")
        # A before-call handler that returns (http, parsed) answers the call (botocore's contract;
        # its stubs type handlers as returning None).
        answer: Callable[..., None] = _answer_invoke  # type: ignore[assignment]
        events.register("before-call.lambda.Invoke", answer, unique_id=_ROUTER_ID + "-c")


def stop_routing_lambda_invoke() -> None:
    """Let moto answer ``lambda.Invoke`` again (the hooks stay, with nothing to route)."""
    global _lookup
    with _lock:
        _lookup = None


# --- 9 and 10. what moto's Fargate RunTask needs of the resources ------------------------------


def fargate_run_task_needs_container_memory(container: dict[str, Any], task_memory: str) -> dict[str, Any]:
    """The container definition with a container-level ``memory`` (the task's, if it has none).

    moto: RunTask adds up the containers' ``memory`` to place the task, and a Fargate task
    definition with only the task-level ``memory`` makes it fail (HTTP 500, ``None + int``).
    AWS: a Fargate container needs no memory of its own.
    """
    if any(key in container for key in ("memory", "memoryReservation")):
        return container
    return {**container, "memory": int(task_memory)}


def fargate_run_task_needs_vpc_dns_hostnames(ec2: Any, vpc_id: str) -> None:
    """Turn on DNS hostnames in the task's VPC.

    moto: the task's network interface only gets its ``private_dns_name`` attribute in a VPC
    with DNS hostnames, and RunTask reads it: without them RunTask fails (HTTP 500). AWS runs
    the task either way.
    """
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})


# --- 11. RunTask's StartedBy is dropped -------------------------------------------------------------


def ecs_run_task_drops_started_by() -> None:
    """``ecs:runTask``'s ``StartedBy`` never reaches ECS.

    moto: the ECS integration keeps only the parameters in its list of RunTask's bindings, which
    lacks ``StartedBy``, so the task's ``startedBy`` is empty and ``ListTasks(startedBy=...)``
    finds nothing. AWS passes it on (the pipeline starts each task by its video id, and the
    failure branch and the reconciler find the job's tasks with it).

    Fix: RunTask's supported parameters include ``StartedBy``.
    """
    original = _original(StateTaskServiceEcs, "_get_supported_parameters")

    def _get_supported_parameters(self: Any) -> set[str] | None:
        supported: set[str] | None = original(self)
        if supported is not None and self.resource.api_action.lower() == "runtask":
            return {*supported, "StartedBy"}
        return supported

    name = ecs_run_task_drops_started_by.__name__
    _replace(name, StateTaskServiceEcs, "_get_supported_parameters", _get_supported_parameters)


# --- 12. a stopped or timed-out execution ends FAILED --------------------------------------------


def stopped_execution_reported_as_failed() -> None:
    """StopExecution (or the execution's TimeoutSeconds) during a task-token wait is not applied:
    the execution runs on until the task's next heartbeat, then ends FAILED.

    moto: ``Environment.set_stop`` / ``set_timed_out`` mark the program, but the waiting state
    only looks again after its heartbeat endpoint wakes (up to ``HeartbeatSeconds``: a hung task
    sends none), and then its interrupted wait fails (``States.Timeout``), and ``set_error``
    replaces the stopped (or timed-out) program state: ``FAILED``. AWS ends the execution
    ``ABORTED`` / ``TIMED_OUT`` at once, which the reconciler's rule matches.

    Fix: stopping or timing out wakes the token wait of the states running then, and once the
    program is stopped or timed out, a later error does not replace that.
    """
    original_error = _original(Environment, "set_error")
    original_stop = _original(Environment, "set_stop")
    original_timed_out = _original(Environment, "set_timed_out")

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped | ProgramTimedOut):
            return
        original_error(self, error)

    def wake_token_waits(env: Any) -> None:
        for each in (env, *env._frames):
            task = each.states.context_object.context_object_data.get("Task") or {}
            endpoint = each.callback_pool_manager.get(task["Token"]) if "Token" in task else None
            if endpoint is not None:
                endpoint.interrupt_all()

    def set_stop(self: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
        original_stop(self, stop_date=stop_date, cause=cause, error=error)
        wake_token_waits(self)

    def set_timed_out(self: Any) -> None:
        original_timed_out(self)
        wake_token_waits(self)

    name = stopped_execution_reported_as_failed.__name__
    _replace(name, Environment, "set_error", set_error)
    _replace(name, Environment, "set_stop", set_stop)
    _replace(name, Environment, "set_timed_out", set_timed_out)


def _post_policy_violation(
    fields: Mapping[str, list[str]], body: bytes, bucket: str
) -> tuple[int, str, str] | None:
    """What S3 would answer a form upload its policy does not allow (status, code, message), or None."""
    try:
        policy = json.loads(base64.b64decode(fields["policy"][0]))
        expires = datetime.datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
        conditions = list(policy.get("conditions", []))
    except (KeyError, IndexError, ValueError, TypeError):
        return (
            400,
            "InvalidPolicyDocument",
            "Invalid Policy: the policy is not base64 JSON with an expiration",
        )
    if expires < datetime.datetime.now(datetime.UTC):
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    given = {name.lower(): values[0] for name, values in fields.items() if values} | {"bucket": bucket}
    for condition in conditions:
        if isinstance(condition, dict):
            condition = ["eq", *next(iter(condition.items()))]
            condition[1] = "$" + condition[1]
        operator, *arguments = condition
        if operator == "content-length-range":
            low, high = (int(value) for value in arguments)
            if not low <= len(body) <= high:
                code = "EntityTooLarge" if len(body) > high else "EntityTooSmall"
                return 400, code, f"Your proposed upload {len(body)} bytes is outside {low}-{high}"
            continue
        name, wanted = str(arguments[0]).lstrip("$").lower(), str(arguments[1])
        value = given.get(name, "")
        if (operator == "eq" and value != wanted) or (
            operator == "starts-with" and not value.startswith(wanted)
        ):
            return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition}"
    return None


def post_object_policy_not_enforced() -> None:
    """moto stores any HTML-form upload (POST Object) whatever its policy says: size, key,
    Content-Type, expiry. S3 refuses what the policy does not allow (400 EntityTooLarge, 403
    AccessDenied). The API's presigned uploads rely on it: the check is done here, as S3 does."""

    def _bucket_response_post(self: Any, request: Any, bucket_name: str) -> Any:
        if "policy" in self.querystring and not self.is_delete_keys():
            body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
            refused = _post_policy_violation(self.querystring, body, bucket_name)
            if refused is not None:
                status, code, message = refused
                xml = "<?xml version='1.0' encoding='UTF-8'?>" + f"<Error><Code>{code}</Code>"
                xml += f"<Message>{escape(message)}</Message></Error>"
                return status, {"Content-Type": "application/xml"}, xml
        return _original(S3Response, "_bucket_response_post")(self, request, bucket_name)

    _replace("post_object_policy_not_enforced", S3Response, "_bucket_response_post", _bucket_response_post)


# --- all of them ---------------------------------------------------------------------------------

_PATCHES: tuple[Callable[[], None], ...] = (
    ecs_run_task_parameters_not_normalised,
    wait_for_task_token_retry_reuses_token,
    closed_token_still_accepted,
    heartbeat_timeout_reported_as_timeout,
    send_task_failure_drops_cause,
    context_times_not_in_aws_format,
    ecs_run_task_drops_started_by,
    stopped_execution_reported_as_failed,
    post_object_policy_not_enforced,
)


def apply_all(*, port: int | None = None, lambda_lookup: HandlerLookup | None = None) -> None:
    """Apply every workaround to moto's interpreter (idempotent).

    ``port``: our moto server's port, for the interpreter's own calls. ``lambda_lookup``:
    route Lambda invocations to in-process handlers (after the server or mock has started).
    The resource requirements (9, 10) are applied where the resources are created.
    """
    with _lock:
        for patch in _PATCHES:
            patch()
    if port is not None:
        interpreter_calls_port_5000(port)
    if lambda_lookup is not None:
        lambda_invoke_needs_docker(lambda_lookup)


def applied() -> set[str]:
    """Names of the interpreter patches in place."""
    with _lock:
        return set(_patches)


@contextmanager
def without(*names: str) -> Iterator[None]:
    """Take the named patches off for the block (to show their bug in a test), then put them back."""
    with _lock:
        unknown = set(names) - {patch.__name__ for patch in _PATCHES}
        if unknown:
            raise ValueError(f"no such workaround: {sorted(unknown)}")
        removed = {name: _patches.pop(name, []) for name in names}
        for keys in removed.values():
            for cls, method in keys:
                _restore(cls, method)
    try:
        yield
    finally:
        with _lock:
            for patch in _PATCHES:
                if removed.get(patch.__name__):
                    patch()
