"""The API's OpenAPI document and its Swagger UI, served by the API itself (no CDN).

The document is Powertools' (generated from the routes' pydantic models) with one correction:
Powertools declares every validation error as its own ``HTTPValidationError`` shape, while this
API answers every error, 422 included, with ``ErrorBody`` (``pipeline.api.errors``). The Swagger
UI's script and style are the copies Powertools ships in its wheel, served as files.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

import pipeline
from pipeline.api.errors import ErrorBody

_ASSETS = Path(swagger_ui.__file__).parent
_SCRIPT, _STYLE = "swagger-ui-bundle.min.js", "swagger-ui.min.css"
_ERROR_REF = "#/components/schemas/ErrorBody"


def product_version() -> str:
    return pipeline.__version__


def openapi_document(app: APIGatewayRestResolver, *, title: str, description: str) -> dict[str, Any]:
    """The routes' OpenAPI 3.1 document, as the API answers: every error an ``ErrorBody``."""
    spec: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(title=title, version=product_version(), description=description)
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in error_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["ErrorBody"] = error_schema
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            _as_answered(operation)
    return spec


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}}}


def _as_answered(operation: dict[str, Any]) -> None:
    """Powertools' operation corrected: its 422 is ours; no body for a 204 or a redirect; no 422
    where there is nothing to validate; every route may answer 500 and 503 (a store down)."""
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = _error("Invalid request (the message names the field)")
        if not operation.get("parameters") and "requestBody" not in operation:
            del responses["422"]
    for status, response in responses.items():
        if status == "204" or status.startswith("3"):
            response.pop("content", None)
    responses.setdefault("500", _error("Internal error (the details are in the service's log)"))
    responses.setdefault("503", _error("A store the route needs is unavailable: try again (Retry-After)"))


def stage_path(app: APIGatewayRestResolver) -> str:
    """The path API Gateway puts before the routes (``/prod``), as the caller used it; locally ``""``."""
    event = app.current_event
    called = str(getattr(event.request_context, "path", "") or "")
    return called[: -len(event.path)] if called.endswith(event.path) else ""


def install(app: APIGatewayRestResolver, *, prefix: str, title: str, description: str) -> None:
    """``GET {prefix}/openapi.json`` and the Swagger UI at ``GET {prefix}/docs``."""

    @cache
    def document_text() -> str:
        # '</' escaped: the document is also embedded in the page's <script>.
        return json.dumps(openapi_document(app, title=title, description=description)).replace("</", "<\\/")

    def openapi_json() -> Response[str]:
        return Response(200, "application/json", document_text())

    def swagger_page() -> Response[str]:
        if (app.current_event.query_string_parameters or {}).get("format") == "json":
            return openapi_json()  # the page's own "download" link
        assets = f"{stage_path(app)}{prefix}/docs"
        page = generate_swagger_html(
            document_text(), f"{assets}/{_SCRIPT}", f"{assets}/{_STYLE}", assets, None, False
        )
        return Response(200, "text/html; charset=utf-8", page)

    def asset(name: str, content_type: str) -> Any:
        def serve() -> Response[str]:
            text = (_ASSETS / name).read_text(encoding="utf-8")
            return Response(200, content_type, text, headers={"Cache-Control": "public, max-age=86400"})

        return serve

    app.get(f"{prefix}/openapi.json", include_in_schema=False)(openapi_json)
    app.get(f"{prefix}/docs", include_in_schema=False)(swagger_page)
    app.get(f"{prefix}/docs/{_SCRIPT}", include_in_schema=False)(asset(_SCRIPT, "application/javascript"))
    app.get(f"{prefix}/docs/{_STYLE}", include_in_schema=False)(asset(_STYLE, "text/css"))
