"""The Lambda steps of the ASL, their webhook secret and the pipeline's event bus."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import ArnFormat, CustomResource, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

import state_machine
from infra.config import DeployConfig
from infra.nag import (
    BASIC_EXECUTION_REASON,
    LAMBDA_MANAGED_POLICY,
    RUNTIME_REASON,
    XRAY_REASON,
    acknowledge,
    acknowledge_any_resource,
    acknowledge_s3_grants,
)
from pipeline.deployment import INPUT_PREFIXES, VIDEOS_PREFIX, WORK_PREFIX
from pipeline.steps.registry import STEP_MODULES, handler_path

RUNTIME = lambda_.Runtime.PYTHON_3_12  # the bundle's wheels are built for it (bundle_lambda.py)
SECRET_CODE = Path(__file__).with_name("lambdas") / "webhook_secret.py"


def state_timeouts() -> dict[str, int]:
    """The longest TimeoutSeconds of the ASL states that invoke each step's function."""
    definition = json.loads(state_machine.template())
    longest: dict[str, int] = {}
    for state in definition["States"].values():
        resource = state.get("Resource", "")
        for step in STEP_MODULES:
            if resource == "${" + step + "FunctionArn}":
                longest[step] = max(longest.get(step, 0), int(state["TimeoutSeconds"]))
    return longest


