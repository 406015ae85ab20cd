"""The tables, declared once with SQLModel: the schema's one home.

Used to create and upgrade databases and to copy them (DDL compiled for each backend); the queries
themselves are plain SQL in `reads` and `writes`, so everyday commands never import this module.

Times are stored as naive UTC. Columns holding lists or mappings are JSON (`sa.JSON`), which works
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utc(nullable: bool = True) -> Any:
    """A naive-UTC timestamp column. Explicit, because newer SQLModel versions default `datetime`
    fields to a timezone-aware type while our schema (and its older databases) store naive UTC."""
    return Field(default=None, sa_column=sa.Column(sa.DateTime(), nullable=nullable))


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself: who made it and which schema version."""

    __tablename__ = "tracker_meta"
    key: str = Field(primary_key=True)
    value: str


class Agreement(SQLModel, table=True):
    __tablename__ = "agreement"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    title: str
    outlet: str = ""
    url: str | None = None
    published_on: date | None = None
    language: str = ""
    text: str = ""
    summary: str = ""


class Commitment(SQLModel, table=True):
    __tablename__ = "commitment"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    position: int = 0
    title: str
    description: str = ""
    quote: str = ""
    parties: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    announced_on: date
    deadline: date | None = None
    stall_days: int | None = None
    rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    queries: dict[str, str] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    # A person's override of the computed status; NULL when the engine decides.
    override_status: str | None = None
    override_reason: str | None = None
    override_by: str | None = None
    override_at: datetime | None = utc()
    # Bumped on every override change so that two people acting at once cannot lose an update.
    revision: int = 0


