"""Latency of each HTTP API route on the local servers (median and p95 of N calls), and the API
Lambdas' cold-start import time: ``make bench-api`` -> ``bench/results/api-<time>.md`` and ``api.md``.

Everything runs on this machine: the HTTP server on 127.0.0.1, the resolver, the local AWS
(moto) behind it. The numbers say what the local stack costs per request, not what API Gateway
and DynamoDB cost in AWS. Calls that start jobs start them for real (their executions fail fast
before any encode: only the one saved video's task runs), so the machine is busy with them while
it is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pipeline.adapters import webhooks
from pipeline.local.aws import LocalAws
from pipeline.local.http_api import ApiServer, product_mounts
from pipeline.samples import make_clip

RESULTS = Path(__file__).parent / "results"
LAMBDAS = ("pipeline.api.videos", "pipeline.api.receiver")


def cold_import_ms(module: str, runs: int = 5) -> float:
    """Median wall time of ``import module`` in a fresh interpreter (what a cold start pays)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(times) * 1000


def timed(call: Callable[[int], httpx.Response], calls: int, expect: int) -> dict[str, float]:
    seconds = []
    for n in range(calls):
        start = time.perf_counter()
        answer = call(n)
        seconds.append(time.perf_counter() - start)
        if answer.status_code != expect:
            raise RuntimeError(f"expected {expect}, got {answer.status_code}: {answer.text[:200]}")
    seconds.sort()
    return {
        "median_ms": statistics.median(seconds) * 1000,
        "p95_ms": seconds[int(len(seconds) * 0.95) - 1] * 1000,
    }


def receiver_plan(api: httpx.Client, secret: str) -> list[tuple[str, Callable[[int], httpx.Response], int]]:
    """Seed 002's receiver: signed callbacks in (each a new webhook-id), results out."""

    def signed(n: int) -> httpx.Response:
        body = json.dumps({"status": "completed", "task_id": "bench-task", "batch_id": "bench-batch", "n": n})
        headers = webhooks.sign(secret, f"msg_bench_{n}", datetime.now(UTC), body.encode())
        return api.post("/callback/bench-task", content=body, headers=headers)

    return [
        ("POST /callback/{task_id} (signed, new webhook-id)", signed, 200),
        ("GET /callback/{task_id}", lambda n: api.get("/callback/bench-task"), 200),
        ("GET /callback/batch/{batch_id}", lambda n: api.get("/callback/batch/bench-batch"), 200),
        ("POST /test/simulate", lambda n: api.post("/test/simulate", json={"task_id": f"sim-{n}"}), 201),
        ("GET /test/results?limit=50", lambda n: api.get("/test/results?limit=50"), 200),
    ]


def saved_video(api: httpx.Client, folder: Path) -> str:
    """One real job through the form route (a 1 s clip), waited for until saved: its video id."""
    clip = make_clip(folder / "clip.mp4", width=320, height=240, seconds=1.0, fps=15)
    srt = b"1\n00:00:00,100 --> 00:00:00,900\nHELLO\n"
    files = {
        "video": ("clip.mp4", clip.read_bytes(), "video/mp4"),
        "srt_file": ("clip.srt", srt, "text/plain"),
    }
    video_id: str = api.post("/api/process-video/", files=files).json()["video_id"]
    deadline = time.monotonic() + 120
    while api.get(f"/api/videos/{video_id}").json().get("status") != "saved":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{video_id} not saved after 120 s")
        time.sleep(0.2)
    return video_id


