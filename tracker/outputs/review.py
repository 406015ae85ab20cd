"""The review loop on a terminal: one story and the footer (rich). Untrusted text enters as
`Text` through `escape.terminal`, never as markup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from tracker.dates import shown
from tracker.outputs.escape import terminal, terminal_block, without_userinfo
from tracker.outputs.terminal import both_sides, side, source_label, t
from tracker.store.records import EvidenceRecord, MentionRecord

if TYPE_CHECKING:
    from tracker.review import Cluster, Screen

__all__ = ["footer", "item", "summary"]

FULL_TEXT_LIMIT = 3000  # characters of the text shown with `o`
OTHERS_SHOWN = 8  # other outlets listed by name; the rest counted


def _suggestion(e: EvidenceRecord, milestones: Sequence[str]) -> Text:
    if e.suggested_milestone is None and e.suggested_stance is None:
        return Text("nothing suggested: c keeps the stored stance", style="dim")
    parts = []
    if e.suggested_milestone is not None:
        n = e.suggested_milestone
        title = milestones[n - 1] if 0 < n <= len(milestones) else "?"
        parts.append(f"milestone {n} “{title}”")
    parts.append(e.suggested_stance or "neutral")
    return t(", ".join(parts), "bold")


def _others(c: Cluster) -> Text | None:
    """The other outlets that carried the story: the cluster's other rows, then its mentions."""
    names = [
        f"{e.publisher or e.source} ({side(e.country)}, #{e.id}, {e.published_at:%Y-%m-%d})"
        for e in c.members
    ]
    names += [
        f"{m.publisher or m.source}" + (f" ({side(m.country)})" if m.country else "")
        for m in c.mentions
    ]
    if not names:
        return None
    more = len(names) - OTHERS_SHOWN
    text = "; ".join(names[:OTHERS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
    return t(text)


def _facts(screen: Screen, c: Cluster) -> Table:
    e = c.lead
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("source", source_label(e))
    grid.add_row("date", Text(shown(e.published_at.date(), e.date_precision)))
    grid.add_row("link", t(without_userinfo(e.url) if e.url else (e.cite or "no link")))
    terms = ", ".join(e.matched_terms) or "—"
    grid.add_row("matched", t(f"{terms} · score {e.score:.2f}"))
    if e.reasons:
        grid.add_row("why", t("; ".join(e.reasons)))
    grid.add_row("suggests", _suggestion(e, screen.milestones))
    if screen.stance is not None:
        grid.add_row("you chose", Text(f"stance {screen.stance}", style="bold yellow"))
    others = _others(c)
    if others is not None:
        grid.add_row("also carried by", others)
    if both_sides(e, [*c.mentions, *_as_mentions(c.members)]):
        grid.add_row("", Text("reported by both Iranian and Azerbaijani outlets", style="bold"))
    return grid


def _as_mentions(rows: Sequence[EvidenceRecord]) -> list[MentionRecord]:
    return [
        MentionRecord(e.id, e.url, e.source, e.publisher, e.country, e.published_at) for e in rows
    ]


def _full_text(c: Cluster) -> Text:
    e = c.lead
    body = e.summary or "(the source gave no text beyond the title)"
    if len(body) > FULL_TEXT_LIMIT:
        body = body[:FULL_TEXT_LIMIT] + "…"
    text = Text(terminal_block(body))
    if e.note:
        text.append("\nnote: " + terminal(e.note), style="italic")
    text.append("\n" + terminal(without_userinfo(e.url) if e.url else "no link"), style="underline")
    for m in c.members:
        text.append(f"\n#{m.id}: " + terminal(without_userinfo(m.url)), style="dim")
    for mention in c.mentions:
        text.append("\n" + terminal(without_userinfo(mention.url)), style="dim")
    return text


def _milestone_menu(screen: Screen) -> Table:
    menu = Table(title="Which milestone does it reach?", title_justify="left", box=box.SIMPLE)
    menu.add_column("key", justify="right")
    menu.add_column("milestone", overflow="fold")
    for n, title in enumerate(screen.milestones, start=1):
        menu.add_row(str(n), t(title))
    menu.add_row("0", Text("none: confirm without a milestone", style="dim"))
    return menu


def item(screen: Screen) -> Group:
    """One story: commitment, title, source and side, both calendars, link, matched terms, score
    and reasons, the suggestion, the other outlets; `o` adds the full text."""
    c = screen.cluster
    assert c is not None
    e = c.lead
    story = f" · a story of {len(c.rows)} items" if c.members else ""
    head = Text.assemble(
        (f"{screen.position}/{screen.total}{story}  ", "dim"),
        t(e.commitment_slug, "bold cyan"),
        "\n",
        t(e.title, "bold"),
    )
    parts: list[Any] = [Panel(head, box=box.ROUNDED, subtitle=f"#{e.id}", subtitle_align="right")]
    parts.append(_facts(screen, c))
    if screen.expanded:
        parts.append(Panel(_full_text(c), title="full text", title_align="left", box=box.SIMPLE))
    if screen.mode == "milestone":
        parts.append(_milestone_menu(screen))
    parts.append(footer(screen))
    return Group(*parts)


def footer(screen: Screen) -> Group:
    """The keys for the mode, what just happened, and how many stories are left."""
    from tracker.review import KEYS

    left = f"{screen.left} left"
    if screen.mode == "reason":
        keys = Text.assemble(
            ("reason: ", "bold"),
            terminal(screen.buffer),
            ("▏", "blink"),
            "   Enter rejects · Esc back",
        )
    elif screen.mode == "milestone":
        keys = Text(
            f"milestone: {screen.buffer or '_'}   1–{len(screen.milestones)} · 0 none · Esc back"
        )
    else:
        keys = Text()
        for n, (key, what) in enumerate(KEYS):
            keys.append(("  " if n else "") + key, style="bold")
            keys.append(f" {what}")
    lines: list[Any] = [Rule(style="dim")]
    if screen.message:
        lines.append(t(screen.message, "yellow"))
    lines.append(Text.assemble(keys, ("  · " + left, "bold")))
    return Group(*lines)


def summary(tally: dict[str, int], left: int) -> str:
    """One line when the loop ends: what was decided, and what still waits."""
    parts = [f"{tally.get(k, 0)} {k}" for k in ("confirmed", "rejected", "skipped")]
    if tally.get("already"):
        parts.append(f"{tally['already']} already reviewed by someone else")
    return "review: " + ", ".join(parts) + f"; {left} still waiting"
