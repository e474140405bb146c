"""The ``vidp`` command."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline import failures
from pipeline.failures import InvalidInput, VidpError
from pipeline.models import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    EncodeOptions,
    EncodeResult,
    JobRecord,
    JobRequest,
    SubtitleStyle,
    validation_problems,
)

if TYPE_CHECKING:
    from pipeline.local.aws import LocalAws
    from pipeline.local.clients import Endpoint
    from pipeline.local.datadir import StoredExecution
    from pipeline.local.jobs import Observation, RunResult

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="VidP: burn SRT subtitles into a video and compress it, locally or on AWS Step Functions.",
)
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    print(f"vidp: error: {' '.join(message.split())}", file=sys.stderr)
    raise typer.Exit(code)


def parse_style(pairs: list[str]) -> SubtitleStyle:
    """``KEY=VALUE`` pairs into a SubtitleStyle; an unknown key or bad value is invalid input."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--style expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value
    try:
        return SubtitleStyle.model_validate(values)
    except ValidationError as err:
        raise InvalidInput(
            f"invalid --style: {validation_problems(err, whole='value', first_only=True)}"
        ) from None


def _first_error(err: ValidationError) -> str:
    return validation_problems(err, whole="value", first_only=True)


def _summary(result: EncodeResult) -> str:
    quality = f", SSIM {result.quality.ssim:.4f}, PSNR {result.quality.psnr:.2f} dB" if result.quality else ""
    return (
        f"{result.output_path}\n  {result.width}x{result.height} {result.video_codec}/"
        f"{result.audio_codec or 'no audio'}, {result.duration:.2f} s, {result.size / 1e6:.2f} MB, "
        f"{result.cues} cues burned, encoded in {result.encode_seconds:.1f} s{quality}"
    )


@app.command()
def burn(
    input_video: Annotated[Path, typer.Argument(metavar="INPUT", help="video file to process")],
    srt: Annotated[Path, typer.Option("--srt", help="SRT subtitle file (any common encoding)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output MP4 path")],
    resolution: Annotated[str, typer.Option(help="360p, 480p, 720p or 1080p (short side)")] = "720p",
    crf: Annotated[int, typer.Option(help="x264 CRF, 0-51 (lower is better quality)")] = DEFAULT_CRF,
    preset: Annotated[str, typer.Option(help="x264 preset")] = DEFAULT_PRESET,
    style: Annotated[
        list[str] | None, typer.Option("--style", help="subtitle style KEY=VALUE (repeatable)")
    ] = None,
    upscale: Annotated[bool, typer.Option(help="allow output larger than the source")] = False,
    quality: Annotated[bool, typer.Option(help="measure SSIM/PSNR against the source")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")] = False,
) -> None:
    """Burn subtitles into INPUT and compress it in one ffmpeg pass."""
    from pipeline.media.engine import burn as run_burn
    from pipeline.media.engine import read_subtitles

    try:
        options = EncodeOptions.model_validate(
            {
                "resolution": resolution,
                "crf": crf,
                "preset": preset,
                "style": parse_style(style or []),
                "upscale": upscale,
                "quality": quality,
            }
        )
    except ValidationError as err:
        _fail(f"invalid option {validation_problems(err, whole='value', first_only=True)}", EXIT_INVALID)
    except InvalidInput as err:
        _fail(str(err), EXIT_INVALID)

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]encoding"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with bar:
            task = bar.add_task("encode", total=100)
            result = run_burn(
                input_video,
                read_subtitles(srt),
                output,
                options,
                on_progress=lambda done: bar.update(task, completed=done),
            )
    except InvalidInput as err:
        _fail(str(err), EXIT_INVALID)
    except VidpError as err:
        _fail(str(err), EXIT_FAILED)
    except OSError as err:
        _fail(f"{err.strerror or err} ({err.filename or 'file'})", EXIT_FAILED)

    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        console.print(_summary(result), highlight=False)


def _is_loopback(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "") if url else ""
    return host in {"localhost", "::1"} or host.startswith("127.")


def _timeline_table(observation: Observation) -> Table:
    table = Table(title="execution timeline", title_justify="left")
    for column in ("state", "type", "seconds", "attempts", "errors"):
        table.add_column(column, overflow="fold")
    for step in observation.timeline:
        seconds = "running" if step.seconds is None else f"{step.seconds:.2f}"
        table.add_row(step.name, step.type, seconds, str(step.attempts or ""), "\n".join(step.errors))
    return table


