"""The media bucket (and its access-log bucket): private, TLS-only, encrypted, versioned."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import acknowledge
from pipeline.deployment import VIDEOS_PREFIX, WORK_PREFIX


class MediaStorage(Construct):
    """``vidp-<env>-media-<account>-<region>``: uploads, work files and outputs, by prefix."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365))],
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
        acknowledge(
            self.log_bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket itself; logging it into itself would loop.",
        )
        transitions = []
        if config.archive_after_days is not None:
            transitions.append(
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=Duration.days(config.archive_after_days),
                )
            )
        rules = [
            s3.LifecycleRule(id="expire-work", prefix=WORK_PREFIX, expiration=Duration.days(1)),
            s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(1)),
            s3.LifecycleRule(id="noncurrent-versions", noncurrent_version_expiration=Duration.days(30)),
        ]
        if transitions:
            rules.append(s3.LifecycleRule(id="archive-videos", prefix=VIDEOS_PREFIX, transitions=transitions))
        self.bucket = s3.Bucket(
            self,
            "Media",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            event_bridge_enabled=True,
            lifecycle_rules=rules,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="media/",
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
