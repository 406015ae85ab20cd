"""A refresh killed with SIGKILL at any moment leaves a sound database, and a re-run heals it.

Four feeds of 150 matching items each are served slowly (0.25-1 s before the answer), so that a
run spends its first second or two starting and fetching, then writes the sources as they come, a
quarter of a second apart: more than the refresh waits to put sources that arrive together into
one transaction (tracker.refresh.STORE_WAIT), even when its parser processes start late. Kill
points are drawn at random (fixed seed) over the whole run, plus kills triggered by watching the
database: as soon as 1, 2 or 3 sources are committed, so that a kill lands in the middle of the
writes. After every kill:

- `PRAGMA integrity_check` is ok and no foreign key dangles;
- each source's evidence is all or nothing: exactly what an uninterrupted refresh stores for that
  source, or none of it; its health row was written in the same transaction;
- a plain re-run exits 0 and reaches exactly the state of an uninterrupted run
  (evidence (commitment, canonical_url, review) and mentions), with no duplicates.

Feeds 1-3 also carry feed 0's first story under another URL, so the runs record syndication
mentions, and every re-run sees those copies again.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from .conftest import errors
from .faulty_server import FaultyServer, reply, run_tracker, serving, slow, start_tracker

SOURCES = 4
ITEMS = 150
ENV = {"TRACKER_LOCK_WAIT": "2", "TRACKER_HTTP_MAX_RETRIES": "0"}
Row = tuple[str, str, str]


def feed(k: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Tabriz Baku flight {k} story {i}</title>"
        f"<link>https://example.org/feed{k}/story{i}</link>"
        "<description>A new flight to Baku.</description>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(ITEMS)
    )
    if k:  # feed 0's first story, syndicated under another URL: a mention, not new evidence
        items += (
            "<item><title>Tabriz Baku flight 0 story 0</title>"
            f"<link>https://example.org/syndicated/{k}</link>"
            f"<pubDate>{format_datetime(now)}</pubDate></item>"
        )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {k}</title>{items}</channel></rss>'


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyServer]:
    with serving() as s:
        for k in range(SOURCES):
            s.route(f"/feed{k}", slow(0.25 * (k + 1), reply(200, feed(k), "application/rss+xml")))
        yield s


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, server: FaultyServer) -> Path:
    """A sources file and a seeded template database, made once."""
    base = tmp_path_factory.mktemp("crash")
    (base / "sources.toml").write_text(
        "".join(
            f'[[source]]\nname = "feed-{k}"\nkind = "rss"\nurl = "{server.url(f"/feed{k}")}"\n'
            'language = "en"\n'
            for k in range(SOURCES)
        ),
        encoding="utf-8",
    )
    r = run_tracker("--db", str(base / "template.db"), "status", env={"TRACKER_USER": "tester"})
    assert r.code == 0, r.err
    return base


def copy_template(workdir: Path, target: Path) -> Path:
    with sqlite3.connect(workdir / "template.db") as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def refresh_args(db: Path, workdir: Path) -> list[str]:
    return ["--db", str(db), "refresh", "--quiet", "--sources", str(workdir / "sources.toml")]


def evidence(db: Path) -> dict[str, set[Row]]:
    """Scraped evidence by source: {source: {(commitment, canonical_url, review)}}."""
    result: dict[str, set[Row]] = {}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT e.source, c.slug, e.canonical_url, e.review FROM evidence e"
            " JOIN commitment c ON c.id = e.commitment_id WHERE e.source LIKE 'feed-%'"
        ).fetchall()
    for source, *row in rows:
        result.setdefault(source, set()).add(tuple(row))  # type: ignore[arg-type]
    return result


def counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT COUNT(*) FROM evidence WHERE source LIKE 'feed-%'").fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM mention").fetchone()[0],
        )


def mentions(db: Path) -> dict[str, set[tuple[str, str]]]:
    """Mentions by source: {source: {(evidence canonical URL, mention canonical URL)}}."""
    result: dict[str, set[tuple[str, str]]] = {}
    with sqlite3.connect(db) as conn:
        for source, *pair in conn.execute(
            "SELECT m.source, e.canonical_url, m.canonical_url FROM mention m"
            " JOIN evidence e ON e.id = m.evidence_id"
        ):
            result.setdefault(source, set()).add(tuple(pair))  # type: ignore[arg-type]
    return result


def healthy_sources(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {
            r[0] for r in conn.execute("SELECT name FROM source_health WHERE last_state = 'ok'")
        }


def assert_sound(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


Reference = tuple[dict[str, set[Row]], dict[str, set[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def reference(workdir: Path) -> Reference:
    """What an uninterrupted refresh stores, per source, and how long it took."""
    db = copy_template(workdir, workdir / "reference.db")
    r = run_tracker(*refresh_args(db, workdir), env=ENV)
    assert r.code == 0, r.out + r.err
    stored, mentioned = evidence(db), mentions(db)
    assert set(stored) == {f"feed-{k}" for k in range(SOURCES)}
    assert all(len(rows) == ITEMS for rows in stored.values())
    assert mentioned == {
        f"feed-{k}": {("https://example.org/feed0/story0", f"https://example.org/syndicated/{k}")}
        for k in range(1, SOURCES)
    }
    # An uninterrupted second run changes nothing (the same items, syndicated copies included).
    again = run_tracker(*refresh_args(db, workdir), env=ENV)
    assert again.code == 0, again.out + again.err
    assert (evidence(db), mentions(db)) == (stored, mentioned)
    assert counts(db) == (SOURCES * ITEMS, SOURCES - 1)
    return stored, mentioned, r.seconds


def committed_sources(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=0.05) as conn:
            return int(
                conn.execute(
                    "SELECT COUNT(DISTINCT source) FROM evidence WHERE source LIKE 'feed-%'"
                ).fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def kill_after(proc: subprocess.Popen[bytes], db: Path, *, at: float | None, sources: int) -> None:
    """SIGKILL the refresh `at` seconds after start, or once `sources` sources are committed."""
    started = time.monotonic()
    while proc.poll() is None:
        elapsed = time.monotonic() - started
        if at is not None and elapsed >= at:
            break
        if at is None and committed_sources(db) >= sources:
            break
        time.sleep(0.003)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_at_random_moments_leaves_whole_batches_and_a_rerun_heals(
    workdir: Path, reference: Reference, tmp_path: Path
) -> None:
    complete, complete_mentions, duration = reference
    rng = random.Random(20260219)
    # Five moments anywhere from start-up to the end of a normal run, and three in the middle of
    # the writes: just after the 1st, 2nd and 3rd source is committed.
    plan: list[tuple[float | None, int]] = [
        (rng.uniform(0.2, 0.95 * duration), 0) for _ in range(5)
    ]
    plan += [(None, 1), (None, 2), (None, 3)]
    states = []
    for n, (at, after_sources) in enumerate(plan):
        db = copy_template(workdir, tmp_path / f"killed-{n}.db")
        proc = start_tracker(*refresh_args(db, workdir), env=ENV)
        kill_after(proc, db, at=at, sources=after_sources)
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, proc.returncode

        assert_sound(db)
        stored = evidence(db)
        for source, rows in stored.items():
            assert rows == complete[source], f"kill {n}: half a batch of {source}"
        for source, pairs in mentions(db).items():
            assert source in stored, f"kill {n}: mentions of {source} without its evidence"
            assert pairs == complete_mentions[source], f"kill {n}: half the mentions of {source}"
        # Health is written in the same transaction as the evidence.
        assert healthy_sources(db) == set(stored), n
        if killed:
            states.append(len(stored))
        print(f"kill {n}: at {at} / after {after_sources} committed: {len(stored)} stored")

        r = run_tracker(*refresh_args(db, workdir), env=ENV)
        assert r.code == 0, (n, r.out, r.err)
        assert_sound(db)
        assert evidence(db) == complete, f"kill {n}: the re-run did not heal"
        assert mentions(db) == complete_mentions, f"kill {n}: the re-run did not heal"
        assert counts(db) == (SOURCES * ITEMS, SOURCES - 1)  # no duplicate rows
    # The kills really landed before any write and in the middle of the writes.
    assert len(states) >= 6, states
    assert 0 in states, states
    assert any(0 < s < SOURCES for s in states), states


def test_sigkill_while_creating_the_database_never_leaves_it_unusable(tmp_path: Path) -> None:
    rng = random.Random(7)
    for n in range(3):
        db = tmp_path / f"new-{n}.db"
        proc = start_tracker("--db", str(db), "status", env={"TRACKER_USER": "tester"})
        started = time.monotonic()
        while not db.exists() and proc.poll() is None and time.monotonic() - started < 10:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.15))  # somewhere in schema creation and seeding
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        r = run_tracker("--db", str(db), "status", "--json", env={"TRACKER_USER": "tester"})
        assert r.code == 0, (n, r.err)
        assert errors(r.err) == ""
        assert_sound(db)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM commitment").fetchone()[0] == 8
            assert dict(conn.execute("SELECT key, value FROM tracker_meta"))["app"] == "tracker"
