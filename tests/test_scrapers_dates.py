"""Dates: feedparser's own date cases, zones by name, Iranian offsets and Jalali dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from feedparser.datetimes import _parse_date as _feedparser_date

from scrapers.dates import _iran_rule_offset, parse_date, tehran_offset

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# Every input of feedparser's own date tests (tests/runtests.py of feedparser 6.0.11, BSD
# licence). parse_date must give what feedparser's whole chain of readers gives (to the second),
# except for the differences listed here with their reasons.
FEEDPARSER_INPUTS = [
    "Κυρ, 11 Ιούλ 2004 12:00:00 EST",
    "2004-júlie-13T9:15-05:00",
    "2004-július-13T9:15-05:00",
    "2003-12-31T10:14:55.1234Z",
    "2003-012-31T10:14:55+00:00",
    "Fri, 2006/09/15 08:19:53 EDT",
    "Thu, 30 Apr 2015 08:57:00 MET",
    "Thu, 30 Apr 2015 08:57:00 MEST",
    "Thu, 01 Jan 0100 00:00:01 +0100",
    "Thu, 01 Jan 04 19:48:21 GMT",
    "Thu, 01 Jan 2004 19:48:21 GMT",
    "Thu,  5 Apr 2012 10:00:00 GMT",
    "Wed, 19 Aug 2009 18:28:00 Etc/GMT",
    "Wed, 19 Feb 2012 22:40:00 GMT-01:01",
    "Wed, 19 Feb 2012 22:40:00 -01:01",
    "Mon, 13 Feb, 2012 06:28:00 UTC",
    "Thu, 01 Jan 2004 00:00 GMT",
    "Thu, 01 Jan 2004",
    "Mon, 26 January 2004 16:31:00 AT",
    "Mon, 26 January 2004 16:31:00 ET",
    "Mon, 26 January 2004 16:31:00 CT",
    "Mon, 26 January 2004 16:31:00 MT",
    "Mon, 26 January 2004 16:31:00 PT",
    "Thu Aug 30 2012 17:26:16 +0200",
    "Sun, 16 Dec 2012 1:2:3:4 GMT",
    "Sun, 16 zzz 2012 11:47:32 GMT",
    "Sun, Dec x 2012 11:47:32 GMT",
    "Sun, 16 Dec zz 11:47:32 GMT",
    "Sun, 16 Dec 2012 11:47:32 +zz:00",
    "Sun, 16 Dec 2012 11:47:32 +00:zz",
    "Sun, 99 Jun 2009 12:00:00 GMT",
    "Sun Jan  4 16:29:06 2004",
    "Sun Jul 15 01:16:00 +0000 2012",
    "2003-12-31T10:14:55Z",
    "2003-12-31T10:14:55-08:00",
    "2003-12-31T18:14:55+08:00",
    "2007-04-23T23:25:47.538+10:00",
    "2003-12-31",
    "2003-12",
    "2003",
    "2004-02-28T18:14:55-08:00",
    "2003-02-28T18:14:55-08:00",
    "2000-02-28T18:14:55-08:00",
    "9999-12-31T23:59:59-99:99",
    "2003-12-31T25:14:55Z",
    "2003-12-31T10:61:55Z",
    "2003-12-31T10:14:61Z",
    "22013",
    "013",
    "2013-01-27-01",
    "2013-01-28T11:30:00-06:00Textra",
    "2013-xx-27",
    "2013-01-28T09:xx:00Z",
    "2013-01-28T09:00:00+00:xx",
    "2004-07-08 23:56:58 -00:20",
    "2004-07-08 23:56:58",
    "2004-07-08 23:56:58.0",
]
DIFFERENCES: dict[str, tuple[datetime | None, str]] = {
    "Thu, 01 Jan 0100 00:00:01 +0100": (None, "a year before 1900 is no publication date"),
    "2003-12-31T10:14:55.1234Z": (
        utc(2003, 12, 31, 10, 14, 55, 123400),
        "Python's ISO reader keeps the fraction; equal to the second",
    ),
    "2007-04-23T23:25:47.538+10:00": (
        utc(2007, 4, 23, 13, 25, 47, 538000),
        "Python's ISO reader keeps the fraction; equal to the second",
    ),
    "2013-01-27-01": (utc(2013, 1, 27, 1), "ISO 8601 reads '-01' as the offset -01:00"),
    "9999-12-31T23:59:59-99:99": (None, "year 10000 does not fit a datetime"),
}


def feedparser_answer(value: str) -> datetime | None:
    parsed = _feedparser_date(value)
    return datetime(*parsed[:6], tzinfo=UTC) if parsed else None


@pytest.mark.parametrize("value", FEEDPARSER_INPUTS)
def test_feedparser_date_cases(value: str) -> None:
    expected = DIFFERENCES[value][0] if value in DIFFERENCES else feedparser_answer(value)
    assert parse_date(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Iran's offset, with and without the colon, by name, and in ISO shapes.
        ("Sat, 19 Jul 2025 10:30:00 +03:30", utc(2025, 7, 19, 7)),
        ("Sat, 19 Jul 2025 10:30:00 +0330", utc(2025, 7, 19, 7)),
        ("Sat, 19 Jul 2025 10:30:00 IRST", utc(2025, 7, 19, 7)),
        ("Sat, 19 Jul 2021 10:30:00 IRDT", utc(2021, 7, 19, 6)),
        ("Sat, 19 Jul 2025 10:30:00 +0330 (IRST)", utc(2025, 7, 19, 7)),
        ("2025-07-19 10:30:00 +0330", utc(2025, 7, 19, 7)),
        ("2025-07-19 10:30:00 IRST", utc(2025, 7, 19, 7)),
        ("2025-07-19T10:30:00+03:30", utc(2025, 7, 19, 7)),
        # Near midnight the day changes: 01:10 in Tehran is the evening before in UTC.
        ("Sun, 20 Jul 2025 01:10:00 +03:30", utc(2025, 7, 19, 21, 40)),
        # Azerbaijan and Moscow.
        ("Sat, 19 Jul 2025 10:30:00 AZT", utc(2025, 7, 19, 6, 30)),
        ("Sat, 19 Jul 2025 10:30:00 +04:00", utc(2025, 7, 19, 6, 30)),
        ("Sat, 19 Jul 2025 10:30:00 MSK", utc(2025, 7, 19, 7, 30)),
        ("Sat, 19 Jul 2025 10:30:00 msk", utc(2025, 7, 19, 7, 30)),
        # A zone nobody knows, or AM/PM where the zone belongs: unknown, never UTC.
        ("Sat, 19 Jul 2025 10:30:00 XYZT", None),
        ("Sat, 19 Jul 2025 10:30:00 IST", None),  # India, Ireland or Israel
        ("July 19, 2025 10:30 PM", None),
        ("2025-07-19 10:30:00 Mars/Olympus", None),
        ("Sat, 19 Jul 2025 10:30:00 GMT+3", None),
    ],
)
def test_zones(value: str, expected: datetime | None) -> None:
    assert parse_date(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Persian-digit numeric Jalali dates are Tehran wall-clock time.
        ("۱۴۰۴/۰۴/۲۸ ۱۰:۳۰", utc(2025, 7, 19, 7)),
        ("۱۴۰۴/۰۴/۲۸ - ۱۰:۳۰", utc(2025, 7, 19, 7)),
        ("١٤٠٤/٠٤/٢٨ ١٠:٣٠", utc(2025, 7, 19, 7)),  # Arabic-Indic digits
        ("1404/04/28 10:30", utc(2025, 7, 19, 7)),
        # Before 2022 Iran kept summer time: +04:30 in Tir 1400.
        ("۱۴۰۰/۰۴/۲۸ ۱۰:۳۰", utc(2021, 7, 19, 6)),
        # ... but not in winter.
        ("۱۴۰۰/۱۰/۲۸ ۱۰:۳۰", utc(2022, 1, 18, 7)),
        # The first summer without it.
        ("۱۴۰۲/۰۴/۲۸ ۱۰:۳۰", utc(2023, 7, 19, 7)),
        ("۲۸ تیر ۱۴۰۴ ساعت ۰۰:۱۵", utc(2025, 7, 18, 20, 45)),
        ("۱۴۰۴/۰۴/۲۸", utc(2025, 7, 19)),  # no time: the calendar day is kept
        ("۱۴۰۴/۱۳/۰۱ ۱۰:۳۰", None),  # no 13th month
    ],
)
def test_jalali(value: str, expected: datetime | None) -> None:
    assert parse_date(value, now=NOW) == expected


def test_future_dates_are_unknown_and_long_values_are_not_dates() -> None:
    assert parse_date("Wed, 04 Mar 2026 10:00:00 GMT", now=NOW) is None
    assert parse_date("Tue, 03 Mar 2026 08:00:00 GMT", now=NOW) == utc(2026, 3, 3, 8)
    assert parse_date("Tue, 03 Mar 2026 08:00:00 GMT" + " x" * 100, now=NOW) is None
    assert parse_date("1" * 1_000_000, now=NOW) is None


def test_tehran_offset_follows_history() -> None:
    assert tehran_offset(datetime(2021, 7, 1, 12)) == timedelta(hours=4, minutes=30)
    assert tehran_offset(datetime(2023, 7, 1, 12)) == timedelta(hours=3, minutes=30)


def test_rule_used_without_a_tz_database_matches_tzdata() -> None:
    """Every day from 1992 to 2030 at noon: the fallback rule agrees with Asia/Tehran."""
    zone = ZoneInfo("Asia/Tehran")
    day = date(1992, 1, 1)
    while day < date(2031, 1, 1):
        noon = datetime(day.year, day.month, day.day, 12)
        assert _iran_rule_offset(noon) == noon.replace(tzinfo=zone).utcoffset(), day
        day += timedelta(days=1)
