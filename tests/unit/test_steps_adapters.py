"""The jobs table and the event bus adapters: what lands in DynamoDB, and errors as pipeline errors."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.adapters import events, jobs_table
from pipeline.failures import StorageFailed, StorageUnavailable
from pipeline.models import CallbackDelivery, JobRecord
from tests.support.aws import REGION, TABLE, Aws, client


def new_record(**fields: object) -> JobRecord:
    values: dict[str, object] = {
        "video_id": "vid-1",
        "job_id": "job-1",
        "filename": "clip.mp4",
        "status": "processing",
        "created_at": "2026-01-02T03:04:05.678Z",
        "updated_at": "2026-01-02T03:04:05.678Z",
        "progress": 0.0,
    }
    return JobRecord.model_validate({**values, **fields})


def raw_item(video_id: str = "vid-1") -> dict[str, dict[str, object]]:
    answer = client("dynamodb").get_item(TableName=TABLE, Key={"video_id": {"S": video_id}})
    return dict(answer["Item"])


def test_given_a_new_record_when_created_then_numbers_are_n_and_absent_values_are_not_stored(
    aws: Aws,
) -> None:
    assert jobs_table.create_processing(new_record(duration=12.25, file_size=10**12), table=TABLE)

    item = raw_item()
    assert item["attempt"] == {"N": "1"}
    assert item["duration"] == {"N": "12.25"}
    assert item["file_size"] == {"N": "1000000000000"}
    assert item["status"] == {"S": "processing"}
    assert "error_code" not in item and "batch_id" not in item  # sparse GSIs stay sparse
    assert jobs_table.get("vid-1", table=TABLE) == new_record(duration=12.25, file_size=10**12)


def test_given_any_json_metadata_when_stored_then_it_reads_back_the_same(aws: Aws) -> None:
    # DynamoDB maps refuse numbers past 38 digits or 1e126: the metadata is kept as JSON text.
    odd = {"big": 1e300, "tiny": 1e-300, "long": 12345678901234567890123456789012345678901234, "": [[], {}]}
    jobs_table.create_processing(new_record(metadata=odd), table=TABLE)

    assert jobs_table.get("vid-1", table=TABLE) == new_record(metadata=odd)
    changed = jobs_table.update_caller_fields(
        "vid-1",
        {"metadata": {"n": 1e200}},
        expected_updated_at=None,
        now="2026-01-01T00:00:00.000Z",
        table=TABLE,
    )
    assert changed is not None and changed.metadata == {"n": 1e200}


def test_given_an_existing_record_when_created_again_then_false_and_unchanged(aws: Aws) -> None:
    jobs_table.create_processing(new_record(), table=TABLE)

    assert jobs_table.create_processing(new_record(filename="other.mp4"), table=TABLE) is False
    assert jobs_table.put_failed(new_record(status="failed"), table=TABLE) is False
    record = jobs_table.get("vid-1", table=TABLE)
    assert record is not None and (record.filename, record.status) == ("clip.mp4", "processing")


def test_given_a_processing_job_when_marked_failed_then_only_once_and_only_for_its_job(aws: Aws) -> None:
    jobs_table.create_processing(new_record(), table=TABLE)
    fields = {"error_code": "X", "error_message": "m", "failed_state": "S", "now": "2026-01-02T03:05:00.000Z"}

    assert jobs_table.mark_failed("vid-1", "job-other", **fields, table=TABLE) is False
    assert jobs_table.mark_failed("vid-1", "job-1", **fields, table=TABLE) is True
    assert jobs_table.mark_failed("vid-1", "job-1", **fields, table=TABLE) is False
    record = jobs_table.get("vid-1", table=TABLE)
    assert record is not None
    assert (record.status, record.error_code, record.updated_at) == (
        "failed",
        "X",
        "2026-01-02T03:05:00.000Z",
    )


def test_given_a_processing_job_when_progress_is_set_then_it_is_recorded_until_it_ends(aws: Aws) -> None:
    jobs_table.create_processing(new_record(), table=TABLE)

    assert jobs_table.set_progress("vid-1", "job-1", 42.42, table=TABLE) is True
    record = jobs_table.get("vid-1", table=TABLE)
    assert record is not None and record.progress == 42.4
    jobs_table.mark_failed(
        "vid-1", "job-1", error_code="X", error_message="m", failed_state="S", now="t", table=TABLE
    )
    assert jobs_table.set_progress("vid-1", "job-1", 50, table=TABLE) is False


def test_given_a_delivery_when_recorded_then_it_is_on_the_record_and_never_creates_one(aws: Aws) -> None:
    jobs_table.create_processing(new_record(), table=TABLE)
    delivery = CallbackDelivery(
        status="failed", webhook_id="msg_1", attempts=5, http_status=503, error="HTTP 503"
    )

    assert jobs_table.record_callback("vid-1", delivery, table=TABLE) is True
    assert jobs_table.record_callback("vid-missing", delivery, table=TABLE) is False
    record = jobs_table.get("vid-1", table=TABLE)
    assert record is not None and record.callback == delivery
    assert jobs_table.get("vid-missing", table=TABLE) is None


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ProvisionedThroughputExceededException", 400, StorageUnavailable),
        ("ThrottlingException", 400, StorageUnavailable),
        ("InternalServerError", 500, StorageUnavailable),
        ("ResourceNotFoundException", 400, StorageFailed),
        ("AccessDeniedException", 400, StorageFailed),
    ],
)
def test_given_dynamodb_errors_then_they_become_pipeline_errors(
    aws: Aws, code: str, status: int, expected: type[Exception]
) -> None:
    fresh = boto3.client("dynamodb", region_name=REGION)
    with Stubber(fresh) as stub:
        stub.add_client_error("put_item", service_error_code=code, http_status_code=status)
        with pytest.raises(expected) as caught:
            jobs_table.create_processing(new_record(), table=TABLE, client=fresh)
    assert code in str(caught.value)


def test_given_an_event_when_put_then_the_bus_delivers_it(aws: Aws) -> None:
    events.put_event("VidP Test", {"a": 1, "text": "é"}, bus="default")

    [event] = aws.events()
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "vidp.pipeline",
        "VidP Test",
        {"a": 1, "text": "é"},
    )


def test_given_a_rejected_entry_when_put_then_storage_unavailable(aws: Aws) -> None:
    fresh = boto3.client("events", region_name=REGION)
    with Stubber(fresh) as stub:
        stub.add_response(
            "put_events",
            {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
            },
        )
        with pytest.raises(StorageUnavailable, match="InternalFailure"):
            events.put_event("VidP Test", {}, bus="default", client=fresh)
