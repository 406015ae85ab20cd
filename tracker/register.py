"""What people do to the register: open it, read where things stand, add evidence, review it,
override a status, load a catalog. Each function is one use case over the store, with its checks;
the CLI only parses arguments and prints what these return.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tracker.dates import utcnow
from tracker.errors import UsageError
from tracker.settings import Settings
from tracker.store import (
    Card,
    Change,
    Conn,
    Database,
    EvidenceRecord,
    NewEvidence,
    ReviewOutcome,
    Row,
    open_database,
    reads,
    resolve_url,
    writes,
)
from tracker.text import clean_stored
from tracker.urls import canonical_url, check_url
from tracker.vocab import Review, parse_stance, parse_status

if TYPE_CHECKING:
    from tracker.review import Cluster
    from tracker.sources import SourcesFile
    from tracker.store.clusters import Decided, Done

__all__ = [
    "Card",
    "add_evidence",
    "card",
    "load_catalog",
    "open_store",
    "pending",
    "review",
    "set_status",
    "status_rows",
]


def open_store(settings: Settings) -> Database:
    """Open the database, creating it and seeding it from the catalog on first use (the built-in
    one, or TRACKER_CATALOG's)."""

    def seed(conn: Conn) -> None:
        from tracker import catalog
        from tracker.matching import normalize_title_key

        today = settings.real_today()
        specs = (
            catalog.read_catalog(settings.catalog, today)
            if settings.catalog
            else catalog.builtin_catalog(today)
        )
        now = utcnow()
        writes.load_catalog(conn, specs, now, normalize_title_key)
        writes.sync_statuses(conn, settings.today(), "catalog", now)

    return open_database(
        resolve_url(settings.db), seed=seed, busy_timeout_ms=settings.busy_timeout_ms
    )


def first_use_line(db: Database, settings: Settings) -> str | None:
    """What to say when this command created the database, so a cron job or a person in the
    wrong folder notices: 'created ./commitments.db with 8 commitments from the built-in catalog'."""
    if not db.created:
        return None
    with db.read() as conn:
        count = len(reads.commitment_slugs(conn))
    source = f"the catalog {settings.catalog}" if settings.catalog else "the built-in catalog"
    noun = "commitment" if count == 1 else "commitments"
    return f"created {db.display} with {count} {noun} from {source}"


# ---------------------------------------------------------------- reading


def status_rows(
    db: Database, today: date, *, agreement: str | None = None, status: str | None = None
) -> tuple[list[Row], int]:
    """Every commitment's row for `today` (filtered), and how much waits for review overall."""
    if status is not None:
        parse_status(status)
    with db.read() as conn:
        found = reads.rows(conn, today, agreement=agreement, status=status)
        return found, reads.pending_count(conn, until=reads.end_of(today))


def card(db: Database, today: date, slug: str, limit: int) -> Card:
    until = reads.end_of(today)  # a replayed day shows only its own past
    with db.read() as conn:
        commitment = reads.find_commitment(conn, slug)
        row = reads.row(conn, today, slug)
        evidence = reads.evidence_of(conn, commitment.id, limit, until)
        total = (
            reads.count_evidence(conn, commitment.id, until)
            if len(evidence) == limit
            else len(evidence)
        )
        mentions = reads.mentions_of(conn, [e.id for e in evidence])
        return Card(row, reads.history(conn, commitment.id, until), evidence, total, mentions)


def pending(db: Database, slug: str | None, limit: int) -> tuple[list[EvidenceRecord], int]:
    """Evidence waiting for review (newest first, at most `limit`) and how many in all."""
    with db.read() as conn:
        cid = reads.find_commitment(conn, slug).id if slug is not None else None
        items = reads.pending(conn, cid, limit)
        total = reads.pending_count(conn, cid) if len(items) == limit else len(items)
        return items, total


# ---------------------------------------------------------------- changing


def add_evidence(
    db: Database,
    settings: Settings,
    slug: str,
    *,
    url: str,
    title: str,
    on: date,
    stance: str = "progress",
    milestone: int | None = None,
    note: str | None = None,
    cancels: bool = False,
) -> tuple[int, list[Change]]:
    """Evidence recorded by a person: confirmed at once."""
    from tracker.matching import normalize_title_key

    today = settings.today()
    who = settings.actor()
    now = utcnow()
    with db.write() as conn:
        commitment = reads.find_commitment(conn, slug)
        try:
            check_url(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        parse_stance(stance)
        writes.check_milestone(conn, commitment.id, slug, milestone)
        if not title.strip():
            raise UsageError("title must not be empty")
        if on > today:
            raise UsageError(f"--date {on.isoformat()} is in the future")
        return writes.add_evidence(
            conn,
            NewEvidence(
                commitment_id=commitment.id,
                url=url,
                canonical_url=canonical_url(url),
                title=clean_stored(title.strip(), 1000),
                title_key=normalize_title_key(title),
                published_at=datetime.combine(on, time(12)),
                source="manual",
                stance=stance,
                milestone=milestone,
                review=Review.CONFIRMED,
                reviewed_by=who,
                reviewed_at=now,
                note=note,
                cancels=cancels,
                created_at=now,
            ),
            slug=slug,
            today=today,
            now=now,
        )


def review(
    db: Database,
    settings: Settings,
    evidence_id: int,
    decision: str,
    *,
    milestone: int | None = None,
    stance: str | None = None,
    reason: str | None = None,
) -> ReviewOutcome:
    """Confirm or reject one evidence item; rejected items stay as tombstones. A confirm without
    a milestone or stance takes what the matcher suggested for the item."""
    if stance is not None:
        parse_stance(stance)
    with db.write() as conn:
        if decision == Review.CONFIRMED and milestone is None and stance is None:
            found = reads.get_evidence(conn, evidence_id)
            if found.review == Review.PENDING:
                milestone, stance = found.suggested_milestone, found.suggested_stance
        return writes.review(
            conn,
            evidence_id,
            decision,
            milestone=milestone,
            stance=stance,
            reason=reason,
            by=settings.actor(),
            today=settings.today(),
            now=utcnow(),
        )


def set_status(
    db: Database, settings: Settings, slug: str, status: str | None, *, reason: str | None
) -> tuple[str, str]:
    """Override a commitment's status with a reason, or clear the override (status None)."""
    if status is not None:
        parse_status(status)
    with db.write() as conn:
        return writes.set_status(
            conn,
            slug,
            status,
            reason=reason,
            by=settings.actor(),
            today=settings.today(),
            now=utcnow(),
        )


def learn_from_reviews(db: Database) -> str | None:
    """Retrain the re-ranking model on every review so far (its own transaction: a training that
    fails never costs a review). One line for the person when a model was learned or training
    failed; None while there are too few reviews to learn from."""
    from tracker import learn

    try:
        with db.write() as conn:
            result = learn.retrain(conn)
    except Exception as exc:  # the review is recorded; only the learning is lost
        return f"not learning this time: {type(exc).__name__}: {exc}"
    return result.note if result.saved else None


def has_override(db: Database, slug: str) -> bool:
    with db.read() as conn:
        return reads.find_commitment(conn, slug).override_status is not None


def load_catalog(db: Database, settings: Settings, path: Path) -> writes.CatalogLoad:
    """Add or update another team's agreements; validated before the database is touched."""
    from tracker import catalog
    from tracker.matching import normalize_title_key

    specs = catalog.read_catalog(path, settings.real_today())
    with db.write() as conn:
        now = utcnow()
        result = writes.load_catalog(conn, specs, now, normalize_title_key)
        writes.sync_statuses(conn, settings.today(), "catalog", now)
    return result


# ---------------------------------------------------------------- export


def export_json(db: Database, today: date) -> str:
    from tracker.outputs import export

    with db.read() as conn:
        data = export.ExportData(
            today=today,
            generated_at=utcnow(),
            agreements=reads.agreements(conn),
            rows=reads.rows(conn, today),
            evidence=reads.all_evidence(conn, reads.end_of(today)),
            mentions=reads.mentions_of(conn),
            reviews=reads.review_events(conn),
            history=reads.all_history(conn, reads.end_of(today)),
        )
    return export.to_json(data)


def export_csv(db: Database, today: date) -> str:
    from tracker.outputs import export

    with db.read() as conn:
        return export.to_csv(
            reads.rows(conn, today), reads.evidence_for_csv(conn, reads.end_of(today))
        )


def checked_sources(db: Database, spec: SourcesFile) -> SourcesFile:
    """The sources file (or the built-in one), already read, checked against the register as it
    is: every commitment it names exists and every milestone it names is one of that
    commitment's."""
    from tracker.sources import check_against

    with db.read() as conn:
        by_commitment = reads.milestones(conn)
        counts = {c.slug: len(by_commitment.get(c.id, [])) for c in reads.commitments(conn)}
    check_against(spec, counts)
    return spec


def source_rows(db: Database, spec: SourcesFile) -> list[dict[str, Any]]:
    """The configured sources joined with their recorded health (`tracker sources`)."""
    from tracker.refresh import source_table

    with db.read() as conn:
        return source_table(spec, reads.health(conn))


# ---------------------------------------------------------------- reviewing at speed


class ReviewQueue(msgspec.Struct, frozen=True):
    """What the review loop works through: the pending evidence as story clusters, newest
    first, and each commitment's milestone titles (by commitment id)."""

    clusters: list[Cluster]
    milestones: dict[int, list[str]]
    waiting: int = 0  # pending rows in all (more than the queue holds when it was cut)

    @property
    def evidence(self) -> int:
        return sum(len(c.rows) for c in self.clusters)


REVIEW_QUEUE_LIMIT = 2000  # evidence rows a review session loads (the newest)


def review_queue(db: Database, slug: str | None, limit: int = REVIEW_QUEUE_LIMIT) -> ReviewQueue:
    """What waits for review (of one commitment, when given) as story clusters: the newest
    `limit` rows, and how many rows wait in all."""
    from tracker.review import group_stories
    from tracker.store import clusters

    with db.read() as conn:
        cid = reads.find_commitment(conn, slug).id if slug is not None else None
        found = clusters.pending_evidence(conn, cid, limit)
        waiting = reads.pending_count(conn, cid) if len(found) == limit else len(found)
        links = clusters.mention_links(conn, found)
        mentions = reads.mentions_of(conn, [e.id for e in found])
        titles = reads.milestones(conn)
    return ReviewQueue(group_stories(found, links, mentions), titles, waiting)


class ReviewDesk:
    """The register as the review loop's `Desk`: each decision, undo and look is one short
    transaction of its own, so a crash loses nothing that was decided."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def decide(
        self,
        evidence_ids: list[int],
        decision: str,
        *,
        milestone: int | None,
        stance: str | None,
        reason: str | None,
    ) -> Decided:
        return self.decide_each(
            [(ev_id, milestone, stance) for ev_id in evidence_ids], decision, reason=reason
        )

    def decide_each(
        self,
        picks: Sequence[tuple[int, int | None, str | None]],
        decision: str,
        *,
        reason: str | None,
    ) -> Decided:
        """Decide `picks` (id, milestone, stance) in one transaction."""
        from tracker.errors import EnvironmentProblem
        from tracker.store import clusters

        for _, _, stance in picks:
            if stance is not None:
                parse_stance(stance)
        for attempt in (1, 2):
            try:
                with self.db.write() as conn:
                    return clusters.decide_each(
                        conn,
                        picks,
                        decision,
                        reason=reason,
                        by=self.settings.actor(),
                        today=self.settings.today(),
                        now=utcnow(),
                    )
            except EnvironmentProblem:
                # Two decisions collided on PostgreSQL: the second one looks again, and now
                # finds the rows the other decided.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def undo(self, done: Sequence[Done]) -> list[Change]:
        from tracker.store import clusters

        with self.db.write() as conn:
            _, changes = clusters.back_to_pending(
                conn,
                list(done),
                by=self.settings.actor(),
                today=self.settings.today(),
                now=utcnow(),
            )
        return changes

    def states(self, evidence_ids: list[int]) -> dict[int, tuple[str, str | None, int]]:
        from tracker.store import clusters

        with self.db.read() as conn:
            return clusters.review_states(conn, evidence_ids)


def batch_select(
    db: Database,
    *,
    slug: str | None = None,
    source: str | None = None,
    since: date | None = None,
    match: str | None = None,
) -> list[EvidenceRecord]:
    """The pending evidence a batch decision would decide (`review confirm|reject --all`)."""
    from tracker.store import clusters

    if match is not None and not match.strip():
        raise UsageError("--match must not be empty")
    with db.read() as conn:
        cid = reads.find_commitment(conn, slug).id if slug is not None else None
        if source is not None:
            clusters.check_source(conn, source)
        return clusters.select_pending(
            conn, commitment_id=cid, source=source, since=since, match=match
        )


class BatchResult(msgspec.Struct, frozen=True):
    decided: int
    already: list[tuple[int, str, str | None]]  # (evidence id, its state, by whom)
    changes: list[Change]


BATCH_ROWS = 200  # items a batch decision writes per transaction


def batch_decide(
    db: Database,
    settings: Settings,
    items: Sequence[EvidenceRecord],
    decision: str,
    *,
    reason: str | None = None,
) -> BatchResult:
    """Decide the items in transactions of BATCH_ROWS (a confirm takes each item's own
    suggestion), the statuses brought up to date once per transaction; an item someone else
    decided meanwhile is counted apart, not overwritten. The caller retrains the matcher once
    at the end (`learn_from_reviews`)."""
    desk = ReviewDesk(db, settings)
    decided = 0
    already: list[tuple[int, str, str | None]] = []
    changes: list[Change] = []
    confirm = decision == Review.CONFIRMED
    for start in range(0, len(items), BATCH_ROWS):
        picks = [
            (e.id, e.suggested_milestone, e.suggested_stance) if confirm else (e.id, None, None)
            for e in items[start : start + BATCH_ROWS]
        ]
        result = desk.decide_each(picks, decision, reason=reason)
        decided += len(result.done)
        already += [(a.evidence_id, a.review, a.by) for a in result.already]
        changes += result.changes
    return BatchResult(decided, already, changes)


class Timeline(msgspec.Struct, frozen=True):
    """`show --timeline`: the commitment as the views show it, and every evidence row's
    (published, review, stance), oldest first."""

    row: Row
    points: list[tuple[datetime, str, str]]


def timeline(db: Database, today: date, slug: str) -> Timeline:
    from tracker.store import clusters

    with db.read() as conn:
        commitment = reads.find_commitment(conn, slug)
        return Timeline(
            reads.row(conn, today, slug),
            clusters.evidence_dates(conn, commitment.id, reads.end_of(today)),
        )
