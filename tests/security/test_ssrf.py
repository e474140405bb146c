"""SSRF guard of the outbound HTTP adapter (reliability cases 8 and 9).

Real HTTP servers on 127.0.0.1 (port 0, a thread each). Tests that need to reach them turn the
test-only loopback switch on with ``monkeypatch.setenv``; a host name's DNS answer is faked by
monkeypatching ``socket.getaddrinfo`` (the resolver, not our code), and ``socket.create_connection``
(what httpcore connects with) is watched to prove what was, or was not, connected to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters import http
from pipeline.failures import HttpUnavailable, InvalidInput, ResponseTooLarge, UnsafeUrl
from tests.support.server import LocalServer, Reply, Writer

SWITCH = "VIDP_UNSAFE_ALLOW_LOOPBACK"
_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection

# --- a scripted local server -------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[..., LocalServer]]:
    """``serve()`` starts a server (``serve(tls=context)``: https); all of them stop at teardown."""
    with contextlib.ExitStack() as started:

        def start(tls: ssl.SSLContext | None = None) -> LocalServer:
            return started.enter_context(LocalServer(tls))

        yield start


@pytest.fixture
def loopback_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, "1")


@pytest.fixture
def loopback_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SWITCH, raising=False)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connect httpcore makes, recorded (and really made)."""
    made: list[tuple[str, int]] = []

    def watched(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append((address[0], address[1]))
        return _real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", watched)
    return made


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Fail loudly if anything tries to connect."""
    tried: list[tuple[str, int]] = []

    def forbidden(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        tried.append((address[0], address[1]))
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    return tried


class FakeDns:
    """``socket.getaddrinfo`` answering scripted addresses for names ending in ``.test``."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers  # name -> successive answers (the last one repeats)
        self.calls: dict[str, int] = {}

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        index = self.calls.get(name, 0)
        self.calls[name] = index + 1
        script = self.answers[name]
        answer = script[min(index, len(script) - 1)]
        infos = []
        for address in answer:
            if ipaddress.ip_address(address).version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port or 0), 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0))))
        return infos


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[list[str]]]], FakeDns]:
    def install(answers: dict[str, list[list[str]]]) -> FakeDns:
        dns = FakeDns(answers)
        monkeypatch.setattr(socket, "getaddrinfo", dns)
        return dns

    return install


# --- address classes ---------------------------------------------------------------------------

LOOPBACK = ["127.0.0.1", "127.255.255.254", "::1"]
NOT_LOOPBACK = [
    # RFC 1918
    "10.0.0.1",
    "172.16.5.4",
    "172.31.255.254",
    "192.168.1.1",
    # CGNAT 100.64/10 (is_private is False for it: that's why is_private alone is not enough)
    "100.64.0.1",
    "100.100.100.200",
    # link-local and cloud metadata
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "169.254.1.1",
    # this network, multicast, reserved, broadcast, special purpose
    "0.0.0.0",  # noqa: S104 - an address to refuse, nothing binds to it
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.170",
    "198.18.0.1",
    "192.0.2.1",
    # IPv6: unspecified, ULA (incl. EC2 IMDS), link-local, site-local, multicast, documentation
    "::",
    "fd00:ec2::254",
    "fc00::1",
    "fdff:ffff::1",
    "fe80::1",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "100::1",
    # IPv4 inside IPv6: mapped, compatible, NAT64, 6to4, Teredo
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::ffff:100.64.0.1",
    "::127.0.0.1",
    "::169.254.169.254",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::a00:1",
    "64:ff9b:1::808:808",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:c0a8:101::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
]


def literal(address: str, port: int = 80) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/latest/meta-data/?token=x"


@pytest.mark.parametrize("address", LOOPBACK + NOT_LOOPBACK)
def test_literal_address_refused_without_connecting(
    address: str, loopback_off: None, no_connect: list[tuple[str, int]]
) -> None:
    with pytest.raises(UnsafeUrl) as get_err:
        http.get(literal(address), max_bytes=1000)
    with pytest.raises(UnsafeUrl):
        http.post(literal(address), body=b"{}", headers={})
    assert no_connect == []
    assert get_err.value.code == "UNSAFE_URL"
    assert isinstance(get_err.value, InvalidInput)  # never retried
    assert "token" not in str(get_err.value)


@pytest.mark.parametrize("address", NOT_LOOPBACK)
def test_non_loopback_refused_even_with_the_loopback_switch(
    address: str, loopback_on: None, no_connect: list[tuple[str, int]]
) -> None:
    with pytest.raises(UnsafeUrl):
        http.get(literal(address), max_bytes=1000)
    assert no_connect == []