class Milestone(SQLModel, table=True):
    __tablename__ = "milestone"
    __table_args__ = (sa.UniqueConstraint("commitment_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    commitment_id: int = Field(foreign_key="commitment.id", index=True)
    position: int  # 1-based; the last one means delivered
    title: str


class Evidence(SQLModel, table=True):
    __tablename__ = "evidence"
    __table_args__ = (
        sa.UniqueConstraint("commitment_id", "canonical_url", name="uq_evidence_commitment_url"),
        sa.Index("ix_evidence_commitment_review", "commitment_id", "review", "published_at"),
        # Covers "waiting for review at the end of a week" (review, published, recorded) too.
        sa.Index("ix_evidence_review_published_created", "review", "published_at", "created_at"),
        sa.Index("ix_evidence_commitment_title_key", "commitment_id", "title_key"),
        sa.Index("ix_evidence_created", "created_at"),
        sa.Index("ix_evidence_reviewed", "reviewed_at"),
        sa.Index("ix_evidence_published", "published_at"),
        # Small partial indexes over confirmed evidence: every first/latest row that
        # readmodel.digests needs is one probe, however many pending and rejected rows there are.
        sa.Index(
            "ix_evidence_confirmed_milestone",
            "commitment_id",
            "milestone",
            "published_at",
            sqlite_where=sa.text("review = 'confirmed' AND milestone IS NOT NULL"),
            postgresql_where=sa.text("review = 'confirmed' AND milestone IS NOT NULL"),
        ),
        sa.Index(
            "ix_evidence_confirmed_stance",
            "commitment_id",
            "stance",
            "published_at",
            sqlite_where=sa.text("review = 'confirmed'"),
            postgresql_where=sa.text("review = 'confirmed'"),
        ),
        sa.Index(
            "ix_evidence_cancellation",
            "commitment_id",
            "review",
            "published_at",
            sqlite_where=sa.text("cancels"),
            postgresql_where=sa.text("cancels"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    commitment_id: int = Field(foreign_key="commitment.id")
    url: str
    canonical_url: str
    title: str
    summary: str = ""
    title_key: str = ""
    published_at: datetime = utc(nullable=False)
    source: str  # a source name from the sources file, "curated", or "manual"
    publisher: str | None = None
    language: str = ""
    country: str | None = None
    stance: str = "neutral"
    milestone: int | None = None
    review: str = "pending"
    review_reason: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = utc()
    cancels: bool = False  # confirmed cancellation: the commitment will not be delivered
    matched_terms: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    score: float = 0.0
    note: str | None = None
    created_at: datetime = utc(nullable=False)
    revision: int = 0
    # Schema 3.
    cite: str | None = None  # a citation text where no article link is known (curated evidence)
    date_precision: str = Field(  # day | month | year: how much of published_at is known
        default="day", sa_column=sa.Column(sa.String, nullable=False, server_default="day")
    )
    suggested_milestone: int | None = None  # what the matcher suggests a reviewer confirm
    suggested_stance: str | None = None
    reasons: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    )


class Mention(SQLModel, table=True):
    """Another URL or outlet carrying the same story as an evidence row (syndication)."""

    __tablename__ = "mention"
    __table_args__ = (sa.UniqueConstraint("evidence_id", "canonical_url"),)
    id: int | None = Field(default=None, primary_key=True)
    evidence_id: int = Field(foreign_key="evidence.id", index=True)
    url: str
    canonical_url: str
    source: str
    publisher: str | None = None
    country: str | None = None
    published_at: datetime | None = utc()


class ReviewEvent(SQLModel, table=True):
    """Append-only: every confirm or reject a person made, so concurrent reviews are all kept."""

    __tablename__ = "review_event"
    id: int | None = Field(default=None, primary_key=True)
    evidence_id: int = Field(foreign_key="evidence.id", index=True)
    at: datetime = utc(nullable=False)
    actor: str
    previous: str
    decision: str
    milestone: int | None = None
    stance: str | None = None
    reason: str | None = None


class StatusHistory(SQLModel, table=True):
    """Append-only: every computed or person-made change of a commitment's status."""

    __tablename__ = "status_history"
    __table_args__ = (sa.Index("ix_history_commitment_at", "commitment_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    commitment_id: int = Field(foreign_key="commitment.id")
    at: datetime = utc(nullable=False)
    old_status: str | None = None
    new_status: str
    kind: str  # computed | override | clear
    actor: str
    reason: str = ""


class SourceHealth(SQLModel, table=True):
    __tablename__ = "source_health"
    name: str = Field(primary_key=True)
    kind: str = ""
    country: str | None = None
    last_attempt: datetime | None = utc()
    last_success: datetime | None = utc()
    last_state: str | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = utc()
    last_error: str | None = None
    items_seen: int = 0
    new_evidence: int = 0
    total_evidence: int = 0
    etag: str | None = None
    last_modified: str | None = None
    fingerprint: str | None = None
    snapshot: str | None = None  # the watched text of a page, to summarise its next change
    next_due: datetime | None = utc()
    # Schema 3: items of the last run not stored, by reason; what the API says is left of its quota.
    skipped: dict[str, int] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    )
    rate_limit_remaining: int | None = None


class FetchRun(SQLModel, table=True):
    __tablename__ = "fetch_run"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = utc(nullable=False)
    finished_at: datetime | None = utc()
    ok: int = 0
    unchanged: int = 0
    failed: int = 0
    disabled: int = 0
    skipped: int = 0
    items_seen: int = 0
    new_evidence: int = 0
    # Schema 3: items not stored in this run, by reason (non-web link, duplicate, too old, …).
    items_skipped: dict[str, int] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    )


class Notification(SQLModel, table=True):
    """Alerts and reports already sent, so that none goes out twice."""

    __tablename__ = "notification"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    sent_at: datetime = utc(nullable=False)
    detail: str = ""
    # Schema 3: a send is claimed before it is attempted, so two processes never both send.
    state: str = Field(  # claimed | sent | failed
        default="sent", sa_column=sa.Column(sa.String, nullable=False, server_default="sent")
    )
    claimed_at: datetime | None = utc()
    claimed_by: str | None = None
    message_id: str | None = None
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    last_error: str | None = None
    payload: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    )


class MatcherModel(SQLModel, table=True):
    """Schema 3: the re-ranking model learned from reviews, shared by every watcher of a team."""

    __tablename__ = "matcher_model"
    name: str = Field(primary_key=True)
    trained_at: datetime = utc(nullable=False)
    examples: int = 0
    weights: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
