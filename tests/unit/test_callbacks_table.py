"""The callback receiver's table through moto: stored once per webhook-id, read back newest first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from pipeline.adapters import callbacks_table
from pipeline.adapters.callbacks_table import ReceivedCallback
from pipeline.adapters.page_tokens import InvalidPageToken
from pipeline.failures import StorageFailed, StorageUnavailable
from pipeline.local.resources import create_callbacks_table

TABLE = "vidp-test-callbacks"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_callbacks_table(client, TABLE)
        yield client


def callback(task_id: str, webhook_id: str, at: str, **fields: Any) -> ReceivedCallback:
    status = fields.pop("status", "completed")
    batch_id = fields.pop("batch_id", None)
    payload = {"status": status, "task_id": task_id, "batch_id": batch_id, **fields}
    return ReceivedCallback(task_id=task_id, webhook_id=webhook_id, batch_id=batch_id,
                            received_at=f"2026-01-02T03:04:{at}Z", status=status, payload=payload,
                            verified=True, source="webhook")  # fmt: skip


def put(client: Any, *callbacks: ReceivedCallback) -> None:
    for one in callbacks:
        assert callbacks_table.put(one, table=TABLE, client=client)


def test_a_webhook_id_is_stored_once_and_the_first_copy_kept(dynamodb: Any) -> None:
    first = callback("task-1", "msg_a", "05.000", processing_time=15.23, results={"size": 2048576})
    again = callback("task-1", "msg_a", "06.000", status="failed")

    assert callbacks_table.put(first, table=TABLE, client=dynamodb) is True
    assert callbacks_table.put(again, table=TABLE, client=dynamodb) is False

    assert callbacks_table.for_task("task-1", table=TABLE, client=dynamodb) == [first]
    item = dynamodb.get_item(TableName=TABLE, Key={"task_id": {"S": "task-1"}, "webhook_id": {"S": "msg_a"}})
    assert item["Item"]["kind"] == {"S": "callback"} and item["Item"]["verified"] == {"BOOL": True}
    assert "batch_id" not in item["Item"]  # no batch: absent, so the batch index skips it


def test_a_task_lists_its_callbacks_newest_first_whatever_their_ids(dynamodb: Any) -> None:
    older = callback("task-1", "msg_z", "05.000", status="failed")
    newer = callback("task-1", "msg_a", "07.000")
    put(dynamodb, older, newer, callback("task-2", "msg_m", "06.000"))

    assert callbacks_table.for_task("task-1", table=TABLE, client=dynamodb) == [newer, older]
    assert callbacks_table.for_task("task-3", table=TABLE, client=dynamodb) == []


def test_a_batch_pages_newest_first_and_counts_the_whole_batch(dynamodb: Any) -> None:
    mine = [
        callback(f"task-{n}", f"msg_{n}", f"0{n}.000", batch_id="batch-7", status=status)
        for n, status in enumerate(["completed", "failed", "completed", "failed", "completed"])
    ]
    put(dynamodb, *mine, callback("other", "msg_o", "09.000", batch_id="batch-8"), callback("x", "y", "09.5"))

    pages, token = [], None
    for _ in range(5):
        page = callbacks_table.for_batch("batch-7", limit=2, next_token=token, table=TABLE, client=dynamodb)
        pages.append(page.callbacks)
        token = page.next_token
        if token is None:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [c for page in pages for c in page] == mine[::-1]
    counts = callbacks_table.batch_counts("batch-7", table=TABLE, client=dynamodb)
    assert counts == {"completed": 3, "failed": 2}
    assert callbacks_table.batch_counts("batch-9", table=TABLE, client=dynamodb) == {}


def test_a_page_token_of_another_batch_or_forged_is_refused(dynamodb: Any) -> None:
    put(dynamodb, *(callback(f"t{n}", f"m{n}", f"0{n}.000", batch_id="batch-7") for n in range(3)))
    token = callbacks_table.for_batch("batch-7", limit=1, table=TABLE, client=dynamodb).next_token
    assert token is not None

    for forged in ("not-a-token", "e30", token[:-3]):
        with pytest.raises(InvalidPageToken):
            callbacks_table.for_batch("batch-7", limit=1, next_token=forged, table=TABLE, client=dynamodb)
    with pytest.raises(InvalidPageToken, match="for this listing"):
        callbacks_table.for_batch("batch-8", limit=1, next_token=token, table=TABLE, client=dynamodb)


def test_latest_lists_every_callback_newest_first_up_to_the_limit(dynamodb: Any) -> None:
    stored = [
        callback(f"task-{n}", f"msg_{n}", f"0{n}.000", batch_id="b" if n % 2 else None) for n in range(4)
    ]
    put(dynamodb, *stored)

    assert callbacks_table.latest(3, table=TABLE, client=dynamodb) == stored[::-1][:3]
    assert callbacks_table.latest(100, table=TABLE, client=dynamodb) == stored[::-1]


def test_any_json_payload_is_stored_as_sent(dynamodb: Any) -> None:
    # Numbers a DynamoDB map refuses (past 1e126 or 38 digits), nested lists, keys named like types.
    sent = callback("task-1", "msg_a", "05.000", score=1e200, exact=10**40, nested={"L": [[{"M": None}]]})
    callbacks_table.put(sent, table=TABLE, client=dynamodb)
    assert callbacks_table.for_task("task-1", table=TABLE, client=dynamodb) == [sent]


def test_a_missing_table_fails_and_an_unreachable_one_is_unavailable(dynamodb: Any) -> None:
    one = callback("task-1", "msg_a", "05.000")
    with pytest.raises(StorageFailed, match="callbacks table"):
        callbacks_table.put(one, table="vidp-no-such-table", client=dynamodb)
    with pytest.raises(StorageFailed):
        callbacks_table.for_task("task-1", table="vidp-no-such-table", client=dynamodb)

    closed = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StorageUnavailable):
        callbacks_table.latest(5, table=TABLE, client=closed)
