"""ValidateInput: a request becomes one job record, or a clean InvalidInput before any record."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.failures import InvalidInput
from pipeline.models import JobRequest, Validated, video_id_for
from pipeline.steps.validate_input import handler
from tests.support.aws import BUCKET, EXECUTION, STARTED_AT, Aws, request


def run(raw: Any, execution: str = EXECUTION) -> Validated:
    return Validated.model_validate(
        handler({"request": raw, "execution_arn": execution, "started_at": STARTED_AT}, None)
    )


def test_given_a_valid_request_when_validated_then_a_processing_record_and_the_job_exist(aws: Aws) -> None:
    raw = request(aws, resolution="480p", task_id="task-1", batch_id="batch-9", metadata={"k": "v"})

    result = run(raw)

    job = result.job
    assert result.duplicate is False
    assert job.job_id == JobRequest.model_validate(raw).resolved_job_id()
    assert job.video_id == video_id_for(job.job_id)
    assert (job.bucket, job.video_key, job.filename) == (BUCKET, "incoming/my clip.mp4", "my clip.mp4")
    assert job.video_size > 0
    assert job.options.resolution == "480p"
    assert job.created_at == STARTED_AT
    record = aws.record(job.video_id)
    assert record is not None
    assert record.status == "processing"
    assert (record.job_id, record.filename, record.created_at) == (job.job_id, "my clip.mp4", STARTED_AT)
    assert (record.execution_arn, record.resolution) == (EXECUTION, "480p")
    assert (record.task_id, record.batch_id, record.source_video_id) == ("task-1", "batch-9", None)


def test_given_a_recorded_job_when_another_execution_sends_it_again_then_it_is_a_duplicate(aws: Aws) -> None:
    raw = request(aws)
    first = run(raw)

    second = run(raw, execution=EXECUTION + "-again")

    assert second.duplicate is True
    assert second.job.job_id == first.job.job_id
    record = aws.record(first.job.video_id)
    assert record is not None
    assert record.execution_arn == EXECUTION  # the first execution keeps the job


def test_given_a_claimed_job_when_the_same_execution_retries_validation_then_it_carries_on(aws: Aws) -> None:
    raw = request(aws)
    run(raw)

    retried = run(raw)  # the Lambda's answer was lost and Step Functions retried it

    assert retried.duplicate is False


def test_given_a_caller_job_id_when_validated_then_it_is_the_job_id(aws: Aws) -> None:
    result = run(request(aws, job_id="order-42"))

    assert result.job.job_id == "order-42"
    assert result.job.work.prefix == "work/order-42/"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resolution": "999p"}, "resolution"),
        ({"subtitles": {}}, "subtitles"),
        ({"callback_url": "ftp://example.com/x"}, "callback_url"),
        ({"unexpected": 1}, "unexpected"),
        ({"style": {"font_family": "x';drawtext"}}, "style.font_family"),
    ],
)
def test_given_a_bad_request_when_validated_then_invalid_input_names_the_field_and_no_record(
    aws: Aws, change: dict[str, Any], field: str
) -> None:
    raw = {**request(aws), **change}

    with pytest.raises(InvalidInput) as caught:
        run(raw)

    assert type(caught.value).__name__ == "InvalidInput"
    assert f"invalid request: {field}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "drawtext" not in str(caught.value)  # the value is not echoed back


def test_given_an_input_that_is_not_an_object_when_validated_then_invalid_input(aws: Aws) -> None:
    with pytest.raises(InvalidInput, match="invalid request"):
        run(["not", "a", "request"])


def test_given_a_missing_video_when_validated_then_invalid_input_video_object_not_found(aws: Aws) -> None:
    raw = request(aws)
    raw["video"]["s3_uri"] = f"s3://{BUCKET}/incoming/nowhere.mp4"

    with pytest.raises(InvalidInput, match="video object not found"):
        run(raw)

    assert aws.keys("work/") == []


def test_given_a_video_in_another_bucket_when_validated_then_invalid_input(aws: Aws) -> None:
    raw = request(aws)
    raw["video"]["s3_uri"] = "s3://someone-elses-bucket/video.mp4"

    with pytest.raises(InvalidInput, match="someone-elses-bucket"):
        run(raw)


@pytest.mark.parametrize("key", ["incoming/playlist.m3u8", "incoming/noextension", "incoming/clip.mp4.exe"])
def test_given_a_video_with_a_refused_extension_when_validated_then_invalid_input(aws: Aws, key: str) -> None:
    with pytest.raises(InvalidInput, match="not accepted"):
        run(request(aws, key=key))


def test_given_an_upper_case_extension_when_validated_then_it_is_accepted(aws: Aws) -> None:
    assert run(request(aws, key="incoming/CLIP.MOV")).duplicate is False


def test_given_an_empty_video_when_validated_then_invalid_input(aws: Aws) -> None:
    raw = request(aws)
    aws.put("incoming/my clip.mp4", b"")

    with pytest.raises(InvalidInput, match="empty"):
        run(raw)


def test_given_a_video_over_the_limit_when_validated_then_invalid_input(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.steps.settings import step_settings

    monkeypatch.setenv("VIDP_MAX_VIDEO_BYTES", "10")
    step_settings.cache_clear()

    with pytest.raises(InvalidInput, match="over the limit of 10 bytes"):
        run(request(aws))


@pytest.mark.parametrize(
    "key",
    [
        "incoming/a+b=c.mp4",
        "incoming/literal%2Bplus.mp4",
        "incoming/vidéo 字幕.mp4",
        'incoming/it\'s "q":,[;.mp4',
    ],
)
def test_given_an_awkward_key_when_validated_then_the_object_is_found_as_written(aws: Aws, key: str) -> None:
    result = run(request(aws, key=key))

    assert result.job.video_key == key
    assert result.job.filename == key.rpartition("/")[2]
    assert result.job.final_key.startswith(f"videos/{result.job.video_id}/")
