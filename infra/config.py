"""The deployment's settings, read once from CDK context (``-c env=dev``, cdk.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

ENVIRONMENTS = ("dev", "prod")
ARCHITECTURES = ("x86_64", "arm64")
PROJECT = "vidp"


def _int(node: Node, key: str, default: int) -> int:
    value = node.try_get_context(key)
    return default if value is None or value == "" else int(value)


@dataclass(frozen=True)
class DeployConfig:
    """Everything a deployment may vary; names are ``vidp-<env>-<what>``."""

    env: str = "dev"
    arch: str = "x86_64"
    task_cpu: int = 2048
    task_memory_mib: int = 4096
    task_ephemeral_gib: int = 40
    heartbeat_seconds: int = 30
    vpc_id: str | None = None
    archive_after_days: int | None = None
    reprocess_schedule: str | None = None
    reprocess_request: dict[str, Any] | None = None
    log_retention_days: int = 30
    alarm_email: str | None = None
    client: str = "internal"
    owner: str = "video-platform"

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"context env must be one of {ENVIRONMENTS}, not {self.env!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"context arch must be one of {ARCHITECTURES}, not {self.arch!r}")
        if self.task_cpu % 1024:
            raise ValueError("context task_cpu must be a whole number of vCPUs (1024, 2048, ...)")
        if self.reprocess_schedule and not self.reprocess_request:
            raise ValueError("context reprocess_schedule needs reprocess_request (a JobRequest)")

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.env}"

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    @property
    def log_removal(self) -> RemovalPolicy:
        """Log groups outlive a prod stack (audit), not a dev one."""
        return RemovalPolicy.RETAIN if self.is_prod else RemovalPolicy.DESTROY

    @property
    def vcpus(self) -> int:
        return self.task_cpu // 1024

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        def text(key: str, default: str | None = None) -> str | None:
            value = node.try_get_context(key)
            return default if value in (None, "") else str(value)

        request = node.try_get_context("reprocess_request")
        if isinstance(request, str) and request:
            request = json.loads(request)
        archive = node.try_get_context("archive_after_days")
        return cls(
            env=text("env", "dev") or "dev",
            arch=text("arch", "x86_64") or "x86_64",
            task_cpu=_int(node, "task_cpu", 2048),
            task_memory_mib=_int(node, "task_memory_mib", 4096),
            task_ephemeral_gib=_int(node, "task_ephemeral_gib", 40),
            heartbeat_seconds=_int(node, "heartbeat_seconds", 30),
            vpc_id=text("vpc_id"),
            archive_after_days=None if archive in (None, "") else int(archive),
            reprocess_schedule=text("reprocess_schedule"),
            reprocess_request=request or None,
            log_retention_days=_int(node, "log_retention_days", 30),
            alarm_email=text("alarm_email"),
            client=text("client", "internal") or "internal",
            owner=text("owner", "video-platform") or "video-platform",
        )


def log_retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention enum member for ``days`` (ValueError if not one)."""
    members = {
        1: logs.RetentionDays.ONE_DAY,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        90: logs.RetentionDays.THREE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
    }
    if days not in members:
        raise ValueError(f"context log_retention_days must be one of {sorted(members)}")
    return members[days]
