"""The Lambda steps: one module per state, each a thin ``handler`` -> logic -> adapters.

``HANDLERS`` maps the step names of the ASL's function placeholders (``${<Step>FunctionArn}``)
to their handlers; the local AWS routes a Lambda Invoke by these names. A handler's exceptions
propagate: their class name is the Step Functions error name that Retry and Catch match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.steps import fetch_subtitles, finalise, mark_failed, notify, validate_input

Handler = Callable[[dict[str, Any], object], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "ValidateInput": validate_input.handler,
    "FetchSubtitles": fetch_subtitles.handler,
    "Finalise": finalise.handler,
    "Notify": notify.handler,
    "MarkFailed": mark_failed.handler,
}
