"""A sound SQLite database is never refused, whatever moment a writer was killed at.

During a checkpoint SQLite copies pages from the write-ahead log into the database file in page
order, so the header (page 1, with the new page count) is written before the file has grown. A
kill at that moment leaves a file shorter than its header says, with every missing page still in
the log: SQLite opens it and finds it sound, and so must `tracker`. A file that is truly damaged
(no log holds the missing pages) is still refused with one line and left byte for byte as it was.

The kill is timed by watching the header against the file size from this process while a real
`tracker catalog load` (a transaction big enough to trigger a checkpoint) runs in a child.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tracker.errors import EnvironmentProblem
from tracker.store.sqlfile import inspect_sqlite_file

from .faulty_server import run_tracker, start_tracker

AGREEMENTS = 200
TEXT = 20_000  # characters of announcement text each: about 4 MB in one transaction


def big_catalog(path: Path) -> Path:
    parts = ["format = 1\n"]
    for i in range(AGREEMENTS):
        text = f"word{i} " * (TEXT // 6)
        parts.append(
            f'[[agreement]]\nslug = "agreement-{i}"\ntitle = "Agreement {i}"\ntext = "{text}"\n'
            f'[[agreement.commitment]]\nslug = "commitment-{i}"\ntitle = "Commitment {i}"\n'
            'announced_on = 2024-05-14\nmilestones = ["signed", "done"]\n'
            '[[agreement.commitment.rule]]\nname = "r"\n'
            f'[[agreement.commitment.rule.group]]\nen = ["zzq{i}"]\n'
        )
    path.write_text("".join(parts), encoding="utf-8")
    return path


def header_vs_size(path: Path) -> tuple[int, int] | None:
    """(bytes the header claims, bytes the file has), or None while unreadable."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
        size = os.stat(path).st_size
    except OSError:
        return None
    if len(header) < 100 or header[24:28] != header[92:96]:
        return None
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    return int.from_bytes(header[28:32], "big") * page_size, size


