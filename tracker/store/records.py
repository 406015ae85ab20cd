"""Plain, frozen records: what the store hands to the layers above (never ORM rows).

Importing this module costs nothing: no SQLAlchemy, no SQLModel. The attribute names are the
column names, so a view reads `evidence.published_at` whatever produced the record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from tracker.status import Digest, Verdict
from tracker.vocab import Review, Stance

__all__ = [
    "AgreementRecord",
    "Card",
    "Change",
    "CommitmentRecord",
    "EvidenceRecord",
    "HealthRecord",
    "HistoryRecord",
    "MentionRecord",
    "NewEvidence",
    "ReviewEventRecord",
    "ReviewOutcome",
    "Row",
]


class AgreementRecord(msgspec.Struct, frozen=True):
    id: int
    slug: str
    title: str
    outlet: str
    url: str | None
    published_on: date | None
    language: str
    text: str
    summary: str


class CommitmentRecord(msgspec.Struct, frozen=True):
    """A commitment as the views read it."""

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
    revision: int = 0


class Row(msgspec.Struct, frozen=True):
    """One commitment as the views show it: facts, evidence digest and verdict for one day."""

    commitment: CommitmentRecord
    agreement_slug: str
    milestones: list[str]
    digest: Digest
    verdict: Verdict


class EvidenceRecord(msgspec.Struct, frozen=True):
    id: int
    commitment_id: int
    url: str
    canonical_url: str
    title: str
    summary: str
    title_key: str
    published_at: datetime
    source: str
    publisher: str | None
    language: str
    country: str | None
    stance: str
    milestone: int | None
    review: str
    review_reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    cancels: bool
    matched_terms: list[str]
    score: float
    note: str | None
    created_at: datetime
    revision: int
    commitment_slug: str = ""
    cite: str | None = None
    date_precision: str = "day"
    suggested_milestone: int | None = None
    suggested_stance: str | None = None
    reasons: list[str] = msgspec.field(default_factory=list)


class MentionRecord(msgspec.Struct, frozen=True):
    """Another URL or outlet that carried the same story as an evidence row."""

    evidence_id: int
    url: str
    source: str
    publisher: str | None
    country: str | None
    published_at: datetime | None


class ReviewEventRecord(msgspec.Struct, frozen=True):
    evidence_id: int
    at: datetime
    actor: str
    previous: str
    decision: str
    milestone: int | None
    stance: str | None
    reason: str | None


class HistoryRecord(msgspec.Struct, frozen=True):
    id: int
    commitment_id: int
    at: datetime
    old_status: str | None
    new_status: str
    kind: str
    actor: str
    reason: str


class HealthRecord(msgspec.Struct, frozen=True):
    """A source's health as last recorded (one row per source name)."""

    name: str
    kind: str = ""
    country: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_state: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    items_seen: int = 0
    new_evidence: int = 0
    total_evidence: int = 0
    etag: str | None = None
    last_modified: str | None = None
    fingerprint: str | None = None
    snapshot: str | None = None
    next_due: datetime | None = None
    skipped: dict[str, int] = msgspec.field(default_factory=dict)
    rate_limit_remaining: int | None = None


class Change(msgspec.Struct, frozen=True):
    """A status that changed, as recorded in the history."""

    slug: str
    old: str | None
    new: str
    reason: str


class ReviewOutcome(msgspec.Struct, frozen=True):
    evidence: EvidenceRecord
    previous: str
    previous_by: str | None
    changes: list[Change]
    slug: str = ""

    @property
    def note(self) -> str | None:
        """Tells the person when someone else had already reviewed this evidence."""
        if self.previous == "pending":
            return None
        who = f" by {self.previous_by}" if self.previous_by else ""
        return f"evidence #{self.evidence.id} had already been {self.previous}{who}"


class MatchSet(msgspec.Struct, frozen=True):
    """What a refresh needs of the catalog: each commitment's id, rules and search queries."""

    ids: dict[str, int] = msgspec.field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    queries: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    model: dict[str, Any] | None = None  # the re-ranking model learned from reviews, if any


class NewEvidence(msgspec.Struct, frozen=True):
    """An evidence row about to be stored."""

    commitment_id: int
    url: str
    canonical_url: str
    title: str
    published_at: datetime
    source: str  # a source name, "curated" or "manual"
    created_at: datetime
    summary: str = ""
    title_key: str = ""
    publisher: str | None = None
    language: str = ""
    country: str | None = None
    stance: str = Stance.NEUTRAL
    milestone: int | None = None
    review: str = Review.PENDING
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    cancels: bool = False
    matched_terms: tuple[str, ...] = ()
    score: float = 0.0
    note: str | None = None
    cite: str | None = None
    date_precision: str = "day"
    suggested_milestone: int | None = None
    suggested_stance: str | None = None
    reasons: tuple[str, ...] = ()
    # Other outlets' links a source gave for the same story (a Google News cluster).
    also_reported_by: tuple[tuple[str, str], ...] = ()


class Card(msgspec.Struct, frozen=True):
    """Everything `tracker show` prints about one commitment."""

    row: Row
    history: list[HistoryRecord]
    evidence: list[EvidenceRecord]  # the newest, at most the limit asked for
    total: int  # evidence rows in all
    mentions: dict[int, list[MentionRecord]] = msgspec.field(default_factory=dict)
