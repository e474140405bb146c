"""What the videos API and the callback receiver share: a REST API proxying every path to one
Lambda (the Powertools resolver routes), its stage (throttled, logged, traced), its 5xx alarm.

API Gateway only proxies the root and ``{proxy+}``: a route added in code needs no change here.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IDependable

from infra.config import DeployConfig
from infra.nag import (
    BASIC_EXECUTION_REASON,
    LAMBDA_MANAGED_POLICY,
    RUNTIME_REASON,
    XRAY_REASON,
    acknowledge,
    acknowledge_any_resource,
)
from infra.steps import RUNTIME

# API Gateway's integration timeout: a request that is not answered by then is a 504 anyway.
INTEGRATION_TIMEOUT = Duration.seconds(29)
INDEX_REASON = (
    "Query on this table's own global secondary indexes (index/*): each listing is served by an "
    "index, never a Scan."
)
# The routes' error shape for API Gateway's own answers ($context.error.messageString is quoted).
GATEWAY_ERROR = '{"error": {"code": "$context.error.responseType", "message": $context.error.messageString}}'
WAF_REASON = (
    "No WAF web ACL (a per-account cost and policy choice): the stage is throttled and every request "
    "is authenticated, by SigV4 at API Gateway or, for the receiver's callback POSTs, by the webhook "
    "signature checked before anything is stored."
)


def api_function(
    scope: Construct,
    construct_id: str,
    *,
    config: DeployConfig,
    code: lambda_.Code,
    handler: str,
    environment: dict[str, str],
) -> lambda_.Function:
    """A Lambda serving one resolver: the API Gateway timeout, X-Ray, its own log group."""
    function = lambda_.Function(
        scope,
        construct_id,
        function_name=config.names.function(construct_id),
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        handler=handler,
        code=code,
        memory_size=512,
        timeout=INTEGRATION_TIMEOUT,
        environment=environment,
        log_group=logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        ),
        tracing=lambda_.Tracing.ACTIVE,
    )
    acknowledge(function, LAMBDA_MANAGED_POLICY, BASIC_EXECUTION_REASON)
    acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
    acknowledge_any_resource(function, XRAY_REASON)
    return function


class ProxyApi(Construct):
    """A regional REST API whose every path and method goes to ``function`` (the resolver routes).

    Every method is IAM-authorised (callers sign with SigV4) except ``public_routes`` (path,
    method), which the code authenticates itself. API Gateway's own errors (SigV4 refused, 429
    throttled, 504) have the routes' error shape, ``{"error": {"code", "message"}}``. One stage
    (``<env>``): throttled, JSON access logs in their own log group, ERROR-level execution logs
    (never bodies: a response may hold a presigned URL), metrics, X-Ray, and an alarm on any 5xx
    in five minutes.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        name: str,
        description: str,
        function: lambda_.IFunction,
        public_routes: Sequence[tuple[str, str]] = (),
        binary_media_types: Sequence[str] | None = None,
        cloud_watch_role: bool = False,
        logging_ready: IDependable | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.rest_api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=config.name(name),
            description=description,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(binary_media_types) if binary_media_types else None,
            # Execution logs need the region's API Gateway CloudWatch role: one API creates it.
            cloud_watch_role=cloud_watch_role,
            deploy_options=apigw.StageOptions(
                stage_name=config.env,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        # RestApi adds its own "Endpoint" output; the stack names its URLs itself.
        self.rest_api.node.try_remove_child("Endpoint")
        self.stage = self.rest_api.deployment_stage
        # API Gateway would create the execution log group itself, kept forever; made here, it
        # has the deployment's retention and goes with the stack.
        execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.rest_api.rest_api_id}/{config.env}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.stage.node.add_dependency(execution_logs)
        if logging_ready is not None:
            self.stage.node.add_dependency(logging_ready)
        # Bodies are validated by the resolver's pydantic models; the proxy declares no model.
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(
            function, proxy=True, allow_test_invoke=False, timeout=INTEGRATION_TIMEOUT
        )
        proxy = self.rest_api.root.add_resource("{proxy+}")
        self.methods = [
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
            )
            for resource in (self.rest_api.root, proxy)
        ]
        # A resource of its own is preferred to {proxy+}: these skip SigV4, for that path only.
        self.public_methods = [
            self.rest_api.root.resource_for_path(path).add_method(
                method,
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
            for path, method in public_routes
        ]
        for kind, response_type in (
            ("4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.rest_api.add_gateway_response(
                f"Default{kind}",
                type=response_type,
                templates={"application/json": GATEWAY_ERROR},
            )
        self.server_errors = cloudwatch.Alarm(
            self,
            "ServerErrorsAlarm",
            alarm_description=f"{config.name(name)}: a 5xx answer in the last 5 minutes",
            metric=self.rest_api.metric_server_error(period=Duration.minutes(5), statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        acknowledge(self.rest_api, "AwsSolutions-APIG3", WAF_REASON)

    @property
    def url(self) -> str:
        return self.rest_api.url
