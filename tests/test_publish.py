"""`tracker publish`: the static site's files, read back as a reader and a feed reader would.

A real database (both backends through the `cli` fixture) with hostile web text, pending and
both-sides evidence and a recent status change; then the files: every commitment with its status,
inert text, a feed that feedparser reads without complaint, data.json equal to the export,
deterministic bytes, links that resolve, and a folder that is managed safely.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser
import pytest

from tracker.outputs.site import GENERATED_PREFIX

try:
    from .conftest import Result, errors
    from .rows import insert, update
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from conftest import Result  # type: ignore[no-redef]
    from rows import insert, update  # type: ignore[no-redef]

Invoke = Callable[..., Result]

HOSTILE = (
    "<script>alert(1)</script> [link](javascript:alert(2)) | pipe \u202eevil\u202c "
    "**bold** &amp; <img src=x onerror=alert(3)>"
)
PENDING_TITLE = "Pending story about the Tabriz–Baku flight"
BOTH_TITLE = "Both sides report the Khodaafarin bridge"


def _store() -> Any:
    from tracker.register import open_store
    from tracker.settings import Settings

    return open_store(Settings.from_env())


def make_world(cli: Invoke) -> dict[str, Any]:
    """The built-in register plus: a hostile confirmed title, a pending item with a javascript:
    link, a story carried by an Iranian and an Azerbaijani outlet, and a status override."""
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    r = cli(
        "evidence", "add", "tabriz-baku-flight",
        "--url", "https://example.org/news?a=1&b=2&copy;x",
        "--title", HOSTILE,
        "--date", day.isoformat(),
        "--stance", "neutral",
        "--note", "note with <b>markup</b>",
    )  # fmt: skip
    assert r.code == 0, r.err
    hostile_id = int(re.search(r"#(\d+)", r.out).group(1))  # type: ignore[union-attr]
    r = cli("set-status", "health-tourism", "broken", "--reason", "Reason <i>with</i> markup")
    assert r.code == 0, r.err
    db = _store()
    try:
        with db.write() as conn:
            cid = {slug: i for i, slug in conn.rows("SELECT id, slug FROM commitment")}
            when = datetime.combine(day, datetime.min.time())
            pending_id = insert(
                conn, "evidence", commitment_id=cid["tabriz-baku-flight"],
                url="javascript:alert(4)", canonical_url="https://example.org/pending",
                title=PENDING_TITLE, published_at=when, created_at=when, source="irna-en",
                country="IR", review="pending",
            )  # fmt: skip
            both_id = insert(
                conn, "evidence", commitment_id=cid["khodaafarin-crossing"],
                url="https://example.org/both", canonical_url="https://example.org/both",
                title=BOTH_TITLE, published_at=when, created_at=when, source="irna-en",
                publisher="IRNA", country="IR", review="confirmed", stance="progress",
                reviewed_at=when,
            )  # fmt: skip
            insert(
                conn, "mention", evidence_id=both_id, url="https://apa.az/both",
                canonical_url="https://apa.az/both", source="apa", publisher="APA", country="AZ",
            )  # fmt: skip
    finally:
        db.dispose()
    return {"hostile": hostile_id, "pending": pending_id, "both": both_id}


# ---------------------------------------------------------------- reading the files back


class Page(HTMLParser):
    """What a test needs of one HTML file: its links, ids, and elements by attribute."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tags: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        self.elements.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if key in a:
                self.links.append(a[key])


def read_page(path: Path) -> Page:
    return Page(path.read_text("utf-8"))


