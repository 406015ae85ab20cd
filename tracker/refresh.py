"""`tracker refresh`: fetch due sources concurrently, then store each one's evidence in its own
transaction, record source health and the run, and recompute statuses.

Fetching happens outside any database transaction, so readers and reviewers are never blocked by
the network; only the short per-source writes take the write lock.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import select

from tracker import models, store
from tracker.dates import utcnow
from tracker.db import Database
from tracker.errors import UsageError
from tracker.ingest import IngestStats, health_rows, record_health, store_outcome
from tracker.locks import refresh_lock
from tracker.sources import SEARCH_KINDS, Source, SourcesFile

if TYPE_CHECKING:
    from scrapers import HttpSettings, Outcome, SourceSpec

FAILURE_THRESHOLD = 3  # consecutive failures before a source counts as failing (alerts, report)


@dataclass
class SourceResult:
    source: Source
    state: str  # ok | unchanged | failed | disabled | skipped
    reason: str | None = None
    items: int = 0
    new: int = 0
    elapsed: float = 0.0
    crossed_threshold: bool = False  # just became failing
    recovered: bool = False  # was failing, works again


@dataclass
class RefreshReport:
    results: list[SourceResult] = field(default_factory=list)
    new_by_commitment: Counter[str] = field(default_factory=Counter)
    changes: list[store.Change] = field(default_factory=list)
    run_id: int | None = None

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)

    @property
    def items(self) -> int:
        return sum(r.items for r in self.results)

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0

    def summary(self) -> str:
        new = sum(self.new_by_commitment.values())
        parts = [
            f"{self.count('ok')} ok",
            f"{self.count('unchanged')} unchanged",
            f"{self.count('failed')} failed",
            f"{self.count('disabled')} disabled",
        ]
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} not due")
        line = f"sources: {', '.join(parts)}; {self.items} items seen; {new} new evidence"
        if self.new_by_commitment:
            line += (
                " ("
                + ", ".join(f"{s} {n}" for s, n in sorted(self.new_by_commitment.items()))
                + ")"
            )
        return line


def http_settings() -> HttpSettings:
    """Production limits, each overridable by TRACKER_HTTP_<FIELD> (tests use short timeouts)."""
    from scrapers import HttpSettings

    overrides: dict[str, Any] = {}
    for f in fields(HttpSettings):
        raw = os.environ.get(f"TRACKER_HTTP_{f.name.upper()}")
        if raw is None:
            continue
        default = getattr(HttpSettings(), f.name)
        try:
            overrides[f.name] = type(default)(raw) if not isinstance(default, str) else raw
        except ValueError as exc:
            raise UsageError(
                f"TRACKER_HTTP_{f.name.upper()} must be a number, got {raw!r}"
            ) from exc
    try:
        return HttpSettings(**overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"HTTP settings: {exc}") from exc


def _specs_for(source: Source, queries: dict[str, dict[str, str]]) -> SourceSpec | str:
    """The scraper's view of a source, or the reason it cannot run."""
    from scrapers import SourceSpec

    options = dict(source.options)
    spec_queries: tuple[tuple[str, str], ...] = ()
    if source.kind in SEARCH_KINDS:
        if source.query:
            spec_queries = (("", source.query),)
        else:
            key = "gdelt" if source.kind == "gdelt" else source.language
            spec_queries = tuple((slug, q[key]) for slug, q in queries.items() if q.get(key))
            if not spec_queries:
                return f"no catalog commitment has a queries.{key} entry"
    if source.commitment:
        options.setdefault("commitment", source.commitment)
    if source.kind == "opensky":
        options.setdefault("client_id", os.environ.get("OPENSKY_CLIENT_ID") or None)
        options.setdefault("client_secret", os.environ.get("OPENSKY_CLIENT_SECRET") or None)
    return SourceSpec(
        name=source.name,
        kind=source.kind,
        language=source.language,
        url=source.url,
        country=source.country,
        queries=spec_queries,
        options=options,
    )


