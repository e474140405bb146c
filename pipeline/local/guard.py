"""No web page may drive the local AWS: requests a browser sends for a page are refused (403).

The local endpoint takes any credentials, so any page a developer opens could otherwise call
it through the browser (``fetch``, a form, an image, DNS rebinding). Browsers mark those
requests, and command-line clients (boto3, the AWS CLI, the task) never do:

- ``Origin``: sent with every cross-origin ``fetch`` and with every form POST;
- ``Sec-Fetch-Site`` other than ``none`` (typed in the address bar) or ``same-origin``: sent
  with every request a page makes, images and form GETs included;
- a ``Host`` that is not a loopback name: what DNS rebinding (evil.example resolving to
  127.0.0.1) leaves, even where the browser sends neither header.

A WSGI middleware around moto's app, for every service and moto's own API alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_FORBIDDEN = "403 Forbidden"


def refusal(environ: WSGIEnvironment) -> str | None:
    """Why a request is refused (a browser sent it for a web page), or None."""
    if "HTTP_ORIGIN" in environ:
        return "requests from web pages (with an Origin header) are not served by the local AWS"
    if environ.get("HTTP_SEC_FETCH_SITE", "none") not in {"none", "same-origin"}:
        return "requests a browser makes for a web page are not served by the local AWS"
    host = environ.get("HTTP_HOST")
    if host is not None and not is_loopback(host):
        return "the local AWS answers only to localhost or 127.0.0.1"
    return None


def is_loopback(host: str) -> bool:
    """Whether a Host header (``name[:port]``) names this machine: localhost, 127.x, ::1."""
    try:
        name = (urlsplit("//" + host).hostname or "").rstrip(".")
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class BrowserGuard:
    """Answer 403 with a one-line body to what ``refusal`` refuses; pass the rest to ``app``."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        reason = refusal(environ)
        if reason is None:
            return self.app(environ, start_response)
        body = f"Forbidden: {reason}\n".encode()
        start_response(
            _FORBIDDEN, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]


def refuse_browsers(server: ThreadedMotoServer) -> None:
    """Put the guard around a started moto server's app.

    moto serves from the moment it binds, so a request could come before this: the local AWS
    resets moto's state after installing it, so nothing such a request did remains.
    """
    wsgi = server._server  # moto exposes its werkzeug server no other way
    if wsgi is None:
        raise RuntimeError("the moto server is not started")
    wsgi.app = BrowserGuard(wsgi.app)
