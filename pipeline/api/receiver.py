"""The callback receiver of seed 002: where a caller's pipeline results arrive, and are read back.

- ``POST /callback/{task_id}``: a Standard Webhooks signed callback (the pipeline's own), stored
  once per ``webhook-id``: a retried delivery answers 200 ``"duplicate": true`` and is not stored
  twice. The signature is checked over the raw body before anything reads it, so an unsigned
  request gets 401 whatever its body.
- ``GET /callback/{task_id}``, ``GET /callback/batch/{batch_id}`` (with counts by status),
  ``GET /test/results``: the stored callbacks, newest first.
- ``POST /test/simulate``: stores seed 002's example payload without a signature, only where
  ``VIDP_RECEIVER_SIMULATE=1`` (the local AWS; the CDK passes ``0``).

``make_receiver()`` builds the resolver (the local HTTP server builds one per thread); ``handler``
is the Lambda's. Payloads are never logged: a completed callback's ``file_url`` is presigned.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from pipeline import logs
from pipeline.adapters import callbacks_table, webhooks
from pipeline.adapters.callbacks_table import ReceivedCallback, Source
from pipeline.adapters.dynamodb_items import timestamp
from pipeline.adapters.page_tokens import InvalidPageToken
from pipeline.api import errors
from pipeline.api.receiver_models import (
    MAX_CALLBACK_BYTES,
    TASK_ID_PATTERN,
    BatchCallbacks,
    CallbackPayload,
    CallbackResults,
    CallbackStored,
    Simulated,
    SimulateRequest,
    TaskCallbacks,
    receiver_settings,
)
from pipeline.failures import WebhookVerificationFailed

_log = logs.logger("receiver")
SERVICE = "VidP callback receiver"
DESCRIPTION = (
    "Seed 002's callback API: receives the pipeline's signed callbacks (Standard Webhooks) and "
    "serves them back by task and by batch."
)

TaskId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="the task_id of the job's request")]
BatchId = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="the batch_id of the jobs' requests")]
_SIGNED = (
    "The body is the callback's JSON object (seed 002's CompletedCallback or FailedCallback, or any "
    "object with a `status`), signed with the pipeline's webhook secret (Standard Webhooks: "
    "`webhook-id`, `webhook-timestamp`, `webhook-signature`). The signature is checked over the raw "
    "body first: 401 when it is missing, wrong, or its timestamp is more than 5 minutes away."
)


def make_receiver() -> APIGatewayRestResolver:
    """A fresh resolver serving the receiver's routes (one per thread: it holds the current event)."""
    app = APIGatewayRestResolver(enable_validation=True)
    errors.install(app)

    @app.post(
        "/callback/<task_id>",
        summary="Receive a signed callback",
        description=_SIGNED,
        responses=_responses(200, "stored, or already stored", 401, 413, 422, 503),
        tags=["callbacks"],
    )
    def receive(
        task_id: TaskId,
        webhook_id: Annotated[str | None, Header(description="the same on every retry")] = None,
        webhook_timestamp: Annotated[str | None, Header(description="Unix seconds")] = None,
        webhook_signature: Annotated[str | None, Header(description="v1,<base64 HMAC-SHA256>")] = None,
    ) -> CallbackStored:
        # The webhook-* parameters document the headers; verify() reads them with the raw body.
        raw = _raw_body(app)
        headers = dict(app.current_event.headers)
        try:
            verified = webhooks.verify(webhooks.webhook_secret(), headers, raw)
        except WebhookVerificationFailed as err:
            _log.warning("callback refused", extra={"task_id": task_id, "reason": str(err)})
            raise errors.Unauthorized(f"{err} (sign callbacks with the pipeline's webhook secret)") from None
        payload = _callback_payload(verified, task_id)
        callback = _stored(task_id, headers_id(headers), payload, verified, source="webhook")
        fresh = _put(callback)
        return CallbackStored(
            stored=True, duplicate=not fresh, task_id=task_id, webhook_id=callback.webhook_id
        )

    @app.get(
        "/callback/batch/<batch_id>",
        summary="Every callback of a batch, with counts by status",
        responses=_responses(200, "a page of the batch", 400, 404, 422, 503),
        tags=["callbacks"],
    )
    def batch(
        batch_id: BatchId,
        limit: Annotated[int, Query(ge=1, le=1000, description="callbacks per page")] = 100,
        next_token: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> BatchCallbacks:
        table = receiver_settings().callbacks_table_name
        try:
            page = callbacks_table.for_batch(batch_id, limit=limit, next_token=next_token, table=table)
        except InvalidPageToken as err:
            raise errors.BadRequest(f"next_token: {err}") from None
        counts = callbacks_table.batch_counts(batch_id, table=table)
        if not page.callbacks and not counts:
            raise errors.NotFound(f"no callback received for batch {batch_id}")
        return BatchCallbacks(
            batch_id=batch_id,
            count=len(page.callbacks),
            total=sum(counts.values()),
            counts={"completed": 0, "failed": 0, **counts},
            callbacks=page.callbacks,
            next_token=page.next_token,
        )

    @app.get(
        "/callback/<task_id>",
        summary="Every callback of a task, newest first",
        responses=_responses(200, "the task's callbacks", 404, 422, 503),
        tags=["callbacks"],
    )
    def task(task_id: TaskId) -> TaskCallbacks:
        found = callbacks_table.for_task(task_id, table=receiver_settings().callbacks_table_name)
        if not found:
            raise errors.NotFound(f"no callback received for task {task_id}")
        return TaskCallbacks(task_id=task_id, count=len(found), latest=found[0], callbacks=found)

    @app.post(
        "/test/simulate",
        summary="Store seed 002's example callback, unsigned (not served in production)",
        status_code=201,
        responses=_responses(201, "stored", 404, 422, 503),
        tags=["test"],
    )
    def simulate(request: Annotated[SimulateRequest | None, Body()] = None) -> Simulated:
        if not receiver_settings().receiver_simulate:
            raise errors.NotFound(
                "POST /test/simulate is disabled on this deployment (VIDP_RECEIVER_SIMULATE is not 1)"
            )
        asked = request or SimulateRequest()
        payload = asked.payload()
        webhook_id = f"sim_{uuid.uuid4().hex}"
        parsed = CallbackPayload.model_validate(payload)
        callback = _stored(asked.task_id, webhook_id, parsed, payload, source="simulate")
        _put(callback)
        return Simulated(stored=True, task_id=callback.task_id, webhook_id=webhook_id, callback=callback)

    @app.get(
        "/test/results",
        summary="The callbacks received last, newest first",
        responses=_responses(200, "the latest callbacks", 422, 503),
        tags=["test"],
    )
    def results(limit: Annotated[int, Query(ge=1, le=100)] = 50) -> CallbackResults:
        found = callbacks_table.latest(limit, table=receiver_settings().callbacks_table_name)
        return CallbackResults(count=len(found), callbacks=found)

    return app


def _responses(success: int, description: str, *failures: int) -> dict[int, Any]:
    """OpenAPI ``responses``: the success (its schema read from the route's return type) and errors.

    Powertools documents the return type only when ``responses`` is not given, or names the
    success status without ``content``: ``errors.error_responses`` alone would drop it.
    """
    return {success: {"description": description}, **errors.error_responses(*failures)}


def _raw_body(app: APIGatewayRestResolver) -> bytes:
    """The body's bytes exactly as sent (the signature covers them), at most MAX_CALLBACK_BYTES."""
    event = app.current_event
    text = event.body or ""
    try:
        raw = base64.b64decode(text, validate=True) if event.is_base64_encoded else text.encode()
    except (binascii.Error, ValueError):
        raise errors.BadRequest("the body is not valid base64") from None
    if len(raw) > MAX_CALLBACK_BYTES:
        raise errors.PayloadTooLarge(f"a callback's body is at most {MAX_CALLBACK_BYTES} bytes")
    return raw


def headers_id(headers: dict[str, str]) -> str:
    """The ``webhook-id`` a verified request carries (verification fails without one)."""
    return next(value for name, value in headers.items() if name.lower() == "webhook-id")


def _callback_payload(verified: dict[str, Any], task_id: str) -> CallbackPayload:
    """The signed object as a callback of this task, or 422 naming the field at fault."""
    try:
        payload = CallbackPayload.model_validate(verified)
    except ValidationError as err:
        message = errors.validation_message(err.errors(include_url=False, include_input=False))
        raise errors.Unprocessable(f"the callback is not one this receiver stores: {message}") from None
    if payload.task_id is not None and payload.task_id != task_id:
        raise errors.Unprocessable("task_id: the payload's task_id is not the one in the path")
    return payload


def _stored(
    task_id: str, webhook_id: str, payload: CallbackPayload, raw: dict[str, Any], *, source: Source
) -> ReceivedCallback:
    return ReceivedCallback(
        task_id=task_id,
        webhook_id=webhook_id,
        batch_id=payload.batch_id,
        received_at=timestamp(datetime.now(UTC)),
        status=payload.status,
        payload=raw,
        verified=source == "webhook",
        source=source,
    )


def _put(callback: ReceivedCallback) -> bool:
    """Store it once; True if this is its first copy."""
    fresh = callbacks_table.put(callback, table=receiver_settings().callbacks_table_name)
    _log.info(
        "callback received",
        extra={"task_id": callback.task_id, "webhook_id": callback.webhook_id, "status": callback.status,
               "source": callback.source, "duplicate": not fresh},
    )  # fmt: skip
    return fresh


receiver = make_receiver()
"""The Lambda's resolver, built once per cold start."""


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The receiver's Lambda (API Gateway REST proxy)."""
    logs.configure()
    return receiver.resolve(event, context)