@pytest.mark.parametrize("address", LOOPBACK + NOT_LOOPBACK)
def test_host_name_resolving_to_a_refused_address(
    address: str,
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns],
    loopback_off: None,
    no_connect: list[tuple[str, int]],
) -> None:
    fake_dns({"evil.test": [[address]]})
    with pytest.raises(UnsafeUrl, match=r"evil\.test resolves to"):
        http.get("http://evil.test/", max_bytes=1000)
    assert no_connect == []


def test_refused_if_any_answer_is_not_public(
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns], no_connect: list[tuple[str, int]]
) -> None:
    fake_dns({"mixed.test": [["93.184.215.14", "10.0.0.1"]]})
    with pytest.raises(UnsafeUrl, match="private"):
        http.get("https://mixed.test/", max_bytes=1000)
    assert no_connect == []


def test_the_refusal_names_no_address() -> None:
    """The message goes to the job's owner: it must not map internal DNS names to addresses."""
    with pytest.raises(UnsafeUrl) as err:
        http.get("http://2852039166/?token=s3cr3t", max_bytes=1)
    assert "169.254" not in str(err.value)
    assert "s3cr3t" not in str(err.value)
    assert "metadata" in str(err.value)


# --- spellings of an address -------------------------------------------------------------------


@pytest.mark.parametrize("form", ["2130706433", "0x7f.1", "0x7f000001", "127.1", "0177.0.0.1", "0177.1"])
def test_the_resolver_normalises_numeric_forms_to_loopback(form: str) -> None:
    """The guard checks what getaddrinfo answers, so odd spellings are judged as what they mean."""
    answers = {info[4][0] for info in socket.getaddrinfo(form, 80, type=socket.SOCK_STREAM)}
    assert answers == {"127.0.0.1"}


@pytest.mark.parametrize(
    "form", ["2130706433", "0x7f.1", "0x7f000001", "127.1", "0177.0.0.1", "017700000001"]
)
def test_numeric_forms_of_loopback_refused(
    form: str, loopback_off: None, no_connect: list[tuple[str, int]]
) -> None:
    with pytest.raises(UnsafeUrl):
        http.get(f"http://{form}/", max_bytes=1)
    assert no_connect == []


@pytest.mark.parametrize(
    "form",
    ["2852039166", "0xa9fea9fe", "0xa9.0xfe.0xa9.0xfe", "0251.0376.0251.0376", "169.254.43518", "167772161"],
)
def test_numeric_forms_of_metadata_and_private_refused_with_the_switch_on(
    form: str, loopback_on: None, no_connect: list[tuple[str, int]]
) -> None:
    with pytest.raises(UnsafeUrl):
        http.get(f"http://{form}/", max_bytes=1)
    assert no_connect == []


# --- schemes, credentials, malformed URLs ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_stats",
        "ftp://example.com/sub.srt",
        "data:text/plain,hello",
        "dict://127.0.0.1:11211/stats",
        "ws://example.com/",
        "javascript:alert(1)",
        "s3://bucket/key.srt",
    ],
)
def test_other_schemes_refused(url: str, loopback_on: None, no_connect: list[tuple[str, int]]) -> None:
    with pytest.raises(UnsafeUrl, match="scheme"):
        http.get(url, max_bytes=1)
    with pytest.raises(UnsafeUrl, match="scheme"):
        http.post(url, body=b"", headers={})
    assert no_connect == []


@pytest.mark.parametrize(
    "url", ["http://user:pass@example.com/", "http://user@example.com/", "https://:token@example.com/a"]
)
def test_credentials_in_the_url_refused(url: str, no_connect: list[tuple[str, int]]) -> None:
    with pytest.raises(UnsafeUrl, match="credentials"):
        http.get(url, max_bytes=1)
    assert no_connect == []


@pytest.mark.parametrize(
    "url", ["http:///no-host", "http://example.com:0/", "http://example.com:65536/", "", "http://[::1/"]
)
def test_malformed_urls_refused(url: str, no_connect: list[tuple[str, int]]) -> None:
    with pytest.raises(UnsafeUrl):
        http.get(url, max_bytes=1)
    assert no_connect == []


# --- the loopback switch -----------------------------------------------------------------------


OK = Reply(200, b"hello", {"Content-Type": "text/plain", "X-Custom": "Yes"})