class StepFunctions(Construct):
    """One Lambda per step; each gets only the grants its code uses."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        code: lambda_.Code,
        bucket: s3.IBucket,
        table: dynamodb.ITable,
        cluster: ecs.ICluster,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config, self._bucket, self._table, self._cluster = config, bucket, table, cluster
        self.event_bus = events.EventBus(self, "Bus", event_bus_name=config.names.event_bus)
        self.webhook_secret = self._webhook_secret(config)
        timeouts = state_timeouts()
        environment = {
            "VIDP_BUCKET": bucket.bucket_name,
            "VIDP_TABLE_NAME": table.table_name,
            "VIDP_EVENT_BUS_NAME": self.event_bus.event_bus_name,
            "VIDP_WEBHOOK_SECRET_ARN": self.webhook_secret.secret_arn,
            "VIDP_CLUSTER_ARN": cluster.cluster_arn,
        }
        self.environment = dict(environment)
        self.functions: dict[str, lambda_.Function] = {}
        for step in STEP_MODULES:
            log_group = logs.LogGroup(
                self,
                f"{step}Logs",
                retention=config.log_retention,
                removal_policy=config.removal_policy,
            )
            function = lambda_.Function(
                self,
                step,
                function_name=config.names.function(step),
                runtime=RUNTIME,
                architecture=lambda_.Architecture.X86_64,
                handler=handler_path(step),
                code=code,
                memory_size=512,
                timeout=Duration.seconds(timeouts[step]),
                environment=environment,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
            )
            function.node.add_dependency(self.secret_value)
            self.functions[step] = function
        self._grant(bucket, table)

    def _webhook_secret(self, config: DeployConfig) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            secret_name=config.name("webhook-secret"),
            description="Standard Webhooks signing secret (whsec_...) of the callbacks",
            removal_policy=config.removal_policy,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "The callback receivers verify signatures with this secret, shared out of band; an "
            "automatic rotation would break them. Rotate by hand (new whsec_ value) with the callers.",
        )
        generator = lambda_.Function(
            self,
            "WebhookSecretGenerator",
            runtime=RUNTIME,
            handler="index.handler",
            code=lambda_.Code.from_inline(SECRET_CODE.read_text(encoding="utf-8")),
            timeout=Duration.seconds(60),
            log_group=logs.LogGroup(
                self,
                "WebhookSecretGeneratorLogs",
                retention=config.log_retention,
                removal_policy=config.removal_policy,
            ),
        )
        secret.grant_write(generator)
        self.secret_value = CustomResource(
            self,
            "WebhookSecretValue",
            service_token=generator.function_arn,
            resource_type="Custom::WebhookSecret",
            properties={"SecretArn": secret.secret_arn},
        )
        return secret

    def _grant(self, bucket: s3.IBucket, table: dynamodb.ITable) -> None:
        f = self.functions
        read = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
        for prefix in INPUT_PREFIXES:
            bucket.grant_read(f["ValidateInput"], f"{prefix}*")
            bucket.grant_read(f["FetchSubtitles"], f"{prefix}*")
        acknowledge_s3_grants(f["ValidateInput"], bucket, INPUT_PREFIXES, read)
        bucket.grant_put(f["FetchSubtitles"], f"{WORK_PREFIX}*")
        acknowledge_s3_grants(f["FetchSubtitles"], bucket, INPUT_PREFIXES, (*read, "s3:Abort*"))
        # Finalise: manifest + output from work/, final object to videos/, then clear work/.
        bucket.grant_read(f["Finalise"], f"{WORK_PREFIX}*")
        bucket.grant_read(f["Finalise"], f"{VIDEOS_PREFIX}*")
        bucket.grant_put(f["Finalise"], f"{VIDEOS_PREFIX}*")
        bucket.grant_delete(f["Finalise"], f"{WORK_PREFIX}*")
        acknowledge_s3_grants(
            f["Finalise"], bucket, (WORK_PREFIX, VIDEOS_PREFIX), (*read, "s3:Abort*", "s3:DeleteObject*")
        )
        # Notify presigns a GET of the output: the URL works only if the signer may read it.
        bucket.grant_read(f["Notify"], f"{VIDEOS_PREFIX}*")
        acknowledge_s3_grants(f["Notify"], bucket, (VIDEOS_PREFIX,), read)
        # MarkFailed: the execution's input, the job record, its task, its files (see grant_failure_branch).
        self.grant_failure_branch(f["MarkFailed"])
        self.grant_stop_tasks(f["StopTimedOutTask"])
        # The job record only, by key: no index access (CDK's table.grant would add index/*).
        for step in ("ValidateInput", "Notify"):
            f[step].add_to_role_policy(self._record_items())
        # FetchSubtitles reads the record only: is the job still processing after its write?
        f["FetchSubtitles"].add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[self._table.table_arn])
        )
        self.event_bus.grant_put_events_to(f["Notify"])
        self.webhook_secret.grant_read(f["Notify"])
        for function in self.functions.values():
            acknowledge_any_resource(function, XRAY_REASON)
        acknowledge(self, LAMBDA_MANAGED_POLICY, BASIC_EXECUTION_REASON)
        acknowledge(self, "AwsSolutions-L1", RUNTIME_REASON)

    def _record_items(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            resources=[self._table.table_arn],
        )

    def grant_failure_branch(self, function: lambda_.IFunction, *, notify: bool = False) -> None:
        """What recording a failure takes (MarkFailed, and the reconciler with ``notify``): read
        the execution, write the job record, stop the job's task, delete its work files and a
        final object of its own; with ``notify``, Notify's grants too."""
        config, bucket = self._config, self._bucket
        read = ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
        bucket.grant_read(function, f"{VIDEOS_PREFIX}*")
        bucket.grant_delete(function, f"{VIDEOS_PREFIX}*")
        bucket.grant_delete(function, f"{WORK_PREFIX}*")
        acknowledge_s3_grants(function, bucket, (VIDEOS_PREFIX, WORK_PREFIX), (*read, "s3:DeleteObject*"))
        function.add_to_role_policy(self._record_items())
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{config.names.state_machine}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"], resources=[executions]
            )
        )
        acknowledge(
            function,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:{config.names.state_machine}:*]",
            "Reads this state machine's executions only (the failed one's input and last state); "
            "execution names are per job, so the name must be a wildcard.",
        )
        self.grant_stop_tasks(function)
        if notify:
            self.event_bus.grant_put_events_to(function)
            self.webhook_secret.grant_read(function)

    def grant_stop_tasks(self, function: lambda_.IFunction) -> None:
        """ListTasks of the cluster and StopTask of its tasks (a job's, found by StartedBy)."""
        cluster = self._cluster
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        name = self._config.names.cluster  # the literal name: a stable ARN for the finding below
        tasks = Stack.of(self).format_arn(service="ecs", resource="task", resource_name=f"{name}/*")
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask"],
                resources=[tasks],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        acknowledge_any_resource(
            function,
            "ecs:ListTasks has no resource-level permission: it is limited to the pipeline's cluster "
            "by the ecs:cluster condition.",
        )
        acknowledge(
            function,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/{name}/*]",
            "StopTask of the pipeline cluster's tasks only: task ids are per run, so the id is a wildcard.",
        )
