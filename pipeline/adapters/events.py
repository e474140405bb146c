"""EventBridge: the pipeline's events (``VidP Video Processed``, ``VidP Video Failed``).

PutEvents answers 200 even when it could not take an entry (``FailedEntryCount``): that, like
throttling, 5xx and connection failures, is ``StorageUnavailable`` (the step is retried); anything
else (a missing bus, access denied) is ``StorageFailed``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.adapters import aws_clients
from pipeline.deployment import EVENT_SOURCE
from pipeline.failures import StorageFailed, StorageUnavailable

_TRANSIENT_CODES = {"ThrottlingException", "InternalException", "InternalFailure", "ServiceUnavailable"}


@lru_cache(maxsize=1)
def events_client() -> Any:  # no type stubs for EventBridge are installed
    """The shared EventBridge client, built on first use."""
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)
    return aws_clients.client("events", config)


def put_event(detail_type: str, detail: dict[str, Any], *, bus: str, client: Any = None) -> str:
    """Put one event with source ``vidp.pipeline`` on the bus named ``bus``; return its id."""
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
        "EventBusName": bus,
    }
    try:
        answer = (client or events_client()).put_events(Entries=[entry])
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT_CODES or status >= 500:
            raise StorageUnavailable(
                f"EventBridge: {detail_type}: {code or status}, try again later"
            ) from None
        raise StorageFailed(f"EventBridge: {detail_type}: refused ({code or status})") from None
    except BotoCoreError as err:
        raise StorageUnavailable(f"EventBridge unreachable ({type(err).__name__})") from None
    if answer.get("FailedEntryCount", 0):
        failed = answer["Entries"][0]
        reason = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
        raise StorageUnavailable(f"EventBridge: {detail_type} not accepted ({reason})")
    return str(answer["Entries"][0]["EventId"])
