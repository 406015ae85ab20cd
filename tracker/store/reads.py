"""Every read of the register, in plain SQL over a `Conn`; records out.

Aggregates are computed in SQL (see `digests`), so the status view costs about the same with a
thousand or a million evidence rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from tracker.errors import UsageError
from tracker.status import CommitmentFacts, Digest, Override, Reached, evaluate
from tracker.store.conn import (
    Conn,
    as_date,
    as_datetime,
    as_optional_date,
    chunks,
    first,
    from_json,
    in_list,
    scalar,
)
from tracker.store.records import (
    AgreementRecord,
    CommitmentRecord,
    EvidenceRecord,
    HealthRecord,
    HistoryRecord,
    MatchSet,
    MentionRecord,
    ReviewEventRecord,
    Row,
)

# ---------------------------------------------------------------- commitments and agreements

_COMMITMENT_SQL = (
    "SELECT c.id, c.slug, c.agreement_id, a.slug, c.position, c.title, c.description, c.quote,"
    " c.parties, c.announced_on, c.deadline, c.stall_days, c.override_status, c.override_reason,"
    " c.override_by, c.override_at, c.revision"
    " FROM commitment c JOIN agreement a ON a.id = c.agreement_id"
)


def _commitment(row: tuple[Any, ...]) -> CommitmentRecord:
    return CommitmentRecord(
        id=row[0],
        slug=row[1],
        agreement_id=row[2],
        agreement_slug=row[3],
        position=row[4],
        title=row[5],
        description=row[6],
        quote=row[7],
        parties=list(from_json(row[8]) or []),
        announced_on=as_date(row[9]),
        deadline=as_optional_date(row[10]),
        stall_days=row[11],
        override_status=row[12],
        override_reason=row[13],
        override_by=row[14],
        override_at=as_datetime(row[15]),
        revision=row[16] or 0,
    )


def commitments(conn: Conn) -> list[CommitmentRecord]:
    return [_commitment(r) for r in conn.rows(_COMMITMENT_SQL + " ORDER BY a.id, c.position, c.id")]


def commitment_slugs(conn: Conn) -> list[str]:
    return [r[0] for r in conn.rows("SELECT slug FROM commitment ORDER BY id")]


def find_commitment(conn: Conn, slug: str) -> CommitmentRecord:
    row = first(conn, _COMMITMENT_SQL + " WHERE c.slug = :slug", {"slug": slug})
    if row is None:
        import difflib  # only for a "did you mean" on a typo

        near = difflib.get_close_matches(slug, commitment_slugs(conn), n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"unknown commitment '{slug}'{hint}")
    return _commitment(row)


def slug_of(conn: Conn, commitment_id: int) -> str:
    return str(
        scalar(conn, "SELECT slug FROM commitment WHERE id = :id", {"id": commitment_id}) or "?"
    )


def agreements(conn: Conn) -> list[AgreementRecord]:
    return [
        AgreementRecord(
            id=r[0],
            slug=r[1],
            title=r[2],
            outlet=r[3] or "",
            url=r[4],
            published_on=as_optional_date(r[5]),
            language=r[6] or "",
            text=r[7] or "",
            summary=r[8] or "",
        )
        for r in conn.rows(
            "SELECT id, slug, title, outlet, url, published_on, language, text, summary"
            " FROM agreement ORDER BY id"
        )
    ]


def agreement_slugs(conn: Conn) -> list[str]:
    return [row[0] for row in conn.rows("SELECT slug FROM agreement ORDER BY id")]


def check_agreement(conn: Conn, agreement: str) -> None:
    known = agreement_slugs(conn)
    if agreement not in known:
        import difflib

        near = difflib.get_close_matches(agreement, known, n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"unknown agreement '{agreement}'{hint}")


def milestones(conn: Conn) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    for cid, title in conn.rows(
        "SELECT commitment_id, title FROM milestone ORDER BY commitment_id, position"
    ):
        result.setdefault(cid, []).append(title)
    return result


def match_set(conn: Conn) -> MatchSet:
    """Each commitment's id, match rules and search queries, and the learned model, for a
    refresh."""
    from tracker.store.training import MODEL_NAME, load_model

    found = MatchSet(model=load_model(conn, MODEL_NAME))
    for cid, slug, rules, queries in conn.rows(
        "SELECT id, slug, rules, queries FROM commitment ORDER BY id"
    ):
        found.ids[slug] = cid
        found.rules[slug] = from_json(rules) or {}
        found.queries[slug] = dict(from_json(queries) or {})
    return found


# ---------------------------------------------------------------- digests and verdicts


def pending_count(
    conn: Conn, commitment_id: int | None = None, until: datetime | None = None
) -> int:
    """Evidence waiting for review (published before `until`, when given)."""
    sql = "SELECT COUNT(*) FROM evidence WHERE review = 'pending'"
    params: dict[str, Any] = {}
    if commitment_id is not None:
        sql += " AND commitment_id = :c"
        params["c"] = commitment_id
    if until is not None:
        sql += " AND published_at < :until"
        params["until"] = conn.time(until)
    return int(scalar(conn, sql, params))


def _digest_counts(conn: Conn, cut: str, params: dict[str, Any]) -> dict[tuple[int, str], int]:
    return {
        (cid, review): n
        for cid, review, n in conn.rows(
            "SELECT x.commitment_id, 'pending', COUNT(*) FROM commitment c CROSS JOIN evidence x"
            f" WHERE x.commitment_id = c.id AND x.review = 'pending'{cut} GROUP BY x.commitment_id"
            " UNION ALL"
            " SELECT x.commitment_id, 'confirmed', COUNT(*) FROM commitment c CROSS JOIN evidence x"
            f" WHERE x.commitment_id = c.id AND x.review = 'confirmed'{cut}"
            " GROUP BY x.commitment_id",
            params,
        )
    }


def _digest_last(conn: Conn, cut: str, params: dict[str, Any]) -> dict[int, date]:
    last: dict[int, date] = {}
    for cid, newest_pending, newest_confirmed in conn.rows(
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
    return last


def _digest_reached(conn: Conn, cut: str, params: dict[str, Any]) -> dict[int, dict[int, Reached]]:
    reached: dict[int, dict[int, Reached]] = {}
    for cid, ms, on, ev_id in conn.rows(
        "SELECT m.commitment_id, m.position, e.published_at, e.id FROM milestone m"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = m.commitment_id AND x.review = 'confirmed'"
        "  AND x.milestone IS NOT NULL AND x.milestone = m.position AND x.stance <> 'setback'"
        f"{cut} ORDER BY x.published_at, x.id LIMIT 1)",
        params,
    ):
        reached.setdefault(cid, {})[ms] = Reached(ms, as_date(on), ev_id)
    return reached


def _digest_latest(
    conn: Conn, cut: str, params: dict[str, Any]
) -> dict[tuple[int, str], tuple[date, int]]:
    """The latest confirmed progress, setback and cancellation of each commitment."""
    latest: dict[tuple[int, str], tuple[date, int]] = {}
    for cid, stance, on, ev_id in conn.rows(
        "SELECT c.id, s.stance, e.published_at, e.id FROM commitment c"
        " CROSS JOIN (SELECT 'progress' AS stance UNION ALL SELECT 'setback') s"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = c.id AND x.review = 'confirmed' AND x.stance = s.stance"
        f"{cut} ORDER BY x.published_at DESC, x.id DESC LIMIT 1)",
        params,
    ):
        latest[(cid, stance)] = (as_date(on), ev_id)
    for cid, on, ev_id in conn.rows(
        "SELECT c.id, e.published_at, e.id FROM commitment c"
        " JOIN evidence e ON e.id = (SELECT x.id FROM evidence x"
        "  WHERE x.commitment_id = c.id AND x.review = 'confirmed' AND x.cancels"
        f"{cut} ORDER BY x.published_at DESC, x.id DESC LIMIT 1)",
        params,
    ):
        latest[(cid, "cancel")] = (as_date(on), ev_id)
    return latest


def digests(conn: Conn, until: datetime | None = None) -> dict[int, Digest]:
    """Per-commitment evidence aggregates; with `until`, as they stood for evidence published
    before that moment (rebuilding past weeks, replaying a day).

    The cost does not grow with rejected evidence, the bulk of an old database: pending and
    confirmed rows are counted per commitment through `ix_evidence_commitment_review` (two
    one-key GROUP BYs; grouping by commitment and review at once sorts, at twice the cost), and
    every first or latest row is one index probe (LIMIT 1) into a small partial index over
    confirmed evidence (see schema.Evidence). `tracker.status.digest` computes the same in Python.
    """
    params: dict[str, Any] = {}
    cut = ""
    if until is not None:
        cut = " AND x.published_at < :until"
        params["until"] = conn.time(until)
    counts = _digest_counts(conn, cut, params)
    last = _digest_last(conn, cut, params)
    reached = _digest_reached(conn, cut, params)
    latest = _digest_latest(conn, cut, params)
    return {
        cid: Digest(
            reached=reached.get(cid, {}),
            last_progress=latest.get((cid, "progress")),
            last_setback=latest.get((cid, "setback")),
            cancelled=latest.get((cid, "cancel")),
            pending=counts.get((cid, "pending"), 0),
            last_evidence=last.get(cid),
            confirmed=counts.get((cid, "confirmed"), 0),
        )
        for cid in set(last) | set(reached)
    }


def facts_of(c: CommitmentRecord, titles: Sequence[str]) -> CommitmentFacts:
    return CommitmentFacts(
        slug=c.slug,
        announced_on=c.announced_on,
        milestones=titles,
        deadline=c.deadline,
        stall_days=c.stall_days,
    )


def override_of(c: CommitmentRecord) -> Override | None:
    if not c.override_status:
        return None
    return Override(
        status=c.override_status,
        reason=c.override_reason or "",
        by=c.override_by or "unknown",
        on=(c.override_at or datetime(1970, 1, 1)).date(),
    )


def end_of(day: date) -> datetime:
    """The first moment after `day` (UTC): evidence published before it is that day's past."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def rows(
    conn: Conn,
    today: date,
    *,
    slugs: Iterable[str] | None = None,
    agreement: str | None = None,
    status: str | None = None,
) -> list[Row]:
    """Every commitment (or a filtered set) with its digest and verdict for `today`, counting only
    evidence published by the end of that day (a replayed day sees only its own past)."""
    if agreement is not None:
        check_agreement(conn, agreement)
    found = commitments(conn)
    if agreement is not None:
        found = [c for c in found if c.agreement_slug == agreement]
    if slugs is not None:
        wanted = set(slugs)
        found = [c for c in found if c.slug in wanted]
    ms = milestones(conn)
    dg = digests(conn, end_of(today))
    result = []
    for c in found:
        titles = ms.get(c.id, [])
        d = dg.get(c.id, Digest())
        verdict = evaluate(facts_of(c, titles), d, today, override_of(c))
        if status is None or verdict.status == status:
            result.append(Row(c, c.agreement_slug, titles, d, verdict))
    return result


