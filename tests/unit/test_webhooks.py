"""Signed callbacks: Standard Webhooks signing/verification and delivery (reliability cases 17, 18, 22).

Delivery runs against real receivers on 127.0.0.1 (the test-only loopback switch is on for
those tests); ``sleep`` is injected to record the backoff instead of waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from pipeline.adapters import webhooks
from pipeline.failures import WebhookSecretUnavailable, WebhookVerificationFailed
from pipeline.models import CallbackDelivery
from tests.support.server import LocalServer, Reply, Writer

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"z" * 32).decode()
BODY = json.dumps({"status": "completed", "task_id": "t-1", "video_id": "v-1"}).encode()


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- signing and verification ------------------------------------------------------------------


def test_signature_is_hmac_over_id_timestamp_body() -> None:
    at = now_utc()
    headers = webhooks.sign(SECRET, "msg_1", at, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["content-type"] == "application/json"
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, b"msg_1." + headers["webhook-timestamp"].encode() + b"." + BODY, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected.digest()).decode()
    # The reference verifier agrees, and so does ours.
    assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)
    assert webhooks.verify(SECRET, headers, BODY) == json.loads(BODY)


def test_verify_accepts_any_header_case() -> None:
    headers = {k.title(): v for k, v in webhooks.sign(SECRET, "msg_1", now_utc(), BODY).items()}
    assert webhooks.verify(SECRET, headers, BODY)["status"] == "completed"


def test_a_non_utc_timestamp_is_signed_as_the_same_instant() -> None:
    """The library would re-label an aware time as UTC (shifting it): we convert instead."""
    at = datetime.now(timezone(timedelta(hours=5)))
    headers = webhooks.sign(SECRET, "msg_1", at, BODY)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert webhooks.verify(SECRET, headers, BODY)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b.replace(b"completed", b"failed")), id="tampered-body"),
        pytest.param(lambda h, b: (h, b + b" "), id="extra-byte"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_2"}, b), id="other-id"),
        pytest.param(
            lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b), id="ts"
        ),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), id="no-sig"),
        pytest.param(lambda h, b: ({**h, "webhook-signature": "garbage"}, b), id="malformed-sig"),
        pytest.param(lambda h, b: ({**h, "webhook-signature": "v1,!!!"}, b), id="bad-base64"),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][3:]}, b), id="no-version"
        ),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": "v2" + h["webhook-signature"][2:]}, b), id="v2"
        ),
        pytest.param(lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), id="ts-not-a-number"),
    ],
)
def test_tampering_fails_verification(
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(webhooks.sign(SECRET, "msg_1", now_utc(), BODY), BODY)
    with pytest.raises(WebhookVerificationFailed):
        webhooks.verify(SECRET, headers, body)


def test_wrong_secret_fails_verification() -> None:
    headers = webhooks.sign(SECRET, "msg_1", now_utc(), BODY)
    with pytest.raises(WebhookVerificationFailed):
        webhooks.verify(OTHER_SECRET, headers, BODY)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-1)])
def test_stale_or_future_timestamp_fails_verification(offset: timedelta) -> None:
    headers = webhooks.sign(SECRET, "msg_1", now_utc() + offset, BODY)
    with pytest.raises(WebhookVerificationFailed, match=r"too (old|new)"):
        webhooks.verify(SECRET, headers, BODY)


def test_body_that_is_not_an_object_fails_verification() -> None:
    headers = webhooks.sign(SECRET, "msg_1", now_utc(), b"[1, 2]")
    with pytest.raises(WebhookVerificationFailed, match="object"):
        webhooks.verify(SECRET, headers, b"[1, 2]")


@pytest.mark.parametrize(
    ("secret", "webhook_id", "at", "body"),
    [
        (SECRET, "msg_1", datetime(2026, 1, 1), BODY),
        (SECRET, "msg_1", now_utc(), b"\xff\xfe"),
        (SECRET, "", now_utc(), BODY),
        (SECRET, "msg\n1", now_utc(), BODY),
        ("not-a-secret", "msg_1", now_utc(), BODY),
        ("whsec_", "msg_1", now_utc(), BODY),
        ("whsec_***", "msg_1", now_utc(), BODY),
    ],
)
def test_sign_refuses_bad_arguments(secret: str, webhook_id: str, at: datetime, body: bytes) -> None:
    with pytest.raises(ValueError) as err:
        webhooks.sign(secret, webhook_id, at, body)
    assert "***" not in str(err.value)


# --- secrets -----------------------------------------------------------------------------------


def test_new_webhook_secret() -> None:
    first, second = webhooks.new_webhook_secret(), webhooks.new_webhook_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) >= 24
    assert webhooks.verify(first, webhooks.sign(first, "msg_1", now_utc(), BODY), BODY)


@pytest.fixture
def no_secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("VIDP_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("VIDP_WEBHOOK_SECRET_ARN", raising=False)
    webhooks._secret_cache.clear()
    yield
    webhooks._secret_cache.clear()


class FakeSecretsManager:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.calls.append(SecretId)
        return {"SecretString": self.value}


def test_secret_from_the_environment(no_secret_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDP_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("VIDP_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x")
    monkeypatch.setattr(webhooks, "_secretsmanager_client", lambda: pytest.fail("no AWS call expected"))
    assert webhooks.webhook_secret() == SECRET


def test_secret_from_secrets_manager_fetched_once(
    no_secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSecretsManager(SECRET)
    monkeypatch.setattr(webhooks, "_secretsmanager_client", lambda: fake)
    monkeypatch.setenv("VIDP_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:vidp")
    assert webhooks.webhook_secret() == SECRET
    assert webhooks.webhook_secret() == SECRET
    assert fake.calls == ["arn:aws:secretsmanager:eu-west-1:1:secret:vidp"]


def test_secret_from_a_real_secrets_manager_api(no_secret_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    webhooks._secretsmanager_client.cache_clear()
    try:
        with moto.mock_aws():
            arn = boto3.client("secretsmanager").create_secret(Name="vidp/webhook", SecretString=SECRET)[
                "ARN"
            ]
            monkeypatch.setenv("VIDP_WEBHOOK_SECRET_ARN", arn)
            assert webhooks.webhook_secret() == SECRET
    finally:
        webhooks._secretsmanager_client.cache_clear()


def test_no_secret_configured(no_secret_env: None) -> None:
    with pytest.raises(WebhookSecretUnavailable, match="VIDP_WEBHOOK_SECRET"):
        webhooks.webhook_secret()


@pytest.mark.parametrize(
    "bad",
    ["plain-password-123", "whsec_" + base64.b64encode(b"short").decode(), "whsec_not*base64*at*all"],
)
def test_malformed_secret_refused_without_quoting_it(
    bad: str, no_secret_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDP_WEBHOOK_SECRET", bad)
    with pytest.raises(WebhookSecretUnavailable) as err:
        webhooks.webhook_secret()
    assert bad not in str(err.value)
    assert bad.removeprefix("whsec_") not in str(err.value)


def test_secrets_manager_error_is_a_clear_error(no_secret_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    class Denied:
        def get_secret_value(self, SecretId: str) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    monkeypatch.setattr(webhooks, "_secretsmanager_client", Denied)
    monkeypatch.setenv("VIDP_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:vidp")
    with pytest.raises(WebhookSecretUnavailable, match="AccessDeniedException"):
        webhooks.webhook_secret()


# --- a scripted receiver -----------------------------------------------------------------------


def replies(*codes: int, headers: dict[str, str] | None = None) -> tuple[Reply, ...]:
    """The scripted statuses in order (the last one repeats), each with ``headers``."""
    return tuple(Reply(code, headers=headers or {}) for code in codes)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    monkeypatch.setenv("VIDP_UNSAFE_ALLOW_LOOPBACK", "1")
    with LocalServer() as server:
        yield server


class Clock:
    """An injectable clock that moves 7 s every time it's read (distinct timestamps per attempt)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=7)
        return self.at


