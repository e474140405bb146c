"""The one definition: renders completely, its README diagram is current, its policies hold."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

import state_machine

SUBSTITUTIONS = {name: f"value-of-{name}" for name in state_machine.placeholders()}


def definition() -> dict[str, Any]:
    return state_machine.load(SUBSTITUTIONS)


def test_rendering_leaves_no_placeholder_and_is_valid_json() -> None:
    text = state_machine.render(SUBSTITUTIONS)
    assert "${" not in text
    assert json.loads(text)["StartAt"] == "ValidateInput"


def test_a_missing_or_unknown_substitution_is_refused() -> None:
    partial = dict(SUBSTITUTIONS)
    partial.pop("TableName")
    with pytest.raises(ValueError, match="TableName"):
        state_machine.render(partial)
    with pytest.raises(ValueError, match="Typo"):
        state_machine.render({**SUBSTITUTIONS, "Typo": "x"})
    with pytest.raises(ValueError, match="escaping"):
        state_machine.render({**SUBSTITUTIONS, "TableName": 'a"b'})


def test_readme_diagram_is_generated_from_the_definition() -> None:
    readme = (Path(state_machine.__file__).parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```mermaid\n(.*?)```", readme, re.S)
    assert found, "state_machine/README.md has no mermaid block"
    assert found.group(1) == state_machine.mermaid(), "regenerate the diagram: state_machine.mermaid()"


def test_the_states_of_the_architecture_are_there_in_order() -> None:
    states = definition()["States"]
    order = ["ValidateInput", "IsDuplicate", "FetchSubtitles", "BurnAndCompress", "Finalise",
             "RecordMetadata", "Notify"]  # fmt: skip
    for current, following in itertools.pairwise(order):
        state = states[current]
        assert following in (state.get("Next"), state.get("Default")), current
    assert states["MarkFailed"]["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "JobFailed" and states["JobFailed"]["Type"] == "Fail"


def test_every_task_has_a_timeout_and_the_machine_has_one() -> None:
    data = definition()
    assert data["TimeoutSeconds"] > 0
    for name, state in data["States"].items():
        if state["Type"] == "Task":
            assert state.get("TimeoutSeconds", 0) > 0, name


def test_every_work_state_is_caught_into_the_failure_branch() -> None:
    for name in ["FetchSubtitles", "BurnAndCompress", "Finalise", "RecordMetadata"]:
        catchers = definition()["States"][name]["Catch"]
        last = catchers[-1]
        assert last == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": f"$.failure.{name}",
            "Next": "MarkFailed",
        }


def test_validate_input_failing_starts_the_failure_branch_from_its_error_alone() -> None:
    # The input may be any JSON (a string, a list, a "failure" key of its own) and near the size
    # limit: the Catch keeps only the error, and ValidationFailed puts it where MarkFailed reads it.
    states = definition()["States"]
    assert states["ValidateInput"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "ValidationFailed"}
    ]
    assert states["ValidationFailed"]["Parameters"] == {"failure": {"ValidateInput.$": "$"}}
    assert states["ValidationFailed"]["Next"] == "MarkFailed"


def test_the_failure_branch_cannot_fail_without_the_reconciler_knowing() -> None:
    states = definition()["States"]
    assert states["MarkFailed"]["Catch"][-1]["Next"] == "FailureUnrecorded"
    assert states["FailureUnrecorded"]["Type"] == "Fail"


def test_invalid_input_is_never_retried_and_retries_are_jittered() -> None:
    never = {"InvalidInput", "InvalidMedia", "InvalidSubtitles", "InvalidStyle", "UnsafeUrl", "States.ALL"}
    for name, state in definition()["States"].items():
        for retrier in state.get("Retry", []):
            assert not never & set(retrier["ErrorEquals"]), name
            assert retrier["JitterStrategy"] == "FULL" and retrier["MaxDelaySeconds"] > 0, name


def test_the_ffmpeg_task_reports_through_a_token_with_heartbeats() -> None:
    task = definition()["States"]["BurnAndCompress"]
    assert task["Resource"] == "arn:aws:states:::ecs:runTask.waitForTaskToken"
    assert 0 < task["HeartbeatSeconds"] < task["TimeoutSeconds"]
    env = {item["Name"] for item in task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]}
    assert {"VIDP_TASK_TOKEN", "VIDP_VIDEO_URI", "VIDP_SUBTITLES_URI", "VIDP_OUTPUT_URI"} <= env
    retried = {error for retrier in task["Retry"] for error in retrier["ErrorEquals"]}
    assert "TranscodeFailed" in retried
    # A timeout is not retried in place: the timed-out task is stopped first, then tried again.
    timeouts = {"States.HeartbeatTimeout", "States.Timeout"}
    assert not timeouts & retried
    assert task["Catch"][0] == {
        "ErrorEquals": sorted(timeouts),
        "ResultPath": "$.failure.BurnAndCompress",
        "Next": "StopTimedOutTask",
    }
    assert task["Parameters"]["StartedBy.$"] == "$.job.video_id"
