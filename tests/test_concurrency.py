"""Two refreshes at once, with people reading (and writing) meanwhile.

Two feeds of 100 matching items answer after 1.5 s, so a refresh holds the refresh lock for about
two seconds. Meanwhile `tracker status` and `tracker status --json` are polled in a loop (each a
real process), and a person adds evidence by hand.

- A second refresh either steps aside after TRACKER_LOCK_WAIT with one line naming the holder's
  pid (exit 1), or, given a long enough wait, runs after the first (exit 0) and adds nothing twice.
- No reader ever sees "database is locked"; every poll exits 0 with the full table.
- Evidence is never duplicated: each (commitment, canonical URL) once, exactly the feeds' items.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from .conftest import errors
from .faulty_server import (
    FaultyServer,
    Measured,
    reply,
    run_tracker,
    serving,
    slow,
    start_tracker,
)

ITEMS = 100
SLUGS = {
    "joint-industrial-park",
    "reconstruction-engineering",
    "khodaafarin-crossing",
    "new-access-point",
    "tabriz-baku-flight",
    "health-tourism",
    "tourist-tours",
    "tractor-dealership",
}


def feed(k: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Tabriz Baku flight, feed {k}, story {i}</title>"
        f"<link>https://example.org/c{k}/{i}</link><description>Baku flight.</description>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{k}</title>{items}</channel></rss>'


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyServer]:
    with serving() as s:
        for k in range(2):
            s.route(f"/c{k}", slow(1.5, reply(200, feed(k), "application/rss+xml")))
        yield s


@pytest.fixture
def setup(server: FaultyServer, tmp_path: Path) -> tuple[Path, Path]:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        "".join(
            f'[[source]]\nname = "c{k}"\nkind = "rss"\nurl = "{server.url(f"/c{k}")}"\n'
            'language = "en"\n'
            for k in range(2)
        ),
        encoding="utf-8",
    )
    db = tmp_path / "commitments.db"
    assert run_tracker("--db", str(db), "status").code == 0
    return db, sources


def start_refresh(db: Path, sources: Path, wait: str, log: Path) -> subprocess.Popen[bytes]:
    return start_tracker(
        "--db",
        str(db),
        "refresh",
        "--sources",
        str(sources),
        env={"TRACKER_LOCK_WAIT": wait, "TRACKER_HTTP_MAX_RETRIES": "0"},
        stdout=(log.with_suffix(".out")).open("wb"),
        stderr=(log.with_suffix(".err")).open("wb"),
    )


def poll_while(db: Path, procs: list[subprocess.Popen[bytes]], *, write: bool) -> list[Measured]:
    """Readers (and, with `write`, a person adding evidence) until every refresh has ended."""
    results = []
    n = 0
    while any(p.poll() is None for p in procs):
        args = ["status", "--json"] if n % 2 else ["status"]
        results.append(run_tracker("--db", str(db), *args))
        if write:
            results.append(
                run_tracker(
                    "--db",
                    str(db),
                    "evidence",
                    "add",
                    "health-tourism",
                    "--url",
                    f"https://example.org/by-hand/{n}",
                    "--title",
                    f"Noted by hand {n}",
                    "--date",
                    "2025-05-05",
                    "--stance",
                    "neutral",
                )
            )
        n += 1
    return results


def assert_no_duplicates(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        total, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT commitment_id || ' ' || canonical_url) FROM evidence"
        ).fetchone()
        scraped = {
            r[0] for r in conn.execute("SELECT canonical_url FROM evidence WHERE source LIKE 'c_'")
        }
    assert total == distinct
    assert scraped == {f"https://example.org/c{k}/{i}" for k in range(2) for i in range(ITEMS)}


def assert_readers_fine(polls: list[Measured]) -> None:
    assert len(polls) >= 2, "no reader overlapped the refreshes"
    for r in polls:
        assert r.code == 0, r.err
        assert errors(r.err) == "", r.err
        assert "locked" not in r.out + r.err
        assert all(slug in r.out for slug in SLUGS) or r.out.startswith("added evidence #")


def outcome(log: Path, proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    return (
        proc.returncode,
        log.with_suffix(".out").read_text(),
        log.with_suffix(".err").read_text(),
    )


def test_second_refresh_steps_aside_with_one_line_while_readers_read(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    db, sources = setup
    procs = [start_refresh(db, sources, "0.5", tmp_path / f"r{i}") for i in range(2)]
    polls = poll_while(db, procs, write=False)
    results = [outcome(tmp_path / f"r{i}", p) for i, p in enumerate(procs)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    winner = next(i for i, (code, _, _) in enumerate(results) if code == 0)
    _, out, err = results[1 - winner]
    assert out == ""
    assert errors(err).count("\n") == 1, err
    assert re.fullmatch(
        rf"error: another refresh is running \(pid {procs[winner].pid} since [0-9: -]+\); "
        r"waited 0\.5 s, stepping aside\n",
        err,
    ), err
    assert "200 new evidence" in results[winner][1]
    assert_readers_fine(polls)
    assert_no_duplicates(db)


def test_second_refresh_waits_its_turn_and_stores_nothing_twice(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    db, sources = setup
    procs = [start_refresh(db, sources, "30", tmp_path / f"r{i}") for i in range(2)]
    polls = poll_while(db, procs, write=True)
    results = [outcome(tmp_path / f"r{i}", p) for i, p in enumerate(procs)]
    assert [code for code, _, _ in results] == [0, 0], results
    assert all(err == "" for _, _, err in results)
    news = sorted(re.search(r"(\d+) new evidence", out).group(1) for _, out, _ in results)  # type: ignore[union-attr]
    assert news == ["0", "200"]  # the second run found everything already there
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM fetch_run").fetchone()[0] == 2
        by_hand = conn.execute("SELECT COUNT(*) FROM evidence WHERE source = 'manual'").fetchone()
    assert by_hand[0] == sum(1 for r in polls if r.out.startswith("added evidence #"))
    assert by_hand[0] >= 1  # a person's write got through while the refreshes ran
    assert_readers_fine(polls)
    assert_no_duplicates(db)


def test_first_use_of_a_new_database_by_several_processes_at_once(tmp_path: Path) -> None:
    failures = []
    for n in range(3):  # three processes at once collide nearly every time
        db = tmp_path / f"new-{n}.db"
        procs = [
            start_tracker("--db", str(db), "status", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                failures.append(err.decode())
    assert failures == []


RACER = """
import sqlite3, sys
sys.path.insert(0, sys.argv[1])
from tracker.store.database import _write_ahead

