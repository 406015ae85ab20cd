"""Everything that reads or changes the register: commitments, evidence, reviews, overrides, history.

Functions take a session and return plain values; the CLI formats them. Aggregates for the views are
computed in SQL (see `digests`), so the status view costs the same at a thousand or a million rows.
"""

from __future__ import annotations

import difflib
import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

import sqlalchemy as sa
from sqlmodel import Session, select

from tracker import models, readmodel
from tracker.db import Database, open_database
from tracker.errors import EnvironmentProblem, UsageError
from tracker.readmodel import Row, facts_of, override_of  # noqa: F401  (used by views and reports)
from tracker.status import Digest
from tracker.text import clean_stored
from tracker.urls import canonical_url, check_url


def actor() -> str:
    """Who is acting: TRACKER_USER, else the login name."""
    name = os.environ.get("TRACKER_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _seed(session: Session) -> None:
    from tracker import catalog

    chosen = os.environ.get("TRACKER_CATALOG")
    specs = catalog.read_catalog(chosen) if chosen else catalog.builtin_catalog()
    catalog.load_into(session, specs)
    session.flush()
    sync_statuses(session, today=_today(), by="catalog")


def _today() -> date:
    from tracker.dates import today

    return today()


def open_store(db: str | None = None) -> Database:
    """Open the database, creating and seeding it from the built-in catalog on first use."""
    return open_database(db, seed=_seed)


# ---------------------------------------------------------------- commitments and verdicts


def find_commitment(session: Session, slug: str) -> models.Commitment:
    row = session.exec(select(models.Commitment).where(models.Commitment.slug == slug)).first()
    if row is None:
        slugs = list(session.exec(select(models.Commitment.slug)))
        near = difflib.get_close_matches(slug, slugs, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"unknown commitment '{slug}'{hint}")
    return row


def digests(session: Session, until: datetime | None = None) -> dict[int, Digest]:
    return readmodel.digests(readmodel.Reader.session(session), until)


def rows(
    session: Session,
    today: date,
    *,
    slugs: Iterable[str] | None = None,
    agreement: str | None = None,
    status: str | None = None,
) -> list[Row]:
    reader = readmodel.Reader.session(session)
    if agreement is not None:
        check_agreement(readmodel.agreement_slugs(reader), agreement)
    return readmodel.rows(reader, today, slugs=slugs, agreement=agreement, status=status)


def check_agreement(known: list[str], agreement: str) -> None:
    if agreement not in known:
        near = difflib.get_close_matches(agreement, known, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"unknown agreement '{agreement}'{hint}")


def check_status_name(value: str) -> str:
    if value not in models.STATUSES:
        near = difflib.get_close_matches(value, models.STATUSES, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"unknown status '{value}' (one of {', '.join(models.STATUSES)}){hint}")
    return value


# ---------------------------------------------------------------- history


@dataclass(frozen=True)
class Change:
    slug: str
    old: str | None
    new: str
    reason: str


def last_statuses(session: Session) -> dict[int, str]:
    stmt = sa.text(
        "SELECT h.commitment_id, h.new_status FROM status_history h JOIN ("
        " SELECT commitment_id, MAX(id) AS id FROM status_history GROUP BY commitment_id"
        ") last ON last.id = h.id"
    )
    return {cid: st for cid, st in session.connection().execute(stmt)}


def sync_statuses(session: Session, today: date, by: str = "engine") -> list[Change]:
    """Append a history row for every commitment whose status differs from its last recorded one."""
    previous = last_statuses(session)
    now = datetime.combine(today, time()) if by == "replay" else _now()
    changes = []
    for row in rows(session, today):
        cid = row.commitment.id
        old = previous.get(cid)  # type: ignore[arg-type]
        if old == row.verdict.status:
            continue
        session.add(
            models.StatusHistory(
                commitment_id=cid,  # type: ignore[arg-type]
                at=now,
                old_status=old,
                new_status=row.verdict.status,
                kind="computed",
                actor=by,
                reason=row.verdict.explanation,
            )
        )
        changes.append(
            Change(row.commitment.slug, old, row.verdict.status, row.verdict.explanation)
        )
    session.flush()
    return changes


def _now() -> datetime:
    from tracker.dates import utcnow

    return utcnow()


def history(session: Session, commitment_id: int) -> list[models.StatusHistory]:
    return list(
        session.exec(
            select(models.StatusHistory)
            .where(models.StatusHistory.commitment_id == commitment_id)
            .order_by(models.StatusHistory.id)  # type: ignore[arg-type]
        )
    )


# ---------------------------------------------------------------- evidence


def evidence_of(
    session: Session, commitment_id: int, limit: int | None = None
) -> list[models.Evidence]:
    query = (
        select(models.Evidence)
        .where(models.Evidence.commitment_id == commitment_id)
        .order_by(models.Evidence.published_at.desc(), models.Evidence.id.desc())  # type: ignore[attr-defined]
    )
    return list(session.exec(query.limit(limit) if limit is not None else query))


def count_evidence(session: Session, commitment_id: int) -> int:
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(models.Evidence)
            .where(models.Evidence.commitment_id == commitment_id)
        ).one()
    )


