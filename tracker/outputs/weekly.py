"""The weekly report's content (plain data) and its Markdown, one function per section.

CommonMark with GFM tables, so it reads as plain text in a mail client, renders on a code host,
and converts to HTML for the mail's second part (`tracker.outputs.html`). Text from the web
(titles, source names, error messages) goes through `escape.markdown`, links through
`escape.md_link`: neither can break a table, start emphasis or a link, or inject HTML. The same
data gives the same bytes, apart from the one "Generated at" line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from tracker.outputs.escape import markdown as md_text
from tracker.outputs.escape import md_code, md_link
from tracker.vocab import SYMBOLS
from tracker.weeks import IsoWeek, persian_range

__all__ = [
    "GENERATED_PREFIX",
    "AgreementLine",
    "ChangeLine",
    "CommitmentLine",
    "EvidenceLine",
    "SourceProblem",
    "WeeklyReport",
    "render",
]

DEFAULT_QUIET_DAYS = 60
GENERATED_PREFIX = "_Generated at "


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# ---------------------------------------------------------------- what the report holds


@dataclass(frozen=True)
class CommitmentLine:
    id: int
    slug: str
    title: str
    agreement_id: int
    status: str
    previous: str | None  # None: not yet announced at the previous week's end
    progress: int
    milestones: tuple[str, ...]
    last_evidence: date | None
    flags: tuple[str, ...]
    announced_on: date
    explanation: str


@dataclass(frozen=True)
class ChangeLine:
    slug: str
    at: datetime | None  # None: reconstructed from evidence dates, no history row in the week
    old: str | None
    new: str
    kind: str
    actor: str
    reason: str


@dataclass(frozen=True)
class EvidenceLine:
    id: int
    slug: str
    published: datetime
    source: str
    publisher: str | None
    country: str | None
    title: str
    url: str
    stance: str
    review: str
    countries: frozenset[str] = frozenset()  # the row's and its mentions' outlet countries
    mentions: int = 0
    milestone: int | None = None

    @property
    def both_sides(self) -> bool:
        return {"IR", "AZ"} <= self.countries


@dataclass(frozen=True)
class SourceProblem:
    name: str
    kind: str
    state: str  # failing | silent
    since: datetime | None
    failures: int
    last_success: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AgreementLine:
    id: int
    slug: str
    title: str
    outlet: str
    published_on: date | None


@dataclass
class WeeklyReport:
    week: IsoWeek
    as_of: date  # the last day the report covers (the Sunday, or today for a week in progress)
    generated_at: datetime
    agreements: list[AgreementLine]
    commitments: list[CommitmentLine]
    changes: list[ChangeLine]
    new_evidence: dict[str, list[EvidenceLine]]
    new_counts: dict[str, int]
    pending: list[EvidenceLine]
    pending_total: int
    quiet: list[CommitmentLine]
    sources: list[SourceProblem]
    quiet_days: int = DEFAULT_QUIET_DAYS
    version: str = field(default="")
    # Evidence trusted sources confirmed by themselves (reviewed_by "auto:<source>") recorded
    # this week and still confirmed: the newest, and how many.
    auto_confirmed: list[EvidenceLine] = field(default_factory=list)
    auto_total: int = 0

    @property
    def in_progress(self) -> bool:
        return self.as_of < self.week.end

    @property
    def new_total(self) -> int:
        return sum(self.new_counts.values())

    @property
    def failing(self) -> int:
        return sum(1 for s in self.sources if s.state == "failing")

    @property
    def silent(self) -> int:
        return sum(1 for s in self.sources if s.state == "silent")

    @property
    def summary(self) -> str:
        """The headline numbers, e.g. '1 status change, 5 new evidence, 3 waiting for review, …'."""
        parts = [
            _plural(len(self.changes), "status change"),
            f"{self.new_total} new evidence",
            f"{self.pending_total} waiting for review",
            _plural(self.failing, "source") + " failing",
        ]
        if self.silent:
            parts.append(_plural(self.silent, "source") + " silent")
        if self.auto_total:
            parts.append(f"{self.auto_total} confirmed automatically")
        return ", ".join(parts)

    @property
    def subject(self) -> str:
        return f"Weekly report {self.week.label}: {self.summary}"

    @property
    def filename(self) -> str:
        return f"{self.week.label}.md"

    def markdown(self) -> str:
        return render(self)


# ---------------------------------------------------------------- rendering


def _status(status: str | None) -> str:
    if status is None:
        return "—"
    return f"{SYMBOLS.get(status, '')} {md_code(status)}".strip()


def _cell(text: str) -> str:
    return text if text.strip() else "—"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _source_label(e: EvidenceLine) -> str:
    who = md_text(e.publisher) if e.publisher else ""
    where = md_text(e.source) + (f", {md_text(e.country)}" if e.country else "")
    return f"{who} ({where})" if who else where


def _evidence_bullet(e: EvidenceLine, *, pending: bool) -> str:
    parts = [f"{e.published:%Y-%m-%d}"]
    if pending:
        parts = [f"#{e.id}", *parts, md_code(e.slug)]
    parts += [_source_label(e), md_link(e.title, e.url), md_text(e.stance)]
    if not pending:
        parts.append(md_text(e.review))
    if e.both_sides:
        parts.append("**reported by both Iranian and Azerbaijani outlets**")
    if e.mentions:
        parts.append(f"also carried by {_plural(e.mentions, 'other outlet')}")
    return "- " + " · ".join(parts)


def _days(n: int) -> str:
    return _plural(n, "day")


Lines = list[str]


def _head(r: WeeklyReport) -> Lines:
    out: Lines = []
    add = out.append
    # A heading's trailing run of `#` would be read as its closing sequence and dropped.
    names = [md_text(a.title).replace("#", "\\#") for a in r.agreements]
    heading = "; ".join(names) if 0 < len(names) <= 3 else _plural(len(names), "agreement")
    add(f"# Weekly report {r.week.label}: {heading}")
    add("")
    span = f"Monday {r.week.start.isoformat()} – Sunday {r.week.end.isoformat()}"
    add(
        f"**Week:** {span} · Persian calendar {persian_range(r.week.start, r.week.end)}"
        + (f" · in progress, as of {r.as_of.isoformat()}" if r.in_progress else "")
    )
    add("")
    if r.agreements:
        described = []
        for a in r.agreements:
            bits = [
                b for b in (md_text(a.outlet), a.published_on and a.published_on.isoformat()) if b
            ]
            described.append(md_text(a.title) + (f" ({', '.join(bits)})" if bits else ""))
        add("**Agreements:** " + "; ".join(described))
        add("")
    add(f"**Summary:** {r.summary}")
    add("")
    return out


def _commitments(r: WeeklyReport) -> Lines:
    out: Lines = ["## Commitments", ""]
    add = out.append
    previous_label = r.week.previous.label
    add(
        _row(
            [
                "Commitment",
                "Status",
                f"Change since {previous_label}",
                "Milestones",
                "Last evidence",
                "Flags",
            ]
        )
    )
    add("| --- | --- | --- | --- | --- | --- |")
    for line in r.commitments:
        total = len(line.milestones)
        progress = f"{line.progress}/{total}"
        if line.progress:
            progress += ": " + md_text(line.milestones[line.progress - 1])
        if line.previous is None:
            change = "new"
        elif line.previous == line.status:
            change = "—"
        else:
            change = f"{_status(line.previous)} → {_status(line.status)}"
        add(
            _row(
                [
                    f"{md_text(line.title)} ({md_code(line.slug)})",
                    _status(line.status),
                    change,
                    progress,
                    line.last_evidence.isoformat() if line.last_evidence else "—",
                    " ".join(md_code(f) for f in line.flags),
                ]
            )
        )
    if not r.commitments:
        add("")
        add("No commitment had been announced by the end of this week.")
    add("")
    return out


def _changes(r: WeeklyReport) -> Lines:
    out: Lines = ["## Status changes this week", ""]
    if not r.changes:
        out.append("None.")
    for ch in r.changes:
        when = (
            f"{ch.at:%Y-%m-%d %H:%M} UTC"
            if ch.at
            else "during the week (reconstructed from evidence dates)"
        )
        who = f" ({md_text(ch.kind)} by {md_text(ch.actor)})" if ch.actor else ""
        out.append(
            f"- {when} {md_code(ch.slug)}: {_status(ch.old)} → {_status(ch.new)}{who}: "
            f"{md_text(ch.reason) or 'no reason recorded'}"
        )
    out.append("")
    return out


def _new_evidence(r: WeeklyReport) -> Lines:
    out: Lines = ["## New evidence this week", ""]
    add = out.append
    add(
        f"Evidence the tracker recorded this week ({r.new_total}), newest publication first; "
        "rejected items are left out."
    )
    add("")
    titles = {line.slug: line.title for line in r.commitments}
    for line in r.commitments:
        items = r.new_evidence.get(line.slug, [])
        count = r.new_counts.get(line.slug, 0)
        if not count:
            continue
        add(f"### {md_code(line.slug)} — {md_text(titles[line.slug])} ({count})")
        add("")
        for e in items:
            add(_evidence_bullet(e, pending=False))
        if count > len(items):
            add(f"- … and {count - len(items)} more: `tracker show {line.slug}`")
        add("")
    if not r.new_total:
        add("None.")
        add("")
    return out


def _quiet(r: WeeklyReport) -> Lines:
    out: Lines = ["## Gone quiet", ""]
    add = out.append
    add(
        f"Commitments that are stalled, or with no evidence in the {_days(r.quiet_days)} before "
        f"{r.as_of.isoformat()}."
    )
    add("")
    if not r.quiet:
        add("None.")
    for line in r.quiet:
        if line.last_evidence is not None:
            gap = (r.as_of - line.last_evidence).days
            last = f"last evidence {line.last_evidence.isoformat()} ({_days(gap)} earlier)"
        else:
            last = f"no evidence since it was announced on {line.announced_on.isoformat()}"
        add(f"- {md_code(line.slug)} — {md_text(line.title)}: {_status(line.status)}, {last}")
    add("")
    return out


def _pending(r: WeeklyReport) -> Lines:
    out: Lines = [f"## Waiting for review ({r.pending_total})", ""]
    if not r.pending_total:
        out.append("None.")
    for e in r.pending:
        out.append(_evidence_bullet(e, pending=True))
    if r.pending_total > len(r.pending):
        out.append(
            f"- … and {r.pending_total - len(r.pending)} more, newest first: run `tracker review`"
        )
    out.append("")
    return out


def _auto(r: WeeklyReport) -> Lines:
    """Evidence trusted sources confirmed by themselves: listed so that a person can still
    reject it (the section appears only in a week that has some)."""
    if not r.auto_total:
        return []
    out: Lines = [f"## Confirmed automatically ({r.auto_total})", ""]
    add = out.append
    add(
        'Trusted sources (`confirm = "auto"`) confirmed these by themselves; they count for the '
        'status. If one is wrong: `tracker review reject ID --reason "…"`.'
    )
    add("")
    for e in r.auto_confirmed:
        line = _evidence_bullet(e, pending=True)
        if e.milestone:
            line += f" · milestone {e.milestone}"
        add(line)
    if r.auto_total > len(r.auto_confirmed):
        add(f"- … and {r.auto_total - len(r.auto_confirmed)} more: `tracker export` lists them")
    add("")
    return out


def source_health(s: SourceProblem, escape: Callable[[str], str]) -> str:
    """How a failing or silent source stands, in one sentence; the source's own error text (from
    the web) passes through `escape`, the one part of it the Markdown and terminal views differ on."""
    if s.state == "failing":
        since = f" since {s.since:%Y-%m-%d %H:%M} UTC" if s.since else ""
        text = f"failing{since}, {_plural(s.failures, 'failure')} in a row"
    else:
        last = f"last success {s.last_success:%Y-%m-%d %H:%M} UTC" if s.last_success else None
        text = "silent, " + (last or "never succeeded")
    if s.last_error:
        text += f"; last error: {escape(s.last_error)}"
    return text


def _sources(r: WeeklyReport) -> Lines:
    out: Lines = ["## Sources failing or silent", ""]
    if not r.sources:
        out.append("None.")
    for s in r.sources:
        kind = f" ({md_text(s.kind)})" if s.kind else ""
        out.append(f"- {md_text(s.name)}{kind}: {source_health(s, md_text)}")
    out.append("")
    return out


def _footer(r: WeeklyReport) -> Lines:
    stamp = r.generated_at.replace(microsecond=0, tzinfo=None).isoformat()
    return ["---", "", f"{GENERATED_PREFIX}{stamp}Z by tracker {r.version}._"]


SECTIONS: tuple[Callable[[WeeklyReport], Lines], ...] = (
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


def render(r: WeeklyReport) -> str:
    """The report as CommonMark + GFM tables. Deterministic apart from the 'Generated at' line."""
    return "\n".join(line for section in SECTIONS for line in section(r)) + "\n"
