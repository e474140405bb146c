"""What can fail, and what a failure is called: error classes -> stable codes -> retryable.

The exception class name is the Step Functions error name that Retry and Catch match
(a Lambda handler that raises ``InvalidInput`` fails its state with error ``InvalidInput``, the
Fargate task reports its class name through its token), so each class is named for what the
state machine must do with it, and ``code`` is the stable error code recorded on the job and
sent in the failure callback.

``retryable`` says that trying again later can succeed. The definition's Retry lists agree:
every retryable error is retried by the states that can raise it, and no other error of ours is
retried anywhere (``tests/unit/test_failures.py`` checks ``pipeline.asl.json``), except the
errors in ``RETRIED_INSIDE_STEPS``, which never reach Step Functions.

The functions below turn what Step Functions reports (an error name and a Cause) into the code
and the one line a failed job records: MarkFailed, the CLI and the timeline use them alike.
"""

from __future__ import annotations

import json
from functools import cache

# Stable codes that are not the code of one error class.
INTERNAL_ERROR = "INTERNAL_ERROR"
"""A bug or an error nobody named: the failure's class is not one of ours."""
INVALID_CONFIG = "INVALID_CONFIG"
"""The Fargate task's configuration (its environment) can never work."""
REPORT_FAILED = "REPORT_FAILED"
"""The Fargate task finished but could not report it to Step Functions."""
TIMEOUT = "TIMEOUT"
"""A state ran past its TimeoutSeconds or missed its heartbeat."""
ABORTED = "ABORTED"
"""The execution was stopped (StopExecution, or the local AWS stopped with it in flight)."""
TIMED_OUT = "TIMED_OUT"
"""The execution ran past its own TimeoutSeconds."""


class VidpError(Exception):
    """Base of every error the pipeline raises on purpose. ``str(err)`` is one line."""

    code = INTERNAL_ERROR
    retryable = False

    def __init__(self, message: str) -> None:
        # One line, bounded: it ends up in a job record, a callback and a terminal.
        one_line = " ".join(message.split())
        super().__init__(one_line[:500])

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(VidpError):
    """The request or its inputs can never succeed: never retried."""

    code = "INVALID_INPUT"


class ObjectNotFound(InvalidInput):
    """An S3 object (or bucket) a job reads does not exist: retrying cannot make it appear."""


class JobConflict(InvalidInput):
    """A job id already belongs to another request: the caller must name this job differently."""

    code = "JOB_CONFLICT"


class InvalidMedia(InvalidInput):
    """The video is unreadable, truncated, encrypted, not a video, or over a limit."""

    code = "INVALID_MEDIA"


class InvalidSubtitles(InvalidInput):
    """The subtitle file is not usable SRT (empty, binary, a playlist, too large...)."""

    code = "INVALID_SUBTITLES"


class InvalidStyle(InvalidInput):
    """A subtitle style value is outside its strict pattern or range."""

    code = "INVALID_STYLE"


class TranscodeFailed(VidpError):
    """ffmpeg failed for a reason that may not recur (resources, a crash): retryable."""

    code = "TRANSCODE_FAILED"
    retryable = True


class TranscodeTimeout(TranscodeFailed):
    """ffmpeg ran past its time limit and was killed."""

    code = "TRANSCODE_TIMEOUT"


class StorageUnavailable(VidpError):
    """S3 was throttling, failing (5xx) or unreachable: retrying later can succeed."""

    code = "STORAGE_UNAVAILABLE"
    retryable = True


class ObjectTooLarge(VidpError):
    """An S3 object is larger than its reader's cap (the reader says what that means for the job)."""

    code = "OBJECT_TOO_LARGE"

    def __init__(self, message: str, *, size: int | None) -> None:
        super().__init__(message)
        self.size = size


class StorageFailed(VidpError):
    """S3 refused the request for a reason retrying won't fix (access denied, no such output bucket)."""

    code = "STORAGE_FAILED"


class TaskStopped(VidpError):
    """ECS stopped the task (SIGTERM) or someone pressed Ctrl-C: the job may be retried."""

    code = "TASK_STOPPED"
    retryable = True


