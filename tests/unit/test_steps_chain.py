"""The steps chained as the definition chains them (Parameters in, result at ResultPath), in-process:
the happy path and the catch path, asserting what the caller and the operator see."""

from __future__ import annotations

import json
import traceback
from typing import Any
from urllib.parse import quote

import pytest

from pipeline.failures import InvalidInput, InvalidSubtitles
from pipeline.models import Job
from pipeline.steps.registry import load_handler
from tests.support.aws import (
    EXECUTION,
    STARTED_AT,
    Aws,
    encoded,
    request,
    verify_callback,
)
from tests.support.server import LocalServer, Reply


def invoke(step: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke a step as Lambda does: JSON in, JSON out (so nothing passes that JSON can't carry)."""
    return json.loads(json.dumps(load_handler(step)(json.loads(json.dumps(event)), None)))


def caught(err: Exception) -> dict[str, str]:
    """What a Catch puts at $.failure.<State> for a Lambda that raised ``err``."""
    cause = {
        "errorMessage": str(err),
        "errorType": type(err).__name__,
        "requestId": "req-1",
        "stackTrace": traceback.format_tb(err.__traceback__),
    }
    return {"Error": type(err).__name__, "Cause": json.dumps(cause)}


def test_happy_path_ends_with_a_saved_record_a_signed_callback_and_an_empty_work_prefix(
    aws: Aws, server: LocalServer
) -> None:
    url = server.route("/done", Reply(200))
    raw = request(aws, callback_url=url, task_id="t-1", batch_id="b-1")

    state = invoke("ValidateInput", {"request": raw, "execution_arn": EXECUTION, "started_at": STARTED_AT})
    assert state["duplicate"] is False
    state["subtitles"] = invoke("FetchSubtitles", {"job": state["job"]})
    job = Job.model_validate(state["job"])
    encoded(aws, job)  # BurnAndCompress, by the Fargate task
    state["output"] = invoke("Finalise", {"job": state["job"]})
    aws.save(job)  # RecordMetadata, a direct DynamoDB integration
    state["notified"] = invoke(
        "Notify",
        {"outcome": "completed", "job": state["job"], "output": state["output"], "started_at": STARTED_AT},
    )

    assert state["notified"]["status"] == "delivered"
    [post] = server.posts()
    body = verify_callback(post)
    assert (body["status"], body["task_id"], body["batch_id"]) == ("completed", "t-1", "b-1")
    assert quote(state["output"]["key"]) in body["file_url"] and "url" not in state["output"]
    record = aws.record(job.video_id)
    assert record is not None and record.status == "saved"
    assert record.callback is not None and record.callback.status == "delivered"
    assert aws.keys("work/") == []
    assert aws.keys("videos/") == [state["output"]["key"]]
    assert [event["detail-type"] for event in aws.events()] == ["VidP Video Processed"]


def test_catch_path_ends_with_a_failed_record_a_failure_callback_and_the_failed_event(
    aws: Aws, server: LocalServer
) -> None:
    hook = server.route("/failed", Reply(200))
    srt_url = server.route("/missing.srt", Reply(404))
    raw = request(aws, callback_url=hook, subtitles={"url": srt_url}, metadata={"n": 1})

    state = invoke("ValidateInput", {"request": raw, "execution_arn": EXECUTION, "started_at": STARTED_AT})
    with pytest.raises(InvalidSubtitles) as failure:
        invoke("FetchSubtitles", {"job": state["job"]})
    state["failure"] = {"FetchSubtitles": caught(failure.value)}
    state["failed"] = invoke("MarkFailed", {"state": state, "execution_arn": EXECUTION})
    state["notified"] = invoke("Notify", {"outcome": "failed", "failed": state["failed"]})

    assert state["failed"]["error_name"] == "InvalidSubtitles"  # JobFailed's ErrorPath
    [post] = [item for item in server.received if item.path == "/failed"]
    assert verify_callback(post) == {
        "status": "failed",
        "task_id": None,
        "batch_id": None,
        "video_id": state["job"]["video_id"],
        "job_id": state["job"]["job_id"],
        "error": "subtitle URL on 127.0.0.1 answered 404",
        "error_code": "INVALID_SUBTITLES",
        "failed_state": "FetchSubtitles",
        "metadata": {"n": 1},
    }
    record = aws.record(state["job"]["video_id"])
    assert record is not None
    assert (record.status, record.error_code, record.error_message) == (
        "failed",
        "INVALID_SUBTITLES",
        "subtitle URL on 127.0.0.1 answered 404",
    )
    assert record.callback is not None and record.callback.status == "delivered"
    assert aws.keys("work/") == []
    assert [event["detail-type"] for event in aws.events()] == ["VidP Video Failed"]


def test_invalid_request_path_still_leaves_a_record_and_calls_back(aws: Aws, server: LocalServer) -> None:
    hook = server.route("/failed", Reply(200))
    raw = {"video": {"s3_uri": "s3://vidp-test-bucket/incoming/x.mp4"}, "callback_url": hook, "crf": 99}

    with pytest.raises(InvalidInput) as failure:
        invoke("ValidateInput", {"request": raw, "execution_arn": EXECUTION, "started_at": STARTED_AT})
    state: dict[str, Any] = {"failure": {"ValidateInput": caught(failure.value)}}  # ValidationFailed's
    execution = aws.execution(raw)
    state["failed"] = invoke("MarkFailed", {"state": state, "execution_arn": execution})
    invoke("Notify", {"outcome": "failed", "failed": state["failed"]})

    assert state["failed"]["error_code"] == "INVALID_INPUT"
    [post] = server.posts()
    body = verify_callback(post)
    assert body["error"].startswith("invalid request: ")
    record = aws.record(state["failed"]["video_id"])
    assert record is not None and (record.status, record.failed_state) == ("failed", "ValidateInput")
    assert record.callback is not None and record.callback.status == "delivered"