@pytest.mark.parametrize("value", [None, "0", "true", "yes", "", "1 "])
def test_loopback_refused_unless_the_switch_is_exactly_1(
    value: str | None, monkeypatch: pytest.MonkeyPatch, serve: Callable[..., LocalServer]
) -> None:
    server = serve()
    url = server.route("/", OK)
    if value is None:
        monkeypatch.delenv(SWITCH, raising=False)
    else:
        monkeypatch.setenv(SWITCH, value)
    with pytest.raises(UnsafeUrl, match="loopback"):
        http.get(url, max_bytes=100)
    assert server.received == []


def test_loopback_allowed_with_the_switch(loopback_on: None, serve: Callable[..., LocalServer]) -> None:
    server = serve()
    url = server.route("/sub.srt", OK) + "?x=1"
    response = http.get(url, max_bytes=100)
    assert (response.status, response.body) == (200, b"hello")
    assert response.headers["x-custom"] == "Yes"  # names lower-cased
    assert response.url == server.url("/sub.srt?x=1")
    assert server.received[0].path == "/sub.srt?x=1"


def test_the_switch_is_not_a_parameter() -> None:
    """A job can only choose get/post arguments: none of them can widen the guard."""
    import inspect

    for function in (http.get, http.post):
        assert set(inspect.signature(function).parameters) <= {
            "url",
            "max_bytes",
            "body",
            "headers",
            "connect_timeout",
            "read_timeout",
            "max_redirects",
        }


# --- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[fd00:ec2::254]/",
        "http://2852039166/",
        "http://user:pw@127.0.0.1:{port}/",
        "gopher://127.0.0.1:{port}/_x",
    ],
)
def test_redirect_to_a_refused_target(
    location: str,
    loopback_on: None,
    serve: Callable[..., LocalServer],
    connections: list[tuple[str, int]],
) -> None:
    server = serve()
    url = server.route("/start", Reply(302, headers={"Location": location.format(port=server.port)}))
    with pytest.raises(UnsafeUrl):
        http.get(url, max_bytes=1000)
    assert connections == [("127.0.0.1", server.port)]  # only the first hop ever connected
    assert len(server.received) == 1


def test_redirects_followed_and_each_hop_checked(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    server = serve()
    server.route("/a", Reply(301, headers={"Location": "/b", "Set-Cookie": "session=abc"}))
    server.route("/b", Reply(307, headers={"Location": f"http://localhost:{server.port}/c"}))
    server.route("/c", Reply(200, b"final"))
    response = http.get(server.url("/a"), max_bytes=100)
    assert (response.status, response.body) == (200, b"final")
    assert response.url.endswith("/c")
    assert [seen.path for seen in server.received] == ["/a", "/b", "/c"]
    assert all("cookie" not in seen.headers for seen in server.received)  # no cookie jar


def test_past_max_redirects_the_3xx_is_returned(loopback_on: None, serve: Callable[..., LocalServer]) -> None:
    server = serve()
    for hop in range(5):  # more hops than followed: each one redirects to the next
        server.route(f"/hop{hop}", Reply(302, headers={"Location": f"/hop{hop + 1}"}))
    response = http.get(server.url("/hop0"), max_bytes=100, max_redirects=2)
    assert response.status == 302
    assert len(server.received) == 3


def test_post_never_follows_redirects(loopback_on: None, serve: Callable[..., LocalServer]) -> None:
    target, source = serve(), serve()
    elsewhere = target.route("/elsewhere", OK)
    hook = source.route("/hook", Reply(307, headers={"Location": elsewhere}))
    response = http.post(hook, body=b'{"a":1}', headers={"Content-Type": "application/json"})
    assert response.status == 307
    assert response.headers["location"] == target.url("/elsewhere")
    assert target.received == []


# --- DNS rebinding: the connection is pinned to the checked address ----------------------------


def test_pinned_to_the_checked_address_loopback_then_metadata(
    loopback_on: None,
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns],
    serve: Callable[..., LocalServer],
    connections: list[tuple[str, int]],
) -> None:
    """First answer 127.0.0.1 (allowed by the switch), then 169.254.169.254: a second lookup
    would send the request to the metadata address. It never happens."""
    server = serve()
    server.route("/x", OK)
    dns = fake_dns({"rebind.test": [["127.0.0.1"], ["169.254.169.254"]]})
    response = http.get(f"http://rebind.test:{server.port}/x", max_bytes=100, connect_timeout=0.5)
    assert response.status == 200
    assert dns.calls == {"rebind.test": 1}  # exactly one resolution: the checked one
    assert connections == [("127.0.0.1", server.port)]
    assert server.received[0].headers["host"] == f"rebind.test:{server.port}"  # Host kept