def check_stance(value: str) -> str:
    if value not in models.STANCES:
        raise UsageError(f"unknown stance '{value}' (one of {', '.join(models.STANCES)})")
    return value


def _check_milestone(
    session: Session, commitment: models.Commitment, milestone: int | None
) -> None:
    if milestone is None:
        return
    total = len(
        list(
            session.exec(
                select(models.Milestone.id).where(models.Milestone.commitment_id == commitment.id)
            )
        )
    )
    if not 1 <= milestone <= total:
        raise UsageError(
            f"milestone must be between 1 and {total} for '{commitment.slug}', got {milestone}"
        )


def add_evidence(
    session: Session,
    slug: str,
    *,
    url: str,
    title: str,
    on: date,
    stance: str = "progress",
    milestone: int | None = None,
    note: str | None = None,
    cancels: bool = False,
    by: str | None = None,
    today: date,
) -> tuple[models.Evidence, list[Change]]:
    """Evidence recorded by a person: confirmed at once."""
    commitment = find_commitment(session, slug)
    try:
        check_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    check_stance(stance)
    _check_milestone(session, commitment, milestone)
    if not title.strip():
        raise UsageError("title must not be empty")
    if on > today:
        raise UsageError(f"--date {on.isoformat()} is in the future")
    key = canonical_url(url)
    clash = session.exec(
        select(models.Evidence).where(
            models.Evidence.commitment_id == commitment.id, models.Evidence.canonical_url == key
        )
    ).first()
    if clash is not None:
        raise UsageError(
            f"evidence #{clash.id} already records this URL for '{slug}' "
            f"({clash.review}); use 'tracker review confirm {clash.id}' to change it"
        )
    from tracker.matching import normalize_title_key

    who = by or actor()
    now = _now()
    row = models.Evidence(
        commitment_id=commitment.id,  # type: ignore[arg-type]
        url=url,
        canonical_url=key,
        title=clean_stored(title.strip(), 1000),
        title_key=normalize_title_key(title),
        published_at=datetime.combine(on, time(12)),
        source="manual",
        stance=stance,
        milestone=milestone,
        review="confirmed",
        reviewed_by=who,
        reviewed_at=now,
        note=clean_stored(note, 5000) if note else None,
        cancels=cancels,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, sync_statuses(session, today, by=who)


def pending(
    session: Session, slug: str | None = None, limit: int | None = None
) -> list[tuple[models.Evidence, str]]:
    query = (
        select(models.Evidence, models.Commitment.slug)
        .join(models.Commitment, models.Commitment.id == models.Evidence.commitment_id)
        .where(models.Evidence.review == "pending")
        .order_by(models.Evidence.published_at.desc(), models.Evidence.id.desc())  # type: ignore[attr-defined]
    )
    if slug is not None:
        commitment = find_commitment(session, slug)
        query = query.where(models.Evidence.commitment_id == commitment.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def count_pending(session: Session, slug: str | None = None) -> int:
    if slug is None:
        return readmodel.pending_count(readmodel.Reader.session(session))
    commitment = find_commitment(session, slug)
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(models.Evidence)
            .where(
                models.Evidence.review == "pending", models.Evidence.commitment_id == commitment.id
            )
        ).one()
    )


def get_evidence(session: Session, evidence_id: int) -> models.Evidence:
    row = session.get(models.Evidence, evidence_id)
    if row is None:
        raise UsageError(
            f"no evidence with id {evidence_id} (see 'tracker review' for pending ones)"
        )
    return row


