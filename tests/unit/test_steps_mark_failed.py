"""MarkFailed: every failed execution leaves a failed record with a code, a one-line message and
the state that failed; a saved job stays saved; nothing is left under work/ or at the final key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.failures import error_code
from pipeline.models import FailureReport, Job, JobRequest, video_id_for
from pipeline.steps.finalise import handler as finalise_handler
from pipeline.steps.mark_failed import handler
from tests.support.aws import EXECUTION, Aws, claim, encoded, request


def lambda_cause(error_type: str, message: str) -> str:
    """The Cause Step Functions gives a Lambda error: the runtime's JSON."""
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": "r-1", "stackTrace": ["  File ...\n"]}
    )


def mark(state: dict[str, Any], execution: str = EXECUTION) -> FailureReport:
    return FailureReport.model_validate(handler({"state": state, "execution_arn": execution}, None))


def after(job: Job, state_name: str, error: str, cause: str | None) -> dict[str, Any]:
    """The state data a Catch hands over once ValidateInput has run."""
    return {
        "duplicate": False,
        "job": job.model_dump(mode="json"),
        "failure": {state_name: {"Error": error, "Cause": cause}},
    }


def test_given_a_lambda_error_when_marked_then_the_record_is_failed_with_its_code_and_message(
    aws: Aws,
) -> None:
    job = claim(request(aws, callback_url="https://hooks.example.com/x", task_id="t-1", metadata={"m": 1}))
    cause = lambda_cause("InvalidSubtitles", "SRT file is an HLS playlist (#EXTM3U), not SRT")

    report = mark(after(job, "FetchSubtitles", "InvalidSubtitles", cause))

    assert report == FailureReport(
        error_code="INVALID_SUBTITLES",
        error="SRT file is an HLS playlist (#EXTM3U), not SRT",
        error_name="InvalidSubtitles",
        failed_state="FetchSubtitles",
        job_id=job.job_id,
        video_id=job.video_id,
        task_id="t-1",
        batch_id=None,
        metadata={"m": 1},
    )
    record = aws.record(job.video_id)
    assert record is not None
    assert (record.status, record.error_code, record.failed_state) == (
        "failed",
        "INVALID_SUBTITLES",
        "FetchSubtitles",
    )
    assert record.error_message == "SRT file is an HLS playlist (#EXTM3U), not SRT"


def test_given_the_tasks_plain_cause_when_marked_then_it_is_the_message_and_work_is_cleaned(aws: Aws) -> None:
    job = claim(request(aws))
    encoded(aws, job)  # what a task leaves behind, say, before the state failed anyway

    report = mark(after(job, "BurnAndCompress", "InvalidMedia", "the file has no video stream (audio only)"))

    assert (report.error_code, report.error) == ("INVALID_MEDIA", "the file has no video stream (audio only)")
    assert aws.keys("work/") == []
    record = aws.record(job.video_id)
    assert record is not None and record.status == "failed"


def test_given_a_failure_after_finalise_when_marked_then_nothing_is_left_at_the_final_key(aws: Aws) -> None:
    job = claim(request(aws))
    encoded(aws, job)
    finalise_handler({"job": job.model_dump(mode="json")}, None)
    assert aws.keys("videos/") != []

    report = mark(
        after(job, "RecordMetadata", "DynamoDB.AmazonDynamoDBException", "Access denied (Service: ...)")
    )

    assert report.error_code == "INTERNAL_ERROR"
    assert aws.keys("videos/") == []
    assert aws.keys("work/") == []


@pytest.mark.parametrize("error", ["States.Timeout", "States.HeartbeatTimeout"])
def test_given_a_timeout_when_marked_then_the_code_is_timeout(aws: Aws, error: str) -> None:
    job = claim(request(aws))

    report = mark(after(job, "BurnAndCompress", error, None))

    assert (report.error_code, report.error) == ("TIMEOUT", "BurnAndCompress timed out")


def test_given_an_unexpected_error_when_marked_then_internal_error_with_one_line(aws: Aws) -> None:
    job = claim(request(aws))
    cause = lambda_cause(
        "ValidationError", "1 validation error for JobEvent\njob.callback_url\n  https://secret"
    )

    report = mark(after(job, "Finalise", "ValidationError", cause))

    assert report.error_code == "INTERNAL_ERROR"
    assert report.error == "Finalise failed with ValidationError: 1 validation error for JobEvent"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("InvalidInput", "INVALID_INPUT"),
        ("InvalidMedia", "INVALID_MEDIA"),
        ("UnsafeUrl", "UNSAFE_URL"),
        ("SubtitleFetchFailed", "SUBTITLE_FETCH_FAILED"),
        ("TranscodeTimeout", "TRANSCODE_TIMEOUT"),
        ("StorageUnavailable", "STORAGE_UNAVAILABLE"),
        ("States.Timeout", "TIMEOUT"),
        ("Lambda.ServiceException", "INTERNAL_ERROR"),
        ("States.TaskFailed", "INTERNAL_ERROR"),
    ],
)
def test_error_names_map_to_stable_codes(name: str, code: str) -> None:
    assert error_code(name) == code


def test_given_a_saved_job_when_marked_then_it_stays_saved_and_keeps_its_output(aws: Aws) -> None:
    job = claim(request(aws))
    encoded(aws, job)
    finalise_handler({"job": job.model_dump(mode="json")}, None)
    aws.save(job)

    report = mark(after(job, "Notify", "States.Timeout", None))

    assert report.job_id == job.job_id
    record = aws.record(job.video_id)
    assert record is not None
    assert (record.status, record.error_code) == ("saved", None)
    assert aws.keys("videos/") != []