def _record_table(record: JobRecord) -> Table:
    table = Table(title="job record", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in record.shown().items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    return table


def _live_status(console: Console) -> tuple[Any, Callable[[Observation], None]]:
    status = console.status("starting", spinner="dots")

    def update(seen: Observation) -> None:
        state = seen.current_state or seen.status.lower()
        progress = seen.record.progress if seen.record else None
        encode = f" - encode {progress:.0f}%" if state == "BurnAndCompress" and progress is not None else ""
        status.update(f"{state}{encode}")

    return status, update


def _run_on_local_aws(
    aws: LocalAws,
    request_fields: dict[str, Any],
    video: Path,
    srt: str,
    *,
    out_dir: Path,
    timeout: float,
    console: Console,
) -> RunResult:
    from pipeline.local.jobs import run_job

    status, update = _live_status(console)
    with status:
        return run_job(aws, request_fields, video, srt, out_dir=out_dir, timeout=timeout, on_update=update)


def _report(result: RunResult, console: Console, as_json: bool) -> None:
    """Print the run (timeline, record) and exit with the status the README documents."""
    seen = result.observation
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        out = Console()
        out.print(_timeline_table(seen))
        if seen.record is not None:
            out.print(_record_table(seen.record))
        if result.output_path:
            out.print(f"output: {result.output_path}", highlight=False)
    if result.status == "SUCCEEDED":
        return
    record = seen.record
    if record is not None and record.error_code:
        code = EXIT_INVALID if failures.is_invalid_input(record.error_code) else EXIT_FAILED
        where = f" in {record.failed_state}" if record.failed_state else ""
        _fail(f"job failed{where}: {record.error_code}: {record.error_message}", code)
    if result.status == "RUNNING":
        _fail(f"execution still running after the timeout: {result.execution_arn}", EXIT_FAILED)
    _fail(f"execution {result.status.lower()}: {seen.error or ''} {seen.cause or ''}".strip(), EXIT_FAILED)


def _request_fields(
    resolution: str, crf: int, preset: str, style: list[str] | None, callback_url: str | None
) -> dict[str, Any]:
    """The JobRequest fields given on the command line, validated before anything starts."""
    fields: dict[str, Any] = {
        "resolution": resolution,
        "crf": crf,
        "preset": preset,
        "style": parse_style(style or []).model_dump(exclude_defaults=True),
    }
    if callback_url:
        fields["callback_url"] = callback_url
    probe_request = {
        "video": {"s3_uri": "s3://check-only/v.mp4"},
        "subtitles": {"url": "https://check.invalid/s"},
    }
    try:
        JobRequest.model_validate({**fields, **probe_request})
    except ValidationError as err:
        raise InvalidInput(
            f"invalid option {validation_problems(err, whole='value', first_only=True)}"
        ) from None
    return fields


@app.command()
def run(
    video: Annotated[Path, typer.Option("--video", help="video file to process")],
    srt: Annotated[str, typer.Option("--srt", help="SRT file, or an http(s) URL of one")],
    resolution: Annotated[str, typer.Option(help="360p, 480p, 720p or 1080p")] = "720p",
    crf: Annotated[int, typer.Option(help="x264 CRF, 0-51")] = DEFAULT_CRF,
    preset: Annotated[str, typer.Option(help="x264 preset")] = DEFAULT_PRESET,
    style: Annotated[list[str] | None, typer.Option("--style", help="subtitle style KEY=VALUE")] = None,
    callback_url: Annotated[str | None, typer.Option(help="where to POST the signed callback")] = None,
    out_dir: Annotated[Path, typer.Option(help="where the output is saved")] = Path("out"),
    timeout: Annotated[float, typer.Option(help="seconds to wait for the execution")] = 1800.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")] = False,
) -> None:
    """Run the whole pipeline (the Step Functions definition) on the embedded local AWS.

    Without --callback-url the signed callback goes to the product's own receiver (seed 002's).
    """
    from pipeline.local.aws import LocalAws
    from pipeline.local.http_api import ApiServer, product_mounts

    console = Console(stderr=True)
    try:
        if not video.is_file():
            raise InvalidInput(f"video file not found: {video}")
        if not srt.startswith(("http://", "https://")) and not Path(srt).is_file():
            raise InvalidInput(f"subtitle file not found: {srt}")
        fields = _request_fields(resolution, crf, preset, style, callback_url)
    except InvalidInput as err:
        _fail(str(err), EXIT_INVALID)
    # 127.0.0.1 targets are refused by the SSRF guard unless the local AWS is told, by the
    # person at the keyboard (never by a job), that its SRT server or receiver is local: as the
    # product's own receiver is, which gets the callback when no --callback-url is given.
    loopback = callback_url is None or _is_loopback(srt) or _is_loopback(callback_url)
    with LocalAws(allow_loopback=loopback) as aws, ApiServer(product_mounts(), port=0) as api:
        receiver = None if callback_url else f"{api.url}/callback/vidp-run"
        if receiver:
            fields["callback_url"] = receiver
        result = _run_on_local_aws(aws, fields, video, srt, out_dir=out_dir, timeout=timeout, console=console)
        callbacks = _received(receiver) if receiver else []
    for callback in callbacks:
        console.print(
            f"callback ({callback['status']}) received by the local receiver, signature verified",
            highlight=False,
        )
    _report(result, console, as_json)


local_app = typer.Typer(no_args_is_help=True, help="The embedded local AWS.")
executions_app = typer.Typer(no_args_is_help=True, help="Executions of a running local AWS.")
app.add_typer(local_app, name="local")
app.add_typer(executions_app, name="executions")
ENDPOINT_OPTION = typer.Option("--endpoint-url", help="the local AWS (vidp local up)")
DATA_DIR_HELP = "the data folder of vidp local up, where earlier runs' executions are kept"
DEFAULT_DATA_DIR = Path(".vidp-local")  # = datadir.DEFAULT_DATA_DIR, without importing boto3 here


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 4566,
    api_port: Annotated[int, typer.Option(help="port of the HTTP API on 127.0.0.1 (/api/docs)")] = 8000,
    allow_loopback: Annotated[
        bool, typer.Option(help="let jobs call back / fetch SRT from 127.0.0.1 (local testing)")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="where the bucket, table and executions are kept [default: ./.vidp-local]"),
    ] = None,
    ephemeral: Annotated[bool, typer.Option(help="keep nothing: everything is gone at stop")] = False,
) -> None:
    """Keep the local AWS and the HTTP API running (boto3, the AWS CLI, curl); Ctrl-C stops them.

    The bucket, the table and the executions are kept in the data folder and restored at the next start.
    """
    from pipeline.local.aws import LocalAws, LocalAwsError
    from pipeline.local.datadir import DataDirError
    from pipeline.local.http_api import ApiServer, product_mounts

    if ephemeral and data_dir is not None:
        _fail("--ephemeral keeps no data folder: give --data-dir or --ephemeral, not both", EXIT_INVALID)
    folder = None if ephemeral else (data_dir or DEFAULT_DATA_DIR)
    try:
        api = ApiServer(product_mounts(), port=api_port)
    except OSError as err:
        _fail(f"cannot serve the HTTP API on 127.0.0.1:{api_port}: {err.strerror or err}", EXIT_FAILED)
    try:
        with LocalAws(port=port, allow_loopback=allow_loopback, data_dir=folder) as aws, api:
            _serve(aws, api.url)
    except DataDirError as err:
        _fail(str(err), EXIT_INVALID)
    except LocalAwsError as err:
        _fail(str(err), EXIT_FAILED)


