"""Any RSS 2.0, RSS 1.0 or Atom feed, e.g. an outlet's latest-news feed.

Set `url` to the feed address. Every entry with a link becomes an item: title, link, a plain-text
summary (HTML removed), publication date in UTC, GUID. Persian feeds in windows-1256 and Jalali
dates (`۷ مرداد ۱۴۰۴`) are understood; a date more than a day in the future is treated as unknown.
The server's ETag / Last-Modified are sent back next time, so an unchanged feed costs one small
request and reports "unchanged". Broken XML is read leniently; an HTML page where the feed should
be fails with "not a feed". Entries with a GUID already seen in the feed are dropped, and at
most 500 entries per feed are kept.

Example:
    [[source]]
    name = "irna-en"
    kind = "rss"
    language = "en"
    url = "https://en.irna.ir/rss"
"""

from __future__ import annotations

from dataclasses import replace

from scrapers.base import Outcome, SourceSpec, Validators
from scrapers.feeds import parse_feed
from scrapers.http import HttpSession, raise_for_status

__all__ = ["ACCEPT", "NEEDS_URL", "OPTIONS", "fetch"]

NEEDS_URL = True
OPTIONS: dict[str, str] = {}
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    assert spec.url is not None  # checked by collect() from NEEDS_URL
    response = await session.fetch(spec.url, validators=validators, accept=ACCEPT)
    if response.status == 304:
        return Outcome(
            source=spec.name,
            state="unchanged",
            validators=response.validators(validators),
            http_status=304,
        )
    raise_for_status(response)
    feed = parse_feed(
        response.body,
        response.headers.get("content-type"),
        base_url=response.url,
        language=spec.language,
        settings=session.settings,
    )
    # The channel title names the outlet when entries do not carry their own <source>.
    items = [item if item.publisher else replace(item, publisher=feed.title) for item in feed.items]
    return Outcome(
        source=spec.name,
        state="ok",
        items=items,
        validators=response.validators(validators),
        http_status=response.status,
    )
