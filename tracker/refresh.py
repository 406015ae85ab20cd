"""`tracker refresh` in four steps: plan → collect → store → report.

- `plan` (pure, no database): which sources run now, with what queries and credentials, and why
  the others don't;
- `collect` (scrapers): every planned source fetched concurrently, outside any transaction, so
  readers and reviewers are never blocked by the network;
- store (`_Storer`): each source's evidence and health in its own short transaction, written as
  soon as the source's outcome arrives, while the others still download; sources with nothing
  new share one statement at the end;
- the `RefreshReport` then feeds one after-refresh policy (`tracker.followup`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from tracker.dates import utcnow
from tracker.ingest import Found, Matched, MatchStep, evidence_rows, found_evidence
from tracker.settings import Settings
from tracker.sources import Source, SourcesFile
from tracker.store import (
    Change,
    Database,
    HealthRecord,
    MatchSet,
    is_environment_error,
    reads,
    writes,
)
from tracker.store.locks import refresh_lock
from tracker.vocab import SourceState

if TYPE_CHECKING:
    from scrapers import HttpSettings, KindInfo, Outcome, SourceSpec
    from tracker.matching import Matcher
    from tracker.store import Conn

FAILURE_THRESHOLD = 3  # consecutive failures before a source counts as failing (alerts, report)


class SourceResult(msgspec.Struct):
    source: Source
    state: str  # ok | unchanged | failed | disabled | skipped
    reason: str | None = None
    items: int = 0
    new: int = 0
    elapsed: float = 0.0
    crossed_threshold: bool = False  # just became failing
    recovered: bool = False  # was failing, works again
    skipped: dict[str, int] = msgspec.field(default_factory=dict)  # items not stored, by reason


class RefreshReport(msgspec.Struct):
    results: list[SourceResult] = msgspec.field(default_factory=list)
    new_by_commitment: Counter[str] = msgspec.field(default_factory=Counter)
    changes: list[Change] = msgspec.field(default_factory=list)
    run_id: int | None = None

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)

    @property
    def items(self) -> int:
        return sum(r.items for r in self.results)

    @property
    def new(self) -> int:
        return sum(self.new_by_commitment.values())

    @property
    def failed(self) -> bool:
        return self.count(SourceState.FAILED) > 0

    @property
    def skipped(self) -> dict[str, int]:
        """Items seen but not stored as new evidence, by reason, over every source."""
        total: dict[str, int] = {}
        for r in self.results:
            for reason, n in r.skipped.items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        parts = [
            f"{self.count('ok')} ok",
            f"{self.count('unchanged')} unchanged",
            f"{self.count('failed')} failed",
            f"{self.count('disabled')} disabled",
        ]
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} not due")
        line = f"sources: {', '.join(parts)}; {self.items} items seen; {self.new} new evidence"
        if self.new_by_commitment:
            line += (
                " ("
                + ", ".join(f"{s} {n}" for s, n in sorted(self.new_by_commitment.items()))
                + ")"
            )
        if self.skipped:
            line += "; not stored: " + ", ".join(f"{n} {why}" for why, n in self.skipped.items())
        return line

    def data(self) -> dict[str, Any]:
        """The run as data (`tracker refresh --json`)."""
        return {
            "run_id": self.run_id,
            "items_seen": self.items,
            "new_evidence": self.new,
            "new_by_commitment": dict(sorted(self.new_by_commitment.items())),
            "skipped": self.skipped,
            "changes": [
                {"slug": c.slug, "from": c.old, "to": c.new, "reason": c.reason}
                for c in self.changes
            ],
            "sources": [
                {
                    "name": r.source.name,
                    "state": r.state,
                    "reason": r.reason,
                    "items": r.items,
                    "new": r.new,
                    "skipped": r.skipped,
                    "seconds": round(r.elapsed, 3),
                }
                for r in self.results
            ],
        }


# ---------------------------------------------------------------- plan (pure)


class Plan(msgspec.Struct):
    """What a refresh will fetch, and what it already knows the outcome of."""

    fetch: list[tuple[Source, SourceSpec]] = msgspec.field(default_factory=list)
    settled: list[SourceResult] = msgspec.field(default_factory=list)  # disabled, not due


def _kind(source: Source) -> KindInfo:
    from scrapers import KINDS

    return KINDS[source.kind]


def spec_for(
    source: Source, queries: Mapping[str, Mapping[str, str]], env: Mapping[str, str]
) -> SourceSpec | str:
    """The scraper's view of a source, or the reason it cannot run."""
    from scrapers import SourceSpec

    info = _kind(source)
    options = dict(source.options)
    spec_queries: tuple[tuple[str, str], ...] = ()
    if info.query_key is not None:
        if source.query:
            spec_queries = (("", source.query),)
        else:
            key = source.language if info.query_key == "language" else info.query_key
            spec_queries = tuple((slug, q[key]) for slug, q in queries.items() if q.get(key))
            if not spec_queries:
                return f"no catalog commitment has a queries.{key} entry"
    if source.commitment:
        options.setdefault("commitment", source.commitment)
    for option, variable in info.credentials.items():
        options.setdefault(option, env.get(variable) or None)
    return SourceSpec(
        name=source.name,
        kind=source.kind,
        language=source.language,
        url=source.url,
        country=source.country,
        queries=spec_queries,
        options=options,
    )


