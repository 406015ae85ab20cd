"""Dates as feeds and APIs write them, to timezone-aware UTC (or None when unknown).

Understood: RFC 822 (`Tue, 22 Sep 2026 14:35:00 GMT`), ISO 8601 / Atom, and Jalali dates in
Persian (`۷ مرداد ۱۴۰۴`, `سه‌شنبه ۷ مرداد ۱۴۰۴ - ۱۲:۳۰`, `1404/05/07 12:30`).
Rules: a value without a zone is UTC, except a Jalali value with a time of day, which is Tehran
time; a Jalali date without a time is midnight UTC of that day, so it keeps its calendar date.
A date more than `max_future_seconds` ahead is a feed bug and becomes None (unknown) rather than
being clamped to now, which would invent a date.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

import jdatetime

__all__ = ["parse_date", "parse_jalali"]

_EARLIEST_YEAR = 1900

_MONTHS = {
    "فروردین": 1,
    "اردیبهشت": 2,
    "خرداد": 3,
    "تیر": 4,
    "مرداد": 5,
    "شهریور": 6,
    "مهر": 7,
    "آبان": 8,
    "ابان": 8,
    "آذر": 9,
    "اذر": 9,
    "دی": 10,
    "بهمن": 11,
    "اسفند": 12,
}
# Longest names first so that the alternation never stops at a shorter prefix.
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_JALALI_NAMED = re.compile(rf"(\d{{1,2}})\s*(?:ام\s*)?({_MONTH_ALT})\s*(?:ماه\s*)?(\d{{4}})")
_JALALI_NUMERIC = re.compile(r"(1[34]\d\d)\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})")
_TIME_OF_DAY = re.compile(r"(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?")
# Arabic code points that Persian text from windows-1256 sites and Arabic keyboards carries;
# jdatetime knows only the Persian spellings.
_PERSIAN_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})


def _tehran() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Tehran")
    except Exception:  # no tz database on this machine: Iran has kept +03:30 since 2022
        return timezone(timedelta(hours=3, minutes=30))


def _plausible(value: datetime) -> datetime | None:
    return value if value.year >= _EARLIEST_YEAR else None


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_iso(text: str) -> datetime | None:
    if not text[:4].isascii() or not text[:4].isdigit():
        return None
    try:
        return _plausible(_as_utc(datetime.fromisoformat(text.replace("z", "Z"))))
    except ValueError:
        return None


def _parse_rfc822(text: str) -> datetime | None:
    try:
        return _plausible(_as_utc(parsedate_to_datetime(text)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_jalali(text: str) -> datetime | None:
    """A Jalali date in Persian text, or None when there is none."""
    normal = text.translate(_PERSIAN_LETTERS).replace("امرداد", "مرداد")
    named = _JALALI_NAMED.search(normal)
    if named:
        day, month, year = int(named.group(1)), _MONTHS[named.group(2)], int(named.group(3))
        rest = normal[: named.start()] + " " + normal[named.end() :]
    else:
        numeric = _JALALI_NUMERIC.search(normal)
        if not numeric:
            return None
        year, month, day = (int(numeric.group(i)) for i in (1, 2, 3))
        rest = normal[: numeric.start()] + " " + normal[numeric.end() :]
    try:
        gregorian: date = jdatetime.date(year, month, day).togregorian()
    except ValueError:
        return None
    clock = _TIME_OF_DAY.search(rest)
    if not clock:
        return datetime.combine(gregorian, time(0, 0), tzinfo=UTC)
    hour, minute, second = int(clock.group(1)), int(clock.group(2)), int(clock.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        return datetime.combine(gregorian, time(0, 0), tzinfo=UTC)
    local = datetime.combine(gregorian, time(hour, minute, second), tzinfo=_tehran())
    return local.astimezone(UTC)


def parse_date(
    value: str | None,
    *,
    now: datetime | None = None,
    max_future_seconds: float = 86_400.0,
) -> datetime | None:
    """Timezone-aware UTC datetime, or None when missing, unreadable or implausibly far ahead."""
    if not value or not value.strip():
        return None
    text = value.strip()
    parsed = _parse_iso(text) or _parse_rfc822(text) or parse_jalali(text)
    if parsed is None:
        return None
    reference = now or datetime.now(UTC)
    if parsed - reference > timedelta(seconds=max_future_seconds):
        return None
    return parsed