def row(conn: Conn, today: date, slug: str) -> Row:
    find_commitment(conn, slug)
    return rows(conn, today, slugs=[slug])[0]


def last_statuses(conn: Conn) -> dict[int, str]:
    return {
        cid: st
        for cid, st in conn.rows(
            "SELECT h.commitment_id, h.new_status FROM status_history h JOIN ("
            " SELECT commitment_id, MAX(id) AS id FROM status_history GROUP BY commitment_id"
            ") last ON last.id = h.id"
        )
    }


def statuses_until(conn: Conn, cutoff: datetime) -> dict[int, str]:
    """Each commitment's last recorded status before `cutoff` (history rows may be replayed out
    of id order, hence ordering by time first)."""
    return {
        cid: status
        for cid, status in conn.rows(
            "SELECT commitment_id, new_status FROM ("
            " SELECT commitment_id, new_status, row_number() OVER ("
            "  PARTITION BY commitment_id ORDER BY at DESC, id DESC) AS rn"
            " FROM status_history WHERE at < :cutoff) ranked WHERE rn = 1",
            {"cutoff": conn.time(cutoff)},
        )
    }


# ---------------------------------------------------------------- history


def _history(row: tuple[Any, ...]) -> HistoryRecord:
    at = as_datetime(row[2])
    assert at is not None
    return HistoryRecord(row[0], row[1], at, row[3], row[4], row[5], row[6], row[7] or "")


