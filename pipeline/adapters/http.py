"""The ONE outbound HTTP adapter (SRT URLs and callbacks): SSRF-guarded, pinned, size-capped.

Every request goes through the same steps:

1. **Guard.** The URL is parsed once, with httpx's own parser (so the guard and the transport
   can never disagree about which host a URL names). Only ``http``/``https``, no credentials
   in the URL, a host, a port in 1-65535. The host is resolved with ``socket.getaddrinfo`` and
   the URL is refused (:class:`UnsafeUrl`) if ANY answer is not a public unicast address, see
   :func:`_refusal`. Decimal/octal/hex IPv4 spellings (``2130706433``, ``0x7f.1``) need no
   special case: the resolver turns them into the address they mean, and that is what is
   checked (httpx itself rejects ``0177.0.0.1``, which is refused as malformed).
2. **Pin.** The request is sent to the checked IP address itself (the URL's host is replaced
   by the IP), with the ``Host`` header set to the original host and, for https, httpcore's
   ``sni_hostname`` request extension set to the original host: the TLS handshake sends that
   name as SNI and the certificate is verified against it, not against the IP. No second DNS
   lookup happens between the check and the connect, so an answer that changes in between
   (DNS rebinding) cannot redirect the connection.
3. **Redirects** (``get`` only) are followed by hand, each hop going through 1 and 2 again;
   ``post`` never follows them.
4. **Limits.** The body is streamed and the byte cap enforced chunk by chunk (a
   ``Content-Length`` over the cap is refused before reading). Connect and read timeouts apply
   to every socket operation, and a whole call has a total deadline of
   ``connect_timeout + 2 * read_timeout`` (all hops included): a server dripping a byte just
   under the read timeout is cut off there (checked between chunks, so at most one more
   ``read_timeout`` late). ``Accept-Encoding: identity`` is asked so the cap counts what the
   server sends.
5. **Nothing ambient.** ``trust_env=False`` (no proxy variables, no .netrc), a fresh client
   per hop (no cookies carried, no connection shared between hosts).

Test-only switch: with ``VIDP_UNSAFE_ALLOW_LOOPBACK=1`` in the process environment (read at
each call), loopback addresses (127.0.0.0/8 and ::1, nothing else) are allowed, so tests and
the local demo can talk to a server on 127.0.0.1. It is not a parameter of any function: a job
request cannot reach it.

Nothing here logs a path or query string (they carry tokens): only scheme, host and port.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx

from pipeline.failures import HttpUnavailable, ResponseTooLarge, UnsafeUrl

__all__ = [
    "LOOPBACK_SWITCH",
    "HttpUnavailable",
    "Response",
    "ResponseTooLarge",
    "UnsafeUrl",
    "get",
    "post",
]

log = logging.getLogger(__name__)

LOOPBACK_SWITCH = "VIDP_UNSAFE_ALLOW_LOOPBACK"
USER_AGENT = "vidp-pipeline/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A callback receiver's answer is only looked at for its status: keep at most this much of it.
_POST_BODY_LIMIT = 64 * 1024
# Total deadline of one call = connect_timeout + _DEADLINE_READS * read_timeout.
_DEADLINE_READS = 2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints, named explicitly (they are also link-local or ULA, so refused anyway):
# EC2 IMDS v4/v6, ECS task metadata and credentials, EKS Pod Identity agent v4/v6.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23")
)
_V4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_V6_LOOPBACK = ipaddress.IPv6Address("::1")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_V4_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible IPv6 (also :: and ::1)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix: last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)


@dataclass(frozen=True)
class Response:
    """A response as the caller sees it. ``url`` is the URL that answered (after redirects)."""

    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    url: str


# --- address policy ----------------------------------------------------------------------------


def _refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted, or None when it is a public unicast address.

    ``is_private`` alone is not enough: 100.64.0.0/10 (CGNAT, where some clouds put metadata
    services) is neither private nor global; multicast and 6to4 addresses are "global" for
    ``ipaddress``; IPv4-mapped, NAT64, 6to4 and Teredo IPv6 addresses carry an IPv4 address
    that is what the packets finally reach, and how ``ipaddress`` classifies them has changed
    between Python versions. So: ``is_global`` AND explicit checks AND the embedded IPv4.
    """
    if ip in _METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip == _V6_LOOPBACK:
            return "a loopback address"
        if ip.is_unspecified:
            return "the unspecified address"
        if ip in _V4_COMPATIBLE:
            return "an IPv4-compatible IPv6 address"
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        for label, embedded in _embedded_ipv4(ip):
            why = _refusal(embedded)
            if why is not None:
                return f"{label} embedding {why}"
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return None  # judged by the IPv4 address it carries (its IPv6 flags say "reserved")
        if ip.is_site_local:
            return "a site-local address"
    return _general_refusal(ip)


