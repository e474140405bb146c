"""Signed callbacks: Standard Webhooks signing, verification and delivery with retries.

A callback is a JSON POST carrying three headers: ``webhook-id`` (the same on every attempt of
one delivery, so the receiver can dedupe), ``webhook-timestamp`` (Unix seconds, fresh on every
attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, keyed
with the base64-decoded part of a ``whsec_<base64>`` secret). Signing and verifying use the
``standardwebhooks`` package.

:func:`deliver` posts through :func:`pipeline.adapters.http.post`, so the SSRF guard applies to
callback URLs, and it never raises for a delivery problem: a failing receiver must never fail a
job. It returns a :class:`~pipeline.models.CallbackDelivery` to record on the job instead.

Secrets and signatures are never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from pipeline.adapters import aws_clients, http
from pipeline.failures import (
    HttpUnavailable,
    UnsafeUrl,
    VidpError,
    WebhookSecretUnavailable,
    WebhookVerificationFailed,
)
from pipeline.models import CallbackDelivery

__all__ = [
    "SECRET_ARN_ENV",
    "SECRET_ENV",
    "deliver",
    "new_webhook_secret",
    "sign",
    "verify",
    "webhook_secret",
]

log = logging.getLogger(__name__)

SECRET_ENV = "VIDP_WEBHOOK_SECRET"  # noqa: S105 - the variable name, not a secret
SECRET_ARN_ENV = "VIDP_WEBHOOK_SECRET_ARN"  # noqa: S105 - the variable name, not a secret
_PREFIX = "whsec_"
_MIN_SECRET_BYTES = 24  # the Standard Webhooks spec asks for 24 to 64 random bytes
_NEW_SECRET_BYTES = 32


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- signing -----------------------------------------------------------------------------------


def _webhook(secret: str) -> Webhook:
    """The library's signer, with a clear error for a malformed secret (never quoting it)."""
    try:
        _secret_key(secret)
    except (ValueError, binascii.Error):
        raise ValueError("the webhook secret is not a valid whsec_<base64> secret") from None
    return Webhook(secret)


def _secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ValueError if it is not one."""
    if not secret.startswith(_PREFIX):
        raise ValueError("missing whsec_ prefix")
    encoded = secret[len(_PREFIX) :]
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    if not key:
        raise ValueError("empty key")
    return key


def _check_webhook_id(webhook_id: str) -> None:
    if not webhook_id or len(webhook_id) > 256 or not webhook_id.isascii() or not webhook_id.isprintable():
        raise ValueError("webhook_id must be 1-256 printable ASCII characters")
    if " " in webhook_id:
        raise ValueError("webhook_id must not contain spaces")


def sign(secret: str, webhook_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The headers of one signed attempt: webhook-id, webhook-timestamp, webhook-signature, content-type.

    ``timestamp`` must be timezone-aware (the library would read a naive one as UTC, and an
    aware non-UTC one wrongly); ``body`` must be UTF-8 (it is JSON).
    """
    if timestamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    _check_webhook_id(webhook_id)
    text = body.decode("utf-8")
    at = timestamp.astimezone(UTC)
    signature = _webhook(secret).sign(msg_id=webhook_id, timestamp=at, data=text)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Check a received callback (for receivers and tests) and return its JSON object.

    Raises :class:`WebhookVerificationFailed` on a missing header, a bad signature, a
    timestamp more than 5 minutes away from now, or a body that is not a JSON object;
    ``ValueError`` if ``secret`` itself is malformed.
    """
    webhook = _webhook(secret)
    try:
        payload = webhook.verify(body, {name.lower(): value for name, value in headers.items()})
    except WebhookVerificationError as exc:
        raise WebhookVerificationFailed(f"webhook verification failed: {exc}") from None
    except (ValueError, TypeError):  # a malformed signature header, non-UTF-8 body, bad JSON
        raise WebhookVerificationFailed("webhook verification failed: malformed headers or body") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationFailed("webhook verification failed: the body is not a JSON object")
    return payload


# --- secrets -----------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    """A fresh random secret in the Standard Webhooks format: ``whsec_`` + base64 of 32 bytes."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(_NEW_SECRET_BYTES)).decode("ascii")


_secret_cache: dict[str, str] = {}
_secret_lock = threading.Lock()


@lru_cache(maxsize=1)
def _secretsmanager_client() -> Any:
    """Built on first use (no module-level side effects); boto3 reads region/endpoint itself."""
    return aws_clients.client("secretsmanager")


def webhook_secret() -> str:
    """The signing secret: ``VIDP_WEBHOOK_SECRET`` if set, else the Secrets Manager secret named
    by ``VIDP_WEBHOOK_SECRET_ARN`` (fetched once per ARN, then cached for the process).

    The secret must be ``whsec_<base64>`` of at least 24 bytes. Raises
    :class:`WebhookSecretUnavailable` (never quoting the secret) otherwise.
    """
    direct = os.environ.get(SECRET_ENV, "").strip()
    if direct:
        return _validated(direct, SECRET_ENV)
    arn = os.environ.get(SECRET_ARN_ENV, "").strip()
    if not arn:
        raise WebhookSecretUnavailable(f"no webhook secret: set {SECRET_ENV} or {SECRET_ARN_ENV}")
    with _secret_lock:
        cached = _secret_cache.get(arn)
        if cached is None:
            cached = _validated(_fetch_secret(arn), f"the secret named by {SECRET_ARN_ENV}")
            _secret_cache[arn] = cached
        return cached


