"""ISO weeks (Monday–Sunday) and their span in the Persian calendar. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from tracker.errors import UsageError

__all__ = ["IsoWeek", "persian_range"]

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

    def __str__(self) -> str:
        return self.label


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