def plan(
    sources: Sequence[Source],
    health: Mapping[str, HealthRecord],
    queries: Mapping[str, Mapping[str, str]],
    *,
    now: datetime,
    env: Mapping[str, str],
    only: bool = False,
    force: bool = False,
) -> Plan:
    """Which sources run now. `only`: the user named the source, so even a disabled one runs."""
    result = Plan()
    for source in sources:
        h = health.get(source.name)
        if not source.enabled and not only:
            result.settled.append(
                SourceResult(source, SourceState.DISABLED, "enabled = false in the sources file")
            )
            continue
        if not force and h is not None and h.next_due is not None and h.next_due > now:
            result.settled.append(
                SourceResult(
                    source,
                    SourceState.SKIPPED,
                    f"not due until {h.next_due:%Y-%m-%d %H:%M} UTC",
                )
            )
            continue
        spec = spec_for(source, queries, env)
        if isinstance(spec, str):
            result.settled.append(SourceResult(source, SourceState.DISABLED, spec))
            continue
        result.fetch.append((source, spec))
    return result


# ---------------------------------------------------------------- store


def _seen(outcome: Outcome) -> int:
    """Every record the source sent: the items, and those the scraper could not use."""
    items = outcome.seen if isinstance(outcome, Matched) else len(outcome.items)
    return items + sum(getattr(outcome, "skipped", {}).values())


