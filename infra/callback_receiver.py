"""The callback receiver (seed 002) in AWS: a public REST API, its Lambda and its table.

POSTs are public on purpose: the pipeline's callbacks come from Notify, which signs them
(Standard Webhooks) instead of SigV4; ``pipeline.api.receiver`` verifies that signature with the
pipeline's secret and refuses (401) anything else. Reads (``GET /callback/...``,
``/test/results``) are IAM-authorised. Optional: ``-c callback_receiver=false``.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IDependable

from infra.config import DeployConfig
from infra.nag import acknowledge, arn_of
from infra.proxy_api import INDEX_REASON, ProxyApi, api_function
from infra.table import string_keyed_table
from pipeline.deployment import CALLBACKS_INDEXES, CALLBACKS_TABLE_KEY, CALLBACKS_TABLE_SORT

HANDLER = "pipeline.api.receiver.handler"
# Only the callbacks' POST is public: the stored payloads hold presigned file URLs, bearer
# credentials for their caller, so reading them needs SigV4, and so does /test/simulate.
PUBLIC_ROUTES = (("callback/{task_id}", "POST"),)
_S = dynamodb.AttributeType.STRING


class CallbackReceiver(Construct):
    """``vidp-<env>-callbacks``: one item per callback received, a batch index; the API over it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        code: lambda_.Code,
        secret: secretsmanager.ISecret,
        secret_ready: IDependable,
        logging_ready: IDependable | None = None,
    ) -> None:
        """``secret``: the pipeline's webhook secret, holding its value once ``secret_ready`` is
        deployed; ``logging_ready``: API Gateway's account CloudWatch role (see ``Api``)."""
        super().__init__(scope, construct_id)
        self.table = string_keyed_table(
            self,
            "Callbacks",
            config=config,
            name=config.names.callbacks_table,
            key=(CALLBACKS_TABLE_KEY, CALLBACKS_TABLE_SORT),
            indexes=CALLBACKS_INDEXES,
        )
        self.function = api_function(
            self,
            "CallbackReceiver",
            config=config,
            code=code,
            handler=HANDLER,
            environment={
                "VIDP_CALLBACKS_TABLE_NAME": self.table.table_name,
                "VIDP_WEBHOOK_SECRET_ARN": secret.secret_arn,
                # POST /test/simulate stores a sample payload unsigned: never in prod.
                "VIDP_RECEIVER_SIMULATE": "0" if config.is_prod else "1",
                "POWERTOOLS_SERVICE_NAME": "vidp-callbacks",
            },
        )
        # The secret holds its whsec_ value (written by the custom resource) before any callback.
        self.function.node.add_dependency(secret_ready)
        secret.grant_read(self.function)
        # Stored once per webhook-id (a conditional put), read by task, batch and newest first.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:Query"],
                resources=[self.table.table_arn],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{self.table.table_arn}/index/*"])
        )
        acknowledge(self.function, f"AwsSolutions-IAM5[Resource::{arn_of(self.table)}/index/*]", INDEX_REASON)
        self.api = ProxyApi(
            self,
            "Rest",
            config=config,
            name="callbacks",
            description="VidP callback receiver (public: only payloads signed with the webhook secret)",
            function=self.function,
            public_routes=PUBLIC_ROUTES,
            logging_ready=logging_ready,
        )
        for method in self.api.public_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Public by design: a callback is authenticated by its Standard Webhooks signature "
                "(HMAC with the pipeline's secret), verified in code; an unsigned or tampered payload "
                "gets 401 and is not stored.",
            )
        acknowledge(
            self.api.rest_api,
            "AwsSolutions-COG4",
            "No Cognito: callback POSTs are authenticated by their webhook signature, and reading "
            "results uses IAM authorization (SigV4), like the videos API.",
        )
