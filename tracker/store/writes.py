"""Every change to the register, in plain SQL over a `Conn` inside the caller's transaction.

Evidence rows are built in one place (`evidence_params`), whoever records them: a refresh, a person
(`evidence add`) or the catalog (curated evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from tracker.errors import EnvironmentProblem, UsageError
from tracker.store import reads
from tracker.store.conn import Conn, chunks, in_list, scalar
from tracker.store.records import Change, HealthRecord, NewEvidence, ReviewOutcome
from tracker.store.serialise import status_lock
from tracker.text import clean_stored
from tracker.vocab import HistoryKind, Review

if TYPE_CHECKING:
    from tracker.catalog import AgreementSpec, CommitmentSpec, CuratedEvidence

SYNDICATION_WINDOW = timedelta(days=3)


# ---------------------------------------------------------------- one way to build evidence


_EVIDENCE_INSERT = (
    "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key,"
    " published_at, source, publisher, language, country, stance, milestone, review,"
    " review_reason, reviewed_by, reviewed_at, cancels, matched_terms, score, note, created_at,"
    " revision, cite, date_precision, suggested_milestone, suggested_stance, reasons)"
    " VALUES (:commitment_id, :url, :canonical_url, :title, :summary, :title_key,"
    " :published_at, :source, :publisher, :language, :country, :stance, :milestone, :review,"
    " NULL, :reviewed_by, :reviewed_at, :cancels, :matched_terms, :score, :note, :created_at, 0,"
    " :cite, :date_precision, :suggested_milestone, :suggested_stance, :reasons)"
)


def evidence_params(conn: Conn, ev: NewEvidence) -> dict[str, Any]:
    """The row's column values, cleaned and bounded like everything we store from outside."""
    return {
        "commitment_id": ev.commitment_id,
        "url": ev.url,
        "canonical_url": ev.canonical_url,
        "title": clean_stored(ev.title or ev.url, 1000),
        "summary": clean_stored(ev.summary, 5000),
        "title_key": ev.title_key,
        "published_at": conn.time(ev.published_at),
        "source": ev.source,
        "publisher": clean_stored(ev.publisher, 200) if ev.publisher else None,
        "language": ev.language,
        "country": ev.country,
        "stance": str(ev.stance),
        "milestone": ev.milestone,
        "review": str(ev.review),
        "reviewed_by": ev.reviewed_by,
        "reviewed_at": conn.time(ev.reviewed_at),
        "cancels": bool(ev.cancels),
        "matched_terms": conn.json([clean_stored(t, 200) for t in ev.matched_terms]),
        "score": float(ev.score),
        "note": clean_stored(ev.note, 5000) if ev.note else None,
        "created_at": conn.time(ev.created_at),
        "cite": clean_stored(ev.cite, 1000) if ev.cite else None,
        "date_precision": ev.date_precision,
        "suggested_milestone": ev.suggested_milestone,
        "suggested_stance": str(ev.suggested_stance) if ev.suggested_stance else None,
        "reasons": conn.json([clean_stored(r, 300) for r in ev.reasons]),
    }


def insert_evidence(conn: Conn, ev: NewEvidence) -> int:
    return conn.insert(_EVIDENCE_INSERT, evidence_params(conn, ev))


# ---------------------------------------------------------------- statuses and history


def _insert_history(
    conn: Conn,
    commitment_id: int,
    at: datetime,
    old: str | None,
    new: str,
    kind: str,
    actor: str,
    reason: str,
) -> None:
    conn.run(
        "INSERT INTO status_history (commitment_id, at, old_status, new_status, kind, actor,"
        " reason) VALUES (:c, :at, :old, :new, :kind, :actor, :reason)",
        {
            "c": commitment_id,
            "at": conn.time(at),
            "old": old,
            "new": new,
            "kind": kind,
            "actor": actor,
            "reason": reason,
        },
    )