def test_given_mark_failed_retried_when_marked_again_then_same_report_and_record(aws: Aws) -> None:
    job = claim(request(aws))
    state = after(job, "FetchSubtitles", "InvalidSubtitles", lambda_cause("InvalidSubtitles", "empty"))
    first = mark(state)

    again = mark(state)

    assert again == first
    record = aws.record(job.video_id)
    assert record is not None and (record.status, record.error_message) == ("failed", "empty")


# --- ValidateInput failed: no job in the state ---------------------------------------------------


def before(aws: Aws, raw: Any, cause: str, name: str = "run-1") -> dict[str, Any]:
    """The state when ValidateInput fails (only the failure: the ValidationFailed state), with
    the execution whose input ``raw`` is."""
    aws.execution(raw, name)
    return {
        "failure": {"ValidateInput": {"Error": "InvalidInput", "Cause": lambda_cause("InvalidInput", cause)}}
    }


def test_given_an_invalid_request_when_marked_then_a_failed_record_exists_for_it(aws: Aws) -> None:
    raw = {
        "video": {"s3_uri": "s3://vidp-test-bucket/incoming/clip.mp4"},
        "resolution": "999p",
        "callback_url": "https://hooks.example.com/vidp",
        "task_id": "t-9",
        "batch_id": "not a valid id!",
        "metadata": {"order": 5},
    }

    report = mark(before(aws, raw, "invalid request: subtitles: Field required"))

    assert report.job_id is not None and report.job_id.startswith("job-")
    assert report.video_id == video_id_for(report.job_id)
    assert (report.task_id, report.batch_id) == ("t-9", None)
    assert report.metadata == {"order": 5}
    assert (report.error_code, report.failed_state) == ("INVALID_INPUT", "ValidateInput")
    record = aws.record(report.video_id)
    assert record is not None
    assert (record.status, record.filename, record.execution_arn) == ("failed", "clip.mp4", EXECUTION)
    assert record.callback_url == "https://hooks.example.com/vidp"  # NotifyFailure reads it there
    assert record.error_message == "invalid request: subtitles: Field required"
    assert record.resolution is None  # "999p" was not valid


def test_given_a_valid_request_whose_video_is_missing_when_marked_then_its_job_id_is_the_real_one(
    aws: Aws,
) -> None:
    raw = request(aws)
    aws.s3.delete_object(Bucket="vidp-test-bucket", Key="incoming/my clip.mp4")

    report = mark(before(aws, raw, "video object not found: s3://..."))

    assert report.job_id == JobRequest.model_validate(raw).resolved_job_id()
    record = aws.record(video_id_for(report.job_id))
    assert record is not None and record.status == "failed"


def test_given_a_request_with_its_own_job_id_when_marked_then_that_id_is_kept(aws: Aws) -> None:
    report = mark(before(aws, {"job_id": "order-77", "video": 3}, "invalid request: video: ..."))

    assert report.job_id == "order-77"


def test_given_validate_input_failed_after_claiming_when_marked_then_its_record_is_failed(aws: Aws) -> None:
    raw = request(aws)
    job = claim(raw)  # the put succeeded, then the Lambda timed out

    aws.execution(raw)
    report = mark({"failure": {"ValidateInput": {"Error": "States.Timeout", "Cause": ""}}})

    assert (report.video_id, report.error_code) == (job.video_id, "TIMEOUT")
    record = aws.record(job.video_id)
    assert record is not None and record.status == "failed"


def test_given_a_failed_duplicate_of_a_running_job_when_marked_then_the_job_is_untouched(aws: Aws) -> None:
    raw = request(aws, callback_url="https://hooks.example.com/x")
    job = claim(raw)

    state = before(aws, raw, "video object not found", name="run-1-duplicate")
    report = mark(state, execution=EXECUTION + "-duplicate")

    assert report.video_id is None  # nothing to record, nobody to call
    record = aws.record(job.video_id)
    assert record is not None and record.status == "processing"


def test_given_a_request_forging_a_job_and_a_failure_when_marked_then_the_other_job_is_untouched(
    aws: Aws,
) -> None:
    victim = claim(request(aws, key="incoming/victim.mp4"), execution="arn:victim")
    encoded(aws, victim)
    forged = {
        "job": victim.model_dump(mode="json"),
        "failure": {"Finalise": {"Error": "InvalidMedia", "Cause": "forged"}},
        "video": {"s3_uri": "s3://vidp-test-bucket/incoming/x.mp4"},
    }

    report = mark(before(aws, forged, "invalid request: job: Extra inputs are not permitted"))

    assert report.failed_state == "ValidateInput"
    assert report.job_id != victim.job_id
    record = aws.record(victim.video_id)
    assert record is not None and record.status == "processing"
    assert aws.keys(victim.work.prefix) != []


@pytest.mark.parametrize("raw", ["a string", [1, 2], None, 42])
def test_given_an_input_that_is_not_an_object_when_marked_then_a_record_keyed_by_the_execution(
    aws: Aws, raw: Any
) -> None:
    report = mark(before(aws, raw, "invalid request: request: Input should be a valid dictionary"))

    assert report.job_id is not None and report.video_id is not None
    record = aws.record(report.video_id)
    assert record is not None
    assert (record.status, record.error_code, record.execution_arn) == ("failed", "INVALID_INPUT", EXECUTION)


def test_given_a_state_without_failure_when_marked_then_it_still_reports(aws: Aws) -> None:
    aws.execution({"video": 1})
    report = mark({"video": 1})

    assert (report.error_code, report.failed_state) == ("INTERNAL_ERROR", "Unknown")