def _merged(*parts: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for reason, n in part.items():
            total[reason] = total.get(reason, 0) + n
    return total


def _health_update(
    source: Source, outcome: Outcome, skipped: dict[str, int], new: int
) -> writes.HealthUpdate:
    v = outcome.validators
    return writes.HealthUpdate(
        name=source.name,
        kind=source.kind,
        country=source.country,
        state=outcome.state,
        reason=outcome.reason,
        etag=v.etag,
        last_modified=v.last_modified,
        fingerprint=getattr(v, "fingerprint", None),
        snapshot=getattr(v, "snapshot", None),
        items=_seen(outcome),
        new=new,
        every=source.every,
        retry_after=outcome.retry_after,
        skipped=skipped if outcome.state in ("ok", "unchanged") else None,
        rate_limit_remaining=getattr(outcome, "rate_limit_remaining", None),
    )


def _result(
    source: Source,
    outcome: Outcome,
    new: int,
    after: HealthRecord,
    failures_before: int,
    skipped: dict[str, int],
) -> SourceResult:
    return SourceResult(
        source,
        outcome.state,
        outcome.reason,
        items=_seen(outcome),
        new=new,
        elapsed=outcome.elapsed,
        crossed_threshold=failures_before < FAILURE_THRESHOLD <= after.consecutive_failures,
        recovered=failures_before >= FAILURE_THRESHOLD and after.consecutive_failures == 0,
        skipped=skipped,
    )


def _unstorable(outcome: Outcome, exc: Exception) -> Outcome:
    """The source's outcome turned into a failure whose reason names what went wrong."""
    from scrapers import Outcome

    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = f"could not store its items: {type(exc).__name__}" + (
        f": {detail[0]}" if detail else ""
    )
    return Outcome(
        source=outcome.source,
        state="failed",
        reason=reason[:300],
        validators=outcome.validators,
        http_status=outcome.http_status,
        elapsed=outcome.elapsed,
    )


def _found(
    source: Source, outcome: Outcome, matches: MatchSet, matcher: list[Matcher], now: datetime
) -> Found:
    """What a successful source's items are evidence for: matched in the parser process already
    (a `Matched` outcome), else here, with a matcher compiled once (`matcher` keeps it)."""
    if isinstance(outcome, Matched):
        found = Found(matched=len(outcome.hits), skipped=dict(outcome.unused))
        found.evidence = evidence_rows(outcome.hits, source, matches.ids, now)
        return found
    if not outcome.items:
        return Found()
    from tracker.matching import normalize_title_key

    if not matcher:  # compiled once a source brings items: never on all-304
        matcher.append(_matcher(matches))
    return found_evidence(outcome.items, source, matcher[0], matches.ids, now, normalize_title_key)


# Sources with new evidence arriving close together are stored in one transaction: a commit
# costs about as much as storing one source's rows (SQLite writes every page it touched to the
# WAL again). A batch is stored when it reaches STORE_BATCH sources (10-15 ms of write lock
# on the benchmark), when a source arrives STORE_WAIT seconds or more after the batch's first (so
# sources that trickle in are stored two at a time, the later one as it comes), or at the end of
# the fetching. While a batch is stored the event loop does nothing else: no download goes on
# and no parser is given work. In a cold run the refresh process is the busiest early on, with
# the parsers waiting for it, so few large batches beat many small ones (200 feeds, 14 cold runs
# each: median 0.796 s with batches of 64 sources or 0.2 s, 0.808 s with 16 or 0.05 s).
# There is no timer: a write never runs from an event-loop callback, where its errors (the lock
# lost, the database gone) could not end the refresh.
STORE_BATCH = 64
STORE_WAIT = 0.2


class _Storer:
    """Stores what the sources brought. Sources with new evidence are stored once they and every
    source before them in the sources file have arrived, while the others are still downloading
    and parsing (the refresh process has nothing else to do meanwhile), in batches of up to
    STORE_BATCH sources (see STORE_WAIT): the same order as storing them one by one at the end,
    so the same rows (which source records a story first, which one adds a mention), and each
    source's evidence and health are all or nothing. A batch that cannot be stored is
    stored again one source at a time, so that only the source at fault fails. The rest
    (unchanged, failed, disabled, nothing new) record their health together, in one statement,
    at the end. Outcomes that arrive on another thread (collect run inside a running event
    loop) wait for the end: writes happen on the thread that holds the refresh lock."""

    def __init__(
        self,
        db: Database,
        matches: MatchSet,
        report: RefreshReport,
        order: Sequence[Source] = (),
    ) -> None:
        self.db = db
        self.matches = matches
        self.report = report
        self.thread = threading.get_ident()
        self.names = {cid: slug for slug, cid in matches.ids.items()}
        self.matcher: list[Matcher] = []  # compiled here only if a step did not match
        self.founds: dict[str, Found] = {}
        self.stored: set[str] = set()
        self.order = list(order)
        self.next = 0  # sources before this one in `order` have arrived (and are stored)
        self.waiting: dict[str, Outcome] = {}
        self.ready: list[tuple[Source, Outcome, Found, datetime]] = []  # the next batch
        self.since = 0.0  # when its first source arrived (time.monotonic)

    def arrived(self, source: Source, outcome: Outcome) -> None:
        if threading.get_ident() != self.thread:
            return
        self.waiting[source.name] = outcome
        while self.next < len(self.order) and self.order[self.next].name in self.waiting:
            first = self.order[self.next]
            self.next += 1
            self._early(first, self.waiting.pop(first.name))

    def _early(self, source: Source, outcome: Outcome) -> None:
        if outcome.state != "ok":
            return
        now = utcnow()
        found = self.founds[source.name] = _found(source, outcome, self.matches, self.matcher, now)
        if found.evidence:
            self._queue(source, outcome, found, now)
            if self.ready and time.monotonic() - self.since >= STORE_WAIT:
                self._flush()

    def _queue(self, source: Source, outcome: Outcome, found: Found, now: datetime) -> None:
        """Add a source with evidence to the next batch; store the batch once it is full."""
        self.stored.add(source.name)
        if not self.ready:
            self.since = time.monotonic()
        self.ready.append((source, outcome, found, now))
        if len(self.ready) >= STORE_BATCH:
            self._flush()

    def finish(self, fetched: Sequence[tuple[Source, Outcome]]) -> None:
        self._flush()
        now = utcnow()
        for source, outcome in fetched:
            if outcome.state == "ok" and source.name not in self.founds:
                self.founds[source.name] = _found(source, outcome, self.matches, self.matcher, now)
        rest = [(s, o) for s, o in fetched if s.name not in self.stored]
        quiet = [(s, o) for s, o in rest if not self._evidence(s)]
        if quiet:
            updates = [_quiet_update(s, o, self.founds.get(s.name)) for s, o in quiet]
            with self.db.write() as conn:
                done = writes.record_health(conn, updates, now)
            for (source, outcome), (after, before), u in zip(quiet, done, updates, strict=True):
                self.report.results.append(
                    _result(source, outcome, 0, after, before, u.skipped or {})
                )
        for source, outcome in rest:
            if self._evidence(source):
                self._queue(source, outcome, self.founds[source.name], now)
        self._flush()

    def _evidence(self, source: Source) -> bool:
        found = self.founds.get(source.name)
        return found is not None and bool(found.evidence)

    def _flush(self) -> None:
        """Store the ready sources in one transaction (one by one if that fails)."""
        batch, self.ready = self.ready, []
        if len(batch) > 1:
            try:
                with self.db.write() as conn:
                    done = self._write(conn, batch)
            except Exception as exc:
                if is_environment_error(exc):
                    raise
            else:
                for (source, outcome, _, _), result in zip(batch, done, strict=True):
                    self._report(source, outcome, *result)
                return
        for source, outcome, found, now in batch:
            self._store(source, outcome, found, now)

    @staticmethod
    def _write(
        conn: Conn, batch: Sequence[tuple[Source, Outcome, Found, datetime]]
    ) -> list[tuple[writes.Stored, HealthRecord, int, dict[str, int]]]:
        """The sources' evidence as storing each in turn (file order) would leave it, then all
        their health in one statement (stamped when the last arrived); returns what was stored,
        the health after, the failures before and what was skipped."""
        stored = writes.store_sources(conn, [found.evidence for _, _, found, _ in batch])
        skips = [
            _merged(dict(getattr(outcome, "skipped", {})), found.skipped, st.skipped)
            for (_, outcome, found, _), st in zip(batch, stored, strict=True)
        ]
        updates = [
            _health_update(source, outcome, skipped, sum(st.new.values()))
            for (source, outcome, _, _), st, skipped in zip(batch, stored, skips, strict=True)
        ]
        health = writes.record_health(conn, updates, batch[-1][3])
        return [
            (st, after, before, skipped)
            for st, (after, before), skipped in zip(stored, health, skips, strict=True)
        ]

    def _store(self, source: Source, outcome: Outcome, found: Found, now: datetime) -> None:
        """The source's evidence and health in one transaction."""
        try:
            with self.db.write() as conn:
                [(stored, after, before, skipped)] = self._write(
                    conn, [(source, outcome, found, now)]
                )
        except Exception as exc:
            if is_environment_error(exc):
                raise
            # Something in this source's batch that we could not store must not cost the
            # other sources their run: the batch was rolled back whole; say why.
            outcome = _unstorable(outcome, exc)
            stored, skipped = writes.Stored(), {}
            with self.db.write() as conn:
                [(after, before)] = writes.record_health(
                    conn, [_health_update(source, outcome, {}, 0)], now
                )
        self._report(source, outcome, stored, after, before, skipped)

    def _report(
        self,
        source: Source,
        outcome: Outcome,
        stored: writes.Stored,
        after: HealthRecord,
        before: int,
        skipped: dict[str, int],
    ) -> None:
        new = sum(stored.new.values())
        self.report.results.append(_result(source, outcome, new, after, before, skipped))
        self.report.new_by_commitment.update({self.names[cid]: n for cid, n in stored.new.items()})


def store_outcomes(
    db: Database,
    fetched: Sequence[tuple[Source, Outcome]],
    matches: MatchSet,
    report: RefreshReport,
) -> None:
    """Each source's evidence and health in its own transaction; the quiet ones together."""
    _Storer(db, matches, report).finish(fetched)


def match_step(matches: MatchSet, sources: Sequence[Source]) -> MatchStep:
    """Matching as the parser processes' post-processing step: each feed is matched right after
    it is parsed, on the second core, while the others download; the refresh process gets back
    only the items that are evidence of something."""
    return MatchStep(
        matches.rules, matches.model, {s.name: (s.language, s.country) for s in sources}
    )


def _quiet_update(source: Source, outcome: Outcome, found: Found | None) -> writes.HealthUpdate:
    skipped = dict(getattr(outcome, "skipped", {}))
    return _health_update(source, outcome, _merged(skipped, found.skipped) if found else skipped, 0)


def _matcher(matches: MatchSet) -> Matcher:
    from tracker.matching import Matcher, rules_from_mapping

    return Matcher(
        (rules_from_mapping(slug, rules) for slug, rules in matches.rules.items()), matches.model
    )


# ---------------------------------------------------------------- the whole refresh


def refresh(
    db: Database,
    sources: SourcesFile,
    settings: Settings,
    *,
    today: date,
    only: str | None = None,
    force: bool = False,
    http: HttpSettings | None = None,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    lock_wait: float | None = None,
    while_locked: Callable[[RefreshReport], None] | None = None,
) -> RefreshReport:
    """Run one refresh under the database's refresh lock. `while_locked` runs at the end, still
    holding the lock (alerts go out there, so a refresh waiting for the lock never sees them
    unsent)."""
    chosen = [sources.get(only)] if only else sources.sources
    report = RefreshReport()
    wait = settings.lock_wait if lock_wait is None else lock_wait
    with refresh_lock(db, wait):
        started = utcnow()
        try:
            with db.read() as conn:
                matches = reads.match_set(conn)
                health = reads.health(conn)
        except Exception as exc:
            # A server that went away just after the lock was taken (a restart) took the lock
            # with it: say so, as a write would, rather than what the read ran into.
            if is_environment_error(exc):
                db.check_guard()
            raise
        planned = plan(
            chosen,
            health,
            matches.queries,
            now=started,
            env=settings.env,
            only=bool(only),
            force=force,
        )
        report.results.extend(planned.settled)
        if on_start is not None:
            on_start(len(planned.fetch))
        _collect_and_store(
            db, planned, health, matches, report, http or settings.http_settings(), on_outcome
        )
        with db.write() as conn:
            report.changes = writes.sync_statuses(conn, today, "refresh", utcnow())
            report.run_id = writes.record_run(
                conn,
                started,
                utcnow(),
                writes.RunCounts(
                    ok=report.count("ok"),
                    unchanged=report.count("unchanged"),
                    failed=report.count("failed"),
                    disabled=report.count("disabled"),
                    skipped=report.count("skipped"),
                    items_seen=report.items,
                    new_evidence=report.new,
                    items_skipped=report.skipped,
                ),
            )
        order = {s.name: i for i, s in enumerate(chosen)}
        report.results.sort(key=lambda r: order[r.source.name])
        if while_locked is not None:
            while_locked(report)
    return report


def _collect_and_store(
    db: Database,
    planned: Plan,
    health: Mapping[str, HealthRecord],
    matches: MatchSet,
    report: RefreshReport,
    http: HttpSettings,
    on_outcome: Callable[[Outcome], None] | None,
) -> None:
    """Fetch the planned sources (matching in the parser processes) and store each as it
    arrives (see `_Storer`)."""
    from scrapers import Validators, collect

    validators = {
        s.name: Validators(
            etag=health[s.name].etag,
            last_modified=health[s.name].last_modified,
            fingerprint=health[s.name].fingerprint,
            snapshot=health[s.name].snapshot,
        )
        for s, _ in planned.fetch
        if s.name in health
    }
    sources = [source for source, _ in planned.fetch]
    storer = _Storer(db, matches, report, sources)
    by_name = {source.name: source for source in sources}

    def arrived(outcome: Outcome) -> None:
        if on_outcome is not None:
            on_outcome(outcome)
        storer.arrived(by_name[outcome.source], outcome)

    outcomes = collect(
        [spec for _, spec in planned.fetch],
        validators,
        http,
        arrived,
        postprocess=match_step(matches, sources),
    )
    storer.finish(list(zip(sources, outcomes, strict=True)))


def source_table(sources: SourcesFile, health: Mapping[str, HealthRecord]) -> list[dict[str, Any]]:
    """Sources joined with their health, as plain data for `tracker sources`."""
    from tracker.dates import iso_utc as iso

    rows = []
    for s in sources.sources:
        h = health.get(s.name)
        rows.append(
            {
                "name": s.name,
                "kind": s.kind,
                "language": s.language,
                "country": s.country,
                "enabled": s.enabled,
                "every": int(s.every.total_seconds()) if s.every else None,
                "last_attempt": iso(h.last_attempt) if h else None,
                "last_success": iso(h.last_success) if h else None,
                "last_state": h.last_state if h else None,
                "consecutive_failures": h.consecutive_failures if h else 0,
                "failing_since": iso(h.failing_since) if h else None,
                "last_error": h.last_error if h else None,
                "items_seen": h.items_seen if h else 0,
                "new_evidence": h.new_evidence if h else 0,
                "total_evidence": h.total_evidence if h else 0,
                "skipped": dict(h.skipped) if h else {},
                "rate_limit_remaining": h.rate_limit_remaining if h else None,
                "next_due": iso(h.next_due) if h else None,
            }
        )
    return rows
