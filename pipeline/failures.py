"""Typed errors of the pipeline.

The exception class name is the Step Functions error name that Retry and Catch match
(a Lambda handler that raises ``InvalidInput`` fails its state with error ``InvalidInput``),
so each class is named for what the state machine must do with it, and ``code`` is the
stable error code recorded on the job and sent in the failure callback.
"""

from __future__ import annotations

# Stable codes that are not the code of one error class.
INTERNAL_ERROR = "INTERNAL_ERROR"
"""A bug or an error nobody named: the failure's class is not one of ours."""
INVALID_CONFIG = "INVALID_CONFIG"
"""The Fargate task's configuration (its environment) can never work."""
REPORT_FAILED = "REPORT_FAILED"
"""The Fargate task finished but could not report it to Step Functions."""
TIMEOUT = "TIMEOUT"
"""A state ran past its TimeoutSeconds or missed its heartbeat."""


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
