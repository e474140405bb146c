"""The scripted test server itself, as a test sees it through a real HTTP client."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.server import LocalServer, Received, Reply, Writer


def test_each_path_answers_its_replies_in_turn_and_the_last_repeats() -> None:
    with LocalServer() as server:
        url = server.route("/subs.srt", Reply(500, b"oops"), Reply(200, b"subs", {"X-Kind": "srt"}))
        answers = [httpx.get(url + "?try=1"), httpx.get(url), httpx.get(url)]
        missing = httpx.get(server.url("/elsewhere"))
    assert [(a.status_code, a.content) for a in answers] == [(500, b"oops"), (200, b"subs"), (200, b"subs")]
    assert answers[2].headers["x-kind"] == "srt"
    assert (missing.status_code, missing.content) == (404, b"no such route")
    paths = [item.path for item in server.received]
    assert paths == ["/subs.srt?try=1", "/subs.srt", "/subs.srt", "/elsewhere"]


def test_get_post_put_and_head_are_recorded_as_sent() -> None:
    with LocalServer() as server:
        url = server.route("/thing", Reply(201, b"made"))
        httpx.post(url, content=b'{"a":1}', headers={"X-Token": "t1"})
        httpx.put(url, content=b"put body")
        head = httpx.head(url)
        httpx.get(url)
    assert (head.status_code, head.content, head.headers["content-length"]) == (201, b"", "4")
    assert [(item.method, item.body) for item in server.received] == [
        ("POST", b'{"a":1}'), ("PUT", b"put body"), ("HEAD", b""), ("GET", b""),
    ]  # fmt: skip
    assert server.received[0].headers["x-token"] == "t1"
    assert server.posts() == server.received[:1]


def test_a_behaviour_writes_its_own_answer_or_none() -> None:
    def unframed(writer: Writer, index: int) -> None:
        writer.start(200, {"Content-Type": "text/plain"})
        writer.write(f"part {index} of {writer.request.path}".encode())

    with LocalServer() as server:
        url = server.route("/raw", unframed)
        first, second = httpx.get(url), httpx.get(url)
        hang_up = server.route("/hang-up", lambda writer, index: None)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(hang_up)
    assert (first.content, second.content) == (b"part 0 of /raw", b"part 1 of /raw")
    assert "content-length" not in first.headers


def test_wait_for_returns_what_arrived_by_the_deadline() -> None:
    with LocalServer() as server:
        url = server.route("/hook", Reply(204))
        senders = [threading.Thread(target=lambda: httpx.post(url, content=b"x")) for _ in range(2)]
        for sender in senders:
            sender.start()
        arrived = server.wait_for(2, timeout=10)
        for sender in senders:
            sender.join(timeout=10)
        assert server.wait_for(3, timeout=0.2) == arrived
    assert arrived == [Received("POST", "/hook", arrived[0].headers, b"x")] * 2


def test_closing_stops_a_behaviour_still_dripping() -> None:
    ended: list[str] = []

    def drip(writer: Writer, _: int) -> None:
        writer.start(200)
        while not writer.wait(0.05):
            writer.write(b"x")
        ended.append("stopped")

    with httpx.Client() as client:
        with LocalServer() as server:
            request = client.build_request("GET", server.route("/drip", drip))
            response = client.send(request, stream=True)
            chunks = response.iter_raw(1)  # kept: dropping it would hang up
            assert next(chunks) == b"x"
        # Closed while the client still holds the connection: the behaviour saw the stop and ended.
        assert ended == ["stopped"]
        response.close()
