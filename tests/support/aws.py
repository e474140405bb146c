"""The step tests' AWS: moto in-process, with the table the local AWS creates (the same key and
indexes), and a local HTTP server (``tests.support.server``).

``tests/unit/conftest.py`` turns ``start_aws`` and ``start_server`` into the ``aws`` and
``server`` fixtures. ``Aws.save`` runs the definition's own RecordMetadata state on moto's
interpreter, so a test's "saved" record is the one the state machine writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

import state_machine
from pipeline.adapters import events, jobs_table, s3, webhooks
from pipeline.deployment import EVENT_SOURCE
from pipeline.local import workarounds
from pipeline.local.resources import ACCOUNT, LocalNames, create_table
from pipeline.models import FinalOutput, Job, JobRecord, TaskManifest
from pipeline.steps.settings import step_settings
from pipeline.steps.validate_input import handler as validate_handler
from tests.support.server import LocalServer, Received

BUCKET = "vidp-test-bucket"
TABLE = "vidp-jobs"
REGION = "us-east-1"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:vidp:run-1"
STARTED_AT = "2026-01-02T03:04:05.678Z"
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, test only
SRT = b"1\n00:00:00,200 --> 00:00:00,900\nHELLO WORLD\n\n2\n00:00:01,600 --> 00:00:02,400\nSECOND CUE\n"
DEADLINE = 15.0


def reset_clients() -> None:
    """Read the settings again; keep the cached boto3 clients unless another test pointed them elsewhere.

    Building a client costs tens of milliseconds; moto intercepts every client created after it
    was imported (at collection, before any test runs), whether or not it was mocking then.
    """
    step_settings.cache_clear()
    for factory in (s3.s3_client, jobs_table.dynamodb_client, events.events_client):
        if factory.cache_info().currsize:
            meta = factory().meta
            if meta.region_name != REGION or not meta.endpoint_url.endswith(".amazonaws.com"):
                factory.cache_clear()
                s3._presign_client.cache_clear()


@cache
def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@dataclass
class Aws:
    """The moto account the steps talk to, and what a user can look at in it."""

    s3: Any
    queue_url: str
    sqs: Any

    def put(self, key: str, body: bytes = b"\0\0\0\x18ftypmp42 fake video") -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str = "") -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def record(self, video_id: str) -> JobRecord | None:
        return jobs_table.get(video_id, table=TABLE)

    def save(self, job: Job, output: FinalOutput | None = None) -> None:
        """processing -> saved, by the definition's own RecordMetadata state on moto's interpreter."""
        sfn = client("stepfunctions")
        machine = sfn.create_state_machine(
            name=f"record-metadata-{time.monotonic_ns()}",
            definition=json.dumps(record_metadata_machine()),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/vidp-test",
        )["stateMachineArn"]
        state = {
            "job": job.model_dump(mode="json"),
            "output": (output or final_output(job)).model_dump(mode="json"),
        }
        arn = sfn.start_execution(stateMachineArn=machine, name="save", input=json.dumps(state))[
            "executionArn"
        ]
        deadline = time.monotonic() + DEADLINE
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "RecordMetadata still running"
            time.sleep(0.02)
        assert described["status"] == "SUCCEEDED", described

    def execution(self, raw: Any, name: str = EXECUTION.rpartition(":")[2]) -> str:
        """An execution of a state machine called ``vidp`` whose input is ``raw`` (any JSON):
        what MarkFailed and the reconciler read with DescribeExecution. Its ARN."""
        sfn = client("stepfunctions")
        machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:vidp"
        try:
            sfn.describe_state_machine(stateMachineArn=machine)
        except sfn.exceptions.StateMachineDoesNotExist:
            sfn.create_state_machine(
                name="vidp",
                definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/vidp-test",
            )
        arn: str = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(raw))[
            "executionArn"
        ]
        return arn

    def events(self) -> list[dict[str, Any]]:
        """Events the bus delivered to a rule matching source ``vidp.pipeline``."""
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(message["Body"]) for message in got.get("Messages", [])]


def start_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "VIDP_WEBHOOK_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "VIDP_BUCKET": BUCKET,
        "VIDP_TABLE_NAME": TABLE,
        "VIDP_WEBHOOK_SECRET": SECRET,
        "VIDP_UNSAFE_ALLOW_LOOPBACK": "1",
        "VIDP_CALLBACK_BASE_DELAY_SECONDS": "0.01",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_clients()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        workarounds.apply_all()  # RecordMetadata's $$.State.EnteredTime in AWS's format
        client("s3").create_bucket(Bucket=BUCKET)
        create_table(client("dynamodb"), TABLE)
        sqs = client("sqs")
        queue_url = sqs.create_queue(QueueName="vidp-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bridge = client("events")
        bridge.put_rule(Name="vidp", EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
        bridge.put_targets(Rule="vidp", Targets=[{"Id": "queue", "Arn": queue_arn}])
        yield Aws(s3=client("s3"), queue_url=queue_url, sqs=sqs)
    step_settings.cache_clear()


def record_metadata_machine() -> dict[str, Any]:
    """A state machine of one state: the definition's RecordMetadata, ending there."""
    values = state_machine.substitutions(
        function_arn=LocalNames().function_arn,
        cluster_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/vidp-test",
        task_definition_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/vidp-test:1",
        subnet_ids="subnet-1",
        security_group_ids="sg-1",
        table_name=TABLE,
    )
    state = state_machine.load(values)["States"]["RecordMetadata"]
    alone = {key: value for key, value in state.items() if key not in {"Next", "Catch"}}
    return {"StartAt": "RecordMetadata", "States": {"RecordMetadata": {**alone, "End": True}}}