_HISTORY_SQL = (
    "SELECT id, commitment_id, at, old_status, new_status, kind, actor, reason FROM status_history"
)


def history(conn: Conn, commitment_id: int, until: datetime | None = None) -> list[HistoryRecord]:
    """A commitment's status history (recorded before `until`, when given)."""
    sql = _HISTORY_SQL + " WHERE commitment_id = :c"
    params: dict[str, Any] = {"c": commitment_id}
    if until is not None:
        sql += " AND at < :until"
        params["until"] = conn.time(until)
    return [_history(r) for r in conn.rows(sql + " ORDER BY id", params)]


def all_history(conn: Conn, until: datetime | None = None) -> list[HistoryRecord]:
    if until is None:
        return [_history(r) for r in conn.rows(_HISTORY_SQL + " ORDER BY id")]
    sql = _HISTORY_SQL + " WHERE at < :until ORDER BY id"
    return [_history(r) for r in conn.rows(sql, {"until": conn.time(until)})]


def history_between(
    conn: Conn,
    start: datetime,
    cutoff: datetime,
    *,
    kind: str | None = None,
    actor: str | None = None,
) -> list[tuple[HistoryRecord, str, str]]:
    """History rows recorded in [start, cutoff), with each commitment's slug and title."""
    sql = (
        "SELECT h.id, h.commitment_id, h.at, h.old_status, h.new_status, h.kind, h.actor,"
        " h.reason, c.slug, c.title FROM status_history h"
        " JOIN commitment c ON c.id = h.commitment_id"
        " WHERE h.at >= :start AND h.at < :cutoff"
    )
    params: dict[str, Any] = {"start": conn.time(start), "cutoff": conn.time(cutoff)}
    if kind is not None:
        sql += " AND h.kind = :kind"
        params["kind"] = kind
    if actor is not None:
        sql += " AND h.actor = :actor"
        params["actor"] = actor
    return [(_history(r[:8]), r[8], r[9]) for r in conn.rows(sql + " ORDER BY h.at, h.id", params)]


