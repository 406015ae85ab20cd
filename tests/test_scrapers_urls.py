"""scrapers/urls.py reads URLs exactly as httpx does (its rules, without importing httpx).

The base URL of a feed decides where its relative links point, and so which evidence URLs are
stored: the port of httpx's parser must not change one character. Hypothesis builds URLs from
pieces that exercise each rule (case, IDNA, default ports, dot segments, percent-encoding, IPv6,
user information, odd characters), and the two parsers must agree on every one, or both refuse.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scrapers.urls import URL, InvalidURL

SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMES = ["http", "HTTPS", "https", "ftp", "", "h2"]
HOSTS = ["example.org", "WWW.Example.ORG", "127.0.0.1", "[::1]", "[fe80::1%25eth0]", "bücher.de"]
HOSTS += ["xn--bcher-kva.de", "300.1.1.1", "a b.org", "ex%41mple.org", "", "[zz]", "例子.测试"]
PORTS = ["", ":80", ":443", ":8080", ":", ":x", ":99999"]
SEGMENTS = ["a", ".", "..", "b c", "ü", "%20", "%zz", "~x", "{}", "a:b", "`", "|", "", "x%2Fy"]
QUERIES = [None, "", "q=1", "a b=ü&c=%41", "x=<>", "#"]


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    userinfo = draw(st.sampled_from(["", "user@", "user:p%40ss@", "us er:pa ss@", ":@"]))
    host = draw(st.sampled_from(HOSTS))
    port = draw(st.sampled_from(PORTS))
    path = "/".join(draw(st.lists(st.sampled_from(SEGMENTS), max_size=5)))
    if draw(st.booleans()):
        path = "/" + path
    query = draw(st.sampled_from(QUERIES))
    fragment = draw(st.sampled_from([None, "", "top", "a b"]))
    authority = f"//{userinfo}{host}{port}" if draw(st.booleans()) or scheme else ""
    text = (f"{scheme}:" if scheme else "") + authority + path
    text += f"?{query}" if query is not None else ""
    text += f"#{fragment}" if fragment is not None else ""
    if draw(st.booleans()):
        text += draw(st.text(max_size=4))
    return text


def httpx_view(url: httpx.URL) -> tuple[str, str, str, int | None, str]:
    return (str(url), url.raw_path.decode(), url.netloc.decode(), url.port, url.raw_host.decode())


def ours_view(url: URL) -> tuple[str, str, str, int | None, str]:
    return (str(url), url.target, url.netloc, url.port, url.host)


@SETTINGS
@given(urls())
@example("HTTP://Example.ORG:80/a/./b/../c?x=1#f")
@example("https://user:secret@example.org/feed")
@example("http://[::1]:8080/")
@example("http://bücher.de/über uns")
@example("http://example.org/%7Euser/%zz")
def test_parsing_agrees_with_httpx(text: str) -> None:
    try:
        expected = httpx.URL(text)
    except httpx.InvalidURL:
        with pytest.raises(InvalidURL):
            URL.parse(text)
        return
    ours = URL.parse(text)
    assert ours_view(ours) == httpx_view(expected)
    assert str(ours.without_userinfo()) == str(expected.copy_with(userinfo=b""))


@SETTINGS
@given(urls(), urls())
@example("https://example.org/a/b/feed.xml", "../c?x=1")
@example("https://example.org/a/b", "//other.org/x")
@example("http://example.org/", "https://example.net:443/y")
def test_joining_agrees_with_httpx(base: str, location: str) -> None:
    try:
        expected = httpx.URL(base).join(location)
    except httpx.InvalidURL:
        with pytest.raises(InvalidURL):
            URL.parse(base).join(location)
        return
    assert ours_view(URL.parse(base).join(location)) == httpx_view(expected)


# ------------------------------------------------------------------ the request sent


DEFAULTS = {
    "Accept": "*/*",
    "Connection": "keep-alive",
    "User-Agent": "tracker/test",
    "Accept-Encoding": "gzip, deflate",
}


def httpx_request(url: str, headers: dict[str, str], data: dict[str, str] | None) -> bytes:
    """What httpx's client puts on the wire for the same call (request line, headers, body)."""
    client = httpx.Client(
        headers={"User-Agent": "tracker/test", "Accept-Encoding": "gzip, deflate"}
    )
    request = client.build_request("POST" if data else "GET", url, headers=headers, data=data)
    parsed = httpx.URL(url)
    if parsed.username or parsed.password:
        request.headers["Authorization"] = httpx.BasicAuth(
            parsed.username, parsed.password
        )._auth_header
    lines = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{k.decode()}: {v.decode()}" for k, v in request.headers.raw]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + request.read()


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            "http://example.org/feed?x=1",
            "https://u:p%40ss@example.org:8443/a b",
            "http://bücher.de/",
            "http://[::1]:8080/x",
        ]
    ),
    st.dictionaries(
        st.sampled_from(["Accept", "If-None-Match", "Authorization", "X-Note", "connection"]),
        st.sampled_from(['"v1"', "application/rss+xml", "Bearer t", "x y"]),
        max_size=3,
    ),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b c"]), st.text(max_size=3))),
)
def test_request_bytes_are_httpx_s(
    url: str, headers: dict[str, str], data: dict[str, str] | None
) -> None:
    from scrapers.wire import request_bytes

    data = data or None
    ours = request_bytes("POST" if data else "GET", URL.parse(url), DEFAULTS, headers, data)
    assert ours == httpx_request(url, headers, data)
