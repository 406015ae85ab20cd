"""From fetched items to evidence rows about to be stored: match, attribute, clean. Pure.

Which commitments an item is evidence for comes from the matcher (news) or from the item itself
(structured kinds such as an observed flight). What is already known is decided by the store
(`tracker.store.writes.store_found`): one row per commitment and canonical URL, rejected items never
coming back, syndicated copies becoming mentions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tracker.dates import to_naive_utc
from tracker.matching import Match
from tracker.store.records import NewEvidence
from tracker.text import clean_stored
from tracker.urls import canonical_url, check_url
from tracker.vocab import Review, Stance

if TYPE_CHECKING:
    from scrapers import Item
    from tracker.matching import Matcher
    from tracker.sources import Source

__all__ = ["Found", "found_evidence", "side_of"]


@dataclass
class Found:
    """What one source's items are evidence for, and what could not be used."""

    evidence: list[NewEvidence] = field(default_factory=list)
    matched: int = 0  # items that matched at least one commitment
    dropped: list[str] = field(default_factory=list)  # why some items could not be stored


def side_of(source: Source, item: Item) -> str | None:
    """Which side published it: the source's setting, else the publisher's country domain."""
    if source.country:
        return source.country
    for url in (item.publisher_url, item.url):
        host = (urlsplit(url).hostname or "") if url else ""
        if host.endswith(".ir"):
            return "IR"
        if host.endswith(".az"):
            return "AZ"
    return None


def found_evidence(
    items: list[Item],
    source: Source,
    matcher: Matcher,
    commitments: Mapping[str, int],
    now: datetime,
    title_key: Callable[[str], str],
) -> Found:
    """Which commitments each item is evidence for, as rows ready for the store."""
    found = Found()
    for item in items:
        structured = item.structured or {}
        hits: list[Match]
        trusted = False
        if structured.get("commitment"):
            slug = str(structured["commitment"])
            if slug not in commitments:
                found.dropped.append(f"item names unknown commitment '{slug}'")
                continue
            trusted = bool(structured.get("trusted"))
            milestone = structured.get("milestone")
            hits = [
                Match(
                    slug,
                    (),
                    1.0,
                    "structured",
                    milestone=int(milestone) if milestone else None,
                    stance=Stance.PROGRESS,
                )
            ]
        else:
            text = item.title + "\n" + item.summary
            hits = [
                m
                for m in matcher.match(text, item.language or source.language)
                if m.slug in commitments
            ]
        if not hits:
            continue  # nine items in ten are about something else: no URL work for them
        try:
            check_url(item.url)
            item.url.encode("utf-8")  # a lone surrogate (from a JSON escape) cannot be stored
        except (ValueError, UnicodeEncodeError):
            found.dropped.append(f"item without a usable link: {clean_stored(item.title, 60)!r}")
            continue
        found.matched += 1
        published = to_naive_utc(item.published_at) if item.published_at else now
        published = min(published, now)  # a future date is a feed bug, not news from tomorrow
        key = canonical_url(item.url)
        tkey = clean_stored(title_key(clean_stored(item.title, 1000)), 1000)
        side = side_of(source, item)
        for m in hits:
            confirmed = trusted
            found.evidence.append(
                NewEvidence(
                    commitment_id=commitments[m.slug],
                    url=item.url,
                    canonical_url=key,
                    title=item.title or item.url,
                    summary=item.summary,
                    title_key=tkey,
                    published_at=published,
                    source=source.name,
                    publisher=item.publisher,
                    language=item.language or source.language,
                    country=side,
                    stance=Stance.PROGRESS if confirmed else Stance.NEUTRAL,
                    milestone=m.milestone if confirmed else None,
                    review=Review.CONFIRMED if confirmed else Review.PENDING,
                    reviewed_by=source.name if confirmed else None,
                    reviewed_at=now if confirmed else None,
                    matched_terms=m.terms,
                    score=m.score,
                    created_at=now,
                    suggested_milestone=m.milestone,
                    suggested_stance=m.stance,
                    reasons=m.reasons,
                )
            )
    return found
