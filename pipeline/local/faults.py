"""Faults the local AWS injects on request, for the soak test and the reliability tests.

``DynamoDbThrottle``: a WSGI middleware in front of the moto server that answers a chosen share
(``fraction``) or a number (``count``) of DynamoDB calls with ``ProvisionedThroughputExceededException``:
HTTP 400 and the JSON error DynamoDB sends when a table is over its capacity. Every caller sees
it as it would on AWS: the steps' boto3 clients (whose retry modes treat it as throttling), the
state machine's ``dynamodb:updateItem`` states (``DynamoDB.ProvisionedThroughputExceededException``,
matched by their Retry) and the task's progress writes. Other services pass through untouched.

``with LocalAws() as aws: aws.dynamodb_throttle.throttle(fraction=0.2)`` ... ``.clear()``.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from moto.server import ThreadedMotoServer

TARGET_PREFIX = "DynamoDB_20120810."
THROTTLED_CODE = "ProvisionedThroughputExceededException"
THROTTLED_BODY = json.dumps(
    {
        "__type": f"com.amazonaws.dynamodb.v20120810#{THROTTLED_CODE}",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    }
).encode()


@dataclass
class ThrottleStats:
    """DynamoDB calls the middleware saw and throttled, by operation (``PutItem``, ``UpdateItem``...)."""

    seen: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "seen": sum(self.seen.values()),
            "throttled": sum(self.throttled.values()),
            "throttled_by_operation": dict(sorted(self.throttled.items())),
        }


class DynamoDbThrottle:
    """Which DynamoDB calls answer ``ProvisionedThroughputExceededException``: none until ``throttle``."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self._fraction = 0.0
        self._count = 0
        self._operations: frozenset[str] | None = None
        self._stats = ThrottleStats()

    def throttle(
        self, *, fraction: float = 0.0, count: int = 0, operations: Iterable[str] | None = None
    ) -> None:
        """Throttle the next ``count`` matching calls, then (or else) a ``fraction`` of them.

        ``operations`` limits it to those DynamoDB operations (``"UpdateItem"``...); all by default.
        Replaces any earlier setting.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._fraction, self._count = fraction, count
            self._operations = frozenset(operations) if operations is not None else None

    def clear(self) -> None:
        """Throttle nothing from now on (the counts are kept)."""
        self.throttle()

    @property
    def stats(self) -> ThrottleStats:
        with self._lock:
            return ThrottleStats(seen=Counter(self._stats.seen), throttled=Counter(self._stats.throttled))

    def install(self, server: ThreadedMotoServer) -> None:
        """Put the middleware in front of a started moto server.

        ThreadedMotoServer has no hook for a middleware; werkzeug's server reads its ``app`` on
        every request, so wrapping that attribute takes effect at once.
        """
        wsgi = server._server
        if wsgi is None:
            raise RuntimeError("the moto server is not started")
        wsgi.app = self.middleware(wsgi.app)

    def middleware(self, app: WSGIApplication) -> WSGIApplication:
        """``app`` with DynamoDB calls throttled as configured."""

        def throttled_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if target.startswith(TARGET_PREFIX) and self._decide(target.removeprefix(TARGET_PREFIX)):
                _discard_body(environ)
                start_response(
                    "400 Bad Request",
                    [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("Content-Length", str(len(THROTTLED_BODY))),
                        ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
                    ],
                )
                return [THROTTLED_BODY]
            return app(environ, start_response)

        return throttled_app

    def _decide(self, operation: str) -> bool:
        with self._lock:
            self._stats.seen[operation] += 1
            if self._operations is not None and operation not in self._operations:
                return False
            if self._count > 0:
                self._count -= 1
                hit = True
            else:
                hit = self._fraction > 0.0 and self._random.random() < self._fraction
            if hit:
                self._stats.throttled[operation] += 1
            return hit


def _discard_body(environ: WSGIEnvironment) -> None:
    """Read the request body we do not answer, so a kept-alive connection stays in step."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    while stream is not None and length > 0:
        chunk = stream.read(min(65536, length))
        if not chunk:
            return
        length -= len(chunk)
