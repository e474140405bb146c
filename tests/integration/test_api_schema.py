"""Schemathesis against the local API's own OpenAPI document: generated requests (valid and not) to
every route through the real server, resolver and local AWS; no 5xx, and every answer is one the
document declares (status, content type, body schema). Examples are bounded to keep ``make test``
short; ``SCHEMATHESIS_EXAMPLES`` raises them for a longer run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from pipeline.api.documents import DOCUMENTS
from pipeline.local.aws import LocalAws
from pipeline.local.http_api import ApiServer, product_mounts

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    with LocalAws(run_ecs_tasks=False) as _aws, ApiServer(product_mounts()) as server:
        yield server.url


@pytest.mark.parametrize("document", ["videos API (served)", "callback receiver"])
def test_every_route_answers_as_its_document_says(api_url: str, document: str) -> None:
    # schemathesis' pytest loader (from_fixture) does not run under pytest 9: the operations'
    # strategies are driven with hypothesis directly instead.
    if document == "callback receiver":
        schema = schemathesis.openapi.from_dict(DOCUMENTS["pipeline/api/receiver.openapi.json"]())
    else:
        schema = schemathesis.openapi.from_url(f"{api_url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api_url, checks=CHECKS)

        answers_as_documented()
