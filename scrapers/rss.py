"""Any RSS 2.0, RSS 1.0, RSS 0.9x, Atom 1.0 or Atom 0.3 feed, e.g. an outlet's latest-news feed.

Set `url` to the feed address. Every entry with a web link becomes an item: title, link (for
Atom the rel="alternate" one), a plain-text summary (HTML removed), publication date in UTC,
GUID. Dates are read from pubDate, dc:date, dcterms:issued/modified and Atom published/updated;
offsets like +03:30 and zone names like IRST, AZT or MSK are understood, and a date in an
unknown zone is left unknown rather than taken as UTC. Persian feeds in windows-1256 and Jalali
dates (`۷ مرداد ۱۴۰۴`, `۱۴۰۴/۰۴/۲۸ ۱۰:۳۰`, read as Tehran time) are understood; a date more than
a day in the future is treated as unknown. The server's ETag / Last-Modified are sent back next
time, so an unchanged feed costs one small request and reports "unchanged". Broken XML is read
leniently; an HTML page where the feed should be fails with "not a feed". An entry that cannot
be used (no link, a link that is not a web address, unreadable) is skipped and counted, never
failing the others. Entries with a GUID already seen in the feed are dropped, and at most 500
entries per feed are kept.

Example:
    [[source]]
    name = "irna-en"
    kind = "rss"
    language = "en"
    url = "https://en.irna.ir/rss"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scrapers.base import Outcome, SourceSpec, Validators

if TYPE_CHECKING:
    from scrapers.http import HttpSession

__all__ = [
    "ACCEPT",
    "CREDENTIALS",
    "NEEDS_COMMITMENT",
    "NEEDS_URL",
    "OPTIONS",
    "QUERY_KEY",
    "TRUSTED",
    "check_options",
    "fetch",
]

NEEDS_URL = True
NEEDS_COMMITMENT = False
QUERY_KEY: str | None = None
CREDENTIALS: dict[str, str] = {}
TRUSTED = False
OPTIONS: dict[str, str] = {}
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


def check_options(options: Mapping[str, Any]) -> None:
    """The kind has no options of its own; unknown keys are refused by the caller."""


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    from scrapers.http import raise_for_status

    assert spec.url is not None  # checked by collect() from NEEDS_URL
    check_options(spec.options)
    response = await session.fetch(spec.url, validators=validators, accept=ACCEPT)
    if response.status == 304:
        return Outcome(
            source=spec.name,
            state="unchanged",
            validators=response.validators(validators),
            http_status=304,
        )
    raise_for_status(response)
    # Parsed, and post-processed if the run asks for it, in one call to a parser process; the
    # channel title names the outlet when entries do not carry their own <source>.
    return await session.parse_outcome(
        _feed_outcome,
        response.body,
        response.headers.get("content-type"),
        source=spec.name,
        validators=response.validators(validators),
        http_status=response.status,
        base_url=response.url,
        language=spec.language,
        settings=session.settings,
    )


def _feed_outcome(*args: Any, **kwargs: Any) -> Outcome:
    """`scrapers.feeds.feed_outcome`, named from this light module: the refresh process only
    names the parser; the parser process, which runs it, has scrapers.feeds loaded already."""
    from scrapers.feeds import feed_outcome

    return feed_outcome(*args, **kwargs)
