"""Queries and writes for reviewing at speed: the pending evidence and the links that make story
clusters, the selection behind batch decisions, one decision that knows what the reviewer saw,
its undo, and the few reads the review loop, the weekly report and `show --timeline` need.

A story cluster is per commitment: the same story carried by several outlets. The links found here
are the ones the database already records (a row's also-reported-by mention that is another
pending row, or two pending rows sharing a mentioned link); the grouping by titles is done where
the queue is built (`tracker.review.group_stories`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tracker.errors import EnvironmentProblem, UsageError
from tracker.store import reads
from tracker.store.conn import Conn, as_datetime, chunks, in_list, scalar
from tracker.store.records import Change, EvidenceRecord
from tracker.store.writes import review, sync_statuses
from tracker.vocab import Review

__all__ = [
    "Already",
    "Decided",
    "Done",
    "auto_confirmed_between",
    "back_to_pending",
    "decide",
    "evidence_dates",
    "mention_links",
    "pending_evidence",
    "review_states",
    "select_pending",
    "source_names",
]


# ---------------------------------------------------------------- what waits, and its links


def pending_evidence(
    conn: Conn, commitment_id: int | None = None, limit: int | None = None
) -> list[EvidenceRecord]:
    """Pending evidence rows (of one commitment, when given), newest publication first."""
    return reads.pending(conn, commitment_id, limit)


def mention_links(conn: Conn, rows: Sequence[EvidenceRecord]) -> list[tuple[int, int]]:
    """Pairs of `rows` of one commitment that the recorded mentions tie to one story: a row's
    also-reported-by link is the other row's own link, or both rows list the same link. The
    mentions are read by evidence id (indexed); the pairs are found here, not by a join over the
    whole mention table."""
    by_url = {(e.commitment_id, e.canonical_url): e.id for e in rows}
    commitment = {e.id: e.commitment_id for e in rows}
    listed: dict[tuple[int, str], list[int]] = {}
    links: list[tuple[int, int]] = []
    for chunk in chunks(sorted(commitment)):
        marks, params = in_list("e", chunk)
        for ev_id, url in conn.rows(
            f"SELECT evidence_id, canonical_url FROM mention WHERE evidence_id IN {marks}"
            " ORDER BY id",
            params,
        ):
            key = (commitment[ev_id], url)
            other = by_url.get(key)
            if other is not None and other != ev_id:
                links.append((ev_id, other))
            listed.setdefault(key, []).append(ev_id)
    for ids in listed.values():
        links += [(ids[0], other) for other in ids[1:] if other != ids[0]]
    return links


def review_states(conn: Conn, evidence_ids: list[int]) -> dict[int, tuple[str, str | None, int]]:
    """Each row's review state, who decided it and its revision, as they are now."""
    found: dict[int, tuple[str, str | None, int]] = {}
    for chunk in chunks(sorted(set(evidence_ids))):
        marks, params = in_list("e", chunk)
        for ev_id, state, by, revision in conn.rows(
            f"SELECT id, review, reviewed_by, revision FROM evidence WHERE id IN {marks}", params
        ):
            found[int(ev_id)] = (state, by, int(revision or 0))
    return found


# ---------------------------------------------------------------- batch selection


def source_names(conn: Conn) -> list[str]:
    """Every source name that evidence was recorded from."""
    return [r[0] for r in conn.rows("SELECT DISTINCT source FROM evidence ORDER BY source")]


def select_pending(
    conn: Conn,
    *,
    commitment_id: int | None = None,
    source: str | None = None,
    since: date | None = None,
    match: str | None = None,
) -> list[EvidenceRecord]:
    """Pending evidence for a batch decision, newest first: of one commitment, from one source,
    published on or after a day, whose title or summary contains a text (case-insensitive, any
    script; so the text filter runs here in Python, not as SQL LIKE)."""
    sql = reads._EVIDENCE_SQL + " WHERE e.review = 'pending'"
    params: dict[str, Any] = {}
    if commitment_id is not None:
        sql += " AND e.commitment_id = :c"
        params["c"] = commitment_id
    if source is not None:
        sql += " AND e.source = :s"
        params["s"] = source
    if since is not None:
        sql += " AND e.published_at >= :since"
        params["since"] = conn.time(datetime.combine(since, datetime.min.time()))
    sql += " ORDER BY e.published_at DESC, e.id DESC"
    found = [reads._evidence(r) for r in conn.rows(sql, params)]
    if match:
        needle = match.casefold()
        found = [e for e in found if needle in f"{e.title}\n{e.summary}".casefold()]
    return found


# ---------------------------------------------------------------- one decision and its undo


@dataclass(frozen=True)
class Done:
    """One row a person decided: enough to undo it (what it was before, and its new revision)."""

    evidence_id: int
    decision: str
    revision: int
    milestone: int | None  # as before the decision
    stance: str


@dataclass(frozen=True)
class Already:
    """A row someone else decided before this person's decision arrived."""

    evidence_id: int
    review: str
    by: str | None


@dataclass(frozen=True)
class Decided:
    done: tuple[Done, ...] = ()
    already: tuple[Already, ...] = ()
    changes: tuple[Change, ...] = ()


# An item to decide and the milestone and stance a confirmation gives it.
Pick = tuple[int, int | None, str | None]


