"""Where requests may go: redirects never lead inward, credentials never leave their origin,
user information never shows, and a name that does not resolve fails every source at once.

Nothing here leaves 127.0.0.1. The outside world is played by two stubs handed to `collect`:
`Names`, a resolver (host name → addresses, answers given in turn), and `Routes`, a dialer that
carries a connection to a pretend public address to a real server on loopback. Our own code
(the address checks, the connection pools, the redirect rules) runs unchanged; a connection to an
address with no route fails, so a guard that let one through would show in `Routes.dialled` and
in the inside server's request log.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpcore
import pytest
import trustme
from pytest_httpserver import HTTPServer

from scrapers import HttpSettings, Outcome, SourceSpec, Validators, collect
from scrapers.errors import one_line, redact_url
from scrapers.network import AsyncioBackend, Network, address_kind

from .loopback import LoopbackServer, Reply, fast_settings, fixture, free_port, serve

FEED = fixture("rss_en.xml")
RSS = "application/rss+xml; charset=utf-8"
# Public addresses as far as the checks are concerned; `Routes` carries them to loopback.
PUBLIC = "93.184.216.34"
PUBLIC_2 = "151.101.1.69"


class Names:
    """A stub resolver: each name answers with the next list of `answers` (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]] | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        answer = self.answers.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(answer, Exception):
            raise answer
        return answer.pop(0) if len(answer) > 1 else answer[0]


class Routes(AsyncioBackend):
    """A stub network: (address, port) pairs routed to servers on 127.0.0.1.

    Loopback addresses are reached for real (on the port asked); anything else without a route
    fails to connect, so no test can send a packet beyond loopback.
    """

    def __init__(self, routes: dict[tuple[str, int], int] | None = None) -> None:
        self.routes = dict(routes or {})
        self.dialled: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialled.append((host, port))
        target = self.routes.get((host, port))
        if target is None and ipaddress.ip_address(host).is_loopback:
            target = port
        if target is None:
            raise httpcore.ConnectError(f"test network: no route to {host}:{port}")
        # The production dialer, aimed at loopback.
        return await super().connect_tcp("127.0.0.1", target, timeout=timeout)


@pytest.fixture
def outside() -> Iterator[LoopbackServer]:
    """A server standing for a public host."""
    with serve() as s:
        yield s


@pytest.fixture
def inside() -> Iterator[LoopbackServer]:
    """A server standing for something inside the network: it must never be asked anything."""
    with serve() as s:
        s.route("/secret", Reply(body=FEED, content_type=RSS))
        yield s


def rss(url: str, name: str = "feed", **options: object) -> SourceSpec:
    return SourceSpec(name=name, kind="rss", language="en", url=url, options=dict(options))


def run(
    specs: list[SourceSpec],
    names: Names,
    routes: Routes,
    settings: HttpSettings | None = None,
) -> list[Outcome]:
    network = Network(resolver=names, dial=routes)
    outcomes = collect(specs, {}, settings or fast_settings(), network=network)
    for outcome in outcomes:
        assert outcome.state != "failed" or (outcome.reason and "\n" not in outcome.reason)
    return outcomes


# ------------------------------------------------------------------ the address classes


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        (PUBLIC, "public"),
        ("2606:4700::6810:85e5", "public"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "reserved"),
        # IPv6 spellings of IPv4 addresses are judged by the IPv4 address they reach.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ],
)
def test_address_kinds(address: str, kind: str) -> None:
    assert address_kind(address) == kind


# ------------------------------------------------------------------ redirects never go inward


def test_a_configured_url_may_point_inside(outside: LoopbackServer) -> None:
    outside.route("/rss", Reply(body=FEED, content_type=RSS))
    names = Names({"intranet.test": [["10.1.2.3"]]})
    routes = Routes({("10.1.2.3", 80): outside.port})
    (outcome,) = run([rss("http://intranet.test/rss")], names, routes)
    assert outcome.state == "ok" and outcome.items
    assert routes.dialled == [("10.1.2.3", 80)]