def sync_statuses(conn: Conn, today: date, by: str, now: datetime) -> list[Change]:
    """Append a history row for every commitment whose status differs from its last recorded one.

    A replay (`by == "replay"`) stamps the rows with the replayed day instead of the clock.
    """
    status_lock(conn)  # two reviewers at once on PostgreSQL append one after the other
    previous = reads.last_statuses(conn)
    at = datetime.combine(today, time()) if by == "replay" else now
    changes = []
    for row in reads.rows(conn, today):
        cid = row.commitment.id
        old = previous.get(cid)
        if old == row.verdict.status:
            continue
        _insert_history(
            conn,
            cid,
            at,
            old,
            row.verdict.status,
            HistoryKind.COMPUTED,
            by,
            row.verdict.explanation,
        )
        changes.append(
            Change(row.commitment.slug, old, row.verdict.status, row.verdict.explanation)
        )
    return changes


def set_status(
    conn: Conn,
    slug: str,
    status: str | None,
    *,
    reason: str | None,
    by: str,
    today: date,
    now: datetime,
) -> tuple[str, str]:
    """Override a commitment's status with a reason, or clear the override (status None)."""
    status_lock(conn)
    commitment = reads.find_commitment(conn, slug)
    if status is not None and (not reason or not reason.strip()):
        raise UsageError("a reason is required: --reason TEXT")
    before = reads.row(conn, today, slug).verdict.status
    if status is None and commitment.override_status is None:
        return before, before  # nothing to clear: no change, so no history row
    changed = conn.run(
        "UPDATE commitment SET override_status = :status, override_reason = :reason,"
        " override_by = :by, override_at = :at, revision = :next"
        " WHERE id = :id AND revision = :revision",
        {
            "status": status,
            "reason": clean_stored(reason.strip(), 2000) if (status and reason) else None,
            "by": by if status else None,
            "at": conn.time(now) if status else None,
            "next": commitment.revision + 1,
            "id": commitment.id,
            "revision": commitment.revision,
        },
    )
    if changed != 1:
        raise EnvironmentProblem(
            f"'{slug}' was changed by someone else meanwhile; look again and retry"
        )
    after = reads.row(conn, today, slug).verdict
    _insert_history(
        conn,
        commitment.id,
        now,
        before,
        after.status,
        HistoryKind.OVERRIDE if status else HistoryKind.CLEAR,
        by,
        (reason or "").strip() if status else f"override cleared; {after.explanation}",
    )
    return before, after.status


# ---------------------------------------------------------------- reviews


def check_milestone(conn: Conn, commitment_id: int, slug: str, milestone: int | None) -> None:
    if milestone is None:
        return
    total = int(
        scalar(
            conn, "SELECT COUNT(*) FROM milestone WHERE commitment_id = :c", {"c": commitment_id}
        )
    )
    if not 1 <= milestone <= total:
        raise UsageError(f"milestone must be between 1 and {total} for '{slug}', got {milestone}")


def review(
    conn: Conn,
    evidence_id: int,
    decision: str,
    *,
    milestone: int | None = None,
    stance: str | None = None,
    reason: str | None = None,
    by: str,
    today: date,
    now: datetime,
    sync: bool = True,
) -> ReviewOutcome:
    """Confirm or reject one evidence item. Rejected items stay as tombstones. `sync=False`
    leaves the statuses to the caller, who decides several items and syncs them once."""
    if decision not in (Review.CONFIRMED, Review.REJECTED):
        raise UsageError(f"unknown decision {decision!r}")
    row = reads.get_evidence(conn, evidence_id)
    check_milestone(conn, row.commitment_id, row.commitment_slug, milestone)
    why = clean_stored(reason, 2000) if reason else None
    sets = [
        "review = :decision",
        "reviewed_by = :by",
        "reviewed_at = :at",
        "revision = :next",
        "review_reason = :reason",
    ]
    params: dict[str, Any] = {
        "decision": decision,
        "by": by,
        "at": conn.time(now),
        "next": row.revision + 1,
        "reason": why,
        "id": evidence_id,
        "revision": row.revision,
    }
    if milestone is not None:
        sets.append("milestone = :milestone")
        params["milestone"] = milestone
    if stance is not None:
        sets.append("stance = :stance")
        params["stance"] = stance
    # Compare-and-set on the revision: a concurrent reviewer's change is never silently lost.
    changed = conn.run(
        f"UPDATE evidence SET {', '.join(sets)} WHERE id = :id AND revision = :revision", params
    )
    if changed != 1:
        raise EnvironmentProblem(
            f"evidence #{evidence_id} was changed by someone else meanwhile; look again and retry"
        )
    conn.run(
        "INSERT INTO review_event (evidence_id, at, actor, previous, decision, milestone, stance,"
        " reason) VALUES (:id, :at, :by, :previous, :decision, :milestone, :stance, :reason)",
        {
            "id": evidence_id,
            "at": conn.time(now),
            "by": by,
            "previous": row.review,
            "decision": decision,
            "milestone": milestone,
            "stance": stance,
            "reason": why,
        },
    )
    after = reads.get_evidence(conn, evidence_id)
    changes = sync_statuses(conn, today, by, now) if sync else []
    return ReviewOutcome(after, row.review, row.reviewed_by, changes, row.commitment_slug)


