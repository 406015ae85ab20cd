"""Plain records shared by every source kind.

`scrapers/` knows HTTP and formats and nothing of commitments or the database: callers hand it a
`SourceSpec` and get back an `Outcome`, a value that never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

OutcomeState = Literal["ok", "unchanged", "failed", "disabled"]


@dataclass(frozen=True)
class SourceSpec:
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
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
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
    structured: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Validators:
    """What the server said last time, for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None
    # For the `page` kind: a hash of the watched part of the page as last seen.
    fingerprint: str | None = None
    # For the `page` kind: the watched text itself (capped), so that the next change can be
    # summarised as "what is new"; without it the summary is the start of the new text.
    snapshot: str | None = None


@dataclass
class Outcome:
    """The result of fetching one source. Errors are data here, never exceptions."""

    source: str
    state: OutcomeState
    items: list[Item] = field(default_factory=list)
    reason: str | None = None  # readable, one line; required for failed and disabled
    validators: Validators = field(default_factory=Validators)
    http_status: int | None = None
    elapsed: float = 0.0
    # Set when the server asked us to come back later (Retry-After past our cap).
    retry_after: float | None = None
