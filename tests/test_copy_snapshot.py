"""`db copy` from PostgreSQL is one snapshot, and a failed copy leaves the target as it was.

A source of 200,000 evidence rows takes a copy several seconds; meanwhile real `tracker`
processes add evidence and confirm an item the copy has already passed. The copy must show the
database of one moment (the confirm wholly absent: the item pending and no review event; the new
evidence absent) and still verify its counts. A copy whose source connection is cut halfway
leaves a new target absent and an existing one unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker import register
from tracker.settings import Settings

from .conftest import query
from .faulty_server import run_tracker, start_tracker

ROWS = 200_000


@pytest.fixture
def big_pg(pg_url: str) -> Iterator[str]:
    register.open_store(Settings.from_env().with_db(pg_url)).dispose()
    query(
        pg_url,
        "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key,"
        " published_at, source, language, stance, review, matched_terms, score, created_at,"
        " cancels, revision, date_precision, reasons)"
        " SELECT (SELECT id FROM commitment WHERE slug = 'tabriz-baku-flight'),"
        " 'https://example.org/n/' || g, 'https://example.org/n/' || g, 'Story ' || g, '',"
        " 'story ' || g, TIMESTAMP '2025-01-01' + g * INTERVAL '1 minute', 'feed', 'en',"
        " 'neutral', 'pending', '[]', 1.0, TIMESTAMP '2025-01-01' + g * INTERVAL '1 minute',"
        " FALSE, 0, 'day', '[]' FROM generate_series(1, :n) g",
        {"n": ROWS},
    )
    query(pg_url, "ANALYZE")
    yield pg_url


def copied_bytes(target: Path) -> int:
    return sum(p.stat().st_size for p in target.parent.glob(target.name + "*") if p.is_file())


def start_copy(source: str, target: Path, *extra: str) -> subprocess.Popen[bytes]:
    return start_tracker(
        "--db", source, "db", "copy", "--to", str(target), *extra,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_until_under_way(copy: subprocess.Popen[bytes], target: Path, size: int) -> None:
    deadline = time.monotonic() + 60
    while copied_bytes(target) < size:
        assert copy.poll() is None, copy.communicate()
        assert time.monotonic() < deadline, "the copy did not get going"
        time.sleep(0.05)


def test_a_snapshot_read_is_repeatable_read_and_read_only(pg_url: str) -> None:
    db = register.open_store(Settings.from_env().with_db(pg_url))
    try:
        for _ in range(2):  # a fresh and a pooled connection
            with db.read(snapshot=True) as conn:
                assert conn.rows(
                    "SELECT current_setting('transaction_isolation'),"
                    " current_setting('transaction_read_only')"
                ) == [("repeatable read", "on")]
        with db.read() as conn:
            assert conn.rows("SELECT current_setting('transaction_isolation')") == [
                ("read committed",)
            ]
    finally:
        db.dispose()


@pytest.mark.slow
def test_writes_during_a_copy_are_wholly_in_it_or_wholly_out(big_pg: str, tmp_path: Path) -> None:
    ((first_id,),) = query(big_pg, "SELECT MIN(id) FROM evidence WHERE source = 'feed'")
    target = tmp_path / "copy.db"
    copy = start_copy(big_pg, target)
    wait_until_under_way(copy, target, 8_000_000)  # well past the first evidence rows
    added = run_tracker(
        "--db", big_pg, "evidence", "add", "health-tourism", "--url",
        "https://example.org/during-the-copy", "--title", "Added during the copy",
        "--date", "2026-03-01",
    )  # fmt: skip
    assert added.code == 0, added.err
    confirmed = run_tracker("--db", big_pg, "review", "confirm", str(first_id))
    assert confirmed.code == 0, confirmed.err
    assert copy.poll() is None, "the copy ended before the writes: make the source bigger"
    out, err = copy.communicate(timeout=300)
    assert copy.returncode == 0, err
    assert b"counts verified" in out
    with sqlite3.connect(target) as conn:
        review = conn.execute("SELECT review FROM evidence WHERE id = ?", (first_id,)).fetchone()
        events = conn.execute(
            "SELECT decision FROM review_event WHERE evidence_id = ?", (first_id,)
        ).fetchall()
        manual = conn.execute("SELECT COUNT(*) FROM evidence WHERE source = 'manual'").fetchone()
        total = conn.execute("SELECT COUNT(*) FROM evidence WHERE source = 'feed'").fetchone()
    # The moment the copy began: before the confirm and before the new evidence.
    assert (review, events) == (("pending",), [])
    assert manual == (0,)
    assert total == (ROWS,)
    # The source itself has both.
    assert query(big_pg, "SELECT review FROM evidence WHERE id = :i", {"i": first_id}) == [
        ("confirmed",)
    ]


def export(db: str) -> dict[str, object]:
    r = run_tracker("--db", db, "export", env={"TRACKER_TODAY": "2026-11-26"})
    assert r.code == 0, r.err
    data: dict[str, object] = json.loads(r.out)
    data.pop("generated_at")
    return data


def cut_the_source(pg_url: str) -> None:
    """End every other session on the source database, as a server restart would."""
    query(
        pg_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )


@pytest.mark.slow
def test_a_failed_copy_leaves_the_target_as_it_was(big_pg: str, tmp_path: Path) -> None:
    # A new target: the file the copy created is gone again.
    new = tmp_path / "new.db"
    copy = start_copy(big_pg, new)
    wait_until_under_way(copy, new, 4_000_000)
    cut_the_source(big_pg)
    _, err = copy.communicate(timeout=120)
    assert copy.returncode == 1
    line = err.decode()
    assert line.count("\n") == 1 and line.startswith("error: copy to "), line
    assert "nothing was written, the target is as it was" in line
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")) == []

    # An existing target, replaced: it still holds exactly what it held.
    old = tmp_path / "old.db"
    added = run_tracker(
        "--db", str(old), "evidence", "add", "tourist-tours", "--url", "https://example.org/t",
        "--title", "Kept", "--date", "2026-03-02",
    )  # fmt: skip
    assert added.code == 0, added.err
    before = export(str(old))
    copy = start_copy(big_pg, old, "--replace")
    wait_until_under_way(copy, old, 4_000_000)
    cut_the_source(big_pg)
    _, err = copy.communicate(timeout=120)
    assert copy.returncode == 1, err
    assert export(str(old)) == before
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