# ---------------------------------------------------------------- evidence

_EVIDENCE_COLUMNS = (
    "e.id, e.commitment_id, e.url, e.canonical_url, e.title, e.summary, e.title_key,"
    " e.published_at, e.source, e.publisher, e.language, e.country, e.stance, e.milestone,"
    " e.review, e.review_reason, e.reviewed_by, e.reviewed_at, e.cancels, e.matched_terms,"
    " e.score, e.note, e.created_at, e.revision, c.slug, e.cite, e.date_precision,"
    " e.suggested_milestone, e.suggested_stance, e.reasons"
)
_EVIDENCE_SQL = (
    f"SELECT {_EVIDENCE_COLUMNS} FROM evidence e JOIN commitment c ON c.id = e.commitment_id"
)


def _evidence(r: tuple[Any, ...]) -> EvidenceRecord:
    published, created = as_datetime(r[7]), as_datetime(r[22])
    assert published is not None and created is not None
    return EvidenceRecord(
        id=r[0],
        commitment_id=r[1],
        url=r[2],
        canonical_url=r[3],
        title=r[4],
        summary=r[5] or "",
        title_key=r[6] or "",
        published_at=published,
        source=r[8],
        publisher=r[9],
        language=r[10] or "",
        country=r[11],
        stance=r[12],
        milestone=r[13],
        review=r[14],
        review_reason=r[15],
        reviewed_by=r[16],
        reviewed_at=as_datetime(r[17]),
        cancels=bool(r[18]),
        matched_terms=list(from_json(r[19]) or []),
        score=float(r[20] or 0.0),
        note=r[21],
        created_at=created,
        revision=r[23] or 0,
        commitment_slug=r[24],
        cite=r[25],
        date_precision=r[26] or "day",
        suggested_milestone=r[27],
        suggested_stance=r[28],
        reasons=list(from_json(r[29]) or []),
    )


