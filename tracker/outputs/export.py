"""Everything as data: JSON (documented in the README) and CSV (one row per evidence item)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tracker.dates import iso_utc as _iso
from tracker.outputs.escape import csv_cell
from tracker.store.records import (
    AgreementRecord,
    EvidenceRecord,
    HistoryRecord,
    MentionRecord,
    ReviewEventRecord,
    Row,
)

EXPORT_VERSION = 1

__all__ = ["CSV_COLUMNS", "EXPORT_VERSION", "ExportData", "build", "to_csv", "to_json"]


@dataclass(frozen=True)
class ExportData:
    today: date
    generated_at: datetime
    agreements: Sequence[AgreementRecord]
    rows: Sequence[Row]
    evidence: Sequence[EvidenceRecord]  # by commitment, newest first
    mentions: Mapping[int, Sequence[MentionRecord]]
    reviews: Mapping[int, Sequence[ReviewEventRecord]]
    history: Sequence[HistoryRecord]


def _evidence(
    e: EvidenceRecord,
    mentions: Sequence[MentionRecord],
    reviews: Sequence[ReviewEventRecord],
) -> dict[str, Any]:
    return {
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
        "cite": e.cite,
        "date_precision": e.date_precision,
        "suggested_milestone": e.suggested_milestone,
        "suggested_stance": e.suggested_stance,
        "reasons": list(e.reasons),
        "also_reported_by": [
            {"url": m.url, "source": m.source, "publisher": m.publisher, "country": m.country}
            for m in mentions
        ],
        "reviews": [
            {
                "at": _iso(r.at),
                "by": r.actor,
                "from": r.previous,
                "to": r.decision,
                "reason": r.reason,
            }
            for r in reviews
        ],
    }


def _commitment(
    row: Row, history: list[dict[str, Any]], evidence: list[dict[str, Any]]
) -> dict[str, Any]:
    c = row.commitment
    return {
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
                "position": m.position,
                "title": m.title,
                "reached": m.reached,
                "implied": m.implied,
                "reached_on": _iso(m.on),
                "evidence_id": m.evidence_id,
            }
            for m in row.verdict.milestones
        ],
        "pending_review": row.digest.pending,
        "last_evidence_on": _iso(row.digest.last_evidence),
        "history": history,
        "evidence": evidence,
    }


def build(data: ExportData) -> dict[str, Any]:
    by_commitment: dict[int, list[dict[str, Any]]] = {}
    for e in data.evidence:
        by_commitment.setdefault(e.commitment_id, []).append(
            _evidence(e, data.mentions.get(e.id, ()), data.reviews.get(e.id, ()))
        )
    history: dict[int, list[dict[str, Any]]] = {}
    for h in data.history:
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
    commitments = [
        _commitment(
            row, history.get(row.commitment.id, []), by_commitment.get(row.commitment.id, [])
        )
        for row in data.rows
    ]
    return {
        "export_version": EXPORT_VERSION,
        "generated_at": _iso(data.generated_at),
        "today": _iso(data.today),
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
            for a in data.agreements
        ],
        "commitments": commitments,
    }


def to_json(data: ExportData) -> str:
    return json.dumps(build(data), ensure_ascii=False, indent=2) + "\n"


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


def to_csv(rows: Sequence[Row], evidence: Sequence[EvidenceRecord]) -> str:
    """One line per evidence item (`evidence` in the order wanted)."""
    statuses = {r.commitment.id: r.verdict.status for r in rows}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in evidence:
        # Every text cell, not only the title: a feed names its publisher, a catalog its slug.
        writer.writerow(
            [
                csv_cell(str(value))
                for value in (
                    e.commitment_slug,
                    statuses.get(e.commitment_id, ""),
                    e.id,
                    _iso(e.published_at),
                    e.source,
                    e.publisher or "",
                    e.language,
                    e.stance,
                    e.milestone or "",
                    e.review,
                    e.title,
                    e.url,
                    ";".join(e.matched_terms),
                )
            ]
        )
    return out.getvalue()


def status_data(rows: Sequence[Row], today: date, pending_total: int) -> dict[str, Any]:
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
