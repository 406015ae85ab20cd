"""The feed parser against feedparser on a corpus of real-world and edge-case feeds.

Every file under tests/data/feeds/ (origins and licences in ORIGINS.md) is parsed by both
`scrapers.feeds.parse_feed` and feedparser from the same bytes and compared on what the tracker
uses: whether there are items, each item's link, title and date. Every disagreement must be
listed in tests/data/feeds/ACCEPTED.toml with its reason; a listed one that no longer happens
fails too, so the list stays true. The summary test prints the figures.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from scrapers.dates import parse_date
from scrapers.errors import SourceError
from scrapers.feeds import parse_feed
from scrapers.http import HttpSettings
from scrapers.text import html_to_text

CORPUS = Path(__file__).parent / "data" / "feeds"
FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.xml"))
BASE_URL = "http://127.0.0.1:8097/feed.xml"
# The corpus is old: no date is "in the future" for this comparison.
SETTINGS = HttpSettings(max_future_seconds=1e12)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
# feedparser's test files name the Content-Type their server would send in a comment.
_HEADER = re.compile(rb"Header:\s*Content-type:\s*([^\r\n]*)", re.IGNORECASE)


def _accepted() -> dict[tuple[str, str], str]:
    data = tomllib.loads((CORPUS / "ACCEPTED.toml").read_text(encoding="utf-8"))
    return {(d["file"], d["field"]): d["reason"] for d in data.get("difference", [])}


ACCEPTED = _accepted()


@dataclass
class Comparison:
    citable: int = 0  # feedparser entries with a web link
    ours: int = 0
    failed: str | None = None  # our one-line error, if any
    differences: dict[str, list[str]] = field(default_factory=dict)  # field -> details
    date_pairs: int = 0  # citable entries where feedparser found a date
    date_agree: int = 0
    raw_date_pairs: int = 0  # every entry where feedparser found a date
    raw_date_agree: int = 0

    def differ(self, what: str, detail: str) -> None:
        self.differences.setdefault(what, []).append(detail)


def _content_type(data: bytes) -> str | None:
    match = _HEADER.search(data[:2000])
    return match.group(1).decode("latin-1").strip() if match else None


def _feedparser_date(entry: dict[str, Any]) -> tuple[datetime | None, str | None]:
    for key in ("published", "updated", "created"):
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed:
            return datetime(*parsed[:6], tzinfo=UTC), dict.get(entry, key)
    return None, None


def _web(link: Any) -> bool:
    return isinstance(link, str) and link.lower().startswith(("http://", "https://"))


def compare(name: str) -> Comparison:
    data = (CORPUS / name).read_bytes()
    content_type = _content_type(data)
    reference = feedparser.parse(
        io.BytesIO(data),
        response_headers={
            "content-type": content_type or "application/xml",
            "content-location": BASE_URL,
        },
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    result = Comparison()
    try:
        feed = parse_feed(data, content_type, base_url=BASE_URL, language="en", settings=SETTINGS)
        items = feed.items
    except SourceError as exc:
        items, result.failed = [], exc.reason
    result.ours = len(items)
    by_url = {item.url: item for item in items}
    for entry in reference.entries:
        when, raw = _feedparser_date(entry)
        if when is not None:
            result.raw_date_pairs += 1
            mine = parse_date(raw, max_future_seconds=1e12)
            if mine is not None and mine.replace(microsecond=0) == when:
                result.raw_date_agree += 1
        link = dict.get(entry, "link")
        if not _web(link):
            continue
        result.citable += 1
        item = by_url.get(link)
        if item is None:
            result.differ("link", f"feedparser {link!r}, ours {sorted(by_url)[:3]!r}")
            continue
        title = dict.get(entry, "title")
        if title and html_to_text(title, SETTINGS.max_title_chars) != item.title:
            result.differ("title", f"feedparser {title!r}, ours {item.title!r}")
        if when is not None:
            result.date_pairs += 1
            ours = item.published_at.replace(microsecond=0) if item.published_at else None
            if ours == when:
                result.date_agree += 1
            else:
                result.differ("date", f"{raw!r}: feedparser {when}, ours {ours}")
    if result.citable and not items:
        result.differ(
            "items", f"feedparser has {result.citable} citable, ours none ({result.failed})"
        )
    return result


@pytest.mark.parametrize("name", FILES)
def test_feed_agrees_with_feedparser(name: str) -> None:
    result = compare(name)  # no crash: only SourceError may come out, as a one-line reason
    unexplained = {
        what: details
        for what, details in result.differences.items()
        if (name, what) not in ACCEPTED
    }
    assert not unexplained, unexplained
    stale = [what for (file, what) in ACCEPTED if file == name and what not in result.differences]
    assert not stale, f"accepted differences that no longer happen: {stale}"


def test_corpus_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(FILES) >= 150
    assert all((file in FILES) for file, _ in ACCEPTED), "ACCEPTED.toml names a missing file"
    results = {name: compare(name) for name in FILES}
    total = Comparison()
    by_reason: Counter[str] = Counter()
    for name, result in results.items():
        total.citable += result.citable
        total.ours += result.ours
        total.date_pairs += result.date_pairs
        total.date_agree += result.date_agree
        total.raw_date_pairs += result.raw_date_pairs
        total.raw_date_agree += result.raw_date_agree
        for what in result.differences:
            by_reason[f"{what}: {ACCEPTED.get((name, what), 'UNEXPLAINED')}"] += 1
    with_citable = [r for r in results.values() if r.citable]
    lost = [name for name, r in results.items() if r.citable and not r.ours]
    accepted_lost = [name for name in lost if (name, "items") in ACCEPTED]
    date_share = total.date_agree / total.date_pairs if total.date_pairs else 1.0
    raw_share = total.raw_date_agree / total.raw_date_pairs if total.raw_date_pairs else 1.0
    with capsys.disabled():
        print(
            f"\nfeed corpus: {len(FILES)} files, {len(with_citable)} with citable items; "
            f"feedparser {total.citable} citable items, ours {total.ours} items; "
            f"feeds with citable items that gave us none: {len(lost)} "
            f"({len(accepted_lost)} accepted)"
        )
        print(
            f"dates on shared items: {total.date_agree}/{total.date_pairs} agree to the second "
            f"({date_share:.1%}); every dated entry's date string: "
            f"{total.raw_date_agree}/{total.raw_date_pairs} ({raw_share:.1%})"
        )
        for reason, n in sorted(by_reason.items()):
            print(f"  accepted difference ×{n}: {reason}")
    assert date_share >= 0.99 and raw_share >= 0.99
    assert lost == accepted_lost
