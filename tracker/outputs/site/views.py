"""What each page shows, worked out from the site's data: cards, evidence lines, the month's
changes and the feed's entries. Plain values; the templates only lay them out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tracker.outputs.site.model import CommitmentPage
from tracker.outputs.site.text import evidence_day, href, plural
from tracker.store.records import EvidenceRecord, HistoryRecord, Row

__all__ = [
    "CHANGE_DAYS",
    "FEED_LIMIT",
    "Card",
    "Change",
    "EvidenceView",
    "FeedEntry",
    "MilestoneView",
    "Part",
    "card",
    "changes",
    "evidence_views",
    "explanation",
    "feed_entries",
    "milestones",
    "page_file",
]

CHANGE_DAYS = 30  # "this month": the 30 days up to today
FEED_LIMIT = 100
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_EVIDENCE_REF = re.compile(r"evidence #(\d+)")


def page_file(page: CommitmentPage) -> str:
    """The page's path inside the site; a slug that is not a plain name falls back to the id."""
    c = page.row.commitment
    name = c.slug if _SLUG.match(c.slug) else f"commitment-{c.id}"
    return f"commitments/{name}.html"


@dataclass(frozen=True)
class MilestoneView:
    position: int
    title: str
    reached: bool
    on: date | None = None  # when it was reached, if evidence dated it
    evidence_id: int | None = None  # the evidence that proved it
    implied: bool = False  # reached because a later milestone was


def milestones(row: Row) -> list[MilestoneView]:
    """Each milestone as the status engine counts it (its `verdict.milestones`, where a later
    milestone implies the earlier ones), else as the digest dates them."""
    states = getattr(row.verdict, "milestones", None) or ()
    if states:
        return [
            MilestoneView(s.position, s.title, s.reached, s.on, s.evidence_id, s.implied)
            for s in states
        ]
    reached = row.digest.reached
    return [
        MilestoneView(i, title, True, reached[i].on, reached[i].evidence_id)
        if i in reached
        else MilestoneView(i, title, False)
        for i, title in enumerate(row.milestones, start=1)
    ]


@dataclass(frozen=True)
class Card:
    """One commitment at a glance (the index, and the head of its page)."""

    slug: str
    file: str
    title: str
    status: str
    progress: int
    total: int
    current: str | None  # the highest milestone reached
    latest: EvidenceRecord | None  # the newest evidence shown on the page
    flags: tuple[str, ...]
    pending: int
    days: int  # since announced

    @property
    def progress_words(self) -> str:
        words = f"{self.progress} of {plural(self.total, 'milestone')} reached"
        return words + (f", the last: {self.current}" if self.current else "")


def card(page: CommitmentPage, today: date) -> Card:
    row = page.row
    progress = row.verdict.progress
    return Card(
        slug=row.commitment.slug,
        file=page_file(page),
        title=row.commitment.title,
        status=row.verdict.status,
        progress=progress,
        total=len(row.milestones),
        current=row.milestones[progress - 1] if 0 < progress <= len(row.milestones) else None,
        latest=page.evidence[0] if page.evidence else None,
        flags=row.verdict.flags,
        pending=row.digest.pending,
        days=(today - row.commitment.announced_on).days,
    )


@dataclass(frozen=True)
class EvidenceView:
    e: EvidenceRecord
    when: str
    link: str | None
    outlet: str
    both_sides: bool
    mentions: tuple[tuple[str, str | None], ...]  # (outlet, link) of others carrying the story
    proves: str | None  # "milestone 2: …" when this item proved a milestone


def evidence_views(page: CommitmentPage) -> list[EvidenceView]:
    proofs = {
        m.evidence_id: f"proved milestone {m.position}: {m.title}"
        for m in milestones(page.row)
        if m.evidence_id is not None
    }
    out = []
    for e in page.evidence:
        others = page.mentions.get(e.id, ())
        countries = {c.upper() for c in [e.country, *(m.country for m in others)] if c}
        out.append(
            EvidenceView(
                e=e,
                when=evidence_day(e.published_at, e.date_precision),
                link=href(e.url),
                outlet=" · ".join(x for x in (e.publisher or e.source, e.country) if x),
                both_sides={"IR", "AZ"} <= countries,
                mentions=tuple(
                    (" · ".join(x for x in (m.publisher or m.source, m.country) if x), href(m.url))
                    for m in others
                ),
                proves=proofs.get(e.id),
            )
        )
    return out


