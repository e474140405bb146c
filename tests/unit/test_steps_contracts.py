"""The steps and the ONE definition agree: what each Task passes is what its handler parses, what
it returns lands where later states read it, and every error name matched is one we raise."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

import state_machine
from pipeline.failures import VidpError
from pipeline.models import (
    CompletedNotice,
    FailedNotice,
    FailureReport,
    FinalOutput,
    Job,
    JobEvent,
    MarkFailedEvent,
    SubtitlesFetched,
    ValidateInputEvent,
)
from pipeline.steps import HANDLERS

# Task state -> (the model of its event, where its result goes)
LAMBDA_STATES: dict[str, tuple[type[BaseModel], str]] = {
    "ValidateInput": (ValidateInputEvent, "$"),
    "FetchSubtitles": (JobEvent, "$.subtitles"),
    "Finalise": (JobEvent, "$.output"),
    "Notify": (CompletedNotice, "$.notified"),
    "MarkFailed": (MarkFailedEvent, "$.failed"),
    "NotifyFailure": (FailedNotice, "$.notified"),
}
# What the state data holds at $.<key> once the state that writes it has run.
STATE_DATA: dict[str, type[BaseModel]] = {
    "job": Job,
    "subtitles": SubtitlesFetched,
    "output": FinalOutput,
    "failed": FailureReport,
}
SERVICE_PREFIXES = ("States.", "Lambda.", "ECS.", "DynamoDB.")


def definition() -> dict[str, Any]:
    return state_machine.load({name: f"${{{name}}}" for name in state_machine.placeholders()})


def states() -> dict[str, Any]:
    return dict(definition()["States"])


def test_every_function_placeholder_has_a_handler() -> None:
    functions = {
        name.removesuffix("FunctionArn")
        for name in state_machine.placeholders()
        if name.endswith("FunctionArn")
    }

    assert functions == set(HANDLERS)


@pytest.mark.parametrize("state_name", sorted(LAMBDA_STATES))
def test_each_lambda_task_passes_exactly_its_handlers_event(state_name: str) -> None:
    model, result_path = LAMBDA_STATES[state_name]
    state = states()[state_name]
    function = re.fullmatch(r"\$\{(\w+)FunctionArn\}", state["Resource"])

    assert function is not None and function.group(1) in HANDLERS
    assert {key.removesuffix(".$") for key in state["Parameters"]} == set(model.model_fields)
    assert state["ResultPath"] == result_path


def test_notify_states_pass_their_outcome_literally() -> None:
    assert states()["Notify"]["Parameters"]["outcome"] == "completed"
    assert states()["NotifyFailure"]["Parameters"]["outcome"] == "failed"


def test_every_path_into_step_results_names_a_field_of_their_models() -> None:
    text = json.dumps(definition())
    paths = set(re.findall(r"\$\.(job|subtitles|output|failed)\.(\w+)", text))

    assert paths, "the definition reads no step result?"
    for key, field in paths:
        model = STATE_DATA[key]
        assert field in model.model_fields or field in dir(model), (
            f"$.{key}.{field} is not in {model.__name__}"
        )


def test_every_error_name_matched_is_a_service_error_or_one_of_ours() -> None:
    ours: set[str] = set()
    pending: list[type[VidpError]] = [VidpError]
    while pending:
        cls = pending.pop()
        ours.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    for name, state in states().items():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                assert error.startswith(SERVICE_PREFIXES) or error in ours, f"{name}: unknown error {error}"


def test_invalid_input_and_its_kinds_are_never_retried() -> None:
    never = {"InvalidInput", "InvalidMedia", "InvalidSubtitles", "InvalidStyle", "UnsafeUrl"}
    for name, state in states().items():
        for rule in state.get("Retry", []):
            assert never.isdisjoint(rule["ErrorEquals"]), f"{name} retries invalid input"