def _data_dir_line(aws: LocalAws) -> str:
    restored = aws.restored
    if aws.data_dir is None or restored is None:
        return "  data folder    none (--ephemeral: nothing is kept after this run)"
    line = f"  data folder    {aws.data_dir}"
    if restored.objects or restored.items or restored.earlier_executions:
        line += (
            f"\n                 restored {restored.objects} objects and {restored.items} records; "
            f"{restored.earlier_executions} executions of earlier runs (vidp executions list)"
        )
    if restored.lost:
        line += f"\n                 {len(restored.lost)} executions were in flight at the last stop: ABORTED"
    return line


def _serve(aws: LocalAws, api_url: str) -> None:
    """Print where everything is, then wait for Ctrl-C or SIGTERM."""
    names = aws.names
    print(f"local AWS on {aws.endpoint_url} (region us-east-1, any credentials)")
    print(_data_dir_line(aws))
    print(f"  HTTP API       {api_url}/api   (docs: {api_url}/api/docs)")
    print(f"  receiver       {api_url}/callback/TASK_ID   (seed 002's callback API)")
    print(f"  state machine  {aws.state_machine_arn}")
    print(f"  bucket         {names.bucket}   (uploads under incoming/ start jobs)")
    print(f"  table          {names.table}")
    print(f"  ECS cluster    {names.cluster}   task definition {names.task_family}")
    print(f"  event bus      {names.event_bus}")
    print(f"  callbacks are signed with VIDP_WEBHOOK_SECRET={aws.webhook_secret} (verify with it)")
    print(_example(aws.endpoint_url, aws.state_machine_arn, names.bucket), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    print("stopping", file=sys.stderr)


def _example(endpoint: str, machine: str, bucket: str) -> str:
    job = json.dumps(
        {"video": {"s3_uri": f"s3://{bucket}/uploads/clip.mp4"},
         "subtitles": {"s3_uri": f"s3://{bucket}/uploads/clip.srt"}, "resolution": "720p"}
    )  # fmt: skip
    return f"""
example (AWS CLI; any credentials, e.g. AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local):
  aws --endpoint-url {endpoint} --region us-east-1 s3 cp clip.mp4 s3://{bucket}/uploads/clip.mp4
  aws --endpoint-url {endpoint} --region us-east-1 s3 cp clip.srt s3://{bucket}/uploads/clip.srt
  aws --endpoint-url {endpoint} --region us-east-1 stepfunctions start-execution \\
      --state-machine-arn {machine} --name my-first-job --input '{job}'
  vidp executions list --endpoint-url {endpoint}"""


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S}" if moment else ""


