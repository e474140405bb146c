"""The videos API (seed 000's service, on Step Functions): routes written once.

In AWS, API Gateway invokes ``handler`` (IAM-authorised); on one machine ``vidp local up`` serves
``make_app()`` over HTTP on 127.0.0.1 (``pipeline.local.http_api``). A request that starts work
starts an execution and answers 202 at once; the state machine does the work.

Routes are thin: they parse (Powertools validates every body, query and header against the
models of ``pipeline.api.contracts``), call ``catalogue`` / ``submissions`` / the adapters, and
shape the answer. ``make_app`` builds a fresh resolver: one serves one request at a time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import (
    Body,
    File,
    Form,
    Header,
    Path,
    Query,
    UploadFile,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from pipeline.adapters import executions, jobs_table, s3
from pipeline.adapters.s3 import S3Uri
from pipeline.api import catalogue, docs, errors, submissions
from pipeline.api.contracts import (
    FILE_NAME,
    FileName,
    Health,
    JobAccepted,
    Links,
    PresignedUpload,
    UploadRequest,
    UploadTicket,
    VideoList,
    VideoPatch,
    VideoView,
)
from pipeline.api.errors import Conflict, PayloadTooLarge, error_responses
from pipeline.api.settings import api_settings
from pipeline.deployment import UPLOADS_PREFIX, VIDEOS_PREFIX
from pipeline.failures import VidpError
from pipeline.logs import configure
from pipeline.models import ExternalId, JobRequest, JobStatus, Resolution, validation_problems, video_id_for

SERVICE = "VidP pipeline API"
DESCRIPTION = (
    "Burn SRT subtitles into a video and compress it (360p-1080p) on AWS Step Functions. "
    "Start a job, poll its video or wait for the signed callback, stream the result."
)
MAX_PRESIGNED_POST_BYTES = 5 * 1024**3  # S3's largest single upload
VideoId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
]


def _now() -> str:
    return jobs_table.now_iso()


def make_app() -> APIGatewayRestResolver:
    """The videos API's resolver with every route."""
    app = APIGatewayRestResolver(enable_validation=True)
    errors.install(app, body_type=_body_type)
    docs.install(app, prefix="/api", title=SERVICE, description=DESCRIPTION)
    _add_health(app)
    _add_jobs(app)
    _add_videos(app)
    return app


def _body_type(path: str) -> str | None:
    """The media type of the body a route takes (the routes with a body)."""
    if path == "/api/process-video":
        return "multipart/form-data"
    if path in {"/api/jobs", "/api/uploads"} or path.startswith("/api/videos/"):
        return "application/json"
    return None


def _base(app: APIGatewayRestResolver) -> str:
    """The API's root URL as the caller reached it (stage path included on API Gateway)."""
    event = app.current_event
    headers = {name.lower(): value for name, value in (event.headers or {}).items()}
    scheme = headers.get("x-forwarded-proto", "http")
    return f"{scheme}://{headers.get('host', '127.0.0.1')}{docs.stage_path(app)}"


def _accepted(app: APIGatewayRestResolver, submitted: submissions.Submitted) -> Response[JobAccepted]:
    started = submitted.started
    video_id = video_id_for(started.job_id)
    base = _base(app)
    body = JobAccepted(
        status=submitted.status,
        job_id=started.job_id,
        video_id=video_id,
        execution_arn=started.execution_arn,
        new=started.new,
        links=Links(self=f"{base}/api/videos/{video_id}", stream=f"{base}/api/stream/{video_id}"),
    )
    return Response(
        HTTPStatus.ACCEPTED,
        content_types.APPLICATION_JSON,
        body,
        headers={"Location": body.links.self},
    )


def _accepted_responses(*without: int) -> dict[int, Any]:
    ok = {"description": "Accepted: the job runs", "content": {"application/json": {"model": JobAccepted}}}
    statuses = [status for status in (400, 409, 413, 415, 422) if status not in without]
    return {202: ok, **error_responses(*statuses)}


