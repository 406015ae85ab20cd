"""Every parser and text function on hostile input: never a crash, never a hang.

Hypothesis feeds each function random and markup-shaped input with a time budget per input
(`deadline`): a function that raises anything but SourceError, or that takes too long on one
input, fails. The linearity tests then grow the known bombs (runs of `<!---->`, `&lt;`, `<`,
unclosed comments and scripts, DOCTYPE brackets, long character references) tenfold and require
well under a hundredfold the time: a quadratic function cannot pass, a linear one always does.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapers.dates import parse_date, parse_jalali
from scrapers.errors import SourceError
from scrapers.feeds import parse_feed, web_link
from scrapers.gdelt import parse_articles
from scrapers.http import HttpSettings
from scrapers.opensky import parse_flights
from scrapers.page import watched_text
from scrapers.text import collapse, decode_body, detect_charset, html_to_lines, html_to_text

SETTINGS = HttpSettings()
NOW = datetime(2026, 3, 2, tzinfo=UTC)
# One second for any one input of the sizes generated here (a few KB); the linearity tests below
# cover megabytes.
FUZZ = settings(
    max_examples=150,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MARKUP = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "&",
            ";",
            "#",
            "!",
            "-",
            "/",
            "'",
            '"',
            "=",
            "?",
            "[",
            "]",
            " ",
            "\n",
            "<!--",
            "-->",
            "<!---->",
            "&lt;",
            "&amp;",
            "&#",
            "&#x",
            "9" * 12,
            "&nbsp;",
            "<p>",
            "</p>",
            "<br/>",
            "<b",
            "<script>",
            "</script>",
            "<style>",
            "<li>",
            "<a href='",
            "http://e.example/",
            "javascript:",
            "\x00",
            "\x9b",
            "\u200c",
            "تبریز",
            "İ",
            "x",
        ]
    ),
    max_size=400,
).map("".join)
TEXT = st.one_of(st.text(max_size=2000), MARKUP)

FEED_PARTS = [
    "<?xml version='1.0' encoding='utf-8'?>",
    "<?xml version='1.0' encoding='utf-16'?>",
    "<!DOCTYPE rss [",
    "<!ENTITY a 'aaaaaaaaaa'>",
    "<!ENTITY b '&a;&a;&a;&a;'>",
    "]>",
    "<!DOCTYPE html>",
    "<!-- c -->",
    "<rss version='2.0'>",
    "</rss>",
    "<channel>",
    "</channel>",
    "<item>",
    "</item>",
    "<title>",
    "</title>",
    "<link>",
    "</link>",
    "<guid>",
    "</guid>",
    "<pubDate>",
    "</pubDate>",
    "<description>",
    "</description>",
    "Sat, 19 Jul 2025 10:30:00 +03:30",
    "۱۴۰۴/۰۴/۲۸ ۱۰:۳۰",
    "IRST",
    "http://e.example/1",
    "HTTP://E.example/2",
    "javascript:alert(1)",
    "&a;",
    "&b;",
    "&bogus;",
    "&lt;ol&gt;&lt;li&gt;",
    "&lt;a href=&quot;http://o.example/&quot;&gt;h&lt;/a&gt;",
    "<![CDATA[",
    "]]>",
    "<feed xmlns='http://www.w3.org/2005/Atom'>",
    "<feed>",
    "</feed>",
    "<entry>",
    "</entry>",
    "<link rel='license' href='http://l.example/'/>",
    "<link href='/rel'/>",
    "<title mode='base64'>QQ==</title>",
    "<html>",
    "<rdf:RDF xmlns:rdf='x'>",
    "x",
    " ",
]
FEED = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.sampled_from(FEED_PARTS), max_size=120).map(lambda p: "".join(p).encode()),
)


@FUZZ
@given(TEXT)
def test_text_functions(text: str) -> None:
    for result in (html_to_text(text), html_to_text(text, 50), collapse(text)):
        assert "\n" not in result and "\x00" not in result and "\x9b" not in result
    assert len(html_to_text(text, 50)) <= 50
    assert all("\x9b" not in line for line in html_to_lines(text))


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([None, "text/xml; charset=utf-16", "text/html"]))
def test_decoding(body: bytes, content_type: str | None) -> None:
    detect_charset(body, content_type, markup="html", language="fa")
    assert isinstance(decode_body(body, content_type, markup="xml", language="ru"), str)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    "Sat,",
                    "19",
                    "Jul",
                    "2025",
                    "10:30:00",
                    "+03:30",
                    "GMT-01:01",
                    "IRST",
                    "XYZ",
                    "۱۴۰۴/۰۴/۲۸",
                    "۱۰:۳۰",
                    "تیر",
                    "T",
                    "Z",
                    "-",
                    ":",
                    " ",
                    "99999999999",
                ]
            ),
            max_size=30,
        ).map(" ".join),
    )
)
def test_dates(value: str) -> None:
    parsed = parse_date(value, now=NOW)
    assert parsed is None or parsed.tzinfo is not None
    parse_jalali(value)


@FUZZ
@given(st.text(max_size=500))
def test_links(value: str) -> None:
    try:
        link = web_link(value, "https://base.example/feed")
    except ValueError:
        return
    assert link is None or link.startswith(("http://", "https://"))


@FUZZ
@given(FEED, st.booleans())
def test_feeds(body: bytes, clusters: bool) -> None:
    try:
        feed = parse_feed(
            body,
            "application/xml",
            base_url="https://e.example/",
            language="fa",
            settings=SETTINGS,
            clusters=clusters,
        )
    except SourceError as exc:
        assert "\n" not in exc.reason
        return
    for item in feed.items:
        assert item.url.startswith(("http://", "https://"))
        assert len(item.title) <= SETTINGS.max_title_chars


ARTICLE_PARTS = [
    '{"articles": [',
    "]}",
    "{",
    "}",
    ",",
    '"url": ',
    '"title": ',
    '"seendate": ',
    '"https://e.example/1"',
    '"20260223T171500Z"',
    '"a\\qb"',
    '"\\u12"',
    '"\\"',
    '"x"',
    "42",
    "null",
    "[",
    "]",
    ":",
    '"',
    "\\",
    "\x00",
]


@FUZZ
@given(
    st.one_of(
        st.text(max_size=2000),
        st.lists(st.sampled_from(ARTICLE_PARTS), max_size=200).map("".join),
    )
)
def test_gdelt_articles(text: str) -> None:
    try:
        result = parse_articles(
            text, slug="", max_title_chars=100, now=NOW, max_future_seconds=86_400
        )
    except SourceError:
        return
    assert all(item.url.startswith(("http://", "https://")) for item in result.items)


@FUZZ
@given(st.one_of(st.binary(max_size=500), st.from_type(list).map(lambda v: json.dumps(v).encode())))
def test_opensky_flights(body: bytes) -> None:
    try:
        flights = parse_flights(body)
    except SourceError:
        return
    assert all(isinstance(flight, dict) for flight in flights)


@FUZZ
@given(MARKUP, st.sampled_from(["body", "main", "li", "#x", "p > a"]))
def test_page_text(html: str, selector: str) -> None:
    with contextlib.suppress(SourceError):
        watched_text(html, selector)


def _timed(func: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    func(text)
    return time.perf_counter() - started


def _feed_of(payload: str) -> Callable[[str], object]:
    def run(text: str) -> object:
        try:
            return parse_feed(
                text.encode(),
                "application/xml",
                base_url="https://e.example/",
                language="en",
                settings=SETTINGS,
            )
        except SourceError:
            return None

    return run


def _title_feed(text: str) -> str:
    return f"<rss><channel><item><title>{text}</title><link>http://e.example/</link></item></channel></rss>"


BOMBS: list[tuple[str, Callable[[int], str], Callable[[str], object]]] = [
    ("html_to_text &lt;", lambda n: "&lt;" * n, html_to_text),
    ("html_to_text <", lambda n: "<" * n, html_to_text),
    ("html_to_text <a", lambda n: "<a" * n, html_to_text),
    ("html_to_text <!--", lambda n: "<!--" * n, html_to_text),
    ("html_to_text <script>", lambda n: "<script>" * n, html_to_text),
    ("html_to_text </", lambda n: "<script>" + "</" * n, html_to_text),
    ("html_to_text &#9…", lambda n: "&#" + "9" * n, html_to_text),
    ("html_to_lines <p", lambda n: "<p" * n, lambda t: html_to_lines(t)),
    ("feed <!----> prolog", lambda n: "<!---->" * n + "<html></html>", _feed_of("")),
    ("feed DOCTYPE brackets", lambda n: "<!DOCTYPE x [" + "[" * n, _feed_of("")),
    ("feed DOCTYPE quotes", lambda n: "<!DOCTYPE x [" + "'a'" * n + "]><rss/>", _feed_of("")),
    ("feed title &lt;", lambda n: _title_feed("&amp;lt;" * n), _feed_of("")),
    ("date long", lambda n: "1" * n, lambda t: parse_date(t)),
    ("gdelt broken", lambda n: '{"articles": [' + '{"url": "x\\q' * n, lambda t: _gdelt(t)),
]


def _gdelt(text: str) -> object:
    try:
        return parse_articles(text, slug="", max_title_chars=100, now=NOW, max_future_seconds=1)
    except SourceError:
        return None


@pytest.mark.parametrize(("name", "make", "func"), BOMBS, ids=[b[0] for b in BOMBS])
def test_known_bombs_are_linear(
    name: str, make: Callable[[int], str], func: Callable[[str], object]
) -> None:
    small, large = make(10_000), make(100_000)
    func(small)  # warm up
    short = min(_timed(func, small) for _ in range(3))
    long = min(_timed(func, large) for _ in range(2))
    # Linear work takes about 10× as long; quadratic would take 100×. The floor absorbs timer
    # noise on inputs that take microseconds.
    assert long < 30 * max(short, 0.002), f"{name}: {short:.4f} s -> {long:.4f} s"
    assert long < 2.0, f"{name}: {long:.2f} s for {len(large)} characters"
