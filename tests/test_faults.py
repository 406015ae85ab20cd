"""Faulty sources: `tracker refresh` against a misbehaving server on 127.0.0.1, one fault per case.

Every case puts one healthy feed next to the faulty source and runs the real CLI in a subprocess
with test-sized HTTP limits (below) and the production body cap (10 MB). For every case:

- the refresh ends within `MAX_SECONDS` of wall time (process start to exit);
- the child's peak RSS (ru_maxrss of exactly that process, from os.wait4) stays under `MAX_MB`;
- the healthy source's evidence is stored;
- the faulty source's health (`tracker sources --json`) says what happened in one readable line;
- the exit code is 1 for a failure and 0 for input that is odd but valid;
- nothing is printed on stderr (so no traceback, no warning).

Run with `-s` to see the measured time and peak memory of each case.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from .conftest import errors
from .faulty_server import (
    FaultyServer,
    drip,
    endless,
    free_port,
    gzip_bomb,
    hang,
    in_process,
    redirect,
    reply,
    reset_mid_body,
    run_tracker,
    serving,
)

SOURCE_DEADLINE = 6.0
ENV = {
    "TRACKER_HTTP_CONNECT_TIMEOUT": "1",
    "TRACKER_HTTP_READ_TIMEOUT": "1",
    "TRACKER_HTTP_DEADLINE": "2",
    "TRACKER_HTTP_SOURCE_DEADLINE": str(SOURCE_DEADLINE),
    "TRACKER_HTTP_MAX_RETRIES": "1",
    "TRACKER_HTTP_BACKOFF_BASE": "0.01",
    "TRACKER_HTTP_RETRY_AFTER_CAP": "1",
    "TRACKER_LOCK_WAIT": "1",
}
# One exchange may take DEADLINE (timeouts are not retried); connection errors are retried once
# with a tiny backoff. Add interpreter start-up and the database: measured 0.6-2.7 s per case.
MAX_SECONDS = 8.0
# The interpreter and its libraries take about 95 MB; a 10 MB body, its text and its tree (or 500
# items of a 10,000-item feed) fit in the rest. Measured 95-125 MB per case.
MAX_MB = 160.0
RSS = "application/rss+xml; charset=utf-8"
NOW = datetime.now(UTC)
HEALTHY_URL = "https://example.ir/news/healthy-flight"


def item(
    title: str,
    link: str,
    description: str = "",
    *,
    guid: str | None = None,
    date: str | None = "",
) -> str:
    when = format_datetime(NOW - timedelta(hours=2)) if date == "" else date
    return (
        f"<item><title>{title}</title><link>{link}</link>"
        f"<description>{description}</description>"
        + (f"<guid>{guid or link}</guid>")
        + (f"<pubDate>{when}</pubDate>" if when is not None else "")
        + "</item>"
    )


def feed(*items: str, title: str = "Test wire", declaration: str = "UTF-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{declaration}"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.org/</link><description>x</description>"
        + "".join(items)
        + "</channel></rss>"
    )


HEALTHY = feed(
    item(
        "Iran Air launches Tabriz-Baku flights",
        HEALTHY_URL,
        "The first Tabriz to Baku flight landed on Tuesday.",
    )
)
FLIGHT_TITLE = "Tabriz Baku flight resumes"


def flight_feed(*extra: str) -> str:
    return feed(item(FLIGHT_TITLE, "https://example.az/news/odd-1", "A flight to Baku."), *extra)


def rss_source(url: str, language: str = "en") -> str:
    return (
        f'[[source]]\nname = "faulty"\nkind = "rss"\nurl = "{url}"\n'
        f'language = "{language}"\ncountry = "AZ"\n'
    )


def gdelt_source(base_url: str) -> str:
    return (
        '[[source]]\nname = "faulty"\nkind = "gdelt"\nlanguage = "en"\n'
        f'query = "Tabriz Baku flight"\nbase_url = "{base_url}"\nmin_interval = 0\n'
    )


def scraped(db: Path, source: str) -> list[tuple[str, str, str, str, str]]:
    """(commitment, url, title, published_at, summary) of the evidence a source stored."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT c.slug, e.url, e.title, e.published_at, e.summary FROM evidence e"
            " JOIN commitment c ON c.id = e.commitment_id WHERE e.source = ? ORDER BY e.id",
            (source,),
        ).fetchall()


