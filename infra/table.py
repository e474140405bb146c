"""The jobs table: one item per video, with the key and GSIs of ``pipeline.deployment``."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import DeployConfig
from pipeline.deployment import TABLE_INDEXES, TABLE_KEY

_S = dynamodb.AttributeType.STRING


class JobsTable(Construct):
    """``vidp-<env>-jobs``: on demand, PITR, encrypted, streams of new and old images."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Jobs",
            table_name=config.names.table,
            partition_key=dynamodb.Attribute(name=TABLE_KEY, type=_S),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            deletion_protection=config.is_prod,
            removal_policy=config.removal_policy,
        )
        # The same indexes as the local AWS: one list, so the two cannot differ.
        for index, partition, sort in TABLE_INDEXES:
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=partition, type=_S),
                sort_key=dynamodb.Attribute(name=sort, type=_S) if sort else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
