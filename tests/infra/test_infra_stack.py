"""The synthesized stack: the properties reliability.md case 23 asks for, asserted on the template."""

from __future__ import annotations

import json
from typing import Any

import pytest

import state_machine
from infra.config import PROJECT
from infra.steps import state_timeouts
from pipeline.deployment import INPUT_PREFIXES, TABLE_INDEXES
from pipeline.local.resources import LocalNames, substitutions_for
from pipeline.steps.registry import STEP_MODULES
from tests.infra.conftest import Synth

TAG_KEYS = {"Environment", "Project", "Client", "ManagedBy", "Owner"}


def _statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to one role."""
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _state_machine(synth: Synth) -> dict[str, Any]:
    return synth.one("AWS::StepFunctions::StateMachine")[1]["Properties"]


def _deployed_definition_text(synth: Synth) -> str:
    """The definition file CloudFormation deploys (DefinitionS3Location -> the staged asset)."""
    key = _state_machine(synth)["DefinitionS3Location"]["Key"]
    return (synth.outdir / f"asset.{key}").read_text(encoding="utf-8")


def _masked(value: Any) -> str:
    """Literal substitutions stay; CloudFormation references (ARNs, names, ids) become a mask."""
    return value if isinstance(value, str) else "MASKED"


# --- the one definition -----------------------------------------------------------------------


def test_the_deployed_definition_is_the_asl_file_byte_for_byte(synth: Synth) -> None:
    assert _deployed_definition_text(synth) == state_machine.template()


def test_every_placeholder_has_a_substitution_and_none_is_left(synth: Synth) -> None:
    substitutions = _state_machine(synth)["DefinitionSubstitutions"]
    assert set(substitutions) == state_machine.placeholders()
    rendered = state_machine.render({name: _masked(v) for name, v in substitutions.items()})
    assert "${" not in rendered
    json.loads(rendered)


def test_the_deployed_rendering_equals_the_local_one_except_arns_and_names(synth: Synth) -> None:
    deployed = _state_machine(synth)["DefinitionSubstitutions"]
    local = substitutions_for(
        LocalNames(),
        "arn:aws:ecs:us-east-1:123456789012:cluster/vidp-local",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/vidp-local-ffmpeg:1",
        ["subnet-1"],
        ["sg-1"],
    )
    assert set(local) == set(deployed)
    masked_names = {name for name, value in deployed.items() if not isinstance(value, str)}
    # Only ARNs, names and network ids differ; literal settings are the same values.
    assert masked_names == set(deployed) - {"AssignPublicIp", "ContainerName"}
    assert deployed["AssignPublicIp"] == local["AssignPublicIp"] == "DISABLED"
    assert deployed["ContainerName"] == local["ContainerName"]

    def masked_render(values: dict[str, Any]) -> dict[str, Any]:
        return state_machine.load({k: "MASKED" if k in masked_names else str(v) for k, v in values.items()})

    assert masked_render(deployed) == masked_render(local)


def test_the_substitutions_reference_the_right_resources(synth: Synth) -> None:
    values = _state_machine(synth)["DefinitionSubstitutions"]
    functions = synth.resources("AWS::Lambda::Function")
    for step, module in STEP_MODULES.items():
        logical_id = values[f"{step}FunctionArn"]["Fn::GetAtt"][0]
        assert functions[logical_id]["Properties"]["Handler"] == f"{module}.handler"
    cluster_id, _ = synth.one("AWS::ECS::Cluster")
    task_id, _ = synth.one("AWS::ECS::TaskDefinition")
    table_id, _ = synth.jobs_table()
    assert values["ClusterArn"] == {"Fn::GetAtt": [cluster_id, "Arn"]}
    assert values["TaskDefinitionArn"] == {"Ref": task_id}
    assert values["TableName"] == {"Ref": table_id}
    subnets = values["SubnetIds"]["Fn::Join"]
    assert subnets[0] == ","
    assert all(synth.template["Resources"][ref["Ref"]]["Type"] == "AWS::EC2::Subnet" for ref in subnets[1])
    group_id = values["SecurityGroupIds"]["Fn::GetAtt"][0]
    assert synth.template["Resources"][group_id]["Type"] == "AWS::EC2::SecurityGroup"


def test_the_ecs_state_waits_for_the_task_token(synth: Synth) -> None:
    definition = json.loads(_deployed_definition_text(synth))
    burn = definition["States"]["BurnAndCompress"]
    assert burn["Resource"] == "arn:aws:states:::ecs:runTask.waitForTaskToken"
    overrides = burn["Parameters"]["Overrides"]["ContainerOverrides"][0]
    assert {"Name": "VIDP_TASK_TOKEN", "Value.$": "$$.Task.Token"} in overrides["Environment"]
    _, task = synth.one("AWS::ECS::TaskDefinition")
    container = task["Properties"]["ContainerDefinitions"][0]
    assert container["Name"] == _state_machine(synth)["DefinitionSubstitutions"]["ContainerName"]


def test_state_machine_logs_all_and_traces(synth: Synth) -> None:
    props = _state_machine(synth)
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert json.loads(_deployed_definition_text(synth))["TimeoutSeconds"] == 21600


# --- IAM ------------------------------------------------------------------------------------


def test_pass_role_is_limited_to_the_task_and_execution_roles(synth: Synth) -> None:
    role_id = _state_machine(synth)["RoleArn"]["Fn::GetAtt"][0]
    _, task = synth.one("AWS::ECS::TaskDefinition")
    expected = [task["Properties"]["TaskRoleArn"], task["Properties"]["ExecutionRoleArn"]]
    statements = _statements(synth, role_id)
    pass_role = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert len(pass_role) == 1
    assert sorted(map(json.dumps, _resources(pass_role[0]))) == sorted(map(json.dumps, expected))
    assert pass_role[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    run_task = [s for s in statements if "ecs:RunTask" in _actions(s)]
    task_id, _ = synth.one("AWS::ECS::TaskDefinition")
    assert [_resources(s) for s in run_task] == [[{"Ref": task_id}]]
    assert not any(r == "*" for s in statements if "iam:PassRole" in _actions(s) for r in _resources(s))


def _object_prefixes(resources: list[Any], bucket_id: str) -> set[str]:
    """The key patterns of object ARNs (``<bucket arn>/<pattern>``) among ``resources``."""
    patterns = set()
    for resource in resources:
        if isinstance(resource, dict) and "Fn::Join" in resource:
            parts = resource["Fn::Join"][1]
            if parts[0] == {"Fn::GetAtt": [bucket_id, "Arn"]}:
                patterns.add(parts[1].lstrip("/"))
    return patterns


def test_task_role_reads_only_inputs_and_writes_only_work(synth: Synth) -> None:
    _, task = synth.one("AWS::ECS::TaskDefinition")
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    bucket_id = _media_bucket_id(synth)
    statements = _statements(synth, role_id)
    read, write = set(), set()
    for statement in statements:
        actions = _actions(statement)
        patterns = _object_prefixes(_resources(statement), bucket_id)
        if any(a.startswith("s3:GetObject") for a in actions):
            read |= patterns
        if any(a.startswith(("s3:PutObject", "s3:DeleteObject")) for a in actions):
            write |= patterns
        assert f"{bucket_id}/*" not in json.dumps(statement)  # never the whole bucket's objects
    assert read == {f"{prefix}*" for prefix in INPUT_PREFIXES}
    assert write == {"work/*"}
    actions = {a for s in statements for a in _actions(s)}
    assert {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"} <= actions
    update = [s for s in statements if _actions(s) == ["dynamodb:UpdateItem"]]
    table_id, _ = synth.jobs_table()
    assert [_resources(s) for s in update] == [[{"Fn::GetAtt": [table_id, "Arn"]}]]


def test_no_policy_grants_every_action_or_every_object(synth: Synth) -> None:
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(a in {"*", "s3:*", "dynamodb:*", "states:*"} for a in _actions(statement))


# --- storage, table ---------------------------------------------------------------------------


def _media_bucket_id(synth: Synth) -> str:
    for logical_id, bucket in synth.resources("AWS::S3::Bucket").items():
        if "LoggingConfiguration" in bucket["Properties"]:
            return logical_id
    raise AssertionError("no media bucket")


def test_every_bucket_blocks_public_access_encrypts_and_denies_plain_http(synth: Synth) -> None:
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 2  # media + access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    denied = set()
    for policy in synth.resources("AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                denied.add(policy["Properties"]["Bucket"]["Ref"])
    assert denied == set(buckets)


def test_media_bucket_lifecycle_logs_and_eventbridge(synth: Synth) -> None:
    bucket_id = _media_bucket_id(synth)
    props = synth.template["Resources"][bucket_id]["Properties"]
    rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-work"]["Prefix"] == "work/"
    assert rules["expire-work"]["ExpirationInDays"] == 1
    assert rules["abort-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["archive-videos"]["Prefix"] == "videos/"
    assert rules["archive-videos"]["Transitions"][0]["TransitionInDays"] == 90
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"] != bucket_id
    synth.assertions.has_resource_properties(
        "Custom::S3BucketNotifications",
        {"BucketName": {"Ref": bucket_id}, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )
    # dev: emptied and deleted with the stack (prod retains: see test_config_prod_retains)
    assert synth.template["Resources"][bucket_id]["DeletionPolicy"] == "Delete"


def test_table_matches_the_local_table(synth: Synth) -> None:
    _, table = synth.jobs_table()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["KeySchema"] == [{"AttributeName": "video_id", "KeyType": "HASH"}]
    indexes = {
        index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
        for index in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {name: [pk] + ([sk] if sk else []) for name, pk, sk in TABLE_INDEXES}
    assert len(indexes) == 4


# --- compute, steps ---------------------------------------------------------------------------


def test_task_definition_sizes_and_environment(synth: Synth) -> None:
    _, task = synth.one("AWS::ECS::TaskDefinition")
    props = task["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert props["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    environment = {e["Name"]: e["Value"] for e in props["ContainerDefinitions"][0]["Environment"]}
    assert environment["VIDP_THREADS"] == str(int(props["Cpu"]) // 1024)
    assert set(environment) == {"VIDP_THREADS", "VIDP_TABLE_NAME", "VIDP_HEARTBEAT_SECONDS"}
    assert props["ContainerDefinitions"][0]["LogConfiguration"]["LogDriver"] == "awslogs"
    synth.assertions.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_the_five_steps_run_python_312_with_the_asl_timeouts(synth: Synth) -> None:
    functions = {
        f["Properties"]["Handler"]: f["Properties"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if "Handler" in f["Properties"]
    }
    timeouts = state_timeouts()
    assert timeouts["Notify"] == 300
    for step, module in STEP_MODULES.items():
        props = functions[f"{module}.handler"]
        assert props["Runtime"] == "python3.12"
        assert props["Timeout"] >= timeouts[step]
        env = props["Environment"]["Variables"]
        assert {"VIDP_BUCKET", "VIDP_TABLE_NAME", "VIDP_EVENT_BUS_NAME", "VIDP_WEBHOOK_SECRET_ARN"} <= set(
            env
        )
        assert "VIDP_WEBHOOK_SECRET" not in env  # only the secret's ARN, never its value
        assert env["VIDP_WEBHOOK_SECRET_ARN"] == {"Ref": synth.one("AWS::SecretsManager::Secret")[0]}


def test_the_lambda_asset_is_the_real_bundle(synth: Synth) -> None:
    keys = {
        f["Properties"]["Code"]["S3Key"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler", "").startswith(("pipeline.steps.", "pipeline.starter."))
    }
    assert len(keys) == 1  # the five steps and the starter share one asset
    staged = synth.outdir / f"asset.{keys.pop().removesuffix('.zip')}"
    assert (staged / "pipeline" / "steps" / "notify.py").is_file()
    assert (staged / "pipeline" / "starter.py").is_file()
    assert list((staged / "pydantic_core").glob("*cpython-312-x86_64-linux-gnu.so"))
    assert not (staged / "pipeline" / "local").exists()  # the local AWS (moto) stays out
    assert not (staged / "boto3").exists()  # the runtime's
    assert not list(staged.rglob("*.pyc"))


# --- triggers ---------------------------------------------------------------------------------


def test_upload_rule_pattern_and_dead_letters(synth: Synth) -> None:
    rules = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert len(rules) == 1
    pattern = rules[0]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": _media_bucket_id(synth)}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    for target in rules[0]["Targets"]:
        assert "Arn" in target["DeadLetterConfig"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_reprocess_schedule_has_its_own_dead_letter_queue(synth: Synth) -> None:
    _, schedule = synth.one("AWS::Scheduler::Schedule")
    target = schedule["Properties"]["Target"]
    assert "Arn" in target["DeadLetterConfig"]
    assert json.loads(target["Input"])["job_id"] == "reprocess-<aws.scheduler.execution-id>"
    upload_dlq = [
        t["DeadLetterConfig"]["Arn"]
        for r in synth.resources("AWS::Events::Rule").values()
        for t in r["Properties"].get("Targets", [])
        if "DeadLetterConfig" in t
    ]
    assert target["DeadLetterConfig"]["Arn"] not in upload_dlq


def test_queues_are_encrypted_and_tls_only(synth: Synth) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    assert len(queues) == 4  # dead letters of uploads, reprocessing, the reconciler; the sidecar checks
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    tls_only = set()
    for policy in synth.resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert tls_only == set(queues)


# --- observability, tags ----------------------------------------------------------------------


def test_alarms_go_to_an_encrypted_topic(synth: Synth) -> None:
    topic_id, topic = synth.one("AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    metrics = {a["Properties"].get("MetricName") for a in alarms.values()}
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ApproximateNumberOfMessagesVisible"} <= metrics
    assert any(str(m).startswith("TaskErrors") for m in metrics)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    synth.assertions.resource_count_is("AWS::CloudWatch::Dashboard", 1)


@pytest.mark.parametrize(
    "kind",
    [
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::StepFunctions::StateMachine",
        "AWS::Lambda::Function",
        "AWS::ECS::Cluster",
        "AWS::ECS::TaskDefinition",
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::EC2::VPC",
        "AWS::Logs::LogGroup",
    ],
)
def test_resources_carry_the_tags(synth: Synth, kind: str) -> None:
    for logical_id, resource in synth.resources(kind).items():
        if "CustomResourceProvider" in logical_id:
            continue  # CDK's own handlers (auto-delete, default SG) are raw, untaggable CfnResources
        tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        assert set(tags) >= TAG_KEYS, logical_id
        assert tags["Project"] == PROJECT
        assert tags["Environment"] == "dev"