def decide(
    conn: Conn,
    evidence_ids: list[int],
    decision: str,
    *,
    milestone: int | None,
    stance: str | None,
    reason: str | None,
    by: str,
    today: date,
    now: datetime,
) -> Decided:
    """Decide every row that is still pending (a story cluster shares one decision); a row
    someone else decided meanwhile is reported, not overwritten. Each row goes through
    `writes.review` (compare-and-set, the review log), in the caller's transaction; the
    statuses are brought up to date once, after all of them."""
    picks = [(ev_id, milestone, stance) for ev_id in evidence_ids]
    return decide_each(conn, picks, decision, reason=reason, by=by, today=today, now=now)


def decide_each(
    conn: Conn,
    picks: Sequence[Pick],
    decision: str,
    *,
    reason: str | None,
    by: str,
    today: date,
    now: datetime,
) -> Decided:
    """`decide` with each row's own milestone and stance (a batch confirming each item's
    suggestion)."""
    done: list[Done] = []
    already: list[Already] = []
    confirm = decision == Review.CONFIRMED
    for ev_id, milestone, stance in picks:
        row = reads.get_evidence(conn, ev_id)
        if row.review != Review.PENDING:
            already.append(Already(ev_id, row.review, row.reviewed_by))
            continue
        outcome = review(
            conn,
            ev_id,
            decision,
            milestone=milestone if confirm else None,
            stance=stance if confirm else None,
            reason=reason,
            by=by,
            today=today,
            now=now,
            sync=False,
        )
        done.append(Done(ev_id, decision, outcome.evidence.revision, row.milestone, row.stance))
    changes = sync_statuses(conn, today, by, now) if done else []
    return Decided(tuple(done), tuple(already), tuple(changes))


def back_to_pending(
    conn: Conn, done: list[Done], *, by: str, today: date, now: datetime
) -> tuple[list[int], list[Change]]:
    """Undo decisions: each row back to pending with the milestone and stance it had, if nobody
    changed it since (compare-and-set on the revision the decision left). The undo is itself a
    logged review (`previous` = the decision, `decision` = pending, reason "undo"). Returns the
    rows undone and the status changes; raises when a row was changed by someone else."""
    undone: list[int] = []
    for d in done:
        changed = conn.run(
            "UPDATE evidence SET review = 'pending', reviewed_by = NULL, reviewed_at = NULL,"
            " review_reason = NULL, milestone = :milestone, stance = :stance, revision = :next"
            " WHERE id = :id AND revision = :revision AND review = :decision",
            {
                "milestone": d.milestone,
                "stance": d.stance,
                "next": d.revision + 1,
                "id": d.evidence_id,
                "revision": d.revision,
                "decision": d.decision,
            },
        )
        if changed != 1:
            who = scalar(
                conn, "SELECT reviewed_by FROM evidence WHERE id = :id", {"id": d.evidence_id}
            )
            raise EnvironmentProblem(
                f"evidence #{d.evidence_id} was changed by {who or 'someone else'} since; "
                "not undone"
            )
        conn.run(
            "INSERT INTO review_event (evidence_id, at, actor, previous, decision, milestone,"
            " stance, reason) VALUES (:id, :at, :by, :previous, 'pending', :milestone, :stance,"
            " 'undo')",
            {
                "id": d.evidence_id,
                "at": conn.time(now),
                "by": by,
                "previous": d.decision,
                "milestone": d.milestone,
                "stance": d.stance,
            },
        )
        undone.append(d.evidence_id)
    return undone, sync_statuses(conn, today, by, now)


# ---------------------------------------------------------------- the weekly report, the timeline


def auto_confirmed_between(
    conn: Conn, start: datetime, cutoff: datetime, limit: int
) -> tuple[list[EvidenceRecord], int]:
    """Evidence a trusted source confirmed by itself (`reviewed_by` 'auto:<source>'), recorded
    in [start, cutoff) and still standing as it entered: the newest, and how many."""
    where = (
        " WHERE e.created_at >= :start AND e.created_at < :cutoff AND e.review = 'confirmed'"
        " AND e.reviewed_by LIKE 'auto:%'"
    )
    params: dict[str, Any] = {"start": conn.time(start), "cutoff": conn.time(cutoff), "n": limit}
    total = int(scalar(conn, "SELECT COUNT(*) FROM evidence e" + where, params))
    found = conn.rows(
        reads._EVIDENCE_SQL + where + " ORDER BY e.published_at DESC, e.id DESC LIMIT :n", params
    )
    return [reads._evidence(r) for r in found], total


def evidence_dates(
    conn: Conn, commitment_id: int, until: datetime | None = None
) -> list[tuple[datetime, str, str]]:
    """(published, review, stance) of every evidence row of a commitment, oldest first: what a
    timeline counts per month (light rows, however much text the evidence holds)."""
    sql = "SELECT published_at, review, stance FROM evidence WHERE commitment_id = :c"
    params: dict[str, Any] = {"c": commitment_id}
    if until is not None:
        sql += " AND published_at < :until"
        params["until"] = conn.time(until)
    result = []
    for published, state, stance in conn.rows(sql + " ORDER BY published_at, id", params):
        when = as_datetime(published)
        assert when is not None
        result.append((when, str(state), str(stance)))
    return result


def check_source(conn: Conn, name: str) -> None:
    """A usage error when no evidence was ever recorded from source `name`."""
    import difflib

    known = source_names(conn)
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"no evidence from a source named '{name}'{hint}")