class SubtitleFetchFailed(VidpError):
    """The subtitle URL could not be fetched now (5xx, 429, timeout, refused): retrying can succeed."""

    code = "SUBTITLE_FETCH_FAILED"
    retryable = True


class UnsafeUrl(InvalidInput):
    """The SSRF guard refused a URL (scheme, credentials, or an address that is not public)."""

    code = "UNSAFE_URL"


class ResponseTooLarge(VidpError):
    """An HTTP response body went past the caller's byte cap while streaming (the caller decides)."""

    code = "RESPONSE_TOO_LARGE"


class HttpUnavailable(VidpError):
    """DNS failure, connect/read timeout, refused or reset connection, TLS failure: retryable."""

    code = "HTTP_UNAVAILABLE"
    retryable = True


class WebhookVerificationFailed(VidpError):
    """A received webhook has a missing/bad signature or a stale timestamp."""

    code = "WEBHOOK_VERIFICATION_FAILED"


class WebhookSecretUnavailable(VidpError):
    """No usable webhook signing secret (not configured, malformed, or Secrets Manager failed)."""

    code = "WEBHOOK_SECRET_UNAVAILABLE"


RETRIED_INSIDE_STEPS = frozenset({HttpUnavailable.__name__})
"""Retryable errors a step handles itself: FetchSubtitles raises SubtitleFetchFailed for an
unreachable subtitle URL, the webhook delivery retries an unreachable receiver."""

TIMEOUT_ERRORS = frozenset({"States.Timeout", "States.HeartbeatTimeout", "Sandbox.Timedout"})
"""Step Functions' own timeouts, and a Lambda killed at its timeout: code ``TIMEOUT``."""

_CAUSE_KEYS = ("errorMessage", "StoppedReason")
_MAX_MESSAGE = 500
_MAX_FOREIGN_MESSAGE = 200


@cache
def error_classes() -> dict[str, type[VidpError]]:
    """Every error class of the pipeline by its name, which is its Step Functions error name."""
    found: dict[str, type[VidpError]] = {}
    pending: list[type[VidpError]] = [VidpError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_code(error_name: str) -> str:
    """The stable code of a Step Functions error name: our errors' ``code``, TIMEOUT or INTERNAL_ERROR."""
    if error_name in TIMEOUT_ERRORS:
        return TIMEOUT
    cls = error_classes().get(error_name)
    return cls.code if cls is not None else INTERNAL_ERROR


def is_invalid_input(code: str) -> bool:
    """The code of a failure that can never succeed however often it is tried (InvalidInput's kinds)."""
    return any(cls.code == code for cls in error_classes().values() if issubclass(cls, InvalidInput))


def cause_text(cause: str | None) -> str:
    """What a Cause says for people: a Lambda error's ``errorMessage``, a stopped task's
    ``StoppedReason`` (both JSON documents), or the text itself (the Fargate task's one line)."""
    text = (cause or "").strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            found = (parsed[key] for key in _CAUSE_KEYS if isinstance(parsed.get(key), str))
            text = next(found, text)
    return text


def failure_message(error_name: str, cause: str | None, failed_state: str) -> str:
    """The one line a failed job records for ``error_name`` caught in ``failed_state``.

    Our errors' messages are written for callers and kept. Anything else (a bug, a service
    error) keeps only its first line, prefixed with the state and the error: the rest can quote
    the event, callback URL included.
    """
    ours = error_code(error_name) != INTERNAL_ERROR
    text = cause_text(cause)
    if not ours:
        text = text.strip().split("\n", 1)[0][:_MAX_FOREIGN_MESSAGE]
    if error_name in TIMEOUT_ERRORS:
        text = f"{failed_state} timed out" + (f": {text}" if text else "")
    elif not text:
        text = f"{failed_state} failed with {error_name}"
    elif not ours:
        text = f"{failed_state} failed with {error_name}: {text}"
    return one_line(text, _MAX_MESSAGE)


def one_line(text: str, limit: int) -> str:
    """``text`` with its white space folded to single spaces, at most ``limit`` characters."""
    return " ".join(text.split())[:limit]
