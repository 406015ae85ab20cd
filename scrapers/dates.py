"""Dates as feeds and APIs write them, to timezone-aware UTC (or None when unknown).

Gregorian dates are read by feedparser's own date handlers (RFC 822 and its field variants,
W3C-DTF / ISO 8601, asctime, and the Korean, Greek and Hungarian forms feedparser knows), after
one check of ours: a zone written as a name must be a zone we know. feedparser reads any name it
does not know as UTC; here an unknown zone makes the date unknown (None), because a wrong time
is worse than none. Names known: feedparser's table (GMT, UT, Z, EST, EDT, CST, MST, PST, AT,
ET, CT, MT, PT, MET, MEST, military letters) and the zones of this project's region (IRST,
IRDT, AZT, AZST, MSK, MSD, TRT, GST, GET, AMT is not: it names two zones) plus common European
and Asian ones. Offsets are read with or without a colon (`+03:30`, `+0330`, `GMT-01:01`).

Jalali dates in Persian (`۷ مرداد ۱۴۰۴`, `سه‌شنبه ۷ مرداد ۱۴۰۴ - ۱۲:۳۰`, `۱۴۰۴/۰۴/۲۸ ۱۰:۳۰`,
`1404/05/07 12:30`), in Persian, Arabic-Indic or ASCII digits, are read with jdatetime.

Rules: a Gregorian value without a zone is UTC (as feedparser reads it); a Jalali value with a
time of day is Tehran wall-clock time, with the offset Iran used on that day (+04:30 in summer
until 2022, +03:30 since); a Jalali date without a time is midnight UTC of that day, so it keeps
its calendar date. A date more than `max_future_seconds` ahead is a feed bug and becomes None
rather than being clamped to now, which would invent a date; so does a year before 1900.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache

__all__ = ["ZONES", "parse_date", "parse_jalali", "read_date", "tehran_offset"]

_EARLIEST_YEAR = 1900
# Real dates are short; anything longer is not one, and the cap bounds the work per value.
_MAX_CHARS = 120

# feedparser's own zone table (feedparser.datetimes.rfc822.timezone_names, hours east of UTC),
# copied so that reading a date does not import feedparser; tests/test_scrapers_fastpaths.py
# checks that the copy is the installed feedparser's table.
_FEEDPARSER_ZONES: dict[str, int] = {
    "ut": 0,
    "gmt": 0,
    "z": 0,
    "adt": -3,
    "ast": -4,
    "at": -4,
    "edt": -4,
    "est": -5,
    "et": -5,
    "cdt": -5,
    "cst": -6,
    "ct": -6,
    "mdt": -6,
    "mst": -7,
    "mt": -7,
    "pdt": -7,
    "pst": -8,
    "pt": -8,
    "a": -1,
    "n": 1,
    "m": -12,
    "y": 12,
    "met": 1,
    "mest": 2,
}

# Zone name -> offset in minutes east of UTC. feedparser's table first, so that both parsers
# agree wherever feedparser knows the name; then the zones feeds of this region actually use.
ZONES: dict[str, int] = {name: hours * 60 for name, hours in _FEEDPARSER_ZONES.items()}
ZONES.update(
    {
        "utc": 0,
        "irst": 210,  # Iran standard time, +03:30
        "irdt": 270,  # Iran daylight time (until 2022), +04:30
        "azt": 240,  # Azerbaijan
        "azst": 300,
        "msk": 180,  # Moscow
        "msd": 240,
        "trt": 180,  # Türkiye
        "get": 240,  # Georgia
        "gst": 240,  # Gulf
        "pkt": 300,
        "wet": 0,
        "west": 60,
        "cet": 60,
        "cest": 120,
        "eet": 120,
        "eest": 180,
        "jst": 540,
        "kst": 540,
        "hkt": 480,
        "sgt": 480,
        "awst": 480,
        "aest": 600,
        "aedt": 660,
        "nzst": 720,
        "nzdt": 780,
        "hst": -600,
        "akst": -540,
        "akdt": -480,
    }
)
# Words that may end a date without being a zone.
_NOT_ZONES = frozenset(
    [
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]
)

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
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
# Longest names first so that the alternation never stops at a shorter prefix. The input is
# capped at _MAX_CHARS before these run.
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_JALALI_NAMED = re.compile(rf"(\d{{1,2}})\s?(?:ام\s?)?({_MONTH_ALT})\s?(?:ماه\s?)?(\d{{4}})")
_JALALI_NUMERIC = re.compile(r"(1[34]\d\d)\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{1,2})")
_SPACED_OFFSET = re.compile(r" ([+-]\d\d:?\d\d)$")
_TIME_OF_DAY = re.compile(r"(\d{1,2})\s?:\s?(\d{2})(?:\s?:\s?(\d{2}))?")
# Arabic code points that Persian text from windows-1256 sites and Arabic keyboards carries;
# jdatetime knows only the Persian spellings.
_PERSIAN_LETTERS = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})
# Iran kept daylight time from 2 Farvardin to 30 Shahrivar in these Jalali years (tzdata); used
# only where this machine has no time-zone database.
_IRAN_DST_YEARS = (range(1371, 1385), range(1387, 1402))
_IRST = timedelta(hours=3, minutes=30)


@cache
def _tehran_zone() -> tzinfo | None:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Tehran")
    except Exception:  # no tz database on this machine
        return None


def tehran_offset(local: datetime) -> timedelta:
    """The UTC offset of Tehran wall-clock time `local` (naive), as it was on that day."""
    zone = _tehran_zone()
    if zone is not None:
        offset = local.replace(tzinfo=zone).utcoffset()
        if offset is not None:
            return offset
    return _iran_rule_offset(local)


def _iran_rule_offset(local: datetime) -> timedelta:
    """Iran's offset from its published rule, for machines without a time-zone database."""
    import jdatetime

    jalali = jdatetime.date.fromgregorian(date=local.date())
    summer = (jalali.month, jalali.day) >= (1, 2) and (jalali.month, jalali.day) <= (6, 30)
    dst = summer and any(jalali.year in years for years in _IRAN_DST_YEARS)
    return _IRST + timedelta(hours=1) if dst else _IRST