def add_evidence(
    conn: Conn, ev: NewEvidence, *, slug: str, today: date, now: datetime
) -> tuple[int, list[Change]]:
    """Evidence recorded by a person (confirmed at once); refused when the URL is already known."""
    check_milestone(conn, ev.commitment_id, slug, ev.milestone)
    clash = conn.rows(
        "SELECT id, review FROM evidence WHERE commitment_id = :c AND canonical_url = :u",
        {"c": ev.commitment_id, "u": ev.canonical_url},
    )
    if clash:
        clash_id, clash_review = clash[0]
        raise UsageError(
            f"evidence #{clash_id} already records this URL for '{slug}' "
            f"({clash_review}); use 'tracker review confirm {clash_id}' to change it"
        )
    evidence_id = insert_evidence(conn, ev)
    return evidence_id, sync_statuses(conn, today, ev.reviewed_by or "unknown", now)


# ---------------------------------------------------------------- what a refresh found


DUPLICATE = "already recorded"
REJECTED_EARLIER = "rejected earlier"


class Stored(msgspec.Struct):
    """What storing one source's findings did."""

    new: dict[int, int] = msgspec.field(default_factory=dict)  # commitment id -> new evidence rows
    mentions: int = 0
    skipped: dict[str, int] = msgspec.field(default_factory=dict)  # not stored, by reason

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _existing_urls(conn: Conn, urls: set[str]) -> dict[tuple[int, str], str]:
    """(commitment id, canonical URL) of the rows already stored for `urls` → their review."""
    found: dict[tuple[int, str], str] = {}
    for chunk in chunks(sorted(urls)):
        marks, params = in_list("u", chunk)
        for cid, url, review in conn.rows(
            "SELECT commitment_id, canonical_url, review FROM evidence"
            f" WHERE canonical_url IN {marks}",
            params,
        ):
            found[(cid, url)] = review
    return found


def _existing_mentions(conn: Conn, urls: set[str]) -> set[tuple[int, int, str]]:
    """(commitment id, evidence id, canonical URL) of the mentions already stored for `urls`."""
    found: set[tuple[int, int, str]] = set()
    for chunk in chunks(sorted(urls)):
        marks, params = in_list("u", chunk)
        found.update(
            (cid, ev_id, url)
            for cid, ev_id, url in conn.rows(
                "SELECT e.commitment_id, m.evidence_id, m.canonical_url FROM mention m"
                f" JOIN evidence e ON e.id = m.evidence_id WHERE m.canonical_url IN {marks}",
                params,
            )
        )
    return found


def _existing_titles(
    conn: Conn, keys: set[str]
) -> dict[tuple[int, str], list[tuple[int, datetime]]]:
    from tracker.store.conn import as_datetime

    found: dict[tuple[int, str], list[tuple[int, datetime]]] = {}
    for chunk in chunks(sorted(keys)):
        marks, params = in_list("k", chunk)
        for cid, key, ev_id, published in conn.rows(
            "SELECT commitment_id, title_key, id, published_at FROM evidence"
            f" WHERE title_key IN {marks}",
            params,
        ):
            when = as_datetime(published)
            assert when is not None
            found.setdefault((cid, key), []).append((ev_id, when))
    return found


def _twin(rows: list[tuple[int, datetime]], published: datetime) -> int | None:
    for ev_id, other in rows:
        if abs(other - published) <= SYNDICATION_WINDOW:
            return ev_id
    return None


