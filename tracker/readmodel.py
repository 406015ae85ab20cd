"""Read-only queries behind the views, in plain SQL over any DB-API connection.

The same functions serve a SQLAlchemy session (every backend) and a bare `sqlite3` connection (the
fast path of `tracker status`, which then never imports SQLAlchemy). Aggregates are computed in SQL,
so the cost stays flat as evidence grows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tracker.dates import to_naive_utc
from tracker.status import CommitmentFacts, Digest, Override, Reached, Verdict, evaluate

Run = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Reader:
    """Runs SQL with `:name` parameters; knows how its backend wants timestamps."""

    run: Run
    dialect: str

    @classmethod
    def sqlite(cls, conn: sqlite3.Connection) -> Reader:
        return cls(lambda sql, params: conn.execute(sql, params).fetchall(), "sqlite")

    @classmethod
    def session(cls, session: Any) -> Reader:
        import sqlalchemy as sa

        conn = session.connection()

        def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

        return cls(run, conn.dialect.name)

    def time(self, value: datetime) -> Any:
        # SQLAlchemy stores SQLite timestamps as this text; compare like with like.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else value


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_datetime(value: Any) -> datetime | None:
    """Naive UTC, whether the driver hands back naive or aware values, or text (SQLite)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return to_naive_utc(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class CommitmentView:
    """A commitment as the views read it (the same attribute names as the table)."""

    id: int
    slug: str
    agreement_id: int
    agreement_slug: str
    position: int
    title: str
    description: str
    quote: str
    parties: list[str]
    announced_on: date
    deadline: date | None
    stall_days: int | None
    override_status: str | None
    override_reason: str | None
    override_by: str | None
    override_at: datetime | None


@dataclass(frozen=True)
class Row:
    """One commitment as the views show it."""

    commitment: CommitmentView
    agreement_slug: str
    milestones: list[str]
    digest: Digest
    verdict: Verdict


def commitments(r: Reader) -> list[CommitmentView]:
    rows = r.run(
        "SELECT c.id, c.slug, c.agreement_id, a.slug, c.position, c.title, c.description, c.quote,"
        " c.parties, c.announced_on, c.deadline, c.stall_days, c.override_status, c.override_reason,"
        " c.override_by, c.override_at FROM commitment c JOIN agreement a ON a.id = c.agreement_id"
        " ORDER BY a.id, c.position, c.id",
        {},
    )
    return [
        CommitmentView(
            id=row[0],
            slug=row[1],
            agreement_id=row[2],
            agreement_slug=row[3],
            position=row[4],
            title=row[5],
            description=row[6],
            quote=row[7],
            parties=list(_json(row[8]) or []),
            announced_on=as_date(row[9]),
            deadline=as_date(row[10]) if row[10] is not None else None,
            stall_days=row[11],
            override_status=row[12],
            override_reason=row[13],
            override_by=row[14],
            override_at=as_datetime(row[15]),
        )
        for row in rows
    ]


def agreement_slugs(r: Reader) -> list[str]:
    return [row[0] for row in r.run("SELECT slug FROM agreement ORDER BY id", {})]


def milestones(r: Reader) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    for cid, title in r.run(
        "SELECT commitment_id, title FROM milestone ORDER BY commitment_id, position", {}
    ):
        result.setdefault(cid, []).append(title)
    return result


def pending_count(r: Reader) -> int:
    return int(r.run("SELECT COUNT(*) FROM evidence WHERE review = 'pending'", {})[0][0])


def digests(r: Reader, until: datetime | None = None) -> dict[int, Digest]:
    """Per-commitment evidence aggregates; with `until`, as they stood for evidence published
    before that moment (rebuilding past weeks).

    The cost does not grow with rejected evidence, the bulk of an old database: pending and
    confirmed rows are counted per commitment through `ix_evidence_commitment_review` (two
    one-key GROUP BYs; grouping by commitment and review at once sorts, at twice the cost), and
    every first or latest row is one index probe (LIMIT 1) into a small partial index over
    confirmed evidence (see models.Evidence).
    """
    params: dict[str, Any] = {}
    cut = ""
    if until is not None:
        cut = " AND x.published_at < :until"
        params["until"] = r.time(until)

    counts: dict[tuple[int, str], int] = {
        (cid, review): n
        for cid, review, n in r.run(
            "SELECT x.commitment_id, 'pending', COUNT(*) FROM commitment c CROSS JOIN evidence x"
            f" WHERE x.commitment_id = c.id AND x.review = 'pending'{cut} GROUP BY x.commitment_id"
            " UNION ALL"
            " SELECT x.commitment_id, 'confirmed', COUNT(*) FROM commitment c CROSS JOIN evidence x"
            f" WHERE x.commitment_id = c.id AND x.review = 'confirmed'{cut}"
            " GROUP BY x.commitment_id",
            params,
        )
    }
    last: dict[int, date] = {}
    for cid, newest_pending, newest_confirmed in r.run(
        "SELECT c.id,"
        " (SELECT MAX(x.published_at) FROM evidence x"
        f"  WHERE x.commitment_id = c.id AND x.review = 'pending'{cut}),"
        " (SELECT MAX(x.published_at) FROM evidence x"
        f"  WHERE x.commitment_id = c.id AND x.review = 'confirmed'{cut})"
        " FROM commitment c",
        params,
    ):
        days = [as_date(v) for v in (newest_pending, newest_confirmed) if v is not None]
        if days:
            last[cid] = max(days)

    reached: dict[int, dict[int, Reached]] = {}
    for cid, ms, on, ev_id in r.run(
        "SELECT m.commitment_id, m.position, e.published_at, e.id FROM milestone m"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = m.commitment_id AND x.review = 'confirmed'"
        "  AND x.milestone IS NOT NULL AND x.milestone = m.position AND x.stance <> 'setback'"
        f"{cut} ORDER BY x.published_at, x.id LIMIT 1)",
        params,
    ):
        reached.setdefault(cid, {})[ms] = Reached(ms, as_date(on), ev_id)
    latest: dict[tuple[int, str], tuple[date, int]] = {}
    for cid, stance, on, ev_id in r.run(
        "SELECT c.id, s.stance, e.published_at, e.id FROM commitment c"
        " CROSS JOIN (SELECT 'progress' AS stance UNION ALL SELECT 'setback') s"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = c.id AND x.review = 'confirmed' AND x.stance = s.stance"
        f"{cut} ORDER BY x.published_at DESC, x.id DESC LIMIT 1)",
        params,
    ):
        latest[(cid, stance)] = (as_date(on), ev_id)
    cancelled: dict[int, tuple[date, int]] = {}
    for cid, on, ev_id in r.run(
        "SELECT c.id, e.published_at, e.id FROM commitment c"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = c.id AND x.review = 'confirmed' AND x.cancels"
        f"{cut} ORDER BY x.published_at, x.id LIMIT 1)",
        params,
    ):
        cancelled[cid] = (as_date(on), ev_id)

    return {
        cid: Digest(
            reached=reached.get(cid, {}),
            last_progress=latest.get((cid, "progress")),
            last_setback=latest.get((cid, "setback")),
            cancelled=cancelled.get(cid),
            pending=counts.get((cid, "pending"), 0),
            last_evidence=last.get(cid),
            confirmed=counts.get((cid, "confirmed"), 0),
        )
        for cid in set(last) | set(reached)
    }


def facts_of(c: Any, titles: Sequence[str]) -> CommitmentFacts:
    return CommitmentFacts(
        slug=c.slug,
        announced_on=c.announced_on,
        milestones=titles,
        deadline=c.deadline,
        stall_days=c.stall_days,
    )


def override_of(c: Any) -> Override | None:
    if not c.override_status:
        return None
    return Override(
        status=c.override_status,
        reason=c.override_reason or "",
        by=c.override_by or "unknown",
        on=(c.override_at or datetime(1970, 1, 1)).date(),
    )


def rows(
    r: Reader,
    today: date,
    *,
    slugs: Iterable[str] | None = None,
    agreement: str | None = None,
    status: str | None = None,
) -> list[Row]:
    """Every commitment (or a filtered set) with its digest and verdict for `today`."""
    found = commitments(r)
    if agreement is not None:
        found = [c for c in found if c.agreement_slug == agreement]
    if slugs is not None:
        wanted = set(slugs)
        found = [c for c in found if c.slug in wanted]
    ms = milestones(r)
    dg = digests(r)
    result = []
    for c in found:
        titles = ms.get(c.id, [])
        d = dg.get(c.id, Digest())
        verdict = evaluate(facts_of(c, titles), d, today, override_of(c))
        if status is None or verdict.status == status:
            result.append(Row(c, c.agreement_slug, titles, d, verdict))
    return result


def status_data(rows: list[Row], today: date, pending_total: int) -> dict[str, Any]:
    """What `tracker status --json` prints: the table's content as data."""
    return {
        "today": today.isoformat(),
        "pending_review": pending_total,
        "commitments": [
            {
                "slug": r.commitment.slug,
                "agreement": r.agreement_slug,
                "title": r.commitment.title,
                "status": r.verdict.status,
                "explanation": r.verdict.explanation,
                "flags": list(r.verdict.flags),
                "milestones_reached": r.verdict.progress,
                "milestones_total": len(r.milestones),
                "current_milestone": r.milestones[r.verdict.progress - 1]
                if r.verdict.progress
                else None,
                "last_evidence_on": r.digest.last_evidence.isoformat()
                if r.digest.last_evidence
                else None,
                "pending_review": r.digest.pending,
                "days_since_announced": (today - r.commitment.announced_on).days,
            }
            for r in rows
        ],
    }
