"""The HTTP APIs in AWS: the videos API (IAM-authorised) and the callback receiver (public POSTs),
their Lambdas' exact grants, stages, logs, alarms and outputs, asserted on the synthesized template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, DeployConfig
from pipeline.deployment import (
    CALLBACKS_INDEXES,
    CALLBACKS_TABLE_KEY,
    CALLBACKS_TABLE_SORT,
    UPLOADS_PREFIX,
    VIDEOS_PREFIX,
)
from tests.infra.conftest import Synth, run_app

VIDEOS_API = "vidp-dev-api"
RECEIVER_API = "vidp-dev-callbacks"
XRAY = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
EXECUTIONS = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:vidp-dev-pipeline:*"


def _text(value: Any) -> str:
    """A CloudFormation value as text: ``Fn::GetAtt [id, Arn]`` -> ``<id.Arn>``, ``Ref id`` -> ``<id>``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_text(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic {value}")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    return synth.named("AWS::Lambda::Function", "Handler", handler)


def _statements(synth: Synth, function: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _grants(synth: Synth, handler: str) -> set[tuple[str, str]]:
    """Every (action, resource) the function's role allows, resources as text."""
    _, function = _function(synth, handler)
    grants = set()
    for statement in _statements(synth, function):
        assert statement["Effect"] == "Allow"
        for action in _listed(statement["Action"]):
            grants |= {(action, _text(resource)) for resource in _listed(statement["Resource"])}
    return grants


def _api(synth: Synth, name: str) -> str:
    return synth.named("AWS::ApiGateway::RestApi", "Name", name)[0]


def _of_api(synth: Synth, kind: str, api_id: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in synth.resources(kind).items() if v["Properties"]["RestApiId"] == {"Ref": api_id}}


def _media_bucket_id(synth: Synth) -> str:
    [bucket_id] = [
        k for k, v in synth.resources("AWS::S3::Bucket").items() if "LoggingConfiguration" in v["Properties"]
    ]
    return bucket_id


# --- who may call -----------------------------------------------------------------------------


def test_every_method_of_the_videos_api_is_iam_authorised_and_proxies_to_its_lambda(synth: Synth) -> None:
    function_id, _ = _function(synth, "pipeline.api.videos.handler")
    methods = _of_api(synth, "AWS::ApiGateway::Method", _api(synth, VIDEOS_API))
    assert len(methods) == 2  # the root and {proxy+}: the resolver routes every path itself
    for method in methods.values():
        props = method["Properties"]
        assert (props["HttpMethod"], props["AuthorizationType"]) == ("ANY", "AWS_IAM")
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert props["Integration"]["TimeoutInMillis"] == 29000
        assert f"<{function_id}.Arn>" in _text(props["Integration"]["Uri"])
    resources = _of_api(synth, "AWS::ApiGateway::Resource", _api(synth, VIDEOS_API))
    assert [r["Properties"]["PathPart"] for r in resources.values()] == ["{proxy+}"]


def test_only_the_callbacks_post_is_public_and_everything_else_needs_sigv4(synth: Synth) -> None:
    function_id, _ = _function(synth, "pipeline.api.receiver.handler")
    methods = _of_api(synth, "AWS::ApiGateway::Method", _api(synth, RECEIVER_API))
    resources = _of_api(synth, "AWS::ApiGateway::Resource", _api(synth, RECEIVER_API))
    parts = {rid: r["Properties"]["PathPart"] for rid, r in resources.items()}
    found = {
        (
            parts.get(m["Properties"]["ResourceId"].get("Ref", ""), "root"),
            m["Properties"]["HttpMethod"],
            m["Properties"]["AuthorizationType"],
        )
        for m in methods.values()
    }
    # POST /callback/{task_id} (signature checked in code); reading results and /test/simulate signed.
    assert found == {
        ("root", "ANY", "AWS_IAM"),
        ("{proxy+}", "ANY", "AWS_IAM"),
        ("{task_id}", "POST", "NONE"),
    }
    assert sorted(parts.values()) == ["callback", "{proxy+}", "{task_id}"]
    for method in methods.values():
        assert f"<{function_id}.Arn>" in _text(method["Properties"]["Integration"]["Uri"])


def test_the_videos_api_takes_form_uploads_as_binary_and_the_receiver_json_only(synth: Synth) -> None:
    apis = synth.resources("AWS::ApiGateway::RestApi")
    assert apis[_api(synth, VIDEOS_API)]["Properties"]["BinaryMediaTypes"] == [
        "multipart/form-data",
        "application/octet-stream",
        "video/*",
    ]
    assert "BinaryMediaTypes" not in apis[_api(synth, RECEIVER_API)]["Properties"]
    for api in apis.values():
        assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_every_method_has_a_request_validator_of_its_api(synth: Synth) -> None:
    for name in (VIDEOS_API, RECEIVER_API):
        api_id = _api(synth, name)
        [(validator_id, validator)] = _of_api(synth, "AWS::ApiGateway::RequestValidator", api_id).items()
        assert validator["Properties"]["ValidateRequestParameters"] is True
        for method in _of_api(synth, "AWS::ApiGateway::Method", api_id).values():
            assert method["Properties"]["RequestValidatorId"] == {"Ref": validator_id}


# --- what the Lambdas may do ------------------------------------------------------------------


def test_the_videos_lambda_may_do_exactly_what_its_routes_do(synth: Synth) -> None:
    [(machine_id, _)] = synth.resources("AWS::StepFunctions::StateMachine").items()
    table, bucket = f"<{synth.jobs_table()[0]}.Arn>", f"<{_media_bucket_id(synth)}.Arn>"
    records = {"GetItem", "UpdateItem", "DeleteItem", "DescribeTable"}
    assert _grants(synth, "pipeline.api.videos.handler") == XRAY | {
        ("states:StartExecution", f"<{machine_id}>"),
        ("states:DescribeStateMachine", f"<{machine_id}>"),
        ("states:DescribeExecution", EXECUTIONS),
        *{(f"dynamodb:{action}", table) for action in records},
        ("dynamodb:Query", f"{table}/index/*"),
        ("s3:GetObject", f"{bucket}/{VIDEOS_PREFIX}*"),
        ("s3:DeleteObject", f"{bucket}/{VIDEOS_PREFIX}*"),
        ("s3:PutObject", f"{bucket}/{UPLOADS_PREFIX}*"),
        ("s3:ListBucket", bucket),
    }


def test_the_videos_lambda_lists_only_under_videos(synth: Synth) -> None:
    _, function = _function(synth, "pipeline.api.videos.handler")
    [listing] = [s for s in _statements(synth, function) if "s3:ListBucket" in _listed(s["Action"])]
    assert _listed(listing["Action"]) == ["s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{VIDEOS_PREFIX}*"]}}