@pytest.mark.parametrize(
    ("inward", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.5", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_redirect_from_public_to_inside_is_refused(
    outside: LoopbackServer, inside: LoopbackServer, inward: str, kind: str
) -> None:
    outside.route(
        "/rss", Reply(302, headers={"Location": f"http://inside.test:{inside.port}/secret"})
    )
    names = Names({"news.test": [[PUBLIC]], "inside.test": [[inward]]})
    routes = Routes({(PUBLIC, 80): outside.port})
    (outcome,) = run([rss("http://news.test/rss")], names, routes)
    assert outcome.state == "failed"
    if kind == "link-local":
        assert outcome.reason == (
            f"refused: inside.test ({inward}) is a link-local address, which is never contacted"
        )
    else:
        assert outcome.reason == (
            f"redirect refused: inside.test ({inward}) is a {kind} address "
            "and the redirect came from a public one"
        )
    assert routes.dialled == [(PUBLIC, 80)]  # the inward address was never dialled
    assert inside.requests == []


def test_redirect_to_a_loopback_literal_is_refused(
    outside: LoopbackServer, inside: LoopbackServer
) -> None:
    outside.route("/rss", Reply(301, headers={"Location": inside.url("/secret")}))
    names = Names({"news.test": [[PUBLIC]]})
    routes = Routes({(PUBLIC, 80): outside.port})
    (outcome,) = run([rss("http://news.test/rss")], names, routes)
    assert outcome.reason == (
        "redirect refused: 127.0.0.1 is a loopback address and the redirect came from a public one"
    )
    assert inside.requests == []


def test_a_name_with_one_inward_address_among_public_ones_connects_only_to_public(
    outside: LoopbackServer,
) -> None:
    outside.route("/rss", Reply(302, headers={"Location": "http://mixed.test/next"}))
    outside.route("/next", Reply(body=FEED, content_type=RSS))
    names = Names({"news.test": [[PUBLIC]], "mixed.test": [["10.0.0.7", PUBLIC_2]]})
    routes = Routes({(PUBLIC, 80): outside.port, (PUBLIC_2, 80): outside.port})
    (outcome,) = run([rss("http://news.test/rss")], names, routes)
    assert outcome.state == "ok"
    assert routes.dialled == [(PUBLIC, 80), (PUBLIC_2, 80)]


def test_redirects_between_inside_hosts_are_followed(outside: LoopbackServer) -> None:
    # The user pointed us inside; moving around inside is what that server does.
    outside.route("/rss", Reply(302, headers={"Location": "http://other.intranet.test/feed"}))
    outside.route("/feed", Reply(body=FEED, content_type=RSS))
    names = Names({"intranet.test": [["10.1.2.3"]], "other.intranet.test": [["10.9.8.7"]]})
    routes = Routes({("10.1.2.3", 80): outside.port, ("10.9.8.7", 80): outside.port})
    (outcome,) = run([rss("http://intranet.test/rss")], names, routes)
    assert outcome.state == "ok"


def test_once_a_public_host_answered_no_later_hop_goes_inside(
    outside: LoopbackServer, inside: LoopbackServer
) -> None:
    # Configured on loopback (allowed) → a public host (allowed) → back inside (refused).
    start = inside.route("/start", Reply(302, headers={"Location": "http://news.test/rss"}))
    outside.route("/rss", Reply(302, headers={"Location": inside.url("/secret")}))
    names = Names({"news.test": [[PUBLIC]]})
    routes = Routes({(PUBLIC, 80): outside.port})
    (outcome,) = run([rss(start)], names, routes)
    assert outcome.state == "failed"
    assert outcome.reason is not None and outcome.reason.startswith("redirect refused: 127.0.0.1")
    assert [r.path for r in inside.requests] == ["/start"]


def test_link_local_is_never_contacted_even_when_configured() -> None:
    names = Names({"metadata.test": [["fe80::a9fe:a9fe"]]})
    routes = Routes()
    outcomes = run(
        [
            rss("http://169.254.169.254/latest/meta-data/", "aws"),
            rss("http://metadata.test/", "v6"),
        ],
        names,
        routes,
    )
    assert [o.reason for o in outcomes] == [
        "refused: 169.254.169.254 is a link-local address, which is never contacted",
        "refused: metadata.test (fe80::a9fe:a9fe) is a link-local address, which is never contacted",
    ]
    assert routes.dialled == []


def test_dns_rebinding_gains_nothing(outside: LoopbackServer, inside: LoopbackServer) -> None:
    """The name answers public, then loopback. Each connection resolves once and connects to the
    address it checked: the first run reaches the public server, the second is refused, and the
    inside server never hears from us."""
    outside.route(
        "/rss", Reply(302, headers={"Location": f"http://rebind.test:{inside.port}/secret"})
    )
    elsewhere = LoopbackServer()
    try:
        elsewhere.route("/secret", Reply(body=FEED, content_type=RSS))
        names = Names({"news.test": [[PUBLIC]], "rebind.test": [[PUBLIC_2], ["127.0.0.1"]]})
        routes = Routes({(PUBLIC, 80): outside.port, (PUBLIC_2, inside.port): elsewhere.port})
        (first,) = run([rss("http://news.test/rss")], names, routes)
        assert first.state == "ok"  # from the public address that was checked
        assert names.asked.count("rebind.test") == 1  # one answer, used for check and connect
        assert len(elsewhere.requests) == 1
        (second,) = run([rss("http://news.test/rss")], names, routes)
        assert second.state == "failed"
        assert second.reason == (
            "redirect refused: rebind.test (127.0.0.1) is a loopback address "
            "and the redirect came from a public one"
        )
        assert inside.requests == []
    finally:
        elsewhere.close()


# ------------------------------------------------------------------ credentials stay home


def test_credentials_are_dropped_when_the_port_changes(outside: LoopbackServer) -> None:
    with serve() as other:
        other.route("/feed", Reply(body=FEED, content_type=RSS))
        outside.route("/rss", Reply(307, headers={"Location": other.url("/feed")}))
        outside.route("/same", Reply(302, headers={"Location": "/here"}))
        outside.route("/here", Reply(body=FEED, content_type=RSS))

        async def fetch(url: str) -> None:
            from scrapers.http import open_session

            async with open_session(fast_settings()) as session:
                await session.fetch(
                    url,
                    headers={
                        "Authorization": "Bearer abc",
                        "X-Api-Key": "k",
                        "Cookie": "sid=1",
                        "X-Request-Note": "kept",
                    },
                )

        asyncio.run(fetch(outside.url("/rss")))
        asyncio.run(fetch(outside.url("/same")))
    (moved,) = other.requests
    assert "authorization" not in moved.headers
    assert "x-api-key" not in moved.headers
    assert "cookie" not in moved.headers
    assert moved.headers["x-request-note"] == "kept"
    # Same scheme, host and port: the credentials were meant for it.
    (here,) = outside.requests_to("/here")
    assert here.headers["authorization"] == "Bearer abc"


def test_credentials_are_dropped_when_the_host_changes(outside: LoopbackServer) -> None:
    outside.route("/rss", Reply(302, headers={"Location": f"http://other.test:{outside.port}/b"}))
    outside.route("/b", Reply(body=FEED, content_type=RSS))
    names = Names({"news.test": [[PUBLIC]], "other.test": [[PUBLIC]]})
    routes = Routes({(PUBLIC, outside.port): outside.port})
    (outcome,) = run([rss(f"http://u:pw@news.test:{outside.port}/rss")], names, routes)
    assert outcome.state == "ok"
    first, second = outside.requests
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"u:pw").decode()
    assert "authorization" not in second.headers


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_https_to_http_on_the_same_host_drops_credentials(
    ca: trustme.CA, outside: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("site.test").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    secure = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    secure.expect_request("/feed").respond_with_data(
        "", status=301, headers={"Location": "http://site.test/feed"}
    )
    secure.start()
    names = Names({"site.test": [[PUBLIC]]})
    routes = Routes({(PUBLIC, 443): secure.port, (PUBLIC, 80): outside.port})

    async def fetch_with_a_token() -> int:
        from scrapers.http import open_session

        network = Network(resolver=names, dial=routes)
        async with open_session(fast_settings(), network) as session:
            url = "https://site.test/feed"
            return (await session.fetch(url, headers={"Authorization": "Bearer t0ken"})).status

    try:
        outside.route("/feed", Reply(body=FEED, content_type=RSS))
        (outcome,) = run([rss("https://me:hunter2@site.test/feed")], names, routes)
        assert asyncio.run(fetch_with_a_token()) == 200
        sent_over_tls = [request.headers.get("Authorization") for request, _ in secure.log]
    finally:
        secure.clear()
        secure.stop()
    assert outcome.state == "ok"  # TLS named site.test although we dialled an address
    assert sent_over_tls == ["Basic " + base64.b64encode(b"me:hunter2").decode(), "Bearer t0ken"]
    assert [r.headers.get("authorization") for r in outside.requests] == [None, None]
    assert "hunter2" not in repr(outcome)


def _tls_server(ca: trustme.CA, answer: bytes) -> tuple[socket.socket, int]:
    """A TLS server for site.test that answers every connection with `answer` and closes it
    the way many servers do: without TLS's close_notify."""
    import threading

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("site.test").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_forever() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the test closed the listener
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    tls.sendall(answer)
            except (OSError, ssl.SSLError):
                conn.close()  # a client that refused our certificate

    threading.Thread(target=serve_forever, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_tls_body_ended_by_close_without_close_notify_is_read_whole(
    ca: trustme.CA, outside: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    # No Content-Length: the end of the connection is the end of the body.
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: " + RSS.encode() + b"\r\n\r\n" + FEED
    listener, port = _tls_server(ca, answer)
    try:
        names = Names({"site.test": [[PUBLIC]]})
        (outcome,) = run([rss("https://site.test/feed")], names, Routes({(PUBLIC, 443): port}))
    finally:
        listener.close()
    # The same feed over plain HTTP, for comparison.
    (plain,) = collect([rss(outside.route("/feed", Reply(body=FEED, content_type=RSS)))], {})
    assert outcome.state == "ok", outcome.reason
    assert [i.title for i in outcome.items] == [i.title for i in plain.items]
    assert outcome.items


def test_an_untrusted_certificate_fails_the_source_with_a_reason(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = trustme.CA()  # we trust this one; the server's certificate is from `ca`
    ca_file = tmp_path / "ca.pem"
    stranger.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    listener, port = _tls_server(ca, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    try:
        names = Names({"site.test": [[PUBLIC]]})
        (outcome,) = run([rss("https://site.test/feed")], names, Routes({(PUBLIC, 443): port}))
    finally:
        listener.close()
    assert outcome.state == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith("TLS certificate problem (site.test): "), outcome.reason


def test_307_and_308_never_resend_a_request_body_to_another_host(
    outside: LoopbackServer,
) -> None:
    with serve() as thief:
        thief.route("/steal", Reply(200, "thanks"))
        for status in (307, 308):
            outside.route(f"/t{status}", Reply(status, headers={"Location": thief.url("/steal")}))

        async def post(url: str) -> str:
            from scrapers.errors import SourceError
            from scrapers.http import open_session

            async with open_session(fast_settings()) as session:
                try:
                    await session.fetch(url, method="POST", data={"client_secret": "s3cr3t"})
                except SourceError as exc:
                    return exc.reason
            return "followed"

        reasons = [asyncio.run(post(outside.url(f"/t{status}"))) for status in (307, 308)]
    assert (
        reasons
        == [
            f"redirect to {thief.url('/steal')} not followed: it would send the request body to "
            "another host"
        ]
        * 2
    )
    assert thief.requests == []


def test_a_307_on_the_same_origin_keeps_method_and_body(outside: LoopbackServer) -> None:
    outside.route("/a", Reply(307, headers={"Location": "/b"}))
    outside.route("/b", Reply(200, "ok"))

    async def post() -> int:
        from scrapers.http import open_session

        async with open_session(fast_settings()) as session:
            return (await session.fetch(outside.url("/a"), method="POST", data={"x": "1"})).status

    assert asyncio.run(post()) == 200
    moved = outside.requests_to("/b")[0]
    assert (moved.method, moved.body) == ("POST", b"x=1")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_token_requests_follow_no_redirect(outside: LoopbackServer, status: int) -> None:
    with serve() as thief:
        thief.route("/token", Reply(200, '{"access_token": "t", "expires_in": 60}'))
        token_url = outside.route(
            "/token", Reply(status, headers={"Location": thief.url("/token")})
        )
        spec = SourceSpec(
            name="opensky",
            kind="opensky",
            language="en",
            options={
                "client_id": "me",
                "client_secret": "s3cr3t-value",
                "token_url": token_url,
                "api_root": outside.url("/api"),
            },
        )
        (outcome,) = collect([spec], {}, fast_settings())
    assert outcome.state == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"OpenSky token request failed: HTTP {status}")
    assert "s3cr3t" not in outcome.reason
    assert thief.requests == []
    assert len(outside.requests_to("/token")) == 1


# ------------------------------------------------------------------ user information never shows


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host/feed", "https://***@host/feed"),
        ("https://user@host/feed", "https://***@host/feed"),
        ("https://u@srv:SECRET@host:8443/x", "https://***@host:8443/x"),
        (
            "https://host/feed?a=1&token=abc&api_key=k&b=2",
            "https://host/feed?a=1&token=***&api_key=***&b=2",
        ),
        ("https://host/f?password=p#top", "https://host/f?password=***#top"),
        ("https://host/path@not-userinfo", "https://host/path@not-userinfo"),
        ("https://host/feed", "https://host/feed"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_one_line_hides_user_information_before_cutting() -> None:
    text = "failed: " + "x" * 280 + " https://me:a-very-long-password@host/feed"
    line = one_line(text, 300)
    assert "password" not in line and "a-very" not in line
    assert one_line("see http://a:b@h/x and 'https://c:d@h/y'") == (
        "see http://***@h/x and 'https://***@h/y'"
    )


def test_feed_password_never_shows_in_reasons_or_items(outside: LoopbackServer) -> None:
    outside.route("/rss", Reply(body=FEED, content_type=RSS))
    outside.route("/loop-a", Reply(302, headers={"Location": "/loop-b"}))
    outside.route("/loop-b", Reply(302, headers={"Location": "/loop-a"}))
    outside.route("/broken", Reply(500))
    base = f"http://reader:pa55word@127.0.0.1:{outside.port}"
    specs = [
        rss(f"{base}/rss", "ok"),
        rss(f"{base}/loop-a", "loop"),
        rss(f"{base}/broken", "broken"),
        rss(f"http://reader:pa55word@127.0.0.1:{free_port()}/x", "refused"),
        rss(f"{base}/rss\x00", "invalid"),
    ]
    outcomes = collect(specs, {spec.name: Validators() for spec in specs}, fast_settings())
    assert outcomes[0].state == "ok"
    # Relative links in the feed are resolved against the URL without its user information.
    assert all(
        "pa55word" not in item.url and "reader" not in item.url for item in outcomes[0].items
    )
    assert outcomes[1].reason == (
        f"redirect loop: http://***@127.0.0.1:{outside.port}/loop-b redirects back to "
        f"http://***@127.0.0.1:{outside.port}/loop-a"
    )
    assert all(o.state == "failed" for o in outcomes[1:])
    assert "pa55word" not in repr(outcomes)


# ------------------------------------------------------------------ offline fails fast


def test_a_name_that_does_not_resolve_fails_every_source_on_it_at_once() -> None:
    names = Names({})
    routes = Routes()
    specs = [rss(f"http://gone.test/feed{i}", f"s{i}") for i in range(6)]
    # A retry would wait at least 15 s of backoff: there must be none.
    settings = fast_settings(max_retries=3, backoff_base=30.0, backoff_max=30.0)
    started = time.monotonic()
    outcomes = run(specs, names, routes, settings)
    elapsed = time.monotonic() - started
    assert {o.reason for o in outcomes} == {"could not resolve host gone.test"}
    assert names.asked == ["gone.test"]  # one lookup, shared, remembered for the run
    assert routes.dialled == []
    assert elapsed < 10


def test_a_resolver_that_never_answers_ends_at_the_connect_timeout() -> None:
    class Silent(Names):
        async def __call__(self, host: str, port: int) -> list[str]:
            self.asked.append(host)
            await asyncio.sleep(3600)
            return []

    names = Silent({})
    specs = [rss("http://slow-dns.test/a", "a"), rss("http://slow-dns.test/b", "b")]
    started = time.monotonic()
    outcomes = run(specs, names, Routes(), fast_settings(connect_timeout=0.5))
    assert time.monotonic() - started < 10
    assert {o.reason for o in outcomes} == {
        "could not resolve host slow-dns.test (no answer from DNS within 0.5 s)"
    }
    assert names.asked == ["slow-dns.test"]


def test_a_failed_lookup_is_remembered_for_the_rest_of_the_run() -> None:
    from scrapers.errors import SourceError
    from scrapers.http import open_session

    names = Names({})

    async def one_after_another() -> list[str]:
        reasons = []
        async with open_session(fast_settings(), Network(resolver=names, dial=Routes())) as s:
            for path in ("/a", "/b", "/c"):
                try:
                    await s.fetch(f"http://Gone.test{path}")
                except SourceError as exc:
                    reasons.append(exc.reason)
        return reasons

    assert asyncio.run(one_after_another()) == ["could not resolve host gone.test"] * 3
    assert names.asked == ["gone.test"]


def test_paced_sources_on_a_dead_name_do_not_wait_their_turn() -> None:
    # Four searches on one host, 20 s apart when it answers; no pause when it cannot.
    specs = [
        SourceSpec(
            name=f"news-{n}",
            kind="google_news",
            language="en",
            queries=(("", f"query {n}"),),
            options={"base_url": "http://search.test/rss/search", "min_interval": 20},
        )
        for n in range(4)
    ]
    names = Names({})
    started = time.monotonic()
    outcomes = run(specs, names, Routes())
    assert time.monotonic() - started < 10
    assert {o.reason for o in outcomes} == {
        f'query "query {n}": could not resolve host search.test' for n in range(4)
    }
    assert names.asked == ["search.test"]
