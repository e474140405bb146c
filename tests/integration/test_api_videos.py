"""The videos API (seed 000's routes) through a real HTTP server on 127.0.0.1, the real resolver and
the real state machine on the local AWS: what a caller with curl or httpx sees.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.api.settings import api_settings
from pipeline.local.aws import LocalAws
from pipeline.local.http_api import ApiServer, product_mounts
from pipeline.models import video_id_for
from pipeline.samples import make_clip
from tests.conftest import SIMPLE_SRT
from tests.support.in_flight import hold
from tests.support.server import LocalServer

JOB_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(allow_loopback=True) as local:  # the SRT server that holds a job is on 127.0.0.1
        yield local


@pytest.fixture(scope="module")
def srt_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(aws: LocalAws) -> Iterator[httpx.Client]:
    with ApiServer(product_mounts()) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("media") / "talk.mp4", width=320, height=240, seconds=1.5, fps=15
    )


def upload(api: httpx.Client, name: str, data: bytes, content_type: str) -> str:
    """POST /api/uploads, then the form upload it describes (as curl -F would): the s3:// URI."""
    ticket = api.post(
        "/api/uploads", json={"filename": name, "content_type": content_type, "size": len(data)}
    )
    assert ticket.status_code == 200, ticket.text
    form = ticket.json()["upload"]
    sent = httpx.post(
        form["url"], data=form["fields"], files={"file": (name, data, content_type)}, timeout=30
    )
    assert sent.status_code == 204, sent.text
    uri: str = ticket.json()["s3_uri"]
    return uri


def wait_for(api: httpx.Client, video_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        seen = api.get(f"/api/videos/{video_id}")
        if seen.status_code == 200 and seen.json()["status"] == status:
            body: dict[str, Any] = seen.json()
            return body
        assert time.monotonic() < deadline, f"{video_id} still {seen.text} after {JOB_TIMEOUT} s"
        time.sleep(0.2)


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.text
    detail: dict[str, str] = body["error"]
    return detail


@pytest.fixture(scope="module")
def saved(api: httpx.Client, clip: Path) -> dict[str, Any]:
    """One job through the routes as seed 000's README does it: upload, start, poll until saved."""
    video = upload(api, "talk.mp4", clip.read_bytes(), "video/mp4")
    srt = upload(api, "talk.srt", SIMPLE_SRT, "application/x-subrip")
    request = {
        "video": {"s3_uri": video},
        "subtitles": {"s3_uri": srt},
        "resolution": "360p",
        "batch_id": "api-batch-1",
        "source_video_id": "main-42",
        "metadata": {"lang": "fr"},
    }
    started = api.post("/api/jobs", json=request)
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["status"] == "processing" and body["video_id"] == video_id_for(body["job_id"])
    assert body["links"]["self"].endswith(f"/api/videos/{body['video_id']}")
    again = api.post("/api/jobs", json=request)
    assert again.status_code == 202 and again.json() | {"new": True} == body | {"new": True}
    assert again.json()["new"] is False and body["new"] is True
    return {"accepted": body, "request": request, "record": wait_for(api, body["video_id"], "saved")}


def test_a_job_started_over_http_is_saved_and_its_record_has_seed_000s_fields(saved: dict[str, Any]) -> None:
    record = saved["record"]
    for field in ("id", "filename", "s3_uri", "link", "status", "file_size", "duration", "resolution",
                  "created_at", "updated_at"):  # fmt: skip
        assert record[field] is not None, field
    assert record["filename"] == "talk.mp4" and record["resolution"] == "320x240"
    assert record["batch_id"] == "api-batch-1" and record["metadata"] == {"lang": "fr"}
    assert record["execution_arn"] == saved["accepted"]["execution_arn"] and record["progress"] == 100
    assert "callback_url" not in record and "request_key" not in record


def test_stream_redirects_to_s3_which_serves_a_range(
    api: httpx.Client, aws: LocalAws, saved: dict[str, Any]
) -> None:
    video_id = saved["accepted"]["video_id"]
    redirect = api.get(f"/api/stream/{video_id}")
    assert redirect.status_code == 302 and "X-Amz-Signature" in redirect.headers["location"]
    key = saved["record"]["s3_uri"].split("/", 3)[3]
    whole = aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    part = httpx.get(redirect.headers["location"], headers={"Range": "bytes=0-1023"})
    assert part.status_code == 206 and part.content == whole[:1024]
    assert part.headers["content-range"] == f"bytes 0-1023/{len(whole)}"


def test_the_list_is_served_per_filter_newest_first(api: httpx.Client, saved: dict[str, Any]) -> None:
    video_id = saved["accepted"]["video_id"]
    for query in ({"status": "saved"}, {"batch_id": "api-batch-1"}, {"source_video_id": "main-42"},
                  {"filename": "talk.mp4"}, {"batch_id": "api-batch-1", "status": "saved"}, {}):  # fmt: skip
        listed = api.get("/api/videos/", params=query)
        assert listed.status_code == 200, (query, listed.text)
        assert video_id in [item["id"] for item in listed.json()["items"]], query
    for query in ({"status": "failed", "batch_id": "api-batch-1"}, {"batch_id": "another"}):
        assert video_id not in [item["id"] for item in api.get("/api/videos/", params=query).json()["items"]]


def test_pages_of_the_whole_list_cover_every_video_once_newest_first(
    api: httpx.Client, aws: LocalAws
) -> None:
    # Failed jobs are quick to make: a video that does not exist fails at ValidateInput.
    for n in range(4):
        request = {"video": {"s3_uri": f"s3://{aws.bucket}/uploads/missing-{n}.mp4"},
                   "subtitles": {"url": "https://subtitles.example/a.srt"}, "batch_id": "paging"}  # fmt: skip
        started = api.post("/api/jobs", json=request)
        wait_for(api, started.json()["video_id"], "failed")
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        page = api.get("/api/videos/", params={"limit": 2, **({"next_token": token} if token else {})}).json()
        assert page["count"] == len(page["items"]) <= 2
        seen.extend(page["items"])
        token = page["next_token"]
        if token is None:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) and len(ids) >= 5
    assert {item["status"] for item in seen} >= {"saved", "failed"}
    created = [item["created_at"] for item in seen]
    assert created == sorted(created, reverse=True)
    skipped = api.get("/api/videos/", params={"skip": 2, "limit": 2}).json()["items"]
    assert [item["id"] for item in skipped] == ids[2:4]
    bad = api.get("/api/videos/", params={"next_token": "bm90IG91cnM"})
    assert bad.status_code == 400 and "next_token" in error_of(bad)["message"]


