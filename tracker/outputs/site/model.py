"""What the static site is made of: plain data handed in by `tracker.publish`, no database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from tracker.outputs.weekly import WeeklyReport
from tracker.store.records import (
    AgreementRecord,
    EvidenceRecord,
    HistoryRecord,
    MentionRecord,
    Row,
)

__all__ = ["CommitmentPage", "SiteData"]


@dataclass(frozen=True)
class CommitmentPage:
    """One commitment and what its page shows."""

    row: Row
    agreement: AgreementRecord
    history: Sequence[HistoryRecord]  # oldest first
    evidence: Sequence[EvidenceRecord]  # shown on the page: newest publication first
    mentions: Mapping[int, Sequence[MentionRecord]] = field(default_factory=dict)
    pending_hidden: int = 0  # evidence waiting for review that the page leaves out


@dataclass(frozen=True)
class SiteData:
    today: date
    generated_at: datetime
    version: str
    agreements: Sequence[AgreementRecord]
    pages: Sequence[CommitmentPage]  # in the register's order
    weeks: Sequence[WeeklyReport] = ()  # oldest first
    include_pending: bool = False
    pending_total: int = 0
