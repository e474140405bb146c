"""The OpenAPI documents checked into the repository, and what generates each (``make openapi``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.api import videos
from pipeline.api.docs import openapi_document


def _videos_document() -> dict[str, Any]:
    return openapi_document(videos.make_app(), title=videos.SERVICE, description=videos.DESCRIPTION)


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {"pipeline/api/openapi.json": _videos_document}
"""Each checked-in document (path from the repository's root) and what generates it."""
