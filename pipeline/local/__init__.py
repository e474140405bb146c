"""The embedded local AWS: the real state machine on one machine (see ``aws.LocalAws``).

Names are imported on first use: ``python -m pipeline.local.token_task`` (a container task)
must not pay for importing moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.local.aws import LocalAws, LocalAwsError
    from pipeline.local.resources import Names

__all__ = ["LocalAws", "LocalAwsError", "Names"]


def __getattr__(name: str) -> Any:
    if name in {"LocalAws", "LocalAwsError"}:
        from pipeline.local import aws

        return getattr(aws, name)
    if name == "Names":
        from pipeline.local import resources

        return resources.Names
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
