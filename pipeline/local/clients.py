"""How code reaches a local AWS: its region and account, boto3 clients for its endpoint with fake
credentials, and the protocols the runners and the job functions are typed against (so none of
them imports ``LocalAws``, which imports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.config import Config

from pipeline.local.resources import REGION, LocalNames

FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"  # noqa: S105 - moto accepts any credentials; these reach nothing real


def make_client(endpoint_url: str, service: str, *, max_attempts: int = 3) -> Any:
    """A boto3 client for ``service`` of the local AWS at ``endpoint_url``."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
    )


class Clients(Protocol):
    """Something that hands out boto3 clients of one local AWS."""

    def client(self, service: str) -> Any: ...


class Deployment(Clients, Protocol):
    """A local AWS with the pipeline deployed: ``LocalAws`` in this process, or an ``Endpoint``."""

    @property
    def names(self) -> LocalNames: ...


@dataclass(frozen=True)
class Endpoint:
    """A local AWS running in another process (``vidp local up``), reached by its URL."""

    url: str
    names: LocalNames = field(default_factory=LocalNames)

    def client(self, service: str) -> Any:
        return make_client(self.url, service, max_attempts=2)
