"""Watch one web page, or one part of it, and report when its text changes.

Set `url`, the option `commitment` (required: the commitment slug a change is evidence for) and,
optionally, `selector` (CSS, default `body`) to watch only part of the page, and `title` to name
it. The first run records a baseline and reports nothing. After that, each change of the watched
text becomes one item "Page changed: <title>" whose summary starts with the text that is new; a
person reviews it (page changes are never trusted on their own). Scripts, styles and whitespace
are ignored, so only visible text counts. A selector that matches nothing fails the source: the
page was probably redesigned and the selector needs updating.

Example:
    [[source]]
    name = "airline-timetable"
    kind = "page"
    language = "en"
    url = "https://airline.example/en/timetable"
    commitment = "tabriz-baku-flight"
    selector = "main"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scrapers.base import Item, Outcome, SourceSpec, Validators
from scrapers.errors import SourceError
from scrapers.http import HttpSession, raise_for_status
from scrapers.options import Options
from scrapers.text import html_to_lines, truncate

__all__ = [
    "CREDENTIALS",
    "NEEDS_COMMITMENT",
    "NEEDS_URL",
    "OPTIONS",
    "QUERY_KEY",
    "TRUSTED",
    "change_url",
    "check_options",
    "fetch",
    "watched_text",
]

NEEDS_URL = True
NEEDS_COMMITMENT = True
QUERY_KEY: str | None = None
CREDENTIALS: dict[str, str] = {}
TRUSTED = False
OPTIONS: dict[str, str] = {
    "commitment": "commitment slug that a change of this page is evidence for (required)",
    "selector": "CSS selector of the part to watch (default: body)",
    "title": "name used in 'Page changed: …' (default: the source name)",
}
_PAGE_TYPES = frozenset({"", "text/html", "application/xhtml+xml"})
_INVISIBLE_TAGS = ["script", "style", "noscript", "template"]


# selectolax is imported where a page is parsed or a selector checked: a run with no page
# source (most runs) does not load it.


def _check_selector(selector: str) -> None:
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    try:
        LexborHTMLParser("<html></html>").css(selector)
    except (SelectolaxError, ValueError):
        raise SourceError(f"invalid CSS selector '{selector}'") from None


def _settings(options: Options) -> tuple[str | None, str, str | None]:
    """(commitment, selector, title); the commitment may be missing here (NEEDS_COMMITMENT
    makes the caller require it), and is required again at fetch time."""
    commitment = options.optional_text("commitment")
    raw = options.raw("selector")
    if isinstance(raw, str) and not raw.strip():
        raise SourceError("option 'selector' must not be empty (leave it out to watch the body)")
    selector = options.text("selector", "body")
    if len(selector) > 1000:
        raise SourceError("option 'selector' must be at most 1000 characters")
    _check_selector(selector)
    title = options.optional_text("title")
    return commitment, selector, title


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad option values (the same checks run again at fetch time)."""
    _settings(Options(options))


def watched_text(html: str, selector: str) -> str:
    """The visible text under `selector`, one normalised line per block."""
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    tree = LexborHTMLParser(html)
    tree.strip_tags(_INVISIBLE_TAGS)
    try:
        nodes = tree.css(selector)
    except (SelectolaxError, ValueError):
        raise SourceError(f"invalid CSS selector '{selector}'") from None
    if not nodes:
        raise SourceError(f"selector '{selector}' matched nothing")
    return "\n".join(line for node in nodes for line in html_to_lines(node.html or ""))


def change_url(url: str, fingerprint: str) -> str:
    """A distinct URL per version, so each change is its own piece of evidence."""
    parts = urlsplit(url)
    marker = f"tracker-change={fingerprint[:12]}"
    query = f"{parts.query}&{marker}" if parts.query else marker
    return urlunsplit(parts._replace(query=query))


def _what_is_new(old: str | None, new: str, limit: int) -> str:
    if old is None:
        return truncate(new.replace("\n", " "), limit)
    before = set(old.splitlines())
    added = [line for line in new.splitlines() if line not in before]
    if added:
        return truncate(" ".join(added), limit)
    after = set(new.splitlines())
    removed = [line for line in old.splitlines() if line not in after]
    return truncate("Removed: " + " ".join(removed), limit) if removed else ""


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    assert spec.url is not None  # checked by collect() from NEEDS_URL
    options = Options(spec.options)
    commitment = options.required_text("commitment", "page")
    _, selector, title_option = _settings(options)
    title = title_option or spec.name
    settings = session.settings
    # Without a baseline a 304 would leave nothing to compare against, so ask unconditionally.
    conditional = validators if validators.fingerprint else None
    response = await session.fetch(
        spec.url,
        validators=conditional,
        accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.5",
    )
    if response.status == 304:
        return Outcome(
            source=spec.name,
            state="unchanged",
            validators=response.validators(validators),
            http_status=304,
        )
    raise_for_status(response)
    if response.content_type not in _PAGE_TYPES:
        raise SourceError(f"not a web page: got {response.content_type}")
    text = await session.parse(watched_text, response.text("html", spec.language), selector)
    fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
    fresh = response.validators()
    stored = Validators(
        etag=fresh.etag,
        last_modified=fresh.last_modified,
        fingerprint=fingerprint,
        snapshot=text[: settings.max_snapshot_chars],
    )
    if validators.fingerprint is None:
        return Outcome(source=spec.name, state="ok", validators=stored, http_status=response.status)
    if validators.fingerprint == fingerprint:
        return Outcome(
            source=spec.name, state="unchanged", validators=stored, http_status=response.status
        )
    item = Item(
        title=truncate(f"Page changed: {title}", settings.max_title_chars),
        url=change_url(spec.url, fingerprint),
        summary=_what_is_new(validators.snapshot, text, settings.page_summary_chars),
        published_at=datetime.now(UTC),
        language=spec.language,
        structured={"commitment": commitment, "trusted": False},
    )
    return Outcome(
        source=spec.name, state="ok", items=[item], validators=stored, http_status=response.status
    )
