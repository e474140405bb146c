"""A scripted callback receiver on 127.0.0.1 for tests: records and verifies each POST.

The product's receiver (seed 002's, ``pipeline.api.receiver``) always accepts a signed callback;
this one answers with scripted statuses (``[500, 200]`` = fail once, then accept) so retries can be
shown, and checks every request's Standard Webhooks signature with the pipeline's secret.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.adapters import webhooks

_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    verified: bool  # the signature checked out with the secret
    error: str | None  # why it did not

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


class CallbackReceiver:
    """``with CallbackReceiver(secret) as receiver: ... receiver.url ... receiver.received``."""

    def __init__(self, secret: str, statuses: Iterable[int] = ()) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._statuses = deque(statuses)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/callback"

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Block until ``count`` requests arrived (or ``timeout`` seconds passed); return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            webhooks.verify(self.secret, headers, body)
            verified, error = True, None
        except Exception as err:  # any verification failure is recorded, not raised
            verified, error = False, f"{type(err).__name__}: {err}"
        with self._arrived:
            status = self._statuses.popleft() if self._statuses else 200
            self.received.append(Received(path, headers, body, status, verified, error))
            self._arrived.notify_all()
        return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("content-length") or 0), _MAX_BODY)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._record(self.path, headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None  # quiet: the demo prints what it received

        return Handler
