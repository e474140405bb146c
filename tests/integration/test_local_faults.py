"""DynamoDB throttling injected by the local AWS (``pipeline.local.faults``), as its callers see it:
a boto3 client gets DynamoDB's own error, a state machine's Retry on it is exercised, other
services and other operations pass untouched."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.local.aws import LocalAws
from pipeline.local.clients import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from pipeline.local.resources import REGION


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws(handlers={}, run_ecs_tasks=False, start_from_uploads=False) as local:
        yield local


@pytest.fixture(autouse=True)
def no_throttle(aws: LocalAws) -> Iterator[None]:
    yield
    aws.dynamodb_throttle.clear()


def no_retries(aws: LocalAws) -> object:
    """A DynamoDB client that shows every answer (boto3 would retry a throttle on its own)."""
    return boto3.client(
        "dynamodb", endpoint_url=aws.endpoint_url, region_name=REGION, aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY, config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip


def put(client: object, aws: LocalAws, video_id: str) -> None:
    client.put_item(TableName=aws.table_name, Item={"video_id": {"S": video_id}})  # type: ignore[attr-defined]


def test_a_throttled_call_gets_dynamodbs_error_and_the_next_one_goes_through(aws: LocalAws) -> None:
    client = no_retries(aws)
    aws.dynamodb_throttle.throttle(count=1)

    with pytest.raises(ClientError) as raised:
        put(client, aws, "throttled")
    put(client, aws, "accepted")

    answer = raised.value.response
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert "provisioned throughput" in answer["Error"]["Message"]
    table = aws.client("dynamodb")
    assert "Item" not in table.get_item(TableName=aws.table_name, Key={"video_id": {"S": "throttled"}})
    assert "Item" in table.get_item(TableName=aws.table_name, Key={"video_id": {"S": "accepted"}})


def test_the_default_client_retries_a_throttle_by_itself(aws: LocalAws) -> None:
    aws.dynamodb_throttle.throttle(count=2)
    before = aws.dynamodb_throttle.stats.throttled["PutItem"]

    put(aws.client("dynamodb"), aws, "retried")

    assert aws.dynamodb_throttle.stats.throttled["PutItem"] == before + 2


def test_only_the_operations_named_are_throttled_and_other_services_never(aws: LocalAws) -> None:
    client = no_retries(aws)
    aws.dynamodb_throttle.throttle(fraction=1.0, operations=["UpdateItem"])

    put(client, aws, "put-goes-through")
    aws.client("s3").list_objects_v2(Bucket=aws.bucket)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        client.update_item(  # type: ignore[attr-defined]
            TableName=aws.table_name, Key={"video_id": {"S": "put-goes-through"}},
            UpdateExpression="SET x = :x", ExpressionAttributeValues={":x": {"S": "1"}},
        )  # fmt: skip


def test_a_fraction_throttles_about_that_share(aws: LocalAws) -> None:
    client = no_retries(aws)
    aws.dynamodb_throttle.throttle(fraction=0.5)
    outcomes = []
    for n in range(60):
        try:
            put(client, aws, f"share-{n}")
            outcomes.append(False)
        except ClientError:
            outcomes.append(True)

    assert 10 <= sum(outcomes) <= 50  # 0.5 of 60, far from none and from all


def test_a_state_machines_retry_on_the_throttle_is_exercised(aws: LocalAws) -> None:
    update = {
        "Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem", "End": True,
        "Parameters": {"TableName": aws.table_name, "Key": {"video_id": {"S": "from-asl"}},
                       "UpdateExpression": "SET x = :x", "ExpressionAttributeValues": {":x": {"S": "1"}}},
        "Retry": [{"ErrorEquals": ["DynamoDB.ProvisionedThroughputExceededException"], "IntervalSeconds": 1,
                   "MaxAttempts": 3, "BackoffRate": 1.0}],
    }  # fmt: skip
    machine = aws.create_state_machine(
        "throttled-update", {"StartAt": "Update", "States": {"Update": update}}
    )
    aws.dynamodb_throttle.throttle(count=2, operations=["UpdateItem"])

    arn = aws.start_execution({}, name="throttled", state_machine_arn=machine)
    described = aws.wait(arn, timeout=30)

    assert described["status"] == "SUCCEEDED"
    failures = [e for e in aws.history(arn) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == [
        "DynamoDB.ProvisionedThroughputExceededException"
    ] * 2


def test_throttle_refuses_nonsense() -> None:
    throttle = LocalAws(handlers={}).dynamodb_throttle
    with pytest.raises(ValueError, match="fraction"):
        throttle.throttle(fraction=1.5)
    with pytest.raises(ValueError, match="count"):
        throttle.throttle(count=-1)
