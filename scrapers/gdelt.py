"""GDELT DOC 2.0 article search: worldwide news in ~65 languages, one request per query.

Each query runs as `https://api.gdeltproject.org/api/v2/doc/doc?query=…&mode=artlist&format=json
&maxrecords=250&sort=DateDesc&timespan=7d`. GDELT searches the *English translation* of every
article, so write queries in English and narrow them with `sourcecountry` / `sourcelang`:
`sourcecountry = ["IR", "AJ"]` becomes `(sourcecountry:IR OR sourcecountry:AJ)` (FIPS codes:
Iran IR, Azerbaijan AJ, not AZ). OR'd terms in a query must be in parentheses and every keyword
needs 4+ letters, or GDELT rejects the query. Titles come back in the original language.
GDELT allows one request every 5 seconds; requests are spaced `min_interval` seconds apart
(default 5). A rejected query or "Please limit requests…" fails the whole source with GDELT's own
words and the query named; nothing from that run is kept. One broken article in an answer (GDELT
sometimes sends an invalid backslash escape or a stray control character in a title) is repaired
or skipped and counted; the other articles are kept.

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
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from scrapers.base import (
    SKIP_BAD_RECORD,
    SKIP_NO_LINK,
    SKIP_NOT_WEB_LINK,
    Item,
    Outcome,
    SourceSpec,
    Validators,
    count_skipped,
    merge_skipped,
)
from scrapers.errors import SourceError, one_line
from scrapers.http import HttpSession, Response, raise_for_status
from scrapers.options import Options
from scrapers.text import html_to_text

__all__ = [
    "CREDENTIALS",
    "DEFAULT_BASE_URL",
    "NEEDS_COMMITMENT",
    "NEEDS_URL",
    "OPTIONS",
    "QUERY_KEY",
    "TRUSTED",
    "Articles",
    "check_options",
    "fetch",
    "parse_articles",
    "query_url",
]

NEEDS_URL = False
NEEDS_COMMITMENT = False
# One query per commitment, from the catalog's queries.gdelt (English, OR groups in parentheses).
QUERY_KEY: str | None = "gdelt"
CREDENTIALS: dict[str, str] = {}
TRUSTED = False
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
# A backslash with what may follow it in JSON; anything else after it is an invalid escape.
_ESCAPE = re.compile(r'\\(["\\/bfnrt]|u[0-9a-fA-F]{4})?')
_ARTICLES_KEY = re.compile(r'"articles"\s*:\s*\[')
_ARTICLE_START = re.compile(r'\{\s*"url"\s*:')
# An article is a few hundred bytes; one past this size is broken or hostile.
_WINDOW, _MAX_ARTICLE = 1024, 64 * 1024
_TIMESPAN = re.compile(r"(\d{1,6})\s?(min|minutes?|h|hours?|d|days?|w|weeks?|m|months?)")
_TIMESPAN_MINUTES = {"min": 1, "h": 60, "d": 1440, "w": 10080, "m": 43200}
_FILTER_WORD = r"[A-Za-z][A-Za-z0-9]{1,39}"
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
    words = options.words(name)
    for word in words:
        if not re.fullmatch(_FILTER_WORD, word):
            raise SourceError(
                f"option '{name}' must be codes or names such as IR or persian, got {word!r}"
            )
    terms = [f"{name}:{value}" for value in words]
    if len(terms) > 1:
        return "(" + " OR ".join(terms) + ")"
    return terms[0] if terms else ""


def _timespan(options: Options) -> str:
    value = options.text("timespan", "7d")
    match = _TIMESPAN.fullmatch(value)
    if match is None:
        raise SourceError(
            f"option 'timespan' must look like 15min, 24h, 7d, 2w or 3m, got {value!r}"
        )
    unit = match.group(2)
    unit = "min" if unit.startswith("min") else unit[0]
    if int(match.group(1)) * _TIMESPAN_MINUTES[unit] < 15:
        raise SourceError(f"option 'timespan' must be at least 15 minutes, got {value!r}")
    return value


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
        "timespan": _timespan(options),
    }
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode(params)}"


def _settings(options: Options) -> tuple[str, float]:
    base_url = options.url("base_url", DEFAULT_BASE_URL)
    interval = options.number("min_interval", _DEFAULT_INTERVAL, maximum=3600)
    query_url(base_url, "", options)  # checks maxrecords, timespan and the filters
    return base_url, interval


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad option values (the same checks run again at fetch time)."""
    _settings(Options(options))