def _live_or_none(remote: Endpoint, what: Callable[[Endpoint], Any]) -> Any:
    """``what(remote)``, or None when no local AWS answers there (the data folder may still tell)."""
    from botocore.exceptions import EndpointConnectionError

    try:
        return what(remote)
    except EndpointConnectionError:
        return None


def _folder_only(endpoint_url: str) -> None:
    print(f"vidp: no local AWS answers at {endpoint_url}; showing the data folder only", file=sys.stderr)


def _stored(data_dir: Path) -> list[StoredExecution]:
    """The executions kept in the data folder, oldest first; one line and exit if it is unreadable."""
    from pipeline.local.datadir import DataDirError, read_manifest, stored_executions

    try:
        read_manifest(data_dir)
        return stored_executions(data_dir)
    except DataDirError as err:
        _fail(str(err), EXIT_INVALID)


@executions_app.command("list")
def executions_list(
    endpoint_url: Annotated[str, ENDPOINT_OPTION] = "http://127.0.0.1:4566",
    data_dir: Annotated[Path, typer.Option(help=DATA_DIR_HELP)] = DEFAULT_DATA_DIR,
) -> None:
    """Executions of the pipeline, newest first: the running local AWS's, then earlier runs' (data folder)."""
    from pipeline.local.clients import Endpoint
    from pipeline.local.jobs import earlier_executions, live_executions

    stored = _stored(data_dir)
    live = _live_or_none(Endpoint(endpoint_url), live_executions)
    earlier = earlier_executions(stored, live or [])
    if live is None:
        if not earlier:
            _fail(f"no local AWS answers at {endpoint_url} and {data_dir} holds no executions", EXIT_FAILED)
        _folder_only(endpoint_url)
    table = Table(title=f"executions on {endpoint_url}", title_justify="left")
    for column in ("name", "status", "started", "stopped", "run", "execution ARN"):
        table.add_column(column, overflow="fold")
    for item in live or []:
        table.add_row(item["name"], item["status"], _when(item["startDate"]), _when(item.get("stopDate")),
                      "this run", item["executionArn"])  # fmt: skip
    for one in earlier:
        described = one.description
        table.add_row(described["name"], one.status, _when(described.get("startDate")),
                      _when(described.get("stopDate")), f"earlier ({one.run})", one.arn)  # fmt: skip
    Console().print(table)


