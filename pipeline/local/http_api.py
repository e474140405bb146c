"""The HTTP API on 127.0.0.1: the very resolvers API Gateway invokes in AWS, served over HTTP.

``ApiServer`` turns each HTTP request into the API Gateway (REST, proxy) event a Lambda would
get, hands it to the resolver that owns the path, and writes the resolver's proxy response back.
No second framework and no second copy of a route: only this adapter is local.

- A resolver (``APIGatewayRestResolver``) keeps the current event on itself, so one instance
  cannot serve two requests at once: each server thread builds its own from the factory.
- Bodies are passed as API Gateway passes them with the API's binary media types: JSON and text
  as text, anything else (multipart forms, video) base64-encoded. Locally a body may be up to
  ``max_body_bytes`` (API Gateway stops at 10 MB; the README says so).
- Like the local AWS, it binds 127.0.0.1 only and serves no other site's page: a request with a
  foreign ``Host`` (DNS rebinding), or sent by another site's page (``Origin`` /
  ``Sec-Fetch-Site``), is refused with 403. Pages this server serves (Swagger UI) may call it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.local.guard import is_loopback
from pipeline.local.resources import ACCOUNT

DEFAULT_MAX_BODY_BYTES = 2 * 1024**3
_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Mount:
    """The resolver serving every path under one of ``prefixes``."""

    prefixes: tuple[str, ...]
    factory: Callable[[], APIGatewayRestResolver]


class _Context:
    """What a handler may read of the Lambda context locally."""

    aws_request_id = "local"
    function_name = "vidp-local-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:vidp-local-api"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000  # API Gateway's integration timeout


def proxy_event(
    method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, *, source_ip: str
) -> dict[str, Any]:
    """The API Gateway REST proxy event of one HTTP request (``target``: path and query)."""
    parts = urlsplit(target)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qs(parts.query, keep_blank_values=True)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    as_text = not body or content_type.lower().startswith(_TEXT_TYPES)
    text: str | None
    try:
        text = body.decode() if as_text else None
    except UnicodeDecodeError:
        text = None
    encoded = text is None
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": parts.path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": ACCOUNT,
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": single.get("User-Agent", "")},
        },
        "body": base64.b64encode(body).decode() if encoded else (text or None),
        "isBase64Encoded": encoded,
    }


def response_parts(response: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """A proxy response as HTTP: status, headers (Content-Length recomputed) and body bytes."""
    raw = response.get("body") or ""
    payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
    headers: list[tuple[str, str]] = []
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, value) for value in values)
    written = {name.lower() for name, _ in headers}
    headers.extend(
        (name, value)
        for name, value in (response.get("headers") or {}).items()
        if name.lower() not in written
    )
    headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
    headers.append(("Content-Length", str(len(payload))))
    return int(response.get("statusCode", 500)), headers, payload


def page_refusal(headers: Mapping[str, str], own_origins: set[str]) -> str | None:
    """Why a request is refused (another site's page sent it, or the Host is foreign), or None."""
    lowered = {name.lower(): value for name, value in headers.items()}
    host = lowered.get("host")
    if host is not None and not is_loopback(host):
        return "this server answers only to localhost or 127.0.0.1"
    origin = lowered.get("origin")
    if origin is not None and origin not in own_origins:
        return "requests from other sites' pages are not served"
    if lowered.get("sec-fetch-site", "none") not in {"none", "same-origin"}:
        return "requests from other sites' pages are not served"
    return None


class ApiServer:
    """``with ApiServer([Mount(("/api",), make_app)], port=8000) as api: api.url``."""

    def __init__(
        self, mounts: Sequence[Mount], *, port: int = 0, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.mounts = tuple(mounts)
        self.max_body_bytes = max_body_bytes
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="api-server")

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def own_origins(self) -> set[str]:
        return {f"http://{host}:{self.port}" for host in ("127.0.0.1", "localhost")}

    def refusal(self, headers: Message) -> tuple[int, str, str] | None:
        """Why a request is not served (status, code, message), or None. Header names are read
        case-insensitively (``Message``): a lowercase Content-Length is the same limit."""
        refused = page_refusal(dict(headers.items()), self.own_origins())
        if refused:
            return 403, "FORBIDDEN", refused
        if headers.get("Transfer-Encoding") is not None:
            return 411, "LENGTH_REQUIRED", "send a Content-Length (chunked bodies are not accepted)"
        if len(headers.get_all("Content-Length") or []) > 1:
            return 400, "INVALID_REQUEST", "more than one Content-Length"
        length = str(headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            return 400, "INVALID_REQUEST", "the Content-Length is not a number"
        if int(length) > self.max_body_bytes:
            return (
                413,
                "PAYLOAD_TOO_LARGE",
                f"the body is {length} bytes, over this server's {self.max_body_bytes}: "
                "upload through POST /api/uploads instead",
            )
        return None

    def resolver_for(self, path: str) -> APIGatewayRestResolver | None:
        """This thread's resolver of the mount owning ``path`` (built on its first request)."""
        for index, mount in enumerate(self.mounts):
            if any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in mount.prefixes):
                built: dict[int, APIGatewayRestResolver] = self._local.__dict__.setdefault("apps", {})
                if index not in built:
                    built[index] = mount.factory()
                return built[index]
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

            def _serve(self) -> None:
                headers = list(self.headers.items())
                refused = server.refusal(self.headers)
                if refused is not None:
                    self._answer(*refused)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                app = server.resolver_for(path)
                if app is None:
                    self._answer(404, "NOT_FOUND", f"no route {self.command} {path}")
                    return
                event = proxy_event(self.command, self.path, headers, body, source_ip=self.client_address[0])
                self._write(app.resolve(event, cast(LambdaContext, _Context())))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def _write(self, response: Mapping[str, Any]) -> None:
                status, headers, payload = response_parts(response)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _answer(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": {"code": code, "message": message}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                return None  # request lines would carry presigned query strings: keep them out

        return Handler


def product_mounts() -> list[Mount]:
    """The product's HTTP APIs as ``vidp local up`` serves them: the videos API under ``/api``, and
    seed 002's callback receiver under ``/callback`` and ``/test`` (two APIs in AWS, one port here)."""
    from pipeline.api.receiver import make_receiver
    from pipeline.api.videos import make_app

    return [Mount(("/api",), make_app), Mount(("/callback", "/test"), make_receiver)]