def _add_health(app: APIGatewayRestResolver) -> None:
    @app.get(
        "/api/health",
        summary="Whether S3, DynamoDB and the state machine answer",
        responses={
            200: {"description": "healthy", "content": {"application/json": {"model": Health}}},
            503: {"description": "degraded", "content": {"application/json": {"model": Health}}},
        },
    )
    def health() -> Response[Health]:
        settings = api_settings()
        checks = {
            "s3": s3.reachable(settings.bucket, VIDEOS_PREFIX),
            "dynamodb": _answers(lambda: jobs_table.describe(table=settings.table_name)),
            "state_machine": _answers(lambda: executions.describe_machine(settings.state_machine_arn)),
        }
        body = Health(
            status="healthy" if all(checks.values()) else "degraded",
            service=SERVICE,
            version=docs.product_version(),
            **{name: "connected" if up else "unavailable" for name, up in checks.items()},
        )
        status = HTTPStatus.OK if body.status == "healthy" else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(status, content_types.APPLICATION_JSON, body)


def _answers(call: Any) -> bool:
    try:
        call()
    except VidpError:
        return False
    return True


def _add_jobs(app: APIGatewayRestResolver) -> None:
    @app.post(
        "/api/uploads",
        summary="A presigned form upload of a video or an SRT into the bucket",
        responses={
            200: {"description": "where to upload", "content": {"application/json": {"model": UploadTicket}}},
            **error_responses(413, 415, 422),
        },
    )
    def create_upload(upload: Annotated[UploadRequest, Body()]) -> UploadTicket:
        settings = api_settings()
        if upload.size > MAX_PRESIGNED_POST_BYTES:
            raise PayloadTooLarge(
                f"size: {upload.size} bytes, over the {MAX_PRESIGNED_POST_BYTES} a single upload may have "
                "(S3's limit; multipart uploads are not offered by this API)"
            )
        if upload.size > settings.max_video_bytes:
            raise PayloadTooLarge(
                f"size: {upload.size} bytes, over the pipeline's {settings.max_video_bytes}"
            )
        uri = S3Uri(settings.bucket, f"{UPLOADS_PREFIX}{uuid.uuid4().hex}/{upload.filename}")
        expires = settings.upload_expiry_seconds
        url, fields = s3.presign_post(
            uri, content_type=upload.content_type, max_bytes=upload.size, expires_in=expires
        )
        expires_at = (datetime.now(UTC) + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return UploadTicket(
            s3_uri=str(uri), upload=PresignedUpload(url=url, fields=fields), expires_at=expires_at
        )

    @app.post(
        "/api/jobs",
        summary="Start a job (a JobRequest)",
        responses=_accepted_responses(413),
    )
    def create_job(
        request: Annotated[JobRequest, Body()], key: IdempotencyKey = None
    ) -> Response[JobAccepted]:
        return _accepted(app, _submit(request, key))

    @app.post(
        "/api/process-video/",
        summary="Seed 000's form: upload a video and its SRT, start the job",
        responses=_accepted_responses(),
    )
    def process_video(
        video: Annotated[UploadFile, File(description="the video file")],
        srt_file: Annotated[UploadFile, File(description="the SRT subtitles")],
        resolution: Annotated[Resolution, Form()] = "360p",
        crf_value: Annotated[int, Form(ge=0, le=51)] = 23,
        callback_url: Annotated[str | None, Form(max_length=2048)] = None,
        task_id: Annotated[ExternalId | None, Form()] = None,
        key: IdempotencyKey = None,
    ) -> Response[JobAccepted]:
        settings = api_settings()
        form = submissions.Form(
            _form_file(video, "video"), _form_file(srt_file, "srt_file"), bucket=settings.bucket
        )
        video_uri, srt_uri = form.video_uri, form.srt_uri
        fields: dict[str, Any] = {
            "video": {"s3_uri": str(video_uri)},
            "subtitles": {"s3_uri": str(srt_uri)},
            "resolution": resolution,
            "crf": crf_value,
            "callback_url": callback_url or None,
            "task_id": task_id or None,
        }
        try:
            request = JobRequest.model_validate({k: v for k, v in fields.items() if v is not None})
        except ValidationError as err:
            raise errors.Unprocessable(validation_problems(err, first_only=True)) from None
        form.store(max_video_bytes=settings.max_video_bytes)  # only a valid request stores files
        return _accepted(app, _submit(request, key))


def _submit(request: JobRequest, key: str | None) -> submissions.Submitted:
    settings = api_settings()
    return submissions.start(
        request, idempotency_key=key, state_machine_arn=settings.state_machine_arn, table=settings.table_name
    )


def _form_file(upload: UploadFile, field: str) -> submissions.FormFile:
    name = (upload.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    try:
        FILE_NAME.validate_python(name)
    except ValidationError:
        raise errors.BadRequest(
            f"{field}: the file needs a name (letters, no '/' or control characters)"
        ) from None
    return submissions.FormFile(name, upload.content, upload.content_type or "application/octet-stream")


def _add_videos(app: APIGatewayRestResolver) -> None:
    @app.get(
        "/api/videos/",
        summary="List videos, newest first (each filter is served by its index)",
        responses={200: {"description": "a page", "content": {"application/json": {"model": VideoList}}},
                   **error_responses(400, 422)},
    )  # fmt: skip
    def list_videos(
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        status: Annotated[JobStatus | None, Query()] = None,
        batch_id: Annotated[ExternalId | None, Query()] = None,
        source_video_id: Annotated[ExternalId | None, Query()] = None,
        filename: Annotated[FileName | None, Query()] = None,
        next_token: Annotated[str | None, Query(max_length=4096)] = None,
        skip: Annotated[int, Query(ge=0, le=1000, description="seed 000's offset")] = 0,
    ) -> VideoList:
        settings = api_settings()
        given = {
            "status": status,
            "batch_id": batch_id,
            "source_video_id": source_video_id,
            "filename": filename,
        }
        filters = {name: value for name, value in given.items() if value is not None}
        page = catalogue.list_videos(
            filters, limit=limit, token=next_token, skip=skip, table=settings.table_name
        )
        items = [_view(record, settings.presign_expiry_seconds) for record in page.records]
        return VideoList(items=items, count=len(items), next_token=page.next_token)

    @app.get(
        "/api/videos/<video_id>",
        summary="One video: its record, and a streaming link once saved",
        responses={200: {"description": "the video", "content": {"application/json": {"model": VideoView}}},
                   **error_responses(404, 422)},
    )  # fmt: skip
    def get_video(video_id: VideoId) -> Response[VideoView]:
        settings = api_settings()
        record = catalogue.record_of(video_id, table=settings.table_name)
        view = _view(record, settings.presign_expiry_seconds)
        return Response(200, content_types.APPLICATION_JSON, view, headers={"ETag": f'"{record.updated_at}"'})

    @app.patch(
        "/api/videos/<video_id>",
        summary="Change the caller's fields (metadata, display filename); If-Match: the ETag read",
        responses={200: {"description": "changed", "content": {"application/json": {"model": VideoView}}},
                   **error_responses(404, 409, 412, 415, 422)},
    )  # fmt: skip
    def patch_video(
        video_id: VideoId,
        patch: Annotated[VideoPatch, Body()],
        if_match: Annotated[str | None, Header(alias="If-Match", max_length=64)] = None,
    ) -> Response[VideoView]:
        settings = api_settings()
        if owned := patch.pipeline_fields():
            raise Conflict(
                f"{', '.join(owned)}: set by the state machine, not by PATCH; to process the video "
                "again, start a new job (POST /api/jobs)"
            )
        record = catalogue.change(
            video_id, patch.caller_fields(), if_match=if_match, now=_now(), table=settings.table_name
        )
        view = _view(record, settings.presign_expiry_seconds)
        return Response(200, content_types.APPLICATION_JSON, view, headers={"ETag": f'"{record.updated_at}"'})

    @app.delete(
        "/api/videos/<video_id>",
        summary="Delete the video's outputs and record (not while processing)",
        responses={204: {"description": "deleted"}, **error_responses(404, 409, 422)},
    )
    def delete_video(video_id: VideoId) -> Response[str]:
        settings = api_settings()
        catalogue.delete(video_id, bucket=settings.bucket, table=settings.table_name)
        return Response(HTTPStatus.NO_CONTENT, None, "")

    @app.get(
        "/api/stream/<video_id>",
        summary="302 to a presigned URL of the output (S3 serves Range requests)",
        responses={
            302: {"description": "the presigned URL is in Location"},
            **error_responses(404, 409, 422),
        },
    )
    def stream(video_id: VideoId) -> Response[str]:
        settings = api_settings()
        record = catalogue.record_of(video_id, table=settings.table_name)
        link = catalogue.streaming_link(record, expires_in=settings.presign_expiry_seconds)
        if link is None:
            raise Conflict(f"video {video_id!r} is {record.status}: only a saved video can be streamed")
        return Response(HTTPStatus.FOUND, None, "", headers={"Location": link, "Cache-Control": "no-store"})


def _view(record: Any, expires_in: int) -> VideoView:
    return VideoView.of(record, link=catalogue.streaming_link(record, expires_in=expires_in))


app = make_app()


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The API Lambda: API Gateway's proxy event in, its response out."""
    configure()
    return app.resolve(event, context)
