"""Google News search, read as RSS: one feed request per query of the source.

Each query runs as `https://news.google.com/rss/search?q=<query>&hl=…&gl=…&ceid=…`. The edition
follows `language`: en → hl=en-US gl=US ceid=US:en, fa → hl=fa gl=IR ceid=IR:fa,
az → hl=az gl=AZ ceid=AZ:az, ru → hl=ru gl=RU ceid=RU:ru (others use the en-US edition);
override with the `hl`, `gl` and `ceid` options. Query operators such as quoted phrases, OR,
`site:example.az` and `when:7d` work inside a query.
Items keep Google's own link (news.google.com/rss/articles/…: it cannot be turned into the
publisher's address reliably), the publisher's name and site from `<source>`, and the headline
without its " - Publisher" suffix. A clustered story (its description lists other outlets'
headlines) is matched on its own headline only; the other outlets are recorded as also
reporting it. Requests are spaced `min_interval` seconds apart (default 2).
If one query fails, the whole source fails and the reason names the query; nothing from that run
is kept, so a half-finished run never looks complete. An entry that cannot be used is skipped
and counted.
Note: Google's feed terms allow personal, non-commercial use.

Example (queries come from the catalog's queries.<language>, or one fixed `query`):
    [[source]]
    name = "google-news-fa"
    kind = "google_news"
    language = "fa"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from msgspec.structs import replace

from scrapers.base import Item, Outcome, SourceSpec, Validators, merge_skipped
from scrapers.errors import SourceError
from scrapers.http import HttpSession, raise_for_status
from scrapers.options import Options
from scrapers.rss import ACCEPT

__all__ = [
    "CREDENTIALS",
    "DEFAULT_BASE_URL",
    "NEEDS_COMMITMENT",
    "NEEDS_URL",
    "OPTIONS",
    "QUERY_KEY",
    "TRUSTED",
    "check_options",
    "edition",
    "fetch",
    "search_url",
]

NEEDS_URL = False
NEEDS_COMMITMENT = False
# One query per commitment, from the catalog's queries.<the source's language>.
QUERY_KEY: str | None = "language"
CREDENTIALS: dict[str, str] = {}
TRUSTED = False
DEFAULT_BASE_URL = "https://news.google.com/rss/search"
OPTIONS: dict[str, str] = {
    "base_url": f"search feed endpoint (default {DEFAULT_BASE_URL})",
    "hl": "interface language, e.g. en-US (default: from the source's language)",
    "gl": "country edition, e.g. US (default: from the source's language)",
    "ceid": "edition id COUNTRY:lang (default: <gl>:<language part of hl>)",
    "min_interval": "seconds between two requests to Google (default 2)",
}
_EDITIONS = {"en": ("en-US", "US"), "fa": ("fa", "IR"), "az": ("az", "AZ"), "ru": ("ru", "RU")}
_DEFAULT_INTERVAL = 2.0
_CODE = r"[A-Za-z0-9_-]{1,20}"


def edition(language: str, options: Options) -> tuple[str, str, str]:
    """(hl, gl, ceid) kept consistent: mismatched values make Google return odd feeds."""
    default_hl, default_gl = _EDITIONS.get(language.split("-")[0].lower(), _EDITIONS["en"])
    hl = options.matching("hl", default_hl, _CODE, "a language code such as en-US")
    gl = options.matching("gl", default_gl, _CODE, "a country code such as US")
    ceid = options.matching(
        "ceid", f"{gl}:{hl.split('-')[0]}", rf"{_CODE}:{_CODE}", "COUNTRY:lang, e.g. US:en"
    )
    return hl, gl, ceid


def _settings(options: Options, language: str) -> tuple[str, float, tuple[str, str, str]]:
    return (
        options.url("base_url", DEFAULT_BASE_URL),
        options.number("min_interval", _DEFAULT_INTERVAL, maximum=3600),
        edition(language, options),
    )


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad option values (the same checks run again at fetch time)."""
    _settings(Options(options), "en")


def search_url(base_url: str, query: str, hl: str, gl: str, ceid: str) -> str:
    params = urlencode({"q": query, "hl": hl, "gl": gl, "ceid": ceid}, safe=":")
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{params}"


def _strip_publisher(item: Item) -> Item:
    if item.publisher and item.title.endswith(f" - {item.publisher}"):
        return replace(item, title=item.title[: -len(item.publisher) - 3].rstrip())
    return item


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    base_url, interval, (hl, gl, ceid) = _settings(Options(spec.options), spec.language)
    if not spec.queries:
        raise SourceError("no queries configured for this source")
    items: list[Item] = []
    skipped: dict[str, int] = {}
    seen: set[tuple[str, str]] = set()
    last_status: int | None = None
    for slug, query in spec.queries:
        try:
            response = await session.fetch(
                search_url(base_url, query, hl, gl, ceid), accept=ACCEPT, min_interval=interval
            )
            raise_for_status(response)
            feed = await session.parse(
                _parse_feed,
                response.body,
                response.headers.get("content-type"),
                base_url=response.url,
                language=spec.language,
                settings=session.settings,
                clusters=True,
            )
        except SourceError as exc:
            raise SourceError(
                f'query "{query}": {exc.reason}',
                http_status=exc.http_status,
                retry_after=exc.retry_after,
            ) from None
        last_status = response.status
        merge_skipped(skipped, feed.skipped)
        for item in feed.items:
            key = (item.guid or item.url, slug)
            if key in seen:
                continue
            seen.add(key)
            items.append(replace(_strip_publisher(item), query_slug=slug))
    return Outcome(
        source=spec.name, state="ok", items=items, http_status=last_status, skipped=skipped
    )


def _parse_feed(*args: Any, **kwargs: Any) -> Any:
    """`scrapers.feeds.parse_feed`, named from here so that the refresh process, which parses
    nothing, does not load the parsers."""
    from scrapers.feeds import parse_feed

    return parse_feed(*args, **kwargs)