def _seendate(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    for fmt in _SEENDATE_FORMATS:
        try:
            return datetime.strptime(value.strip()[:20], fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _repair(text: str) -> str:
    """Invalid backslash escapes made literal, stray control characters made spaces."""
    text = _ESCAPE.sub(lambda m: m.group(0) if m.group(1) else "\\\\", text)
    return _CONTROL_CHARS.sub(" ", text)


def _decode_one(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int]:
    """(the article at `start` or None, where to look for the next one).

    Decoded from a window of the text, grown while the error is near the window's edge (the
    article may just be longer): a decoding error costs time in proportion to the document it
    was given, so the whole text would make many broken articles quadratic.
    """
    size = _WINDOW
    while True:
        window = text[start : start + size]
        try:
            article, end = decoder.raw_decode(window)
            return article, start + end
        except json.JSONDecodeError as exc:
            truncated = len(window) == size and exc.pos >= size - _WINDOW // 2
            if truncated and size < _MAX_ARTICLE:
                size *= 4
                continue
            # The next article may begin just before where this one broke (an unterminated
            # title runs into it), so look again a little before that point.
            return None, start + max(1, exc.pos - 64)


def _salvage(text: str, error: json.JSONDecodeError) -> tuple[list[Any], int]:
    """Each article decoded on its own: (those that decode, how many did not)."""
    key = _ARTICLES_KEY.search(text)
    if key is None:
        raise SourceError(f"malformed JSON from GDELT: {error}")
    decoder = json.JSONDecoder(strict=False)
    articles: list[Any] = []
    broken = 0
    pos = key.end()
    while (start := _ARTICLE_START.search(text, pos)) is not None:
        article, pos = _decode_one(decoder, text, start.start())
        if article is None:
            broken += 1
        else:
            articles.append(article)
    if not articles:
        raise SourceError(f"malformed JSON from GDELT: {error}")
    return articles, broken


def _load_articles(text: str) -> tuple[list[Any], int]:
    """GDELT's article list and how many articles could not be read at all."""
    try:
        payload = json.loads(text, strict=False)
    except json.JSONDecodeError as first:
        repaired = _repair(text)
        try:
            payload = json.loads(repaired, strict=False)
        except json.JSONDecodeError:
            return _salvage(repaired, first)
    if not isinstance(payload, dict):
        raise SourceError("malformed JSON from GDELT: expected an object")
    articles = payload.get("articles") or []
    if not isinstance(articles, list):
        raise SourceError("malformed JSON from GDELT: 'articles' is not a list")
    return articles, 0


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
        detail = one_line(html_to_text(stripped[:2000]), 200)
        raise SourceError(f"GDELT returned an HTML page instead of JSON: {detail}")
    raise SourceError(f"GDELT: {one_line(stripped[:2000], 200)}")


class Articles(msgspec.Struct):
    items: list[Item] = msgspec.field(default_factory=list)
    skipped: dict[str, int] = msgspec.field(default_factory=dict)


def _article_item(
    article: Any, slug: str, max_title_chars: int, now: datetime, max_future_seconds: float
) -> Item | str:
    """The article as an Item, or the reason it was skipped."""
    if not isinstance(article, dict):
        return SKIP_BAD_RECORD
    raw_url = article.get("url")
    if raw_url is not None and not isinstance(raw_url, str):
        return SKIP_BAD_RECORD
    from scrapers.feeds import web_link  # in the parser process, where it is loaded

    try:
        url = web_link(raw_url, "")
    except ValueError:
        return SKIP_NOT_WEB_LINK
    if url is None:
        return SKIP_NO_LINK
    seen = _seendate(article.get("seendate"))
    if seen is not None and (seen - now).total_seconds() > max_future_seconds:
        seen = None
    domain = article.get("domain")
    language = article.get("language")
    title = article.get("title")
    return Item(
        title=html_to_text(title if isinstance(title, str) else "", max_title_chars) or url,
        url=url,
        published_at=seen,
        publisher=html_to_text(domain, 300) or None if isinstance(domain, str) else None,
        language=_LANGUAGE_CODES.get(language.strip().lower())
        if isinstance(language, str)
        else None,
        query_slug=slug,
    )


def parse_articles(
    text: str, *, slug: str, max_title_chars: int, now: datetime, max_future_seconds: float
) -> Articles:
    """`{"articles": [...]}` to Items; `{}`, `{"articles": []}` and an empty body mean none.

    Pure and picklable both ways, so it can run in a worker process. A broken article is
    repaired (an invalid escape becomes a literal backslash) or skipped and counted.
    """
    result = Articles()
    if not text.strip():
        return result
    articles, broken = _load_articles(text)
    count_skipped(result.skipped, SKIP_BAD_RECORD, broken)
    for article in articles:
        try:
            made = _article_item(article, slug, max_title_chars, now, max_future_seconds)
        except Exception:  # one odd article must not cost the others
            made = SKIP_BAD_RECORD
        if isinstance(made, str):
            count_skipped(result.skipped, made)
        else:
            result.items.append(made)
    return result


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    options = Options(spec.options)
    base_url, interval = _settings(options)
    if not spec.queries:
        raise SourceError("no queries configured for this source")
    settings = session.settings
    # Built up front so that a bad option is reported as such, not as a failed query.
    urls = [(slug, query, query_url(base_url, query, options)) for slug, query in spec.queries]
    items: list[Item] = []
    skipped: dict[str, int] = {}
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
            found = await session.parse(
                parse_articles,
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
        merge_skipped(skipped, found.skipped)
        for item in found.items:
            if (item.url, slug) not in seen:
                seen.add((item.url, slug))
                items.append(item)
    return Outcome(
        source=spec.name, state="ok", items=items, http_status=last_status, skipped=skipped
    )
