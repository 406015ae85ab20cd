"""The weekly report: gather where every commitment stood at the end of one ISO week, and what
happened in it; then write it (`tracker.outputs.weekly` renders it).

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
  unchanged report is not rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from pathlib import Path

from tracker.errors import UsageError
from tracker.outputs.files import Written, write_unless_same
from tracker.outputs.weekly import (
    GENERATED_PREFIX,
    AgreementLine,
    ChangeLine,
    CommitmentLine,
    EvidenceLine,
    SourceProblem,
    WeeklyReport,
)
from tracker.status import Digest, evaluate
from tracker.store import Conn, Database, EvidenceRecord, HealthRecord, clusters, reads
from tracker.store.reads import facts_of
from tracker.weeks import IsoWeek, utc_midnight

__all__ = ["DEFAULT_QUIET_DAYS", "Produced", "build", "produce"]

DEFAULT_QUIET_DAYS = 60
DEFAULT_PENDING_LIMIT = 50
NEW_PER_COMMITMENT = 20  # evidence lines listed per commitment; the rest are counted
SILENT_DAYS = 7
FINISHED = ("delivered", "broken")


def _lines(conn: Conn, rows: Sequence[EvidenceRecord]) -> list[EvidenceLine]:
    mentions = reads.mentions_of(conn, [r.id for r in rows])
    result = []
    for r in rows:
        others = mentions.get(r.id, [])
        countries = {c.upper() for c in [r.country, *(m.country for m in others)] if c}
        result.append(
            EvidenceLine(
                id=r.id,
                slug=r.commitment_slug,
                published=r.published_at,
                source=r.source,
                publisher=r.publisher,
                country=r.country,
                title=r.title,
                url=r.url,
                stance=r.stance,
                review=r.review,
                countries=frozenset(countries),
                mentions=len(others),
                milestone=r.milestone,
            )
        )
    return result


def changes_between(conn: Conn, start: datetime, cutoff: datetime) -> list[ChangeLine]:
    """History rows of the week that moved a status (first records and no-op overrides left out)."""
    return [
        ChangeLine(slug, h.at, h.old_status, h.new_status, h.kind, h.actor, h.reason)
        for h, slug, _title in reads.history_between(conn, start, cutoff)
        if h.old_status is not None and h.old_status != h.new_status
    ]


def source_problems(
    health: Mapping[str, HealthRecord],
    cutoff: datetime,
    configured: Iterable[str] | None = None,
) -> list[SourceProblem]:
    """Sources failing (their last attempt failed) or silent (no success for a week).

    Source health keeps no history, so a past week shows today's recorded health, limited to
    problems that had begun by the week's end.
    """
    names = set(configured) if configured is not None else None
    silent_before = cutoff - timedelta(days=SILENT_DAYS)
    result = []
    for h in sorted(health.values(), key=lambda h: h.name):
        if names is not None and h.name not in names:
            continue
        if h.last_state == "disabled" or h.last_attempt is None:
            continue
        if h.consecutive_failures:
            # Failing from its first failure on: a source that just failed is not "silent".
            if h.failing_since is not None and h.failing_since >= cutoff:
                continue
            state = "failing"
        elif h.last_success is None or h.last_success < silent_before:
            if h.last_success is None and h.last_attempt >= cutoff:
                continue
            state = "silent"
        else:
            continue
        result.append(
            SourceProblem(
                name=h.name,
                kind=h.kind or "",
                state=state,
                since=h.failing_since,
                failures=h.consecutive_failures,
                last_success=h.last_success,
                last_error=h.last_error,
            )
        )
    return result


@cache  # reading the installed metadata takes milliseconds; a site build asks once per week
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tracker")
    except Exception:  # running from a checkout that was never installed
        return "unknown"


def _commitment_lines(
    conn: Conn, week: IsoWeek, as_of: date, start: datetime, cutoff: datetime
) -> tuple[list[CommitmentLine], list[AgreementLine]]:
    """Each commitment announced by `as_of`: its status at the week's end and the week before."""
    agreements = {a.id: a for a in reads.agreements(conn)}
    milestones = reads.milestones(conn)
    now_digests = reads.digests(conn, cutoff)
    then_digests: dict[int, Digest] | None = None  # only needed where history does not reach back
    now_status = reads.statuses_until(conn, cutoff)
    then_status = reads.statuses_until(conn, start)
    # Where the history moved during the week, its first row says what the status was before:
    # the change column then agrees with "Status changes this week".
    first_in_week: dict[int, str] = {}
    for h, _slug, _title in reads.history_between(conn, start, cutoff):
        first_in_week.setdefault(h.commitment_id, h.old_status or h.new_status)
    previous_day = week.start - timedelta(days=1)
    lines: list[CommitmentLine] = []
    shown: dict[int, AgreementLine] = {}
    for c in reads.commitments(conn):
        if c.announced_on > as_of:
            continue  # not promised yet at that time
        titles = milestones.get(c.id, [])
        verdict = evaluate(facts_of(c, titles), now_digests.get(c.id, Digest()), as_of)
        status = now_status.get(c.id) or verdict.status
        previous: str | None = None
        if c.announced_on <= previous_day:
            previous = then_status.get(c.id) or first_in_week.get(c.id)
            if previous is None:
                if then_digests is None:
                    then_digests = reads.digests(conn, start)
                then = then_digests.get(c.id, Digest())
                previous = evaluate(facts_of(c, titles), then, previous_day).status
        flags = tuple(f for f in verdict.flags if not (f == "overdue" and status in FINISHED))
        lines.append(
            CommitmentLine(
                id=c.id,
                slug=c.slug,
                title=c.title,
                agreement_id=c.agreement_id,
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
        a = agreements[c.agreement_id]
        shown.setdefault(a.id, AgreementLine(a.id, a.slug, a.title, a.outlet, a.published_on))
    return lines, list(shown.values())


def build(
    conn: Conn,
    week: IsoWeek,
    *,
    today: date,
    generated_at: datetime,
    quiet_days: int = DEFAULT_QUIET_DAYS,
    pending_limit: int = DEFAULT_PENDING_LIMIT,
    sources: Iterable[str] | None = None,
    zone: tzinfo | None = None,
) -> WeeklyReport:
    """Gather one week's report. `sources`: names of the configured, enabled sources (None: all).
    `zone`: where the week's days begin and end (None: UTC); what was recorded between the zone's
    Monday 00:00 and the next Monday's is that week's, so no evidence falls between two reports."""
    if week.start > today:
        raise UsageError(f"week {week.label} has not started yet (today is {today.isoformat()})")
    as_of = min(week.end, today)
    start, cutoff = week.utc_bounds(zone or UTC)
    if as_of < week.end:  # a week in progress ends with today
        cutoff = utc_midnight(as_of + timedelta(days=1), zone or UTC)
    lines, agreements = _commitment_lines(conn, week, as_of, start, cutoff)

    changes = changes_between(conn, start, cutoff)
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

    recorded, counts = reads.recorded_between(conn, start, cutoff, NEW_PER_COMMITMENT)
    new: dict[str, list[EvidenceLine]] = {}
    for evidence_line in _lines(conn, recorded):
        new.setdefault(evidence_line.slug, []).append(evidence_line)
    visible_slugs = {line.slug for line in lines}
    waiting, pending_total = reads.pending_until(conn, cutoff, pending_limit)
    auto, auto_total = clusters.auto_confirmed_between(conn, start, cutoff, pending_limit)
    return WeeklyReport(
        week=week,
        as_of=as_of,
        generated_at=generated_at,
        agreements=agreements,
        commitments=lines,
        changes=changes,
        new_evidence={s: v for s, v in new.items() if s in visible_slugs},
        new_counts={s: n for s, n in counts.items() if s in visible_slugs},
        pending=_lines(conn, waiting),
        pending_total=pending_total,
        quiet=quiet,
        sources=source_problems(reads.health(conn), cutoff, sources),
        quiet_days=quiet_days,
        version=_version(),
        auto_confirmed=_lines(conn, auto),
        auto_total=auto_total,
    )


def configured_sources(path: str | Path | None) -> list[str] | None:
    """Names of the enabled sources in the sources file; None (every source with recorded
    health) when no file is given, so a report never hides a failing source of another list."""
    from tracker.sources import load_sources

    if path is None:
        return None
    return [s.name for s in load_sources(path).sources if s.enabled]


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
    zone: tzinfo | None = None,
) -> Produced:
    """Build and write one week's report (the last complete week by default)."""
    chosen = week or IsoWeek.last_complete(today)
    names = configured_sources(sources)
    with db.read() as conn:
        report = build(
            conn,
            chosen,
            today=today,
            generated_at=now,
            quiet_days=quiet_days,
            sources=names,
            zone=zone,
        )
    written = write_unless_same(out_dir / report.filename, report.markdown(), GENERATED_PREFIX)
    return Produced(report, written)