def test_pinned_to_the_checked_address_public_then_loopback(
    loopback_on: None,
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns],
    serve: Callable[..., LocalServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """First answer public, then 127.0.0.1 where a live server waits (and the switch would even
    allow it): the connect goes to the public address that was checked, never to loopback."""
    server = serve()
    server.route("/", OK)
    dns = fake_dns({"rebind.test": [["93.184.215.14"], ["127.0.0.1"]]})
    tried: list[tuple[str, int]] = []

    def offline(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        tried.append((address[0], address[1]))
        if address[0] == "127.0.0.1":
            return _real_create_connection(address, *args, **kwargs)
        raise ConnectionRefusedError(111, "no internet in tests")

    monkeypatch.setattr(socket, "create_connection", offline)
    with pytest.raises(HttpUnavailable):
        http.get(f"http://rebind.test:{server.port}/", max_bytes=100)
    assert tried == [("93.184.215.14", server.port)]
    assert dns.calls == {"rebind.test": 1}
    assert server.received == []


def test_next_checked_address_tried_when_connect_fails(
    loopback_on: None,
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns],
    serve: Callable[..., LocalServer],
    connections: list[tuple[str, int]],
) -> None:
    server = serve()
    server.route("/", OK)
    fake_dns({"two.test": [["127.0.0.2", "127.0.0.1"]]})  # nothing listens on 127.0.0.2
    response = http.get(f"http://two.test:{server.port}/", max_bytes=100)
    assert response.status == 200
    assert connections == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]


# --- TLS: connect to the IP, verify the certificate and send SNI for the name -------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a certificate for ``vidp.test`` signed by it: (ca.pem, cert.pem, key.pem)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vidp test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vidp.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("vidp.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