_MENTION_INSERT = (
    "INSERT INTO mention (evidence_id, url, canonical_url, source, publisher, country,"
    " published_at) VALUES (:evidence_id, :url, :canonical_url, :source, :publisher, :country,"
    " :published_at)"
)


def store_found(conn: Conn, found: Sequence[NewEvidence]) -> Stored:
    """Store one source's matched items (see `store_sources`)."""
    return store_sources(conn, [found])[0]


def store_sources(conn: Conn, sources: Sequence[Sequence[NewEvidence]]) -> list[Stored]:
    """Store several sources' matched items, in order, as storing each in turn would: one row per
    commitment and canonical URL.

    An item whose URL is already known for that commitment (pending, confirmed, rejected, or a
    mention, or an earlier item of the call) adds nothing, so a rejected item never comes back.
    The same story under another URL (same normalised title within SYNDICATION_WINDOW) becomes a
    mention of the existing row, a stored one first. Lookups are one query per kind for the whole
    call (a stored row found by a later source in its own call would have been found here in the
    call's own rows); new rows and mentions go in as one statement each, in the order storing
    the sources one by one would give them.
    """
    stored = [Stored() for _ in sources]
    found = [(k, ev) for k, items in enumerate(sources) for ev in items]
    if not found:
        return stored
    canonicals = {ev.canonical_url for _, ev in found}
    known = _existing_urls(conn, canonicals)
    existing = set(known)
    # A URL already recorded as another row's mention is known too: seeing the syndicated copy
    # again next hour must neither add a second mention nor turn it into evidence of its own.
    mentioned = _existing_mentions(conn, canonicals)
    existing |= {(cid, url) for cid, _, url in mentioned}
    mentioned_pairs = {(ev_id, url) for _, ev_id, url in mentioned}
    by_title = _existing_titles(conn, {ev.title_key for _, ev in found if ev.title_key})
    # New rows get their ids only once inserted: an in-call twin is remembered by its index.
    new_rows: list[tuple[int, NewEvidence]] = []
    mentions: list[tuple[int, int | None, int | None, NewEvidence]] = []  # (source, id, index, …)
    batch_titles: dict[tuple[int, str], list[tuple[int, datetime]]] = {}
    for k, ev in found:
        key = (ev.commitment_id, ev.canonical_url)
        if key in existing:
            stored[k].skip(REJECTED_EARLIER if known.get(key) == "rejected" else DUPLICATE)
            continue
        existing.add(key)
        if ev.title_key:
            twin = _twin(by_title.get((ev.commitment_id, ev.title_key), []), ev.published_at)
            batch_twin = _twin(
                batch_titles.get((ev.commitment_id, ev.title_key), []), ev.published_at
            )
            if twin is not None or batch_twin is not None:
                if twin is not None and (twin, ev.canonical_url) in mentioned_pairs:
                    stored[k].skip(DUPLICATE)
                    continue
                if twin is not None:
                    mentioned_pairs.add((twin, ev.canonical_url))
                mentions.append((k, twin, batch_twin if twin is None else None, ev))
                stored[k].mentions += 1
                continue
            batch_titles.setdefault((ev.commitment_id, ev.title_key), []).append(
                (len(new_rows), ev.published_at)
            )
        new_rows.append((k, ev))
        stored[k].new[ev.commitment_id] = stored[k].new.get(ev.commitment_id, 0) + 1
    _insert(conn, len(sources), new_rows, mentions)
    return stored


