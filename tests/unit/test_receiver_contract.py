"""The callback receiver's published contract (its OpenAPI) and what its Lambda loads at a cold start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.api.receiver import make_receiver
from pipeline.steps.registry import STEP_MODULES

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {
    ("post", "/callback/{task_id}"): ("200", {"401", "413", "422", "503"}),
    ("get", "/callback/{task_id}"): ("200", {"404", "422", "503"}),
    ("get", "/callback/batch/{batch_id}"): ("200", {"400", "404", "422", "503"}),
    ("post", "/test/simulate"): ("201", {"404", "422", "503"}),
    ("get", "/test/results"): ("200", {"422", "503"}),
}


def spec() -> dict[str, Any]:
    schema = make_receiver().get_openapi_schema()
    return dict(schema.model_dump(mode="json", by_alias=True, exclude_none=True))


def test_every_route_documents_its_answer_and_its_errors_as_the_one_error_shape() -> None:
    paths = spec()["paths"]

    found = {(method, path) for path, operations in paths.items() for method in operations}
    assert found == set(ROUTES)
    for (method, path), (success, failures) in ROUTES.items():
        responses = paths[path][method]["responses"]
        assert success in responses and "$ref" in json.dumps(responses[success]), (method, path)
        assert failures <= set(responses), (method, path, sorted(responses))
        for status in failures:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_the_signed_route_documents_the_webhook_headers_and_simulate_its_body() -> None:
    paths = spec()["paths"]

    headers = {p["name"] for p in paths["/callback/{task_id}"]["post"]["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert "requestBody" in paths["/test/simulate"]["post"]


def test_the_receiver_lambda_loads_no_step_no_local_aws_and_no_test_tool() -> None:
    code = "import json, sys, pipeline.api.receiver; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(run.stdout))

    assert "pipeline.api.receiver" in loaded
    assert not set(STEP_MODULES.values()) & loaded
    assert not {
        name for name in loaded if name.startswith(("pipeline.local", "pipeline.task", "pipeline.cli"))
    }
    assert not {name for name in loaded if name.split(".")[0] in {"moto", "typer", "aws_cdk", "srt"}}
