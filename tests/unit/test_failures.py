"""``pipeline.failures``: each error's code and retryability, and the definition's Retry lists agree
with them; what Step Functions reports becomes the one line a failed job records."""

from __future__ import annotations

import json
from typing import Any

import pytest

import state_machine
from pipeline import failures
from pipeline.failures import InvalidInput, VidpError


def retry_rules() -> list[tuple[str, dict[str, Any]]]:
    template = state_machine.load({name: f"${{{name}}}" for name in state_machine.placeholders()})
    return [(name, rule) for name, state in template["States"].items() for rule in state.get("Retry", [])]


def retried_errors_of_ours() -> set[str]:
    ours = set(failures.error_classes())
    return {error for _, rule in retry_rules() for error in rule["ErrorEquals"] if error in ours}


def test_every_error_the_definition_retries_is_retryable() -> None:
    for error in retried_errors_of_ours():
        assert failures.error_classes()[error].retryable, f"{error} is retried but not retryable"


def test_every_retryable_error_is_retried_by_the_definition_or_inside_its_step() -> None:
    retryable = {name for name, cls in failures.error_classes().items() if cls.retryable}

    assert retried_errors_of_ours() == retryable - failures.RETRIED_INSIDE_STEPS
    assert retryable >= failures.RETRIED_INSIDE_STEPS
    assert not failures.RETRIED_INSIDE_STEPS & retried_errors_of_ours()


def test_invalid_input_is_never_retried_and_is_what_the_cli_calls_invalid() -> None:
    invalid = {name for name, cls in failures.error_classes().items() if issubclass(cls, InvalidInput)}

    assert {"InvalidInput", "ObjectNotFound", "InvalidMedia", "UnsafeUrl", "JobConflict"} <= invalid
    for name in invalid:
        cls = failures.error_classes()[name]
        assert not cls.retryable
        assert failures.is_invalid_input(cls.code)
    assert not failures.is_invalid_input("TRANSCODE_FAILED")
    assert not failures.is_invalid_input(failures.TIMEOUT)


def test_every_code_is_stable_text_and_names_one_meaning() -> None:
    codes: dict[str, set[str]] = {}
    for name, cls in failures.error_classes().items():
        assert cls.code.isupper() and " " not in cls.code
        codes.setdefault(cls.code, set()).add(name)
    # Only a missing object shares its code with its parent: it is recorded as invalid input.
    assert {code: names for code, names in codes.items() if len(names) > 1} == {
        "INVALID_INPUT": {"InvalidInput", "ObjectNotFound"}
    }


@pytest.mark.parametrize(
    ("error_name", "code"),
    [
        ("InvalidMedia", "INVALID_MEDIA"),
        ("ObjectNotFound", "INVALID_INPUT"),
        ("States.Timeout", failures.TIMEOUT),
        ("States.HeartbeatTimeout", failures.TIMEOUT),
        ("Sandbox.Timedout", failures.TIMEOUT),
        ("KeyError", failures.INTERNAL_ERROR),
        ("Lambda.Unknown", failures.INTERNAL_ERROR),
    ],
)
def test_error_names_become_stable_codes(error_name: str, code: str) -> None:
    assert failures.error_code(error_name) == code


def test_a_lambda_cause_gives_its_message_and_a_task_cause_its_text() -> None:
    lambda_cause = json.dumps({"errorMessage": "bad   video", "errorType": "InvalidMedia", "stackTrace": []})
    ecs_cause = json.dumps({"StoppedReason": "Essential container in task exited", "TaskArn": "arn:..."})

    assert failures.failure_message("InvalidMedia", lambda_cause, "ValidateInput") == "bad video"
    assert failures.cause_text(ecs_cause) == "Essential container in task exited"
    assert failures.failure_message("TranscodeFailed", "ffmpeg died\n", "BurnAndCompress") == "ffmpeg died"


def test_a_foreign_error_keeps_one_line_and_names_its_state() -> None:
    cause = json.dumps({"errorMessage": "1 validation error\n  callback_url https://x/?token=secret"})

    message = failures.failure_message("ValidationError", cause, "Notify")

    assert message == "Notify failed with ValidationError: 1 validation error"
    assert "secret" not in message


def test_a_timeout_says_which_state_timed_out() -> None:
    assert failures.failure_message("States.Timeout", None, "BurnAndCompress") == "BurnAndCompress timed out"
    assert failures.failure_message("States.HeartbeatTimeout", "no beat", "X") == "X timed out: no beat"
    assert failures.failure_message("Custom", "", "X") == "X failed with Custom"


def test_messages_are_one_bounded_line() -> None:
    err = VidpError("a\nb   c" + "x" * 1000)

    assert "\n" not in str(err) and len(str(err)) == 500
    assert len(failures.failure_message("InvalidInput", "y" * 2000, "S")) == 500


def test_a_foreign_message_starting_with_a_blank_line_keeps_its_first_real_line() -> None:
    cause = json.dumps({"errorMessage": "\n'job_id'\nmore", "errorType": "KeyError"})

    assert (
        failures.failure_message("KeyError", cause, "FetchSubtitles")
        == "FetchSubtitles failed with KeyError: 'job_id'"
    )