def _insert(
    conn: Conn,
    sources: int,
    new_rows: Sequence[tuple[int, NewEvidence]],
    mentions: Sequence[tuple[int, int | None, int | None, NewEvidence]],
) -> None:
    """Insert the new rows (in order), then each source's links of other outlets and its
    mentions, source by source; a mention names a stored row's id or a new row's index."""
    ids: list[int] = []
    needs_ids = any(index is not None for _, _, index, _ in mentions) or any(
        ev.also_reported_by for _, ev in new_rows
    )
    if new_rows:
        if needs_ids:
            ids = [insert_evidence(conn, ev) for _, ev in new_rows]
        else:
            conn.many(_EVIDENCE_INSERT, [evidence_params(conn, ev) for _, ev in new_rows])
    rows_of: dict[int, list[tuple[NewEvidence, int]]] = {}
    for (k, ev), ev_id in zip(new_rows, ids, strict=False):
        rows_of.setdefault(k, []).append((ev, ev_id))
    mentions_of: dict[int, list[dict[str, Any]]] = {}
    for k, evidence_id, index, ev in mentions:
        mentions_of.setdefault(k, []).append(
            {
                "evidence_id": evidence_id if evidence_id is not None else ids[index or 0],
                "url": ev.url,
                "canonical_url": ev.canonical_url,
                "source": ev.source,
                "publisher": clean_stored(ev.publisher, 200) if ev.publisher else None,
                "country": ev.country,
                "published_at": conn.time(ev.published_at),
            }
        )
    params: list[dict[str, Any]] = []
    for k in range(sources):
        params += _also_reported(conn, rows_of.get(k, []))
        params += mentions_of.get(k, [])
    if params:
        conn.many(_MENTION_INSERT, params)


def _also_reported(conn: Conn, rows: Sequence[tuple[NewEvidence, int]]) -> list[dict[str, Any]]:
    """The mentions of other outlets' links a source gave with a story (a news cluster)."""
    from tracker.urls import canonical_url

    params = []
    for ev, ev_id in rows:
        seen = {ev.canonical_url}
        for url, publisher in ev.also_reported_by[:50]:
            key = canonical_url(url)
            if key in seen:
                continue
            seen.add(key)
            params.append(
                {
                    "evidence_id": ev_id,
                    "url": url,
                    "canonical_url": key,
                    "source": ev.source,
                    "publisher": clean_stored(publisher, 200) if publisher else None,
                    "country": None,
                    "published_at": conn.time(ev.published_at),
                }
            )
    return params


# ---------------------------------------------------------------- source health and runs


class HealthUpdate(msgspec.Struct, frozen=True):
    """What one refresh learned about one source."""

    name: str
    kind: str
    country: str | None
    state: str | None  # ok | unchanged | failed | disabled; None: only kind/country change
    reason: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fingerprint: str | None = None
    snapshot: str | None = None
    items: int | None = None  # None: leave the counts as they are
    new: int = 0
    every: timedelta | None = None
    retry_after: float | None = None
    skipped: dict[str, int] | None = None  # None: leave as recorded
    rate_limit_remaining: int | None = None


_HEALTH_FIELDS = (
    "name",
    "kind",
    "country",
    "last_attempt",
    "last_success",
    "last_state",
    "consecutive_failures",
    "failing_since",
    "last_error",
    "items_seen",
    "new_evidence",
    "total_evidence",
    "etag",
    "last_modified",
    "fingerprint",
    "snapshot",
    "next_due",
    "skipped",
    "rate_limit_remaining",
)
_TIME_FIELDS = {"last_attempt", "last_success", "failing_since", "next_due"}


def _updated(h: HealthRecord, u: HealthUpdate, now: datetime) -> HealthRecord:
    h = msgspec.structs.replace(h, kind=u.kind, country=u.country)
    if u.state is None:
        return h
    values: dict[str, Any] = {"last_attempt": now, "last_state": u.state}
    if u.state in ("ok", "unchanged"):
        values.update(
            last_success=now,
            consecutive_failures=0,
            failing_since=None,
            last_error=None,
            etag=u.etag,
            last_modified=u.last_modified,
        )
        if u.fingerprint is not None:
            values["fingerprint"] = u.fingerprint
        if u.snapshot is not None:
            values["snapshot"] = clean_stored(u.snapshot, 200_000)
    elif u.state == "failed":
        values.update(
            consecutive_failures=h.consecutive_failures + 1,
            failing_since=h.failing_since or now,
            last_error=clean_stored(u.reason or "failed", 500),
        )
    elif u.state == "disabled":
        values["last_error"] = clean_stored(u.reason or "disabled", 500)
    if u.items is not None:
        values.update(
            items_seen=u.items, new_evidence=u.new, total_evidence=h.total_evidence + u.new
        )
    if u.skipped is not None:
        values["skipped"] = dict(u.skipped)
    if u.rate_limit_remaining is not None:
        values["rate_limit_remaining"] = u.rate_limit_remaining
    if u.every is not None and u.state != "disabled":
        retry = timedelta(seconds=u.retry_after) if u.retry_after else timedelta(0)
        values["next_due"] = now + max(u.every, retry)
    elif u.retry_after:
        values["next_due"] = now + timedelta(seconds=u.retry_after)
    else:
        values["next_due"] = None
    return msgspec.structs.replace(h, **values)


