"""The deployment's settings, read once from CDK context (``-c env=dev``, cdk.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError, field_validator, model_validator

from pipeline.deployment import Names

PROJECT = "vidp"
# The retention periods a deployment may pick (context log_retention_days), of those CloudWatch has.
RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


class ConfigError(ValueError):
    """A context value the deployment cannot use; the message is one line naming the key."""


class DeployConfig(BaseModel):
    """Everything a deployment may vary; names are ``vidp-<env>-<what>``.

    Validated from the context values as they come: strings from ``-c key=value``, typed values
    from cdk.json; an empty string means unset.
    """

    # Numbers to str: cdk.json may well say "client": 42. Unknown keys: CDK's own feature
    # flags (@aws-cdk/...) live in the same context.
    model_config = ConfigDict(frozen=True, extra="ignore", coerce_numbers_to_str=True)

    env: Literal["dev", "prod"] = "dev"
    arch: Literal["x86_64", "arm64"] = "x86_64"
    task_cpu: int = 2048
    task_memory_mib: int = 4096
    task_ephemeral_gib: int = 40
    heartbeat_seconds: int = 30
    vpc_id: str | None = None
    archive_after_days: int | None = None
    reprocess_schedule: str | None = None
    reprocess_request: dict[str, JsonValue] | None = None
    log_retention_days: int = 30
    alarm_email: str | None = None
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    callback_receiver: bool = True
    client: str = "internal"
    owner: str = "video-platform"

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: object) -> object:
        if isinstance(values, Mapping):
            return {key: value for key, value in values.items() if value not in (None, "")}
        return values

    @field_validator("reprocess_request", mode="before")
    @classmethod
    def _json_text(cls, value: object) -> object:
        """``-c reprocess_request='{...}'`` gives the JSON text; cdk.json gives the object."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as error:
                raise ValueError(f"not JSON ({error})") from None
        return value

    @field_validator("reprocess_request")
    @classmethod
    def _no_empty_request(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        return value or None

    @field_validator("task_cpu")
    @classmethod
    def _whole_vcpus(cls, value: int) -> int:
        if value <= 0 or value % 1024:
            raise ValueError("must be a whole number of vCPUs (1024, 2048, ...)")
        return value

    @field_validator("api_rate_limit", "api_burst_limit")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive whole number of requests")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in RETENTION_DAYS:
            raise ValueError(f"must be one of {sorted(RETENTION_DAYS)}")
        return value

    @model_validator(mode="after")
    def _schedule_has_request(self) -> DeployConfig:
        if self.reprocess_schedule and not self.reprocess_request:
            raise ValueError("context reprocess_schedule needs reprocess_request (a JobRequest)")
        return self

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        """The config from ``node``'s context; ``ConfigError`` (one line) for a bad value."""
        return cls.from_values({key: node.try_get_context(key) for key in cls.model_fields})

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> DeployConfig:
        """The config from context ``values``; ``ConfigError`` (one line) for a bad value."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigError(_one_line(error)) from None

    @property
    def prefix(self) -> str:
        return f"{PROJECT}-{self.env}"

    @property
    def names(self) -> Names:
        """The deployment's resource names, by ``pipeline.deployment``'s scheme (the local AWS's too)."""
        return Names(self.prefix)

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What deleting the stack does to the buckets, table, secret and log groups.

        A prod stack leaves them behind (data, audit logs, the callers' signing secret), to be
        removed by hand; a dev stack takes them with it.
        """
        return RemovalPolicy.RETAIN if self.is_prod else RemovalPolicy.DESTROY

    @property
    def auto_delete_objects(self) -> bool:
        """Empty the buckets before deleting them, which is only when the stack takes them."""
        return self.removal_policy == RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        """``log_retention_days`` as the CloudWatch Logs enum member."""
        return RETENTION_DAYS[self.log_retention_days]

    @property
    def vcpus(self) -> int:
        return self.task_cpu // 1024

    def name(self, what: str) -> str:
        return self.names.name(what)


def _one_line(error: ValidationError) -> str:
    """``context task_cpu='1500': must be ...``: each bad key once, without pydantic's URLs."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"]:  # a check across keys: its message names them
            problems.append(message)
            continue
        key = item["loc"][0]
        value = item["input"]
        if isinstance(value, str | int | float):
            problems.append(f"context {key}={value!r}: {message}")
        else:
            problems.append(f"context {key}: {message}")
    return "; ".join(problems)
