"""Alarms to an encrypted SNS topic, and a small dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import DeployConfig
from pipeline.deployment import METRIC_NAMESPACE


class Observability(Construct):
    """Failed/timed-out executions, task errors, rejected uploads, dead letters and the APIs' 5xx
    alarms page the alarm topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        machine: sfn.StateMachine,
        task_log_group: logs.ILogGroup,
        dead_letter_queues: Sequence[sqs.IQueue],
        upload_rejections: cloudwatch.IMetric,
        api_alarms: Sequence[cloudwatch.Alarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer managed key: CloudWatch may not use the AWS managed alias/aws/sns key.
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="VidP alarm topic")
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(
            self, "Alarms", topic_name=config.name("alarms"), master_key=key, enforce_ssl=True
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = actions.SnsAction(self.topic)
        period = Duration.minutes(5)
        task_errors = logs.MetricFilter(
            self,
            "TaskErrorFilter",
            log_group=task_log_group,
            filter_pattern=logs.FilterPattern.string_value("$.event", "=", "error"),
            metric_namespace=METRIC_NAMESPACE,
            metric_name=f"TaskErrors-{config.env}",
            metric_value="1",
            default_value=0,
        ).metric(period=period, statistic="Sum")
        watched = {
            "ExecutionsFailed": machine.metric_failed(period=period, statistic="Sum"),
            "ExecutionsTimedOut": machine.metric_timed_out(period=period, statistic="Sum"),
            "TaskErrors": task_errors,
            # Each is an upload someone expects processed: a bad or missing sidecar, a conflict.
            "UploadsRejected": upload_rejections,
        }
        for index, queue in enumerate(dead_letter_queues):
            watched[f"DeadLetters{index}"] = queue.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            )
        self.alarms = []
        for name, metric in watched.items():
            alarm = cloudwatch.Alarm(
                self,
                f"{name}Alarm",
                metric=metric,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
        for alarm in api_alarms:  # made by the API constructs, next to the API they watch
            alarm.add_alarm_action(action)
            self.alarms.append(alarm)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=config.name("pipeline"))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    machine.metric_started(period=period, statistic="Sum"),
                    machine.metric_succeeded(period=period, statistic="Sum"),
                    watched["ExecutionsFailed"],
                    watched["ExecutionsTimedOut"],
                ],
            ),
            cloudwatch.GraphWidget(
                title="Execution time (ms)",
                left=[machine.metric_time(period=period, statistic="p90")],
            ),
            cloudwatch.GraphWidget(title="ffmpeg task errors", left=[task_errors]),
            cloudwatch.GraphWidget(title="Rejected uploads", left=[upload_rejections]),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )
