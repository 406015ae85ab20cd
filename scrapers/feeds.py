"""RSS 2.0 / Atom / RSS 1.0 bodies to Items.

lxml reads well-formed RSS 2.0, RSS 1.0 and Atom 1.0 in well under a millisecond. Everything
else goes to feedparser, twenty times slower but far more forgiving: bodies lxml rejects
(undefined entities, stray `&`, mismatched tags) and well-formed documents whose root lxml's
path does not know (RSS in the userland namespace, Atom 0.3, `<feed>` without a namespace,
`<rss>` with items but no `<channel>`). The common case is fast; the odd one still yields items.

The body is a stranger's: before either parser sees it, the prolog (XML declaration, comments,
processing instructions, DOCTYPE with any entity declarations) is cut off by a linear scan, so no
DTD can define an entity and no parser can be asked to expand one; feedparser gets a byte
stream (`io.BytesIO`), never bytes it might take for a file name or URL. Every field is cut to
its limit before markup is stripped. One entry that cannot be read is skipped and counted; it
never costs the others.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import msgspec

from scrapers.base import (
    SKIP_BAD_RECORD,
    SKIP_ITEM_CAP,
    SKIP_NO_LINK,
    SKIP_NOT_WEB_LINK,
    Item,
    Outcome,
    Validators,
    count_skipped,
)
from scrapers.dates import read_date
from scrapers.errors import SourceError, one_line
from scrapers.limits import HttpSettings
from scrapers.text import decode_body_checked, html_to_text, truncate

if TYPE_CHECKING:
    from lxml import etree

# lxml, feedparser and selectolax are imported where they are used: this module is imported by
# the refresh process too (for `web_link` and to name `feed_outcome`), which parses nothing.
# A parser process imports lxml before its first call (scrapers/serve.py).

__all__ = ["Feed", "feed_outcome", "parse_feed", "web_link"]

_ATOM = "{http://www.w3.org/2005/Atom}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_MEDIA = "{http://search.yahoo.com/mrss/}"
_XHTML_ROOT = "{http://www.w3.org/1999/xhtml}html"

_LXML_LOCATION = re.compile(r"\s*\([^()]{0,300}, line \d+\)$")
# Fixed-length or single-character patterns only: they cannot backtrack.
_SPACE = re.compile(r"\s*")
_DOCTYPE_TOKEN = re.compile(r"""["'\[\]>]|<!--""")
_DOCTYPE_NAME = re.compile(r"\s+([A-Za-z_:][\w:.-]{0,63})")
_WHITESPACE = re.compile(r"\s")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Either of the two above: one search finds that an ordinary link needs neither substitution.
_CONTROL_OR_WHITESPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")

# Longest URL worth keeping; a longer one is a feed bug or an attack, not an article address.
_MAX_URL_CHARS = 4096
# The publisher list of a Google News cluster is short; more is not a cluster.
_MAX_CLUSTER_HTML = 64 * 1024
_MAX_FEED_TITLE = 300
_TITLE_FROM_SUMMARY = 120
_RAW_PER_CHAR = 20


class Feed(msgspec.Struct):
    title: str | None
    items: list[Item] = msgspec.field(default_factory=list)
    parser: str = "lxml"  # which parser produced the items, for diagnostics and tests
    skipped: dict[str, int] = msgspec.field(default_factory=dict)  # reason -> entries not kept


def _parser() -> etree.XMLParser:
    from lxml import etree

    # No entity expansion from DTDs and no network: a feed is data, never instructions.
    # A fresh parser per feed because lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        load_dtd=False,
    )