def test_the_lambdas_have_only_the_basic_execution_managed_policy(synth: Synth) -> None:
    for handler in ("pipeline.api.videos.handler", "pipeline.api.receiver.handler"):
        _, function = _function(synth, handler)
        role = synth.template["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
        [policy] = role["Properties"]["ManagedPolicyArns"]
        assert _text(policy).endswith(":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")


def test_the_receiver_lambda_reads_the_secret_and_reads_and_writes_its_own_table(synth: Synth) -> None:
    table_id, _ = synth.named("AWS::DynamoDB::Table", "TableName", "vidp-dev-callbacks")
    table = f"<{table_id}.Arn>"
    [(secret_id, _)] = synth.resources("AWS::SecretsManager::Secret").items()
    assert _grants(synth, "pipeline.api.receiver.handler") == XRAY | {
        ("secretsmanager:GetSecretValue", f"<{secret_id}>"),
        ("secretsmanager:DescribeSecret", f"<{secret_id}>"),
        ("dynamodb:PutItem", table),
        ("dynamodb:Query", table),
        ("dynamodb:Query", f"{table}/index/*"),
    }


def test_the_api_lambdas_environment_limits_and_logs(synth: Synth) -> None:
    [(machine_id, _)] = synth.resources("AWS::StepFunctions::StateMachine").items()
    [(secret_id, _)] = synth.resources("AWS::SecretsManager::Secret").items()
    callbacks_id, _ = synth.named("AWS::DynamoDB::Table", "TableName", "vidp-dev-callbacks")
    expected = {
        "pipeline.api.videos.handler": {
            "VIDP_BUCKET": {"Ref": _media_bucket_id(synth)},
            "VIDP_TABLE_NAME": {"Ref": synth.jobs_table()[0]},
            "VIDP_STATE_MACHINE_ARN": {"Ref": machine_id},
            "VIDP_PRESIGN_EXPIRY_SECONDS": "3600",
            "POWERTOOLS_SERVICE_NAME": "vidp-api",
        },
        "pipeline.api.receiver.handler": {
            "VIDP_CALLBACKS_TABLE_NAME": {"Ref": callbacks_id},
            "VIDP_WEBHOOK_SECRET_ARN": {"Ref": secret_id},
            "VIDP_RECEIVER_SIMULATE": "1",  # dev: POST /test/simulate is on
            "POWERTOOLS_SERVICE_NAME": "vidp-callbacks",
        },
    }
    for handler, environment in expected.items():
        _, function = _function(synth, handler)
        props = function["Properties"]
        assert props["Environment"]["Variables"] == environment
        assert (props["Runtime"], props["Timeout"], props["MemorySize"]) == ("python3.12", 29, 512)
        assert props["TracingConfig"] == {"Mode": "Active"}
        log_group = synth.template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == 30
    # The receiver verifies with the secret's whsec_ value: it is written before the function exists.
    _, receiver = _function(synth, "pipeline.api.receiver.handler")
    [(value_id, _)] = synth.resources("Custom::WebhookSecret").items()
    assert value_id in receiver["DependsOn"]


# --- the receiver's table ---------------------------------------------------------------------


def test_the_receiver_table_has_the_keys_and_indexes_of_pipeline_deployment(synth: Synth) -> None:
    _, table = synth.named("AWS::DynamoDB::Table", "TableName", "vidp-dev-callbacks")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": CALLBACKS_TABLE_KEY, "KeyType": "HASH"},
        {"AttributeName": CALLBACKS_TABLE_SORT, "KeyType": "RANGE"},
    ]
    indexes = {
        index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
        for index in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {name: [pk] + ([sk] if sk else []) for name, pk, sk in CALLBACKS_INDEXES}
    assert "batch_id-index" in indexes
    assert {i["Projection"]["ProjectionType"] for i in props["GlobalSecondaryIndexes"]} == {"ALL"}
    assert {a["AttributeType"] for a in props["AttributeDefinitions"]} == {"S"}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


# --- stages: throttling, logs, tracing --------------------------------------------------------


def test_each_stage_is_throttled_logged_to_its_own_group_and_traced(synth: Synth) -> None:
    resources = synth.template["Resources"]
    destinations = set()
    for name in (VIDEOS_API, RECEIVER_API):
        [stage] = _of_api(synth, "AWS::ApiGateway::Stage", _api(synth, name)).values()
        props = stage["Properties"]
        assert props["StageName"] == "dev"
        assert props["TracingEnabled"] is True
        assert props["MethodSettings"] == [
            {
                "HttpMethod": "*",
                "ResourcePath": "/*",
                "ThrottlingRateLimit": 50,
                "ThrottlingBurstLimit": 100,
                "MetricsEnabled": True,
                "LoggingLevel": "ERROR",
                "DataTraceEnabled": False,  # never bodies: responses hold presigned URLs
            }
        ]
        access = props["AccessLogSetting"]
        group_id = access["DestinationArn"]["Fn::GetAtt"][0]
        assert resources[group_id]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group_id]["Properties"]["RetentionInDays"] == 30
        destinations.add(group_id)
        fields = json.loads(access["Format"])
        assert {"requestId", "ip", "caller", "user", "httpMethod", "resourcePath", "status"} <= set(fields)
    function_groups = {
        f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        for f in synth.resources("AWS::Lambda::Function").values()
        if "LoggingConfig" in f["Properties"]
    }
    assert len(destinations) == 2 and not destinations & function_groups


