"""The parsers' fast paths give exactly what the full readers give.

`scrapers/dates.py` reads the usual RFC 822 date ("Mon, 07 Jul 2025 10:30:00 +0330") itself
instead of going through the Jalali check and feedparser's chain of readers, and
`scrapers/text.py` strips ordinary markup with two substitutions instead of its tag-by-tag scan.
Both must be invisible: for any input, the fast path either declines or returns what the full
path returns. Hypothesis generates inputs in and around the fast paths' shapes (valid ones, and
ones a character away from valid); a few cases pin the edges by hand.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from feedparser.datetimes.rfc822 import timezone_names
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scrapers import dates
from scrapers.text import _strip_markup_fast, _strip_markup_scan, html_to_lines, html_to_text

FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ZONES = ["GMT", "UT", "UTC", "Z", "EST", "IRST", "gmt", "+0000", "-0000"]


LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # nothing is "in the future"


def full(text: str) -> datetime | None:
    """What parse_date computed before the fast path existed, after its own normalising."""
    return dates.parse_jalali(text) or dates._parse_feedparser(text)


@st.composite
def rfc822(draw: st.DrawFn) -> str:
    day_name = draw(st.sampled_from([*DAYS, ""]))
    day = draw(st.integers(0, 39))
    month = draw(st.sampled_from(MONTHS))
    year = draw(st.sampled_from([1899, 1900, 1970, 2000, 2024, 2025, 2026, 9999]))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 61)),
        draw(st.integers(0, 61)),
    )
    clock = f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if draw(st.booleans()) else "")
    numeric = (
        f"{draw(st.sampled_from('+-'))}{draw(st.integers(0, 19)):02d}{draw(st.integers(0, 99)):02d}"
    )
    zone = draw(st.sampled_from([*ZONES, numeric]))
    text = f"{day_name + ', ' if day_name else ''}{draw(st.sampled_from(['', '0']))}{day} {month} {year} {clock} {zone}"
    if draw(st.booleans()):  # one character away: replaced, inserted or deleted
        at = draw(st.integers(0, len(text) - 1))
        noise = draw(st.sampled_from([*" ,:+-/.0159aZT", "", "\u0661"]))
        text = text[:at] + noise + text[at + draw(st.integers(0, 1)) :]
    return text


@FAST
@given(rfc822())
@example("Mon, 30 Nov 2026 10:00:00 +0000")
@example("30 Nov 2026 10:00 GMT")
@example("Fri, 31 Dec 9999 23:00:00 -0100")  # past datetime's range: declined
@example("Mon, 01 Jan 1900 00:30:00 +0100")  # before 1900 in UTC: None, as the full path says
@example("Thu, 30 Feb 2026 10:00:00 +0000")  # no such day: declined
@example("Mon, 30 Nov 2026 24:00:00 +0000")  # no such hour: declined
@example("Sat, 30 Oct 2026 10:00:00 +0099")  # minutes past 59 in the offset, as feedparser reads
def test_rfc822_fast_path_agrees_with_the_full_readers(text: str) -> None:
    normal = " ".join(text.split()).translate(dates._DIGITS)
    sure, fast = dates._rfc822_fast(normal)
    if sure:
        assert fast == full(normal)
    assert dates.parse_date(text, now=LATEST) == (
        dates._parse_iso(normal) or full(normal) if normal and len(normal) <= 120 else None
    )


def test_the_common_shapes_take_the_fast_path() -> None:
    for text in ("Mon, 30 Nov 2026 10:00:00 +0330", "30 Nov 2026 10:00 GMT", "1 Dec 2026 01:00 Z"):
        assert dates._rfc822_fast(text)[0], text


def test_the_zone_table_is_feedparsers() -> None:
    assert timezone_names == dates._FEEDPARSER_ZONES


# ------------------------------------------------------------------ markup

TAGS = [
    "<p>",
    "</p>",
    "<P class='x'>",
    "<br/>",
    "<li>",
    "<lı>",  # dotless i: not an <li>
    "<link>",
    "<pre-x>",
    "<div>",
    "</DIV>",
    "<a href='/x'>",
    "</a>",
    "<b>",
    "<h1>",
    "<header>",
    "<img src=x>",
    "<!doctype html>",
    "<?php ?>",
    "<//p>",
    "<script>",
    "<script/>",
    "</script>",
    "<scripts>",
    "<style>",
    "<!--",
    "-->",
    "<",
    ">",
    "< p>",
    "<a <p>",
    "&amp;",
    "&#1575;",
    "&#99999999999;",
    "&lt;b&gt;",
    "\u200c",
    "\x9b",
]


@st.composite
def markup(draw: st.DrawFn) -> str:
    words = st.text(alphabet=string.ascii_letters + " \n\tسلام", max_size=8)
    parts = draw(st.lists(st.one_of(st.sampled_from(TAGS), words), max_size=14))
    return "".join(parts)


@FAST
@given(markup(), st.sampled_from([" ", "\n"]))
@example("<p>one</p><p>two &amp; three</p>", " ")
@example("<a <p>x</p>", " ")
@example("<lı>x</lı>", " ")
@example("a < b > c", " ")
@example("<script>var a = '<p>';</script>after", " ")
def test_markup_fast_path_agrees_with_the_scan(text: str, block: str) -> None:
    fast = _strip_markup_fast(text, block)
    if fast is not None:
        assert fast == _strip_markup_scan(text, block)


@pytest.mark.parametrize(
    "text",
    ["<p>Iran Air launches <b>Tabriz–Baku</b> flights</p><p>From June.</p>", "plain &amp; simple"],
)
def test_ordinary_markup_takes_the_fast_path(text: str) -> None:
    assert _strip_markup_fast(text, " ") is not None
    assert html_to_text(text) == " ".join(_strip_markup_scan(text, " ").split())
    assert html_to_lines(text) == [
        " ".join(line.split())
        for line in _strip_markup_scan(text, "\n").splitlines()
        if line.strip()
    ]
