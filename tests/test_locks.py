"""One refresh at a time, for real.

- The lock file sits beside the database's real path: refreshes through `real/c.db` and through
  `alias/c.db` (a symlinked directory) exclude each other.
- The lock file is never followed through a symlink, never truncated by a process that merely
  waits for it, and a refresh whose lock file was removed under it stops writing.
- PostgreSQL: a server restart in the middle of a refresh ends the session that held the
  advisory lock; the refresh notices before its next write and stops with one line, while the
  refresh started after the restart runs alone.
- PostgreSQL: two reviewers confirming different evidence of one commitment at once do not fork
  its history.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tracker import register
from tracker.settings import Settings
from tracker.store import writes
from tracker.store.locks import PG_LOCK_KEY

from .conftest import query
from .faulty_server import FaultyServer, reply, run_tracker, serving, slow, start_tracker

ITEMS = 20


def feed(k: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Tabriz Baku flight, feed {k}, story {i}</title>"
        f"<link>https://example.org/l{k}/{i}</link><description>Baku flight.</description>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{k}</title>{items}</channel></rss>'


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyServer]:
    with serving() as s:
        for k in range(2):
            s.route(f"/l{k}", slow(3.0, reply(200, feed(k), "application/rss+xml")))
        yield s


@pytest.fixture
def sources(server: FaultyServer, tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(
        "".join(
            f'[[source]]\nname = "l{k}"\nkind = "rss"\nurl = "{server.url(f"/l{k}")}"\n'
            'language = "en"\n'
            for k in range(2)
        ),
        encoding="utf-8",
    )
    return path


def refresh(db: str, sources: Path, wait: str) -> subprocess.Popen[bytes]:
    return start_tracker(
        "--db",
        db,
        "refresh",
        "--sources",
        str(sources),
        env={"TRACKER_LOCK_WAIT": wait, "TRACKER_HTTP_MAX_RETRIES": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), err.decode()


def wait_for_lock_holder(lock: Path, pid: int) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = lock.read_text() if lock.exists() else ""
        if text.startswith(f"pid {pid} "):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{lock} never named pid {pid}")


def test_a_symlinked_path_shares_the_lock(sources: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert run_tracker("--db", str(real / "c.db"), "status").code == 0
    first = refresh(str(real / "c.db"), sources, "0")
    wait_for_lock_holder(real / "c.db.refresh.lock", first.pid)
    second = refresh(str(tmp_path / "alias" / "c.db"), sources, "0.5")
    code, out, err = finish(second)
    assert code == 1 and out == ""
    assert re.fullmatch(
        rf"error: another refresh is running \(pid {first.pid} since [0-9: -]+\); "
        r"waited 0\.5 s, stepping aside\n",
        err,
    ), err
    assert finish(first)[0] == 0
    assert not (tmp_path / "alias" / "c.db.refresh.lock").is_symlink()
    assert sorted(p.name for p in real.iterdir() if "lock" in p.name) == ["c.db.refresh.lock"]


def test_the_lock_file_is_not_followed_nor_truncated_by_a_waiter(
    sources: Path, tmp_path: Path
) -> None:
    db = tmp_path / "c.db"
    assert run_tracker("--db", str(db), "status").code == 0
    lock = tmp_path / "c.db.refresh.lock"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock.symlink_to(victim)
    r = run_tracker("--db", str(db), "refresh", "--sources", str(sources))
    assert r.code == 1
    assert (
        r.err == f"error: lock file {lock} is a symbolic link; refusing to follow it (remove it)\n"
    )
    assert victim.read_text() == "precious\n"
    lock.unlink()

    holder = refresh(str(db), sources, "0")
    line = wait_for_lock_holder(lock, holder.pid)
    waiter = refresh(str(db), sources, "0.3")
    code, _, err = finish(waiter)
    assert code == 1 and f"(pid {holder.pid} since" in err
    assert lock.read_text() == line  # the waiter left the holder's line alone
    assert finish(holder)[0] == 0
    assert lock.read_text() == ""  # released


def test_a_refresh_whose_lock_file_was_removed_stops_writing(sources: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    assert run_tracker("--db", str(db), "status").code == 0
    lock = tmp_path / "c.db.refresh.lock"
    first = refresh(str(db), sources, "0")
    wait_for_lock_holder(lock, first.pid)
    lock.unlink()  # someone "cleans up"; a second refresh could now take a new lock file
    code, out, err = finish(first)
    assert code == 1 and out == ""
    assert err == (
        f"error: the refresh lock file {lock} was removed or replaced while this refresh held "
        "it; stopped writing (another refresh may be running)\n"
    )
    assert query(str(db), "SELECT COUNT(*) FROM evidence WHERE source LIKE 'l_'") == [(0,)]


# ---------------------------------------------------------------- PostgreSQL


ROOT = Path(__file__).resolve().parent.parent


def _pg_ctl() -> str | None:
    return shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None
    )


def restart_postgres(where: str) -> None:
    """Restart the cluster in `where` (made by .ci/pg-start), as an operator would."""
    found = _pg_ctl()
    assert found is not None
    command = [found, "-D", f"{where}/data", "-l", f"{where}/log", "-w", "-t", "60", "-m", "fast"]
    if os.getuid() == 0:
        command = ["runuser", "-u", "trackerpg", "--", *command]
    done = subprocess.run(
        [*command, "restart"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the server inherits it: a pipe would never close
        stderr=subprocess.DEVNULL,
        cwd=where,
        timeout=90,
    )
    assert done.returncode == 0


@pytest.fixture
def restartable_pg() -> Iterator[tuple[str, str]]:
    """A PostgreSQL cluster of this test's own (URL, folder), started by .ci/pg-start: restarting
    the suite's shared server would cut the connections of tests running beside it (-n 2)."""
    from .conftest import PG_URL

    if not PG_URL:
        pytest.skip("TRACKER_TEST_PG_URL is not set (no PostgreSQL server for this run)")
    if _pg_ctl() is None:
        pytest.skip("needs pg_ctl to start and restart a cluster of its own")
    # Under /tmp itself: as root the cluster runs as another user, who can't enter pytest's
    # private temporary folders.
    where = tempfile.mkdtemp(prefix="tracker-pg-restart.", dir="/tmp")
    try:
        started = subprocess.run(
            [str(ROOT / ".ci" / "pg-start"), where],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        found = re.search(r"TRACKER_TEST_PG_URL=(\S+)", started.stdout)
        assert found is not None, started.stdout + started.stderr
        yield found.group(1), where
    finally:
        subprocess.run([str(ROOT / ".ci" / "pg-stop"), where], timeout=120, check=False)


@pytest.mark.slow
def test_a_postgresql_restart_mid_refresh_stops_the_refresh_that_lost_its_lock(
    restartable_pg: tuple[str, str], sources: Path
) -> None:
    pg_url, where = restartable_pg
    assert run_tracker("--db", pg_url, "status").code == 0
    first = refresh(pg_url, sources, "0")  # its feeds answer after 3 s
    deadline = time.monotonic() + 20
    while not query(
        pg_url,
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND granted",
        {"k": PG_LOCK_KEY},
    ):
        assert time.monotonic() < deadline and first.poll() is None, "it never took the lock"
        time.sleep(0.05)
    restart_postgres(where)  # while it waits for its feeds, holding the lock
    second = refresh(pg_url, sources, "30")  # takes the lock the restart released
    code, out, err = finish(first)
    assert code == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith("error: lost the refresh lock on "), err
    assert "stopped writing" in err
    code, out, err = finish(second)
    assert code == 0, err
    assert "40 new evidence" in out
    assert query(pg_url, "SELECT COUNT(*) FROM fetch_run") == [(1,)]
    assert query(
        pg_url,
        "SELECT COUNT(*), COUNT(DISTINCT canonical_url) FROM evidence WHERE source LIKE 'l_'",
    ) == [(2 * ITEMS, 2 * ITEMS)]


def test_two_reviewers_at_once_do_not_fork_a_commitments_history(pg_url: str) -> None:
    db = register.open_store(Settings.from_env().with_db(pg_url))
    today, now = date(2026, 11, 26), datetime(2026, 11, 26, 12)
    ((cid,),) = query(pg_url, "SELECT id FROM commitment WHERE slug = 'tourist-tours'")
    ids = []
    for n in (1, 2):
        url = f"https://example.az/tours/{n}"
        query(
            pg_url,
            "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key,"
            " published_at, source, language, stance, review, matched_terms, score, created_at,"
            " cancels, revision, date_precision, reasons) VALUES (:c, :u, :u, 'Tours', '', '',"
            " '2026-11-20 10:00:00', 'trend-en', 'en', 'progress', 'pending', '[]', 1.0,"
            " '2026-11-20 10:00:00', FALSE, 0, 'day', '[]')",
            {"c": cid, "u": url},
        )
        ((ev,),) = query(pg_url, "SELECT id FROM evidence WHERE url = :u", {"u": url})
        ids.append(ev)
    ((milestones,),) = query(
        pg_url, "SELECT COUNT(*) FROM milestone WHERE commitment_id = :c", {"c": cid}
    )
    first_done = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with db.write() as conn:
                writes.review(
                    conn, ids[0], "confirmed", milestone=1, by="ana", today=today, now=now
                )
                first_done.set()
                time.sleep(1.5)  # still open while the second reviewer acts
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_done.wait(10)
    with db.write() as conn:
        writes.review(
            conn, ids[1], "confirmed", milestone=milestones, by="bahram", today=today, now=now
        )
    thread.join(10)
    db.dispose()
    assert not errors
    history = query(
        pg_url,
        "SELECT old_status, new_status FROM status_history WHERE commitment_id = :c ORDER BY id",
        {"c": cid},
    )
    # One line of history: each row starts where the previous one ended.
    for (_, before), (after, _) in itertools.pairwise(history):
        assert after == before, history
    assert history[-1][1] == "delivered", history
