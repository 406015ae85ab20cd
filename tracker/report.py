"""The weekly report: where every commitment stood at the end of one ISO week, and what happened in it.

The output is CommonMark with GFM tables, so it reads as plain text in a mail client, renders on a
code host, and converts to HTML for the mail's second part (see `tracker.mail`).

Rules that make a series of weekly reports trustworthy:

- *New evidence of a week* is evidence the tracker recorded during the week (`created_at`), not
  evidence published in it: every evidence row then appears in exactly one weekly report, including
  an old article found late. Its publication date is shown beside it. Rejected evidence is left out.
- *Status at a week's end* is the last status-history row at or before the end of the week; for a
  commitment without history by then, the status engine is run as of that day over the evidence
  published by then (review states as they are now). The previous week's end is worked out the same
  way, which gives the "change" column.
- Every query is bounded by the week, by a LIMIT or by a GROUP BY over indexed columns, so the report
  costs about the same with a thousand or a million evidence rows.
- The same database and week give the same bytes apart from the one "Generated at" line; an
  unchanged report is not rewritten (see `write_report`).

Text from the web (titles, source names, error messages) goes through `md_text`, links through
`md_link`: neither can break a table, start emphasis or a link, or inject HTML.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session

from tracker import models, readmodel
from tracker.errors import UsageError
from tracker.status import Digest, evaluate
from tracker.store import facts_of
from tracker.text import one_line, visible

if TYPE_CHECKING:
    from tracker.db import Database

DEFAULT_QUIET_DAYS = 60
DEFAULT_PENDING_LIMIT = 50
NEW_PER_COMMITMENT = 20  # evidence lines listed per commitment; the rest are counted
SILENT_DAYS = 7
GENERATED_PREFIX = "_Generated at "
FINISHED = ("delivered", "broken")

_WEEK = re.compile(r"^\s*(\d{4})-?[Ww](\d{1,2})\s*$")

# ---------------------------------------------------------------- ISO weeks


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, value: str) -> IsoWeek:
        m = _WEEK.match(value)
        if not m:
            raise UsageError(f"--week must look like 2026-W47, got {value!r}")
        year, week = int(m.group(1)), int(m.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise UsageError(f"--week {value!r}: {year} has no ISO week {week}") from None
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_complete(cls, today: date) -> IsoWeek:
        """The newest week whose Sunday is over (on a Sunday, the week before)."""
        return cls.of(today - timedelta(days=today.isoweekday()))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    @property
    def start(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)

    @property
    def previous(self) -> IsoWeek:
        return IsoWeek.of(self.start - timedelta(days=1))

    def __str__(self) -> str:
        return self.label


def persian_range(start: date, end: date) -> str:
    """'1405-08-25 – 1405-09-01 (25 Aban – 1 Azar 1405)': numeric and with month names."""
    import jdatetime

    a = jdatetime.date.fromgregorian(date=start)
    b = jdatetime.date.fromgregorian(date=end)
    months = jdatetime.date.j_months_en
    if a.year == b.year:
        named = f"{a.day} {months[a.month - 1]} – {b.day} {months[b.month - 1]} {b.year}"
    else:
        named = f"{a.day} {months[a.month - 1]} {a.year} – {b.day} {months[b.month - 1]} {b.year}"
    return (
        f"{a.year:04d}-{a.month:02d}-{a.day:02d} – {b.year:04d}-{b.month:02d}-{b.day:02d} ({named})"
    )


# ---------------------------------------------------------------- Markdown that web text cannot break

# Characters that start emphasis, code, links, table cells or strikethrough anywhere in a line.
# Line-start markers (`-`, `+`, `>`, `#`, `1.`) need no escape because web text never starts a line
# here: it always follows a bullet, a cell border or a label (the H1, where a trailing `#` would
# matter, escapes it itself).
_MD_PUNCT = re.compile(r"([\\`*\[\]|~])")
# An underscore between two letters or digits cannot open or close emphasis (CommonMark 6.2), so
# `in_progress` stays readable in the plain-text mail; any other underscore is escaped.
_LOOSE_UNDERSCORE = re.compile(r"_(?![^\W_])|(?<![^\W_])_")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_URL_UNSAFE = set(" ()<>\"\\`|^{}'")


def md_text(value: str | None) -> str:
    """Untrusted text as inert Markdown: one line, visible controls, escaped punctuation."""
    text = visible(one_line(value or ""))
    text = _MD_PUNCT.sub(r"\\\1", text)
    text = _LOOSE_UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub("&amp;", text)
    return text.replace("<", "&lt;")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL safe inside `(...)` of a Markdown link, or None for anything else."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    out = []
    for ch in url:
        if ch in _URL_UNSAFE or unicodedata.category(ch)[0] in "CZ":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return _ENTITY.sub("&amp;", "".join(out))


def md_link(text: str | None, url: str | None) -> str:
    label = md_text(text) or md_text(url) or "(untitled)"
    target = safe_url(url)
    return f"[{label}]({target})" if target else label


def md_code(identifier: str) -> str:
    """A slug, status or flag as a code span; anything unexpected falls back to escaped text."""
    if identifier and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in identifier):
        return f"`{identifier}`"
    return md_text(identifier)


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
        return ", ".join(parts)

    @property
    def subject(self) -> str:
        return f"Weekly report {self.week.label}: {self.summary}"

    @property
    def filename(self) -> str:
        return f"{self.week.label}.md"

    def markdown(self) -> str:
        return render(self)


# ---------------------------------------------------------------- queries

E = models.Evidence.__table__  # type: ignore[attr-defined]
H = models.StatusHistory.__table__  # type: ignore[attr-defined]
MENTION = models.Mention.__table__  # type: ignore[attr-defined]
COMMITMENT = models.Commitment.__table__  # type: ignore[attr-defined]


def naive_utc(value: object) -> datetime:
    """Naive UTC, whether the column type hands back naive or aware values (or text)."""
    result = readmodel.as_datetime(value)
    assert result is not None
    return result


def db_time(column: sa.ColumnElement[object], value: datetime) -> datetime:
    """A naive-UTC datetime as `column` accepts it: aware (UTC) when its type keeps time zones."""
    if getattr(column.type, "timezone", False):
        return value.replace(tzinfo=UTC)
    return value


def digests_until(session: Session, cutoff: datetime) -> dict[int, Digest]:
    """Like `store.digests`, over evidence published before `cutoff` only."""
    return readmodel.digests(readmodel.Reader.session(session), cutoff)


def statuses_until(session: Session, cutoff: datetime) -> dict[int, str]:
    """Each commitment's last recorded status before `cutoff` (history rows may be replayed out
    of id order, hence ordering by time first)."""
    rn = (
        sa.func.row_number()
        .over(partition_by=H.c.commitment_id, order_by=(H.c.at.desc(), H.c.id.desc()))
        .label("rn")
    )
    sub = (
        sa.select(H.c.commitment_id, H.c.new_status, rn)
        .where(H.c.at < db_time(H.c.at, cutoff))
        .subquery()
    )
    rows = session.connection().execute(
        sa.select(sub.c.commitment_id, sub.c.new_status).where(sub.c.rn == 1)
    )
    return {cid: status for cid, status in rows}


def _milestones(session: Session) -> dict[int, list[str]]:
    return readmodel.milestones(readmodel.Reader.session(session))


def _evidence_lines(
    session: Session, rows: Iterable[sa.Row[tuple[object, ...]]]
) -> list[EvidenceLine]:
    rows = list(rows)
    ids = [r.id for r in rows]
    extra: dict[int, list[str | None]] = {}
    for i in range(0, len(ids), 500):
        for ev_id, country in session.connection().execute(
            sa.select(MENTION.c.evidence_id, MENTION.c.country).where(
                MENTION.c.evidence_id.in_(ids[i : i + 500])
            )
        ):
            extra.setdefault(ev_id, []).append(country)
    result = []
    for r in rows:
        countries = {c.upper() for c in [r.country, *extra.get(r.id, [])] if c}
        result.append(
            EvidenceLine(
                id=r.id,
                slug=r.slug,
                published=naive_utc(r.published_at),
                source=r.source,
                publisher=r.publisher,
                country=r.country,
                title=r.title,
                url=r.url,
                stance=r.stance,
                review=r.review,
                countries=frozenset(countries),
                mentions=len(extra.get(r.id, [])),
            )
        )
    return result


_EVIDENCE_COLUMNS = (
    E.c.id,
    COMMITMENT.c.slug,
    E.c.published_at,
    E.c.source,
    E.c.publisher,
    E.c.country,
    E.c.title,
    E.c.url,
    E.c.stance,
    E.c.review,
)


def new_evidence(
    session: Session, start: datetime, cutoff: datetime, per_commitment: int = NEW_PER_COMMITMENT
) -> tuple[dict[str, list[EvidenceLine]], dict[str, int]]:
    """Evidence recorded in [start, cutoff): the newest few per commitment, and the counts."""
    conn = session.connection()
    in_week = sa.and_(
        E.c.created_at >= db_time(E.c.created_at, start),
        E.c.created_at < db_time(E.c.created_at, cutoff),
        E.c.review != "rejected",
    )
    counts = {
        slug: n
        for slug, n in conn.execute(
            sa.select(COMMITMENT.c.slug, sa.func.count())
            .select_from(E.join(COMMITMENT, COMMITMENT.c.id == E.c.commitment_id))
            .where(in_week)
            .group_by(COMMITMENT.c.slug)
        )
    }
    rn = (
        sa.func.row_number()
        .over(partition_by=E.c.commitment_id, order_by=(E.c.published_at.desc(), E.c.id.desc()))
        .label("rn")
    )
    sub = sa.select(E.c.id, rn).where(in_week).subquery()
    rows = conn.execute(
        sa.select(*_EVIDENCE_COLUMNS)
        .select_from(
            sub.join(E, E.c.id == sub.c.id).join(COMMITMENT, COMMITMENT.c.id == E.c.commitment_id)
        )
        .where(sub.c.rn <= per_commitment)
        .order_by(E.c.commitment_id, E.c.published_at.desc(), E.c.id.desc())
    )
    grouped: dict[str, list[EvidenceLine]] = {}
    for line in _evidence_lines(session, rows):
        grouped.setdefault(line.slug, []).append(line)
    return grouped, counts


def pending_until(
    session: Session, cutoff: datetime, limit: int = DEFAULT_PENDING_LIMIT
) -> tuple[list[EvidenceLine], int]:
    """Evidence published before `cutoff` and still waiting for review: the newest, and how many."""
    conn = session.connection()
    where = sa.and_(E.c.review == "pending", E.c.published_at < db_time(E.c.published_at, cutoff))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(E).where(where)).scalar_one())
    rows = conn.execute(
        sa.select(*_EVIDENCE_COLUMNS)
        .select_from(E.join(COMMITMENT, COMMITMENT.c.id == E.c.commitment_id))
        .where(where)
        .order_by(E.c.published_at.desc(), E.c.id.desc())
        .limit(limit)
    )
    return _evidence_lines(session, rows), total


def changes_between(session: Session, start: datetime, cutoff: datetime) -> list[ChangeLine]:
    """History rows of the week that moved a status (first records and no-op overrides left out)."""
    rows = session.connection().execute(
        sa.select(
            COMMITMENT.c.slug,
            H.c.at,
            H.c.old_status,
            H.c.new_status,
            H.c.kind,
            H.c.actor,
            H.c.reason,
        )
        .select_from(H.join(COMMITMENT, COMMITMENT.c.id == H.c.commitment_id))
        .where(H.c.at >= db_time(H.c.at, start), H.c.at < db_time(H.c.at, cutoff))
        .order_by(H.c.at, H.c.id)
    )
    return [
        ChangeLine(slug, naive_utc(at), old, new, kind, actor, reason or "")
        for slug, at, old, new, kind, actor, reason in rows
        if old is not None and old != new
    ]


def source_problems(
    session: Session, cutoff: datetime, configured: Iterable[str] | None = None
) -> list[SourceProblem]:
    """Sources failing (FAILURE_THRESHOLD failures in a row) or silent (no success for a week).

    Source health keeps no history, so a past week shows today's recorded health, limited to problems
    that had begun by the week's end.
    """
    from tracker.refresh import FAILURE_THRESHOLD

    names = set(configured) if configured is not None else None
    silent_before = cutoff - timedelta(days=SILENT_DAYS)
    result = []
    rows = session.connection().execute(
        sa.select(models.SourceHealth.__table__).order_by(models.SourceHealth.__table__.c.name)  # type: ignore[attr-defined]
    )
    for h in rows:
        if names is not None and h.name not in names:
            continue
        if h.last_state == "disabled" or h.last_attempt is None:
            continue
        failing_since = naive_utc(h.failing_since) if h.failing_since else None
        last_success = naive_utc(h.last_success) if h.last_success else None
        if h.consecutive_failures >= FAILURE_THRESHOLD:
            if failing_since is not None and failing_since >= cutoff:
                continue
            state = "failing"
        elif last_success is None or last_success < silent_before:
            if last_success is None and naive_utc(h.last_attempt) >= cutoff:
                continue
            state = "silent"
        else:
            continue
        result.append(
            SourceProblem(
                name=h.name,
                kind=h.kind or "",
                state=state,
                since=failing_since,
                failures=h.consecutive_failures,
                last_success=last_success,
                last_error=h.last_error,
            )
        )
    return result


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tracker")
    except Exception:  # running from a checkout that was never installed
        return "unknown"


def build(
    session: Session,
    week: IsoWeek,
    *,
    today: date,
    generated_at: datetime,
    quiet_days: int = DEFAULT_QUIET_DAYS,
    pending_limit: int = DEFAULT_PENDING_LIMIT,
    sources: Iterable[str] | None = None,
) -> WeeklyReport:
    """Gather one week's report. `sources`: names of the configured, enabled sources (None: all)."""
    if week.start > today:
        raise UsageError(f"week {week.label} has not started yet (today is {today.isoformat()})")
    as_of = min(week.end, today)
    start = datetime.combine(week.start, time())
    cutoff = datetime.combine(as_of + timedelta(days=1), time())

    pairs = list(
        session.exec(
            sa.select(models.Commitment, models.Agreement)  # type: ignore[call-overload]
            .join(models.Agreement, models.Agreement.id == models.Commitment.agreement_id)
            .order_by(models.Agreement.id, models.Commitment.position, models.Commitment.id)
        )
    )
    milestones = _milestones(session)
    now_digests = digests_until(session, cutoff)
    then_digests: dict[int, Digest] | None = None  # only needed where history does not reach back
    now_status = statuses_until(session, cutoff)
    then_status = statuses_until(session, start)
    previous_day = week.start - timedelta(days=1)

    lines: list[CommitmentLine] = []
    agreements: dict[int, AgreementLine] = {}
    for c, a in pairs:
        if c.announced_on > as_of:
            continue  # not promised yet at that time
        titles = milestones.get(c.id, [])
        verdict = evaluate(facts_of(c, titles), now_digests.get(c.id, Digest()), as_of)
        status = now_status.get(c.id) or verdict.status
        previous: str | None = None
        if c.announced_on <= previous_day:
            previous = then_status.get(c.id)
            if previous is None:
                if then_digests is None:
                    then_digests = digests_until(session, start)
                then = then_digests.get(c.id, Digest())
                previous = evaluate(facts_of(c, titles), then, previous_day).status
        flags = tuple(f for f in verdict.flags if not (f == "overdue" and status in FINISHED))
        lines.append(
            CommitmentLine(
                id=c.id,
                slug=c.slug,
                title=c.title,
                agreement_id=a.id,
                status=status,
                previous=previous,
                progress=verdict.progress,
                milestones=tuple(titles),
                last_evidence=now_digests.get(c.id, Digest()).last_evidence,
                flags=flags,
                announced_on=c.announced_on,
                explanation=verdict.explanation,
            )
        )
        agreements.setdefault(a.id, AgreementLine(a.id, a.slug, a.title, a.outlet, a.published_on))

    changes = changes_between(session, start, cutoff)
    changed = {ch.slug for ch in changes}
    for line in lines:
        # No history row in the week but a different status at each end: the change happened
        # before the database recorded history (e.g. a rebuilt past week); say so.
        if line.previous is not None and line.previous != line.status and line.slug not in changed:
            changes.append(
                ChangeLine(
                    line.slug,
                    None,
                    line.previous,
                    line.status,
                    "reconstructed",
                    "",
                    line.explanation,
                )
            )

    quiet = []
    for line in lines:
        if line.status in FINISHED:
            continue
        anchor = max(line.last_evidence or line.announced_on, line.announced_on)
        if line.status == "stalled" or (as_of - anchor).days > quiet_days:
            quiet.append(line)

    new, counts = new_evidence(session, start, cutoff)
    visible_slugs = {line.slug for line in lines}
    pending, pending_total = pending_until(session, cutoff, pending_limit)
    return WeeklyReport(
        week=week,
        as_of=as_of,
        generated_at=generated_at,
        agreements=list(agreements.values()),
        commitments=lines,
        changes=changes,
        new_evidence={s: v for s, v in new.items() if s in visible_slugs},
        new_counts={s: n for s, n in counts.items() if s in visible_slugs},
        pending=pending,
        pending_total=pending_total,
        quiet=quiet,
        sources=source_problems(session, cutoff, sources),
        quiet_days=quiet_days,
        version=_version(),
    )


