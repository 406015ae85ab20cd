"""Opening databases: creation and seeding, refusing foreign or broken files, upgrading old ones."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tracker import register
from tracker.errors import EnvironmentProblem
from tracker.settings import Settings
from tracker.store import SCHEMA_VERSION, Conn, Database, open_database, redact, resolve_url
from tracker.store import migrations as migrations_module

from .conftest import DATA

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


def open_store(db: str) -> Database:
    return register.open_store(Settings.from_env().with_db(db))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_use_creates_and_seeds(db_path: Path) -> None:
    database = open_store(str(db_path))
    assert database.created
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        meta = dict(conn.execute("SELECT key, value FROM tracker_meta"))
        slugs = {r[0] for r in conn.execute("SELECT slug FROM commitment")}
        history = conn.execute("SELECT COUNT(*) FROM status_history").fetchone()[0]
        curated = conn.execute(
            "SELECT COUNT(*) FROM evidence WHERE source = 'curated' AND review = 'confirmed'"
        ).fetchone()[0]
    assert meta == {"app": "tracker", "schema_version": str(SCHEMA_VERSION)}
    assert slugs == SLUGS
    assert history == len(SLUGS)  # every commitment's first status is recorded
    assert curated > 0
    database.dispose()
    again = open_store(str(db_path))
    assert not again.created


def test_connections_enforce_foreign_keys_and_busy_timeout(db_path: Path) -> None:
    database = open_store(str(db_path))
    with database.read() as conn:
        assert conn.rows("PRAGMA foreign_keys")[0][0] == 1
        assert conn.rows("PRAGMA busy_timeout")[0][0] >= 1000
    with pytest.raises(sqlite3.IntegrityError), database.write() as conn:
        conn.run("INSERT INTO milestone (commitment_id, position, title) VALUES (9999, 1, 'x')")


def test_failed_seed_leaves_no_half_database(db_path: Path) -> None:
    def boom(conn: Conn) -> None:
        conn.run(
            "INSERT INTO agreement (slug, title, outlet, language, text, summary) VALUES ('x', 'x', '', '', '', '')"
        )
        raise RuntimeError("crash in the middle of seeding")

    with pytest.raises(RuntimeError):
        open_database(str(db_path), seed=boom)
    with sqlite3.connect(db_path) as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='table'").fetchone()[0] == 0
        )
    assert open_store(str(db_path)).created  # the next use starts cleanly


def test_text_file_is_refused_and_untouched(db_path: Path) -> None:
    db_path.write_text("these are my notes, not a database\n")
    before = digest(db_path)
    with pytest.raises(EnvironmentProblem, match="is not a SQLite database; left untouched"):
        open_store(str(db_path))
    assert digest(db_path) == before
    assert not Path(str(db_path) + "-wal").exists()


def test_foreign_sqlite_database_is_refused_and_untouched(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
        conn.execute("INSERT INTO recipes VALUES ('ash reshteh')")
    before = digest(db_path)
    with pytest.raises(EnvironmentProblem, match="not a tracker database; left untouched"):
        open_store(str(db_path))
    assert digest(db_path) == before


def test_truncated_database_is_reported(db_path: Path) -> None:
    open_store(str(db_path)).dispose()
    data = db_path.read_bytes()
    db_path.write_bytes(data[:100] + b"\x00" * 50)
    before = digest(db_path)
    with pytest.raises(EnvironmentProblem, match="left untouched"):
        open_store(str(db_path))
    assert digest(db_path) == before


def test_newer_schema_is_refused(db_path: Path) -> None:
    open_store(str(db_path)).dispose()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE tracker_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(EnvironmentProblem, match="newer tracker"):
        open_store(str(db_path))


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="directory does not exist"):
        open_store(str(tmp_path / "nope" / "x.db"))


def test_empty_file_is_treated_as_new(db_path: Path) -> None:
    db_path.write_bytes(b"")
    assert open_store(str(db_path)).created


def test_schema_1_database_is_upgraded_in_place_without_losing_data(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.executescript((DATA / "schema_v1.sql").read_text(encoding="utf-8"))
    database = open_store(str(db_path))
    assert database.upgraded_from == 1
    assert not database.created
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT value FROM tracker_meta WHERE key='schema_version'").fetchone()[
            0
        ] == str(SCHEMA_VERSION)
        rows = conn.execute(
            "SELECT id, title, review, note, cancels, revision FROM evidence ORDER BY id"
        ).fetchall()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        history = conn.execute("SELECT new_status, reason FROM status_history").fetchall()
    assert rows == [
        (1, "First flight lands", "confirmed", "kept through the upgrade", 0, 0),
        (2, "Pending story", "pending", None, 0, 0),
    ]
    assert {"source_health", "fetch_run", "mention", "notification"} <= tables
    assert {"ix_evidence_published", "ix_evidence_created"} <= indexes
    assert history == [("in_progress", "milestone 2/3 reached")]
    # and the upgraded database works for the status engine and new writes
    from datetime import date, datetime

    from tracker.store import reads, writes

    with database.write() as conn:
        result = reads.rows(conn, date(2025, 8, 2))
        assert [r.verdict.status for r in result] == ["in_progress"]
        assert result[0].digest.pending == 1
        writes.review(
            conn,
            2,
            "rejected",
            reason="not about flights",
            by="tester",
            today=date(2025, 8, 2),
            now=datetime(2025, 8, 2, 12),
        )


def test_upgrade_failure_rolls_back(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.executescript((DATA / "schema_v1.sql").read_text(encoding="utf-8"))

    def broken(conn: Conn) -> None:
        conn.run("ALTER TABLE evidence ADD COLUMN cancels BOOLEAN NOT NULL DEFAULT FALSE")
        raise RuntimeError("power cut")

    monkeypatch.setitem(migrations_module.MIGRATIONS, 2, broken)
    with pytest.raises(RuntimeError):
        open_store(str(db_path))
    with sqlite3.connect(db_path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(evidence)")}
        version = conn.execute(
            "SELECT value FROM tracker_meta WHERE key='schema_version'"
        ).fetchone()[0]
    assert "cancels" not in columns
    assert version == "1"


def test_resolve_url_and_redaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url(None) == "sqlite:///" + str(tmp_path / "commitments.db")
    monkeypatch.setenv("TRACKER_DB", "other.db")
    assert resolve_url(Settings.from_env().db).endswith("/other.db")
    assert resolve_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert (
        redact("postgresql+psycopg://u:s3cret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert "s3cret" not in redact("postgresql://u:s3cret@h/db")
