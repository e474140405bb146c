"""The callback receiver of seed 002 on 127.0.0.1: the resolver API Gateway runs, served by
``ApiServer``, storing in the local AWS's callbacks table.

The pipeline's own signed callbacks reach it from real jobs (the real state machine, steps, task
and ffmpeg); forged, tampered and replayed ones are sent by hand. Judged by what a caller sees:
the HTTP answers, the JSON error shape, the callbacks read back, the job record's delivery.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.adapters import webhooks
from pipeline.api.receiver import handler, make_receiver
from pipeline.api.receiver_models import receiver_settings
from pipeline.local.aws import LocalAws
from pipeline.local.http_api import ApiServer, Mount, proxy_event
from pipeline.local.jobs import read_record
from pipeline.models import JobRecord, JobRequest, video_id_for
from pipeline.samples import make_clip
from tests.conftest import SIMPLE_SRT

EXECUTION_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(allow_loopback=True) as local:
        yield local


@pytest.fixture(scope="module")
def api(aws: LocalAws) -> Iterator[ApiServer]:
    with ApiServer([Mount(("/callback", "/test"), make_receiver)]) as server:
        yield server


@pytest.fixture(scope="module")
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def video(aws: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> str:
    clip = make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", width=320, height=240, seconds=1, fps=15)
    aws.client("s3").upload_file(str(clip), aws.bucket, "uploads/receiver/clip.mp4")
    aws.client("s3").put_object(Bucket=aws.bucket, Key="uploads/receiver/clip.srt", Body=SIMPLE_SRT)
    return f"s3://{aws.bucket}/uploads/receiver/clip.mp4"


@pytest.fixture
def simulate_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The receiver as deployed in production: ``VIDP_RECEIVER_SIMULATE=0``."""
    monkeypatch.setenv("VIDP_RECEIVER_SIMULATE", "0")
    receiver_settings.cache_clear()
    yield
    monkeypatch.undo()
    receiver_settings.cache_clear()


def run_job(aws: LocalAws, request: dict[str, Any]) -> tuple[str, JobRecord | None]:
    job = JobRequest.model_validate(request)
    described = aws.wait(aws.start_job(job), timeout=EXECUTION_TIMEOUT)
    return described["status"], read_record(aws, video_id_for(job.resolved_job_id()))


