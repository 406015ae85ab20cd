"""Charset detection, markup stripping and date parsing, case by case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scrapers.dates import parse_date
from scrapers.text import detect_charset, html_to_lines, html_to_text

PERSIAN_1256 = "شهرك صنعتي".encode("cp1256")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "content_type", "markup", "language", "expected"),
    [
        (b"\xef\xbb\xbf<rss/>", "text/xml; charset=windows-1256", "xml", None, "utf-8"),
        (PERSIAN_1256, "text/xml; charset=windows-1256", "xml", None, "cp1256"),
        (PERSIAN_1256, 'text/html; charset="Windows-1256"', "html", None, "cp1256"),
        (
            b'<?xml version="1.0" encoding="windows-1256"?>' + PERSIAN_1256,
            None,
            "xml",
            None,
            "cp1256",
        ),
        (b'<meta charset="windows-1256">' + PERSIAN_1256, "text/html", "html", None, "cp1256"),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1256">'
            + PERSIAN_1256,
            "text/html",
            "html",
            None,
            "cp1256",
        ),
        # A header that claims UTF-8 for bytes that are not is overruled by the next signal.
        (
            b'<?xml version="1.0" encoding="windows-1256"?>' + PERSIAN_1256,
            "text/xml; charset=utf-8",
            "xml",
            None,
            "cp1256",
        ),
        ("شهرک".encode(), "text/xml", "xml", "fa", "utf-8"),
        (PERSIAN_1256, "text/xml", "xml", "fa", "cp1256"),
        ("Баку".encode("cp1251"), None, "text", "ru", "cp1251"),
        (b"caf\xe9", "text/plain; charset=iso-8859-1", "text", None, "cp1252"),
        (b"plain", "text/plain; charset=nonsense", "text", None, "utf-8"),
    ],
    ids=[
        "bom-wins",
        "header",
        "quoted-header",
        "xml-declaration",
        "meta-charset",
        "meta-http-equiv",
        "lying-header",
        "utf8-sniffed",
        "1256-from-language",
        "1251-from-language",
        "latin1-is-1252",
        "unknown-label-ignored",
    ],
)
def test_detect_charset(
    body: bytes, content_type: str | None, markup: str, language: str | None, expected: str
) -> None:
    assert detect_charset(body, content_type, markup=markup, language=language) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two&nbsp;&amp;&#160;three</p>", "One Two & three"),
        ("Hello <b>world</b>!", "Hello world!"),
        ("a<br>b<br/>c", "a b c"),
        ("<script>var x = '<p>';</script>kept<style>p{}</style>", "kept"),
        ("<!-- hidden --> shown", "shown"),
        ("می\u200cشود", "می\u200cشود"),
        ("AT&amp;T", "AT&T"),
        ("bell\x07char", "bell char"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_lines_splits_at_blocks_only() -> None:
    html = "<h1>Routes</h1><ul><li><b>Baku</b> – Tabriz</li><li>Baku – Moscow</li></ul>"
    assert html_to_lines(html) == ["Routes", "Baku – Tabriz", "Baku – Moscow"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 22 Sep 2025 14:35:00 GMT", datetime(2025, 9, 22, 14, 35, tzinfo=UTC)),
        ("Mon, 23 Feb 2026 17:40:00 +0330", datetime(2026, 2, 23, 14, 10, tzinfo=UTC)),
        ("Mon, 23 Feb 2026 17:40:00 -0000", datetime(2026, 2, 23, 17, 40, tzinfo=UTC)),
        ("2026-02-23T18:05:00+04:00", datetime(2026, 2, 23, 14, 5, tzinfo=UTC)),
        ("2026-02-23T14:05:00Z", datetime(2026, 2, 23, 14, 5, tzinfo=UTC)),
        ("2026-02-23T14:05:00.123Z", datetime(2026, 2, 23, 14, 5, 0, 123000, tzinfo=UTC)),
        ("2026-02-23", datetime(2026, 2, 23, tzinfo=UTC)),
        ("۷ مرداد ۱۴۰۴", datetime(2025, 7, 29, tzinfo=UTC)),
        ("۷ امرداد ۱۴۰۴", datetime(2025, 7, 29, tzinfo=UTC)),
        ("۱۳ شهريور ۱۴۰۴", datetime(2025, 9, 4, tzinfo=UTC)),
        ("سه‌شنبه ۷ مرداد ۱۴۰۴ - ۱۲:۳۰", datetime(2025, 7, 29, 9, 0, tzinfo=UTC)),
        ("1404/05/07 12:30", datetime(2025, 7, 29, 9, 0, tzinfo=UTC)),
        ("۱۹ اسفند ۱۴۰۰", datetime(2022, 3, 10, tzinfo=UTC)),
        ("Mon, 01 Mar 2026 09:00:00 GMT", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("Tue, 03 Mar 2026 08:00:00 GMT", datetime(2026, 3, 3, 8, tzinfo=UTC)),  # < 1 day ahead
        ("Wed, 04 Mar 2026 10:00:00 GMT", None),  # more than a day ahead
        ("Tue, 29 Jul 1404 08:30:00 +0330", None),  # Jalali year in an RFC 822 shape
        ("۳۱ اسفند ۱۴۰۳", None),  # no such day
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: str | None, expected: datetime | None) -> None:
    assert parse_date(value, now=NOW) == expected