def site_files(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def broken_links(site: Path) -> list[str]:
    """Every internal link of every page and of the feed that does not reach a file (and an id)."""
    pages: dict[Path, Page] = {p: read_page(p) for p in site.rglob("*.html")}
    feed = feedparser.parse(str(site / "feed.xml"))
    targets: list[tuple[Path, str]] = [
        (p, link) for p, page in pages.items() for link in page.links
    ]
    for entry in feed.entries:
        targets += [(site / "feed.xml", ln.href) for ln in entry.links if ln.rel == "alternate"]
    bad = []
    for origin, link in targets:
        parts = urlsplit(link)
        if parts.scheme in ("http", "https", "data"):
            continue
        if parts.scheme or parts.netloc or link.startswith("/"):
            bad.append(f"{origin}: not relative: {link}")
            continue
        target = (origin.parent / unquote(parts.path)).resolve() if parts.path else origin
        if not target.is_file():
            bad.append(f"{origin}: {link}: no such file")
        elif parts.fragment and target.suffix == ".html":
            page = pages.get(target) or read_page(target)
            if parts.fragment not in page.ids:
                bad.append(f"{origin}: {link}: no element with that id")
    return bad


def publish(cli: Invoke, out: Path, *extra: str) -> Result:
    r = cli("publish", "--out", str(out), *extra)
    assert r.code == 0, r.err
    return r


@pytest.fixture
def world(cli: Invoke) -> dict[str, Any]:
    return make_world(cli)


# ---------------------------------------------------------------- the tests


def test_every_commitment_is_on_the_index_and_has_a_page_with_its_status(
    cli: Invoke, world: dict[str, Any], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    r = publish(cli, site)
    assert r.out.startswith("published 8 commitments and ") and "index.html" in r.out
    status = {
        c["slug"]: c["status"] for c in json.loads(cli("status", "--json").out)["commitments"]
    }
    assert status["health-tourism"] == "broken"
    index = read_page(site / "index.html")
    cards = {
        a["data-slug"]: a["data-status"]
        for tag, a in index.elements
        if tag == "li" and "data-slug" in a
    }
    assert cards == status
    text = (site / "index.html").read_text("utf-8")
    for slug, st in status.items():
        page = site / "commitments" / f"{slug}.html"
        html = page.read_text("utf-8")
        assert f'data-slug="{slug}" data-status="{st}"' in html
        assert f'data-status="{st}"' in html and st.replace("_", " ") + "</span>" in html
        assert "<svg" in html and 'lang="fa" dir="rtl"' in html  # timeline, Persian quote
    # The changes strip shows this month's override; the agreement's date is in both calendars.
    assert "Changes this month" in text and "stalled → broken" in text
    assert "2022-02-19 (1400-11-30 ش)" in text
    assert "source article" in text


def test_web_text_is_inert_in_every_file(
    cli: Invoke, world: dict[str, Any], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(cli, site, "--include-pending")
    for rel, data in site_files(site).items():
        if rel == "data.json":
            continue
        text = data.decode("utf-8")
        assert "<script" not in text.lower(), rel
        assert "javascript:" not in text.replace("javascript:alert", ""), rel
        assert 'href="javascript' not in text and "<img" not in text and "<b>" not in text, rel
        assert "\u202e" not in text and "\u202c" not in text, rel  # shown as \u202e, never raw
    page = (site / "commitments" / "tabriz-baku-flight.html").read_text("utf-8")
    shown = (
        "&lt;script&gt;alert(1)&lt;/script&gt; [link](javascript:alert(2)) | pipe \\u202eevil\\u202c "
        "**bold** &amp;amp; &lt;img src=x onerror=alert(3)&gt;"
    )
    assert shown in page
    assert 'href="https://example.org/news?a=1&amp;b=2&amp;copy;x"' in page  # the URL as given
    assert "note with &lt;b&gt;markup&lt;/b&gt;" in page
    # The pending item's javascript: URL is no link; the item is marked as waiting for review.
    pending = page.split(f'id="e{world["pending"]}"', 1)[1].split("</li>", 1)[0]
    assert "waiting for review" in pending and "<a " not in pending and PENDING_TITLE in pending
    assert "Reason &lt;i&gt;with&lt;/i&gt; markup" in (site / "index.html").read_text("utf-8")


def test_pending_evidence_only_with_include_pending(
    cli: Invoke, world: dict[str, Any], tmp_path: Path
) -> None:
    publish(cli, tmp_path / "plain")
    page = (tmp_path / "plain" / "commitments" / "tabriz-baku-flight.html").read_text("utf-8")
    assert PENDING_TITLE not in page and "waiting for review is not listed" in page
    assert f'id="e{world["hostile"]}"' in page  # confirmed by hand: listed
    assert PENDING_TITLE not in (tmp_path / "plain" / "feed.xml").read_text("utf-8")
    # A weekly report is published as it was mailed: an item recorded that week shows its review
    # state; the list of everything waiting for review is left out.
    for week in (tmp_path / "plain" / "weeks").glob("*.html"):
        text = week.read_text("utf-8")
        assert "Waiting for review (" not in text
        for line in text.splitlines():
            assert PENDING_TITLE not in line or "· pending</li>" in line, line
    publish(cli, tmp_path / "full", "--include-pending")
    page = (tmp_path / "full" / "commitments" / "tabriz-baku-flight.html").read_text("utf-8")
    assert PENDING_TITLE in page and 'data-review="pending"' in page


def test_both_sides_reporting_is_marked(cli: Invoke, world: dict[str, Any], tmp_path: Path) -> None:
    publish(cli, tmp_path / "site")
    page = (tmp_path / "site" / "commitments" / "khodaafarin-crossing.html").read_text("utf-8")
    item = page.split(f'id="e{world["both"]}"', 1)[1].split("</li>", 1)[0]
    assert "reported by both Iranian and Azerbaijani outlets" in item
    assert "Also carried by 1 other outlet" in item and 'href="https://apa.az/both"' in item
    hostile = (tmp_path / "site" / "commitments" / "tabriz-baku-flight.html").read_text("utf-8")
    item = hostile.split(f'id="e{world["hostile"]}"', 1)[1].split("</li>", 1)[0]
    assert "reported by both" not in item


def test_feed_parses_cleanly_with_changes_and_new_evidence(
    cli: Invoke, world: dict[str, Any], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(cli, site)
    feed = feedparser.parse(str(site / "feed.xml"))
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.feed.title.startswith("Commitment tracker")
    titles = [e.title for e in feed.entries]
    assert any("stalled → broken" in t for t in titles)
    hostile = next(e for e in feed.entries if e.id.endswith(f"evidence/{world['hostile']}"))
    assert "<script>alert(1)</script>" in hostile.title  # text, as the reader will show it
    assert hostile.link.endswith(f"commitments/tabriz-baku-flight.html#e{world['hostile']}")
    assert all(e.updated_parsed for e in feed.entries)
    assert len({e.id for e in feed.entries}) == len(feed.entries)


def test_data_json_is_the_export(cli: Invoke, world: dict[str, Any], tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(cli, site)
    published = json.loads((site / "data.json").read_text("utf-8"))
    exported = json.loads(cli("export").out)
    published.pop("generated_at")
    exported.pop("generated_at")
    assert published == exported


def test_two_builds_differ_only_in_the_generated_line(
    cli: Invoke, world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_TODAY", datetime.now(UTC).date().isoformat())
    publish(cli, tmp_path / "a", "--include-pending")
    time.sleep(1.1)  # so that the generated-at lines really differ
    publish(cli, tmp_path / "b", "--include-pending")
    a, b = site_files(tmp_path / "a"), site_files(tmp_path / "b")
    assert a.keys() == b.keys()
    different = {}
    for rel in a:
        if a[rel] != b[rel]:
            lines = zip(a[rel].decode().split("\n"), b[rel].decode().split("\n"), strict=True)
            different[rel] = [(x, y) for x, y in lines if x != y]
    assert set(different) == {"index.html", "data.json"}
    assert len(different["index.html"]) == 1
    assert different["index.html"][0][0].startswith(GENERATED_PREFIX)
    assert len(different["data.json"]) == 1
    assert different["data.json"][0][0].startswith('  "generated_at": ')
    # Building again into the same folder rewrites nothing.
    r = publish(cli, tmp_path / "a", "--include-pending")
    assert " 0 files written," in r.out and " 0 removed" in r.out


def test_every_internal_link_resolves(cli: Invoke, world: dict[str, Any], tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(cli, site, "--include-pending")
    assert broken_links(site) == []
    files = site_files(site)
    assert {"index.html", "feed.xml", "data.json", "style.css", "weeks/index.html"} <= files.keys()
    weeks = [rel for rel in files if re.fullmatch(r"weeks/\d{4}-W\d\d\.html", rel)]
    assert len(weeks) > 200  # from the announcement week (2022-W07) to the last complete week
    assert "weeks/2022-W07.html" in weeks and "weeks/2022-W06.html" not in weeks
    index = read_page(site / "weeks" / "index.html")
    assert {
        f"weeks/{link}" for link in index.links if re.fullmatch(r"\d{4}-W\d\d\.html", link)
    } == set(weeks)


def test_a_rebuild_removes_only_pages_it_wrote_that_are_gone(
    cli: Invoke, world: dict[str, Any], tmp_path: Path
) -> None:
    site = tmp_path / "site"
    publish(cli, site)
    (site / "CNAME").write_text("tracker.example.org\n")
    (site / "commitments" / "notes.txt").write_text("mine\n")
    db = _store()
    try:
        with db.write() as conn:
            update(conn, "commitment", {"slug": "tourist-tours"}, slug="tourist-tours-2")
    finally:
        db.dispose()
    r = publish(cli, site)
    assert " 1 removed" in r.out
    assert not (site / "commitments" / "tourist-tours.html").exists()
    assert (site / "commitments" / "tourist-tours-2.html").is_file()
    assert (site / "CNAME").read_text() == "tracker.example.org\n"
    assert (site / "commitments" / "notes.txt").read_text() == "mine\n"
    assert broken_links(site) == []


def test_a_folder_not_made_by_publish_is_refused(cli: Invoke, tmp_path: Path) -> None:
    assert cli("status").code == 0
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "index.html").write_text("their own page")
    r = cli("publish", "--out", str(theirs))
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("error: --out ") and "not made by tracker publish" in r.err
    assert len(errors(r.err).strip().splitlines()) == 1
    assert [p.name for p in theirs.iterdir()] == ["index.html"]
    assert (theirs / "index.html").read_text() == "their own page"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    r = cli("publish", "--out", str(a_file))
    assert r.code == 2 and "is a file, not a folder" in r.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("publish", "--out", str(empty), "--quiet").out == ""
    assert (empty / "index.html").is_file() and (empty / ".tracker-publish").is_file()


# ---------------------------------------------------------------- scheduled publishing


def test_cron_rebuilds_the_site_after_every_refresh(tmp_path: Path) -> None:
    from tracker.schedule import cron_plan

    site = tmp_path / "site"
    plan = cron_plan(
        db_arg=str(tmp_path / "c.db"),
        sources=None,
        workdir=tmp_path,
        env={},
        command=["/opt/tracker"],
        publish=site,
    )
    refresh = next(line for line in plan.lines if line.startswith("17 ") and " refresh " in line)
    assert refresh.endswith(
        f" ; /opt/tracker --db {tmp_path / 'c.db'} publish --out {site} --quiet"
    )


def test_daemon_publish_job_writes_the_site_and_logs_one_line(tmp_path: Path) -> None:
    from datetime import timedelta

    from tracker.register import open_store
    from tracker.schedule import DaemonConfig, publish_job
    from tracker.settings import Settings

    settings = Settings.from_env().with_db(str(tmp_path / "c.db"))
    db = open_store(settings)
    lines: list[str] = []
    config = DaemonConfig(
        settings=settings,
        sources=None,
        every=timedelta(hours=1),
        report_cron="30 6 * * 1",
        email=False,
        notify=False,
        out_dir=tmp_path / "reports",
        publish=tmp_path / "site",
    )
    try:
        publish_job(db, config, lines.append)
    finally:
        db.dispose()
    assert len(lines) == 1 and lines[0].startswith("publish: published 8 commitments"), lines
    assert (tmp_path / "site" / "index.html").is_file()