def final_output(job: Job) -> FinalOutput:
    """What Finalise returns for a 2.5 s 1280x720 encode of ``job``."""
    return FinalOutput(
        s3_uri=f"s3://{BUCKET}/{job.final_key}",
        key=job.final_key,
        size=1234,
        duration=2.5,
        width=1280,
        height=720,
        video_codec="h264",
        audio_codec="aac",
        codecs="h264/aac",
    )


def request(aws: Aws, key: str = "incoming/my clip.mp4", **fields: Any) -> dict[str, Any]:
    """A valid execution input whose video exists (and, by default, SRT in S3)."""
    video = aws.put(key)
    if "subtitles" not in fields:
        fields["subtitles"] = {"s3_uri": aws.put("incoming/my clip.srt", SRT)}
    return {"video": {"s3_uri": video}, **fields}


def claim(raw: dict[str, Any], execution: str = EXECUTION) -> Job:
    """Run ValidateInput on ``raw``: the job exists, its record is ``processing``."""
    answer = validate_handler({"request": raw, "execution_arn": execution, "started_at": STARTED_AT}, None)
    assert answer["duplicate"] is False
    return Job.model_validate(answer["job"])


def encoded(aws: Aws, job: Job, *, audio: bool = True, body: bytes = b"encoded video bytes") -> None:
    """What a successful BurnAndCompress leaves: work/{job_id}/output.mp4 and manifest.json."""
    aws.put(job.work.subtitles, SRT)
    aws.put(job.work.output, body)
    manifest = TaskManifest(
        job_id=job.job_id,
        output_uri=f"s3://{BUCKET}/{job.work.output}",
        output_bucket=BUCKET,
        output_key=job.work.output,
        video_uri=f"s3://{BUCKET}/{job.video_key}",
        subtitles_uri=f"s3://{BUCKET}/{job.work.subtitles}",
        size=len(body),
        duration=2.5,
        width=1280,
        height=720,
        resolution="720p",
        video_codec="h264",
        audio_codec="aac" if audio else None,
        pix_fmt="yuv420p",
        bit_rate=800_000,
        crf=23,
        preset="veryfast",
        cues=2,
        encode_seconds=1.5,
        quality=None,
    )
    aws.put(job.work.manifest, manifest.model_dump_json().encode())


# --- a local HTTP server ------------------------------------------------------------------------


def start_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


def verify_callback(received: Received) -> dict[str, Any]:
    """The callback's JSON, after checking its Standard Webhooks signature."""
    return webhooks.verify(SECRET, received.headers, received.body)