def _fetch_secret(arn: str) -> str:
    try:
        answer = _secretsmanager_client().get_secret_value(SecretId=arn)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise WebhookSecretUnavailable(
            f"could not read the webhook secret from Secrets Manager: {code}"
        ) from None
    except BotoCoreError as exc:
        raise WebhookSecretUnavailable(
            f"could not read the webhook secret from Secrets Manager: {type(exc).__name__}"
        ) from None
    value = answer.get("SecretString")
    if not isinstance(value, str):
        raise WebhookSecretUnavailable("the webhook secret in Secrets Manager has no SecretString")
    return value.strip()


def _validated(secret: str, source: str) -> str:
    try:
        key = _secret_key(secret)
    except (ValueError, binascii.Error):
        raise WebhookSecretUnavailable(f"{source} is not a whsec_<base64> secret") from None
    if len(key) < _MIN_SECRET_BYTES:
        raise WebhookSecretUnavailable(
            f"{source} is too short: at least {_MIN_SECRET_BYTES} bytes are needed"
        )
    return secret


# --- delivery ----------------------------------------------------------------------------------


def deliver(
    url: str,
    body: bytes,
    *,
    secret: str,
    webhook_id: str,
    max_attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utc_now,
    connect_timeout: float = 5.0,
    read_timeout: float = 20.0,
) -> CallbackDelivery:
    """POST a signed callback, retrying transient failures; never raises for delivery problems.

    - 2xx -> delivered.
    - 5xx, 429, or :class:`HttpUnavailable` (timeout, refused, reset, DNS) -> retried after a
      delay: ``Retry-After`` (seconds or HTTP date) when the receiver sent one, else full jitter
      ``uniform(0, min(max_delay, base_delay * 2**(attempt-1)))``; always capped at
      ``max_delay``. Same ``webhook-id`` each time, fresh timestamp and signature.
    - 410 Gone -> failed, stop; other 4xx -> failed, stop; 3xx -> failed, not followed.
    - the SSRF guard refuses the URL -> failed, ``attempts`` counts only requests really sent.

    Worst case duration: ``max_attempts * (connect_timeout + 2 * read_timeout)`` plus
    ``(max_attempts - 1) * max_delay`` of sleeping: size the caller's timeout for it.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempts = 0
    try:
        status: int | None = None
        error = "not attempted"
        for attempt in range(1, max_attempts + 1):
            try:
                headers = sign(secret, webhook_id, now(), body)
            except ValueError as exc:  # bad secret, webhook id or non-UTF-8 body: can never be sent
                return _failed(webhook_id, attempts, None, f"could not sign the callback: {exc}")
            retry_after: float | None = None
            try:
                response = http.post(
                    url,
                    body=body,
                    headers=headers,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                )
            except UnsafeUrl as exc:
                return _failed(webhook_id, attempts, None, str(exc))
            except HttpUnavailable as exc:
                attempts += 1
                status, error = None, str(exc)
            else:
                attempts += 1
                status = response.status
                final = _final_outcome(webhook_id, attempts, status)
                if final is not None:
                    return final
                error = f"HTTP {status}"
                retry_after = _retry_after(response.headers.get("retry-after"), now)
            if attempt < max_attempts:
                delay = _delay(attempt, base_delay, max_delay, retry_after)
                log.info(
                    "callback attempt failed, retrying",
                    extra={"webhook_id": webhook_id, "attempt": attempt, "delay": round(delay, 3)},
                )
                sleep(delay)
        return _failed(webhook_id, attempts, status, f"{error} after {attempts} attempts")
    except Exception as exc:  # a bug must not fail the job either; its class is enough
        log.exception("callback delivery crashed", extra={"webhook_id": webhook_id})
        message = str(exc) if isinstance(exc, VidpError) else type(exc).__name__
        return _failed(webhook_id, attempts, None, f"delivery error: {message}")


def _final_outcome(webhook_id: str, attempts: int, status: int) -> CallbackDelivery | None:
    """The delivery's end for this status, or None if it is worth retrying (5xx, 429)."""
    if 200 <= status < 300:
        return CallbackDelivery(
            status="delivered", webhook_id=webhook_id, attempts=attempts, http_status=status
        )
    if status == 429 or status >= 500:
        return None
    if 300 <= status < 400:
        return _failed(webhook_id, attempts, status, f"HTTP {status}: redirects are not followed")
    if status == 410:
        return _failed(webhook_id, attempts, status, "HTTP 410 Gone: the receiver asked to stop")
    return _failed(webhook_id, attempts, status, f"HTTP {status}: rejected by the receiver")


def _failed(webhook_id: str, attempts: int, status: int | None, error: str) -> CallbackDelivery:
    log.warning(
        "callback delivery failed",
        extra={"webhook_id": webhook_id, "attempts": attempts, "http_status": status, "error": error},
    )
    return CallbackDelivery(
        status="failed", webhook_id=webhook_id, attempts=attempts, http_status=status, error=error[:500]
    )


_random = secrets.SystemRandom()


def _delay(attempt: int, base_delay: float, max_delay: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, max_delay)
    ceiling = min(max_delay, base_delay * 2.0 ** min(attempt - 1, 60))
    return _random.uniform(0.0, ceiling)


def _retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """``Retry-After`` in seconds from now (delta-seconds or an HTTP date), None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 10**6))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())
