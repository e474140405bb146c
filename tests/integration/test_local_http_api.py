"""The local HTTP adapter itself: what it refuses before a resolver sees the request, read the way
HTTP means it (header names in any case), through raw sockets on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from pipeline.api import errors
from pipeline.local.http_api import ApiServer, Mount


def tiny_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()
    errors.install(app)

    @app.post("/api/echo")
    def echo() -> dict[str, int]:
        return {"bytes": len(app.current_event.decoded_body or "")}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with ApiServer([Mount(("/api",), tiny_app)], max_body_bytes=10) as running:
        yield running


def raw(server: ApiServer, request: bytes) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post(headers: str, body: bytes) -> bytes:
    return f"POST /api/echo HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}connection: close\r\n\r\n".encode() + body


def test_a_small_body_reaches_the_resolver(server: ApiServer) -> None:
    assert raw(server, post("content-type: text/plain\r\ncontent-length: 5\r\n", b"hello")) == (
        200,
        {"bytes": 5},
    )


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ("content-length: 100\r\n", 413, "PAYLOAD_TOO_LARGE"),
        ("CONTENT-LENGTH: 100\r\n", 413, "PAYLOAD_TOO_LARGE"),
        ("transfer-encoding: chunked\r\n", 411, "LENGTH_REQUIRED"),
        ("content-length: 5\r\ncontent-length: 50\r\n", 400, "INVALID_REQUEST"),
        ("content-length: five\r\n", 400, "INVALID_REQUEST"),
        ("origin: https://evil.example\r\ncontent-length: 5\r\n", 403, "FORBIDDEN"),
    ],
)
def test_what_the_adapter_refuses_whatever_the_case_of_the_header(
    server: ApiServer, headers: str, status: int, code: str
) -> None:
    got, body = raw(server, post(headers, b"x" * 100))
    assert (got, body["error"]["code"]) == (status, code), body
