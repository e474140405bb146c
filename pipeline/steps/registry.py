"""Every Lambda step by the name its ASL placeholder uses (``${<Step>FunctionArn}``).

Module names only, nothing imported: the CDK app points each function at ``<module>.handler``
without loading the steps, and the local Lambda runtime imports a step when it is first invoked.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]
"""A Lambda handler: ``handler(event, context) -> JSON-serialisable result``."""

STEP_MODULES: dict[str, str] = {
    "ValidateInput": "pipeline.steps.validate_input",
    "FetchSubtitles": "pipeline.steps.fetch_subtitles",
    "Finalise": "pipeline.steps.finalise",
    "Notify": "pipeline.steps.notify",
    "MarkFailed": "pipeline.steps.mark_failed",
    "StopTimedOutTask": "pipeline.steps.stop_timed_out_task",
}


def handler_path(step: str) -> str:
    """The Lambda runtime's ``module.function`` of a step."""
    return f"{STEP_MODULES[step]}.handler"


def load_handler(step: str) -> Handler:
    """The step's handler, importing its module (KeyError for an unknown step)."""
    handler: Handler = importlib.import_module(STEP_MODULES[step]).handler
    return handler