def record_health(
    conn: Conn, updates: Sequence[HealthUpdate], now: datetime
) -> list[tuple[HealthRecord, int]]:
    """Apply each update to its source's health row, all in one statement; returns each source's
    new health and its failure count before this run, in the order given."""
    if not updates:
        return []
    known = reads.health(conn, [u.name for u in updates])
    result = []
    params = []
    for u in updates:
        before = known.get(u.name) or HealthRecord(name=u.name)
        after = _updated(before, u, now)
        known[u.name] = after
        result.append((after, before.consecutive_failures))
    for h in {u.name: known[u.name] for u in updates}.values():
        values = {f: getattr(h, f) for f in _HEALTH_FIELDS}
        for f in _TIME_FIELDS:
            values[f] = conn.time(values[f])
        values["skipped"] = conn.json(values["skipped"])
        params.append(values)
    columns = ", ".join(_HEALTH_FIELDS)
    marks = ", ".join(f":{f}" for f in _HEALTH_FIELDS)
    updates_sql = ", ".join(f"{f} = excluded.{f}" for f in _HEALTH_FIELDS if f != "name")
    conn.many(
        f"INSERT INTO source_health ({columns}) VALUES ({marks})"
        f" ON CONFLICT (name) DO UPDATE SET {updates_sql}",
        params,
    )
    return result


class RunCounts(msgspec.Struct, frozen=True):
    ok: int
    unchanged: int
    failed: int
    disabled: int
    skipped: int
    items_seen: int
    new_evidence: int
    items_skipped: dict[str, int] = msgspec.field(default_factory=dict)


def record_run(conn: Conn, started: datetime, finished: datetime, counts: RunCounts) -> int:
    return conn.insert(
        "INSERT INTO fetch_run (started_at, finished_at, ok, unchanged, failed, disabled, skipped,"
        " items_seen, new_evidence, items_skipped) VALUES (:started, :finished, :ok, :unchanged,"
        " :failed, :disabled, :skipped, :items, :new, :items_skipped)",
        {
            "started": conn.time(started),
            "finished": conn.time(finished),
            "ok": counts.ok,
            "unchanged": counts.unchanged,
            "failed": counts.failed,
            "disabled": counts.disabled,
            "skipped": counts.skipped,
            "items": counts.items_seen,
            "new": counts.new_evidence,
            "items_skipped": conn.json(counts.items_skipped),
        },
    )


# ---------------------------------------------------------------- the catalog


class CatalogLoad(msgspec.Struct, frozen=True):
    agreements: int
    commitments_added: int
    commitments_updated: int
    evidence_added: int


def _check_owners(conn: Conn, agreements: Sequence[AgreementSpec]) -> None:
    """A commitment belongs to the agreement that first brought it: a catalog may update it only
    from that agreement, so another team's file can never take over (and rewrite) ours."""
    owners = {
        slug: agreement
        for slug, agreement in conn.rows(
            "SELECT c.slug, a.slug FROM commitment c JOIN agreement a ON a.id = c.agreement_id"
        )
    }
    for spec in agreements:
        for cs in spec.commitments:
            owner = owners.get(cs.slug)
            if owner is not None and owner != spec.slug:
                raise UsageError(
                    f"commitment '{cs.slug}' belongs to agreement '{owner}'; agreement "
                    f"'{spec.slug}' cannot update it (choose another slug)"
                )