def backup(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_cli_check(path: Path) -> str:
    """What the sqlite3 shell says of the file (the Python module when there is no shell)."""
    shell = shutil.which("sqlite3")
    if shell is None:
        with sqlite3.connect(path) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    done = subprocess.run(
        [shell, str(path), "PRAGMA integrity_check;"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("checkpoint")
    r = run_tracker("--db", str(base / "seeded.db"), "status", env={"TRACKER_USER": "tester"})
    assert r.code == 0, r.err
    return backup(base / "seeded.db", base / "template.db")


@pytest.mark.slow
def test_a_kill_in_the_middle_of_a_checkpoint_leaves_a_database_both_sqlite_and_tracker_open(
    template: Path, tmp_path: Path
) -> None:
    catalog = big_catalog(tmp_path / "big.toml")
    db = tmp_path / "killed.db"
    caught: tuple[int, int] | None = None
    for _ in range(8):  # the window is milliseconds long; it is nearly always caught at once
        backup(template, db)
        proc = start_tracker("--db", str(db), "catalog", "load", str(catalog))
        while proc.poll() is None:
            seen = header_vs_size(db)
            if seen is not None and seen[0] > seen[1]:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        after = header_vs_size(db)
        if proc.returncode == -signal.SIGKILL and after is not None and after[0] > after[1]:
            caught = after
            break
    assert caught is not None, "no kill landed inside a checkpoint in 8 tries"
    print(f"killed mid-checkpoint: header says {caught[0]} bytes, the file has {caught[1]}")

    # tracker first: it must not refuse the file (and must not be the one that heals it).
    status = run_tracker("--db", str(db), "status", "--json")
    assert status.code == 0, status.err
    assert status.err == ""
    assert status.out.count('"slug": "commitment-') == AGREEMENTS  # the load had committed
    assert sqlite_cli_check(db) == "ok"
    again = run_tracker("--db", str(db), "status")
    assert again.code == 0, again.err


def torn_checkpoint(template: Path, target: Path) -> Path:
    """A database whose header claims more pages than the file holds, the rest in its log: the
    state a kill during a checkpoint leaves, made deterministically."""
    work = target.with_name("work-" + target.name)
    backup(template, work)
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tracker_meta (key, value) VALUES (?, ?)",
        [(f"filler-{i}", "x" * 900) for i in range(800)],
    )
    conn.execute("COMMIT")
    for suffix in ("", "-wal"):  # copied while the log is still un-checkpointed
        shutil.copyfile(f"{work}{suffix}", f"{target}{suffix}")
    conn.close()
    claimed = header_vs_size(target)
    assert claimed is not None
    page_size = int.from_bytes(target.read_bytes()[16:18], "big")
    with target.open("r+b") as handle:
        handle.seek(28)
        handle.write((claimed[1] // page_size + 300).to_bytes(4, "big"))
    seen = header_vs_size(target)
    assert seen is not None and seen[0] > seen[1]
    return target


def test_a_short_file_whose_pages_are_in_the_log_is_used(template: Path, tmp_path: Path) -> None:
    db = torn_checkpoint(template, tmp_path / "torn.db")
    assert inspect_sqlite_file(db) is not None
    r = run_tracker("--db", str(db), "status")
    assert r.code == 0, r.err
    assert sqlite_cli_check(db) == "ok"


@pytest.mark.parametrize("keep", [100, 4096, 3], ids=["header-only", "first-page", "torn-header"])
def test_a_truly_truncated_file_is_one_line_and_left_byte_identical(
    template: Path, tmp_path: Path, keep: int
) -> None:
    data = (template).read_bytes()
    assert len(data) > 3 * 4096
    db = tmp_path / "cut.db"
    db.write_bytes(data[:keep] if keep > 16 else data[:16] + b"\x00" * 200)
    before = digest(db)
    for args in (["status"], ["refresh", "--only", "irna-en"], ["review", "confirm", "1"]):
        r = run_tracker("--db", str(db), *args)
        assert r.code == 1, (args, r.err)
        assert r.err.count("\n") == 1 and r.err.startswith("error: "), r.err
        assert "left untouched" in r.err and str(db) in r.err, r.err
    assert digest(db) == before
    with pytest.raises(EnvironmentProblem, match="left untouched"):
        inspect_sqlite_file(db)


def test_foreign_files_are_still_refused_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"my notes\n")
    with pytest.raises(EnvironmentProblem, match="is not a SQLite database; left untouched"):
        inspect_sqlite_file(notes)
    recipes = tmp_path / "recipes.db"
    with sqlite3.connect(recipes) as conn:
        conn.execute("CREATE TABLE recipe (name TEXT)")
    before = digest(recipes)
    with pytest.raises(EnvironmentProblem, match="not a tracker database; left untouched"):
        inspect_sqlite_file(recipes)
    assert digest(recipes) == before


def poll_readers(db: Path, busy: subprocess.Popen[bytes]) -> tuple[list[str], int, int]:
    """`tracker status` processes, and in-process file inspections in a tight loop, until `busy`
    ends: every failure seen, and how many of each ran."""
    failures: list[str] = []
    inspected = [0]
    stop = threading.Event()

    def inspect_loop() -> None:
        while not stop.is_set():
            try:
                inspect_sqlite_file(db)
            except EnvironmentProblem as exc:
                failures.append(f"inspect: {exc}")
            inspected[0] += 1

    thread = threading.Thread(target=inspect_loop, daemon=True)
    thread.start()
    polls = 0
    try:
        while busy.poll() is None:
            r = run_tracker("--db", str(db), "status")
            polls += 1
            if r.code != 0 or r.err:
                failures.append(f"status: {r.code} {r.err.strip()}")
    finally:
        stop.set()
        thread.join(10)
    return failures, polls, inspected[0]


@pytest.mark.slow
def test_readers_never_fail_during_a_copy_replace_or_a_big_write(
    template: Path, tmp_path: Path
) -> None:
    source = backup(template, tmp_path / "source.db")
    loaded = run_tracker(
        "--db", str(source), "catalog", "load", str(big_catalog(tmp_path / "big.toml"))
    )
    assert loaded.code == 0, loaded.err
    target = backup(template, tmp_path / "target.db")
    totals = []
    for round_ in range(3):
        copy = start_tracker(
            "--db", str(source), "db", "copy", "--to", str(target), "--replace",
            stderr=subprocess.PIPE,
        )  # fmt: skip
        failures, polls, inspected = poll_readers(target, copy)
        _, err = copy.communicate(timeout=120)
        assert copy.returncode == 0, err
        assert failures == [], failures
        totals.append((polls, inspected))
        # and while the target's own writer loads a big catalog (a checkpoint at its commit)
        if round_ == 0:
            load = start_tracker("--db", str(target), "catalog", "load", str(tmp_path / "big.toml"))
            failures, polls, inspected = poll_readers(target, load)
            assert load.wait(120) == 0
            assert failures == [], failures
            totals.append((polls, inspected))
    print("status polls / inspections per run:", totals)
    assert sum(p for p, _ in totals) >= 4


def test_a_hot_journal_left_by_a_killed_writer_is_rolled_back_not_refused(
    template: Path, tmp_path: Path
) -> None:
    """A writer killed mid-transaction in rollback-journal mode (a first use is, before the file
    turns to WAL) leaves a journal that must be rolled back before anyone can read; a read-only
    connection may not, so the file used to be refused as "not a usable database"."""
    work = tmp_path / "work.db"
    backup(template, work)
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA cache_size = 1")  # spill the changed pages into the file before commit
    conn.execute("BEGIN")
    conn.execute("UPDATE evidence SET note = ?", ("x" * 500,))
    crashed = tmp_path / "crashed.db"
    for suffix in ("", "-journal"):  # the files as a SIGKILL would leave them
        shutil.copyfile(f"{work}{suffix}", f"{crashed}{suffix}")
    conn.execute("ROLLBACK")
    conn.close()
    assert Path(f"{crashed}-journal").stat().st_size > 0
    assert inspect_sqlite_file(crashed) is not None
    r = run_tracker("--db", str(crashed), "status")
    assert r.code == 0, r.err
    assert sqlite_cli_check(crashed) == "ok"
