"""The steps and the ONE definition agree: what each Task passes is what its handler parses, what
it returns lands where later states read it, and every error name matched is one we raise."""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

import state_machine
from pipeline.failures import error_classes
from pipeline.models import (
    CompletedNotice,
    FailedNotice,
    FailureReport,
    FinalOutput,
    Job,
    JobEvent,
    JobRequest,
    MarkFailedEvent,
    SubtitlesFetched,
    ValidateInputEvent,
    WorkKeys,
)
from pipeline.steps.registry import STEP_MODULES

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

    assert functions == set(STEP_MODULES)


@pytest.mark.parametrize("state_name", sorted(LAMBDA_STATES))
def test_each_lambda_task_passes_exactly_its_handlers_event(state_name: str) -> None:
    model, result_path = LAMBDA_STATES[state_name]
    state = states()[state_name]
    function = re.fullmatch(r"\$\{(\w+)FunctionArn\}", state["Resource"])

    assert function is not None and function.group(1) in STEP_MODULES
    assert {key.removesuffix(".$") for key in state["Parameters"]} == set(model.model_fields)
    assert state["ResultPath"] == result_path


def test_notify_states_pass_their_outcome_literally() -> None:
    assert states()["Notify"]["Parameters"]["outcome"] == "completed"
    assert states()["NotifyFailure"]["Parameters"]["outcome"] == "failed"


def field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The model of ``model.<name>`` if that field holds one (``X | None`` included), else None.

    AssertionError when ``name`` is not a field: a property or a method is not in the state the
    definition reads, since the state is each model's JSON dump.
    """
    assert name in model.model_fields, f"{name} is not a field of {model.__name__}"
    annotation = model.model_fields[name].annotation
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return nested[0] if nested else None


def test_every_path_into_step_results_names_a_field_of_their_models() -> None:
    text = json.dumps(definition())
    paths = set(re.findall(r"\$\.(job|subtitles|output|failed)((?:\.\w+)+)", text))

    assert ("job", ".work.output") in paths  # the task's output key comes from the job, not the ASL
    for key, rest in paths:
        model: type[BaseModel] | None = STATE_DATA[key]
        for name in rest.strip(".").split("."):
            assert model is not None, f"$.{key}{rest}: {name} is inside a value that is not a model"
            model = field_model(model, name)


def test_a_property_is_not_a_field_the_definition_may_read() -> None:
    with pytest.raises(AssertionError, match="final_key is not a field of Job"):
        field_model(Job, "final_key")


def test_every_error_name_matched_is_a_service_error_or_one_of_ours() -> None:
    ours = set(error_classes())
    for name, state in states().items():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                assert error.startswith(SERVICE_PREFIXES) or error in ours, f"{name}: unknown error {error}"


def test_invalid_input_and_its_kinds_are_never_retried() -> None:
    never = {"InvalidInput", "InvalidMedia", "InvalidSubtitles", "InvalidStyle", "UnsafeUrl"}
    for name, state in states().items():
        for rule in state.get("Retry", []):
            assert never.isdisjoint(rule["ErrorEquals"]), f"{name} retries invalid input"


def job_state() -> dict[str, Any]:
    request = JobRequest.model_validate(
        {
            "video": {"s3_uri": "s3://media-bucket/incoming/a.mp4"},
            "subtitles": {"url": "https://s.example/a.srt"},
        }
    )
    job = Job.from_request(
        request, bucket="media-bucket", video_key="incoming/a.mp4", video_size=3, created_at="t"
    )
    return job.model_dump(mode="json")


def test_a_job_from_an_execution_older_than_its_work_keys_still_reads() -> None:
    older = {key: value for key, value in job_state().items() if key != "work"}

    job = Job.model_validate(older)

    assert job.work == WorkKeys.of(job.job_id)
    assert job.work.output == f"work/{job.job_id}/output.mp4"


def test_work_keys_that_leave_the_jobs_folder_are_refused() -> None:
    state = job_state()
    state["work"] = {**state["work"], "prefix": "videos/"}  # clean-up would delete outputs

    with pytest.raises(ValueError, match="work keys must be the job's"):
        Job.model_validate(state)
