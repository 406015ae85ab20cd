"""Plain records shared by every source kind.

`scrapers/` knows HTTP and formats and nothing of commitments or the database: callers hand it a
`SourceSpec` and get back an `Outcome`, a value that never raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

OutcomeState = Literal["ok", "unchanged", "failed", "disabled"]

# Reasons for `Outcome.skipped`: what a source sent that could not become an item.
SKIP_BAD_RECORD = "bad record"  # unreadable: broken JSON object, a field of the wrong type …
SKIP_NO_LINK = "no link"  # nothing to cite
SKIP_NOT_WEB_LINK = "not a web link"  # javascript:, mailto:, data: …
SKIP_ITEM_CAP = "over the item cap"  # beyond HttpSettings.max_items_per_feed
SKIP_CREDIT_BUDGET = "credit budget"  # a request not made to stay within the credit budget


def count_skipped(skipped: dict[str, int], reason: str, n: int = 1) -> None:
    if n > 0:
        skipped[reason] = skipped.get(reason, 0) + n


def merge_skipped(into: dict[str, int], more: dict[str, int]) -> None:
    for reason, n in more.items():
        count_skipped(into, reason, n)


class SourceSpec(msgspec.Struct, frozen=True):
    """One configured source, already validated by the caller."""

    name: str
    kind: str
    language: str
    url: str | None = None
    country: str | None = None
    # Search kinds (google_news, gdelt) run one request per query; the tuple holds
    # (commitment slug or "", query text) so that results can be attributed.
    queries: tuple[tuple[str, str], ...] = ()
    # Kind-specific options straight from the sources file (selector, airports, filters, ...).
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class Item(msgspec.Struct, frozen=True):
    """One thing a source returned: an article, a flight, a page change."""

    title: str
    url: str
    summary: str = ""
    published_at: datetime | None = None  # timezone-aware UTC, or None when unknown
    guid: str | None = None
    publisher: str | None = None
    publisher_url: str | None = None
    language: str | None = None
    # For search kinds: the commitment slug whose query produced the item ("" when none).
    query_slug: str = ""
    # For structured kinds: facts that decide a commitment by themselves (a flight observed).
    # Keys: "commitment" (slug), "milestone" (int), "trusted" (bool), plus kind-specific facts.
    structured: dict[str, Any] = msgspec.field(default_factory=dict)
    # Other outlets carrying the same story, as (url, publisher) pairs: the other headlines of a
    # Google News cluster. They are never matched on; they only say who else reported it.
    also_reported_by: tuple[tuple[str, str], ...] = ()


class Validators(msgspec.Struct, frozen=True):
    """What the server said last time, for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    # For the `page` kind: a hash of the watched part of the page as last seen.
    fingerprint: str | None = None
    # Kind-specific memory between runs. For the `page` kind: the watched text itself (capped),
    # so that the next change can be summarised as "what is new"; without it the summary is the
    # start of the new text. For `opensky`: a small JSON record of the credits spent today and
    # the days already read, so that a past day costs its credits once.
    snapshot: str | None = None


class Outcome(msgspec.Struct):
    """The result of fetching one source. Errors are data here, never exceptions."""

    source: str
    state: OutcomeState
    items: list[Item] = msgspec.field(default_factory=list)
    reason: str | None = None  # readable, one line; required for failed and disabled
    validators: Validators = msgspec.field(default_factory=Validators)
    http_status: int | None = None
    elapsed: float = 0.0
    # Set when the server asked us to come back later (Retry-After past our cap).
    retry_after: float | None = None
    # Records the source sent that could not become items, by reason (SKIP_* above): one bad
    # record never sinks a source, but it is counted and shown.
    skipped: dict[str, int] = msgspec.field(default_factory=dict)
    # What the service says is left of its quota after this run (OpenSky's
    # X-Rate-Limit-Remaining: credits left today); None when it did not say.
    rate_limit_remaining: int | None = None
    # The run's post-processing step (collect's `postprocess`) has already run on it.
    postprocessed: bool = False
