"""GDELT DOC 2.0 article search: worldwide news in ~65 languages, one request per query.

Each query runs as `https://api.gdeltproject.org/api/v2/doc/doc?query=…&mode=artlist&format=json
&maxrecords=250&sort=DateDesc&timespan=7d`. GDELT searches the *English translation* of every
article, so write queries in English and narrow them with `sourcecountry` / `sourcelang`:
`sourcecountry = ["IR", "AJ"]` becomes `(sourcecountry:IR OR sourcecountry:AJ)` (FIPS codes:
Iran IR, Azerbaijan AJ, not AZ). OR'd terms in a query must be in parentheses and every keyword
needs 4+ letters, or GDELT rejects the query. Titles come back in the original language.
GDELT allows one request every 5 seconds; requests are spaced `min_interval` seconds apart
(default 5). A rejected query or "Please limit requests…" fails the whole source with GDELT's own
words and the query named; nothing from that run is kept.

Example (queries come from the catalog's queries.gdelt, or one fixed `query`):
    [[source]]
    name = "gdelt"
    kind = "gdelt"
    language = "en"
    sourcecountry = ["IR", "AJ"]
    timespan = "7d"
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from scrapers.base import Item, Outcome, SourceSpec, Validators
from scrapers.errors import SourceError, one_line
from scrapers.http import HttpSession, Response, raise_for_status
from scrapers.options import Options
from scrapers.text import html_to_text, truncate

__all__ = ["DEFAULT_BASE_URL", "NEEDS_URL", "OPTIONS", "fetch", "parse_articles", "query_url"]

NEEDS_URL = False
DEFAULT_BASE_URL = "https://api.gdeltproject.org/api/v2/doc/doc"
OPTIONS: dict[str, str] = {
    "base_url": f"API endpoint (default {DEFAULT_BASE_URL})",
    "timespan": "how far back to search: 15min, 24h, 7d, 2w, 3m (default 7d)",
    "maxrecords": "articles per query, 1–250 (default 250)",
    "sourcecountry": 'FIPS country code(s) to keep, e.g. ["IR", "AJ"], or a ready filter',
    "sourcelang": 'source language(s) to keep, e.g. "persian", or a ready filter',
    "min_interval": "seconds between two requests to GDELT (default 5)",
}
_DEFAULT_INTERVAL = 5.0
_RATE_LIMIT_TEXT = "please limit requests"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEENDATE_FORMATS = ("%Y%m%dT%H%M%SZ", "%Y%m%d%H%M%S")
# GDELT names languages in English; the matcher wants the codes the sources file uses.
_LANGUAGE_CODES = {
    "english": "en",
    "persian": "fa",
    "azerbaijani": "az",
    "russian": "ru",
    "turkish": "tr",
    "arabic": "ar",
    "armenian": "hy",
    "georgian": "ka",
}


def _filter(options: Options, name: str) -> str:
    raw = options.raw(name)
    if isinstance(raw, str) and ":" in raw:
        return raw.strip()  # already a GDELT expression
    terms = [f"{name}:{value}" for value in options.words(name)]
    if len(terms) > 1:
        return "(" + " OR ".join(terms) + ")"
    return terms[0] if terms else ""


def query_url(base_url: str, query: str, options: Options) -> str:
    """The request for one query, with the source's filters and limits appended."""
    expression = " ".join(
        part
        for part in (query, _filter(options, "sourcecountry"), _filter(options, "sourcelang"))
        if part
    )
    params = {
        "query": expression,
        "mode": "artlist",
        "format": "json",
        "maxrecords": str(options.integer("maxrecords", 250, minimum=1, maximum=250)),
        "sort": "DateDesc",
        "timespan": options.text("timespan", "7d"),
    }
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode(params)}"


def _seendate(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in _SEENDATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads(_CONTROL_CHARS.sub(" ", text), strict=False)
    except json.JSONDecodeError as exc:
        raise SourceError(f"malformed JSON from GDELT: {exc}") from None


def _check_text_answer(response: Response, text: str) -> None:
    """GDELT reports rate limits and bad queries as a line of text, often with status 200."""
    stripped = text.strip()
    if stripped.lower().startswith(_RATE_LIMIT_TEXT) or response.status == 429:
        words = one_line(stripped, 200) if stripped else f"HTTP {response.status}"
        raise SourceError(f"rate limited: {words}", http_status=response.status)
    raise_for_status(response)
    if not stripped or stripped.startswith(("{", "[")):
        return
    if stripped.startswith("<"):
        detail = one_line(html_to_text(stripped), 200)
        raise SourceError(f"GDELT returned an HTML page instead of JSON: {detail}")
    raise SourceError(f"GDELT: {one_line(stripped, 200)}")


def parse_articles(
    text: str, *, slug: str, max_title_chars: int, now: datetime, max_future_seconds: float
) -> list[Item]:
    """`{"articles": [...]}` to Items; `{}`, `{"articles": []}` and an empty body mean none."""
    if not text.strip():
        return []
    payload = _load_json(text)
    if not isinstance(payload, dict):
        raise SourceError("malformed JSON from GDELT: expected an object")
    articles = payload.get("articles") or []
    if not isinstance(articles, list):
        raise SourceError("malformed JSON from GDELT: 'articles' is not a list")
    items: list[Item] = []
    for article in articles:
        if not isinstance(article, dict):
            continue
        url = article.get("url")
        if not isinstance(url, str) or not url.strip():
            continue
        seen = _seendate(article.get("seendate"))
        if seen is not None and (seen - now).total_seconds() > max_future_seconds:
            seen = None
        domain = article.get("domain") if isinstance(article.get("domain"), str) else None
        language = str(article.get("language") or "").strip().lower()
        title = html_to_text(str(article.get("title") or "")) or url
        items.append(
            Item(
                title=truncate(title, max_title_chars),
                url=url.strip(),
                published_at=seen,
                publisher=domain or None,
                language=_LANGUAGE_CODES.get(language),
                query_slug=slug,
            )
        )
    return items


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    options = Options(spec.options)
    base_url = options.text("base_url", DEFAULT_BASE_URL)
    interval = options.number("min_interval", _DEFAULT_INTERVAL)
    if not spec.queries:
        raise SourceError("no queries configured for this source")
    settings = session.settings
    # Built up front so that a bad option is reported as such, not as a failed query.
    urls = [(slug, query, query_url(base_url, query, options)) for slug, query in spec.queries]
    items: list[Item] = []
    seen: set[tuple[str, str]] = set()
    last_status: int | None = None
    for slug, query, url in urls:
        try:
            response = await session.fetch(
                url,
                accept="application/json",
                min_interval=interval,
            )
            text = response.text("text")
            _check_text_answer(response, text)
            found = parse_articles(
                text,
                slug=slug,
                max_title_chars=settings.max_title_chars,
                now=datetime.now(UTC),
                max_future_seconds=settings.max_future_seconds,
            )
        except SourceError as exc:
            raise SourceError(
                f'query "{query}": {exc.reason}',
                http_status=exc.http_status,
                retry_after=exc.retry_after,
            ) from None
        last_status = response.status
        for item in found:
            if (item.url, slug) not in seen:
                seen.add((item.url, slug))
                items.append(item)
    return Outcome(source=spec.name, state="ok", items=items, http_status=last_status)
