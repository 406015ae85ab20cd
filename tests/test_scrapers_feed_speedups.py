"""The feed parser's shortcuts (issue 15) give exactly what the longer way gives.

Each shortcut is compared with the code it stands in for, kept here as the reference: the
block-tag pattern factored by prefixes against the flat alternation, `collapse`'s cheap check
for control characters, `web_link`'s common case, the body's own bytes handed to lxml instead of
its text encoded again, and `read_date` with the future check made once per feed. Hypothesis
generates inputs in and around each shortcut's shape.
"""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scrapers import text
from scrapers.dates import parse_date, read_date
from scrapers.errors import SourceError
from scrapers.feeds import parse_feed, web_link
from scrapers.limits import HttpSettings

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLAT_BLOCK_TAG = re.compile(
    r"</?(?:" + "|".join(sorted(text._BLOCK, key=len, reverse=True)) + r")(?![A-Za-z0-9])[^>]*>",
    re.ASCII | re.IGNORECASE,
)
NAMES = [*sorted(text._BLOCK), "b", "i", "span", "h7", "hr1", "pr", "lı", "LI", "Pre", "tbody"]
TAGGY = st.lists(
    st.one_of(
        st.sampled_from(NAMES).map(lambda n: f"<{n}>"),
        st.sampled_from(NAMES).map(lambda n: f"</{n} x>"),
        st.sampled_from(["<", ">", "/", " ", "a", "1", "\n", "é", "<p", "<br/>", "&amp;"]),
    ),
    max_size=30,
).map("".join)
SPACEY = st.text(
    alphabet=st.sampled_from(
        list(" \t\n\r\x0b\x0c\x1c\x1f\x00\x08\x0e\x7f\x85\x9f\xa0\u200c\u2028\u3000ab€ی")
    ),
    max_size=40,
)


def collapse_before(value: str) -> str:
    if re.search(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]", value):
        value = re.sub(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]", " ", value)
    return " ".join(value.split())


def web_link_before(raw: str | None, base_url: str) -> str | None:
    link = (raw or "").strip()
    if not link:
        return None
    if len(link) > 4096:
        raise ValueError("too long")
    link = re.sub(r"[\x00-\x1f\x7f-\x9f]", "", link)
    link = re.sub(r"\s", "%20", link)
    scheme, colon, rest = link.partition(":")
    if colon and scheme.lower() in ("http", "https"):
        url = scheme.lower() + ":" + rest
    else:
        url = urljoin(base_url, link)
    if not url.lower().startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ValueError("not a web link")
    return url


def outcome(function: object, *args: object) -> object:
    try:
        return function(*args)  # type: ignore[operator]
    except ValueError as exc:
        return ("ValueError", str(exc))


@FAST
@given(TAGGY)
@example("<pre><p x><PRE/><prex><hr><h1><h12></p ><lı>")
def test_factored_block_pattern_matches_what_the_flat_one_does(value: str) -> None:
    assert [m.span() for m in text._BLOCK_TAG.finditer(value)] == [
        m.span() for m in FLAT_BLOCK_TAG.finditer(value)
    ]


@FAST
@given(SPACEY)
@example("\u200c\x85a\x9fb")
def test_collapse_is_unchanged(value: str) -> None:
    assert text.collapse(value) == collapse_before(value)


@FAST
@given(
    st.one_of(
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(
                ["http://", "https://", "HTTP://", "http:", "https:/", "", "//", "ftp://"]
            ),
            SPACEY | st.sampled_from(["x.org/a?b#c", "", "a", "é.ir/ی", " x.org ", "x\ty"]),
        ),
        SPACEY,
    )
)
@example("https://")
@example("http://x")
@example("https:// ")
def test_web_link_is_unchanged(value: str) -> None:
    base = "http://127.0.0.1:8097/dir/feed.xml"
    assert outcome(web_link, value, base) == outcome(web_link_before, value, base)


@pytest.mark.parametrize(
    "value",
    [
        "Mon, 07 Jul 2025 10:30:00 +0330",
        "Mon, 07 Jul 2025 10:30:00 -0000",
        "07 Jul 2025 10:30 GMT",
        "2025-07-19 10:30:00 +0330",
        "۱۴۰۴/۰۵/۰۷ ۱۲:۳۰",
        "Mon, 01 Jan 1900 00:30:00 +0100",
        "Fri, 31 Dec 9999 23:00:00 -0100",
        "not a date",
        " ",
    ],
)
def test_read_date_is_parse_date_without_the_future_check(value: str) -> None:
    far = 1e12
    assert read_date(value) == parse_date(value, max_future_seconds=far)
    assert parse_date(value, now=datetime(2025, 7, 7, tzinfo=UTC), max_future_seconds=0) == (
        None
        if (parsed := read_date(value)) is None
        or parsed - datetime(2025, 7, 7, tzinfo=UTC) > timedelta(0)
        else parsed
    )


PROLOGS = [
    "",
    '<?xml version="1.0" encoding="utf-8"?>\n',
    '<?xml version="1.0"?>\n<!-- خبر — ⚡ -->\n  <?pi é?>\n',
    '<!DOCTYPE rss [<!ENTITY x "é">]>\r\n\t',
]
ROOTS = [
    "<rss><channel><title>ایرنا</title><item><title>خبر &amp; é</title>"
    "<link>https://x.org/é</link><pubDate>Mon, 07 Jul 2025 10:30:00 +0330</pubDate>"
    "</item></channel></rss>",
    "<rss><channel><item><title>a</title><link>https://x.org/a</link></itemm></channel></rss>",
    "<html><body>é</body></html>",
    "<rss><channel><item><title>&x;</title></item></channel></rss>",
]


@pytest.mark.parametrize("prolog", PROLOGS)
@pytest.mark.parametrize("root", ROOTS)
def test_utf8_body_parses_as_its_re_encoded_text_does(prolog: str, root: str) -> None:
    """A valid UTF-8 body goes to lxml as it came (after the prolog); with a BOM it goes the
    long way (decoded, then encoded again). Both must give the same feed or the same error."""
    body = (prolog + root).encode("utf-8")

    def parsed(data: bytes) -> object:
        try:
            feed = parse_feed(
                data,
                "application/rss+xml; charset=utf-8",
                base_url="http://127.0.0.1/feed.xml",
                language="fa",
                settings=HttpSettings(),
            )
        except SourceError as exc:
            return str(exc)
        return (feed.title, feed.parser, feed.items, feed.skipped)

    assert text.decode_body_checked(body, "text/xml; charset=utf-8", markup="xml")[1]
    assert not text.decode_body_checked(codecs.BOM_UTF8 + body, None, markup="xml")[1]
    assert parsed(body) == parsed(codecs.BOM_UTF8 + body)


@FAST
@given(st.binary(max_size=64), st.sampled_from([None, "text/xml; charset=utf-8", "charset=cp1256"]))
@example(b"\xef\xbb\xbfabc", "text/xml; charset=utf-8")
@example(b"caf\xc3\xa9", None)
def test_decode_body_checked_agrees_with_decode_body(body: bytes, content_type: str | None) -> None:
    decoded, verbatim = text.decode_body_checked(body, content_type, markup="xml")
    assert decoded == text.decode_body(body, content_type, markup="xml")
    if verbatim:
        assert decoded.encode("utf-8") == body
