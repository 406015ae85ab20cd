"""Report weeks in a zone whose clocks change (Africa/Cairo moves to summer time at midnight
before the last Friday of April ends): a day in progress ends at that zone's next midnight."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tracker.weeks import IsoWeek, utc_midnight

CAIRO = ZoneInfo("Africa/Cairo")


def test_a_day_ends_at_the_zones_midnight_across_a_clock_change() -> None:
    # Friday 2026-04-24 begins at 22:00 UTC the day before (UTC+2) and has 23 hours: Saturday
    # begins at 21:00 UTC (UTC+3).
    assert utc_midnight(date(2026, 4, 24), CAIRO) == datetime(2026, 4, 23, 22, 0)
    assert utc_midnight(date(2026, 4, 25), CAIRO) == datetime(2026, 4, 24, 21, 0)
    week = IsoWeek(2026, 17)  # Monday 20 to Sunday 26 April
    start, end = week.utc_bounds(CAIRO)
    assert start == utc_midnight(week.start, CAIRO) == datetime(2026, 4, 19, 22, 0)
    assert end == utc_midnight(date(2026, 4, 27), CAIRO) == datetime(2026, 4, 26, 21, 0)
    # Counting whole days from Monday's midnight (what a week in progress once did) is an hour
    # late after the change: evidence of Friday 21:00–22:00 UTC would land in Friday's report.
    assert start + timedelta(days=5) != utc_midnight(date(2026, 4, 25), CAIRO)