def test_each_stage_waits_for_its_execution_log_group_and_the_account_logging_role(synth: Synth) -> None:
    [(account_id, account)] = synth.resources("AWS::ApiGateway::Account").items()
    role = synth.template["Resources"][account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
    assert role["DeletionPolicy"] == "Retain"  # other APIs of the region log through it too
    groups = synth.resources("AWS::Logs::LogGroup")
    for name in (VIDEOS_API, RECEIVER_API):
        api_id = _api(synth, name)
        [stage] = _of_api(synth, "AWS::ApiGateway::Stage", api_id).values()
        [execution_logs] = [
            k
            for k, v in groups.items()
            if _text(v["Properties"].get("LogGroupName", "")) == f"API-Gateway-Execution-Logs_<{api_id}>/dev"
        ]
        assert groups[execution_logs]["Properties"]["RetentionInDays"] == 30
        assert {account_id, execution_logs} <= set(stage["DependsOn"])


def test_a_5xx_on_either_api_pages_the_alarm_topic(synth: Synth) -> None:
    [(topic_id, _)] = synth.resources("AWS::SNS::Topic").items()
    server_errors = {
        a["Properties"]["Dimensions"][0]["Value"]: a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "5XXError"
    }
    assert set(server_errors) == {VIDEOS_API, RECEIVER_API}
    for alarm in server_errors.values():
        assert alarm["Namespace"] == "AWS/ApiGateway"
        assert alarm["Dimensions"][0]["Name"] == "ApiName"
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_outputs_name_both_urls(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    assert not [key for key in outputs if "Endpoint" in key]  # RestApi's own outputs removed
    for output, name in (("ApiUrl", VIDEOS_API), ("CallbackApiUrl", RECEIVER_API)):
        api_id = _api(synth, name)
        [stage_id] = _of_api(synth, "AWS::ApiGateway::Stage", api_id)
        assert _text(outputs[output]["Value"]) == (
            f"https://<{api_id}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/<{stage_id}>/"
        )


# --- context: the receiver is optional, prod disables the simulation --------------------------


def test_callback_receiver_false_leaves_the_receiver_out(tmp_path: Path) -> None:
    run = run_app(tmp_path, {"env": "prod", "callback_receiver": "false"})  # as `-c` passes it
    assert run.returncode == 0, run.stderr[-4000:]  # cdk-nag clean too: findings fail synth
    template = json.loads((tmp_path / "vidp-prod.template.json").read_text(encoding="utf-8"))
    resources = template["Resources"].values()
    assert [r["Properties"]["Name"] for r in resources if r["Type"] == "AWS::ApiGateway::RestApi"] == [
        "vidp-prod-api"
    ]
    tables = [r["Properties"]["TableName"] for r in resources if r["Type"] == "AWS::DynamoDB::Table"]
    assert tables == ["vidp-prod-jobs"]
    handlers = {r["Properties"].get("Handler") for r in resources if r["Type"] == "AWS::Lambda::Function"}
    assert "pipeline.api.videos.handler" in handlers
    assert "pipeline.api.receiver.handler" not in handlers
    assert "ApiUrl" in template["Outputs"] and "CallbackApiUrl" not in template["Outputs"]


def test_a_prod_receiver_turns_the_simulation_off_and_keeps_its_table() -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_secretsmanager as secretsmanager
    from aws_cdk.assertions import Match, Template

    from infra.callback_receiver import CallbackReceiver

    stack = cdk.Stack(cdk.App(), "receiver")
    secret = secretsmanager.Secret(stack, "Secret")
    CallbackReceiver(
        stack,
        "Callbacks",
        config=DeployConfig(env="prod"),
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
        secret=secret,
        secret_ready=secret,
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"VIDP_RECEIVER_SIMULATE": "0"})}},
    )
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": Match.object_like(
                {"TableName": "vidp-prod-callbacks", "DeletionProtectionEnabled": True}
            ),
        },
    )
    template.has_resource_properties("AWS::ApiGateway::Stage", {"StageName": "prod"})


