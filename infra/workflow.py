"""The state machine: ``state_machine/pipeline.asl.json`` deployed as is, with substitutions."""

from __future__ import annotations

from aws_cdk import Fn
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

import state_machine
from infra.compute import FfmpegCompute
from infra.config import DeployConfig
from infra.nag import acknowledge, acknowledge_any_resource, arn_of


def substitutions(
    functions: dict[str, lambda_.IFunction], compute: FfmpegCompute, table: dynamodb.ITable
) -> dict[str, str]:
    """A value for every ``${...}`` of the ASL (the same names as the local AWS substitutes)."""
    return state_machine.substitutions(
        function_arn=lambda step: functions[step].function_arn,
        cluster_arn=compute.cluster.cluster_arn,
        task_definition_arn=compute.task_definition.task_definition_arn,
        subnet_ids=Fn.join(",", compute.subnet_ids),
        security_group_ids=compute.security_group.security_group_id,
        table_name=table.table_name,
    )


class Workflow(Construct):
    """``vidp-<env>-pipeline``: logs ALL to CloudWatch, traced with X-Ray, least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        functions: dict[str, lambda_.IFunction],
        compute: FfmpegCompute,
        table: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{config.names.state_machine}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=config.names.state_machine,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(state_machine.DEFINITION_PATH)),
            definition_substitutions=substitutions(functions, compute, table),
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        role = self.state_machine.role
        for function in functions.values():
            function.grant_invoke(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[compute.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": compute.cluster.cluster_arn}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[compute.task_role.role_arn, compute.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[table.table_arn])
        )
        # The task reports its outcome and heartbeats with the token of this state machine.
        self.state_machine.grant_task_response(compute.task_role)
        acknowledge_any_resource(
            role,
            "Step Functions log delivery (logs:CreateLogDelivery, ...) and X-Ray (xray:PutTraceSegments, "
            "...) have no resource-level permissions.",
        )
        for function in functions.values():
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{arn_of(function)}:*]",
                "CDK grant_invoke: the versions and aliases of exactly this step function.",
            )
