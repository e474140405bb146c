"""The thin stack: composes the capability constructs and wires their outputs together."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Environment, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.api import Api
from infra.callback_receiver import CallbackReceiver
from infra.compute import FfmpegCompute
from infra.config import DeployConfig
from infra.nag import LAMBDA_MANAGED_POLICY, acknowledge
from infra.observability import Observability
from infra.reconciliation import Reconciliation
from infra.steps import StepFunctions
from infra.storage import MediaStorage
from infra.table import JobsTable
from infra.triggers import ReprocessSchedule, UploadTrigger
from infra.workflow import Workflow


class VidpStack(Stack):
    """``vidp-<env>``: storage, table, compute, steps, workflow, triggers, reconciliation, the videos
    API, the callback receiver (optional), observability."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        lambda_bundle: Path,
        env: Environment | None = None,
        description: str | None = None,
        termination_protection: bool | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=description,
            termination_protection=termination_protection,
        )
        code = lambda_.Code.from_asset(str(lambda_bundle))
        storage = MediaStorage(self, "Storage", config=config)
        jobs = JobsTable(self, "Table", config=config)
        compute = FfmpegCompute(
            self,
            "Compute",
            config=config,
            bucket=storage.bucket,
            table_name=jobs.table.table_name,
            table_arn=jobs.table.table_arn,
        )
        steps = StepFunctions(
            self,
            "Steps",
            config=config,
            code=code,
            bucket=storage.bucket,
            table=jobs.table,
            cluster=compute.cluster,
        )
        workflow = Workflow(
            self,
            "Workflow",
            config=config,
            functions=dict(steps.functions),
            compute=compute,
            table=jobs.table,
        )
        machine = workflow.state_machine
        uploads = UploadTrigger(
            self,
            "Uploads",
            config=config,
            code=code,
            bucket=storage.bucket,
            machine=machine,
            bus=steps.event_bus,
        )
        reconciliation = Reconciliation(
            self, "Reconciliation", config=config, code=code, steps=steps, machine=machine
        )
        queues = [uploads.dlq, reconciliation.dlq]
        if config.reprocess_schedule:
            queues.append(ReprocessSchedule(self, "Reprocess", config=config, machine=machine).dlq)
        api = Api(
            self, "Api", config=config, code=code, bucket=storage.bucket, table=jobs.table, machine=machine
        )
        alarms = [api.api.server_errors]
        receiver = None
        if config.callback_receiver:
            receiver = CallbackReceiver(
                self,
                "Callbacks",
                config=config,
                code=code,
                secret=steps.webhook_secret,
                secret_ready=steps.secret_value,
                logging_ready=api.logging_ready,
            )
            alarms.append(receiver.api.server_errors)
        Observability(
            self,
            "Observability",
            config=config,
            machine=machine,
            task_log_group=compute.log_group,
            dead_letter_queues=queues,
            upload_rejections=uploads.rejections,
            api_alarms=alarms,
        )
        self._acknowledge_cdk_internals()
        CfnOutput(self, "BucketName", value=storage.bucket.bucket_name)
        CfnOutput(self, "TableName", value=jobs.table.table_name)
        CfnOutput(self, "StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "EventBusName", value=steps.event_bus.event_bus_name)
        CfnOutput(self, "WebhookSecretArn", value=steps.webhook_secret.secret_arn)
        CfnOutput(self, "ApiUrl", value=api.api.url)
        if receiver is not None:
            CfnOutput(self, "CallbackApiUrl", value=receiver.api.url)

    def _acknowledge_cdk_internals(self) -> None:
        """Findings on the singleton Lambdas CDK adds for its own custom resources."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    LAMBDA_MANAGED_POLICY,
                    "CDK's own handler that turns on the bucket's EventBridge notifications at deploy; "
                    "it only needs to write its logs.",
                )