@dataclass(frozen=True)
class ReviewOutcome:
    evidence: models.Evidence
    previous: str
    previous_by: str | None
    changes: list[Change]

    @property
    def note(self) -> str | None:
        """Tells the person when someone else had already reviewed this evidence."""
        if self.previous == "pending":
            return None
        who = f" by {self.previous_by}" if self.previous_by else ""
        return f"evidence #{self.evidence.id} had already been {self.previous}{who}"


def review(
    session: Session,
    evidence_id: int,
    decision: str,
    *,
    milestone: int | None = None,
    stance: str | None = None,
    reason: str | None = None,
    by: str | None = None,
    today: date,
) -> ReviewOutcome:
    """Confirm or reject one evidence item. Rejected items stay as tombstones."""
    if decision not in ("confirmed", "rejected"):
        raise UsageError(f"unknown decision {decision!r}")
    row = get_evidence(session, evidence_id)
    commitment = session.get(models.Commitment, row.commitment_id)
    assert commitment is not None
    if stance is not None:
        check_stance(stance)
    _check_milestone(session, commitment, milestone)
    who = by or actor()
    previous, previous_by, revision = row.review, row.reviewed_by, row.revision
    values: dict[str, object] = {
        "review": decision,
        "reviewed_by": who,
        "reviewed_at": _now(),
        "revision": revision + 1,
        "review_reason": clean_stored(reason, 2000) if reason else None,
    }
    if milestone is not None:
        values["milestone"] = milestone
    if stance is not None:
        values["stance"] = stance
    # Compare-and-set on the revision: a concurrent reviewer's change is never silently lost.
    result = session.connection().execute(
        sa.update(models.Evidence.__table__)  # type: ignore[attr-defined]
        .where(models.Evidence.__table__.c.id == evidence_id)  # type: ignore[attr-defined]
        .where(models.Evidence.__table__.c.revision == revision)  # type: ignore[attr-defined]
        .values(**values)
    )
    if result.rowcount != 1:
        raise EnvironmentProblem(
            f"evidence #{evidence_id} was changed by someone else meanwhile; look again and retry"
        )
    session.add(
        models.ReviewEvent(
            evidence_id=evidence_id,
            at=values["reviewed_at"],  # type: ignore[arg-type]
            actor=who,
            previous=previous,
            decision=decision,
            milestone=milestone,
            stance=stance,
            reason=values["review_reason"],  # type: ignore[arg-type]
        )
    )
    session.expire(row)
    session.refresh(row)
    return ReviewOutcome(row, previous, previous_by, sync_statuses(session, today, by=who))


def set_status(
    session: Session,
    slug: str,
    status: str | None,
    *,
    reason: str | None,
    by: str | None = None,
    today: date,
) -> tuple[str | None, str]:
    """Override a commitment's status with a reason, or clear the override (status None)."""
    commitment = find_commitment(session, slug)
    who = by or actor()
    if status is not None:
        check_status_name(status)
        if not reason or not reason.strip():
            raise UsageError("a reason is required: --reason TEXT")
    before = rows(session, today, slugs=[slug])[0].verdict.status
    revision = commitment.revision
    table = models.Commitment.__table__  # type: ignore[attr-defined]
    result = session.connection().execute(
        sa.update(table)
        .where(table.c.id == commitment.id, table.c.revision == revision)
        .values(
            override_status=status,
            override_reason=clean_stored(reason.strip(), 2000) if (status and reason) else None,
            override_by=who if status else None,
            override_at=_now() if status else None,
            revision=revision + 1,
        )
    )
    if result.rowcount != 1:
        raise EnvironmentProblem(
            f"'{slug}' was changed by someone else meanwhile; look again and retry"
        )
    session.expire(commitment)
    after = rows(session, today, slugs=[slug])[0].verdict
    session.add(
        models.StatusHistory(
            commitment_id=commitment.id,  # type: ignore[arg-type]
            at=_now(),
            old_status=before,
            new_status=after.status,
            kind="override" if status else "clear",
            actor=who,
            reason=(reason or "").strip() if status else f"override cleared; {after.explanation}",
        )
    )
    session.flush()
    return before, after.status


def find_slug(session: Session, commitment_id: int) -> str:
    c = session.get(models.Commitment, commitment_id)
    return c.slug if c else "?"
