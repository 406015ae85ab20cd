"""Everything as data: JSON (documented in the README) and CSV (one row per evidence item)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from tracker import models, store
from tracker.dates import iso_utc as _iso
from tracker.dates import utcnow

EXPORT_VERSION = 1


def build(session: Session, today: date) -> dict[str, Any]:
    rows = store.rows(session, today)
    agreements = list(session.exec(select(models.Agreement).order_by(models.Agreement.id)))
    by_commitment: dict[int, list[dict[str, Any]]] = {}
    mentions: dict[int, list[dict[str, Any]]] = {}
    for m in session.exec(select(models.Mention).order_by(models.Mention.id)):
        mentions.setdefault(m.evidence_id, []).append(
            {"url": m.url, "source": m.source, "publisher": m.publisher, "country": m.country}
        )
    reviews: dict[int, list[dict[str, Any]]] = {}
    for r in session.exec(select(models.ReviewEvent).order_by(models.ReviewEvent.id)):  # type: ignore[arg-type]
        reviews.setdefault(r.evidence_id, []).append(
            {
                "at": _iso(r.at),
                "by": r.actor,
                "from": r.previous,
                "to": r.decision,
                "reason": r.reason,
            }
        )
    for e in session.exec(
        select(models.Evidence).order_by(
            models.Evidence.commitment_id,
            models.Evidence.published_at.desc(),  # type: ignore[attr-defined]
            models.Evidence.id.desc(),  # type: ignore[union-attr]
        )
    ):
        by_commitment.setdefault(e.commitment_id, []).append(
            {
                "id": e.id,
                "url": e.url,
                "title": e.title,
                "published_at": _iso(e.published_at),
                "source": e.source,
                "publisher": e.publisher,
                "language": e.language,
                "country": e.country,
                "stance": e.stance,
                "milestone": e.milestone,
                "review": e.review,
                "review_reason": e.review_reason,
                "reviewed_by": e.reviewed_by,
                "matched_terms": list(e.matched_terms),
                "score": e.score,
                "note": e.note,
                "cancels": e.cancels,
                "also_reported_by": mentions.get(e.id, []),  # type: ignore[arg-type]
                "reviews": reviews.get(e.id, []),  # type: ignore[arg-type]
            }
        )
    history: dict[int, list[dict[str, Any]]] = {}
    for h in session.exec(select(models.StatusHistory).order_by(models.StatusHistory.id)):  # type: ignore[arg-type]
        history.setdefault(h.commitment_id, []).append(
            {
                "at": _iso(h.at),
                "from": h.old_status,
                "to": h.new_status,
                "kind": h.kind,
                "by": h.actor,
                "reason": h.reason,
            }
        )
    commitments = []
    for row in rows:
        c = row.commitment
        reached = row.digest.reached
        commitments.append(
            {
                "slug": c.slug,
                "agreement": row.agreement_slug,
                "title": c.title,
                "description": c.description,
                "quote": c.quote,
                "parties": list(c.parties),
                "announced_on": _iso(c.announced_on),
                "deadline": _iso(c.deadline),
                "status": row.verdict.status,
                "computed_status": row.verdict.computed_status,
                "explanation": row.verdict.explanation,
                "flags": list(row.verdict.flags),
                "override": (
                    {
                        "status": c.override_status,
                        "reason": c.override_reason,
                        "by": c.override_by,
                        "at": _iso(c.override_at),
                    }
                    if c.override_status
                    else None
                ),
                "milestones": [
                    {
                        "position": i,
                        "title": title,
                        "reached_on": _iso(reached[i].on) if i in reached else None,
                        "evidence_id": reached[i].evidence_id if i in reached else None,
                    }
                    for i, title in enumerate(row.milestones, start=1)
                ],
                "pending_review": row.digest.pending,
                "last_evidence_on": _iso(row.digest.last_evidence),
                "history": history.get(c.id, []),  # type: ignore[arg-type]
                "evidence": by_commitment.get(c.id, []),  # type: ignore[arg-type]
            }
        )
    return {
        "export_version": EXPORT_VERSION,
        "generated_at": _iso(utcnow()),
        "today": _iso(today),
        "agreements": [
            {
                "slug": a.slug,
                "title": a.title,
                "outlet": a.outlet,
                "url": a.url,
                "published_on": _iso(a.published_on),
                "language": a.language,
                "summary": a.summary,
                "text": a.text,
            }
            for a in agreements
        ],
        "commitments": commitments,
    }


def to_json(session: Session, today: date) -> str:
    return json.dumps(build(session, today), ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = (
    "commitment",
    "status",
    "evidence_id",
    "published_at",
    "source",
    "publisher",
    "language",
    "stance",
    "milestone",
    "review",
    "title",
    "url",
    "matched_terms",
)


def to_csv(session: Session, today: date) -> str:
    statuses = {r.commitment.id: r.verdict.status for r in store.rows(session, today)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    query = (
        select(models.Evidence, models.Commitment.slug)
        .join(models.Commitment, models.Commitment.id == models.Evidence.commitment_id)
        .order_by(
            models.Commitment.position, sa.desc(models.Evidence.published_at), models.Evidence.id
        )
    )
    for e, slug in session.exec(query):
        writer.writerow(
            (
                slug,
                statuses.get(e.commitment_id, ""),
                e.id,
                _iso(e.published_at),
                e.source,
                e.publisher or "",
                e.language,
                e.stance,
                e.milestone or "",
                e.review,
                # Spreadsheets run cells starting with = + - @ as formulas: neutralise them.
                _cell(e.title),
                _cell(e.url),
                ";".join(e.matched_terms),
            )
        )
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