def _upsert_agreement(conn: Conn, spec: AgreementSpec, known: dict[str, int]) -> int:
    values = {
        "slug": spec.slug,
        "title": spec.title,
        "outlet": spec.outlet,
        "url": spec.url,
        "published_on": conn.day(spec.published_on),
        "language": spec.language,
        "text": spec.text,
        "summary": spec.summary,
    }
    aid = known.get(spec.slug)
    if aid is None:
        aid = known[spec.slug] = conn.insert(
            "INSERT INTO agreement (slug, title, outlet, url, published_on, language, text,"
            " summary) VALUES (:slug, :title, :outlet, :url, :published_on, :language, :text,"
            " :summary)",
            values,
        )
    else:
        conn.run(
            "UPDATE agreement SET title = :title, outlet = :outlet, url = :url,"
            " published_on = :published_on, language = :language, text = :text,"
            " summary = :summary WHERE slug = :slug",
            values,
        )
    return aid


def _upsert_commitment(
    conn: Conn, cs: CommitmentSpec, aid: int, position: int, known: dict[str, int]
) -> tuple[int, bool]:
    """The commitment's id, and whether it is new."""
    values = {
        "slug": cs.slug,
        "agreement_id": aid,
        "position": position,
        "title": cs.title,
        "description": cs.description,
        "quote": cs.quote,
        "parties": conn.json(cs.parties),
        "announced_on": conn.day(cs.announced_on),
        "deadline": conn.day(cs.deadline),
        "stall_days": cs.stall_days,
        "rules": conn.json(cs.rules),
        "queries": conn.json(cs.queries),
    }
    cid = known.get(cs.slug)
    if cid is not None:
        conn.run(
            "UPDATE commitment SET agreement_id = :agreement_id, position = :position,"
            " title = :title, description = :description, quote = :quote,"
            " parties = :parties, announced_on = :announced_on, deadline = :deadline,"
            " stall_days = :stall_days, rules = :rules, queries = :queries"
            " WHERE slug = :slug",
            values,
        )
        return cid, False
    known[cs.slug] = conn.insert(
        "INSERT INTO commitment (slug, agreement_id, position, title, description,"
        " quote, parties, announced_on, deadline, stall_days, rules, queries, revision)"
        " VALUES (:slug, :agreement_id, :position, :title, :description, :quote,"
        " :parties, :announced_on, :deadline, :stall_days, :rules, :queries, 0)",
        values,
    )
    return known[cs.slug], True


def load_catalog(
    conn: Conn, agreements: Sequence[AgreementSpec], now: datetime, title_key: Any
) -> CatalogLoad:
    """Upsert agreements, commitments, milestones and curated evidence. Deletes nothing."""
    _check_owners(conn, agreements)
    added = updated = ev_added = 0
    agreement_ids = {slug: aid for aid, slug in conn.rows("SELECT id, slug FROM agreement")}
    commitment_ids = {slug: cid for cid, slug in conn.rows("SELECT id, slug FROM commitment")}
    for spec in agreements:
        aid = _upsert_agreement(conn, spec, agreement_ids)
        for position, cs in enumerate(spec.commitments, start=1):
            cid, new = _upsert_commitment(conn, cs, aid, position, commitment_ids)
            added, updated = added + new, updated + (not new)
            _sync_milestones(conn, cid, cs.milestones)
            ev_added += _sync_curated(conn, cid, cs.evidence, now, title_key)
    return CatalogLoad(len(agreements), added, updated, ev_added)


def _sync_milestones(conn: Conn, commitment_id: int, titles: list[str]) -> None:
    known = {
        position
        for (position,) in conn.rows(
            "SELECT position FROM milestone WHERE commitment_id = :c", {"c": commitment_id}
        )
    }
    for position, title in enumerate(titles, start=1):
        params = {"c": commitment_id, "p": position, "t": title}
        if position in known:
            conn.run(
                "UPDATE milestone SET title = :t WHERE commitment_id = :c AND position = :p", params
            )
        else:
            conn.run(
                "INSERT INTO milestone (commitment_id, position, title) VALUES (:c, :p, :t)", params
            )
    # Milestones that a new catalog version dropped go; evidence pointing at them is kept and
    # simply no longer counts (the status engine ignores out-of-range milestones).
    conn.run(
        "DELETE FROM milestone WHERE commitment_id = :c AND position > :n",
        {"c": commitment_id, "n": len(titles)},
    )


