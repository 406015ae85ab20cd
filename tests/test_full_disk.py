"""A full disk, for real: a small tmpfs mounted for the test (root only; skipped otherwise).

- Writing the weekly report to a full disk is an environment problem: one line, exit 1.
- A refresh that fills the disk holding the database leaves a database that, once the disk has
  room again, both SQLite and `tracker` open (it used to be refused as "truncated or damaged").
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from .faulty_server import FaultyServer, reply, run_tracker, serving


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the file system, leaving about `leave` bytes."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize - leave
    with (disk / "ballast").open("wb") as handle:
        handle.write(b"\0" * max(0, free))
        handle.flush()
    while True:  # the last blocks
        try:
            with (disk / "ballast").open("ab") as handle:
                handle.write(b"\0" * 4096)
        except OSError:
            break
        if leave:
            break


def test_a_full_disk_while_writing_the_report_exits_1(db_path: Path, small_disk: Path) -> None:
    assert run_tracker("--db", str(db_path), "status").code == 0
    fill(small_disk)
    r = run_tracker("--db", str(db_path), "report", "weekly", "--out", str(small_disk))
    assert r.err.startswith(f"error: cannot write {small_disk}/") and r.err.count("\n") == 1
    assert "No space left on device" in r.err
    assert r.code == 1


def big_feed(k: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Tabriz Baku flight, feed {k}, story {i} {'x' * 300}</title>"
        f"<link>https://example.org/f{k}/{i}</link><description>{'Baku flight. ' * 200}"
        f"</description><pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(300)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{k}</title>{items}</channel></rss>'


@pytest.fixture(scope="module")
def feeds() -> Iterator[FaultyServer]:
    with serving() as s:
        for k in range(6):
            s.route(f"/f{k}", reply(200, big_feed(k), "application/rss+xml"))
        yield s


def test_a_refresh_that_fills_the_disk_leaves_a_database_that_opens_once_there_is_room(
    small_disk: Path, feeds: FaultyServer, tmp_path: Path
) -> None:
    db = small_disk / "c.db"
    assert run_tracker("--db", str(db), "status").code == 0
    sources = tmp_path / "sources.toml"
    sources.write_text(
        "".join(
            f'[[source]]\nname = "f{k}"\nkind = "rss"\nurl = "{feeds.url(f"/f{k}")}"\n'
            'language = "en"\n'
            for k in range(6)
        ),
        encoding="utf-8",
    )
    fill(small_disk, leave=300_000)
    r = run_tracker("--db", str(db), "refresh", "--sources", str(sources))
    assert r.code == 1, (r.out, r.err)
    assert "full" in r.out + r.err or "No space" in r.out + r.err, (r.out, r.err)
    (small_disk / "ballast").unlink()  # the disk has room again, and is grown
    grown = subprocess.run(
        ["mount", "-o", "remount,size=64m", str(small_disk)], capture_output=True, text=True
    )
    assert grown.returncode == 0, grown.stderr
    status = run_tracker("--db", str(db), "status")
    assert status.code == 0, status.err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = run_tracker("--db", str(db), "refresh", "--sources", str(sources))
    assert again.code == 0, again.err
