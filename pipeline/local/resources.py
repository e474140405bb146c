"""The resources of the local AWS: the same names and shapes as the CDK stack creates.

``create_all`` makes them on a running moto server and returns their ARNs and ids; the state
machine is rendered from the one ``pipeline.asl.json`` with these ARNs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import state_machine
from pipeline.deployment import (
    CALLBACKS_INDEXES,
    CALLBACKS_TABLE_KEY,
    CALLBACKS_TABLE_SORT,
    CONTAINER_NAME,
    EVENT_SOURCE,
    TABLE_INDEXES,
    TABLE_KEY,
    TASK_COMMAND,
    Names,
    upload_event_pattern,
)
from pipeline.local import workarounds

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PREFIX = "vidp-local"


@dataclass(frozen=True)
class LocalNames(Names):
    """The names of the local deployment (``vidp-local-*``), and the queues only it has."""

    prefix: str = PREFIX

    @property
    def events_queue(self) -> str:
        """Where the rule on our bus copies every ``vidp.pipeline`` event, to read them back."""
        return self.name("events")

    @property
    def uploads_queue(self) -> str:
        """Where S3 ``Object Created`` events under ``incoming/`` arrive (EventBridge rule)."""
        return self.name("uploads")

    @property
    def function_prefix(self) -> str:
        return f"{self.prefix}-"

    def function_arn(self, step: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function(step)}"

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.state_machine}"


STATE_MACHINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-state-machine"
TASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-ffmpeg-task"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-ffmpeg-execution"
TASK_CPU, TASK_MEMORY = "2048", "4096"


@dataclass(frozen=True)
class Deployed:
    """What ``create_all`` made: the values a rendering and the runners need."""

    names: LocalNames
    state_machine_arn: str
    cluster_arn: str
    task_definition_arn: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    events_queue_url: str
    uploads_queue_url: str
    substitutions: dict[str, str] = field(default_factory=dict)


def substitutions_for(
    names: LocalNames, cluster_arn: str, task_definition_arn: str, subnets: list[str], groups: list[str]
) -> dict[str, str]:
    """The values of every ``${...}`` in the definition, for the local deployment.

    Every ``<Step>FunctionArn`` placeholder gets ``arn:...:function:vidp-local-<Step>``, so a new
    Lambda step in the ASL needs a module in ``pipeline.steps.registry`` and nothing here.
    """
    return state_machine.substitutions(
        function_arn=names.function_arn,
        cluster_arn=cluster_arn,
        task_definition_arn=task_definition_arn,
        subnet_ids=",".join(subnets),
        security_group_ids=",".join(groups),
        table_name=names.table,
    )


def create_table(dynamodb: Any, name: str) -> None:
    """The jobs table: pk ``video_id`` and the GSIs of ``pipeline.deployment``, as the CDK stack makes it."""
    _create(dynamodb, name, (TABLE_KEY, None), TABLE_INDEXES)


def create_callbacks_table(dynamodb: Any, name: str) -> None:
    """The callback receiver's table: pk ``task_id``, sk ``webhook_id``, its two GSIs, as the CDK makes it."""
    _create(dynamodb, name, (CALLBACKS_TABLE_KEY, CALLBACKS_TABLE_SORT), CALLBACKS_INDEXES)


def _create(
    dynamodb: Any,
    name: str,
    key: tuple[str, str | None],
    indexes: tuple[tuple[str, str, str | None], ...],
) -> None:
    """An on-demand table of string keys: ``key`` (partition, sort) and ``indexes`` (all projected)."""

    def schema(partition: str, sort: str | None) -> list[dict[str, str]]:
        return [{"AttributeName": partition, "KeyType": "HASH"}] + (
            [{"AttributeName": sort, "KeyType": "RANGE"}] if sort else []
        )

    names = {k for k in key if k} | {k for _, pk, sk in indexes for k in (pk, sk) if k}
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=schema(*key),
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in sorted(names)],
        GlobalSecondaryIndexes=[
            {"IndexName": index, "KeySchema": schema(pk, sk), "Projection": {"ProjectionType": "ALL"}}
            for index, pk, sk in indexes
        ],
    )


