"""The jobs table: one item per video, with the key and GSIs of ``pipeline.deployment``."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.config import DeployConfig
from pipeline.deployment import TABLE_INDEXES, TABLE_KEY

_S = dynamodb.AttributeType.STRING


def string_keyed_table(
    scope: Construct,
    construct_id: str,
    *,
    config: DeployConfig,
    name: str,
    key: tuple[str, str | None],
    indexes: tuple[tuple[str, str, str | None], ...],
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """An on-demand, PITR, encrypted table of string keys: ``key`` (partition, sort) and its
    ``indexes`` (all projected) from ``pipeline.deployment``, the lists the local AWS reads too."""
    partition, sort = key
    table = dynamodb.Table(
        scope,
        construct_id,
        table_name=name,
        partition_key=dynamodb.Attribute(name=partition, type=_S),
        sort_key=dynamodb.Attribute(name=sort, type=_S) if sort else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        stream=stream,
        deletion_protection=config.is_prod,
        removal_policy=config.removal_policy,
    )
    for index, index_partition, index_sort in indexes:
        table.add_global_secondary_index(
            index_name=index,
            partition_key=dynamodb.Attribute(name=index_partition, type=_S),
            sort_key=dynamodb.Attribute(name=index_sort, type=_S) if index_sort else None,
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


class JobsTable(Construct):
    """``vidp-<env>-jobs``: on demand, PITR, encrypted, streams of new and old images."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.table = string_keyed_table(
            self,
            "Jobs",
            config=config,
            name=config.names.table,
            key=(TABLE_KEY, None),
            indexes=TABLE_INDEXES,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        )
