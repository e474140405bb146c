"""The OpenAPI documents checked into the repository, and what generates each (``make openapi``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.api import receiver, videos
from pipeline.api.docs import openapi_document


def _videos_document() -> dict[str, Any]:
    return openapi_document(videos.make_app(), title=videos.SERVICE, description=videos.DESCRIPTION)


def _receiver_document() -> dict[str, Any]:
    return openapi_document(
        receiver.make_receiver(), title=receiver.SERVICE, description=receiver.DESCRIPTION
    )


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "pipeline/api/openapi.json": _videos_document,
    "pipeline/api/receiver.openapi.json": _receiver_document,
}
"""Each checked-in document (path from the repository's root) and what generates it."""