def measure(calls: int) -> dict[str, Any]:
    routes: dict[str, dict[str, float]] = {}
    with LocalAws() as aws, ApiServer(product_mounts()) as server, tempfile.TemporaryDirectory() as folder:
        api = httpx.Client(base_url=server.url, timeout=30)
        saved_id = saved_video(api, Path(folder))
        missing = {"subtitles": {"url": "https://subtitles.example/a.srt"}}

        def job(n: int, tag: str) -> dict[str, Any]:
            return {"video": {"s3_uri": f"s3://{aws.bucket}/uploads/bench-{tag}-{n}.mp4"}, **missing}

        started = api.post("/api/jobs", json=job(0, "one")).json()
        video_id = started["video_id"]
        aws.wait(started["execution_arn"], 60)
        upload = {"filename": "clip.mp4", "content_type": "video/mp4", "size": 1000}
        form = {
            "video": ("clip.mp4", b"\0" * 2048, "video/mp4"),
            "srt_file": ("clip.srt", b"1\n", "text/plain"),
        }
        plan: list[tuple[str, Callable[[int], httpx.Response], int]] = [
            ("GET /api/health", lambda n: api.get("/api/health"), 200),
            ("POST /api/uploads", lambda n: api.post("/api/uploads", json=upload), 200),
            ("POST /api/jobs (a new job)", lambda n: api.post("/api/jobs", json=job(n, "new")), 202),
            ("POST /api/jobs (the same job again)", lambda n: api.post("/api/jobs", json=job(0, "one")), 202),
            (
                "POST /api/process-video/ (2 KB form, a new job)",
                lambda n: api.post("/api/process-video/", files=form, data={"crf_value": str(n % 52)}),
                202,
            ),
            ("GET /api/videos/{id}", lambda n: api.get(f"/api/videos/{video_id}"), 200),
            ("GET /api/videos/?limit=50", lambda n: api.get("/api/videos/?limit=50"), 200),
            (
                "GET /api/videos/?status=failed&limit=50",
                lambda n: api.get("/api/videos/?status=failed&limit=50"),
                200,
            ),
            (
                "PATCH /api/videos/{id}",
                lambda n: api.patch(f"/api/videos/{video_id}", json={"metadata": {"n": n}}),
                200,
            ),
            ("GET /api/stream/{id} (not saved: 409)", lambda n: api.get(f"/api/stream/{video_id}"), 409),
            ("GET /api/stream/{id} (saved: 302)", lambda n: api.get(f"/api/stream/{saved_id}"), 302),
            (
                "GET /api/videos/{id} (saved: a presigned link)",
                lambda n: api.get(f"/api/videos/{saved_id}"),
                200,
            ),
            ("GET /api/openapi.json", lambda n: api.get("/api/openapi.json"), 200),
        ]
        plan += receiver_plan(api, aws.webhook_secret)
        for name, call, expect in plan:
            routes[name] = timed(call, calls, expect)
        failed = [r["id"] for r in api.get("/api/videos/?status=failed&limit=100").json()["items"]]
        doomed = failed[1 : calls + 1]
        routes[f"DELETE /api/videos/{{id}} ({len(doomed)} calls)"] = timed(
            lambda n: api.delete(f"/api/videos/{doomed[n]}"), len(doomed), 204
        )
    imports = {module: cold_import_ms(module) for module in LAMBDAS}
    return {"calls": calls, "routes": routes, "cold_import_ms": imports}


def report(result: dict[str, Any], when: str) -> str:
    lines = [
        f"# HTTP API latency on the local servers ({when})",
        "",
        f"{result['calls']} calls per route, one after another, through 127.0.0.1 (ApiServer -> resolver ->",
        "moto). `make bench-api`. A noisy 2-core machine: compare ratios within one run.",
        "",
        "| route | median ms | p95 ms |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {row['median_ms']:.1f} | {row['p95_ms']:.1f} |" for name, row in result["routes"].items()
    ]
    lines += ["", "Cold-start import of the API Lambda's module (fresh interpreter, median of 5):", ""]
    lines += [f"- `{module}`: {ms:.0f} ms" for module, ms in result["cold_import_ms"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    when = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    result = measure(args.calls)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"api-{when}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result, when)
    (RESULTS / f"api-{when}.md").write_text(text)
    (RESULTS / "api.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