def _sync_curated(
    conn: Conn,
    commitment_id: int,
    items: Sequence[CuratedEvidence],
    now: datetime,
    title_key: Any,
) -> int:
    curated = {
        url: ev_id
        for ev_id, url in conn.rows(
            "SELECT id, canonical_url FROM evidence WHERE commitment_id = :c AND source = 'curated'",
            {"c": commitment_id},
        )
    }
    others: set[str] | None = None
    added = 0
    for item in items:
        key = item.key
        published = datetime.combine(item.on, time(12))
        ev_id = curated.get(key)
        if ev_id is None:
            if others is None:  # fetched once, and only when a new curated item needs checking
                others = {
                    url
                    for (url,) in conn.rows(
                        "SELECT canonical_url FROM evidence WHERE commitment_id = :c"
                        " AND source <> 'curated'",
                        {"c": commitment_id},
                    )
                }
            if key in others:
                continue  # a person or a scraper already holds this URL: theirs wins
            curated[key] = _insert_curated(conn, commitment_id, item, now, title_key)
            added += 1
            continue
        conn.run(
            "UPDATE evidence SET title = :title, title_key = :title_key, url = :url,"
            " publisher = :publisher, language = :language, published_at = :published,"
            " stance = :stance, milestone = :milestone, note = :note, cancels = :cancels,"
            " cite = :cite, date_precision = :precision WHERE id = :id",
            {
                "title": item.title,
                "title_key": title_key(item.title),
                "url": item.url,
                "publisher": item.outlet or None,
                "language": item.language,
                "published": conn.time(published),
                "stance": item.stance,
                "milestone": item.milestone,
                "note": item.note or None,
                "cancels": bool(item.cancels),
                "cite": item.cite or None,
                "precision": item.date_precision,
                "id": ev_id,
            },
        )
    _withdraw_curated(conn, curated, {item.key for item in items}, now)
    return added


def _insert_curated(
    conn: Conn, commitment_id: int, item: CuratedEvidence, now: datetime, title_key: Any
) -> int:
    return insert_evidence(
        conn,
        NewEvidence(
            commitment_id=commitment_id,
            url=item.url,
            canonical_url=item.key,
            title=item.title,
            title_key=title_key(item.title),
            published_at=datetime.combine(item.on, time(12)),
            source="curated",
            publisher=item.outlet or None,
            language=item.language,
            stance=item.stance,
            milestone=item.milestone,
            review=Review.CONFIRMED,
            reviewed_by="curated",
            reviewed_at=now,
            cancels=item.cancels,
            note=item.note or None,
            created_at=now,
            cite=item.cite or None,
            date_precision=item.date_precision,
        ),
    )


def _withdraw_curated(conn: Conn, curated: dict[str, int], kept: set[str], now: datetime) -> None:
    """Curated rows a corrected catalog no longer holds stop counting: rejected (a tombstone,
    with the reason and a review-log entry), never deleted; a row the catalog brings back counts
    again."""
    for key, ev_id in curated.items():
        params = {"id": ev_id, "at": conn.time(now)}
        if key in kept:
            if conn.run(
                "UPDATE evidence SET review = 'confirmed', review_reason = NULL,"
                " reviewed_at = :at, revision = revision + 1"
                " WHERE id = :id AND review = 'rejected' AND reviewed_by = 'catalog'",
                params,
            ):
                _review_event(conn, ev_id, now, "rejected", "confirmed", "back in the catalog")
            continue
        reason = "withdrawn from the catalog: the built-in record was corrected"
        if conn.run(
            "UPDATE evidence SET review = 'rejected', review_reason = :reason,"
            " reviewed_by = 'catalog', reviewed_at = :at, revision = revision + 1"
            " WHERE id = :id AND review <> 'rejected'",
            {**params, "reason": reason},
        ):
            _review_event(conn, ev_id, now, "confirmed", "rejected", reason)


def _review_event(
    conn: Conn, evidence_id: int, at: datetime, previous: str, decision: str, reason: str
) -> None:
    conn.run(
        "INSERT INTO review_event (evidence_id, at, actor, previous, decision, reason)"
        " VALUES (:id, :at, 'catalog', :previous, :decision, :reason)",
        {
            "id": evidence_id,
            "at": conn.time(at),
            "previous": previous,
            "decision": decision,
            "reason": reason,
        },
    )
