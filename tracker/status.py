"""The status engine: pure functions, no database.

A commitment's facts (milestones, dates) and a digest of its evidence give a status, flags and an
explanation that names what decided it. The digest is an aggregate so that the same function serves a
unit test (built from a list of evidence by `digest`) and the views (built by SQL over millions of
rows in `tracker.store.reads.digests`); a property test holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta

import msgspec

from tracker.vocab import FLAG_ORDER, STATUSES, SYMBOLS, Flag, Review, Stance, Status

__all__ = [
    "DEFAULT_STALL_DAYS",
    "DISPUTE_DAYS",
    "STATUSES",
    "SYMBOLS",
    "CommitmentFacts",
    "Digest",
    "EvidenceFact",
    "MilestoneState",
    "Override",
    "Reached",
    "Verdict",
    "digest",
    "evaluate",
]

DEFAULT_STALL_DAYS = 180
DISPUTE_DAYS = 90


class CommitmentFacts(msgspec.Struct, frozen=True):
    slug: str
    announced_on: date
    milestones: Sequence[str]
    deadline: date | None = None
    stall_days: int | None = None


class EvidenceFact(msgspec.Struct, frozen=True):
    """What the engine needs to know of one evidence row."""

    id: int
    on: date
    stance: str
    review: str
    milestone: int | None = None
    cancels: bool = False
    title: str = ""
    at: datetime | None = None  # the full publication time, when known (orders same-day rows)


class Reached(msgspec.Struct, frozen=True):
    position: int
    on: date
    evidence_id: int


class Digest(msgspec.Struct, frozen=True):
    """Aggregates over one commitment's evidence; rejected evidence never counts."""

    # First confirmed date per milestone.
    reached: dict[int, Reached] = msgspec.field(default_factory=dict)
    last_progress: tuple[date, int] | None = None  # latest confirmed progress (date, evidence id)
    last_setback: tuple[date, int] | None = None
    cancelled: tuple[date, int] | None = None  # latest confirmed cancellation
    pending: int = 0
    last_evidence: date | None = None  # newest pending or confirmed evidence of any stance
    confirmed: int = 0


class Override(msgspec.Struct, frozen=True):
    status: str
    reason: str
    by: str
    on: date


class MilestoneState(msgspec.Struct, frozen=True):
    """One milestone as every view counts it.

    A confirmed later milestone implies the earlier ones: they count as reached, shown as
    implied, with no date of their own (nothing dated them)."""

    position: int
    title: str
    reached: bool
    on: date | None = None
    evidence_id: int | None = None
    implied: bool = False


class Verdict(msgspec.Struct, frozen=True):
    status: str
    explanation: str
    flags: tuple[str, ...]
    progress: int  # highest milestone reached, 0 if none
    computed_status: str  # what the engine says, even when a person overrode it
    milestones: tuple[MilestoneState, ...] = ()
    rule: str = ""  # which row of the decision table decided (README "Statuses and flags")

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]


def _later(a: tuple[date, int] | None, b: tuple[date, int]) -> tuple[date, int]:
    return b if a is None or b > a else a


_Key = tuple[datetime, int]


def _key(ev: EvidenceFact) -> _Key:
    # The store orders by the full publication time, then by id: so does this.
    return (ev.at or datetime.combine(ev.on, time(12)), ev.id)


