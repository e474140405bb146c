"""One-line JSON logs of the Lambda code (the steps, the upload starter), with Powertools' formatter:
what ran, for which job, how it ended.

Never log secrets, SRT text, or URLs beyond their host (a callback or subtitle URL's path and
query often carry a token): pass URLs through :func:`url_for_log`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from pipeline.failures import VidpError

_LOGGER_NAME = "vidp"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr`` (the runtime, or a test, may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def logger(name: str) -> logging.Logger:
    """A child of the Lambda code's logger (``vidp``); :func:`step_log` configures it on first use."""
    return logging.getLogger(_LOGGER_NAME).getChild(name)


def configure() -> None:
    """JSON lines on stderr for the ``vidp`` logger, once (not at import: no import side effects)."""
    root = logging.getLogger(_LOGGER_NAME)
    if any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(LambdaPowertoolsFormatter(service="vidp"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # The Lambda runtime puts its own handler on the root logger: don't print twice.
    root.propagate = False


def url_for_log(url: str | None) -> str | None:
    """Only the scheme and host of a URL: paths and queries of webhooks carry tokens."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
    except ValueError:
        return "<unparsable url>"
    return f"{parts.scheme}://{host}/..."


@contextmanager
def step_log(log: logging.Logger, step: str, **fields: Any) -> Iterator[None]:
    """Log the start and the end of a step (with its duration, and the error's class on failure)."""
    configure()
    started = time.monotonic()
    log.info("step started", extra={"step": step, **fields})
    try:
        yield
    except Exception as err:
        log.warning(
            "step failed",
            extra={
                "step": step,
                **fields,
                "error_name": type(err).__name__,
                # Our errors are one line and name no secret; others (a pydantic error quoting
                # the event, say) may quote a callback URL: their class is enough here.
                "error": str(err) if isinstance(err, VidpError) else None,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        raise
    log.info("step done", extra={"step": step, **fields, "seconds": round(time.monotonic() - started, 3)})