def refresh(
    db: Database,
    sources: SourcesFile,
    *,
    today: date,
    only: str | None = None,
    force: bool = False,
    settings: HttpSettings | None = None,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    lock_wait: float | None = None,
) -> RefreshReport:
    from scrapers import Validators, collect
    from tracker.matching import Matcher, rules_from_mapping

    chosen = [sources.get(only)] if only else sources.sources
    report = RefreshReport()
    with refresh_lock(db, lock_wait):
        started = utcnow()
        with db.read() as session:
            commitments = list(session.exec(select(models.Commitment)))
            health = health_rows(session)
        ids = {c.slug: c.id for c in commitments}
        compiled: list[Matcher] = []

        def matcher() -> Matcher:
            """Compiled (~60 ms) once a source brings items: never when every feed says 304."""
            if not compiled:
                compiled.append(Matcher(rules_from_mapping(c.slug, c.rules) for c in commitments))
            return compiled[0]

        queries = {c.slug: dict(c.queries) for c in commitments}

        to_fetch: list[tuple[Source, SourceSpec]] = []
        for source in chosen:
            h = health.get(source.name)
            if not source.enabled and not only:
                report.results.append(
                    SourceResult(source, "disabled", "enabled = false in the sources file")
                )
                continue
            if not force and h is not None and h.next_due is not None and h.next_due > started:
                report.results.append(
                    SourceResult(
                        source, "skipped", f"not due until {h.next_due:%Y-%m-%d %H:%M} UTC"
                    )
                )
                continue
            spec = _specs_for(source, queries)
            if isinstance(spec, str):
                report.results.append(SourceResult(source, "disabled", spec))
                continue
            to_fetch.append((source, spec))

        validators = {
            s.name: Validators(
                etag=health[s.name].etag,
                last_modified=health[s.name].last_modified,
                **_extra_validators(health[s.name]),
            )
            for s, _ in to_fetch
            if s.name in health
        }
        if on_start is not None:
            on_start(len(to_fetch))
        outcomes = collect(
            [spec for _, spec in to_fetch], validators, settings or http_settings(), on_outcome
        )

        def add_result(
            source: Source,
            outcome: Outcome,
            stats: IngestStats,
            h: models.SourceHealth,
            failures_before: int,
        ) -> None:
            report.results.append(
                SourceResult(
                    source,
                    outcome.state,
                    outcome.reason,
                    items=stats.items,
                    new=sum(stats.new.values()),
                    elapsed=outcome.elapsed,
                    crossed_threshold=failures_before < FAILURE_THRESHOLD <= h.consecutive_failures,
                    recovered=failures_before >= FAILURE_THRESHOLD and h.consecutive_failures == 0,
                )
            )
            report.new_by_commitment.update(stats.new)

        fetched_all = list(zip((s for s, _ in to_fetch), outcomes, strict=True))
        # Sources with nothing to store (unchanged, failed, disabled, empty) only record their
        # health: together in one transaction, not one each (200 commits cost about 0.1 s).
        quiet = [(s, o) for s, o in fetched_all if o.state != "ok" or not o.items]
        if quiet:
            now = utcnow()
            with db.write() as session:
                health_rows(session)  # one SELECT: record_health's session.get then finds them
                for source, outcome in quiet:
                    stats = IngestStats()
                    h, failures_before = record_health(session, source, outcome, stats, now)
                    add_result(source, outcome, stats, h, failures_before)

        for source, fetched in fetched_all:
            if fetched.state != "ok" or not fetched.items:
                continue
            now = utcnow()
            outcome = fetched
            try:
                with db.write() as session:
                    stats = store_outcome(session, source, outcome, matcher(), ids, now)
                    h, failures_before = record_health(session, source, outcome, stats, now)
            except sa.exc.OperationalError:
                raise  # locked, read-only, disk full: the environment's problem, for every source
            except Exception as exc:
                # Something in this source's batch that we could not store must not cost the
                # other sources their run: the batch was rolled back whole; say why.
                outcome = _unstorable(fetched, exc)
                stats = IngestStats()
                with db.write() as session:
                    h, failures_before = record_health(session, source, outcome, stats, now)
            add_result(source, outcome, stats, h, failures_before)

        with db.write() as session:
            report.changes = store.sync_statuses(session, today, by="refresh")
            run = models.FetchRun(
                started_at=started,
                finished_at=utcnow(),
                ok=report.count("ok"),
                unchanged=report.count("unchanged"),
                failed=report.count("failed"),
                disabled=report.count("disabled"),
                skipped=report.count("skipped"),
                items_seen=report.items,
                new_evidence=sum(report.new_by_commitment.values()),
            )
            session.add(run)
            session.flush()
            report.run_id = run.id
    order = {s.name: i for i, s in enumerate(chosen)}
    report.results.sort(key=lambda r: order[r.source.name])
    return report


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


def _extra_validators(h: models.SourceHealth) -> dict[str, Any]:
    from scrapers import Validators

    names = {f.name for f in fields(Validators)}
    extra: dict[str, Any] = {}
    if "fingerprint" in names:
        extra["fingerprint"] = h.fingerprint
    if "snapshot" in names:
        extra["snapshot"] = h.snapshot
    return extra


def source_table(
    sources: SourcesFile, health: dict[str, models.SourceHealth]
) -> list[dict[str, Any]]:
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
                "next_due": iso(h.next_due) if h else None,
            }
        )
    return rows