def digest(evidence: Iterable[EvidenceFact], milestones: int | None = None) -> Digest:
    """Build the digest from individual evidence (tests, small sets). The store computes the same
    aggregates in SQL (`tracker.store.reads.digests`); a property test holds the two together.
    With `milestones` (how many the commitment has), evidence naming another milestone reaches
    nothing, as in the store, where only the commitment's own milestones can be reached."""
    first: dict[int, tuple[_Key, EvidenceFact]] = {}
    latest: dict[str, tuple[_Key, EvidenceFact]] = {}
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
        key = _key(ev)
        in_range = milestones is None or (
            ev.milestone is not None and 1 <= ev.milestone <= milestones
        )
        if ev.milestone is not None and ev.stance != Stance.SETBACK and in_range:
            known = first.get(ev.milestone)
            if known is None or key < known[0]:
                first[ev.milestone] = (key, ev)
        kinds = [str(ev.stance)] if ev.stance in (Stance.PROGRESS, Stance.SETBACK) else []
        if ev.cancels:
            kinds.append("cancel")
        for kind in kinds:
            if kind not in latest or key > latest[kind][0]:
                latest[kind] = (key, ev)

    def pair(kind: str) -> tuple[date, int] | None:
        found = latest.get(kind)
        return (found[1].on, found[1].id) if found else None

    return Digest(
        reached={p: Reached(p, ev.on, ev.id) for p, (_, ev) in first.items()},
        last_progress=pair(Stance.PROGRESS),
        last_setback=pair(Stance.SETBACK),
        cancelled=pair("cancel"),
        pending=pending,
        last_evidence=last_evidence,
        confirmed=confirmed,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _days(n: int) -> str:
    return _plural(n, "day")


def milestone_states(facts: CommitmentFacts, dg: Digest) -> tuple[MilestoneState, ...]:
    """Every milestone: reached directly (dated, with its evidence), implied, or not reached."""
    total = len(facts.milestones)
    valid = {p: r for p, r in dg.reached.items() if 1 <= p <= total}
    top = max(valid, default=0)
    states = []
    for position, title in enumerate(facts.milestones, start=1):
        r = valid.get(position)
        if r is not None:
            states.append(MilestoneState(position, title, True, r.on, r.evidence_id))
        else:
            states.append(MilestoneState(position, title, position < top, implied=position < top))
    return tuple(states)


class _Decision(msgspec.Struct, frozen=True):
    status: str
    why: str
    rule: str


def _progress_anchor(dg: Digest, reached: dict[int, Reached]) -> tuple[date, int] | None:
    """The newest confirmed progress of any kind: progress evidence, or a milestone reached."""
    anchor = dg.last_progress
    for r in reached.values():
        anchor = _later(anchor, (r.on, r.evidence_id))
    return anchor


def _decide(facts: CommitmentFacts, dg: Digest, today: date) -> _Decision:
    """The decision table of README "Statuses and flags", first matching row wins."""
    total = len(facts.milestones)
    stall = facts.stall_days or DEFAULT_STALL_DAYS
    reached = {p: r for p, r in dg.reached.items() if 1 <= p <= total}
    final = reached.get(total)
    anchor = _progress_anchor(dg, reached)

    def milestone(position: int) -> str:
        return f"milestone {position}/{total} '{facts.milestones[position - 1]}'"

    cancelled = dg.cancelled
    if cancelled is not None and (anchor is None or anchor <= cancelled):
        return _Decision(
            Status.BROKEN,
            f"confirmed cancellation on {cancelled[0].isoformat()} (evidence #{cancelled[1]})",
            "cancelled",
        )
    if final is not None:
        done = (
            f"{milestone(total)} reached on {final.on.isoformat()} (evidence #{final.evidence_id})"
        )
        setback = dg.last_setback
        if setback is not None and setback[0] >= final.on and (anchor is None or anchor < setback):
            return _Decision(
                Status.PARTIALLY_DELIVERED,
                f"{done}, then a confirmed setback on {setback[0].isoformat()} "
                f"(evidence #{setback[1]}) with no confirmed progress since",
                "delivered-then-setback",
            )
        if setback is not None and setback[0] >= final.on and anchor is not None:
            done += (
                f"; a setback on {setback[0].isoformat()} (evidence #{setback[1]}) was followed by "
                f"confirmed progress on {anchor[0].isoformat()} (evidence #{anchor[1]})"
            )
        return _Decision(Status.DELIVERED, done, "delivered")
    if anchor is None:
        age = max(0, (today - facts.announced_on).days)
        if age > stall:
            return _Decision(
                Status.STALLED,
                f"no confirmed progress since it was announced {_days(age)} ago; "
                f"the limit is {stall}",
                "stalled-since-announcement",
            )
        return _Decision(
            Status.ANNOUNCED,
            f"no confirmed progress yet; announced {_days(age)} ago",
            "announced",
        )
    quiet = max(0, (today - anchor[0]).days)
    top = max(reached, default=0)
    last = f"; last reached {milestone(top)}" if top else ""
    if quiet > stall:
        return _Decision(
            Status.STALLED,
            f"no confirmed progress for {_days(quiet)} (since {anchor[0].isoformat()}, "
            f"evidence #{anchor[1]}); the limit is {stall}{last}",
            "stalled",
        )
    return _Decision(
        Status.IN_PROGRESS,
        f"confirmed progress on {anchor[0].isoformat()} (evidence #{anchor[1]}), "
        f"{_days(quiet)} ago{last}",
        "in-progress",
    )


def _flags(facts: CommitmentFacts, dg: Digest, today: date, status: str) -> list[str]:
    total = len(facts.milestones)
    final = dg.reached.get(total) if total else None
    flags: list[str] = []
    if facts.deadline is not None:
        if final is None and today > facts.deadline and status != Status.BROKEN:
            flags.append(Flag.OVERDUE)
        if final is not None and final.on > facts.deadline:
            flags.append(Flag.LATE)
    if dg.pending:
        flags.append(Flag.NEEDS_REVIEW)
    window = today - timedelta(days=DISPUTE_DAYS)
    if (
        dg.last_progress is not None
        and dg.last_setback is not None
        and dg.last_progress[0] >= window
        and dg.last_setback[0] >= window
    ):
        flags.append(Flag.DISPUTED)
    flags.sort(key=FLAG_ORDER.index)
    return flags


def evaluate(
    facts: CommitmentFacts,
    dg: Digest,
    today: date,
    override: Override | None = None,
) -> Verdict:
    """Decide the status of one commitment on `today` from its confirmed evidence."""
    decision = _decide(facts, dg, today)
    flags = _flags(facts, dg, today, decision.status)
    why = decision.why
    if dg.pending:
        why += f"; {_plural(dg.pending, 'evidence item')} waiting for review"
    states = milestone_states(facts, dg)
    progress = max((m.position for m in states if m.reached), default=0)
    status = decision.status
    if override is not None:
        why = (
            f"set to {override.status} by {override.by} on {override.on.isoformat()}: "
            f"{override.reason} (computed: {decision.status} — {why})"
        )
        status = override.status
    return Verdict(status, why, tuple(flags), progress, decision.status, states, decision.rule)
