"""The local AWS's in-process Lambda runtime: which handler a function name reaches, and the
answer the Lambda Python runtime would give (the interpreter's side: test_moto_workarounds.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.failures import InvalidSubtitles
from pipeline.local.lambdas import HandlerNotFound, handler_lookup, invoke_in_process
from pipeline.steps import finalise, notify

PREFIX = "vidp-local-"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def test_the_pipelines_steps_are_found_by_name_or_arn_with_any_qualifier() -> None:
    lookup = handler_lookup(PREFIX)

    assert lookup(f"{ARN}vidp-local-Finalise") is finalise.handler
    assert lookup(f"{ARN}vidp-local-Notify:$LATEST") is notify.handler
    assert lookup("vidp-local-Notify") is notify.handler
    assert lookup(f"{ARN}someone-elses-function") is None  # not ours: moto answers


def test_an_unknown_step_under_the_prefix_fails_naming_it_and_the_known_ones() -> None:
    missing = handler_lookup(PREFIX)(f"{ARN}vidp-local-Transcode")

    assert missing is not None
    with pytest.raises(HandlerNotFound, match=r"'Transcode' .*known: FetchSubtitles, Finalise, MarkFailed"):
        missing({}, None)


def test_a_result_is_json_and_the_context_names_the_function() -> None:
    def echo(event: Any, context: Any) -> Any:
        return {
            "event": event,
            "function": context.function_name,
            "ms": context.get_remaining_time_in_millis(),
        }

    body, error = invoke_in_process(echo, f"{ARN}vidp-local-Echo", b'{"a": 1}')

    assert error is None
    assert json.loads(body) == {"event": {"a": 1}, "function": "vidp-local-Echo", "ms": 300_000}


def test_a_raised_error_is_the_runtimes_error_document_with_its_class_name() -> None:
    def bad(event: Any, context: Any) -> Any:
        raise InvalidSubtitles("not an SRT file")

    body, error = invoke_in_process(bad, "vidp-local-FetchSubtitles", b"{}")

    document = json.loads(body)
    assert error == "Unhandled"
    assert (document["errorType"], document["errorMessage"]) == ("InvalidSubtitles", "not an SRT file")
    assert document["stackTrace"]