def _plausible(value: datetime) -> datetime | None:
    return value if value.year >= _EARLIEST_YEAR else None


def _parse_iso(text: str) -> datetime | None:
    """Python's ISO 8601 reader first: it keeps fractions of a second, feedparser drops them."""
    if not text[:4].isascii() or not text[:4].isdigit():
        return None
    # "2025-07-19 10:30:00 +0330" (a space before the offset) is common; feedparser would read
    # its minutes as 0, a half-hour error for every Iranian time.
    text = _SPACED_OFFSET.sub(r"\1", text.replace("z", "Z"))
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return _plausible(value)


def parse_jalali(text: str) -> datetime | None:
    """A Jalali date in Persian text, or None when there is none."""
    normal = text.translate(_DIGITS).translate(_PERSIAN_LETTERS).replace("امرداد", "مرداد")
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
    import jdatetime

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
    local = datetime.combine(gregorian, time(hour, minute, second))
    return (local - tehran_offset(local)).replace(tzinfo=UTC)


def _numeric_zone(minutes: int) -> str:
    # With a colon: feedparser's W3C-DTF reader takes the minutes from after it.
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _zone_words(text: str) -> tuple[str, bool] | None:
    """(`text` with our extra zone names replaced by numeric offsets, whether one was), or None
    when a word where a zone belongs is not a zone we know: then the date is unknown, never UTC
    by default. Names in feedparser's own table stay, so that feedparser reads them as usual."""
    tokens = text.split()
    lowered = [token.lower().strip("(),") for token in tokens]
    # The zone is the last word, or where feedparser's RFC 822 reader looks for it: the fifth
    # field after an optional day name.
    positions = {len(tokens) - 1}
    start = 1 if lowered and lowered[0][:3] in _NOT_ZONES else 0
    if len(tokens) - start >= 5:
        positions.add(start + 4)
    replaced = False
    for index in sorted(positions):
        word = lowered[index].removeprefix("etc/")
        if any(ch.isdigit() for ch in word) or word[:1] in ("+", "-", ""):
            continue  # numeric offsets and GMT±hh:mm are feedparser's to read
        if word in _FEEDPARSER_ZONES:
            continue
        if word in ZONES:
            tokens[index] = _numeric_zone(ZONES[word])
            replaced = True
        elif not (word.isalpha() and word[:3] in _NOT_ZONES):
            return None
    return " ".join(tokens), replaced