def stored_at(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# ------------------------------------------------------------------ checks for valid odd input


def check_cp1256(db: Path) -> None:
    rows = scraped(db, "faulty")
    assert [r[0] for r in rows] == ["tabriz-baku-flight"]
    assert rows[0][2] == "پرواز تبريز باکو برقرار شد"  # decoded, not mojibake


def check_many_items(db: Path) -> None:
    rows = scraped(db, "faulty")
    assert 0 < len(rows) <= 500  # at most max_items_per_feed entries per feed are kept
    assert all(r[0] == "tabriz-baku-flight" for r in rows)


def check_no_date(db: Path) -> None:
    ((_, _, _, published, _),) = scraped(db, "faulty")
    assert abs(stored_at(published) - datetime.now(UTC)) < timedelta(minutes=5)  # seen now


def check_future_date(db: Path) -> None:
    ((_, _, _, published, _),) = scraped(db, "faulty")
    assert stored_at(published) <= datetime.now(UTC)  # never "news from 2100"


def check_jalali_date(db: Path) -> None:
    ((_, _, _, published, _),) = scraped(db, "faulty")
    assert published.startswith("2025-07-29")  # 7 Mordad 1404


def check_duplicate_guids(db: Path) -> None:
    rows = scraped(db, "faulty")
    assert len(rows) == 1, rows


def check_enormous_title(db: Path) -> None:
    ((_, _, title, _, summary),) = scraped(db, "faulty")
    assert title.startswith("Tabriz Baku flight ") and len(title) <= 1000
    assert len(summary) <= 5000


def check_recovered(db: Path) -> None:
    assert [r[0] for r in scraped(db, "faulty")] == ["tabriz-baku-flight"]


def check_nothing(db: Path) -> None:
    assert scraped(db, "faulty") == []


def check_surrogates(db: Path) -> None:
    # The article whose link cannot be stored is left out; the other one is kept, cleaned.
    ((slug, url, title, _, _),) = scraped(db, "faulty")
    assert (slug, url) == ("tabriz-baku-flight", "https://example.org/gdelt/ok")
    assert title.startswith("Tabriz Baku flight ") and title.endswith(" resumes")
    title.encode("utf-8")  # storable: no lone surrogate left


# JSON escapes of lone surrogates, as a careless API sends them; json.loads accepts them.
SURROGATES = (
    r'{"articles": [{"url": "https://example.org/gdelt/\ud800", "title": "Tabriz Baku flight'
    r' lost"}, {"url": "https://example.org/gdelt/ok", "title": "Tabriz Baku flight \udfff'
    r' resumes"}]}'
)


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Fault:
    name: str
    setup: Callable[[FaultyServer], str]  # routes the fault, returns the [[source]] table
    code: int  # 1: the source failed; 0: odd input that is still valid
    reason: str = ""  # regex the recorded last_error must match (failures)
    check: Callable[[Path], None] | None = None  # what must be stored (valid input)


def _route(path: str, behaviour: Callable[..., None], language: str = "en") -> Callable[..., str]:
    return lambda s: rss_source(s.route(path, behaviour), language)


def _redirect_loop(s: FaultyServer) -> str:
    s.route("/loop-a", redirect(s.url("/loop-b")))
    s.route("/loop-b", redirect(s.url("/loop-a")))
    return rss_source(s.url("/loop-a"))


def _endless_redirects(s: FaultyServer) -> str:
    def behave(conn):  # type: ignore[no-untyped-def]
        n = int(conn.request.path.partition("=")[2] or 0)
        redirect(s.url(f"/hop?n={n + 1}"))(conn)

    s.route("/hop", behave)
    return rss_source(s.url("/hop?n=0"))


CP1256 = feed(
    item("پرواز تبريز باکو برقرار شد", "https://example.ir/fa/1", "خبر", date="7 مرداد 1404"),
    title="خبرگزاري",
    declaration="windows-1256",
).encode("cp1256")
MANY = feed(
    *(
        item(
            f"Tabriz Baku flight report number {i}" if i % 20 == 0 else f"Wheat prices, market {i}",
            f"https://example.org/many/{i}",
            "x" * 200,
        )
        for i in range(10_000)
    )
)
HUGE = "Tabriz Baku flight " + "very long title " * 65_536  # about 1 MB


FAULTS = [
    Fault(
        "connection-refused",
        lambda s: rss_source(f"http://127.0.0.1:{free_port()}/feed"),
        1,
        r"^connection refused \(127\.0\.0\.1:\d+\) \(after 2 attempts\)$",
    ),
    Fault(
        "accepts-never-answers",
        _route("/hang", hang()),
        1,
        r"^timed out after 1(\.0)? s waiting for the server$",
    ),
    Fault(
        "drips-a-byte-every-3s",
        _route("/drip-slow", drip(HEALTHY.encode(), 3.0)),
        1,
        r"^timed out after 1(\.0)? s waiting for the server$",
    ),
    Fault(
        "drips-a-byte-every-0.3s",
        _route("/drip-fast", drip(HEALTHY.encode(), 0.3)),
        1,
        r"^timed out after 2(\.0)? s$",
    ),
    Fault(
        "reset-mid-body",
        _route("/reset", reset_mid_body(HEALTHY.encode() * 50)),
        1,
        r"(connection reset by|closed the connection).*\(after 2 attempts\)$",
    ),
    Fault("http-500", _route("/500", reply(500, "oops")), 1, r"^HTTP 500 Internal Server Error"),
    Fault(
        "http-502",
        _route("/502", reply(502, "")),
        1,
        r"^HTTP 502 Bad Gateway \(after 2 attempts\)$",
    ),
    Fault(
        "http-503",
        _route("/503", reply(503, "")),
        1,
        r"^HTTP 503 Service Unavailable \(after 2 attempts\)$",
    ),
    Fault(
        "429-retry-after-3600",
        _route("/429", reply(429, "slow down", headers=[("Retry-After", "3600")])),
        1,
        r"^rate limited: server asks to retry after 3600 s$",
    ),
    Fault("redirect-loop", _redirect_loop, 1, r"^redirect loop: "),
    Fault("endless-redirects", _endless_redirects, 1, r"^too many redirects \(more than 5\)$"),
    Fault(
        "html-instead-of-feed",
        _route(
            "/html",
            reply(200, "<!doctype html><html><body>Welcome</body></html>", "text/html"),
        ),
        1,
        r"^not a feed: got text/html$",
    ),
    Fault(
        "malformed-xml-nothing-to-recover",
        _route("/bad-xml", reply(200, "<rss><channel><title>x</chanel></rss>", RSS)),
        1,
        r"^malformed XML: ",
    ),
    Fault(
        "malformed-xml-recoverable",
        _route(
            "/broken-xml",
            reply(200, flight_feed().replace("A flight", "A <b>flight & more").encode(), RSS),
        ),
        0,
        check=check_recovered,
    ),
    Fault(
        "gdelt-invalid-json",
        lambda s: gdelt_source(
            s.route("/gdelt", reply(200, '{"articles": [{"url": "https://x.org/", "ti', "x/y"))
        ),
        1,
        r'^query "Tabriz Baku flight": malformed JSON from GDELT',
    ),
    Fault(
        "gdelt-text-error",
        lambda s: gdelt_source(
            s.route("/gdelt", reply(200, "The specified phrase is too short.\n", "text/html"))
        ),
        1,
        r'^query "Tabriz Baku flight": GDELT: The specified phrase is too short\.$',
    ),
    Fault(
        "gdelt-rate-limit-text",
        lambda s: gdelt_source(
            s.route(
                "/gdelt",
                reply(200, "Please limit requests to one every 5 seconds.", "text/html"),
            )
        ),
        1,
        r'^query "Tabriz Baku flight": rate limited: Please limit requests',
    ),
    Fault(
        "gdelt-empty-body-means-no-articles",
        lambda s: gdelt_source(s.route("/gdelt", reply(200, "", "application/json"))),
        0,
        check=check_nothing,
    ),
    Fault(
        "gdelt-json-with-lone-surrogates",
        lambda s: gdelt_source(s.route("/gdelt", reply(200, SURROGATES, "application/json"))),
        0,
        check=check_surrogates,
    ),
    Fault(
        "empty-body",
        _route("/empty", reply(200, b"", RSS)),
        1,
        r"^empty response: the server sent no feed$",
    ),
    Fault(
        "200-MB-body-chunked",
        _route("/big", endless(200 << 20, declare_length=False)),
        1,
        r"^response larger than 10 MB$",
    ),
    Fault(
        "200-MB-body-declared",
        _route("/big", endless(200 << 20, declare_length=True)),
        1,
        r"^response larger than 10 MB$",
    ),
    Fault(
        "gzip-bomb-1-GB",
        _route("/bomb", gzip_bomb(1024)),
        1,
        r"^response larger than 10 MB after decompression$",
    ),
    Fault(
        "windows-1256-feed",
        _route("/fa", reply(200, CP1256, "application/rss+xml"), "fa"),
        0,
        check=check_cp1256,
    ),
    Fault("10000-items", _route("/many", reply(200, MANY, RSS)), 0, check=check_many_items),
    Fault(
        "items-without-date",
        _route(
            "/nodate",
            reply(200, feed(item(FLIGHT_TITLE, "https://example.az/nd", date=None)), RSS),
        ),
        0,
        check=check_no_date,
    ),
    Fault(
        "item-dated-2100",
        _route(
            "/future",
            reply(
                200,
                feed(
                    item(FLIGHT_TITLE, "https://example.az/f", date="Fri, 01 Jan 2100 10:00:00 GMT")
                ),
                RSS,
            ),
        ),
        0,
        check=check_future_date,
    ),
    Fault(
        "jalali-date",
        _route(
            "/jalali",
            reply(
                200,
                feed(item(FLIGHT_TITLE, "https://example.ir/j", date="۷ مرداد ۱۴۰۴ - ۱۰:۳۰")),
                RSS,
            ),
        ),
        0,
        check=check_jalali_date,
    ),
    Fault(
        "duplicate-guids",
        _route(
            "/dups",
            reply(
                200,
                feed(
                    *(
                        item(f"{FLIGHT_TITLE} ({n})", f"https://example.az/d{n}", guid="same-guid")
                        for n in range(3)
                    )
                ),
                RSS,
            ),
        ),
        0,
        check=check_duplicate_guids,
    ),
    Fault(
        "enormous-title-and-summary",
        _route("/huge", reply(200, feed(item(HUGE, "https://example.az/h", HUGE)), RSS)),
        0,
        check=check_enormous_title,
    ),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded database, made once; each case works on a copy."""
    path = tmp_path_factory.mktemp("template") / "seeded.db"
    r = run_tracker("--db", str(path), "status", env={"TRACKER_USER": "tester"})
    assert r.code == 0, r.err
    return path


@pytest.fixture
def fresh_db(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "commitments.db"
    with sqlite3.connect(template) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


@pytest.fixture
def healthy() -> Iterator[FaultyServer]:
    with serving() as server:
        server.route("/healthy", reply(200, HEALTHY, RSS))
        yield server


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_faulty_source_fails_alone_in_bounded_time_and_memory(
    fault: Fault, fresh_db: Path, healthy: FaultyServer, tmp_path: Path
) -> None:
    with serving() as server:
        sources = tmp_path / "sources.toml"
        sources.write_text(
            rss_source(healthy.url("/healthy")).replace('"faulty"', '"healthy"')
            + fault.setup(server),
            encoding="utf-8",
        )
        r = run_tracker("--db", str(fresh_db), "refresh", "--sources", str(sources), env=ENV)
        bytes_served = dict(server.bytes_sent)
    print(f"\nFAULT {fault.name:36s} exit {r.code}  {r.seconds:5.2f} s  {r.peak_mb:6.1f} MB")

    assert r.code == fault.code, (r.out, r.err)
    assert errors(r.err) == "", r.err  # no traceback, no warning: cron mails whatever lands here
    assert r.seconds < MAX_SECONDS
    assert r.peak_mb < MAX_MB

    # The healthy neighbour's evidence is there whatever the faulty source did.
    assert [(row[0], row[1]) for row in scraped(fresh_db, "healthy")] == [
        ("tabriz-baku-flight", HEALTHY_URL)
    ]
    code, out, _ = in_process("sources", "--sources", str(sources), "--json", db=fresh_db)
    assert code == 0
    health = {s["name"]: s for s in json.loads(out)["sources"]}
    assert health["healthy"]["last_state"] == "ok" and health["healthy"]["new_evidence"] == 1
    faulty = health["faulty"]
    if fault.code == 1:
        reason = faulty["last_error"]
        assert faulty["last_state"] == "failed" and faulty["consecutive_failures"] == 1
        assert re.search(fault.reason, reason), reason
        assert "\n" not in reason and len(reason) <= 300
        assert "Traceback" not in reason and "internal error" not in reason
        assert f"faulty: failed: {reason}" in r.out.splitlines()
        assert "1 ok, 0 unchanged, 1 failed" in r.out
    else:
        assert faulty["last_state"] == "ok" and faulty["last_error"] is None
        assert "2 ok, 0 unchanged, 0 failed" in r.out
        assert fault.check is not None
        fault.check(fresh_db)
    if fault.name.startswith("200-MB"):
        # The client hung up long before the end: a few socket buffers past the cap at most.
        assert bytes_served["/big"] < 32 << 20, bytes_served
    if fault.name.startswith("429"):
        # The server's wish is remembered: not asked again for an hour.
        due = datetime.fromisoformat(faulty["next_due"].replace("Z", "+00:00"))
        assert due > datetime.now(UTC) + timedelta(minutes=55)
    if fault.name == "connection-refused":
        assert r.seconds < 4  # refused is immediate: no waiting out a timeout


def test_429_source_is_not_asked_again_before_retry_after(
    fresh_db: Path, healthy: FaultyServer, tmp_path: Path
) -> None:
    with serving() as server:
        url = server.route("/429", reply(429, "", headers=[("Retry-After", "3600")]))
        sources = tmp_path / "sources.toml"
        sources.write_text(rss_source(url), encoding="utf-8")
        first = run_tracker("--db", str(fresh_db), "refresh", "--sources", str(sources), env=ENV)
        second = run_tracker("--db", str(fresh_db), "refresh", "--sources", str(sources), env=ENV)
        assert server.hits("/429") == 1
    assert first.code == 1 and errors(first.err) == ""
    assert second.code == 0, second.out
    assert "faulty: skipped: not due until" in second.out
