"""One AWS call's failure as the pipeline's error: ``StorageUnavailable`` (throttling, 5xx,
unreachable: the state retries it) or ``StorageFailed`` (refused: one line, not retried)."""

from __future__ import annotations

from collections.abc import Collection

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.failures import StorageFailed, StorageUnavailable


def translate(
    err: ClientError | BotoCoreError, service: str, what: str, *, transient: Collection[str] = ()
) -> StorageUnavailable | StorageFailed:
    """``err`` from ``service`` while doing ``what``; ``transient``: error codes worth retrying."""
    if isinstance(err, BotoCoreError):
        return StorageUnavailable(f"{service} unreachable ({type(err).__name__}): {what}")
    code = str(err.response.get("Error", {}).get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in transient or status >= 500:
        return StorageUnavailable(f"{service}: {what}: {code or status}, try again later")
    return StorageFailed(f"{service}: {what}: refused ({code or status})")
