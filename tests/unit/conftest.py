"""Fixtures shared by the step tests: moto in-process AWS and a local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aws import Aws, start_aws, start_server
from tests.support.server import LocalServer


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Bucket, table and event bus in moto, with the steps' VIDP_* settings pointing at them."""
    yield from start_aws(monkeypatch)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """SRT files and callback receivers on 127.0.0.1 (the loopback switch is set by ``aws``)."""
    yield from start_server()
