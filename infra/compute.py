"""Where the ffmpeg task runs: a VPC without internet access, an ECS cluster, the Fargate task."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import DeployConfig
from infra.nag import acknowledge, acknowledge_any_resource, acknowledge_s3_grants
from pipeline.deployment import CONTAINER_NAME, INPUT_PREFIXES, WORK_PREFIX

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = "containers/ffmpeg-task/Dockerfile"


class Network(Construct):
    """A new VPC (isolated subnets + endpoints), or the one named by context ``vpc_id``.

    The new VPC has no NAT and no internet gateway: the task, which decodes untrusted media,
    reaches only S3, DynamoDB, Step Functions, ECR and CloudWatch Logs, through VPC endpoints.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id)
        if config.vpc_id:
            # Needs credentials at synth (a context lookup); the VPC must give the private
            # subnets a route to those services (NAT or endpoints).
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=config.vpc_id)
            self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            return
        vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=config.name("vpc"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="tasks", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
            restrict_default_security_group=True,
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        for name, service in (
            ("States", ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS),
            ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
            ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
        ):
            vpc.add_interface_endpoint(name, service=service, private_dns_enabled=True)
        for endpoint in ("States", "EcrApi", "EcrDocker", "Logs"):
            acknowledge(
                vpc.node.find_child(endpoint),
                "AwsSolutions-EC23",
                "The endpoint's security group admits HTTPS only from the VPC's own CIDR (a "
                "Fn::GetAtt cdk-nag cannot evaluate), never 0.0.0.0/0.",
            )
        self.vpc = vpc
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)


class FfmpegCompute(Construct):
    """The ECS cluster and the Fargate task definition of ``BurnAndCompress``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        bucket: s3.IBucket,
        table_name: str,
        table_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        network = Network(self, "Network", config=config)
        self.vpc = network.vpc
        self.subnet_ids = network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnet_ids
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=network.vpc,
            description="ffmpeg task: no ingress, HTTPS egress to AWS endpoints",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs")

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=config.names.cluster,
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        arm = config.arch == "arm64"
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            family=config.names.task_family,
            cpu=config.task_cpu,
            memory_limit_mib=config.task_memory_mib,
            ephemeral_storage_gib=config.task_ephemeral_gib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = logs.LogGroup(
            self,
            "TaskLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        image = ecs.ContainerImage.from_asset(
            str(REPO_ROOT),
            file=DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
            # Same set as /.dockerignore: only pyproject.toml, README.md and pipeline/ matter.
            exclude=[".venv", ".git", "build", "cdk.out", "tests", "bench", "infra", "node_modules"],
        )
        self.container = self.task_definition.add_container(
            "Ffmpeg",
            container_name=CONTAINER_NAME,
            image=image,
            essential=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="ffmpeg", log_group=self.log_group),
            stop_timeout=Duration.seconds(30),
            environment={
                "VIDP_THREADS": str(config.vcpus),
                "VIDP_TABLE_NAME": table_name,
                "VIDP_HEARTBEAT_SECONDS": str(config.heartbeat_seconds),
            },
        )
        self._grant_task_role(bucket, table_arn)
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only non-secret settings (thread count, table name, heartbeat "
            "period); the per-job values come as container overrides and there are no secrets.",
        )

    def _grant_task_role(self, bucket: s3.IBucket, table_arn: str) -> None:
        role = self.task_definition.task_role
        for prefix in INPUT_PREFIXES:
            bucket.grant_read(role, f"{prefix}*")
        bucket.grant_put(role, f"{WORK_PREFIX}*")
        bucket.grant_delete(role, f"{WORK_PREFIX}*")
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[table_arn])
        )
        acknowledge_s3_grants(
            role,
            bucket,
            INPUT_PREFIXES,
            ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"),
        )
        acknowledge_any_resource(
            self.execution_role,
            "ecr:GetAuthorizationToken has no resource-level permission; the image pull itself "
            "is limited to the asset repository by CDK.",
        )

    @property
    def task_role(self) -> iam.IRole:
        return self.task_definition.task_role

    @property
    def execution_role(self) -> iam.IRole:
        role = self.task_definition.execution_role
        if role is None:  # never: a task definition with an asset image always has one
            raise RuntimeError("the task definition has no execution role")
        return role