def deliver(url: str, **kwargs: Any) -> tuple[CallbackDelivery, list[float]]:
    delays: list[float] = []
    kwargs.setdefault("now", Clock())
    result = webhooks.deliver(url, BODY, secret=SECRET, webhook_id="msg_job42", sleep=delays.append, **kwargs)
    return result, delays


# --- delivery ----------------------------------------------------------------------------------


def test_500_then_200_is_delivered_with_the_same_id(receiver: LocalServer) -> None:
    result, delays = deliver(receiver.route("/callback", *replies(500, 200)), base_delay=0.5)
    assert result == CallbackDelivery(status="delivered", webhook_id="msg_job42", attempts=2, http_status=200)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_job42"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert first.body == second.body == BODY
    assert first.headers["content-type"] == "application/json"
    for seen in (first, second):  # each attempt is signed over its own id.timestamp.body
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        mac = hmac.new(key, f"msg_job42.{seen.headers['webhook-timestamp']}.".encode() + seen.body, "sha256")
        assert seen.headers["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()
    assert len(delays) == 1
    assert 0.0 <= delays[0] <= 0.5  # full jitter under base_delay * 2**0


def test_signature_of_a_delivered_callback_verifies(receiver: LocalServer) -> None:
    result, _ = deliver(receiver.route("/callback", Reply(204)), now=now_utc)
    assert result.status == "delivered"
    seen = receiver.received[0]
    assert webhooks.verify(SECRET, seen.headers, seen.body) == json.loads(BODY)


def test_429_with_retry_after_waits_as_asked(receiver: LocalServer) -> None:
    url = receiver.route("/callback", *replies(429, 200, headers={"Retry-After": "1"}))
    result, delays = deliver(url, base_delay=10.0)
    assert (result.status, result.attempts) == ("delivered", 2)
    assert delays == [1.0]


def test_retry_after_as_an_http_date(receiver: LocalServer) -> None:
    fixed = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    url = receiver.route(
        "/callback", *replies(503, 200, headers={"Retry-After": "Sun, 01 Mar 2026 12:00:04 GMT"})
    )
    result, delays = deliver(url, now=lambda: fixed)
    assert result.status == "delivered"
    assert delays == [4.0]


def test_retry_after_is_capped_at_max_delay(receiver: LocalServer) -> None:
    url = receiver.route("/callback", *replies(503, 200, headers={"Retry-After": "86400"}))
    result, delays = deliver(url, max_delay=3.0)
    assert result.status == "delivered"
    assert delays == [3.0]


def test_410_gone_stops_at_once(receiver: LocalServer) -> None:
    result, delays = deliver(receiver.route("/callback", Reply(410)))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, 410)
    assert delays == []
    assert len(receiver.received) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_other_4xx_stop_at_once(status: int, receiver: LocalServer) -> None:
    result, delays = deliver(receiver.route("/callback", Reply(status)))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, status)
    assert delays == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed(status: int, receiver: LocalServer) -> None:
    with LocalServer() as elsewhere:
        stolen = elsewhere.route("/stolen", Reply(200))
        result, delays = deliver(receiver.route("/callback", Reply(status, headers={"Location": stolen})))
    assert (result.status, result.attempts, result.http_status) == ("failed", 1, status)
    assert result.error is not None
    assert "redirects are not followed" in result.error
    assert elsewhere.received == []
    assert delays == []


