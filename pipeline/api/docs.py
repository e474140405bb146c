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
    """The routes' OpenAPI 3.1 document, every error response an ``ErrorBody``."""
    spec: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(title=title, version=product_version(), description=description)
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in error_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["ErrorBody"] = error_schema
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Invalid request (the message names the field)",
                    "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
                }
    return spec


def install(app: APIGatewayRestResolver, *, prefix: str, title: str, description: str) -> None:
    """``GET {prefix}/openapi.json`` and the Swagger UI at ``GET {prefix}/docs``."""

    @cache
    def document_text() -> str:
        # '</' escaped: the document is also embedded in the page's <script>.
        return json.dumps(openapi_document(app, title=title, description=description)).replace("</", "<\\/")

    def base() -> str:
        context = app.current_event.request_context
        stage_path = str(context.path or "") if hasattr(context, "path") else ""
        event_path = app.current_event.path
        return stage_path[: -len(event_path)] if stage_path.endswith(event_path) else ""

    def openapi_json() -> Response[str]:
        return Response(200, "application/json", document_text())

    def swagger_page() -> Response[str]:
        assets = f"{base()}{prefix}/docs"
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
