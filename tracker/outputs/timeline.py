"""`tracker show SLUG --timeline`: a commitment's story at a glance. One column per month (or
per few months when the span is wider than the terminal), its height the evidence recorded for
it, its colour what that evidence says; the milestones marked under the month they were reached.
Data in, rich `Text` out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from rich.console import Group
from rich.text import Text

from tracker.dates import with_jalali
from tracker.outputs.escape import terminal
from tracker.outputs.terminal import status_text, t
from tracker.store.records import Row

__all__ = ["Bucket", "buckets", "timeline"]

BARS = "▁▂▃▄▅▆▇█"
MARGIN = 2  # columns kept free at the right edge


@dataclass
class Bucket:
    """One column: the months it covers and the evidence published in them."""

    start: date  # first day of its first month
    months: int
    confirmed_progress: int = 0
    confirmed_setback: int = 0
    confirmed_other: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return (
            self.confirmed_progress + self.confirmed_setback + self.confirmed_other + self.pending
        )

    def add(self, review: str, stance: str) -> None:
        if review == "pending":
            self.pending += 1
        elif stance == "progress":
            self.confirmed_progress += 1
        elif stance == "setback":
            self.confirmed_setback += 1
        else:
            self.confirmed_other += 1


def _month_index(d: date | datetime) -> int:
    return d.year * 12 + d.month - 1


def buckets(
    first: date, today: date, points: Sequence[tuple[datetime, str, str]], width: int
) -> list[Bucket]:
    """Columns from `first`'s month to `today`'s, at most `width` of them; rejected evidence and
    evidence outside the span are left out."""
    start, end = _month_index(first), _month_index(today)
    months = max(end - start + 1, 1)
    step = -(-months // max(width, 1))  # months per column, rounded up
    cols = [
        Bucket(date((start + i) // 12, (start + i) % 12 + 1, 1), step)
        for i in range(0, months, step)
    ]
    for when, review, stance in points:
        if review == "rejected":
            continue
        i = (_month_index(when) - start) // step
        if 0 <= i < len(cols):
            cols[i].add(review, stance)
    return cols


def _bar(b: Bucket, most: int) -> Text:
    if not b.total:
        return Text("·", style="dim")
    level = max(1, round(len(BARS) * b.total / most))
    style = (
        "green"
        if b.confirmed_progress
        else "red"
        if b.confirmed_setback
        else "cyan"
        if b.confirmed_other
        else "yellow"
    )
    return Text(BARS[level - 1], style=style)


def _marks(cols: Sequence[Bucket], row: Row) -> tuple[Text, list[str]]:
    """The milestone line (each reached milestone's number under its column) and the legend."""
    line = [" "] * len(cols)
    legend = []
    first = _month_index(cols[0].start) if cols else 0
    step = cols[0].months if cols else 1
    for m in row.verdict.milestones:
        if m.on is not None:
            i = (_month_index(m.on) - first) // step
            if 0 <= i < len(cols):
                line[i] = str(m.position % 10)
            where = f"{with_jalali(m.on)} (evidence #{m.evidence_id})"
        else:
            where = "implied by a later milestone" if m.implied else "not reached"
        legend.append(f"{m.position:>2} {terminal(m.title)}: {where}")
    return Text("".join(line), style="bold magenta"), legend


def _years(cols: Sequence[Bucket]) -> Text:
    """Year labels under the column where each year starts, where there is room."""
    line = [" "] * len(cols)
    free = 0
    for i, b in enumerate(cols):
        first_of_year = i == 0 or b.start.year != cols[i - 1].start.year
        label = str(b.start.year)
        if first_of_year and i >= free and i + len(label) <= len(cols):
            line[i : i + len(label)] = list(label)
            free = i + len(label) + 1
    return Text("".join(line), style="dim")


def timeline(
    row: Row, points: Sequence[tuple[datetime, str, str]], today: date, width: int
) -> Group:
    c = row.commitment
    firsts = [c.announced_on, *(p[0].date() for p in points if p[1] != "rejected")]
    cols = buckets(min(firsts), today, points, max(width - MARGIN, 12))
    most = max((b.total for b in cols), default=0) or 1
    bars = Text()
    for b in cols:
        bars.append_text(_bar(b, most))
    marks, legend = _marks(cols, row)
    unit = "month" if cols and cols[0].months == 1 else f"{cols[0].months} months"
    span = f"{cols[0].start:%Y-%m} to {today:%Y-%m}" if cols else ""
    counted = sum(b.total for b in cols)
    head = Text.assemble(t(c.slug, "bold"), "  ", status_text(row.verdict.status), "\n", t(c.title))
    key = Text.assemble(
        f"evidence per {unit}, {span}: {counted} items (highest column {most}); ",
        ("green", "green"),
        " confirmed progress, ",
        ("red", "red"),
        " setback, ",
        ("cyan", "cyan"),
        " other confirmed, ",
        ("yellow", "yellow"),
        " waiting for review; rejected left out; digits: milestones reached",
        style="dim",
    )
    parts: list[Text] = [head, key, bars, marks, _years(cols)]
    parts.append(Text(f"announced {with_jalali(c.announced_on)}", style="dim"))
    parts += [Text(line) for line in legend]
    for p in parts[2:5]:
        p.no_wrap = True
        p.overflow = "crop"
    return Group(*parts)
