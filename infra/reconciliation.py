"""The reconciler: Step Functions' status-change events of the pipeline -> ``pipeline.reconciler``.

An execution stopped (StopExecution), timed out, or failed where no Catch could act ends with its
job still ``processing`` or unrecorded; this rule hands every ``ABORTED``, ``TIMED_OUT`` and
``FAILED`` execution of the pipeline to the reconciler Lambda, which records the job failed,
stops its task, cleans its files and sends the failure callback and event.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import BASIC_EXECUTION_REASON, LAMBDA_MANAGED_POLICY, RUNTIME_REASON, XRAY_REASON, acknowledge
from infra.steps import RUNTIME, StepFunctions
from infra.triggers import dead_letter_queue

HANDLER = "pipeline.reconciler.handler"
STATUS_CHANGE = "Step Functions Execution Status Change"
ENDED_BADLY = ["ABORTED", "TIMED_OUT", "FAILED"]


class Reconciliation(Construct):
    """The reconciler Lambda and the rule feeding it the pipeline's executions that ended badly."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        code: lambda_.Code,
        steps: StepFunctions,
        machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = dead_letter_queue(self, "DeadLetters", config.name("reconciler-dlq"))
        self.function = lambda_.Function(
            self,
            "Reconciler",
            function_name=config.names.function("Reconciler"),
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=code,
            memory_size=512,
            # A failure callback may take up to ~245 s (notify.py): the same budget as Notify's.
            timeout=Duration.seconds(300),
            environment=steps.environment,
            log_group=logs.LogGroup(
                self, "Logs", retention=config.log_retention, removal_policy=config.removal_policy
            ),
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=self.dlq,
            retry_attempts=2,
        )
        self.function.node.add_dependency(steps.secret_value)
        steps.grant_failure_branch(self.function, notify=True)
        self.rule = events.Rule(
            self,
            "ExecutionsEnded",
            rule_name=config.name("executions-ended"),
            description="Pipeline executions that ended ABORTED, TIMED_OUT or FAILED: record their jobs",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={"status": ENDED_BADLY, "stateMachineArn": [machine.state_machine_arn]},
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function, dead_letter_queue=self.dlq, retry_attempts=8, max_event_age=Duration.hours(6)
            )
        )
        acknowledge(self.function, LAMBDA_MANAGED_POLICY, BASIC_EXECUTION_REASON)
        acknowledge(self.function, "AwsSolutions-L1", RUNTIME_REASON)
        acknowledge(self.function, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
