"""From fetched items to evidence rows about to be stored: match, attribute, clean. Pure.

Which commitments an item is evidence for comes from the matcher (news) or from the item itself
(structured kinds such as an observed flight). What is already known is decided by the store
(`tracker.store.writes.store_found`): one row per commitment and canonical URL, rejected items never
coming back, syndicated copies becoming mentions.

Two halves, so that the costly one runs where the CPU is free:

- `MatchStep` matches a source's items (and checks their links, canonicalises their URLs and
  keys their titles). A refresh hands it to `scrapers.collect` as the post-processing step, so it
  runs in the parser process right after the feed is parsed, while other feeds download; it
  returns a `Matched` outcome holding only the items that are evidence of something.
- `evidence_rows` turns those into `NewEvidence` rows in the refresh process, where the clock and
  the source's trust settings are.

`found_evidence` does both in one process (the refresh's fallback, and tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from scrapers.base import Outcome
from tracker.dates import to_naive_utc
from tracker.text import clean_stored
from tracker.urls import canonical_url, check_url
from tracker.vocab import Review, Stance

if TYPE_CHECKING:
    from scrapers import Item
    from tracker.matching import Match, Matcher
    from tracker.sources import Source
    from tracker.store.records import NewEvidence

__all__ = [
    "Found",
    "Hit",
    "MatchStep",
    "Matched",
    "evidence_rows",
    "found_evidence",
    "match_items",
    "side_of",
]


NO_COMMITMENT = "about no commitment"
NON_WEB_LINK = "no usable web link"
UNKNOWN_COMMITMENT = "names an unknown commitment"

# One accepted match as plain values, so that it crosses between processes without the matcher:
# (slug, terms, score, milestone, stance, reasons), as in `tracker.matching.Match`.
HitMatch = tuple[str, tuple[str, ...], float, int | None, str | None, tuple[str, ...]]


class Hit(msgspec.Struct, frozen=True):
    """An item that is evidence of at least one commitment, ready to become rows."""

    item: Item
    canonical_url: str
    title_key: str
    matches: tuple[HitMatch, ...]


class Found(msgspec.Struct):
    """What one source's items are evidence for, and what could not be used."""

    evidence: list[NewEvidence] = msgspec.field(default_factory=list)
    matched: int = 0  # items that matched at least one commitment
    skipped: dict[str, int] = msgspec.field(default_factory=dict)  # items not used, by reason

    def skip(self, reason: str, n: int = 1) -> None:
        if n > 0:
            self.skipped[reason] = self.skipped.get(reason, 0) + n


class Matched(Outcome):
    """An outcome after `MatchStep`: `items` are only those that are evidence of something
    (`hits`, in the same order); `seen` counts every item the source sent, `unused` the others
    by reason."""

    hits: list[Hit] = msgspec.field(default_factory=list)
    seen: int = 0
    unused: dict[str, int] = msgspec.field(default_factory=dict)


def _web(url: str) -> bool:
    try:
        check_url(url)
    except ValueError:
        return False
    return True


def _side(country: str | None, item: Item) -> str | None:
    if country:
        return country
    for url in (item.publisher_url, item.url):
        host = (urlsplit(url).hostname or "") if url else ""
        if host.endswith(".ir"):
            return "IR"
        if host.endswith(".az"):
            return "AZ"
    return None


def side_of(source: Source, item: Item) -> str | None:
    """Which side published it: the source's setting, else the publisher's country domain."""
    return _side(source.country, item)


def _hits(
    item: Item,
    language: str,
    country: str | None,
    matcher: Matcher,
    commitments: Mapping[str, Any],
    found: Found,
) -> list[HitMatch]:
    """The commitments an item is evidence for: named by a structured item, or matched."""
    structured = item.structured or {}
    if structured.get("commitment"):
        slug = str(structured["commitment"])
        if slug not in commitments:
            found.skip(UNKNOWN_COMMITMENT)
            return []
        milestone = structured.get("milestone")
        return [(slug, (), 1.0, int(milestone) if milestone else None, Stance.PROGRESS, ())]
    text = item.title + "\n" + item.summary
    # The search query that found the item and the source's side inform the score.
    hits = [
        _plain(m)
        for m in matcher.match(
            text,
            item.language or language,
            query_slug=item.query_slug or None,
            side=_side(country, item),
        )
        if m.slug in commitments
    ]
    if not hits:
        found.skip(NO_COMMITMENT)  # nine items in ten: no URL work for them
    return hits


def _plain(m: Match) -> HitMatch:
    return (m.slug, m.terms, m.score, m.milestone, m.stance, m.reasons)