# ---------------------------------------------------------------- rendering


def _status(status: str | None) -> str:
    if status is None:
        return "—"
    from tracker.status import SYMBOLS

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


def render(r: WeeklyReport) -> str:
    """The report as CommonMark + GFM tables. Deterministic apart from the 'Generated at' line."""
    out: list[str] = []
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

    add("## Commitments")
    add("")
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

    add("## Status changes this week")
    add("")
    if not r.changes:
        add("None.")
    for ch in r.changes:
        when = (
            f"{ch.at:%Y-%m-%d %H:%M} UTC"
            if ch.at
            else "during the week (reconstructed from evidence dates)"
        )
        who = f" ({md_text(ch.kind)} by {md_text(ch.actor)})" if ch.actor else ""
        add(
            f"- {when} {md_code(ch.slug)}: {_status(ch.old)} → {_status(ch.new)}{who}: "
            f"{md_text(ch.reason) or 'no reason recorded'}"
        )
    add("")

    add("## New evidence this week")
    add("")
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

    add("## Gone quiet")
    add("")
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

    add(f"## Waiting for review ({r.pending_total})")
    add("")
    if not r.pending_total:
        add("None.")
    for e in r.pending:
        add(_evidence_bullet(e, pending=True))
    if r.pending_total > len(r.pending):
        add(f"- … and {r.pending_total - len(r.pending)} more, newest first: run `tracker review`")
    add("")

    add("## Sources failing or silent")
    add("")
    if not r.sources:
        add("None.")
    for s in r.sources:
        kind = f" ({md_text(s.kind)})" if s.kind else ""
        if s.state == "failing":
            since = f" since {s.since:%Y-%m-%d %H:%M} UTC" if s.since else ""
            text = f"failing{since}, {_plural(s.failures, 'failure')} in a row"
        else:
            text = "silent, " + (
                f"last success {s.last_success:%Y-%m-%d %H:%M} UTC"
                if s.last_success
                else "never succeeded"
            )
        if s.last_error:
            text += f"; last error: {md_text(s.last_error)}"
        add(f"- {md_text(s.name)}{kind}: {text}")
    add("")
    add("---")
    add("")
    stamp = r.generated_at.replace(microsecond=0, tzinfo=None).isoformat()
    add(f"{GENERATED_PREFIX}{stamp}Z by tracker {r.version}._")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- writing