def create_network(ec2: Any) -> tuple[list[str], list[str]]:
    """A VPC with one subnet and one security group for the task."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    workarounds.fargate_run_task_needs_vpc_dns_hostnames(ec2, vpc)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{REGION}a")
    group = ec2.create_security_group(
        GroupName=f"{PREFIX}-ffmpeg-task", Description="ffmpeg task: egress only", VpcId=vpc
    )
    return [subnet["Subnet"]["SubnetId"]], [group["GroupId"]]


def register_task_definition(
    ecs: Any,
    names: LocalNames,
    environment: dict[str, str],
    *,
    family: str | None = None,
    command: tuple[str, ...] = TASK_COMMAND,
) -> str:
    """A Fargate task definition with one container, ``CONTAINER_NAME``, running ``command``.

    By default the pipeline's: ``vidp-local-ffmpeg`` running ``python -m pipeline.task``.
    """
    got = ecs.register_task_definition(
        family=family or names.task_family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu=TASK_CPU,
        memory=TASK_MEMORY,
        taskRoleArn=TASK_ROLE,
        executionRoleArn=EXECUTION_ROLE,
        containerDefinitions=[
            workarounds.fargate_run_task_needs_container_memory(
                {
                    "name": CONTAINER_NAME,
                    "image": "vidp-ffmpeg-task:local",
                    "essential": True,
                    "command": list(command),
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                    "stopTimeout": 30,
                },
                TASK_MEMORY,
            )
        ],
    )
    arn: str = got["taskDefinition"]["taskDefinitionArn"]
    return arn


def create_event_plumbing(events: Any, sqs: Any, names: LocalNames) -> tuple[str, str]:
    """Our bus with a rule copying ``vidp.pipeline`` events to a queue; S3 uploads to another queue."""
    events.create_event_bus(Name=names.event_bus)
    events_queue = _queue(sqs, names.events_queue)
    events.put_rule(
        Name=f"{names.prefix}-pipeline-events",
        EventBusName=names.event_bus,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
    )
    events.put_targets(
        Rule=f"{names.prefix}-pipeline-events",
        EventBusName=names.event_bus,
        Targets=[{"Id": "readback", "Arn": events_queue[1]}],
    )
    uploads_queue = _queue(sqs, names.uploads_queue)
    pattern = upload_event_pattern(names.bucket)
    events.put_rule(Name=f"{names.prefix}-uploads", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{names.prefix}-uploads", Targets=[{"Id": "starter", "Arn": uploads_queue[1]}])
    return events_queue[0], uploads_queue[0]


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


BUCKET_NOTIFICATIONS: dict[str, Any] = {"EventBridgeConfiguration": {}}
"""Every event of the bucket goes to EventBridge (moto's GetBucketNotificationConfiguration omits it)."""


def create_bucket(s3: Any, names: Names) -> None:
    s3.create_bucket(Bucket=names.bucket)
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket, NotificationConfiguration=BUCKET_NOTIFICATIONS
    )


def create_all(clients: Any, names: LocalNames, task_environment: dict[str, str]) -> Deployed:
    """Create every resource; ``clients(service)`` gives a boto3 client for the local endpoint."""
    create_bucket(clients("s3"), names)
    create_table(clients("dynamodb"), names.table)
    create_callbacks_table(clients("dynamodb"), names.callbacks_table)
    events_url, uploads_url = create_event_plumbing(clients("events"), clients("sqs"), names)
    subnets, groups = create_network(clients("ec2"))
    ecs = clients("ecs")
    cluster_arn: str = ecs.create_cluster(clusterName=names.cluster)["cluster"]["clusterArn"]
    task_definition_arn = register_task_definition(ecs, names, task_environment)
    values = substitutions_for(names, cluster_arn, task_definition_arn, subnets, groups)
    definition = state_machine.render(values)
    created = clients("stepfunctions").create_state_machine(
        name=names.state_machine, definition=definition, roleArn=STATE_MACHINE_ROLE, type="STANDARD"
    )
    return Deployed(
        names=names,
        state_machine_arn=created["stateMachineArn"],
        cluster_arn=cluster_arn,
        task_definition_arn=task_definition_arn,
        subnet_ids=tuple(subnets),
        security_group_ids=tuple(groups),
        events_queue_url=events_url,
        uploads_queue_url=uploads_url,
        substitutions=values,
    )
