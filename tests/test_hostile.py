"""Hostile text and bad input: stored safely, shown literally, one clear line for every mistake.

Part 1, hostile text. A feed carries rich markup, Markdown, HTML, bidirectional controls, NUL
bytes, terminal escape sequences, invalid UTF-8 and 100 KB titles; rows written straight into the
database (by an older version or another tool) carry raw newlines and escapes. What is stored is
NUL-free and bounded; `tracker show`, `tracker review`, `tracker sources` and the refresh summary
show it literally: markup as typed, bidi controls as `\\u202e`, no ESC byte at all, one table row
per evidence whatever its title holds.

Part 2, bad input. Every command with bad arguments, bad files, unusable database paths, a file
that is not a database (left byte-for-byte untouched), a database of schema 1 (upgraded), and a
database another process holds locked: one line starting with `error:`, exit 2 for the user's
mistakes and 1 for the environment's, no traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tracker.store import SCHEMA_VERSION

from .conftest import DATA, errors
from .faulty_server import FaultyServer, Measured, reply, run_tracker, serving

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ESC = "\x1b"
NOW = datetime.now(UTC)


def one_error_line(r: Measured, code: int, *needles: str) -> str:
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.out + r.err
    lines = errors(r.err).splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def assert_inert(text: str) -> None:
    """Nothing in `text` can drive a terminal or reorder what follows it."""
    assert ESC not in text
    assert not any(ch in text for ch in BIDI)
    assert "\r" not in text and "\x00" not in text and "\x07" not in text


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "seeded.db"
    assert run_tracker("--db", str(path), "status", env={"TRACKER_USER": "tester"}).code == 0
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "commitments.db"
    with sqlite3.connect(template) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


# ---------------------------------------------------------------- part 1: hostile text


def entry(title: bytes, link: str, summary: bytes = b"") -> bytes:
    when = format_datetime(NOW - timedelta(hours=1)).encode()
    return (
        b"<item><title>" + title + b"</title><link>" + link.encode() + b"</link>"
        b"<description>" + summary + b"</description><pubDate>" + when + b"</pubDate></item>"
    )


HOSTILE_FEED = (
    b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
    + "<title>Wire \u2014 [blink]Pub[/blink] \u202eevil</title>".encode()
    + entry(
        b"[bold red]Tabriz Baku flight[/bold red] **bold** _it_ [link](http://evil.example)",
        "https://example.org/h/markup",
    )
    + entry(
        "Tabriz Baku flight \u202eevil\u202c \u2066iso\u2069 \u202bemb\u202c".encode(),
        "https://example.org/h/bidi",
    )
    + entry(b"Tabriz Baku\x00 flight with a NUL", "https://example.org/h/nul", b"sum\x00mary")
    + entry(
        b"Tabriz Baku flight \x1b[31mRED\x1b[0m \x1b]8;;http://evil.example\x07click\x1b]8;;\x07",
        "https://example.org/h/esc",
    )
    + entry(
        b"Tabriz Baku flight &lt;script&gt;alert(1)&lt;/script&gt;"
        b" &lt;img src=x onerror=alert(2)&gt;&lt;b&gt;bold&lt;/b&gt;",
        "https://example.org/h/html",
    )
    + entry(
        "Tabriz Baku flight \u2014 بازگشایی پرواز تبریز باکو ".encode() + b"\xff\xfe end",
        "https://example.org/h/utf8",
    )
    + entry(
        b"Tabriz Baku flight " + b"A" * 100_000,
        "https://example.org/h/huge",
        b"B" * 100_000,
    )
    + entry(
        b"Tabriz Baku flight split\n987654  tabriz-baku-flight  2025-01-01  forged  FORGED ROW",
        "https://example.org/h/newline",
    )
    + b"</channel></rss>"
)


@pytest.fixture
def feed_server() -> Iterator[FaultyServer]:
    with serving() as s:
        s.route("/hostile", reply(200, HOSTILE_FEED, "application/rss+xml; charset=utf-8"))
        s.route(
            "/angry",
            reply(500, "\x1b[2J\x1b[31mPWNED\u202e gotcha\r\nsecond line", "text/plain"),
        )
        yield s


def test_hostile_feed_text_is_stored_safely_and_shown_literally(
    db: Path, feed_server: FaultyServer, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "wire"\nkind = "rss"\nurl = "{feed_server.url("/hostile")}"\n'
        'language = "en"\n'
        f'[[source]]\nname = "angry"\nkind = "rss"\nurl = "{feed_server.url("/angry")}"\n'
        'language = "en"\n',
        encoding="utf-8",
    )
    env = {"TRACKER_HTTP_MAX_RETRIES": "0"}
    r = run_tracker("--db", str(db), "refresh", "--sources", str(sources), env=env)
    assert r.code == 1 and errors(r.err) == "", r.err  # the angry source failed, nothing else
    assert_inert(r.out)
    # The server's words, without their escapes, on the one line of the failed source.
    assert (
        "angry: failed: HTTP 500 Internal Server Error: [2J [31mPWNED\\u202e gotcha second line"
        in r.out
    )
    assert "8 new evidence" in r.out

    with sqlite3.connect(db) as conn:
        rows = dict(
            conn.execute("SELECT url, title FROM evidence WHERE source = 'wire'").fetchall()
        )
        longest = conn.execute(
            "SELECT MAX(LENGTH(title)), MAX(LENGTH(summary)) FROM evidence"
        ).fetchone()
        nul = conn.execute(
            "SELECT COUNT(*) FROM evidence WHERE INSTR(title, CHAR(0)) OR INSTR(summary, CHAR(0))"
            " OR INSTR(publisher, CHAR(0))"
        ).fetchone()[0]
        error = conn.execute("SELECT last_error FROM source_health WHERE name='angry'").fetchone()
    assert len(rows) == 8
    assert nul == 0
    assert longest[0] <= 1000 and longest[1] <= 5000
    assert rows["https://example.org/h/nul"] == "Tabriz Baku flight with a NUL"
    assert ESC not in rows["https://example.org/h/esc"]  # removed before it is stored
    assert "\n" not in rows["https://example.org/h/newline"]
    # One stray byte does not turn a UTF-8 feed into mojibake.
    assert rows["https://example.org/h/utf8"].startswith(
        "Tabriz Baku flight \u2014 بازگشایی پرواز تبریز باکو \ufffd"
    )
    assert "<" not in rows["https://example.org/h/html"]
    assert "\n" not in error[0] and "\r" not in error[0]

    show = run_tracker("--db", str(db), "show", "tabriz-baku-flight")
    review = run_tracker(
        "--db", str(db), "review", "--commitment", "tabriz-baku-flight", "--limit", "100"
    )
    table = run_tracker("--db", str(db), "sources", "--sources", str(sources))
    for out in (show, review, table):
        assert out.code == 0 and errors(out.err) == "", out.err
        assert_inert(out.out)
    for out in (show.out, review.out):
        assert (
            "[bold red]Tabriz Baku flight[/bold red] **bold** _it_ [link](http://evil.example)"
            in out
        )
        assert "\\u202eevil\\u202c \\u2066iso\\u2069 \\u202bemb\\u202c" in out
        assert "[31mRED [0m" in out  # the ESC bytes are gone, the rest is literal
        assert "<script" not in out and "alert(" not in out and "onerror" not in out
        assert "بازگشایی پرواز تبریز باکو" in out and "â€" not in out
        assert "Wire \u2014 [blink]Pub[/blink] \\u202eevil" in out  # the publisher column
        assert "A" * 1000 not in out  # the 100 KB title was cut when stored
        forged = [line for line in out.splitlines() if "FORGED ROW" in line]
        assert len(forged) == 1 and "Tabriz Baku flight split" in forged[0]
        assert not re.search(r"^\s*987654\s", out, re.M)
    assert "[2J [31mPWNED\\u202e gotcha second line" in table.out


def test_raw_control_characters_in_stored_rows_cannot_spoof_the_tables(db: Path) -> None:
    """Rows written by another tool or an older version still display one line each."""
    title = (
        "Harmless story\n987654  health-tourism  2025-01-01  forged-source  FORGED"
        "\x1b[31m\u202eRED\u2029more\r\nend\x00"
    )
    with sqlite3.connect(db) as conn:
        cid = conn.execute("SELECT id FROM commitment WHERE slug='health-tourism'").fetchone()[0]
        conn.execute(
            "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key,"
            " published_at, source, publisher, language, stance, review, matched_terms, score,"
            " created_at, cancels, revision) VALUES (?, 'https://example.org/raw',"
            " 'https://example.org/raw', ?, '', '', '2026-01-02 10:00:00', 'elsewhere',"
            " ?, 'en', 'neutral', 'pending', ?, 1.0, '2026-01-02 10:00:00', 0, 0)",
            (cid, title, "\x1b]0;owned\x07Pub\nlisher", json.dumps(["\x1b[5mterm\nx"])),
        )
    by_hand = run_tracker(
        "--db",
        str(db),
        "evidence",
        "add",
        "health-tourism",
        "--url",
        "https://example.org/by-hand",
        "--title",
        "Typed\n987654  health-tourism  2025-01-01  manual  FORGED BY HAND \x1b[32mgreen\u202e",
        "--date",
        "2025-05-05",
        "--note",
        "\x1b[2Jnote",
    )
    assert by_hand.code == 0, by_hand.err
    assert_inert(by_hand.out)
    show = run_tracker("--db", str(db), "show", "health-tourism")
    review = run_tracker("--db", str(db), "review", "--commitment", "health-tourism")
    for r in (show, review):
        assert r.code == 0 and errors(r.err) == "", r.err
        assert_inert(r.out)
        lines = [line for line in r.out.splitlines() if "FORGED" in line]
        assert all("Harmless story" in line or "Typed" in line for line in lines), lines
        assert not re.search(r"^\s*987654\s", r.out, re.M)
        assert "\\u001b[31m\\u202eRED" in r.out
    assert "\\u001b]0;owned\\u0007Pub lisher" in review.out
    assert "\\u001b[5mterm x" in review.out
    # Typed by a person: the control character is not stored at all, the bidi one is escaped.
    assert "FORGED BY HAND [32mgreen\\u202e" in show.out


# ---------------------------------------------------------------- part 2: bad input


def _add(*extra: str, slug: str = "health-tourism", url: str = "https://x.org/a") -> list[str]:
    return ["evidence", "add", slug, "--url", url, "--title", "t", "--date", "2025-01-01", *extra]


BAD_SOURCES = '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.org/f"\nlanguage = "en"\nevery = "soon"\n'

# (arguments, extra environment, exit code, words the one line must contain). "{tmp}" is the
# test's directory, holding `bad.toml` (not TOML), `bad-sources.toml` (a bad field) and `adir/`.
USAGE_ERRORS: list[tuple[list[str], dict[str, str], int, list[str]]] = [
    (_add(slug="no-such-thing"), {}, 2, ["unknown commitment 'no-such-thing'"]),
    (_add(url="javascript:alert(1)"), {}, 2, ["http(s) URL"]),
    (_add(url="https://x.org/a b"), {}, 2, ["without spaces"]),
    (_add("--milestone", "0"), {}, 2, ["milestone must be between 1 and"]),
    (_add("--milestone", "two"), {}, 2, ["Invalid value for '--milestone'"]),
    (
        [
            "evidence",
            "add",
            "health-tourism",
            "--url",
            "https://x.org/a",
            "--title",
            " ",
            "--date",
            "2025-01-01",
        ],
        {},
        2,
        ["title must not be empty"],
    ),
    (
        ["evidence", "add", "health-tourism", "--title", "t", "--date", "2025-01-01"],
        {},
        2,
        ["Missing option '--url'"],
    ),
    ([*_add()[:-2], "--date", "yesterday"], {}, 2, ["--date must be YYYY-MM-DD, got 'yesterday'"]),
    (["review", "--commitment", "no-such-thing"], {}, 2, ["unknown commitment"]),
    (["review", "--limit", "0"], {}, 2, ["--limit"]),
    (["review", "confirm", "1", "--stance", "great"], {}, 2, ["unknown stance 'great'"]),
    (["review", "confirm", "1", "--milestone", "99"], {}, 2, ["milestone must be between"]),
    (["review", "reject", "999999", "--reason", "x"], {}, 2, ["no evidence with id 999999"]),
    (["review", "reject"], {}, 2, ["give an evidence ID, or --all"]),
    (["review", "approve", "1"], {}, 2, ["No such command 'approve'"]),
    (["set-status", "no-such-thing", "broken", "--reason", "x"], {}, 2, ["unknown commitment"]),
    (
        ["set-status", "health-tourism", "broken", "--reason", "   "],
        {},
        2,
        ["a reason is required"],
    ),
    (["set-status", "health-tourism", "broken", "--clear"], {}, 2, ["either a STATUS"]),
    (
        ["set-status", "health-tourism", "Delivered", "--reason", "x"],
        {},
        2,
        ["did you mean 'delivered'"],
    ),
    # An unwritable output is the environment's problem: exit 1.
    (["export", "-o", "{tmp}/no-such-dir/x.json"], {}, 1, ["cannot write"]),
    (["export", "-o", "{tmp}/adir"], {}, 1, ["cannot write"]),
    (["catalog", "load", "{tmp}/bad.toml"], {}, 2, ["bad.toml", "TOML"]),
    (["catalog", "load", "{tmp}/adir"], {}, 2, ["adir"]),
    (["catalog", "load"], {}, 2, ["Missing argument"]),
    (["refresh", "--sources", "{tmp}/bad.toml"], {}, 2, ["not valid TOML"]),
    (["refresh", "--sources", "{tmp}/adir"], {}, 2, ["cannot read"]),
    (["refresh", "--only", "x", "--sources", "{tmp}/bad-sources.toml"], {}, 2, ["field 'every'"]),
    (["sources", "--sources", "{tmp}/missing.toml"], {}, 2, ["no such file"]),
    (["sources", "--sources", "{tmp}/bad-sources.toml"], {}, 2, ["source 'a'", "field 'every'"]),
    (["cron", "--sources", "{tmp}/missing.toml"], {}, 2, ["no such file"]),
    (["daemon", "--refresh-every", "soon"], {}, 2, ["soon"]),
    (["daemon", "--report-cron", "every monday"], {}, 2, ["every monday"]),
    (["report", "weekly", "--week", "last week"], {}, 2, ["last week"]),
    (
        ["report", "weekly", "--to", "not an address", "--dry-run", "--email"],
        {"TRACKER_MAIL_FROM": "tracker@example.org", "TRACKER_SMTP_HOST": "127.0.0.1"},
        2,
        ["--to", "is not an email address"],
    ),
    (["status"], {"TRACKER_TODAY": "yesterday"}, 2, ["TRACKER_TODAY must be YYYY-MM-DD"]),
    (["status"], {"TRACKER_BUSY_TIMEOUT_MS": "soon"}, 2, ["TRACKER_BUSY_TIMEOUT_MS"]),
    (
        ["refresh", "--sources", "{tmp}/ok.toml"],
        {"TRACKER_HTTP_DEADLINE": "fast"},
        2,
        ["TRACKER_HTTP_DEADLINE"],
    ),
    (
        ["refresh", "--sources", "{tmp}/ok.toml"],
        {"TRACKER_HTTP_DEADLINE": "-1"},
        2,
        ["deadline must be positive"],
    ),
    (
        ["refresh", "--sources", "{tmp}/ok.toml"],
        {"TRACKER_LOCK_WAIT": "a while"},
        2,
        ["TRACKER_LOCK_WAIT"],
    ),
    (
        ["refresh", "--sources", "{tmp}/ok.toml"],
        {"TRACKER_LOCK_WAIT": "-5"},
        2,
        ["TRACKER_LOCK_WAIT"],
    ),
]


def test_every_command_with_bad_input_says_one_line_and_changes_nothing(
    db: Path, tmp_path: Path
) -> None:
    (tmp_path / "bad.toml").write_text("[[agreement]\nslug = ", encoding="utf-8")
    (tmp_path / "bad-sources.toml").write_text(BAD_SOURCES, encoding="utf-8")
    (tmp_path / "ok.toml").write_text(
        '[[source]]\nname = "a"\nkind = "rss"\nurl = "http://127.0.0.1:9/f"\nlanguage = "en"\n',
        encoding="utf-8",
    )
    (tmp_path / "adir").mkdir()
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    def run(case: tuple[list[str], dict[str, str], int, list[str]]) -> tuple[object, Measured]:
        args, env, _, _ = case
        argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
        return case, run_tracker("--db", str(db), *argv, env=env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, USAGE_ERRORS))
    for (args, _, code, needles), r in results:  # type: ignore[misc]
        try:
            one_error_line(r, code, *needles)
        except AssertionError as exc:
            raise AssertionError(f"tracker {' '.join(args)}: {exc}") from None
        assert r.out == "", (args, r.out)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("/proc/tracker-test.db", "/proc/tracker-test.db"),  # a read-only file system
        ("{tmp}/a-file/x.db", "a-file/x.db"),  # the parent is a regular file
        ("{tmp}/no-dir/x.db", "directory does not exist"),
        ("{tmp}", "is a directory"),
    ],
)
def test_unusable_database_path_is_one_line_exit_1(where: str, needle: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    target = where.replace("{tmp}", str(tmp_path))
    for args in (["status"], ["evidence", "add", *_add()[2:]], ["refresh", "--only", "irna-en"]):
        r = run_tracker("--db", target, *args)
        one_error_line(r, 1, needle)
    assert (tmp_path / "a-file").read_text() == "not a directory"


COMMANDS = [
    ["status"],
    ["show", "health-tourism"],
    ["review"],
    ["review", "confirm", "1"],
    ["set-status", "health-tourism", "broken", "--reason", "x"],
    _add(),
    ["export"],
    ["catalog", "load", str(DATA / "other_catalog.toml")],
    ["refresh", "--only", "irna-en"],
    ["sources", "--json"],
]


@pytest.mark.parametrize(
    "content",
    [
        b"my notes, not a database\n",
        b"SQLite format 3\x00" + b"\x00" * 200,  # a damaged header
    ],
    ids=["text", "damaged-sqlite"],
)
def test_file_that_is_not_a_database_is_left_untouched_by_every_command(
    content: bytes, tmp_path: Path
) -> None:
    target = tmp_path / "notes.db"
    target.write_bytes(content)

    def run(args: list[str]) -> Measured:
        return run_tracker("--db", str(target), *args)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, COMMANDS))
    for args, r in zip(COMMANDS, results, strict=True):
        try:
            one_error_line(r, 1, str(target), "left untouched")
        except AssertionError as exc:
            raise AssertionError(f"tracker {' '.join(args)}: {exc}") from None
    assert target.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, -shm, lock


def test_schema_1_database_is_upgraded_by_the_cli(tmp_path: Path) -> None:
    target = tmp_path / "old.db"
    with sqlite3.connect(target) as conn:
        conn.executescript((DATA / "schema_v1.sql").read_text(encoding="utf-8"))
    r = run_tracker("--db", str(target), "status", "--json", env={"TRACKER_TODAY": "2025-08-02"})
    assert r.code == 0 and errors(r.err) == "", r.err
    assert [c["status"] for c in json.loads(r.out)["commitments"]] == ["in_progress"]
    r = run_tracker("--db", str(target), "review", "reject", "2", "--reason", "not flights")
    assert r.code == 0, r.err
    with sqlite3.connect(target) as conn:
        version = dict(conn.execute("SELECT key, value FROM tracker_meta"))["schema_version"]
        assert version == str(SCHEMA_VERSION)
        assert conn.execute("SELECT review FROM evidence WHERE id = 2").fetchone() == ("rejected",)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


WRITERS = [
    _add(),
    ["set-status", "health-tourism", "broken", "--reason", "x"],
    ["review", "confirm", "1"],
    ["catalog", "load", str(DATA / "other_catalog.toml")],
    ["refresh", "--sources", "{sources}"],
]
READERS = [
    ["status"],
    ["show", "health-tourism"],
    ["review"],
    ["export"],
    ["sources", "--json", "--sources", "{sources}"],
]


def test_locked_database_fails_writers_fast_and_keeps_readers_reading(
    db: Path, tmp_path: Path
) -> None:
    with serving() as server:
        url = server.route(
            "/feed",
            reply(200, '<rss version="2.0"><channel><title>x</title></channel></rss>', "text/xml"),
        )
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[source]]\nname = "a"\nkind = "rss"\nurl = "{url}"\nlanguage = "en"\n',
            encoding="utf-8",
        )
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE tracker_meta SET value = value WHERE key = 'app'")
        env = {"TRACKER_BUSY_TIMEOUT_MS": "200", "TRACKER_HTTP_MAX_RETRIES": "0"}
        try:

            def run(args: list[str]) -> Measured:
                argv = [a.replace("{sources}", str(sources)) for a in args]
                return run_tracker("--db", str(db), *argv, env=env)

            with ThreadPoolExecutor(max_workers=3) as pool:
                writers = list(pool.map(run, WRITERS))
                readers = list(pool.map(run, READERS))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    for args, r in zip(WRITERS, writers, strict=True):
        one_error_line(r, 1, f"database {db} is locked by another process; try again shortly")
        assert r.seconds < 5, (args, r.seconds)  # the busy timeout, not a hang
    for args, r in zip(READERS, readers, strict=True):
        assert r.code == 0 and errors(r.err) == "", (args, r.err)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM evidence WHERE source = 'manual'").fetchone() == (
            0,
        )


def test_locked_schema_1_database_says_locked_not_unusable(tmp_path: Path) -> None:
    target = tmp_path / "old.db"
    holder = sqlite3.connect(target, isolation_level=None)
    holder.executescript((DATA / "schema_v1.sql").read_text(encoding="utf-8"))
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE tracker_meta SET value = value WHERE key = 'app'")
    try:
        r = run_tracker("--db", str(target), "status", env={"TRACKER_BUSY_TIMEOUT_MS": "200"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_error_line(r, 1, "is locked by another process")


def test_database_url_with_a_bad_port_is_a_usage_error() -> None:
    r = run_tracker("--db", "postgresql://u@127.0.0.1:notaport/db", "status")
    one_error_line(r, 2, "cannot use database URL")
