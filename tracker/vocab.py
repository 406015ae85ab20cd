"""The vocabulary: every word the register stores or prints for a state, once.

`StrEnum` members compare equal to their values, so the database, the JSON export and the README
keep the plain strings (`"in_progress"`), while the code names them (`Status.IN_PROGRESS`) and a
typo is an AttributeError instead of a silently different string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "LANGUAGES",
    "STANCES",
    "STATUSES",
    "SYMBOLS",
    "Flag",
    "HistoryKind",
    "Language",
    "Review",
    "SourceState",
    "Stance",
    "Status",
]


class Status(StrEnum):
    ANNOUNCED = "announced"
    IN_PROGRESS = "in_progress"
    STALLED = "stalled"
    PARTIALLY_DELIVERED = "partially_delivered"
    DELIVERED = "delivered"
    BROKEN = "broken"


class Flag(StrEnum):
    OVERDUE = "overdue"
    LATE = "late"
    NEEDS_REVIEW = "needs_review"
    DISPUTED = "disputed"


class Stance(StrEnum):
    PROGRESS = "progress"
    SETBACK = "setback"
    NEUTRAL = "neutral"


class Review(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Language(StrEnum):
    FA = "fa"
    AZ = "az"
    EN = "en"
    RU = "ru"


class SourceState(StrEnum):
    """What one source did in one refresh (`skipped`: not due yet)."""

    OK = "ok"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    DISABLED = "disabled"
    SKIPPED = "skipped"


class HistoryKind(StrEnum):
    COMPUTED = "computed"
    OVERRIDE = "override"
    CLEAR = "clear"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
STANCES: tuple[str, ...] = tuple(s.value for s in Stance)
LANGUAGES: tuple[str, ...] = tuple(s.value for s in Language)
FLAG_ORDER: tuple[str, ...] = tuple(f.value for f in Flag)

SYMBOLS: dict[str, str] = {
    Status.ANNOUNCED: "○",
    Status.IN_PROGRESS: "◐",
    Status.STALLED: "⏸",
    Status.PARTIALLY_DELIVERED: "◑",
    Status.DELIVERED: "●",
    Status.BROKEN: "✗",
}


def _unknown(what: str, value: str, known: tuple[str, ...]) -> Exception:
    import difflib

    from tracker.errors import UsageError

    near = difflib.get_close_matches(value, known, n=1, cutoff=0.4)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return UsageError(f"unknown {what} '{value}' (one of {', '.join(known)}){hint}")


def parse_status(value: str) -> Status:
    """A status a person typed, or a usage error naming the six."""
    if value not in STATUSES:
        raise _unknown("status", value, STATUSES)
    return Status(value)


def parse_stance(value: str) -> Stance:
    if value not in STANCES:
        raise _unknown("stance", value, STANCES)
    return Stance(value)
