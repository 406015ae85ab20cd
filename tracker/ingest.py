"""From fetched items to stored evidence: match, deduplicate, insert — one transaction per source.

Evidence is keyed by (commitment, canonical URL); an item whose URL already has a row — pending,
confirmed or rejected — adds nothing, so a rejected item never comes back. The same story under
another URL (same normalised title within a few days) becomes a mention of the existing row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, select

from tracker import models
from tracker.dates import to_naive_utc
from tracker.text import clean_stored
from tracker.urls import canonical_url, check_url

if TYPE_CHECKING:
    from scrapers import Item, Outcome
    from tracker.matching import Matcher
    from tracker.sources import Source

SYNDICATION_WINDOW = timedelta(days=3)
_CHUNK = 400


@dataclass
class IngestStats:
    items: int = 0
    matched: int = 0
    new: Counter[str] = field(default_factory=Counter)  # per commitment slug
    mentions: int = 0
    skipped_known: int = 0
    dropped: list[str] = field(default_factory=list)  # why some items could not be stored


@dataclass(frozen=True)
class Candidate:
    item: Item
    slug: str
    terms: tuple[str, ...]
    score: float
    review: str
    milestone: int | None
    stance: str
    canonical: str
    title_key: str
    published_at: datetime


def candidates(
    items: list[Item],
    source: Source,
    matcher: Matcher,
    known_slugs: set[str],
    now: datetime,
    title_key: object,
    stats: IngestStats,
) -> list[Candidate]:
    """Which commitments each item is evidence for, and how it would be stored."""
    result = []
    for item in items:
        structured = item.structured or {}
        if structured.get("commitment"):
            slug = str(structured["commitment"])
            if slug not in known_slugs:
                stats.dropped.append(f"item names unknown commitment '{slug}'")
                continue
            trusted = bool(structured.get("trusted"))
            milestone = structured.get("milestone")
            hits = [
                (
                    slug,
                    (),
                    1.0,
                    "confirmed" if trusted else "pending",
                    int(milestone) if milestone else None,
                )
            ]
        else:
            text = item.title + "\n" + item.summary
            hits = [
                (m.slug, m.terms, m.score, "pending", None)
                for m in matcher.match(text, item.language or source.language)
                if m.slug in known_slugs
            ]
        if not hits:
            continue  # nine items in ten are about something else: no URL work for them
        try:
            check_url(item.url)
            item.url.encode("utf-8")  # a lone surrogate (from a JSON escape) cannot be stored
        except (ValueError, UnicodeEncodeError):
            stats.dropped.append(f"item without a usable link: {clean_stored(item.title, 60)!r}")
            continue
        stats.matched += 1
        published = to_naive_utc(item.published_at) if item.published_at else now
        published = min(published, now)  # a future date is a feed bug, not news from tomorrow
        key = canonical_url(item.url)
        tkey = clean_stored(title_key(clean_stored(item.title, 1000)), 1000)  # type: ignore[operator]
        for slug, terms, score, review, milestone in hits:
            result.append(
                Candidate(
                    item,
                    slug,
                    tuple(terms),
                    score,
                    review,
                    milestone,
                    "progress" if review == "confirmed" else "neutral",
                    key,
                    tkey,
                    published,
                )
            )
    return result


def store_outcome(
    session: Session,
    source: Source,
    outcome: Outcome,
    matcher: Matcher,
    commitments: dict[str, int],
    now: datetime,
) -> IngestStats:
    from tracker.matching import normalize_title_key

    stats = IngestStats(items=len(outcome.items))
    found = candidates(
        outcome.items, source, matcher, set(commitments), now, normalize_title_key, stats
    )
    if not found:
        return stats
    canonicals = {c.canonical for c in found}
    existing = _existing_urls(session, canonicals)
    # A URL already recorded as another row's mention is known too: seeing the syndicated copy
    # again next hour must neither add a second mention (a unique violation that would abort
    # the whole refresh) nor turn it into evidence of its own.
    mentioned = _existing_mentions(session, canonicals)
    existing |= {(cid, url) for cid, _, url in mentioned}
    mentioned_pairs = {(ev_id, url) for _, ev_id, url in mentioned}
    by_title = _existing_titles(session, {c.title_key for c in found if c.title_key})
    for cand in found:
        cid = commitments[cand.slug]
        if (cid, cand.canonical) in existing:
            stats.skipped_known += 1
            continue
        twin = _syndicated_twin(by_title.get((cid, cand.title_key), []), cand.published_at)
        if twin is not None and cand.title_key:
            if (twin, cand.canonical) not in mentioned_pairs:
                mentioned_pairs.add((twin, cand.canonical))
                session.add(
                    models.Mention(
                        evidence_id=twin,
                        url=cand.item.url,
                        canonical_url=cand.canonical,
                        source=source.name,
                        publisher=_s(cand.item.publisher, 200),
                        country=side_of(source, cand.item),
                        published_at=cand.published_at,
                    )
                )
                stats.mentions += 1
            existing.add((cid, cand.canonical))
            continue
        row = models.Evidence(
            commitment_id=cid,
            url=cand.item.url,
            canonical_url=cand.canonical,
            title=clean_stored(cand.item.title or cand.item.url, 1000),
            summary=clean_stored(cand.item.summary, 5000),
            title_key=cand.title_key,
            published_at=cand.published_at,
            source=source.name,
            publisher=_s(cand.item.publisher, 200),
            language=cand.item.language or source.language,
            country=side_of(source, cand.item),
            stance=cand.stance,
            milestone=cand.milestone,
            review=cand.review,
            reviewed_by=source.name if cand.review == "confirmed" else None,
            reviewed_at=now if cand.review == "confirmed" else None,
            matched_terms=[clean_stored(t, 200) for t in cand.terms],
            score=cand.score,
            created_at=now,
        )
        session.add(row)
        session.flush()
        existing.add((cid, cand.canonical))
        by_title.setdefault((cid, cand.title_key), []).append((row.id, cand.published_at))  # type: ignore[arg-type]
        stats.new[cand.slug] += 1
    return stats


def side_of(source: Source, item: Item) -> str | None:
    """Which side published it: the source's setting, else the publisher's country domain."""
    if source.country:
        return source.country
    from urllib.parse import urlsplit

    for url in (item.publisher_url, item.url):
        host = (urlsplit(url).hostname or "") if url else ""
        if host.endswith(".ir"):
            return "IR"
        if host.endswith(".az"):
            return "AZ"
    return None


def _s(value: str | None, limit: int) -> str | None:
    return clean_stored(value, limit) if value else None


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _existing_urls(session: Session, urls: set[str]) -> set[tuple[int, str]]:
    table = models.Evidence.__table__  # type: ignore[attr-defined]
    result: set[tuple[int, str]] = set()
    for chunk in _chunks(sorted(urls)):
        rows = session.connection().execute(
            sa.select(table.c.commitment_id, table.c.canonical_url).where(
                table.c.canonical_url.in_(chunk)
            )
        )
        result.update((cid, url) for cid, url in rows)
    return result


def _existing_mentions(session: Session, urls: set[str]) -> set[tuple[int, int, str]]:
    """(commitment id, evidence id, canonical URL) of the mentions already stored for `urls`."""
    mention = models.Mention.__table__  # type: ignore[attr-defined]
    evidence = models.Evidence.__table__  # type: ignore[attr-defined]
    result: set[tuple[int, int, str]] = set()
    for chunk in _chunks(sorted(urls)):
        rows = session.connection().execute(
            sa.select(evidence.c.commitment_id, mention.c.evidence_id, mention.c.canonical_url)
            .join(evidence, evidence.c.id == mention.c.evidence_id)
            .where(mention.c.canonical_url.in_(chunk))
        )
        result.update((cid, ev_id, url) for cid, ev_id, url in rows)
    return result


def _existing_titles(
    session: Session, keys: set[str]
) -> dict[tuple[int, str], list[tuple[int, datetime]]]:
    table = models.Evidence.__table__  # type: ignore[attr-defined]
    result: dict[tuple[int, str], list[tuple[int, datetime]]] = {}
    for chunk in _chunks(sorted(keys)):
        rows = session.connection().execute(
            sa.select(
                table.c.commitment_id, table.c.title_key, table.c.id, table.c.published_at
            ).where(table.c.title_key.in_(chunk))
        )
        for cid, key, ev_id, published in rows:
            result.setdefault((cid, key), []).append((ev_id, published))
    return result


def _syndicated_twin(rows: list[tuple[int, datetime]], published: datetime) -> int | None:
    for ev_id, other in rows:
        if abs(other - published) <= SYNDICATION_WINDOW:
            return ev_id
    return None


def record_health(
    session: Session,
    source: Source,
    outcome: Outcome | None,
    stats: IngestStats | None,
    now: datetime,
) -> tuple[models.SourceHealth, int]:
    """Update the source's health row; returns it and its failure count before this run."""
    health = session.get(models.SourceHealth, source.name) or models.SourceHealth(name=source.name)
    before = health.consecutive_failures
    health.kind, health.country = source.kind, source.country
    if outcome is None:
        session.add(health)
        return health, before
    health.last_attempt = now
    health.last_state = outcome.state
    if outcome.state in ("ok", "unchanged"):
        health.last_success = now
        health.consecutive_failures = 0
        health.failing_since = None
        health.last_error = None
        v = outcome.validators
        health.etag, health.last_modified = v.etag, v.last_modified
        fingerprint = getattr(v, "fingerprint", None)
        if fingerprint is not None:
            health.fingerprint = fingerprint
        snapshot = getattr(v, "snapshot", None)
        if snapshot is not None:
            health.snapshot = clean_stored(snapshot, 200_000)
    elif outcome.state == "failed":
        health.consecutive_failures += 1
        health.failing_since = health.failing_since or now
        health.last_error = clean_stored(outcome.reason or "failed", 500)
    elif outcome.state == "disabled":
        health.last_error = clean_stored(outcome.reason or "disabled", 500)
    if stats is not None:
        health.items_seen = stats.items
        health.new_evidence = sum(stats.new.values())
        health.total_evidence += health.new_evidence
    if source.every is not None and outcome.state != "disabled":
        retry = timedelta(seconds=outcome.retry_after) if outcome.retry_after else timedelta(0)
        health.next_due = now + max(source.every, retry)
    elif outcome.retry_after:
        health.next_due = now + timedelta(seconds=outcome.retry_after)
    else:
        health.next_due = None
    session.add(health)
    return health, before


def health_rows(session: Session) -> dict[str, models.SourceHealth]:
    return {h.name: h for h in session.exec(select(models.SourceHealth))}