def _find_execution(execution_arn: str, endpoint_url: str, data_dir: Path) -> Observation:
    """The execution on the running local AWS, else the newest one with that ARN in the data folder."""
    from botocore.exceptions import ClientError

    from pipeline.local.clients import Endpoint
    from pipeline.local.jobs import observe, observe_stored, record_of_execution, stored_record

    stored_ones = _stored(data_dir)
    remote = Endpoint(endpoint_url)
    try:
        seen: Observation | None = _live_or_none(remote, lambda aws: observe(aws, execution_arn))
        reachable = seen is not None
    except ClientError as err:
        error = err.response.get("Error", {})
        if error.get("Code") not in {"ExecutionDoesNotExist", "InvalidArn"}:
            _fail(f"{error.get('Code')}: {error.get('Message')}", EXIT_FAILED)
        seen, reachable = None, True
    if seen is not None:
        return seen
    stored = next((e for e in reversed(stored_ones) if e.arn == execution_arn), None)
    if stored is None:
        _fail(f"no execution {execution_arn} on {endpoint_url} nor in {data_dir}", EXIT_FAILED)
    if reachable:  # the restored table is newer than the folder's snapshot of it
        return observe_stored(stored, record_of_execution(remote, stored.description))
    _folder_only(endpoint_url)
    return observe_stored(stored, stored_record(data_dir, stored.description))


@executions_app.command("show")
def executions_show(
    execution_arn: Annotated[str, typer.Argument(metavar="ARN")],
    endpoint_url: Annotated[str, ENDPOINT_OPTION] = "http://127.0.0.1:4566",
    data_dir: Annotated[Path, typer.Option(help=DATA_DIR_HELP)] = DEFAULT_DATA_DIR,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The timeline of one execution (each state, its duration, retries and errors) and its job record."""
    seen = _find_execution(execution_arn, endpoint_url, data_dir)
    if as_json:
        shown = {
            "status": seen.status,
            "earlier_run": seen.earlier_run,
            "timeline": [step.model_dump(mode="json") for step in seen.timeline],
            "record": seen.record.shown() if seen.record else None,
        }
        print(json.dumps(shown, indent=2))
        return
    out = Console()
    where = f" (from an earlier run of the local AWS, {seen.earlier_run})" if seen.earlier_run else ""
    out.print(f"{execution_arn}: {seen.status}{where}", highlight=False)
    out.print(_timeline_table(seen))
    if seen.record is not None:
        out.print(_record_table(seen.record))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="where to write the sample and result")] = Path(
        "out"
    ),
) -> None:
    """The whole pipeline on the local AWS: a generated clip, the bundled SRT, a signed callback."""
    from pipeline.local.aws import LocalAws
    from pipeline.local.http_api import ApiServer, product_mounts
    from pipeline.samples import make_clip, sample_srt

    console = Console(stderr=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    source, srt = out_dir / "sample-source.mp4", out_dir / "sample.srt"
    console.print(f"generating a 10 s 1080p sample clip: {source}", highlight=False)
    make_clip(source, width=1920, height=1080, seconds=10)
    srt.write_bytes(sample_srt())
    aws = LocalAws(allow_loopback=True)  # the callback receiver below listens on 127.0.0.1
    with aws, ApiServer(product_mounts(), port=0) as api:
        receiver = f"{api.url}/callback/demo-task"
        console.print(
            f"local AWS on {aws.endpoint_url}; HTTP API and callback receiver on {api.url}", highlight=False
        )
        fields = {"resolution": "720p", "callback_url": receiver, "quality": True, "task_id": "demo-task",
                  "batch_id": "demo-batch", "metadata": {"source": "vidp demo"}}  # fmt: skip
        result = _run_on_local_aws(
            aws, fields, source, str(srt), out_dir=out_dir, timeout=600, console=console
        )
        callbacks = _received(receiver)
    for callback in callbacks:
        console.print(
            f"callback received by the local receiver ({callback['webhook_id']}), signature verified:",
            highlight=False,
        )
        print(json.dumps(callback["payload"], indent=2))
    if not callbacks:
        console.print("no callback reached the local receiver", highlight=False)
    _report(result, console, as_json=False)
    console.print(
        "the presigned URLs above point at this run's local AWS, gone now that it has stopped: "
        "`vidp local up` keeps one running (HTTP API on http://127.0.0.1:8000/api)",
        highlight=False,
    )


def _received(receiver_url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The callbacks the local receiver stored for its task (GET on the same URL), oldest first.

    Only callbacks whose signature verified are stored: the receiver refuses the others (401).
    """
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(receiver_url, timeout=5)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return list(reversed(answer.json().get("callbacks", []))) if answer.status_code == 200 else []
        time.sleep(0.1)


if __name__ == "__main__":  # pragma: no cover
    app()
