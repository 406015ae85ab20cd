"""The status engine: pure functions, no database.

A commitment's facts (milestones, dates) and a digest of its evidence give a status, flags and an
explanation that names what decided it. The digest is an aggregate so that the same function serves a
unit test (built from a list of evidence by `digest`) and the views (built by SQL over millions of
rows in `tracker.store.reads.digests`); a property test holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from tracker.vocab import FLAG_ORDER, STATUSES, SYMBOLS, Flag, Review, Stance, Status

__all__ = [
    "DEFAULT_STALL_DAYS",
    "DISPUTE_DAYS",
    "STATUSES",
    "SYMBOLS",
    "CommitmentFacts",
    "Digest",
    "EvidenceFact",
    "Override",
    "Reached",
    "Verdict",
    "digest",
    "evaluate",
]

DEFAULT_STALL_DAYS = 180
DISPUTE_DAYS = 90


@dataclass(frozen=True)
class CommitmentFacts:
    slug: str
    announced_on: date
    milestones: Sequence[str]
    deadline: date | None = None
    stall_days: int | None = None


@dataclass(frozen=True)
class EvidenceFact:
    """What the engine needs to know of one evidence row."""

    id: int
    on: date
    stance: str
    review: str
    milestone: int | None = None
    cancels: bool = False
    title: str = ""


@dataclass(frozen=True)
class Reached:
    position: int
    on: date
    evidence_id: int


@dataclass(frozen=True)
class Digest:
    """Aggregates over one commitment's evidence; rejected evidence never counts."""

    reached: dict[int, Reached] = field(default_factory=dict)  # first confirmed date per milestone
    last_progress: tuple[date, int] | None = None  # latest confirmed progress (date, evidence id)
    last_setback: tuple[date, int] | None = None
    cancelled: tuple[date, int] | None = None  # earliest confirmed cancellation
    pending: int = 0
    last_evidence: date | None = None  # newest pending or confirmed evidence of any stance
    confirmed: int = 0


@dataclass(frozen=True)
class Override:
    status: str
    reason: str
    by: str
    on: date


@dataclass(frozen=True)
class Verdict:
    status: str
    explanation: str
    flags: tuple[str, ...]
    progress: int  # highest milestone reached, 0 if none
    computed_status: str  # what the engine says, even when a person overrode it

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]


def _later(a: tuple[date, int] | None, b: tuple[date, int]) -> tuple[date, int]:
    return b if a is None or b > a else a


def digest(evidence: Iterable[EvidenceFact]) -> Digest:
    """Build the digest from individual evidence (tests, small sets)."""
    reached: dict[int, Reached] = {}
    last_progress = last_setback = cancelled = None
    pending = confirmed = 0
    last_evidence: date | None = None
    for ev in evidence:
        if ev.review == Review.REJECTED:
            continue
        last_evidence = ev.on if last_evidence is None else max(last_evidence, ev.on)
        if ev.review == Review.PENDING:
            pending += 1
            continue
        confirmed += 1
        if ev.milestone is not None and ev.stance != Stance.SETBACK:
            known = reached.get(ev.milestone)
            if known is None or (ev.on, ev.id) < (known.on, known.evidence_id):
                reached[ev.milestone] = Reached(ev.milestone, ev.on, ev.id)
        if ev.stance == Stance.PROGRESS:
            last_progress = _later(last_progress, (ev.on, ev.id))
        elif ev.stance == Stance.SETBACK:
            last_setback = _later(last_setback, (ev.on, ev.id))
        if ev.cancels and (cancelled is None or (ev.on, ev.id) < cancelled):
            cancelled = (ev.on, ev.id)
    return Digest(
        reached, last_progress, last_setback, cancelled, pending, last_evidence, confirmed
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def evaluate(
    facts: CommitmentFacts,
    dg: Digest,
    today: date,
    override: Override | None = None,
) -> Verdict:
    """Decide the status of one commitment on `today`."""
    total = len(facts.milestones)
    stall_days = facts.stall_days or DEFAULT_STALL_DAYS
    valid = {p: r for p, r in dg.reached.items() if 1 <= p <= total}
    progress = max(valid, default=0)
    final = valid.get(total)

    def milestone(position: int) -> str:
        return f"milestone {position}/{total} '{facts.milestones[position - 1]}'"

    status: str
    if dg.cancelled is not None:
        on, ev_id = dg.cancelled
        status = Status.BROKEN
        why = f"confirmed cancellation on {on.isoformat()} (evidence #{ev_id})"
    elif final is not None:
        setback = dg.last_setback
        if setback is not None and setback[0] > final.on:
            status = Status.PARTIALLY_DELIVERED
            why = (
                f"{milestone(total)} reached on {final.on.isoformat()} (evidence #{final.evidence_id}), "
                f"then a confirmed setback on {setback[0].isoformat()} (evidence #{setback[1]})"
            )
        else:
            status = Status.DELIVERED
            why = (
                f"{milestone(total)} reached on {final.on.isoformat()} "
                f"(evidence #{final.evidence_id})"
            )
    else:
        # Progress is the newest of: confirmed progress evidence, a milestone reached.
        anchor: tuple[date, str] = (facts.announced_on, "the announcement")
        if dg.last_progress is not None and dg.last_progress[0] > anchor[0]:
            anchor = (dg.last_progress[0], f"evidence #{dg.last_progress[1]}")
        for r in valid.values():
            if r.on > anchor[0]:
                anchor = (r.on, f"evidence #{r.evidence_id}")
        quiet = (today - anchor[0]).days
        if quiet > stall_days:
            status = Status.STALLED
            why = (
                f"no confirmed progress for {quiet} days (since {anchor[0].isoformat()}, "
                f"{anchor[1]}); the limit is {stall_days}"
            )
            if progress:
                why += f"; last reached {milestone(progress)}"
        elif progress:
            status = Status.IN_PROGRESS
            r = valid[progress]
            why = (
                f"{milestone(progress)} reached on {r.on.isoformat()} (evidence #{r.evidence_id}); "
                f"last confirmed progress {quiet} days ago"
            )
        else:
            status = Status.ANNOUNCED
            why = f"no milestone confirmed yet; announced {(today - facts.announced_on).days} days ago"

    flags: list[str] = []
    if facts.deadline is not None:
        if final is None and today > facts.deadline and status != Status.BROKEN:
            flags.append(Flag.OVERDUE)
        if final is not None and final.on > facts.deadline:
            flags.append(Flag.LATE)
    if dg.pending:
        flags.append(Flag.NEEDS_REVIEW)
        why += f"; {_plural(dg.pending, 'evidence item')} waiting for review"
    window = today - timedelta(days=DISPUTE_DAYS)
    if (
        dg.last_progress is not None
        and dg.last_setback is not None
        and dg.last_progress[0] >= window
        and dg.last_setback[0] >= window
    ):
        flags.append(Flag.DISPUTED)
    flags.sort(key=FLAG_ORDER.index)

    computed = status
    if override is not None:
        why = (
            f"set to {override.status} by {override.by} on {override.on.isoformat()}: "
            f"{override.reason} (computed: {computed} — {why})"
        )
        status = override.status
    return Verdict(status, why, tuple(flags), progress, computed)
