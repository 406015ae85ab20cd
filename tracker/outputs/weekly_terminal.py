"""`tracker report weekly --show`: the week's report in the terminal (rich), section for section
the content of the Markdown file (`tracker.outputs.weekly`). Untrusted text enters as `Text`
through `escape.terminal`, never as markup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from tracker.outputs.escape import without_userinfo
from tracker.outputs.terminal import STATUS_STYLE, t
from tracker.outputs.weekly import EvidenceLine, WeeklyReport, _days, _plural, source_health
from tracker.vocab import SYMBOLS
from tracker.weeks import persian_range

__all__ = ["render"]

Parts = list[Any]


def _status(status: str | None) -> Text:
    if status is None:
        return Text("—")
    return Text(f"{SYMBOLS.get(status, '')} {status}".strip(), style=STATUS_STYLE.get(status, ""))


def _heading(text: str) -> Text:
    return Text(text, style="bold underline")


def _evidence(e: EvidenceLine, *, pending: bool) -> Text:
    who = e.publisher or ""
    where = e.source + (f", {e.country}" if e.country else "")
    parts = [f"{e.published:%Y-%m-%d}"]
    if pending:
        parts = [f"#{e.id}", *parts, e.slug]
    parts += [f"{who} ({where})" if who else where, e.title]
    line = t("• " + " · ".join(parts))
    line.append_text(Text.assemble(" · ", t(without_userinfo(e.url), "dim"), f" · {e.stance}"))
    if not pending:
        line.append(f" · {e.review}")
    if e.milestone and pending:
        line.append(f" · milestone {e.milestone}")
    if e.both_sides:
        line.append(" · reported by both Iranian and Azerbaijani outlets", style="bold")
    if e.mentions:
        line.append(f" · also carried by {_plural(e.mentions, 'other outlet')}")
    return line


def _head(r: WeeklyReport) -> Parts:
    names = [a.title for a in r.agreements]
    heading = "; ".join(names) if 0 < len(names) <= 3 else _plural(len(names), "agreement")
    week = f"Monday {r.week.start.isoformat()} – Sunday {r.week.end.isoformat()}"
    week += f" · Persian calendar {persian_range(r.week.start, r.week.end)}"
    if r.in_progress:
        week += f" · in progress, as of {r.as_of.isoformat()}"
    parts: Parts = [t(f"Weekly report {r.week.label}: {heading}", "bold"), Text(week)]
    for a in r.agreements:
        bits = [b for b in (a.outlet, a.published_on and a.published_on.isoformat()) if b]
        parts.append(t(f"Agreement: {a.title}" + (f" ({', '.join(bits)})" if bits else "")))
    parts.append(Text.assemble(("Summary: ", "bold"), r.summary))
    return parts


def _commitments(r: WeeklyReport) -> Parts:
    table = Table(title="Commitments", title_justify="left", box=box.SIMPLE_HEAVY)
    for col in ("commitment", "status", f"change since {r.week.previous.label}"):
        table.add_column(col, overflow="fold")
    for col in ("milestones", "last evidence", "flags"):
        table.add_column(col, overflow="fold")
    for line in r.commitments:
        progress = f"{line.progress}/{len(line.milestones)}"
        if line.progress:
            progress += ": " + line.milestones[line.progress - 1]
        if line.previous is None:
            change = Text("new")
        elif line.previous == line.status:
            change = Text("—")
        else:
            change = Text.assemble(_status(line.previous), " → ", _status(line.status))
        table.add_row(
            Text.assemble(t(line.title), " ", t(f"({line.slug})", "dim")),
            _status(line.status),
            change,
            t(progress),
            Text(line.last_evidence.isoformat() if line.last_evidence else "—"),
            Text(" ".join(line.flags) or "—"),
        )
    if not r.commitments:
        return [_heading("Commitments"), Text("No commitment had been announced by then.")]
    return [table]


def _changes(r: WeeklyReport) -> Parts:
    parts: Parts = [_heading("Status changes this week")]
    if not r.changes:
        parts.append(Text("None."))
    for ch in r.changes:
        when = f"{ch.at:%Y-%m-%d %H:%M} UTC" if ch.at else "during the week (reconstructed)"
        who = f"({ch.kind} by {ch.actor}) " if ch.actor else ""
        parts.append(
            Text.assemble(
                f"• {when} ",
                t(ch.slug, "bold"),
                ": ",
                _status(ch.old),
                " → ",
                _status(ch.new),
                " ",
                t(f"{who}— {ch.reason or 'no reason recorded'}"),
            )
        )
    return parts


def _new_evidence(r: WeeklyReport) -> Parts:
    parts: Parts = [
        _heading(f"New evidence this week ({r.new_total})"),
        Text(
            "Evidence the tracker recorded this week, newest publication first; rejected left out.",
            style="dim",
        ),
    ]
    for line in r.commitments:
        count = r.new_counts.get(line.slug, 0)
        if not count:
            continue
        items = r.new_evidence.get(line.slug, [])
        parts.append(t(f"{line.slug} — {line.title} ({count})", "bold"))
        parts += [_evidence(e, pending=False) for e in items]
        if count > len(items):
            parts.append(Text(f"• … and {count - len(items)} more: tracker show {line.slug}"))
    if not r.new_total:
        parts.append(Text("None."))
    return parts


def _quiet(r: WeeklyReport) -> Parts:
    parts: Parts = [
        _heading("Gone quiet"),
        Text(
            f"Stalled, or no evidence in the {_days(r.quiet_days)} before {r.as_of.isoformat()}.",
            style="dim",
        ),
    ]
    if not r.quiet:
        parts.append(Text("None."))
    for line in r.quiet:
        if line.last_evidence is not None:
            gap = (r.as_of - line.last_evidence).days
            last = f"last evidence {line.last_evidence.isoformat()} ({_days(gap)} earlier)"
        else:
            last = f"no evidence since it was announced on {line.announced_on.isoformat()}"
        parts.append(
            Text.assemble(
                "• ", t(f"{line.slug} — {line.title}:"), " ", _status(line.status), f", {last}"
            )
        )
    return parts


def _auto(r: WeeklyReport) -> Parts:
    if not r.auto_total:
        return []
    parts: Parts = [
        _heading(f"Confirmed automatically ({r.auto_total})"),
        Text(
            'Trusted sources (confirm = "auto") confirmed these by themselves; if one is wrong: '
            'tracker review reject ID --reason "…"',
            style="dim",
        ),
    ]
    parts += [_evidence(e, pending=True) for e in r.auto_confirmed]
    if r.auto_total > len(r.auto_confirmed):
        parts.append(Text(f"• … and {r.auto_total - len(r.auto_confirmed)} more"))
    return parts


def _pending(r: WeeklyReport) -> Parts:
    parts: Parts = [_heading(f"Waiting for review ({r.pending_total})")]
    if not r.pending_total:
        parts.append(Text("None."))
    parts += [_evidence(e, pending=True) for e in r.pending]
    if r.pending_total > len(r.pending):
        more = r.pending_total - len(r.pending)
        parts.append(Text(f"• … and {more} more, newest first: run tracker review"))
    return parts


def _sources(r: WeeklyReport) -> Parts:
    parts: Parts = [_heading("Sources failing or silent")]
    if not r.sources:
        parts.append(Text("None."))
    for s in r.sources:
        text = source_health(s, str)  # `t` below escapes the whole line for the terminal
        kind = f" ({s.kind})" if s.kind else ""
        parts.append(t(f"• {s.name}{kind}: {text}", "red" if s.state == "failing" else "yellow"))
    return parts


def _footer(r: WeeklyReport) -> Parts:
    stamp = r.generated_at.replace(microsecond=0, tzinfo=None).isoformat()
    return [Text(f"Generated at {stamp}Z by tracker {r.version}.", style="dim")]


SECTIONS: tuple[Callable[[WeeklyReport], Parts], ...] = (
    _head,
    _commitments,
    _changes,
    _new_evidence,
    _quiet,
    _auto,
    _pending,
    _sources,
    _footer,
)


def render(r: WeeklyReport) -> Group:
    """The week as rich renderables, in the Markdown file's order, a rule between sections."""
    parts: Parts = []
    for section in SECTIONS:
        found = section(r)
        if found:
            if parts:
                parts.append(Rule(style="dim"))
            parts += found
    return Group(*parts)
