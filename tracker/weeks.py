"""ISO weeks (Monday–Sunday), the zone they are judged in, and their span in the Persian calendar.

"The last complete week" depends on where you are: at 01:00 on a Monday in Tehran it is still
Sunday in UTC. It is judged in one declared zone: TRACKER_WEEK_ZONE (or `--week-zone`), else the
machine's local zone — the zone cron and the daemon's `--report-cron` run in, so a Monday-morning
run always reports the week that just ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from tracker.errors import UsageError

__all__ = ["IsoWeek", "persian_range", "today_in", "week_zone", "zone_name"]

_WEEK = re.compile(r"^\s*(\d{4})-?[Ww](\d{1,2})\s*$")

# ---------------------------------------------------------------- ISO weeks


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, value: str) -> IsoWeek:
        m = _WEEK.match(value)
        if not m:
            raise UsageError(f"--week must look like 2026-W47, got {value!r}")
        year, week = int(m.group(1)), int(m.group(2))
        if not 1900 <= year <= 9998:
            # The report looks a week back and a week on: stay far from the calendar's ends.
            raise UsageError(f"--week {value!r}: the year must be between 1900 and 9998")
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise UsageError(f"--week {value!r}: {year} has no ISO week {week}") from None
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_complete(cls, today: date) -> IsoWeek:
        """The newest week whose Sunday is over (on a Sunday, the week before)."""
        return cls.of(today - timedelta(days=today.isoweekday()))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    @property
    def start(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.start - timedelta(days=1))

    def utc_bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """Naive UTC times of the week's start (Monday 00:00 in `zone`) and of the next week's."""
        return utc_midnight(self.start, zone), utc_midnight(self.end + timedelta(days=1), zone)

    def __str__(self) -> str:
        return self.label


def utc_midnight(day: date, zone: tzinfo) -> datetime:
    """The naive UTC time at which `day` begins in `zone` (a day is not always 24 hours long
    there: counting days from another midnight would be an hour off across a clock change)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- the zone weeks are judged in


def week_zone(name: str | None = None) -> tzinfo:
    """A named IANA zone (`--week-zone`, TRACKER_WEEK_ZONE), else the machine's local zone (TZ,
    then /etc/localtime); a bad name is a one-line usage error."""
    if name and name.strip():
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"TRACKER_WEEK_ZONE / --week-zone: unknown time zone {name.strip()!r} "
                "(use a name such as Asia/Tehran or UTC)"
            ) from None
    try:
        import tzlocal

        return tzlocal.get_localzone()
    except Exception:  # no zone database or a broken TZ: the offset the C library uses
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC


def zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def today_in(zone: tzinfo, now: datetime | None = None) -> date:
    """The date in `zone` at `now` (an aware time; default: now)."""
    return (now or datetime.now(UTC)).astimezone(zone).date()


def persian_range(start: date, end: date) -> str:
    """'1405-08-25 – 1405-09-01 (25 Aban – 1 Azar 1405)': numeric and with month names."""
    import jdatetime

    a = jdatetime.date.fromgregorian(date=start)
    b = jdatetime.date.fromgregorian(date=end)
    months = jdatetime.date.j_months_en
    if a.year == b.year:
        named = f"{a.day} {months[a.month - 1]} – {b.day} {months[b.month - 1]} {b.year}"
    else:
        named = f"{a.day} {months[a.month - 1]} {a.year} – {b.day} {months[b.month - 1]} {b.year}"
    return (
        f"{a.year:04d}-{a.month:02d}-{a.day:02d} – {b.year:04d}-{b.month:02d}-{b.day:02d} ({named})"
    )
