"""`writes.store_sources` stores several sources in one call (a refresh stores the sources that
arrive together in one transaction). It must leave exactly what storing each source in turn
leaves: the same evidence and mention rows, in the same order (the same ids), and the same
account per source of what was new, a mention or skipped. Checked on random batches that mix
every case: URLs already stored, rejected, or already a mention; the same story under another
URL (syndication) inside and outside the window; in-call twins across sources; other outlets'
links (a news cluster)."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracker import register
from tracker.settings import Settings
from tracker.store import NewEvidence, reads, writes
from tracker.store.database import Database

NOW = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)


def fresh(path: Path) -> Database:
    return register.open_store(Settings.from_env().with_db(str(path)))


def batch(rng: random.Random, ids: list[int], sources: int) -> list[list[NewEvidence]]:
    """Random sources drawn from a small pool of URLs and titles, so that they collide."""
    result = []
    for s in range(sources):
        items = []
        for _ in range(rng.randint(0, 6)):
            story = rng.randint(0, 7)
            copy = rng.randint(0, 3)  # the same story under several URLs
            url = f"https://news.example/{story}/{copy}"
            cluster: tuple[tuple[str, str], ...] = ()
            if rng.random() < 0.2:
                cluster = tuple(
                    (f"https://other.example/{story}/{j}", f"Outlet {j}") for j in range(2)
                )
            items.append(
                NewEvidence(
                    commitment_id=rng.choice(ids),
                    url=url,
                    canonical_url=url,
                    title=f"Story {story}",
                    title_key=f"story {story}" if rng.random() < 0.9 else "",
                    published_at=NOW - timedelta(days=rng.choice([0, 1, 2, 5, 9])),
                    source=f"feed-{s}",
                    created_at=NOW,
                    also_reported_by=cluster,
                )
            )
        result.append(items)
    return result


def tables(path: Path) -> tuple[list[Any], list[Any]]:
    with sqlite3.connect(path) as conn:
        evidence = conn.execute(
            "SELECT id, commitment_id, canonical_url, title_key, source, review, published_at"
            " FROM evidence ORDER BY id"
        ).fetchall()
        mentions = conn.execute(
            "SELECT id, evidence_id, canonical_url, source, publisher FROM mention ORDER BY id"
        ).fetchall()
    return evidence, mentions


@pytest.mark.parametrize("seed", range(12))
def test_one_call_stores_what_one_source_at_a_time_stores(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    one, each = fresh(tmp_path / "one.db"), fresh(tmp_path / "each.db")
    with one.read() as conn:
        ids = sorted(reads.match_set(conn).ids.values())[:3]
    # What earlier runs left: some rows, one of them rejected, and their mentions.
    earlier = batch(rng, ids, 3)
    for db in (one, each):
        with db.write() as conn:
            for items in earlier:
                writes.store_found(conn, items)
            conn.run("UPDATE evidence SET review = 'rejected' WHERE id % 3 = 0")
    for _ in range(3):  # three refreshes, each storing a batch of sources
        sources = batch(rng, ids, rng.randint(2, 6))
        with one.write() as conn:
            together = writes.store_sources(conn, sources)
        with each.write() as conn:
            apart = [writes.store_found(conn, items) for items in sources]
        assert together == apart
    assert tables(tmp_path / "one.db") == tables(tmp_path / "each.db")
    evidence, mentions = tables(tmp_path / "one.db")
    assert evidence and mentions  # the random batches did collide


def test_an_empty_call_stores_nothing(tmp_path: Path) -> None:
    db = fresh(tmp_path / "t.db")
    with db.write() as conn:
        assert writes.store_sources(conn, [[], []]) == [writes.Stored(), writes.Stored()]
