"""Dates: parsing user input, today's date, and the Persian (Jalali) calendar beside ISO dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tracker.errors import UsageError


def parse_date(value: str, what: str = "date") -> date:
    """A day typed as YYYY-MM-DD, and only that (Python would also take 20261120 or 2026-W47-1)."""
    text = value.strip()
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.replace("-", "").isdigit():
        raise UsageError(f"{what} must be YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{what} must be YYYY-MM-DD, got {value!r}") from exc


def utcnow() -> datetime:
    """Naive UTC, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def jalali(d: date) -> str:
    import jdatetime

    j = jdatetime.date.fromgregorian(date=d)
    return f"{j.year:04d}-{j.month:02d}-{j.day:02d}"


def with_jalali(d: date | None) -> str:
    if d is None:
        return "—"
    return f"{d.isoformat()} ({jalali(d)} ش)"


def days_ago(d: date | None, now: date) -> str:
    if d is None:
        return "—"
    n = (now - d).days
    if n == 0:
        return "today"
    if n < 0:
        return f"in {-n} days"
    return "1 day ago" if n == 1 else f"{n} days ago"


def iso_utc(value: date | datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with Z, a date as YYYY-MM-DD, None as None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    return value.isoformat()


def shown(d: date | None, precision: str = "day") -> str:
    """A date as precise as it is known: '2024-10-03 (1403-07-12 ش)', 'Oct 2024' or '2024'."""
    if d is None:
        return "—"
    if precision == "month":
        return d.strftime("%b %Y")
    if precision == "year":
        return str(d.year)
    return with_jalali(d)