def test_always_500_fails_after_max_attempts_without_raising(receiver: LocalServer) -> None:
    url = receiver.route("/callback", Reply(500))
    result, delays = deliver(url, max_attempts=4, base_delay=1.0, max_delay=2.5)
    assert (result.status, result.attempts, result.http_status) == ("failed", 4, 500)
    assert result.error == "HTTP 500 after 4 attempts"
    assert len(receiver.received) == 4
    assert len({seen.headers["webhook-id"] for seen in receiver.received}) == 1
    assert len(delays) == 3  # no sleep after the last attempt
    for attempt, delay in enumerate(delays, start=1):
        assert 0.0 <= delay <= min(2.5, 1.0 * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/hook",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
    ],
)
def test_refused_url_fails_without_any_attempt(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDP_UNSAFE_ALLOW_LOOPBACK", "1")  # even so

    def no_connect(*args: Any, **kwargs: Any) -> socket.socket:
        raise AssertionError("connected")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    result, delays = deliver(url)
    assert (result.status, result.attempts, result.http_status) == ("failed", 0, None)
    assert result.error is not None
    assert "refused" in result.error
    assert delays == []


def test_timeout_is_retried(receiver: LocalServer) -> None:
    def slow(writer: Writer, index: int) -> None:
        writer.wait(2.0)  # past the read timeout; ends early at teardown
        writer.reply(200)

    url = receiver.route("/callback", slow, Reply(200))
    started = time.monotonic()
    result, delays = deliver(url, read_timeout=0.3, base_delay=0.01)
    assert (result.status, result.attempts, result.http_status) == ("delivered", 2, 200)
    assert len(delays) == 1
    assert time.monotonic() - started < 2.0


def test_unreachable_receiver_is_retried_then_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDP_UNSAFE_ALLOW_LOOPBACK", "1")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result, delays = deliver(f"http://127.0.0.1:{port}/hook", max_attempts=3)
    assert (result.status, result.attempts, result.http_status) == ("failed", 3, None)
    assert result.error is not None
    assert "could not connect" in result.error
    assert len(delays) == 2


def test_unsignable_callback_fails_without_raising(receiver: LocalServer) -> None:
    result = webhooks.deliver(
        receiver.route("/callback", Reply(200)),
        BODY,
        secret="not-a-secret",  # noqa: S106 - a malformed secret on purpose
        webhook_id="msg_1",
        sleep=lambda _: None,
    )
    assert (result.status, result.attempts) == ("failed", 0)
    assert receiver.received == []


def test_secret_and_signatures_never_logged(receiver: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result, _ = deliver(receiver.route("/hook", *replies(500, 410)) + "?token=abc123")
    assert result.status == "failed"
    signatures = [seen.headers["webhook-signature"].split(",", 1)[1] for seen in receiver.received]
    assert caplog.records
    for secret_text in [SECRET, SECRET.removeprefix("whsec_"), "abc123", *signatures]:
        assert secret_text not in caplog.text
    assert result.error is not None
    assert "abc123" not in result.error
