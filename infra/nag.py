"""cdk-nag acknowledgements: every one names the finding and says why it is acceptable.

cdk-nag 3 acknowledges findings one by one (``AwsSolutions-IAM5[Resource::...]``); a bare rule
id does not cover a rule's per-permission findings. The helpers here build those ids from the
constructs (logical ids), so an acknowledgement cannot silently cover another resource.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

PLUGIN = "AwsSolutions"

# Why each wildcard action group of CDK's S3 grants is acceptable (the resources are scoped).
S3_ACTION_REASONS = {
    "s3:GetObject*": "CDK grant_read's GetObject* group (object, version, tagging, ACL reads) on "
    "prefix-scoped object ARNs only.",
    "s3:GetBucket*": "CDK grant_read's GetBucket* group: metadata (location, versioning) of the one "
    "media bucket.",
    "s3:List*": "CDK grant_read's List* group on the one media bucket: without ListBucket a missing key is "
    "a 403 instead of the 404 the steps report as invalid input.",
    "s3:DeleteObject*": "CDK grant_delete's DeleteObject* group (object and version) on work/* only: the "
    "temporary files of a job.",
    "s3:Abort*": "CDK grant_put's Abort* group: abort the role's own multipart uploads, on its write "
    "prefix only.",
}
PREFIX_REASON = (
    "Object keys are per job (work/{{job_id}}/..., videos/{{video_id}}/...): a key prefix of the one media "
    "bucket, here {prefix}, is the narrowest resource S3 allows."
)


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (``AwsSolutions-S1``, ``AwsSolutions-IAM5[Resource::*]``) under ``scope``."""
    if len(reason) < 20:
        raise ValueError("an acknowledgement needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def arn_of(construct: IConstruct) -> str:
    """How cdk-nag writes the ``Fn::GetAtt`` Arn of ``construct``'s CloudFormation resource."""
    resource = construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    stack = Stack.of(construct)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.Arn>"


def acknowledge_s3_grants(
    scope: IConstruct, bucket: IConstruct, prefixes: Iterable[str], actions: Iterable[str]
) -> None:
    """The IAM5 findings of CDK's S3 grants on key ``prefixes`` of ``bucket``."""
    for action in actions:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", S3_ACTION_REASONS[action])
    for prefix in prefixes:
        acknowledge(
            scope,
            f"AwsSolutions-IAM5[Resource::{arn_of(bucket)}/{prefix}*]",
            PREFIX_REASON.format(prefix=prefix),
        )


def acknowledge_any_resource(scope: IConstruct, reason: str) -> None:
    """``Resource::*`` for actions without resource-level permissions (X-Ray, log delivery, ECR auth)."""
    acknowledge(scope, "AwsSolutions-IAM5[Resource::*]", reason)


XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords (added by tracing=ACTIVE) have no resource-level permissions."
)
BASIC_EXECUTION_REASON = (
    "AWSLambdaBasicExecutionRole only lets the function write its own CloudWatch logs; it is the "
    "AWS-maintained minimum for a Lambda function."
)
RUNTIME_REASON = (
    "Python 3.12 is pinned on purpose: scripts/bundle_lambda.py builds the binary wheels "
    "(pydantic-core) for cp312, so runtime and bundle move together."
)
LAMBDA_MANAGED_POLICY = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)
