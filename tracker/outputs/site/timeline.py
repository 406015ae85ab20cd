"""A commitment's timeline as SVG geometry, computed at build time (the template draws it).

One horizontal axis from the announcement to today; marks for the announcement, each milestone
reached (raised a level when it would cover the one before), each evidence item shown on the page
(progress above the axis, setback below), every recorded status change, the deadline and today; a
tick at each new year. Evidence older than the announcement (background) sits on a short dashed
stretch marked "earlier". Pure arithmetic on dates, so the same data always gives the same drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from tracker.outputs.site.views import milestones
from tracker.store.records import EvidenceRecord, HistoryRecord, Row

__all__ = ["Mark", "Tick", "Timeline", "timeline"]

WIDTH = 720
HEIGHT = 140
LEFT = 24.0
RIGHT = 696.0
AXIS = 86
EARLIER = 40.0  # the dashed stretch for what came before the announcement
LEVEL = 22  # how far a crowded milestone is raised
CROWDED = 22.0  # milestones closer than this (in drawing units) are raised


@dataclass(frozen=True)
class Mark:
    x: float
    kind: str  # announced, milestone, progress, setback, neutral, pending, change, deadline, today
    label: str  # drawn beside the mark (a milestone's number, a status symbol)
    title: str  # the tooltip: a date and what happened
    anchor: str | None = None  # where on the page the mark's evidence is listed
    level: int = 0  # milestones: how many steps it is raised above the others


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    marks: tuple[Mark, ...]
    ticks: tuple[Tick, ...]
    description: str
    earlier: bool = False  # some evidence predates the announcement
    width: int = WIDTH
    height: int = HEIGHT
    edge: float = LEFT  # where the drawing starts (the "earlier" stretch, when there is one)
    left: float = LEFT  # where the announcement is
    right: float = RIGHT
    axis: int = AXIS


def _changes(history: Sequence[HistoryRecord]) -> list[HistoryRecord]:
    return [h for h in history if h.old_status is not None and h.old_status != h.new_status]


def timeline(
    row: Row, today: date, evidence: Sequence[EvidenceRecord], history: Sequence[HistoryRecord]
) -> Timeline:
    c = row.commitment
    changes = _changes(history)
    start = c.announced_on
    earlier = any(e.published_at.date() < start for e in evidence)
    left = LEFT + EARLIER if earlier else LEFT
    end = max([today, *(e.published_at.date() for e in evidence), *(h.at.date() for h in changes)])
    per_day = (RIGHT - left) / max((end - start).days, 1)

    def x(d: date) -> float:
        if d < start:
            return LEFT + EARLIER / 2
        return round(left + (d.toordinal() - start.toordinal()) * per_day, 1)

    marks: list[Mark] = [Mark(x(c.announced_on), "announced", "", f"{c.announced_on} announced")]
    if c.deadline is not None:
        marks.append(Mark(x(c.deadline), "deadline", "deadline", f"{c.deadline} deadline"))
    for e in sorted(evidence, key=lambda e: (e.published_at, e.id)):
        kind = "pending" if e.review == "pending" else e.stance
        if kind not in ("progress", "setback", "pending"):
            kind = "neutral"
        marks.append(
            Mark(
                x(e.published_at.date()),
                kind,
                "",
                f"{e.published_at:%Y-%m-%d} {e.title}",
                f"e{e.id}",
            )
        )
    for h in changes:
        marks.append(
            Mark(x(h.at.date()), "change", "", f"{h.at:%Y-%m-%d} {h.old_status} → {h.new_status}")
        )
    marks += _milestones(row, x)
    marks.append(Mark(x(today), "today", "today", f"{today} today"))

    ticks = []
    for year in range(start.year + 1, end.year + 1):
        tx = x(date(year, 1, 1))
        if left + 16 <= tx <= RIGHT - 16:
            ticks.append(Tick(tx, str(year)))
    description = _describe(row, today, evidence, changes)
    return Timeline(tuple(marks), tuple(ticks), description, earlier, left=left)


def _milestones(row: Row, x: Callable[[date], float]) -> list[Mark]:
    """A mark per milestone reached on a known day, in date order, raised while it would cover
    the previous one."""
    marks: list[Mark] = []
    dated = [m for m in milestones(row) if m.reached and m.on is not None]
    for m in sorted(dated, key=lambda m: (m.on, m.position)):
        assert m.on is not None
        where = x(m.on)
        level = 0
        if marks and where - marks[-1].x < CROWDED:
            level = (marks[-1].level + 1) % 3
        what = f"{m.on} milestone {m.position} reached: {m.title}"
        anchor = f"e{m.evidence_id}" if m.evidence_id is not None else None
        marks.append(Mark(where, "milestone", str(m.position), what, anchor, level=level))
    return marks


def _describe(
    row: Row, today: date, evidence: Sequence[EvidenceRecord], changes: Sequence[HistoryRecord]
) -> str:
    c = row.commitment
    parts = [f"announced {c.announced_on}"]
    before = sum(1 for e in evidence if e.published_at.date() < c.announced_on)
    if before:
        parts.append(f"{before} evidence items from before the announcement")
    for m in milestones(row):
        if m.reached:
            parts.append(f"milestone {m.position} reached" + (f" {m.on}" if m.on else " (implied)"))
    stances = [e.stance for e in evidence if e.review == "confirmed"]
    if stances:
        parts.append(
            f"{len(stances)} confirmed evidence items ({stances.count('progress')} progress, "
            f"{stances.count('setback')} setback)"
        )
    waiting = sum(1 for e in evidence if e.review == "pending")
    if waiting:
        parts.append(f"{waiting} waiting for review")
    if changes:
        parts.append(f"{len(changes)} status changes")
    return f"Timeline to {today}: " + "; ".join(parts) + "."