@dataclass(frozen=True)
class Part:
    text: str
    anchor: str | None = None


def explanation(text: str, shown: set[int]) -> list[Part]:
    """The status explanation, with each 'evidence #N' linked to the item when the page lists it."""
    parts: list[Part] = []
    at = 0
    for m in _EVIDENCE_REF.finditer(text):
        ev_id = int(m.group(1))
        if ev_id not in shown:
            continue
        parts.append(Part(text[at : m.start()]))
        parts.append(Part(m.group(0), f"e{ev_id}"))
        at = m.end()
    parts.append(Part(text[at:]))
    return [p for p in parts if p.text]


def status_changes(history: Sequence[HistoryRecord]) -> list[HistoryRecord]:
    """History rows that moved a status (first records and no-op overrides left out)."""
    return [h for h in history if h.old_status is not None and h.old_status != h.new_status]


@dataclass(frozen=True)
class Change:
    on: date
    kind: str  # status | milestone | evidence
    card: Card
    text: str
    anchor: str | None = None
    status: str | None = None  # the new status, for a status change


def changes(pages: Sequence[CommitmentPage], cards: Sequence[Card], today: date) -> list[Change]:
    """Status changes, milestones reached and confirmed evidence published in the last 30 days."""
    since = today - timedelta(days=CHANGE_DAYS - 1)
    out: list[Change] = []
    for page, c in zip(pages, cards, strict=True):
        for h in status_changes(page.history):
            if since <= h.at.date() <= today:
                text = f"{h.old_status} → {h.new_status}: {h.reason}"
                out.append(Change(h.at.date(), "status", c, text, None, h.new_status))
        proofs = {m.evidence_id: m for m in milestones(page.row) if m.evidence_id is not None}
        for e in page.evidence:
            on = e.published_at.date()
            if e.review != "confirmed" or not since <= on <= today:
                continue
            if e.id in proofs:
                text = f"milestone {proofs[e.id].position} reached: {proofs[e.id].title}"
                out.append(Change(on, "milestone", c, text, f"e{e.id}"))
            else:
                out.append(Change(on, "evidence", c, e.title, f"e{e.id}"))
    order = {"status": 0, "milestone": 1, "evidence": 2}
    return sorted(out, key=lambda ch: (-ch.on.toordinal(), order[ch.kind], ch.card.slug, ch.text))


@dataclass(frozen=True)
class FeedEntry:
    id: str
    updated: datetime
    title: str
    link: str  # relative to the site's root
    related: str | None
    summary: str


def _confirmed_at(e: EvidenceRecord) -> datetime:
    return e.reviewed_at or e.created_at


def feed_entries(
    pages: Sequence[CommitmentPage], cards: Sequence[Card], tag: str
) -> list[FeedEntry]:
    """Status changes and confirmed evidence, newest first (at most FEED_LIMIT)."""
    out: list[FeedEntry] = []
    for page, c in zip(pages, cards, strict=True):
        for h in status_changes(page.history):
            out.append(
                FeedEntry(
                    id=f"{tag}:status/{h.id}",
                    updated=h.at,
                    title=f"{c.title}: {h.old_status} → {h.new_status}",
                    link=c.file,
                    related=None,
                    summary=f"{h.kind} by {h.actor}: {h.reason or 'no reason recorded'}",
                )
            )
        for ev in evidence_views(page):
            e = ev.e
            if e.review != "confirmed":
                continue
            bits = [f"Published {ev.when}", ev.outlet, f"stance {e.stance}"]
            if ev.proves:
                bits.append(ev.proves)
            if ev.both_sides:
                bits.append("reported by both Iranian and Azerbaijani outlets")
            out.append(
                FeedEntry(
                    id=f"{tag}:evidence/{e.id}",
                    updated=_confirmed_at(e),
                    title=f"{c.title}: {e.title}",
                    link=f"{c.file}#e{e.id}",
                    related=ev.link,
                    summary="; ".join(b for b in bits if b) + (f". {e.note}" if e.note else ""),
                )
            )
    out.sort(key=lambda f: (f.updated, f.id), reverse=True)
    return out[:FEED_LIMIT]


def day_start(d: date) -> datetime:
    return datetime.combine(d, time())
