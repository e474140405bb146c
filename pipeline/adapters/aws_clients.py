"""Building boto3 clients, one at a time.

Creating clients from boto3's default session in several threads at once is not thread-safe
(boto3 documents it; the races show as a KeyError in the credential resolver): the local HTTP
server answers each connection in its own thread, and the adapters build their clients on first
use. So every adapter builds through ``client``, under one lock; the clients themselves are
thread-safe once built.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_lock = threading.Lock()


def client(service: str, config: Config | None = None) -> Any:
    """``boto3.client(service, config=config)``, built under the lock."""
    with _lock:
        return boto3.client(service, config=config)  # type: ignore[call-overload]