def test_patch_changes_only_the_callers_fields_and_refuses_a_lost_update(
    api: httpx.Client, saved: dict[str, Any]
) -> None:
    video_id = saved["accepted"]["video_id"]
    read = api.get(f"/api/videos/{video_id}")
    etag = read.headers["etag"]
    changed = api.patch(
        f"/api/videos/{video_id}", json={"metadata": {"lang": "en"}}, headers={"If-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["metadata"] == {"lang": "en"}
    assert changed.headers["etag"] != etag
    stale = api.patch(f"/api/videos/{video_id}", json={"filename": "renamed.mp4"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and error_of(stale)["code"] == "PRECONDITION_FAILED"
    assert api.get(f"/api/videos/{video_id}").json()["filename"] == "talk.mp4"
    status = api.patch(f"/api/videos/{video_id}", json={"status": "failed"})
    assert status.status_code == 409 and "POST /api/jobs" in error_of(status)["message"]
    unknown = api.patch(f"/api/videos/{video_id}", json={"colour": "red"})
    assert unknown.status_code == 422 and error_of(unknown)["message"].startswith("body.colour")
    assert api.get(f"/api/videos/{video_id}").json()["status"] == "saved"


def test_delete_removes_the_outputs_and_the_record_once(api: httpx.Client, aws: LocalAws, clip: Path) -> None:
    video = upload(api, "gone.mp4", clip.read_bytes(), "video/mp4")
    srt = upload(api, "gone.srt", SIMPLE_SRT, "application/x-subrip")
    started = api.post("/api/jobs", json={"video": {"s3_uri": video}, "subtitles": {"s3_uri": srt},
                                          "resolution": "360p"}).json()  # fmt: skip
    video_id = started["video_id"]
    record = wait_for(api, video_id, "saved")
    aws.wait(started["execution_arn"])  # DELETE is a 409 until Notify has sent the callback
    key = record["s3_uri"].split("/", 3)[3]
    assert aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"videos/{video_id}/")["KeyCount"] == 1
    deleted = api.delete(f"/api/videos/{video_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=f"videos/{video_id}/")["KeyCount"] == 0
    assert api.get(f"/api/videos/{video_id}").status_code == 404
    again = api.delete(f"/api/videos/{video_id}")
    assert again.status_code == 404 and error_of(again)["code"] == "NOT_FOUND"
    assert key.startswith(f"videos/{video_id}/")


def test_a_video_being_processed_can_be_neither_deleted_nor_streamed(
    api: httpx.Client, aws: LocalAws, srt_server: LocalServer
) -> None:
    held = srt_server.route("/held.srt", hold)  # FetchSubtitles waits: the job stays processing
    request = {
        "video": {"s3_uri": upload(api, "held.mp4", b"not yet probed", "video/mp4")},
        "subtitles": {"url": held},
    }
    started = api.post("/api/jobs", json=request).json()
    video_id = started["video_id"]
    wait_for(api, video_id, "processing")
    refused = api.delete(f"/api/videos/{video_id}")
    assert refused.status_code == 409 and "processing" in error_of(refused)["message"]
    not_yet = api.get(f"/api/stream/{video_id}")
    assert not_yet.status_code == 409 and "only a saved video" in error_of(not_yet)["message"]
    aws.client("stepfunctions").stop_execution(executionArn=started["execution_arn"])


def test_the_seed_000_form_starts_a_job_and_the_same_form_is_the_same_job(
    api: httpx.Client, clip: Path
) -> None:
    files = {
        "video": ("form.mp4", clip.read_bytes(), "video/mp4"),
        "srt_file": ("form.srt", SIMPLE_SRT, "text/plain"),
    }
    started = api.post("/api/process-video/", files=files, data={"resolution": "360p", "crf_value": "28"})
    assert started.status_code == 202, started.text
    again = api.post("/api/process-video/", files=files, data={"resolution": "360p", "crf_value": "28"})
    assert again.status_code == 202 and again.json()["job_id"] == started.json()["job_id"]
    assert again.json()["new"] is False
    record = wait_for(api, started.json()["video_id"], "saved")
    assert record["filename"] == "form.mp4" and record["resolution"] == "320x240"
    missing = api.post("/api/process-video/", files={"video": files["video"]})
    assert missing.status_code == 422 and "srt_file" in error_of(missing)["message"]


def test_an_idempotency_key_is_the_jobs_identity(api: httpx.Client, aws: LocalAws) -> None:
    request = {
        "video": {"s3_uri": f"s3://{aws.bucket}/uploads/none.mp4"},
        "subtitles": {"url": "https://s.example/a.srt"},
    }
    first = api.post("/api/jobs", json=request, headers={"Idempotency-Key": "order-7"})
    assert first.status_code == 202 and first.json()["job_id"].startswith("idem-")
    same = api.post("/api/jobs", json=request, headers={"Idempotency-Key": "order-7"})
    assert same.status_code == 202 and same.json()["job_id"] == first.json()["job_id"]
    other = api.post("/api/jobs", json={**request, "crf": 30}, headers={"Idempotency-Key": "order-7"})
    assert other.status_code == 409 and error_of(other)["code"] == "JOB_CONFLICT"
    plain = api.post("/api/jobs", json=request)
    assert plain.status_code == 202 and plain.json()["job_id"] != first.json()["job_id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "names"),
    [
        (
            "POST",
            "/api/jobs",
            {"video": {"s3_uri": "http://x"}, "subtitles": {"url": "https://a/b"}},
            422,
            "body.video.s3_uri",
        ),
        ("POST", "/api/jobs", {"video": {"s3_uri": "s3://b-b/k"}}, 422, "body.subtitles"),
        ("POST", "/api/jobs", None, 415, "application/json"),
        ("POST", "/api/uploads", {"filename": "a/b.mp4", "size": 3}, 422, "body.filename"),
        ("POST", "/api/uploads", {"filename": "big.mp4", "size": 6 * 1024**3}, 413, "size"),
        ("GET", "/api/videos/?limit=0", None, 422, "limit"),
        ("GET", "/api/videos/?status=done", None, 422, "status"),
        ("GET", "/api/videos/bad%20id", None, 422, "video_id"),
        ("GET", "/api/videos/vid-unknown", None, 404, "vid-unknown"),
        ("GET", "/api/stream/vid-unknown", None, 404, "vid-unknown"),
        ("GET", "/api/nothing-here", None, 404, "/api/nothing-here"),
    ],
)
def test_bad_requests_get_one_json_error_naming_the_problem(
    api: httpx.Client, method: str, path: str, body: Any, status: int, names: str
) -> None:
    answer = api.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert names in error_of(answer)["message"]


def test_a_form_upload_over_its_declared_size_is_refused_by_s3(api: httpx.Client, aws: LocalAws) -> None:
    ticket = api.post(
        "/api/uploads", json={"filename": "small.mp4", "content_type": "video/mp4", "size": 100}
    ).json()
    form = ticket["upload"]
    sent = httpx.post(
        form["url"], data=form["fields"], files={"file": ("small.mp4", b"x" * 101, "video/mp4")}
    )
    assert sent.status_code == 400 and "EntityTooLarge" in sent.text
    key = ticket["s3_uri"].split("/", 3)[3]
    assert aws.client("s3").list_objects_v2(Bucket=aws.bucket, Prefix=key)["KeyCount"] == 0


def test_health_says_which_part_is_unavailable(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy = api.get("/api/health")
    assert healthy.status_code == 200 and healthy.json()["status"] == "healthy"
    assert {healthy.json()[part] for part in ("s3", "dynamodb", "state_machine")} == {"connected"}
    monkeypatch.setenv("VIDP_TABLE_NAME", "vidp-local-no-such-table")
    api_settings.cache_clear()
    try:
        degraded = api.get("/api/health")
    finally:
        monkeypatch.undo()
        api_settings.cache_clear()
    assert degraded.status_code == 503
    assert degraded.json() | {"version": ""} == {
        "status": "degraded", "service": "VidP pipeline API", "version": "",
        "s3": "connected", "dynamodb": "unavailable", "state_machine": "connected",
    }  # fmt: skip


def test_the_docs_and_the_spec_are_served_without_a_cdn(api: httpx.Client) -> None:
    page = api.get("/api/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert (
        "cdn" not in page.text.lower()
        and "unpkg" not in page.text
        and "https://" not in page.text.split("<script>")[0]
    )
    assert api.get("/api/docs/swagger-ui-bundle.min.js").status_code == 200
    spec = api.get("/api/openapi.json").json()
    assert {
        "/api/health",
        "/api/jobs",
        "/api/uploads",
        "/api/videos",
        "/api/videos/{video_id}",
        "/api/stream/{video_id}",
    } <= set(spec["paths"])


def test_other_sites_pages_cannot_drive_the_local_api(api: httpx.Client) -> None:
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "evil.example"},
    ):
        refused = api.post("/api/jobs", json={}, headers=headers)
        assert refused.status_code == 403 and error_of(refused)["code"] == "FORBIDDEN", headers
    own = api.get(
        "/api/health", headers={"Origin": str(api.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    )
    assert own.status_code == 200


def test_a_deleted_videos_request_runs_again_as_a_new_execution(
    api: httpx.Client, aws: LocalAws, clip: Path
) -> None:
    request = {"video": {"s3_uri": upload(api, "again.mp4", clip.read_bytes(), "video/mp4")},
               "subtitles": {"s3_uri": upload(api, "again.srt", SIMPLE_SRT, "application/x-subrip")},
               "resolution": "360p"}  # fmt: skip
    first = api.post("/api/jobs", json=request).json()
    wait_for(api, first["video_id"], "saved")
    aws.wait(first["execution_arn"])  # DELETE is a 409 until Notify has sent the callback
    seen = api.post("/api/jobs", json=request).json()
    assert (
        seen["status"] == "saved" and seen["new"] is False and seen["execution_arn"] == first["execution_arn"]
    )
    assert api.delete(f"/api/videos/{first['video_id']}").status_code == 204

    again = api.post("/api/jobs", json=request)
    assert again.status_code == 202 and again.json()["new"] is True
    assert again.json()["execution_arn"] == first["execution_arn"] + "-run2"
    assert wait_for(api, first["video_id"], "saved")["execution_arn"] == again.json()["execution_arn"]
    latest = api.post("/api/jobs", json=request).json()
    assert latest["execution_arn"] == again.json()["execution_arn"] and latest["status"] == "saved"


def test_a_saved_videos_record_says_how_its_callback_went(api: httpx.Client, saved: dict[str, Any]) -> None:
    record = api.get(f"/api/videos/{saved['accepted']['video_id']}").json()
    assert record["callback"]["status"] == "skipped"  # the request named no callback_url


def test_patch_refuses_null_and_clears_metadata_with_an_empty_object(
    api: httpx.Client, aws: LocalAws
) -> None:
    started = api.post("/api/jobs", json={"video": {"s3_uri": f"s3://{aws.bucket}/uploads/n.mp4"},
                                          "subtitles": {"url": "https://s.example/a.srt"},
                                          "metadata": {"k": 1}}).json()  # fmt: skip
    video_id = started["video_id"]
    assert wait_for(api, video_id, "failed")["metadata"] == {"k": 1}
    for body in ({"filename": None}, {"metadata": None}):
        refused = api.patch(f"/api/videos/{video_id}", json=body)
        assert refused.status_code == 422 and "not null" in error_of(refused)["message"], body
    cleared = api.patch(f"/api/videos/{video_id}", json={"metadata": {}}, headers={"If-Match": "*"})
    assert cleared.status_code == 200 and cleared.json()["metadata"] == {}


@pytest.mark.parametrize(
    ("path", "content", "content_type", "status", "code"),
    [
        ("/api/jobs", b"video=x", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("/api/jobs", b'{"video": ', "application/json", 400, "INVALID_JSON"),
        ("/api/uploads", b'{"filename": "a.mp4", "size": 3}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("/api/process-video/", b'{"video": "a"}', "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("/api/uploads", b'{"filename": "a.mp4", "size": true}', "application/json", 422, "INVALID_REQUEST"),
        ("/api/uploads", b'{"filename": "a.mp4", "size": 3, "content_type": "text/html"}', "application/json",
         422, "INVALID_REQUEST"),
        ("/api/uploads", b'{"filename": "..", "size": 3}', "application/json", 422, "INVALID_REQUEST"),
    ],
)  # fmt: skip
def test_a_body_of_the_wrong_kind_is_refused_as_such(
    api: httpx.Client, path: str, content: bytes, content_type: str, status: int, code: str
) -> None:
    answer = api.post(path, content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status and error_of(answer)["code"] == code, answer.text


def test_a_forged_page_token_is_a_400(api: httpx.Client) -> None:
    import base64
    import json

    for position in (None, {"video_id": {"S": "x"}}, {"saved": {"video_id": {"N": "1"}}}):
        text = json.dumps({"f": "0" * 16, "p": position} if position else {"f": "x"})
        token = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        for params in ({"next_token": token}, {"next_token": token, "status": "saved"}):
            refused = api.get("/api/videos/", params=params)
            assert refused.status_code == 400 and "next_token" in error_of(refused)["message"], params


def test_a_refused_start_is_a_500_that_quotes_no_aws_message(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "VIDP_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:vidp-gone"
    )
    api_settings.cache_clear()
    try:
        answer = api.post("/api/jobs", json={"video": {"s3_uri": "s3://vidp-local-media/uploads/a.mp4"},
                                             "subtitles": {"url": "https://s.example/a.srt"}})  # fmt: skip
    finally:
        monkeypatch.undo()
        api_settings.cache_clear()
    assert answer.status_code == 500 and error_of(answer)["code"] == "STORAGE_FAILED"
    assert "vidp-gone" not in answer.text and "StateMachine" not in answer.text


def test_a_video_whose_execution_step_functions_forgot_can_be_deleted(
    api: httpx.Client, aws: LocalAws
) -> None:
    # AWS keeps a closed execution 90 days; the job's record stays. Such a record, put as MarkFailed
    # puts one, names an execution Step Functions no longer knows.
    from pipeline.adapters import jobs_table
    from pipeline.models import JobLabels, JobRecord

    gone = aws.state_machine_arn.replace(":stateMachine:", ":execution:") + ":job-from-last-year"
    record = JobRecord.new(
        job_id="job-from-last-year", filename="old.mp4", status="failed", labels=JobLabels(),
        resolution="720p",
        created_at="2025-01-01T00:00:00.000Z", updated_at="2025-01-01T00:00:00.000Z", execution_arn=gone,
    )  # fmt: skip
    assert jobs_table.put_failed(record, table=aws.table_name, client=aws.client("dynamodb"))
    deleted = api.delete(f"/api/videos/{record.video_id}")
    assert deleted.status_code == 204, deleted.text
    assert api.get(f"/api/videos/{record.video_id}").status_code == 404


@pytest.mark.parametrize(
    ("field", "url", "why"),
    [
        ("callback_url", "http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        ("callback_url", "http://10.0.0.7/hook", "a private address"),
        ("callback_url", "https://user:pass@hooks.example/cb", "credentials"),
        ("subtitles.url", "http://[::ffff:192.168.1.1]/a.srt", "private address"),
    ],
)
def test_a_url_the_ssrf_guard_refuses_is_a_422_and_starts_nothing(
    api: httpx.Client, aws: LocalAws, field: str, url: str, why: str
) -> None:
    request: dict[str, Any] = {
        "video": {"s3_uri": f"s3://{aws.bucket}/uploads/x.mp4"},
        "subtitles": {"url": "https://s.example/a.srt"},
        "job_id": "unsafe-url-job",
    }
    if field == "callback_url":
        request["callback_url"] = url
    else:
        request["subtitles"] = {"url": url}
    refused = api.post("/api/jobs", json=request)
    assert refused.status_code == 422 and error_of(refused)["message"].startswith(f"{field}: URL refused")
    assert why in error_of(refused)["message"]
    assert not [e for e in aws.executions() if e["name"] == "unsafe-url-job"]