def evidence_of(
    conn: Conn, commitment_id: int, limit: int | None = None, until: datetime | None = None
) -> list[EvidenceRecord]:
    """A commitment's evidence, newest publication first (published before `until`, if given)."""
    sql = _EVIDENCE_SQL + " WHERE e.commitment_id = :c"
    params: dict[str, Any] = {"c": commitment_id}
    if until is not None:
        sql += " AND e.published_at < :until"
        params["until"] = conn.time(until)
    sql += " ORDER BY e.published_at DESC, e.id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return [_evidence(r) for r in conn.rows(sql, params)]


def count_evidence(conn: Conn, commitment_id: int, until: datetime | None = None) -> int:
    sql = "SELECT COUNT(*) FROM evidence WHERE commitment_id = :c"
    params: dict[str, Any] = {"c": commitment_id}
    if until is not None:
        sql += " AND published_at < :until"
        params["until"] = conn.time(until)
    return int(scalar(conn, sql, params))


def all_evidence(conn: Conn, until: datetime | None = None) -> list[EvidenceRecord]:
    """Every evidence row (published before `until`, when given): by commitment, newest
    publication first (the export's order)."""
    sql, params = _EVIDENCE_SQL, {}
    if until is not None:
        sql += " WHERE e.published_at < :until"
        params["until"] = conn.time(until)
    sql += " ORDER BY e.commitment_id, e.published_at DESC, e.id DESC"
    return [_evidence(r) for r in conn.rows(sql, params)]


def evidence_for_csv(conn: Conn, until: datetime | None = None) -> list[EvidenceRecord]:
    sql, params = _EVIDENCE_SQL, {}
    if until is not None:
        sql += " WHERE e.published_at < :until"
        params["until"] = conn.time(until)
    sql += " ORDER BY c.position, e.published_at DESC, e.id"
    return [_evidence(r) for r in conn.rows(sql, params)]


def get_evidence(conn: Conn, evidence_id: int) -> EvidenceRecord:
    row = first(conn, _EVIDENCE_SQL + " WHERE e.id = :id", {"id": evidence_id})
    if row is None:
        raise UsageError(
            f"no evidence with id {evidence_id} (see 'tracker review' for pending ones)"
        )
    return _evidence(row)


def pending(
    conn: Conn, commitment_id: int | None = None, limit: int | None = None
) -> list[EvidenceRecord]:
    sql = _EVIDENCE_SQL + " WHERE e.review = 'pending'"
    params: dict[str, Any] = {}
    if commitment_id is not None:
        sql += " AND e.commitment_id = :c"
        params["c"] = commitment_id
    sql += " ORDER BY e.published_at DESC, e.id DESC"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return [_evidence(r) for r in conn.rows(sql, params)]


def pending_until(conn: Conn, cutoff: datetime, limit: int) -> tuple[list[EvidenceRecord], int]:
    """Evidence that was waiting for review at `cutoff`: recorded (and published) before it, and
    not reviewed before it. The newest, and how many."""
    # Two index-friendly halves instead of one OR: still pending now, and reviewed since.
    params: dict[str, Any] = {"cutoff": conn.time(cutoff), "limit": limit}
    before = " AND e.published_at < :cutoff AND e.created_at < :cutoff"
    halves = (  # (curated evidence is never pending; it is the starting record)
        " WHERE e.review = 'pending'" + before,
        " WHERE e.reviewed_at >= :cutoff AND e.review <> 'pending'"
        + before
        + " AND e.source <> 'curated'",
    )
    total = sum(int(scalar(conn, "SELECT COUNT(*) FROM evidence e" + w, params)) for w in halves)
    found = [
        _evidence(r)
        for w in halves
        for r in conn.rows(
            _EVIDENCE_SQL + w + " ORDER BY e.published_at DESC, e.id DESC LIMIT :limit", params
        )
    ]
    found.sort(key=lambda e: (e.published_at, e.id), reverse=True)
    return found[:limit], total


