"""Every error of the HTTP API as one JSON shape, ``{"error": {"code", "message"}}``, with its status.

``install(app)`` registers the handlers on a resolver (the videos API and the callback receiver
alike): our ``ApiError`` classes, Powertools' request validation (422 naming the field, never the
value), unknown routes (404), a body of the wrong media type (415), the adapters' ``VidpError``
(503 for a store that is down, 409 for a job conflict), and anything else as a 500 whose details
go to the log only: no stack trace, no presigned URL or secret reaches a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel, Field

from pipeline.failures import InvalidInput, JobConflict, StorageUnavailable, VidpError
from pipeline.logs import logger

_log = logger("api")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: INVALID_REQUEST, NOT_FOUND, CONFLICT...")
    message: str = Field(description="one line, for people")


class ErrorBody(BaseModel):
    """What every error response holds."""

    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success; the message is one line for the caller."""

    status = HTTPStatus.BAD_REQUEST
    code = "INVALID_REQUEST"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ApiError):
    pass


class Unprocessable(ApiError):
    """A well-formed request that cannot be done as asked (the message names the field)."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class Unauthorized(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    code = "UNAUTHORIZED"


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND
    code = "NOT_FOUND"


class Conflict(ApiError):
    status = HTTPStatus.CONFLICT
    code = "CONFLICT"


class PreconditionFailed(ApiError):
    status = HTTPStatus.PRECONDITION_FAILED
    code = "PRECONDITION_FAILED"


class PayloadTooLarge(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    code = "UNSUPPORTED_MEDIA_TYPE"


class Unavailable(ApiError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "UNAVAILABLE"


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = ErrorBody(error=ErrorDetail(code=code, message=" ".join(message.split())))
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(),
        headers=headers,
    )


def _field(location: Any) -> str:
    """``("body", "video", "s3_uri")`` -> ``body.video.s3_uri``; ``("query", "limit")`` -> ``limit``."""
    parts = [str(part) for part in location or ()]
    if parts and parts[0] in {"query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


_SHOWN_PROBLEMS = 3


def validation_message(errors: Any) -> str:
    """The first problems, ``field: message`` joined by ``; ``; never the value sent."""
    items = list(errors)
    if not items:
        return "the request is invalid"
    shown = "; ".join(
        f"{_field(item.get('loc'))}: {item.get('msg', item.get('type', 'invalid'))}"
        for item in items[:_SHOWN_PROBLEMS]
    )
    more = len(items) - _SHOWN_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


def _api_error(err: ApiError) -> Response[Any]:
    return error_response(err.status, err.code, str(err), err.headers)


def _invalid(err: RequestValidationError) -> Response[Any]:
    if any(item.get("type") == "json_invalid" for item in err.errors()):
        return error_response(HTTPStatus.BAD_REQUEST, "INVALID_JSON", "the body is not valid JSON")
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "INVALID_REQUEST", validation_message(err.errors())
    )


def _media_type(err: RequestUnsupportedContentType) -> Response[Any]:
    message = "the body's Content-Type is not accepted here"
    return error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", message)


def _service_error(err: ServiceError) -> Response[Any]:
    return error_response(err.status_code, HTTPStatus(err.status_code).name, str(err.msg))


def _conflict(err: JobConflict) -> Response[Any]:
    return error_response(HTTPStatus.CONFLICT, err.code, str(err))


def _unavailable(err: StorageUnavailable) -> Response[Any]:
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, err.code, str(err), {"Retry-After": "5"})


def _invalid_input(err: InvalidInput) -> Response[Any]:
    return error_response(HTTPStatus.BAD_REQUEST, err.code, str(err))


def _failed(err: VidpError) -> Response[Any]:
    # The message may name a table or quote AWS: it goes to the log; the caller gets the code.
    _log.error("request failed", extra={"error_code": err.code, "error": str(err)})
    message = "internal error: the request was not completed (the service's log has the details)"
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, err.code, message)


def _unexpected(err: Exception) -> Response[Any]:
    _log.exception("unexpected error in a route")  # the traceback goes to the log, not the caller
    message = "internal error: the request was not completed"
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)


_HANDLERS: tuple[tuple[type[Exception], Callable[[Any], Response[Any]]], ...] = (
    (ApiError, _api_error),
    (RequestValidationError, _invalid),
    (RequestUnsupportedContentType, _media_type),
    (ServiceError, _service_error),
    (JobConflict, _conflict),
    (StorageUnavailable, _unavailable),
    (InvalidInput, _invalid_input),
    (VidpError, _failed),
    (Exception, _unexpected),
)
"""Looked up by the exception's class, most specific first (Powertools walks the MRO)."""


def install(
    app: APIGatewayRestResolver, *, body_type: Callable[[str], str | None] = lambda path: None
) -> None:
    """Make every error of ``app`` an ``ErrorBody`` response.

    ``body_type(path)``: the media type a route's body must be, if any. A body of another type
    that fails validation is a 415, not a missing field (Powertools reads a JSON route's form
    body as no body at all, and a form route's JSON as text).
    """

    def invalid(err: RequestValidationError) -> Response[Any]:
        event = app.current_event
        takes_body = body_type is not None and event.http_method in {"POST", "PUT", "PATCH"}
        wanted = body_type(event.path.rstrip("/")) if body_type is not None and takes_body else None
        headers = {name.lower(): value for name, value in (event.headers or {}).items()}
        given = headers.get("content-type", "").split(";")[0].strip().lower()
        if wanted is not None and given != wanted:
            message = f"the body must be {wanted} (Content-Type: {given or 'none'})"
            return error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", message)
        return _invalid(err)

    def no_route(err: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no route {event.http_method} {event.path}")

    for kind, function in _HANDLERS:
        app.exception_handler(kind)(function)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(NotFoundError)(no_route)


def error_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI ``responses`` for the error statuses a route may answer, each an ``ErrorBody``."""
    return {
        int(status): {
            "description": HTTPStatus(status).phrase,
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
        for status in statuses
    }
