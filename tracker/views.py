"""Terminal views (rich). Untrusted text always enters as `Text`, never as markup."""

from __future__ import annotations

import sys
from datetime import date
from typing import IO, TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracker.dates import days_ago, with_jalali
from tracker.readmodel import Row
from tracker.text import for_terminal

if TYPE_CHECKING:
    from tracker import models

STATUS_STYLE = {
    "announced": "cyan",
    "in_progress": "yellow",
    "stalled": "magenta",
    "partially_delivered": "bright_yellow",
    "delivered": "green",
    "broken": "red",
}


def console(file: IO[str] | None = None) -> Console:
    """On a terminal: colour and its width. Elsewhere: plain text, wide enough that nothing is cut."""
    out = file or sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        width=None if tty else 240,
        no_color=not tty,
        color_system="auto" if tty else None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )


def t(value: str | None, style: str = "") -> Text:
    return Text(for_terminal(value or ""), style=style)


def status_text(status: str) -> Text:
    from tracker.status import SYMBOLS

    return Text(f"{SYMBOLS[status]} {status}", style=STATUS_STYLE[status])


def progress_text(row: Row) -> str:
    total = len(row.milestones)
    n = row.verdict.progress
    if not n:
        return f"0/{total}"
    return f"{n}/{total} {row.milestones[n - 1]}"


def status_table(rows: list[Row], today: date, pending_total: int) -> Table:
    table = Table(
        title=f"Commitments on {today.isoformat()} — {pending_total} evidence waiting for review",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    table.add_column("commitment", overflow="fold", max_width=48)
    table.add_column("status", no_wrap=True)
    table.add_column("milestones", overflow="fold", max_width=40)
    table.add_column("last evidence", overflow="fold", max_width=28)
    table.add_column("review", justify="right")
    table.add_column("announced", justify="right")
    table.add_column("flags", overflow="fold")
    for row in rows:
        last = row.digest.last_evidence
        table.add_row(
            Text.assemble(t(row.commitment.slug, "bold"), "\n", t(row.commitment.title, "dim")),
            status_text(row.verdict.status),
            progress_text(row),
            Text(f"{last.isoformat()} ({days_ago(last, today)})" if last else "—"),
            Text(str(row.digest.pending) if row.digest.pending else "—"),
            Text(f"{(today - row.commitment.announced_on).days} d"),
            Text(", ".join(row.verdict.flags) or "—"),
        )
    return table


def card(
    row: Row,
    today: date,
    history: list[models.StatusHistory],
    evidence: list[models.Evidence],
    reached: dict[int, date],
    total: int,
) -> Group:
    c = row.commitment
    head = Text.assemble(
        t(c.slug, "bold"),
        "  ",
        status_text(row.verdict.status),
        ("  [" + ", ".join(row.verdict.flags) + "]") if row.verdict.flags else "",
        "\n",
        t(c.title),
        "\n",
        Text(for_terminal(c.quote), style="italic"),
    )
    parts: list[object] = [Panel(head, box=box.ROUNDED)]
    if c.description:
        parts.append(t(c.description))
    facts = Table.grid(padding=(0, 2))
    facts.add_row("agreement", t(row.agreement_slug))
    facts.add_row("parties", t("; ".join(c.parties)))
    facts.add_row("announced", Text(with_jalali(c.announced_on)))
    if c.deadline:
        facts.add_row("deadline", Text(with_jalali(c.deadline)))
    facts.add_row("why", t(row.verdict.explanation))
    parts.append(facts)

    ms = Table(title="Milestones", title_justify="left", box=box.SIMPLE)
    ms.add_column("#", justify="right")
    ms.add_column("milestone", overflow="fold")
    ms.add_column("reached", overflow="fold")
    for i, title in enumerate(row.milestones, start=1):
        on = reached.get(i)
        ms.add_row(str(i), t(title), Text(with_jalali(on) if on else "—"))
    parts.append(ms)

    hist = Table(title="History", title_justify="left", box=box.SIMPLE)
    for col in ("when", "change", "by", "reason"):
        hist.add_column(col, overflow="fold")
    for h in history:
        hist.add_row(
            Text(h.at.strftime("%Y-%m-%d %H:%M")),
            Text(f"{h.old_status or '—'} → {h.new_status} ({h.kind})"),
            t(h.actor),
            t(h.reason),
        )
    parts.append(hist)

    ev = Table(
        title=f"Evidence ({total}), newest first"
        + (f"; showing {len(evidence)} (--limit)" if len(evidence) < total else ""),
        title_justify="left",
        box=box.SIMPLE,
    )
    for col in ("id", "date", "source", "title / link", "stance", "ms", "review"):
        ev.add_column(col, overflow="fold")
    for e in evidence:
        ev.add_row(
            str(e.id),
            Text(with_jalali(e.published_at.date())),
            t(e.publisher or e.source),
            Text.assemble(t(e.title), "\n", t(e.url, "dim")),
            Text(e.stance),
            Text(str(e.milestone) if e.milestone else "—"),
            Text(e.review),
        )
    parts.append(ev)
    return Group(*parts)  # type: ignore[arg-type]


def pending_table(items: list[tuple[models.Evidence, str]], total: int) -> Table:
    table = Table(
        title=f"{total} evidence waiting for review"
        + (f" (showing {len(items)})" if len(items) < total else ""),
        title_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    for col in ("id", "commitment", "date", "source", "title / link", "matched"):
        table.add_column(col, overflow="fold")
    for e, slug in items:
        table.add_row(
            str(e.id),
            t(slug),
            Text(e.published_at.date().isoformat()),
            t(e.publisher or e.source),
            Text.assemble(t(e.title), "\n", t(e.url, "dim")),
            t(", ".join(e.matched_terms)),
        )
    return table