print("ready", flush=True)
for line in sys.stdin:  # one new file a round, given to every racer at once
    conn = sqlite3.connect(line.strip(), timeout=15, isolation_level=None)
    try:
        _write_ahead(conn, 15)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        conn.execute("COMMIT")
        print("ok", flush=True)
    except sqlite3.OperationalError as exc:
        print(f"error: {exc}", flush=True)
    finally:
        conn.close()
"""


def test_new_files_turned_to_write_ahead_logging_by_three_processes_at_once(
    tmp_path: Path,
) -> None:
    """Turning a new file's journal into a write-ahead log needs the file alone for a moment,
    and SQLite refuses at once, without its busy timeout, when another process is doing the same
    (three commands using a new database together lost that race about once in a hundred; a
    plain PRAGMA fails a few times in these rounds)."""
    root = str(Path(__file__).resolve().parent.parent)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers: list[str] = []
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
        for n in range(100):
            path = f"{tmp_path / f'new-{n}.db'}\n"
            for racer in racers:
                assert racer.stdin is not None
                racer.stdin.write(path)
                racer.stdin.flush()
            for racer in racers:
                assert racer.stdout is not None
                answers.append(racer.stdout.readline().strip())
    finally:
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.close()
            racer.wait(timeout=30)
    assert answers == ["ok"] * 300, [a for a in answers if a != "ok"]