def signed(
    secret: str, payload: Any, webhook_id: str, *, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, webhooks.sign(secret, webhook_id, at or datetime.now(UTC), body)


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """The response is the API's one error shape with this status and code; its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# --- the local resources ------------------------------------------------------------------------


def test_the_local_aws_has_the_callbacks_table_and_names_it_in_its_environment(aws: LocalAws) -> None:
    table = aws.client("dynamodb").describe_table(TableName="vidp-local-callbacks")["Table"]
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in table["GlobalSecondaryIndexes"]
    }

    assert [k["AttributeName"] for k in table["KeySchema"]] == ["task_id", "webhook_id"]
    assert indexes == {
        "batch_id-index": ["batch_id", "received_at"],
        "received-index": ["kind", "received_at"],
    }
    assert (
        aws.env()["VIDP_CALLBACKS_TABLE_NAME"]
        == os.environ["VIDP_CALLBACKS_TABLE_NAME"]
        == table["TableName"]
    )
    assert aws.env()["VIDP_RECEIVER_SIMULATE"] == "1"


# --- the pipeline's own callbacks ---------------------------------------------------------------


def test_the_pipelines_signed_callbacks_are_stored_and_read_back_by_task_and_batch(
    aws: LocalAws, http: httpx.Client, api: ApiServer, video: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(2048))
    aws.client("s3").upload_file(str(broken), aws.bucket, "uploads/receiver/broken.mp4")

    def job(key: str, task_id: str) -> dict[str, Any]:
        return {"video": {"s3_uri": f"s3://{aws.bucket}/uploads/receiver/{key}"},
                "subtitles": {"s3_uri": video.replace(".mp4", ".srt")}, "resolution": "360p",
                "preset": "ultrafast", "task_id": task_id, "batch_id": "batch-rcv-1",
                "callback_url": f"{api.url}/callback/{task_id}"}  # fmt: skip

    status, saved = run_job(aws, job("clip.mp4", "task-ok"))
    failed_status, failed = run_job(aws, job("broken.mp4", "task-ko"))

    assert (status, failed_status) == ("SUCCEEDED", "FAILED")
    assert saved is not None and saved.callback is not None and failed is not None and failed.callback
    for delivery in (saved.callback, failed.callback):  # answered 200 at the first attempt
        assert (delivery.status, delivery.http_status, delivery.attempts) == ("delivered", 200, 1)

    task = http.get("/callback/task-ok")
    assert task.status_code == 200, task.text
    got = task.json()
    assert got["task_id"] == "task-ok" and got["count"] == 1 and got["latest"] == got["callbacks"][0]
    stored = got["latest"]
    assert (stored["status"], stored["verified"], stored["source"]) == ("completed", True, "webhook")
    assert (stored["webhook_id"], stored["batch_id"]) == (saved.callback.webhook_id, "batch-rcv-1")
    assert stored["payload"]["video_id"] == saved.video_id and stored["payload"]["job_id"] == saved.job_id
    assert stored["payload"]["results"]["video_analysis"]["resolution"] == "320x240"

    batch = http.get("/callback/batch/batch-rcv-1").json()
    assert (batch["count"], batch["total"], batch["counts"]) == (2, 2, {"completed": 1, "failed": 1})
    assert [c["task_id"] for c in batch["callbacks"]] == ["task-ko", "task-ok"]  # newest first
    assert batch["callbacks"][0]["payload"]["error_code"] == "INVALID_MEDIA"
    assert batch["next_token"] is None


# --- signed by hand: tampered, forged, replayed ---------------------------------------------------


def test_a_tampered_body_is_refused_with_401_and_not_stored(aws: LocalAws, http: httpx.Client) -> None:
    body, headers = signed(aws.webhook_secret, {"status": "completed", "task_id": "task-tampered"}, "msg_t")
    tampered = body.replace(b"completed", b"failed")

    message = error_of(
        http.post("/callback/task-tampered", content=tampered, headers=headers), 401, "UNAUTHORIZED"
    )

    assert "signature" in message and headers["webhook-signature"].split(",")[1] not in message
    error_of(http.get("/callback/task-tampered"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "forge",
    ["unsigned", "another secret", "stale timestamp", "malformed signature"],
)
def test_a_forged_callback_is_refused_with_401(aws: LocalAws, http: httpx.Client, forge: str) -> None:
    payload = {"status": "completed", "task_id": "task-forged"}
    secret = webhooks.new_webhook_secret() if forge == "another secret" else aws.webhook_secret
    at = datetime.now(UTC) - timedelta(minutes=10) if forge == "stale timestamp" else None
    body, headers = signed(secret, payload, "msg_f", at=at)
    if forge == "unsigned":
        headers = {"content-type": "application/json"}
    if forge == "malformed signature":
        headers["webhook-signature"] = "v1"

    error_of(http.post("/callback/task-forged", content=body, headers=headers), 401, "UNAUTHORIZED")
    error_of(http.get("/callback/task-forged"), 404, "NOT_FOUND")


def test_the_same_webhook_id_twice_is_stored_once(aws: LocalAws, http: httpx.Client) -> None:
    first = signed(
        aws.webhook_secret, {"status": "failed", "task_id": "task-dup", "batch_id": "b-dup"}, "msg_d"
    )
    retry = signed(aws.webhook_secret, {"status": "completed", "task_id": "task-dup"}, "msg_d")

    answers = [
        http.post("/callback/task-dup", content=body, headers=headers).json()
        for body, headers in (first, retry)
    ]

    assert answers == [
        {"stored": True, "duplicate": False, "task_id": "task-dup", "webhook_id": "msg_d"},
        {"stored": True, "duplicate": True, "task_id": "task-dup", "webhook_id": "msg_d"},
    ]
    got = http.get("/callback/task-dup").json()
    assert got["count"] == 1 and got["latest"]["status"] == "failed"  # the first copy is kept
    assert http.get("/callback/batch/b-dup").json()["counts"] == {"completed": 0, "failed": 1}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"task_id": "task-bad"}, "status"),
        ({"status": "completed", "task_id": "another-task"}, "task_id"),
        ({"status": "completed", "batch_id": ""}, "batch_id"),
    ],
)
def test_a_signed_body_that_is_no_callback_of_this_task_is_422(
    aws: LocalAws, http: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    body, headers = signed(aws.webhook_secret, payload, "msg_bad")

    message = error_of(http.post("/callback/task-bad", content=body, headers=headers), 422, "INVALID_REQUEST")

    assert field in message
    error_of(http.get("/callback/task-bad"), 404, "NOT_FOUND")


def test_a_body_over_the_limit_is_413(aws: LocalAws, http: httpx.Client) -> None:
    body, headers = signed(aws.webhook_secret, {"status": "completed", "pad": "x" * 300_000}, "msg_big")
    error_of(http.post("/callback/task-big", content=body, headers=headers), 413, "PAYLOAD_TOO_LARGE")


# --- simulate and results -------------------------------------------------------------------------


def test_simulate_stores_seed_002s_example_unsigned(http: httpx.Client) -> None:
    default = http.post("/test/simulate", json={})
    failed = http.post("/test/simulate", json={"task_id": "sim-1", "status": "failed", "batch_id": "sim-b"})

    assert default.status_code == failed.status_code == 201, (default.text, failed.text)
    stored = http.get("/callback/test-task-001").json()["latest"]
    assert (stored["source"], stored["verified"], stored["status"]) == ("simulate", False, "completed")
    assert stored["payload"]["file_url"] == "https://example.com/test.mp4"
    assert set(stored["payload"]["results"]) == {"file_info", "video_analysis", "audio_analysis"}
    assert http.get("/callback/sim-1").json()["latest"]["payload"] == {
        "status": "failed", "task_id": "sim-1", "batch_id": "sim-b",
        "error": "Unable to download file: HTTP 404 Not Found", "error_code": "FILE_NOT_FOUND",
    }  # fmt: skip
    assert http.get("/callback/batch/sim-b").json()["counts"] == {"completed": 0, "failed": 1}
    message = error_of(http.post("/test/simulate", json={"task_id": "x", "bogus": 1}), 422, "INVALID_REQUEST")
    assert "bogus" in message


@pytest.mark.usefixtures("simulate_off")
def test_simulate_is_refused_where_it_is_off(http: httpx.Client) -> None:
    message = error_of(http.post("/test/simulate", json={"task_id": "sim-off"}), 404, "NOT_FOUND")

    assert "VIDP_RECEIVER_SIMULATE" in message
    error_of(http.get("/callback/sim-off"), 404, "NOT_FOUND")


def test_results_lists_the_latest_newest_first_within_the_limit(http: httpx.Client) -> None:
    for n in range(3):
        assert http.post("/test/simulate", json={"task_id": f"res-{n}"}).status_code == 201

    every = http.get("/test/results", params={"limit": 100}).json()["callbacks"]
    two = http.get("/test/results", params={"limit": 2}).json()
    default = http.get("/test/results").json()

    stamps = [c["received_at"] for c in every]
    assert stamps == sorted(stamps, reverse=True) and len(every) >= 3
    assert {"res-0", "res-1", "res-2"} <= {c["task_id"] for c in every}
    assert two["count"] == 2 and two["callbacks"] == every[:2]
    assert default["count"] == min(50, len(every))
    for bad in ("0", "101", "many"):
        assert "limit" in error_of(http.get("/test/results", params={"limit": bad}), 422, "INVALID_REQUEST")


def test_a_batch_pages_with_its_token_and_counts_the_whole_batch(http: httpx.Client) -> None:
    for n in range(3):
        http.post("/test/simulate", json={"task_id": f"page-{n}", "batch_id": "page-b"}).raise_for_status()

    first = http.get("/callback/batch/page-b", params={"limit": 2}).json()
    second = http.get("/callback/batch/page-b", params={"limit": 2, "next_token": first["next_token"]}).json()

    assert (first["count"], second["count"], first["total"], second["total"]) == (2, 1, 3, 3)
    assert first["counts"] == second["counts"] == {"completed": 3, "failed": 0}
    assert {c["task_id"] for c in first["callbacks"] + second["callbacks"]} == {"page-0", "page-1", "page-2"}
    assert second["next_token"] is None
    error_of(
        http.get("/callback/batch/other-b", params={"next_token": first["next_token"]}),
        400,
        "INVALID_REQUEST",
    )


# --- errors and the Lambda entry point ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/callback/never-called", 404, "NOT_FOUND"),
        ("GET", "/callback/batch/never-batched", 404, "NOT_FOUND"),
        ("GET", "/callback/a/b/c", 404, "NOT_FOUND"),
        ("DELETE", "/callback/task-ok", 404, "NOT_FOUND"),
        ("GET", "/test/nothing", 404, "NOT_FOUND"),
        ("GET", "/callback/-not-an-id", 422, "INVALID_REQUEST"),
        ("GET", "/callback/batch/b?limit=0", 422, "INVALID_REQUEST"),
    ],
)
def test_every_error_is_the_json_error_shape(
    http: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    error_of(http.request(method, path), status, code)


def test_the_lambda_handler_serves_the_same_routes(http: httpx.Client) -> None:
    http.post("/test/simulate", json={"task_id": "lambda-1"}).raise_for_status()
    event = proxy_event("GET", "/callback/lambda-1", [], b"", source_ip="192.0.2.1")

    answer = handler(event, None)  # type: ignore[arg-type]  # the handler reads nothing of the context

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["latest"]["task_id"] == "lambda-1"