def _general_refusal(ip: IPAddress) -> str | None:
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified or ip in _V4_THIS_NETWORK, "an unspecified/this-network address"),
        (ip.is_link_local, "a link-local address"),
        (ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((why for refused, why in checks if refused), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip.ipv4_mapped is not None:
        found.append(("an IPv4-mapped IPv6 address", ip.ipv4_mapped))
    if ip in _NAT64:
        found.append(("a NAT64 address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
    if ip.sixtofour is not None:
        found.append(("a 6to4 address", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [("a Teredo address", server), ("a Teredo address", client)]
    return found


def _loopback_allowed(ip: IPAddress) -> bool:
    """The test-only switch: native loopback only (not mapped forms, never private ranges)."""
    if os.environ.get(LOOPBACK_SWITCH) != "1":
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in _V4_LOOPBACK
    return ip == _V6_LOOPBACK


# --- the guard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: httpx.URL  # as parsed (no credentials)
    host: str  # ASCII (IDNA) host, IPv6 without brackets
    port: int
    addresses: tuple[str, ...]  # checked IP addresses, in resolver order

    @property
    def where(self) -> str:
        """What may be logged or put in an error: scheme, host, port. Never path or query."""
        return f"{self.url.scheme}://{self.url.netloc.decode('ascii')}"


def precheck(url_text: str) -> None:
    """Refuse what needs no DNS to refuse: a URL of another form than ``_check`` takes, or whose
    host is an IP address ``_check`` would refuse. For an early answer to a caller (the API);
    the request itself is checked again, resolved, when it is made (names can change address)."""
    _, host, _ = _parsed(url_text)
    if _is_ip_literal(host):
        ip = ipaddress.ip_address(host)
        why = None if _loopback_allowed(ip) else _refusal(ip)
        if why is not None:
            raise UnsafeUrl(f"URL refused: {host} is {why}")


def _check(url_text: str) -> _Target:
    """Parse, validate and resolve ``url_text``; refuse it unless every address is public."""
    url, host, port = _parsed(url_text)
    addresses = _resolve(host, port)
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if _loopback_allowed(ip):
            continue
        why = _refusal(ip)
        if why is not None:
            # The address goes to the log only: in an error (a callback) it would let a caller
            # map internal DNS names.
            log.warning("refused URL host=%s port=%d address=%s reason=%s", host, port, ip, why)
            raise UnsafeUrl(f"URL refused: {host} resolves to {why}")
    return _Target(url=url, host=host, port=port, addresses=addresses)


def _parsed(url_text: str) -> tuple[httpx.URL, str, int]:
    """The URL, its ASCII host (IPv6 without brackets) and port; UnsafeUrl for any other form."""
    try:
        url = httpx.URL(url_text)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeUrl("URL refused: it is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise UnsafeUrl(f"URL refused: scheme {url.scheme[:20]!r} is not allowed (http or https only)")
    if url.userinfo:
        raise UnsafeUrl("URL refused: credentials in the URL are not allowed")
    host = url.raw_host.decode("ascii")
    if not host:
        raise UnsafeUrl("URL refused: it has no host")
    if "%" in host:
        raise UnsafeUrl("URL refused: IPv6 zone identifiers are not allowed")
    port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise UnsafeUrl(f"URL refused: port {port} is out of range")
    return url, host, port


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HttpUnavailable(f"could not resolve {host}: {exc.strerror}") from None
    except (UnicodeError, ValueError):
        raise UnsafeUrl("URL refused: the host name is not valid") from None
    addresses: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            # An IPv6 sockaddr may carry a scope ("fe80::1%eth0"): the address is what we judge.
            address = str(sockaddr[0]).split("%", 1)[0]
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise HttpUnavailable(f"could not resolve {host}: no IPv4 or IPv6 address")
    return tuple(addresses)


# --- the exchange ------------------------------------------------------------------------------


@cache
def _ssl_context() -> ssl.SSLContext:
    """Certificate verification on (certifi's CA bundle); built once, shared by every call."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Budget:
    """The time of one call: each socket operation's timeouts, and the deadline of the whole call
    (all hops): ``connect + _DEADLINE_READS * read`` from its start."""

    connect: float
    read: float
    deadline: float

    @classmethod
    def start(cls, connect_timeout: float, read_timeout: float) -> _Budget:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        deadline = time.monotonic() + connect_timeout + _DEADLINE_READS * read_timeout
        return cls(connect=connect_timeout, read=read_timeout, deadline=deadline)

    def timeout(self, what: str) -> httpx.Timeout:
        """httpx's timeouts for the next request, none past the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise HttpUnavailable(f"{what} ran out of time")
        connect, read = min(self.connect, remaining), min(self.read, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


@dataclass(frozen=True)
class _Reading:
    """How a response body is read: up to ``max_bytes``, then ResponseTooLarge (GET) or cut
    (``truncate``, POST); a redirect's body is skipped when it is followed."""

    max_bytes: int
    truncate: bool
    skip_redirect_body: bool = False


def _exchange(
    method: str,
    target: _Target,
    *,
    content: bytes | None,
    headers: Mapping[str, str],
    budget: _Budget,
    reading: _Reading,
) -> Response:
    """One request to ``target``, pinned to its checked addresses (the next one if connecting fails)."""
    timeout = budget.timeout(f"{method} {target.where}")
    sent_headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
        **{name: value for name, value in headers.items() if name.lower() not in ("host", "accept-encoding")},
        "Host": target.url.netloc.decode("ascii"),
    }
    extensions: dict[str, Any] = {}
    if target.url.scheme == "https" and not _is_ip_literal(target.host):
        extensions["sni_hostname"] = target.host  # SNI and certificate check on the name, not the IP
    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False, retries=0)
    with httpx.Client(
        transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
    ) as client:
        for index, address in enumerate(target.addresses):
            request = client.build_request(
                method,
                target.url.copy_with(host=address),
                headers=sent_headers,
                content=content,
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if index + 1 < len(target.addresses) and time.monotonic() < budget.deadline:
                    log.info("connect failed, trying next address: %s (%s)", target.where, type(exc).__name__)
                    continue
                raise HttpUnavailable(f"could not connect to {target.where}: {_reason(exc)}") from None
            except httpx.TransportError as exc:
                raise HttpUnavailable(f"{method} {target.where} failed: {_reason(exc)}") from None
            try:
                skip = reading.skip_redirect_body and response.status_code in _REDIRECTS
                return _read(response, target, reading, deadline=budget.deadline, skip=skip)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise HttpUnavailable(f"{method} {target.where} failed: {_reason(exc)}") from None
            finally:
                response.close()
    raise HttpUnavailable(f"could not connect to {target.where}")  # pragma: no cover - loop returns


def _reason(exc: Exception) -> str:
    """The exception class (and a short message with no URL in it) for an error message."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    detail = str(exc).split("\n", 1)[0][:160]
    # httpx messages don't quote URLs for transport errors; be sure no query string slips in.
    if "?" in detail or "://" in detail:
        detail = ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _read(
    response: httpx.Response, target: _Target, reading: _Reading, *, deadline: float, skip: bool
) -> Response:
    max_bytes, truncate = reading.max_bytes, reading.truncate
    headers = {name.lower(): value for name, value in response.headers.items()}
    url = str(target.url)
    if skip:
        return Response(status=response.status_code, headers=headers, body=b"", url=url)
    declared = headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response from {target.where} declares {declared} bytes, over {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise HttpUnavailable(f"response from {target.where} took longer than the total time limit")
        size += len(chunk)
        if size > max_bytes:
            if truncate:
                chunks.append(chunk[: len(chunk) - (size - max_bytes)])
                break
            raise ResponseTooLarge(f"response from {target.where} is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return Response(status=response.status_code, headers=headers, body=b"".join(chunks), url=url)


# --- public API --------------------------------------------------------------------------------


def get(
    url: str,
    *,
    max_bytes: int,
    connect_timeout: float = 5.0,
    read_timeout: float = 20.0,
    max_redirects: int = 3,
) -> Response:
    """GET ``url`` through the SSRF guard; any status is returned (the caller classifies it).

    Redirects (301/302/303/307/308 with a Location) are followed up to ``max_redirects``, each
    hop checked again (a refused hop raises :class:`UnsafeUrl`); past the limit the 3xx response
    itself is returned. Raises :class:`UnsafeUrl`, :class:`ResponseTooLarge` (body over
    ``max_bytes``), :class:`HttpUnavailable` (DNS, connect, read, TLS, total deadline).
    """
    if max_bytes < 0 or max_redirects < 0:
        raise ValueError("max_bytes and max_redirects must not be negative")
    budget = _Budget.start(connect_timeout, read_timeout)
    current = url
    hops = 0
    while True:
        target = _check(current)
        follow = hops < max_redirects
        reading = _Reading(max_bytes, truncate=False, skip_redirect_body=follow)
        response = _exchange("GET", target, content=None, headers={}, budget=budget, reading=reading)
        location = response.headers.get("location")
        if not (follow and response.status in _REDIRECTS and location):
            return response
        try:
            current = str(target.url.join(location))
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UnsafeUrl("URL refused: a redirect Location is not a valid URL") from None
        hops += 1
        log.debug("following redirect %d from %s", response.status, target.where)


def post(
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    connect_timeout: float = 5.0,
    read_timeout: float = 20.0,
) -> Response:
    """POST ``body`` to ``url`` through the SSRF guard. Never follows redirects: 3xx is returned.

    The response body is kept up to 64 KiB (the rest is not read). A ``Host`` header in
    ``headers`` is ignored (it is always the URL's host). Raises :class:`UnsafeUrl` or
    :class:`HttpUnavailable`.
    """
    budget = _Budget.start(connect_timeout, read_timeout)
    target = _check(url)
    reading = _Reading(_POST_BODY_LIMIT, truncate=True)
    return _exchange("POST", target, content=body, headers=headers, budget=budget, reading=reading)


# --- logging hygiene ---------------------------------------------------------------------------


class _RedactUrls(logging.Filter):
    """httpx logs each request's full URL at INFO: keep scheme, host and port only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.scheme}://{arg.netloc.decode('ascii')}/..." if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


if not any(isinstance(f, _RedactUrls) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactUrls())
