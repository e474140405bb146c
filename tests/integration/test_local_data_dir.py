"""The local AWS's data folder: a stopped local AWS comes back with its bucket, its table and its
executions' histories, and hands over the executions that were in flight when it stopped.

Judged by what a user sees after the restart: objects (bodies, content type, metadata), items,
the executions ``vidp executions`` lists from the folder, and the lost executions given to
``_reconcile_lost`` (observed by a subclass: the reconciler itself is tested on its own).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.local import datadir
from pipeline.local.aws import LocalAws
from pipeline.local.datadir import DataDir, DataDirError
from pipeline.local.jobs import earlier_executions, observe_stored, read_record
from pipeline.local.resources import LocalNames
from pipeline.models import JobRequest, video_id_for
from tests.conftest import SIMPLE_SRT, ClipFactory
from tests.support.in_flight import RecordingLocalAws, hold
from tests.support.server import LocalServer

EXECUTION_TIMEOUT = 90.0


def bucket_contents(aws: LocalAws) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    s3 = aws.client("s3")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws.bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=aws.bucket, Key=item["Key"])
            found[item["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return found


def table_items(aws: LocalAws) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    return sorted(items, key=lambda item: str(item["video_id"]))


def test_a_clean_stop_keeps_objects_records_and_histories_and_hands_over_the_job_it_aborted(
    tmp_path: Path, clip: ClipFactory
) -> None:
    folder = tmp_path / "data"
    video = clip("clip.mp4", seconds=1.0)
    big = os.urandom(9 * 1024 * 1024)  # over boto3's multipart threshold: uploaded in parts
    with LocalServer() as srt_server:
        # No periodic snapshot in this run: what comes back is the one written at stop.
        first = RecordingLocalAws(data_dir=folder, allow_loopback=True, snapshot_seconds=3600)
        with first:
            assert first.handed_over is None and first.restored == datadir.Restored()
            s3 = first.client("s3")
            s3.upload_file(str(video), first.bucket, "uploads/été 1/clip.mp4")
            srt_key, metadata = "uploads/été 1/clip.srt", {"origin": "test", "n": "1"}
            s3.put_object(
                Bucket=first.bucket,
                Key=srt_key,
                Body=SIMPLE_SRT,
                ContentType="application/x-subrip",
                Metadata=metadata,
            )
            s3.upload_fileobj(io.BytesIO(big), first.bucket, "uploads/big.bin")
            request = {
                "video": {"s3_uri": f"s3://{first.bucket}/uploads/été 1/clip.mp4"},
                "subtitles": {"s3_uri": f"s3://{first.bucket}/uploads/été 1/clip.srt"},
                "resolution": "360p",
            }
            done = first.start_job(request)
            assert first.wait(done, EXECUTION_TIMEOUT)["status"] == "SUCCEEDED"
            done_history = first.history(done)
            in_flight_request = {**request, "subtitles": {"url": srt_server.route("/held.srt", hold)}}
            in_flight = first.start_job(in_flight_request)
            assert len(srt_server.wait_for(1, timeout=EXECUTION_TIMEOUT)) == 1, "FetchSubtitles never fetched"
            job_id = JobRequest.model_validate(in_flight_request).resolved_job_id()
            record = read_record(first, video_id_for(job_id))
            assert record is not None and record.status == "processing"
            saved = read_record(first, video_id_for(JobRequest.model_validate(request).resolved_job_id()))
            assert saved is not None and saved.s3_uri is not None
            output_key = saved.s3_uri.removeprefix(f"s3://{first.bucket}/")
            objects, items = bucket_contents(first), table_items(first)
        # stop() aborted the held execution, then wrote the folder

    second = RecordingLocalAws(data_dir=folder)
    with second:
        assert bucket_contents(second) == objects
        assert objects["uploads/big.bin"][0] == big
        assert objects[srt_key][1:] == ("application/x-subrip", metadata)
        assert "vidp-job-id" in objects[output_key][2]  # the output with the metadata Finalise put
        assert table_items(second) == items
        assert second.executions() == []  # Step Functions itself starts empty: the folder has them

        assert second.restored is not None and second.restored.earlier_executions == 2
        assert second.handed_over is not None
        handed_over = [(lost["executionArn"], lost["status"]) for lost in second.handed_over]
        assert handed_over == [(in_flight, "ABORTED")]
        assert isinstance(second.handed_over[0]["stopDate"], datetime)

        stored = datadir.stored_executions(folder)
        earlier = {one.arn: one for one in earlier_executions(stored, second.executions())}
        assert set(earlier) == {done, in_flight}
        assert earlier[done].status == "SUCCEEDED" and earlier[done].history == done_history
        assert earlier[in_flight].status == "ABORTED"  # by StopExecution at stop, before the snapshot
        assert earlier[in_flight].history[-1]["type"] == "ExecutionAborted"
        seen = observe_stored(earlier[done], read_record(second, saved.video_id))
        assert seen.timeline[-1].name == "Done" and seen.earlier_run == earlier[done].run


def test_runs_follow_each_other_deletions_included_and_a_clean_stop_hands_nothing_over(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    with RecordingLocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False, reconcile=False) as first:
        first.client("s3").put_object(Bucket=first.bucket, Key="a.txt", Body=b"one")
        nested = {"set": {"BS": [b"a", b"\x80"]}, "list": {"L": [{"B": b"x"}, {"N": "1"}]}}
        binary = {"video_id": {"S": "vid-bin"}, "raw": {"B": b"\0\xff"}, "nested": {"M": nested}}
        first.client("dynamodb").put_item(TableName=first.table_name, Item=binary)
        first.start_execution({"not": "a job"}, name="first-run")  # no handlers: no record is written
    with RecordingLocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False, reconcile=False) as second:
        second.client("s3").delete_object(Bucket=second.bucket, Key="a.txt")
        second.client("s3").put_object(Bucket=second.bucket, Key="b.txt", Body=b"two")
    with RecordingLocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False, reconcile=False) as third:
        assert set(bucket_contents(third)) == {"b.txt"}
        assert table_items(third) == [binary]
        assert second.handed_over is None and third.handed_over is None
        assert [e.description["name"] for e in datadir.stored_executions(folder)] == ["first-run"]
    bodies = [path for path in (folder / "s3" / "objects").rglob("*") if path.is_file()]
    assert len(bodies) == 1  # the deleted object's body went with it


# --- folders that are not usable: one clear line, nothing changed -------------------------------


def _foreign(folder: Path) -> None:
    folder.mkdir()
    (folder / "thesis.tex").write_text("my work")


def _not_json(folder: Path) -> None:
    folder.mkdir()
    (folder / "vidp-local.json").write_text('{"format": "vidp-local-data", "vers')


def _newer(folder: Path) -> None:
    folder.mkdir()
    manifest = {"format": "vidp-local-data", "version": 99, "bucket": "b", "table": "t"}
    (folder / "vidp-local.json").write_text(json.dumps(manifest))


def _other_names(folder: Path) -> None:
    DataDir.open(folder, LocalNames(prefix="vidp-other")).close()


def _corrupt_execution(folder: Path) -> None:
    DataDir.open(folder, LocalNames()).close()
    (folder / "executions" / "20260101T000000Z-0000").mkdir(parents=True)
    (folder / "executions" / "20260101T000000Z-0000" / "x.json").write_text('{"run": "r", "description": 3}')


def _missing_body(folder: Path) -> None:
    DataDir.open(folder, LocalNames()).close()
    index = {"objects": {"a.txt": {"file": "ab/abcd", "etag": '"x"', "size": 1}}}
    (folder / "s3").mkdir()
    (folder / "s3" / "index.json").write_text(json.dumps(index))


def _a_file(folder: Path) -> None:
    folder.write_text("not a folder")


UNUSABLE = {
    "foreign": (_foreign, "is not a vidp local data folder (no vidp-local.json, but it holds thesis.tex)"),
    "not-json": (_not_json, "vidp-local.json is corrupt (Unterminated string"),
    "newer": (_newer, "was written by a newer vidp (data format 99; this one reads 1)"),
    "other-names": (_other_names, "holds bucket vidp-other-media and table vidp-other-jobs"),
    "corrupt-execution": (_corrupt_execution, "x.json is corrupt (description: Input should be a valid"),
    "missing-body": (_missing_body, "is incomplete: the body of s3://vidp-local-media/a.txt"),
    "a-file": (_a_file, "is a file, not a folder"),
}


def _contents(folder: Path) -> dict[str, bytes]:
    if folder.is_file():
        return {"": folder.read_bytes()}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_unusable_data_folder_is_refused_before_anything_starts_and_left_as_it_was(
    tmp_path: Path, case: str
) -> None:
    make, message = UNUSABLE[case]
    folder = tmp_path / "data"
    make(folder)
    before = _contents(folder)
    aws = LocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False)
    with pytest.raises(DataDirError) as raised:
        aws.start()
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert _contents(folder) == before


def test_a_restart_that_cannot_restore_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    aws = LocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False)
    with aws:
        aws.client("s3").put_object(Bucket=aws.bucket, Key="a.txt", Body=b"kept")
    next(path for path in (folder / "s3" / "objects").rglob("*") if path.is_file()).unlink()
    before = _contents(folder)
    with pytest.raises(DataDirError, match="is incomplete: the body of s3://vidp-local-media/a"):
        aws.start()  # the same LocalAws again: its earlier start must not count as restored
    assert _contents(folder) == before


def test_a_folder_in_use_by_a_running_local_aws_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    running = LocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False)
    with running, pytest.raises(DataDirError, match="is in use by another local AWS"):
        DataDir.open(folder, LocalNames())
    DataDir.open(folder, LocalNames()).close()  # free again once stopped


def test_vidp_commands_say_one_line_about_a_corrupt_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    _not_json(folder)
    for argv in (
        ["local", "up", "--port", "0", "--api-port", "0", "--data-dir", str(folder)],
        ["executions", "list", "--endpoint-url", "http://127.0.0.1:9", "--data-dir", str(folder)],
    ):
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *argv], capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert done.returncode == 2, done
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("vidp: error: "), done.stderr
        assert "vidp-local.json is corrupt" in done.stderr and "Traceback" not in done.stderr


def test_a_job_in_flight_when_the_local_aws_stopped_ends_failed_aborted_with_its_callback(
    tmp_path: Path, clip: ClipFactory
) -> None:
    import time

    from tests.support.receiver import CallbackReceiver

    folder = tmp_path / "data"
    video = clip("clip.mp4", seconds=1.0)
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the caller's receiver outlives both runs
    with LocalServer() as srt_server, CallbackReceiver(secret) as receiver:
        first = LocalAws(data_dir=folder, allow_loopback=True)
        with first:
            first.client("s3").upload_file(str(video), first.bucket, "uploads/held/clip.mp4")
            request = {
                "video": {"s3_uri": f"s3://{first.bucket}/uploads/held/clip.mp4"},
                "subtitles": {"url": srt_server.route("/held.srt", hold)},
                "resolution": "360p",
                "callback_url": receiver.url,
            }
            first.start_job(request)
            assert len(srt_server.wait_for(1, timeout=EXECUTION_TIMEOUT)) == 1, "FetchSubtitles never fetched"
            video_id = video_id_for(JobRequest.model_validate(request).resolved_job_id())
            before = read_record(first, video_id)
            assert before is not None and before.status == "processing"
        # stopped mid-job: the record may be reconciled now (the watcher) or at the next start
        second = LocalAws(data_dir=folder, allow_loopback=True)
        with second:
            deadline = time.monotonic() + 30
            while (record := read_record(second, video_id)) is None or record.status != "failed":
                assert time.monotonic() < deadline, record
                time.sleep(0.05)
            assert (record.error_code, record.execution_arn) == ("ABORTED", before.execution_arn)
        callbacks = [c for c in receiver.wait_for(1, timeout=15) if c.payload.get("status") == "failed"]
    assert callbacks and callbacks[0].payload["error_code"] == "ABORTED"


def test_the_callbacks_the_receiver_stored_are_kept_from_one_run_to_the_next(tmp_path: Path) -> None:
    from pipeline.adapters import callbacks_table
    from pipeline.adapters.callbacks_table import ReceivedCallback

    folder = tmp_path / "data"
    stored = ReceivedCallback(
        task_id="task-kept", webhook_id="msg_kept", batch_id="batch-kept",
        received_at="2026-01-01T00:00:00.000Z",
        status="completed", payload={"status": "completed", "task_id": "task-kept", "n": 10**40},
        verified=True, source="webhook",
    )  # fmt: skip
    with LocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False, reconcile=False) as first:
        table = first.names.callbacks_table
        assert callbacks_table.put(stored, table=table, client=first.client("dynamodb"))
    with LocalAws(data_dir=folder, handlers={}, run_ecs_tasks=False, reconcile=False) as second:
        kept = callbacks_table.for_task("task-kept", table=table, client=second.client("dynamodb"))
    assert kept == [stored]