def test_tls_is_pinned_to_the_ip_but_verified_for_the_name(
    tls_files: tuple[Path, Path, Path],
    loopback_on: None,
    fake_dns: Callable[[dict[str, list[list[str]]]], FakeDns],
    serve: Callable[..., LocalServer],
    connections: list[tuple[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_pem, cert_pem, key_pem = tls_files
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_pem, key_pem)
    sni: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: sni.append(name)  # type: ignore[assignment,func-returns-value]
    server = serve(tls=server_tls)
    server.route("/sub.srt", OK)
    monkeypatch.setattr(http, "_ssl_context", lambda: ssl.create_default_context(cafile=str(ca_pem)))
    dns = fake_dns({"vidp.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})

    response = http.get(f"https://vidp.test:{server.port}/sub.srt", max_bytes=100)
    assert (response.status, response.body) == (200, b"hello")
    assert connections == [("127.0.0.1", server.port)]  # connected to the checked IP...
    assert sni == ["vidp.test"]  # ...presented the name as SNI...
    assert server.received[0].headers["host"] == f"vidp.test:{server.port}"  # ...and as Host
    assert dns.calls["vidp.test"] == 1

    # The certificate is checked against the name, not the IP: a name it doesn't cover fails.
    with pytest.raises(HttpUnavailable, match=r"(?i)certificate|ssl"):
        http.get(f"https://other.test:{server.port}/sub.srt", max_bytes=100)
    # And a bare IP (no SNI) is checked against the IP, which the certificate doesn't cover.
    with pytest.raises(HttpUnavailable):
        http.get(f"https://127.0.0.1:{server.port}/sub.srt", max_bytes=100)
    assert len(server.received) == 1


# --- size, time, statuses ----------------------------------------------------------------------


def test_byte_cap_enforced_while_streaming_an_endless_body(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    sent: list[int] = []

    def endless(writer: Writer, _: int) -> None:
        writer.start(200, {"Content-Type": "text/plain"})  # HTTP/1.0, no length: ends when closed
        chunk = b"1\n00:00:00,000 --> 00:00:01,000\nspam\n\n" * 1000
        deadline = time.monotonic() + 10
        while not writer.stopping and time.monotonic() < deadline:
            writer.write(chunk)
            sent.append(len(chunk))

    url = serve().route("/endless.srt", endless)
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge) as err:
        http.get(url, max_bytes=256 * 1024)
    assert time.monotonic() - started < 3
    assert err.value.code == "RESPONSE_TOO_LARGE"
    assert sum(sent) < 50 * 1024 * 1024  # stopped early, not read to the end


def test_declared_length_over_the_cap_refused_before_reading(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    def huge(writer: Writer, _: int) -> None:
        writer.start(200, {"Content-Length": str(10**12)})
        writer.write(b"x" * 10)
        writer.wait(2)  # the rest would take forever: the client must not wait for it

    url = serve().route("/", huge)
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge, match="declares"):
        http.get(url, max_bytes=1000)
    assert time.monotonic() - started < 1.5


def test_body_at_the_cap_is_fine(loopback_on: None, serve: Callable[..., LocalServer]) -> None:
    url = serve().route("/", Reply(200, b"x" * 1000))
    assert http.get(url, max_bytes=1000).body == b"x" * 1000
    with pytest.raises(ResponseTooLarge):
        http.get(url, max_bytes=999)


def test_slow_server_times_out_within_the_read_timeout(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    def slow(writer: Writer, _: int) -> None:
        writer.wait(5)  # far past the read timeout (ends early at teardown)
        writer.reply(200, b"late")

    url = serve().route("/", slow)
    started = time.monotonic()
    with pytest.raises(HttpUnavailable, match="timed out") as err:
        http.get(url, max_bytes=100, read_timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert err.value.retryable
    assert err.value.code == "HTTP_UNAVAILABLE"


def test_dripping_server_stopped_by_the_total_deadline(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    """Each byte arrives within the read timeout, the whole never ends: connect + 2 * read caps it."""

    def drip(writer: Writer, _: int) -> None:
        writer.start(200)
        deadline = time.monotonic() + 5
        while not writer.wait(0.1) and time.monotonic() < deadline:
            writer.write(b"x")

    url = serve().route("/", drip)
    started = time.monotonic()
    with pytest.raises(HttpUnavailable, match="total time limit"):
        http.get(url, max_bytes=10_000, connect_timeout=0.2, read_timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.7 < elapsed < 2.0  # deadline 0.2 + 2 * 0.3 = 0.8 s, plus at most one chunk


def test_connection_refused_is_unavailable(loopback_on: None) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HttpUnavailable, match="could not connect"):
        http.get(f"http://127.0.0.1:{port}/", max_bytes=1)


def test_unresolvable_host_is_unavailable(no_connect: list[tuple[str, int]]) -> None:
    with pytest.raises(HttpUnavailable, match="could not resolve"):
        http.get("http://does-not-exist.invalid/", max_bytes=1)


@pytest.mark.parametrize("status", [404, 500, 503, 429])
def test_error_statuses_are_returned_for_the_caller(
    status: int, loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    url = serve().route("/missing.srt", Reply(status, b"nope", {"Retry-After": "3"}))
    response = http.get(url, max_bytes=100)
    assert (response.status, response.body, response.headers["retry-after"]) == (status, b"nope", "3")


def test_post_sends_body_and_headers_but_not_a_forged_host(
    loopback_on: None, serve: Callable[..., LocalServer]
) -> None:
    server = serve()
    response = http.post(
        server.route("/hook", Reply(200, b"y" * 100_000)),
        body=b'{"status":"completed"}',
        headers={"Content-Type": "application/json", "webhook-id": "msg_1", "Host": "169.254.169.254"},
    )
    assert response.status == 200
    assert len(response.body) == 64 * 1024  # a receiver's answer is kept only up to 64 KiB
    seen = server.received[0]
    assert (seen.method, seen.body) == ("POST", b'{"status":"completed"}')
    assert seen.headers["webhook-id"] == "msg_1"
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"


def test_proxy_environment_is_ignored(
    loopback_on: None, serve: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # a dead proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = serve().route("/", OK)
    assert http.get(url, max_bytes=100).status == 200


def test_query_strings_and_paths_never_logged(
    loopback_on: None, serve: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = serve()
    server.route("/private-path", OK)
    server.route("/hook-path", OK)
    caplog.set_level(logging.DEBUG)
    http.get(server.url("/private-path?token=s3cr3t-query"), max_bytes=100)
    http.post(server.url("/hook-path?sig=s3cr3t-query"), body=b"{}", headers={})
    with pytest.raises(UnsafeUrl):
        http.get("http://10.0.0.1/private-path?token=s3cr3t-query", max_bytes=100)
    assert caplog.records  # httpx and the guard did log something...
    assert "s3cr3t" not in caplog.text  # ...but no query string
    assert "private-path" not in caplog.text
    assert "hook-path" not in caplog.text


def test_certificates_are_verified_by_default() -> None:
    context = http._ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
