"""The OpenAPI documents in the repository are the ones the routes generate: a change of the API's
contract shows as a change of these files (``make openapi`` rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.api.documents import DOCUMENTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(DOCUMENTS))
def test_the_checked_in_document_is_what_the_routes_generate(path: str) -> None:
    checked_in = json.loads((ROOT / path).read_text(encoding="utf-8"))
    assert checked_in == DOCUMENTS[path](), f"{path} is out of date: run `make openapi` and review the diff"


def test_every_error_response_is_the_apis_error_body() -> None:
    document = DOCUMENTS["pipeline/api/openapi.json"]()
    assert "HTTPValidationError" not in json.dumps(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and (path, status) != ("/api/health", "503"):  # degraded: a Health
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_the_version_the_api_reports_is_the_packages() -> None:
    import tomllib

    import pipeline

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert pipeline.__version__ == project["version"]