def web_link(raw: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL from what a feed gave (relative links resolved against
    `base_url`), or None; raises ValueError for a link that is not a web address."""
    link = (raw or "").strip()
    if not link:
        return None
    if len(link) > _MAX_URL_CHARS:
        raise ValueError("too long")
    if _CONTROL_OR_WHITESPACE.search(link):
        if _CONTROL.search(link):
            link = _CONTROL.sub("", link)
        if _WHITESPACE.search(link):
            link = _WHITESPACE.sub("%20", link)
    if link.startswith(("https://", "http://")):
        url = link  # what the branch below makes of it, the common case
    else:
        scheme, colon, rest = link.partition(":")
        if colon and scheme.lower() in ("http", "https"):
            url = scheme.lower() + ":" + rest  # "HTTP://…" is a web link too
        else:
            url = urljoin(base_url, link)
    if not url.lower().startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ValueError("not a web link")
    return url


class _Entry(msgspec.Struct):
    title: str | None
    link: str | None
    summary: str | None
    # Date candidates in order of preference; read lazily from the entry, so that the usual
    # first one (pubDate) is the only one looked at.
    dates: Iterable[str | None]
    guid: str | None
    publisher: str | None = None
    publisher_url: str | None = None
    link_base: str | None = None  # xml:base in force where the link was written


def _cluster(raw_html: str) -> list[tuple[str, str, str]]:
    """(href, headline, publisher) of each `<li>` of a Google News cluster's `<ol>`."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(raw_html[:_MAX_CLUSTER_HTML])
    found: list[tuple[str, str, str]] = []
    for li in tree.css("li"):
        anchor = li.css_first("a")
        font = li.css_first("font")
        href = (anchor.attributes.get("href") or "") if anchor is not None else ""
        headline = anchor.text() if anchor is not None else ""
        publisher = font.text() if font is not None else ""
        found.append((href.strip(), html_to_text(headline, 300), html_to_text(publisher, 200)))
    return found


class _Builder:
    """Turns raw entries into capped, deduplicated Items, counting the ones it cannot use."""

    def __init__(
        self,
        base_url: str,
        language: str | None,
        settings: HttpSettings,
        clusters: bool,
        publisher: bool = False,
    ) -> None:
        self.base_url = base_url
        self.language = language
        self.settings = settings
        self.clusters = clusters
        self._use_feed_title = publisher
        self._default_publisher: str | None = None
        self.items: list[Item] = []
        self.skipped: dict[str, int] = {}
        self._seen: set[str] = set()
        self._now = datetime.now(UTC)
        self._future: timedelta | None = None  # max_future_seconds, made on first use

    def fallback_publisher(self, feed_title: str | None) -> None:
        """Learn the feed's title, the publisher of items without their own (if asked for)."""
        if self._use_feed_title:
            self._default_publisher = html_to_text(feed_title, _MAX_FEED_TITLE) or None

    def add_all(self, entries: Iterable[Any], read: Any) -> None:
        """`read(entry) -> _Entry` for each raw entry; a failure skips that entry alone."""
        cap = self.settings.max_items_per_feed
        for raw in entries:
            if len(self.items) >= cap:
                count_skipped(self.skipped, SKIP_ITEM_CAP)
                continue
            try:
                self.add(read(raw))
            except Exception:  # one unreadable entry must not cost the feed its other items
                count_skipped(self.skipped, SKIP_BAD_RECORD)

    def _link(self, entry: _Entry) -> str | None:
        """The article's address; a web-address GUID stands in for a missing or unusable link
        (RSS allows the GUID to be the permalink)."""
        unusable = False
        try:
            url = web_link(entry.link, entry.link_base or self.base_url)
        except ValueError:
            url, unusable = None, True
        guid = (entry.guid or "").strip()
        if url is None and guid.lower().startswith(("http://", "https://")):
            try:
                url = web_link(guid, self.base_url)
            except ValueError:
                url = None
        if url is None:
            count_skipped(self.skipped, SKIP_NOT_WEB_LINK if unusable else SKIP_NO_LINK)
        return url

    def add(self, entry: _Entry) -> None:
        url = self._link(entry)
        if url is None:
            return
        guid = truncate((entry.guid or "").strip(), _MAX_URL_CHARS) or None
        key = guid or url
        if key in self._seen:
            return
        self._seen.add(key)
        settings = self.settings
        raw_summary = entry.summary or ""
        also: tuple[tuple[str, str], ...] = ()
        title = html_to_text(entry.title, settings.max_title_chars)
        if self.clusters and "<li" in raw_summary[: settings.max_summary_chars * _RAW_PER_CHAR]:
            also = self._also_reported_by(raw_summary, url, title)
            raw_summary = ""  # the other outlets' headlines are not this item's text
        summary = html_to_text(raw_summary, settings.max_summary_chars)
        title = title or truncate(summary, _TITLE_FROM_SUMMARY) or url
        # An empty or missing publisher (URL) reads as none: the calls are skipped, not changed.
        publisher, publisher_url = entry.publisher, entry.publisher_url
        self.items.append(
            Item(
                title=truncate(title, settings.max_title_chars),
                url=url,
                summary=summary,
                published_at=self._date(entry.dates),
                guid=guid,
                publisher=(publisher and html_to_text(publisher, 300)) or self._default_publisher,
                publisher_url=self._publisher_url(publisher_url) if publisher_url else None,
                language=self.language,
                also_reported_by=also,
            )
        )

    def _also_reported_by(
        self, raw_html: str, own_url: str, own_title: str
    ) -> tuple[tuple[str, str], ...]:
        others: list[tuple[str, str]] = []
        for href, headline, publisher in _cluster(raw_html):
            try:
                url = web_link(href, self.base_url)
            except ValueError:
                continue
            if url is None or url == own_url or (headline and own_title.startswith(headline)):
                continue
            if (url, publisher) not in others:
                others.append((url, publisher))
        return tuple(others)

    def _date(self, candidates: Iterable[str | None]) -> datetime | None:
        """The first candidate that `parse_date(value, now=self._now, max_future_seconds=…)`
        reads, read the same way with the limit's timedelta made once per feed."""
        for value in candidates:
            if not value:
                continue
            parsed = read_date(value)
            if parsed is None:
                continue
            if self._future is None:
                self._future = timedelta(seconds=self.settings.max_future_seconds)
            if parsed - self._now > self._future:
                continue
            return parsed
        return None

    def _publisher_url(self, raw: str | None) -> str | None:
        try:
            return web_link(raw, self.base_url)
        except ValueError:
            return None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    if not len(element):  # no child elements (nor entities, comments or PIs): its text is all
        text = element.text
        return "" if text is None else text
    return "".join(element.itertext())


def _children(el: etree._Element) -> dict[str, etree._Element]:
    # One pass over the children instead of a find() per field: this loop is the hot path.
    # (A comment, PI or entity would have a non-string tag; no field is looked up by one.)
    found: dict[str, etree._Element] = {}
    for child in el:
        tag = child.tag
        if tag not in found:
            found[tag] = child
    return found


def _web_scheme(link: str | None) -> bool:
    """Whether `web_link` keeps this link's own http(s) scheme and never reads its base."""
    return (link or "").strip()[:6].lower().startswith(("http:", "https:"))


def _atom_title(el: etree._Element | None) -> str | None:
    text = _text(el)
    if el is not None and text and el.get("mode") == "base64":
        try:
            return base64.b64decode(text, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return text
    return text


def _atom_link(el: etree._Element) -> tuple[str | None, str | None]:
    """(href, xml:base there) of the entry's article link: rel="alternate" (the default), never
    license, self, enclosure, related or via, which name other things."""
    for link in el.iterfind(f"{_ATOM}link"):
        href = link.get("href")
        if href and link.get("rel", "alternate").strip().lower() == "alternate":
            return href, link.base
    return None, None


_RSS_DATES = (
    f"{_DCTERMS}issued",
    f"{_ATOM}published",
    f"{_DC}date",
    f"{_DCTERMS}modified",
    f"{_ATOM}updated",
    f"{_DCTERMS}created",
)
_ATOM_DATES = (
    f"{_ATOM}published",
    f"{_DCTERMS}issued",
    f"{_ATOM}updated",
    f"{_DC}date",
    f"{_DCTERMS}modified",
    f"{_DCTERMS}created",
)


class _RssEntries:
    """`read(el) -> _Entry` for the `<item>`s of an RSS 2.0 (`ns` "") or RSS 1.0 / 0.90 feed,
    with every tag name it looks for made once per feed rather than once per item."""

    def __init__(self, ns: str) -> None:
        self.source = f"{ns}source"
        self.link = f"{ns}link"
        self.titles = (f"{ns}title", f"{_DC}title", f"{_MEDIA}title")
        self.summaries = (f"{ns}description", f"{_CONTENT}encoded")
        # Published before updated, as feedparser prefers them; Atom names without the
        # namespace last, as feedparser reads them.
        self.dates = (ns + "pubDate", *_RSS_DATES, ns + "published", ns + "updated")
        self.guid = f"{ns}guid"

    def __call__(self, el: etree._Element) -> _Entry:
        children = _children(el)
        get = children.get
        source = get(self.source)
        link_el = get(self.link)
        link = link_base = None
        if link_el is not None:
            link = _text(link_el)
            if not (link or "").strip():
                link = link_el.get("href")  # <link href="…"/>, Atom style without the namespace
        if not (link or "").strip():
            link, link_base = _atom_link(el)
        elif link_el is not None and not _web_scheme(link):
            # Only a link without its own http(s) scheme is resolved against a base.
            link_base = link_el.base
        title_tag, dc_title, media_title = self.titles
        description, encoded = self.summaries
        return _Entry(
            title=_text(get(title_tag)) or _text(get(dc_title)) or _text(get(media_title)),
            link=link,
            summary=_text(get(description)) or _text(get(encoded)),
            dates=(_text(get(tag)) for tag in self.dates),
            guid=_text(get(self.guid)) or el.get(f"{_RDF}about"),
            publisher=_text(source),
            publisher_url=source.get("url") if source is not None else None,
            link_base=link_base,
        )


def _atom_entry(el: etree._Element) -> _Entry:
    children = _children(el)
    source = children.get(f"{_ATOM}source")

    def text(tag: str) -> str | None:
        return _text(children.get(tag))

    link, link_base = _atom_link(el)
    publisher_url = _atom_link(source)[0] if source is not None else None
    return _Entry(
        title=_atom_title(children.get(f"{_ATOM}title"))
        or text(f"{_DC}title")
        or text(f"{_MEDIA}title"),
        link=link,
        summary=text(f"{_ATOM}summary") or text(f"{_ATOM}content"),
        dates=(text(tag) for tag in _ATOM_DATES),
        guid=text(f"{_ATOM}id"),
        publisher=_text(source.find(f"{_ATOM}title")) if source is not None else None,
        publisher_url=publisher_url,
        link_base=link_base,
    )


def _with_lxml(root: etree._Element, builder: _Builder) -> tuple[bool, str | None]:
    """(handled, channel title). Not handled: a root this fast path does not know."""
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag == f"{_ATOM}feed":
        title = _text(root.find(f"{_ATOM}title"))
        builder.fallback_publisher(title)
        builder.add_all(root.iterfind(f"{_ATOM}entry"), _atom_entry)
        return True, title
    if tag == "rss":
        channel = root.find("channel")
        if channel is None:
            return False, None
        title = _text(channel.find("title"))
        builder.fallback_publisher(title)
        builder.add_all(channel.iterfind("item"), _RssEntries(""))
        return True, title
    if tag == f"{_RDF}RDF":
        # RSS 1.0 and 0.90 differ only in their namespace; take whichever the channel uses.
        channel = next((c for c in root if str(c.tag).endswith("}channel")), None)
        if channel is None:
            return False, None
        ns = str(channel.tag)[: -len("channel")]
        title = _text(channel.find(f"{ns}title"))
        builder.fallback_publisher(title)
        builder.add_all(root.iterfind(f"{ns}item"), _RssEntries(ns))
        return True, title
    return False, None


def _feedparser_entry(entry: dict[str, Any]) -> _Entry:
    source = entry.get("source") or {}
    content = entry.get("content") or []
    summary = entry.get("summary")
    if not summary and content and isinstance(content[0], Mapping):
        summary = content[0].get("value")
    return _Entry(
        title=entry.get("title"),
        link=entry.get("link"),
        summary=summary,
        # dict.get: feedparser's own get() maps a missing "updated" to "published" and warns.
        dates=(
            dict.get(entry, "published"),
            dict.get(entry, "updated"),
            dict.get(entry, "created"),
        ),
        guid=entry.get("id"),
        publisher=source.get("title"),
        publisher_url=source.get("href"),
    )


def _with_feedparser(data: bytes, builder: _Builder) -> tuple[int, bool, str | None]:
    """(entries found, whether feedparser recognised a feed format, channel title)."""
    import io

    import feedparser

    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": builder.base_url,
        },
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    title = parsed.feed.get("title")
    builder.fallback_publisher(title)
    builder.add_all(parsed.entries, _feedparser_entry)
    return len(parsed.entries), bool(parsed.get("version")), title


def _skip_doctype(text: str, start: int) -> int:
    """Index just past the DOCTYPE at `start`, internal subset included (quotes, brackets and
    comments honoured); one scan, each character looked at once."""
    at = start + len("<!doctype")
    depth = 0
    while True:
        token = _DOCTYPE_TOKEN.search(text, at)
        if token is None:
            raise SourceError("malformed XML: unterminated DOCTYPE")
        kind, at = token.group(), token.end()
        if kind in ("'", '"'):
            close = text.find(kind, at)
            if close < 0:
                raise SourceError("malformed XML: unterminated DOCTYPE")
            at = close + 1
        elif kind == "<!--":
            close = text.find("-->", at)
            if close < 0:
                raise SourceError("malformed XML: unterminated DOCTYPE")
            at = close + 3
        elif kind == "[":
            depth += 1
        elif kind == "]":
            depth = max(0, depth - 1)
        elif depth == 0:  # ">"
            return at


def _root_start(text: str) -> tuple[int, str | None]:
    """(index of the root element, the DOCTYPE's name if any), skipping the XML declaration,
    comments, processing instructions and the DOCTYPE with its entity declarations."""
    pos = 0
    doctype = None
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # \s* always matches
        if text.startswith("<?", pos):
            close = text.find("?>", pos + 2)
            pos = len(text) if close < 0 else close + 2
        elif text.startswith("<!--", pos):
            close = text.find("-->", pos + 4)
            pos = len(text) if close < 0 else close + 3
        elif text[pos : pos + 9].lower() == "<!doctype":
            name = _DOCTYPE_NAME.match(text, pos + 9)
            doctype = name.group(1).lower() if name else ""
            pos = _skip_doctype(text, pos)
        else:
            return pos, doctype


def _not_a_feed(root_tag: str) -> SourceError:
    local = root_tag.rsplit("}", 1)[-1] or "?"
    return SourceError(f"not a feed: the document is <{local}>, not RSS or Atom")


def parse_feed(
    body: bytes,
    content_type_header: str | None,
    *,
    base_url: str,
    language: str | None,
    settings: HttpSettings,
    clusters: bool = False,
    publisher: bool = False,
) -> Feed:
    """Parse a feed body; raises SourceError("not a feed: …" / "malformed XML: …").

    Pure (bytes in, a Feed out) and picklable both ways, so it can run in a worker process.
    `clusters`: read an item whose description is a list of links (a Google News cluster) as
    one story whose other links are `Item.also_reported_by`, and keep none of their headlines.
    `publisher`: an item without its own `<source>` gets the feed's title as its publisher.
    """
    content_type = (content_type_header or "").split(";")[0].strip().lower()
    text, verbatim = decode_body_checked(body, content_type_header, markup="xml", language=language)
    if not text or text.isspace():  # what `not text.strip()` says, without copying the text
        raise SourceError("empty response: the server sent no feed")
    start, doctype = _root_start(text)
    head = text[start : start + 6].lower()
    if doctype == "html" or (
        head.startswith("<html") and head[5:6] in (" ", ">", "\t", "\n", "\r")
    ):
        raise SourceError(f"not a feed: got {content_type or 'an HTML page'}")
    if not text.startswith("<", start):
        raise SourceError(f"not a feed: got {content_type or 'text'}")
    # Re-encoded as UTF-8 from the root on: the charset decision above is final, and neither
    # parser ever sees a DTD. Blank space in place of the prolog keeps error positions true.
    lines = text.count("\n", 0, start)
    column = start - (text.rfind("\n", 0, start) + 1)
    if verbatim:
        # The text is the body read as UTF-8, so the body's own bytes are its encoding.
        skip = len(text[:start].encode("utf-8"))
        data = b"\n" * lines + b" " * column + body[skip:] if start else body
    else:
        data = ("\n" * lines + " " * column + text[start:]).encode("utf-8")
    from lxml import etree

    builder = _Builder(base_url, language, settings, clusters, publisher)
    try:
        root = etree.fromstring(data, _parser(), base_url=base_url)
    except etree.XMLSyntaxError as exc:
        message = _LXML_LOCATION.sub("", one_line(str(exc)))
        entries, _, title = _with_feedparser(data, builder)
        if not entries:
            raise SourceError(f"malformed XML: {message}") from None
        return _feed(title, builder, "feedparser")
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag.lower() == "html" or tag == _XHTML_ROOT:
        raise SourceError(f"not a feed: got {content_type or 'an HTML page'}")
    handled, title = _with_lxml(root, builder)
    if handled:
        return _feed(title, builder, "lxml")
    entries, known, title = _with_feedparser(data, builder)
    if not entries and not known:
        raise _not_a_feed(tag)
    return _feed(title, builder, "feedparser")


def _feed(title: str | None, builder: _Builder, parser: str) -> Feed:
    return Feed(
        title=html_to_text(title, _MAX_FEED_TITLE) or None,
        items=builder.items,
        parser=parser,
        skipped=builder.skipped,
    )


def feed_outcome(
    body: bytes,
    content_type_header: str | None,
    *,
    source: str,
    validators: Validators,
    http_status: int,
    base_url: str,
    language: str | None,
    settings: HttpSettings,
) -> Outcome:
    """A feed kind's whole Outcome from a 2xx body, built in the parser process (so that the run's
    post-processing step can run on it in the same call). Items without their own publisher get
    the channel's title."""
    feed = parse_feed(
        body,
        content_type_header,
        base_url=base_url,
        language=language,
        settings=settings,
        publisher=True,
    )
    return Outcome(
        source=source,
        state="ok",
        items=feed.items,
        validators=validators,
        http_status=http_status,
        skipped=feed.skipped,
    )