def _without_generated(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.startswith(GENERATED_PREFIX))


@dataclass(frozen=True)
class Written:
    path: Path
    reused: bool  # the existing file said the same apart from its "Generated at" line
    data: bytes  # the file's bytes as on disk


def write_report(text: str, out_dir: Path, filename: str) -> Written:
    """Write atomically (temp file + rename); keep an existing file that differs only in its
    'Generated at' line, so a re-run reuses (and re-sends) exactly the same file."""
    path = out_dir / filename
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            old = path.read_bytes()
            try:
                same = _without_generated(old.decode("utf-8")) == _without_generated(text)
            except UnicodeDecodeError:
                same = False
            if same:
                return Written(path, True, old)
        data = text.encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{filename}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return Written(path, False, data)


def configured_sources(path: str | Path | None) -> list[str] | None:
    """Names of enabled sources in the sources file, or None (all) when none can be read by default."""
    from tracker.sources import default_path, load_sources

    if path is None and default_path() is None:
        try:
            spec = load_sources(None)
        except Exception:  # the built-in list failing to load must not stop the report
            return None
    else:
        spec = load_sources(path)
    return [s.name for s in spec.sources if s.enabled]


@dataclass(frozen=True)
class Produced:
    report: WeeklyReport
    written: Written


def produce(
    db: Database,
    *,
    week: IsoWeek | None,
    out_dir: Path,
    today: date,
    now: datetime,
    quiet_days: int = DEFAULT_QUIET_DAYS,
    sources: str | Path | None = None,
) -> Produced:
    """Build and write one week's report (the last complete week by default)."""
    chosen = week or IsoWeek.last_complete(today)
    names = configured_sources(sources)
    with db.read() as session:
        report = build(
            session, chosen, today=today, generated_at=now, quiet_days=quiet_days, sources=names
        )
    return Produced(report, write_report(report.markdown(), out_dir, report.filename))
