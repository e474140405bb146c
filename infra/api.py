"""The videos API in AWS: API Gateway (REST, IAM authorization) in front of one Lambda,
``pipeline.api.videos``, whose role allows exactly what its routes do."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IDependable

from infra.config import DeployConfig
from infra.nag import PREFIX_REASON, acknowledge, arn_of
from infra.proxy_api import INDEX_REASON, ProxyApi, api_function
from pipeline.deployment import UPLOADS_PREFIX, VIDEOS_PREFIX

HANDLER = "pipeline.api.videos.handler"
# The form upload route receives files: API Gateway hands these bodies to the Lambda as base64.
BINARY_MEDIA_TYPES = ["multipart/form-data", "application/octet-stream", "video/*"]
PRESIGN_EXPIRY_SECONDS = 3600


class Api(Construct):
    """The videos API: IAM-authorised REST API -> ``pipeline.api.videos`` with least privilege.

    The function starts and reads executions of this state machine, reads and writes job records
    (never a Scan, never a new record: ValidateInput writes those), presigns reads of ``videos/``
    and uploads into ``uploads/``, and deletes a video's outputs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        code: lambda_.Code,
        bucket: s3.IBucket,
        table: dynamodb.ITable,
        machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = api_function(
            self,
            "VideosApi",
            config=config,
            code=code,
            handler=HANDLER,
            environment={
                "VIDP_BUCKET": bucket.bucket_name,
                "VIDP_TABLE_NAME": table.table_name,
                "VIDP_STATE_MACHINE_ARN": machine.state_machine_arn,
                "VIDP_PRESIGN_EXPIRY_SECONDS": str(PRESIGN_EXPIRY_SECONDS),
                "POWERTOOLS_SERVICE_NAME": "vidp-api",
            },
        )
        self._grant(config, bucket, table, machine)
        self.api = ProxyApi(
            self,
            "Rest",
            config=config,
            name="api",
            description="VidP videos API (IAM authorization: sign requests with SigV4)",
            function=self.function,
            binary_media_types=BINARY_MEDIA_TYPES,
            cloud_watch_role=True,
        )
        account = self.api.rest_api.node.find_child("Account")
        self.logging_ready: IDependable = account
        role = self.api.rest_api.node.find_child("CloudWatchRole")
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The AWS-maintained policy API Gateway's account-level CloudWatch role needs to write "
            "execution logs; it has no narrower equivalent.",
        )
        acknowledge(
            self.api.rest_api,
            "AwsSolutions-COG4",
            "The videos API uses IAM authorization (SigV4-signed callers: services and operators with "
            "IAM identities), not Cognito user pools.",
        )

    def _grant(
        self, config: DeployConfig, bucket: s3.IBucket, table: dynamodb.ITable, machine: sfn.IStateMachine
    ) -> None:
        function = self.function
        arn = machine.state_machine_arn
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{config.names.state_machine}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        statements = [
            # StartExecution of jobs; DescribeStateMachine for the health route.
            iam.PolicyStatement(
                actions=["states:StartExecution", "states:DescribeStateMachine"], resources=[arn]
            ),
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions]),
            # Records: read, patch, delete (ValidateInput creates them); DescribeTable for health;
            # lists are Queries of the indexes only.
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:DescribeTable",
                ],
                resources=[table.table_arn],
            ),
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{table.table_arn}/index/*"]),
            # A presigned URL carries the signer's permission: streaming GETs of videos/, uploads
            # into uploads/ (presigned POST and the form route); DELETE removes a video's objects.
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects(f"{VIDEOS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{UPLOADS_PREFIX}*")]
            ),
            # DELETE lists a video's folder, health lists videos/: only listings under videos/.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{VIDEOS_PREFIX}*"]}},
            ),
        ]
        for statement in statements:
            function.add_to_role_policy(statement)
        acknowledge(
            function,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:{config.names.state_machine}:*]",
            "DescribeExecution of this state machine's executions only (a job's status and error); "
            "execution names are per job, so the name must be a wildcard.",
        )
        acknowledge(function, f"AwsSolutions-IAM5[Resource::{arn_of(table)}/index/*]", INDEX_REASON)
        for prefix in (VIDEOS_PREFIX, UPLOADS_PREFIX):
            acknowledge(
                function,
                f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{prefix}*]",
                PREFIX_REASON.format(prefix=prefix),
            )