def _parse_feedparser(text: str) -> datetime | None:
    from feedparser.datetimes import _parse_date as _feedparser_date
    from feedparser.datetimes.rfc822 import _parse_date_rfc822
    from feedparser.datetimes.w3dtf import _parse_date_w3dtf

    screened = _zone_words(text)
    if screened is None:
        return None
    candidate, replaced = screened
    try:
        if replaced:
            # Only the readers that understand a numeric offset: feedparser's perforce reader
            # would drop it and read the time as this machine's local time.
            parsed = _parse_date_rfc822(candidate) or _parse_date_w3dtf(candidate)
        else:
            parsed = _feedparser_date(candidate)
    except Exception:  # a handler that trips over odd input means "not a date we can read"
        return None
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in parsed[:6])
        return _plausible(datetime(year, month, day, hour, minute, second, tzinfo=UTC))
    except (TypeError, ValueError, OverflowError):
        return None


# The shape nearly every RSS date has: "Mon, 07 Jul 2025 10:30:00 +0330" or "… GMT". Nothing
# else is read here; whatever this does not take, or cannot be sure of, goes the long way.
_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))? (GMT|UTC|UT|Z|[+-][0-9]{4})"
)
_MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_UNSURE: tuple[bool, datetime | None] = (False, None)  # not ours: the full readers decide


# The offset each numeric zone of that shape stands for, signed to be added to the wall-clock
# time; learned on first use (at most 2 × 10,000 spellings, a few dozen in practice).
_ZONE_DELTAS: dict[str, timedelta] = {name: timedelta(0) for name in ("GMT", "UTC", "UT", "Z")}


def _zone_delta(zone: str) -> timedelta:
    """The delta of a "+hhmm" / "-hhmm" zone not yet in _ZONE_DELTAS, now learned."""
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:]))
    delta = _ZONE_DELTAS[zone] = offset if zone[0] == "-" else -offset
    return delta


def _rfc822_fast(text: str) -> tuple[bool, datetime | None]:
    """(True, what `parse_jalali(text) or _parse_feedparser(text)` returns) for the common
    RFC 822 shape, computed the way feedparser's RFC 822 reader does (the reader those take it
    to); `_UNSURE` for anything else. It cannot be a Jalali date: it has at most one '-' and
    no '/' or '.'. tests/test_scrapers_fastpaths.py checks that the two agree."""
    match = _RFC822.fullmatch(text)
    if match is None:
        return _UNSURE
    day, month, year, hour, minute, second, zone = match.groups()
    try:
        utc = datetime(
            int(year),
            _MONTH_NUMBERS[month],
            int(day),
            int(hour),
            int(minute),
            int(second) if second else 0,
            0,
            UTC,
        )
        delta = _ZONE_DELTAS.get(zone)
        if delta is None:
            delta = _zone_delta(zone)
        if delta:
            utc = utc + delta
    except (ValueError, OverflowError):
        return _UNSURE  # feedparser's other readers get their turn
    return True, (utc if utc.year >= _EARLIEST_YEAR else None)


def parse_date(
    value: str | None,
    *,
    now: datetime | None = None,
    max_future_seconds: float = 86_400.0,
) -> datetime | None:
    """Timezone-aware UTC datetime, or None when missing, unreadable or implausibly far ahead."""
    if not value:
        return None
    parsed = read_date(value)
    if parsed is None:
        return None
    reference = now or datetime.now(UTC)
    if parsed - reference > timedelta(seconds=max_future_seconds):
        return None
    return parsed


def read_date(value: str) -> datetime | None:
    """`parse_date` without the check against the future: for a caller that reads many dates
    against the same reference and makes the check itself."""
    text = " ".join(value[: _MAX_CHARS * 4].split())
    if not text or len(text) > _MAX_CHARS:
        return None
    if not text.isascii():  # every digit _DIGITS maps is outside ASCII
        text = text.translate(_DIGITS)
    head = text[:4]
    parsed = _parse_iso(text) if head.isascii() and head.isdigit() else None
    if parsed is None:
        sure, fast = _rfc822_fast(text)
        parsed = fast if sure else (parse_jalali(text) or _parse_feedparser(text))
    return parsed
