"""The in-process Lambda runtime of the local AWS: a step's handler runs in this Python process,
called the way the Lambda Python runtime calls it.

``invoke_in_process`` gives the runtime's answer: the JSON result, or for a raised exception the
runtime's error document (``errorType`` = the class name, which Step Functions makes the state's
error name, so Retry/Catch on our error classes work as on AWS). ``handler_lookup`` maps a
function name or ARN under the local prefix to its step's handler, imported on first use from
``pipeline.steps.registry``. How Lambda invocations reach this runtime (moto would run them in
Docker) is a moto workaround: ``workarounds.lambda_invoke_needs_docker``.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.steps import registry
from pipeline.steps.registry import Handler

HandlerLookup = Callable[[str], Handler | None]
"""Function name or ARN -> the handler that runs in-process, or None: not ours."""


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object handlers use."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class HandlerNotFound(LookupError):
    """A function under the local prefix names a step with no in-process handler."""


def _error_payload(error_type: str, message: str, request_id: str, err: BaseException | None = None) -> bytes:
    """The Python runtime's error document; its ``errorType`` becomes the Step Functions error name."""
    body = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(err.__traceback__) if err is not None else [],
    }
    return json.dumps(body).encode()


def invoke_in_process(handler: Handler, function: str, payload: bytes) -> tuple[bytes, str | None]:
    """Run the handler as the Lambda Python runtime does: (response payload, FunctionError or None)."""
    request_id = str(uuid.uuid4())
    context = LambdaContext(
        function_name=function.rpartition(":function:")[2] or function,
        invoked_function_arn=function,
        aws_request_id=request_id,
    )
    try:
        result = handler(json.loads(payload or b"null"), context)
    except Exception as err:
        return _error_payload(type(err).__name__, str(err), request_id, err), "Unhandled"
    try:
        return json.dumps(result).encode(), None
    except (TypeError, ValueError) as err:
        # The runtime cannot serialise the result: the invocation fails, not the handler.
        message = f"Unable to marshal response: {err}"
        return _error_payload("Runtime.MarshalError", message, request_id), "Unhandled"


def handler_lookup(prefix: str, handlers: Mapping[str, Handler] | None = None) -> HandlerLookup:
    """``arn:...:function:{prefix}{Step}`` (or the bare name) -> the step's handler.

    ``handlers`` (step name -> handler) replaces the pipeline's steps, for tests. A name under
    ``prefix`` without a handler gets one raising HandlerNotFound, so the state fails with a
    message naming the step rather than with moto's "function not found".
    """
    known = sorted(handlers if handlers is not None else registry.STEP_MODULES)

    def lookup(function: str) -> Handler | None:
        name = function.rpartition(":function:")[2] if ":function:" in function else function
        name = name.split(":", 1)[0]  # a qualifier (":$LATEST", an alias) runs the same code
        if not name.startswith(prefix):
            return None
        step = name.removeprefix(prefix)
        if step in known:
            return handlers[step] if handlers is not None else registry.load_handler(step)

        def missing(_event: Any, _context: Any) -> Any:
            raise HandlerNotFound(f"no in-process handler for {step!r} (known: {', '.join(known)})")

        return missing

    return lookup