def match_items(
    items: list[Item],
    language: str,
    country: str | None,
    matcher: Matcher,
    commitments: Mapping[str, Any],
    title_key: Callable[[str], str],
) -> tuple[list[Hit], Found]:
    """The items that are evidence of something, with their matches; `Found.skipped` counts
    the others (no commitment, an unknown one, no usable web link)."""
    found = Found()
    hits: list[Hit] = []
    for item in items:
        matches = _hits(item, language, country, matcher, commitments, found)
        if not matches:
            continue
        try:
            check_url(item.url)
            item.url.encode("utf-8")  # a lone surrogate (from a JSON escape) cannot be stored
        except (ValueError, UnicodeEncodeError):
            found.skip(NON_WEB_LINK)
            continue
        key = clean_stored(title_key(clean_stored(item.title, 1000)), 1000)
        hits.append(Hit(item, canonical_url(item.url), key, tuple(matches)))
    return hits, found


class MatchStep:
    """The refresh's post-processing step (see `scrapers.collect.Postprocess`): matches each
    source's items in the parser process and returns a `Matched` outcome.

    It carries the catalog's rules, the learned model and each source's language and side; the
    matcher is compiled on first use in each process and kept (it is not pickled).
    """

    def __init__(
        self,
        rules: Mapping[str, Mapping[str, Any]],
        model: Mapping[str, Any] | None,
        sources: Mapping[str, tuple[str, str | None]],
    ) -> None:
        self.rules = dict(rules)
        self.model = model
        self.sources = dict(sources)  # name -> (language, country)
        self._matcher: Matcher | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"rules": self.rules, "model": self.model, "sources": self.sources}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._matcher = None

    def prepare(self) -> None:
        """Compile the matcher now (a parser process calls this when it receives the step)."""
        self.matcher()

    def matcher(self) -> Matcher:
        if self._matcher is None:
            from tracker.matching import Matcher, rules_from_mapping

            self._matcher = Matcher(
                (rules_from_mapping(slug, rules) for slug, rules in self.rules.items()), self.model
            )
        return self._matcher

    def __call__(self, outcome: Outcome) -> Outcome:
        from tracker.matching import normalize_title_key

        language, country = self.sources[outcome.source]
        hits, found = match_items(
            outcome.items, language, country, self.matcher(), self.rules, normalize_title_key
        )
        fields = {name: getattr(outcome, name) for name in Outcome.__struct_fields__}
        fields["items"] = [hit.item for hit in hits]
        return Matched(**fields, hits=hits, seen=len(outcome.items), unused=found.skipped)


def _confirms_itself(source: Source, item: Item, score: float) -> bool:
    """A source the user trusts (`confirm = "auto"`, by default only flight observations) enters
    its matches confirmed, at or above its `min_score`."""
    if source.confirm == "review":
        return False
    if source.confirm == "auto":
        return score >= source.min_score
    return bool((item.structured or {}).get("trusted"))


def evidence_rows(
    hits: list[Hit], source: Source, commitments: Mapping[str, int], now: datetime
) -> list[NewEvidence]:
    """The rows for what `match_items` found, stamped `now`."""
    from tracker.store.records import NewEvidence

    rows: list[NewEvidence] = []
    for hit in hits:
        item = hit.item
        published = to_naive_utc(item.published_at) if item.published_at else now
        published = min(published, now)  # a future date is a feed bug, not news from tomorrow
        also = tuple(
            (url, publisher)
            for url, publisher in getattr(item, "also_reported_by", ())
            if _web(url)
        )
        language, country = item.language or source.language, side_of(source, item)
        for slug, terms, score, milestone, stance, reasons in hit.matches:
            auto = _confirms_itself(source, item, score)
            rows.append(
                NewEvidence(
                    commitment_id=commitments[slug],
                    url=item.url,
                    canonical_url=hit.canonical_url,
                    title=item.title or item.url,
                    summary=item.summary,
                    title_key=hit.title_key,
                    published_at=published,
                    source=source.name,
                    publisher=item.publisher,
                    language=language,
                    country=country,
                    created_at=now,
                    also_reported_by=also,
                    stance=(stance or Stance.PROGRESS) if auto else Stance.NEUTRAL,
                    milestone=milestone if auto else None,
                    review=Review.CONFIRMED if auto else Review.PENDING,
                    reviewed_by=f"auto:{source.name}" if auto else None,
                    reviewed_at=now if auto else None,
                    matched_terms=terms,
                    score=score,
                    suggested_milestone=milestone,
                    suggested_stance=stance,
                    reasons=reasons,
                )
            )
    return rows


def found_evidence(
    items: list[Item],
    source: Source,
    matcher: Matcher,
    commitments: Mapping[str, int],
    now: datetime,
    title_key: Callable[[str], str],
) -> Found:
    """Which commitments each item is evidence for, as rows ready for the store."""
    hits, found = match_items(
        items, source.language, source.country, matcher, commitments, title_key
    )
    found.matched = len(hits)
    found.evidence = evidence_rows(hits, source, commitments, now)
    return found
