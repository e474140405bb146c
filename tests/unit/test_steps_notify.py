"""Notify: a signed callback in seed 002's schema, recorded on the job, and an EventBridge event."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from pipeline.adapters import webhooks
from pipeline.failures import WebhookVerificationFailed
from pipeline.models import CallbackDelivery, FailureReport, Job
from pipeline.steps.notify import handler
from tests.support.aws import (
    SECRET,
    Aws,
    claim,
    final_output,
    request,
    verify_callback,
)
from tests.support.server import LocalServer, Reply


def completed(job: Job) -> CallbackDelivery:
    event: dict[str, Any] = {
        "outcome": "completed",
        "job": job.model_dump(mode="json"),
        "output": final_output(job).model_dump(mode="json"),
        "started_at": "2026-01-02T03:04:05.678Z",
    }
    return CallbackDelivery.model_validate(handler(event, None))


def failed(report: FailureReport) -> CallbackDelivery:
    return CallbackDelivery.model_validate(
        handler({"outcome": "failed", "failed": report.model_dump(mode="json")}, None)
    )


def test_given_a_saved_job_when_notified_then_the_signed_callback_has_seed_002s_schema(
    aws: Aws, server: LocalServer
) -> None:
    url = server.route("/hooks/vidp", Reply(200))
    job = claim(request(aws, callback_url=url, task_id="t-1", batch_id="b-1", metadata={"user": 7}))

    delivery = completed(job)

    assert delivery == CallbackDelivery(
        status="delivered", webhook_id=f"msg_{job.job_id}_completed", attempts=1, http_status=200
    )
    [post] = server.posts()
    body = verify_callback(post)
    assert post.headers["webhook-id"] == f"msg_{job.job_id}_completed"
    assert post.headers["content-type"] == "application/json"
    assert body["status"] == "completed"
    assert (body["task_id"], body["batch_id"], body["video_id"], body["job_id"]) == (
        "t-1",
        "b-1",
        job.video_id,
        job.job_id,
    )
    file_url = urlsplit(body["file_url"])
    assert file_url.path.endswith(quote(job.final_key))
    assert parse_qs(file_url.query)["X-Amz-Expires"] == ["3600"]
    assert body["processing_time"] > 0
    assert body["results"] == {
        "file_info": {"file_size": 1234, "duration": 2.5, "format": "mp4"},
        "video_analysis": {"codec": "h264", "resolution": "1280x720", "quality_score": None},
        "audio_analysis": {"codec": "aac"},
    }
    assert body["metadata"] == {"user": 7}
    record = aws.record(job.video_id)
    assert record is not None
    assert record.callback == delivery


def test_given_a_saved_job_when_notified_then_the_file_url_streams_the_final_object_for_an_hour(
    aws: Aws, server: LocalServer
) -> None:
    job = claim(request(aws, callback_url=server.route("/hook", Reply(200))))
    aws.put(job.final_key, b"streamable")

    completed(job)

    body = verify_callback(server.posts()[0])
    query = parse_qs(urlsplit(body["file_url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["3600"]
    response = requests.get(body["file_url"], timeout=5)  # moto serves presigned URLs in-process
    assert (response.status_code, response.content) == (200, b"streamable")


def test_given_a_saved_job_when_notified_then_no_presigned_url_is_in_the_event(aws: Aws) -> None:
    job = claim(request(aws))

    completed(job)

    [event] = aws.events()
    assert "file_url" not in event["detail"] and event["detail"]["video_id"] == job.video_id


def test_given_a_callback_when_the_body_or_secret_differs_then_verification_fails(
    aws: Aws, server: LocalServer
) -> None:
    job = claim(request(aws, callback_url=server.route("/hook", Reply(204))))
    completed(job)
    [post] = server.posts()

    with pytest.raises(WebhookVerificationFailed):
        verify_callback(replace(post, body=post.body.replace(b"h264", b"h265")))
    with pytest.raises(WebhookVerificationFailed):
        webhooks.verify(webhooks.new_webhook_secret(), post.headers, post.body)
    assert SECRET not in str(post.headers)


def test_given_a_saved_job_when_notified_then_the_processed_event_is_on_the_bus(aws: Aws) -> None:
    job = claim(request(aws, task_id="t-2"))

    delivery = completed(job)

    assert delivery.status == "skipped"
    [event] = aws.events()
    assert (event["source"], event["detail-type"]) == ("vidp.pipeline", "VidP Video Processed")
    assert event["detail"]["status"] == "completed"
    assert (event["detail"]["video_id"], event["detail"]["task_id"]) == (job.video_id, "t-2")


def test_given_a_receiver_that_keeps_failing_when_notified_then_it_is_recorded_and_nothing_raises(
    aws: Aws, server: LocalServer
) -> None:
    job = claim(request(aws, callback_url=server.route("/down", Reply(503))))
    aws.save(job)

    delivery = completed(job)

    assert delivery.status == "failed"
    assert (delivery.attempts, delivery.http_status) == (5, 503)
    assert len(server.posts()) == 5
    assert len({post.headers["webhook-id"] for post in server.posts()}) == 1  # one id for all attempts
    record = aws.record(job.video_id)
    assert record is not None
    assert record.status == "saved"  # a failed callback never fails a saved job
    assert record.callback == delivery
    assert [event["detail-type"] for event in aws.events()] == ["VidP Video Processed"]


def test_given_a_delivered_callback_when_notify_is_retried_then_it_is_not_sent_again(
    aws: Aws, server: LocalServer
) -> None:
    job = claim(request(aws, callback_url=server.route("/once", Reply(200))))
    first = completed(job)

    again = completed(job)  # Step Functions retried the Lambda (e.g. the event put failed)

    assert again == first
    assert len(server.posts()) == 1


def test_given_a_callback_to_the_metadata_address_when_notified_then_failed_and_recorded(aws: Aws) -> None:
    job = claim(request(aws, callback_url="http://169.254.169.254/latest/"))

    delivery = completed(job)

    assert (delivery.status, delivery.attempts) == ("failed", 0)
    record = aws.record(job.video_id)
    assert record is not None and record.callback == delivery


def test_given_a_failure_report_when_notified_then_the_failure_callback_and_event_are_sent(
    aws: Aws, server: LocalServer
) -> None:
    url = server.route("/failures", Reply(200))
    job = claim(request(aws, callback_url=url, task_id="t-3", metadata={"a": 1}))
    report = FailureReport(
        error_code="INVALID_MEDIA",
        error="the video has no video stream",
        error_name="InvalidMedia",
        failed_state="BurnAndCompress",
        job_id=job.job_id,
        video_id=job.video_id,
        task_id="t-3",
        batch_id=None,
        metadata={"a": 1},
    )

    delivery = failed(report)  # the URL is the one in the job's record

    assert delivery.status == "delivered"
    [post] = server.posts()
    assert post.headers["webhook-id"] == f"msg_{job.job_id}_failed"
    assert verify_callback(post) == {
        "status": "failed",
        "task_id": "t-3",
        "batch_id": None,
        "video_id": job.video_id,
        "job_id": job.job_id,
        "error": "the video has no video stream",
        "error_code": "INVALID_MEDIA",
        "failed_state": "BurnAndCompress",
        "metadata": {"a": 1},
    }
    [event] = aws.events()
    assert event["detail-type"] == "VidP Video Failed"
    assert event["detail"]["error_code"] == "INVALID_MEDIA"
    record = aws.record(job.video_id)
    assert record is not None and record.callback == delivery


def test_given_a_failed_duplicate_without_its_own_job_when_notified_then_nothing_is_sent(aws: Aws) -> None:
    report = FailureReport(
        error_code="INVALID_INPUT",
        error="invalid request",
        error_name="InvalidInput",
        failed_state="ValidateInput",
    )

    assert failed(report).status == "skipped"
    assert aws.events() == []  # the job it named is another execution's: no "failed" event for it


def test_given_a_callback_url_with_a_token_when_notified_then_logs_are_json_lines_without_it(
    aws: Aws, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = claim(request(aws, callback_url=server.route("/hook", Reply(200)) + "?token=tok-s3cr3t"))

    completed(job)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    notified = [line for line in lines if line["message"] == "notified"]
    assert notified and notified[0]["callback_host"] == "http://127.0.0.1/..."
    assert all("tok-s3cr3t" not in json.dumps(line) for line in lines)
    assert all(SECRET not in json.dumps(line) for line in lines)