def test_api_context_values_are_read_and_checked() -> None:
    given = DeployConfig.from_values(
        {"api_rate_limit": "20", "api_burst_limit": "40", "callback_receiver": "false"}
    )
    assert (given.api_rate_limit, given.api_burst_limit, given.callback_receiver) == (20, 40, False)
    defaults = DeployConfig.from_values({"callback_receiver": "", "api_rate_limit": ""})
    assert (defaults.api_rate_limit, defaults.api_burst_limit, defaults.callback_receiver) == (50, 100, True)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_rate_limit", "0"),
        ("api_burst_limit", "-5"),
        ("api_rate_limit", "fast"),
        ("callback_receiver", "maybe"),
    ],
)
def test_a_bad_api_context_value_is_one_line_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DeployConfig.from_values({key: value})
    message = str(raised.value)
    assert message.startswith(f"context {key}={value!r}: ") and "\n" not in message


def test_api_gateways_own_errors_have_the_routes_error_shape(synth: Synth) -> None:
    for name in (VIDEOS_API, RECEIVER_API):
        responses = _of_api(synth, "AWS::ApiGateway::GatewayResponse", _api(synth, name))
        assert {r["Properties"]["ResponseType"] for r in responses.values()} == {"DEFAULT_4XX", "DEFAULT_5XX"}
        for response in responses.values():
            template = response["Properties"]["ResponseTemplates"]["application/json"]
            assert template.startswith('{"error": {"code": "$context.error.responseType"')
