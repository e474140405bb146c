"""What starts jobs besides StartExecution: S3 uploads under incoming/, and a reprocessing schedule."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as lambda_events
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

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
from infra.steps import RUNTIME
from pipeline.deployment import (
    INCOMING_PREFIX,
    METRIC_NAMESPACE,
    UPLOADS_REJECTED_METRIC,
    upload_event_pattern,
)

# The upload starter Lambda: pipeline/starter.py, in the same bundle as the steps.
STARTER_HANDLER = "pipeline.starter.handler"
# How long a video uploaded without its sidecar waits for it (an SQS delay: at most 900 s).
SIDECAR_WAIT = Duration.minutes(5)


def dead_letter_queue(scope: Construct, construct_id: str, name: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps what could not be delivered for 14 days."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=name,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue (of an EventBridge target / Lambda / schedule); "
        "its depth is alarmed on, it needs no DLQ of its own.",
    )
    return queue


def _event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """``pipeline.deployment``'s pattern (the local AWS's too) as CDK's EventPattern."""
    return events.EventPattern(
        source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
    )


class UploadTrigger(Construct):
    """S3 ``Object Created`` under incoming/ -> the upload starter Lambda -> a named execution.

    EventBridge cannot name an execution, and the S3 event is not a JobRequest: the starter reads
    the sidecar (``<key>.job.json``) and starts the execution named by the job id and the
    upload's version, so a duplicate event finds the execution already there.
    A video without its sidecar is looked at again after ``SIDECAR_WAIT`` (a delayed message on
    the sidecar checks queue, which the same Lambda reads). A rejected upload is put on the
    pipeline's bus (``VidP Upload Rejected``) and counted: ``rejections`` is that metric.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        code: lambda_.Code,
        bucket: s3.IBucket,
        machine: sfn.IStateMachine,
        bus: events.IEventBus,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = dead_letter_queue(self, "DeadLetters", config.name("uploads-dlq"))
        self.sidecar_checks = sqs.Queue(
            self,
            "SidecarChecks",
            queue_name=config.name("sidecar-checks"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(180),  # 6x the starter's timeout, as Lambda advises
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=self.dlq),
        )
        service = config.names.function("UploadStarter")
        self.starter = lambda_.Function(
            self,
            "Starter",
            function_name=service,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=STARTER_HANDLER,
            code=code,
            memory_size=256,
            timeout=Duration.seconds(30),
            environment={
                "VIDP_BUCKET": bucket.bucket_name,
                "VIDP_STATE_MACHINE_ARN": machine.state_machine_arn,
                "VIDP_EVENT_BUS_NAME": bus.event_bus_name,
                "VIDP_SIDECAR_CHECKS_QUEUE_URL": self.sidecar_checks.queue_url,
                "VIDP_SIDECAR_WAIT_SECONDS": str(int(SIDECAR_WAIT.to_seconds())),
                "POWERTOOLS_SERVICE_NAME": service,
            },
            log_group=logs.LogGroup(
                self,
                "StarterLogs",
                retention=config.log_retention,
                removal_policy=config.removal_policy,
            ),
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=self.dlq,
            retry_attempts=2,
        )
        bucket.grant_read(self.starter, f"{INCOMING_PREFIX}*")
        machine.grant_start_execution(self.starter)
        bus.grant_put_events_to(self.starter)
        self.sidecar_checks.grant_send_messages(self.starter)
        self.starter.add_event_source(lambda_events.SqsEventSource(self.sidecar_checks, batch_size=1))
        self.rejections = cloudwatch.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=UPLOADS_REJECTED_METRIC,
            dimensions_map={"service": service},  # Powertools' EMF dimension (POWERTOOLS_SERVICE_NAME)
            period=Duration.minutes(5),
            statistic="Sum",
        )
        self.starter.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[
                    Stack.of(self).format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{config.names.state_machine}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.rule = events.Rule(
            self,
            "Uploads",
            rule_name=config.name("uploads"),
            description="S3 uploads under incoming/ start a job",
            event_pattern=_event_pattern(upload_event_pattern(bucket.bucket_name)),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.starter,
                dead_letter_queue=self.dlq,
                retry_attempts=8,
                max_event_age=Duration.hours(6),
            )
        )
        acknowledge_s3_grants(
            self.starter, bucket, (INCOMING_PREFIX,), ("s3:GetObject*", "s3:GetBucket*", "s3:List*")
        )
        acknowledge_any_resource(self.starter, XRAY_REASON)
        acknowledge(self.starter, LAMBDA_MANAGED_POLICY, BASIC_EXECUTION_REASON)
        acknowledge(self.starter, "AwsSolutions-L1", RUNTIME_REASON)
        acknowledge(
            self.starter,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:{config.names.state_machine}:*]",
            "DescribeExecution of this state machine's executions only (to confirm a duplicate); "
            "execution names are per job, so the name must be a wildcard.",
        )


class ReprocessSchedule(Construct):
    """An EventBridge Scheduler schedule starting ``reprocess_request``; the stack adds it only if
    context ``reprocess_schedule`` is set (off by default).

    Each run gets its own job id (``reprocess-<scheduler execution id>``): a fixed id would make
    every run after the first a duplicate that ValidateInput turns into a no-op.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, machine: sfn.IStateMachine
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = dead_letter_queue(self, "DeadLetters", config.name("reprocess-dlq"))
        request = dict(config.reprocess_request or {})
        request["job_id"] = f"reprocess-{scheduler.ContextAttribute.execution_id}"
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule_name=config.name("reprocess"),
            description="Re-runs the configured JobRequest (context reprocess_schedule)",
            schedule=scheduler.ScheduleExpression.expression(config.reprocess_schedule or "rate(1 day)"),
            target=scheduler_targets.StepFunctionsStartExecution(
                machine,
                input=scheduler.ScheduleTargetInput.from_object(request),
                dead_letter_queue=self.dlq,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            ),
        )