def recorded_between(
    conn: Conn, start: datetime, cutoff: datetime, per_commitment: int
) -> tuple[list[EvidenceRecord], dict[str, int]]:
    """Evidence recorded (created) in [start, cutoff), rejected left out: the newest few per
    commitment by publication date, and every commitment's count."""
    params = {"start": conn.time(start), "cutoff": conn.time(cutoff), "per": per_commitment}
    # The catalog's curated evidence is the starting record, not news of the week it was loaded.
    in_week = (
        "e.created_at >= :start AND e.created_at < :cutoff AND e.review <> 'rejected'"
        " AND e.source <> 'curated'"
    )
    counts = {
        slug: int(n)
        for slug, n in conn.rows(
            "SELECT c.slug, COUNT(*) FROM evidence e JOIN commitment c ON c.id = e.commitment_id"
            f" WHERE {in_week} GROUP BY c.slug",
            params,
        )
    }
    found = conn.rows(
        _EVIDENCE_SQL + " JOIN (SELECT e.id AS rid, row_number() OVER ("
        " PARTITION BY e.commitment_id ORDER BY e.published_at DESC, e.id DESC) AS rn"
        f" FROM evidence e WHERE {in_week}) ranked ON ranked.rid = e.id"
        " WHERE ranked.rn <= :per ORDER BY e.commitment_id, e.published_at DESC, e.id DESC",
        params,
    )
    return [_evidence(r) for r in found], counts


def mentions_of(
    conn: Conn, evidence_ids: Iterable[int] | None = None
) -> dict[int, list[MentionRecord]]:
    """Other outlets carrying each evidence row's story (all when `evidence_ids` is None)."""
    sql = "SELECT evidence_id, url, source, publisher, country, published_at FROM mention"
    result: dict[int, list[MentionRecord]] = {}

    def add(found: list[tuple[Any, ...]]) -> None:
        for ev_id, url, source, publisher, country, published in found:
            result.setdefault(ev_id, []).append(
                MentionRecord(ev_id, url, source, publisher, country, as_datetime(published))
            )

    if evidence_ids is None:
        add(conn.rows(sql + " ORDER BY id"))
        return result
    for chunk in chunks(sorted(set(evidence_ids))):
        marks, params = in_list("e", chunk)
        add(conn.rows(sql + f" WHERE evidence_id IN {marks} ORDER BY id", params))
    return result


def review_events(conn: Conn) -> dict[int, list[ReviewEventRecord]]:
    result: dict[int, list[ReviewEventRecord]] = {}
    for ev_id, at, actor, previous, decision, ms, stance, reason in conn.rows(
        "SELECT evidence_id, at, actor, previous, decision, milestone, stance, reason"
        " FROM review_event ORDER BY id"
    ):
        when = as_datetime(at)
        assert when is not None
        result.setdefault(ev_id, []).append(
            ReviewEventRecord(ev_id, when, actor, previous, decision, ms, stance, reason)
        )
    return result


# ---------------------------------------------------------------- sources

_HEALTH_COLUMNS = (
    "name, kind, country, last_attempt, last_success, last_state, consecutive_failures,"
    " failing_since, last_error, items_seen, new_evidence, total_evidence, etag, last_modified,"
    " fingerprint, snapshot, next_due, skipped, rate_limit_remaining"
)


def _health(r: tuple[Any, ...]) -> HealthRecord:
    return HealthRecord(
        name=r[0],
        kind=r[1] or "",
        country=r[2],
        last_attempt=as_datetime(r[3]),
        last_success=as_datetime(r[4]),
        last_state=r[5],
        consecutive_failures=r[6] or 0,
        failing_since=as_datetime(r[7]),
        last_error=r[8],
        items_seen=r[9] or 0,
        new_evidence=r[10] or 0,
        total_evidence=r[11] or 0,
        etag=r[12],
        last_modified=r[13],
        fingerprint=r[14],
        snapshot=r[15],
        next_due=as_datetime(r[16]),
        skipped={str(k): int(v) for k, v in (from_json(r[17]) or {}).items()},
        rate_limit_remaining=r[18],
    )


def health(conn: Conn, names: Sequence[str] | None = None) -> dict[str, HealthRecord]:
    """Recorded health per source name (all sources when `names` is None)."""
    sql = f"SELECT {_HEALTH_COLUMNS} FROM source_health"
    if names is None:
        return {h.name: h for h in map(_health, conn.rows(sql + " ORDER BY name"))}
    result: dict[str, HealthRecord] = {}
    for chunk in chunks(sorted(set(names))):
        marks, params = in_list("n", chunk)
        for r in conn.rows(sql + f" WHERE name IN {marks} ORDER BY name", params):
            h = _health(r)
            result[h.name] = h
    return result
