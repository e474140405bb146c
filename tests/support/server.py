"""One scripted HTTP server on 127.0.0.1 for the tests (a thread per request, HTTP/1.0).

``with LocalServer() as server:`` then ``url = server.route("/subs.srt", Reply(500), Reply(200, SRT))``:
each path answers its scripted replies in turn, the last one repeating; a path never routed
answers 404. The query string is not part of the route (``/a?x=1`` is ``/a``).

A reply can also be a :data:`Behaviour`, ``behaviour(writer, index)``, for the answers a
:class:`Reply` cannot give (slow, dripping, endless, lying about its length...). ``index`` counts
the earlier requests on that path. A behaviour that writes nothing closes the connection with no
answer. Long behaviours loop on ``writer.wait(...)``, which returns True as soon as the server
stops, so closing the server never waits on them for more than :data:`STOP_TIMEOUT` seconds.

Every request is recorded (:class:`Received`, in arrival order) before it is answered:
``server.received``, ``server.posts()``, ``server.wait_for(count, timeout)``.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["STOP_TIMEOUT", "Behaviour", "LocalServer", "Received", "Reply", "Writer"]

STOP_TIMEOUT = 2.0  # the most closing the server waits for requests still being answered
_SOCKET_TIMEOUT = 5.0  # a client that stops sending or reading frees its thread after this


@dataclass(frozen=True)
class Reply:
    """A whole answer: the status, the body (its Content-Length is added) and extra headers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request as the server read it: ``path`` keeps its query, header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Writer:
    """What a behaviour answers one request with; the connection closes when the behaviour returns."""

    def __init__(self, handler: BaseHTTPRequestHandler, request: Received, stop: threading.Event) -> None:
        self.request = request
        self._handler = handler
        self._stop = stop

    def reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """A whole answer, as a :class:`Reply` gives it (no body for HEAD)."""
        self.start(status, {**(headers or {}), "Content-Length": str(len(body))})
        if self.request.method != "HEAD":
            self.write(body)

    def start(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """The status line and exactly these headers: with no Content-Length, the body is whatever
        :meth:`write` sends until the behaviour returns."""
        self._handler.send_response(status)
        for name, value in (headers or {}).items():
            self._handler.send_header(name, value)
        self._handler.end_headers()

    def write(self, data: bytes) -> None:
        """Send ``data`` now."""
        self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the server is stopping."""
        return self._stop.wait(seconds)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()


Behaviour = Callable[[Writer, int], None]
_NOT_ROUTED: tuple[Reply | Behaviour, ...] = (Reply(404, b"no such route"),)


class _Handler(BaseHTTPRequestHandler):
    server: _Http
    timeout = _SOCKET_TIMEOUT

    def do_GET(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.owner._answer(self, Received(self.command, self.path, headers, body))

    do_POST = do_PUT = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        return None


class _Http(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # closing is bounded by LocalServer.__exit__ instead

    def __init__(self, owner: LocalServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class LocalServer:
    """The server; ``tls`` (a server-side context) makes it answer https instead of http."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._routes: dict[str, tuple[Reply | Behaviour, ...]] = {}
        self._received: list[Received] = []
        self._hits: dict[str, int] = {}
        self._busy = 0
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._httpd = _Http(self)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=STOP_TIMEOUT)
        with self._changed:
            self._changed.wait_for(lambda: self._busy == 0, timeout=STOP_TIMEOUT)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *replies: Reply | Behaviour) -> str:
        """Answer ``path`` with ``replies`` in turn (the last one repeats); return its URL."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._changed:
            self._routes[path] = replies
            self._hits[path] = 0
        return self.url(path)

    @property
    def received(self) -> list[Received]:
        """Every request so far, in arrival order (a copy)."""
        with self._changed:
            return list(self._received)

    def posts(self) -> list[Received]:
        return [item for item in self.received if item.method == "POST"]

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Block until ``count`` requests arrived or ``timeout`` seconds passed; return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._received) >= count, timeout=timeout)
            return list(self._received)

    def _answer(self, handler: BaseHTTPRequestHandler, request: Received) -> None:
        route = request.path.split("?", 1)[0]
        with self._changed:
            self._received.append(request)
            self._busy += 1
            replies = self._routes.get(route, _NOT_ROUTED)
            index = self._hits.get(route, 0)
            self._hits[route] = index + 1
            self._changed.notify_all()
        answer = replies[min(index, len(replies) - 1)]
        writer = Writer(handler, request, self._stop)
        try:
            # The client hanging up early is what several tests want.
            with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
                if isinstance(answer, Reply):
                    writer.reply(answer.status, answer.body, answer.headers)
                else:
                    answer(writer, index)
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()
