"""From fetched items to evidence rows about to be stored: match, attribute, clean. Pure.

Which commitments an item is evidence for comes from the matcher (news) or from the item itself
(structured kinds such as an observed flight). What is already known is decided by the store
(`tracker.store.writes.store_found`): one row per commitment and canonical URL, rejected items never
coming back, syndicated copies becoming mentions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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


NO_COMMITMENT = "about no commitment"
NON_WEB_LINK = "no usable web link"
UNKNOWN_COMMITMENT = "names an unknown commitment"


@dataclass
class Found:
    """What one source's items are evidence for, and what could not be used."""

    evidence: list[NewEvidence] = field(default_factory=list)
    matched: int = 0  # items that matched at least one commitment
    skipped: dict[str, int] = field(default_factory=dict)  # items not used, by reason

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _web(url: str) -> bool:
    try:
        check_url(url)
    except ValueError:
        return False
    return True


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


def _hits(
    item: Item, source: Source, matcher: Matcher, commitments: Mapping[str, int], found: Found
) -> list[Match]:
    """The commitments an item is evidence for: named by a structured item, or matched."""
    structured = item.structured or {}
    if structured.get("commitment"):
        slug = str(structured["commitment"])
        if slug not in commitments:
            found.skip(UNKNOWN_COMMITMENT)
            return []
        milestone = structured.get("milestone")
        return [
            Match(
                slug,
                (),
                1.0,
                "structured",
                milestone=int(milestone) if milestone else None,
                stance=Stance.PROGRESS,
            )
        ]
    text = item.title + "\n" + item.summary
    # The search query that found the item and the source's side inform the score.
    hits = [
        m
        for m in matcher.match(
            text,
            item.language or source.language,
            query_slug=item.query_slug or None,
            side=side_of(source, item),
        )
        if m.slug in commitments
    ]
    if not hits:
        found.skip(NO_COMMITMENT)  # nine items in ten: no URL work for them
    return hits


def _confirms_itself(source: Source, item: Item, match: Match) -> bool:
    """A source the user trusts (`confirm = "auto"`, by default only flight observations) enters
    its matches confirmed, at or above its `min_score`."""
    if source.confirm == "review":
        return False
    if source.confirm == "auto":
        return match.score >= source.min_score
    return bool((item.structured or {}).get("trusted"))


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
        hits = _hits(item, source, matcher, commitments, found)
        if not hits:
            continue
        try:
            check_url(item.url)
            item.url.encode("utf-8")  # a lone surrogate (from a JSON escape) cannot be stored
        except (ValueError, UnicodeEncodeError):
            found.skip(NON_WEB_LINK)
            continue
        found.matched += 1
        published = to_naive_utc(item.published_at) if item.published_at else now
        published = min(published, now)  # a future date is a feed bug, not news from tomorrow
        base = NewEvidence(
            commitment_id=0,
            url=item.url,
            canonical_url=canonical_url(item.url),
            title=item.title or item.url,
            summary=item.summary,
            title_key=clean_stored(title_key(clean_stored(item.title, 1000)), 1000),
            published_at=published,
            source=source.name,
            publisher=item.publisher,
            language=item.language or source.language,
            country=side_of(source, item),
            created_at=now,
            also_reported_by=tuple(
                (url, publisher)
                for url, publisher in getattr(item, "also_reported_by", ())
                if _web(url)
            ),
        )
        for m in hits:
            auto = _confirms_itself(source, item, m)
            found.evidence.append(
                replace(
                    base,
                    commitment_id=commitments[m.slug],
                    stance=(m.stance or Stance.PROGRESS) if auto else Stance.NEUTRAL,
                    milestone=m.milestone if auto else None,
                    review=Review.CONFIRMED if auto else Review.PENDING,
                    reviewed_by=f"auto:{source.name}" if auto else None,
                    reviewed_at=now if auto else None,
                    matched_terms=m.terms,
                    score=m.score,
                    suggested_milestone=m.milestone,
                    suggested_stance=m.stance,
                    reasons=m.reasons,
                )
            )
    return found
