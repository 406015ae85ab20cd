"""Creating the schema and upgrading older databases, through the store's own connection.

The DDL is compiled from the SQLModel tables (`schema`) for the connection's backend and executed
inside the caller's transaction, so creating a database together with its seed, or an upgrade
together with its version bump, is all or nothing.

An upgrade is a function from version N-1 to N. Each step checks what is already there, so a
database that a newer step partly reached (by hand, or by an interrupted older tool) upgrades too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.store.conn import Conn
from tracker.store.sqlfile import SCHEMA_VERSION

__all__ = ["MIGRATIONS", "create_schema", "upgrade"]


def _dialect(conn: Conn) -> Any:
    if conn.dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def _metadata() -> Any:
    from sqlmodel import SQLModel

    from tracker.store import schema  # noqa: F401  (registers the tables)

    return SQLModel.metadata


def _ddl(conn: Conn, element: Any) -> None:
    conn.run(str(element.compile(dialect=_dialect(conn))).strip())


def create_tables(conn: Conn, names: list[str] | None = None) -> None:
    """Create the named tables (all when None) and their indexes, if they do not exist yet."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    metadata = _metadata()
    for table in metadata.sorted_tables:
        if names is not None and table.name not in names:
            continue
        _ddl(conn, CreateTable(table, if_not_exists=True))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            _ddl(conn, CreateIndex(index, if_not_exists=True))


def create_schema(conn: Conn) -> None:
    create_tables(conn)


def columns_of(conn: Conn, table: str) -> set[str]:
    if conn.dialect == "sqlite":
        return {row[1] for row in conn.rows(f"PRAGMA table_info({table})")}
    return {
        row[0]
        for row in conn.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t",
            {"t": table},
        )
    }


def add_column(conn: Conn, table: str, name: str, ddl: str) -> None:
    """`ALTER TABLE … ADD COLUMN name ddl` unless the column exists."""
    if name not in columns_of(conn, table):
        conn.run(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")


def _upgrade_to_2(conn: Conn) -> None:
    # Version 2 added source health, fetch runs, syndication mentions, sent notifications, the
    # review log, cancellation evidence and optimistic-locking revisions.
    create_tables(conn, ["mention", "source_health", "fetch_run", "notification", "review_event"])
    add_column(conn, "evidence", "cancels", "BOOLEAN NOT NULL DEFAULT FALSE")
    add_column(conn, "evidence", "revision", "INTEGER NOT NULL DEFAULT 0")
    add_column(conn, "commitment", "revision", "INTEGER NOT NULL DEFAULT 0")
    create_tables(conn, ["evidence"])  # its newer indexes


def _upgrade_to_3(conn: Conn) -> None:
    # Version 3: citations and date precision for curated evidence, the matcher's suggestions
    # and reasons, skipped-item counts, API quota, claimed (exactly-once) notifications and the
    # learned re-ranking model.
    add_column(conn, "evidence", "cite", "TEXT")
    add_column(conn, "evidence", "date_precision", "VARCHAR NOT NULL DEFAULT 'day'")
    add_column(conn, "evidence", "suggested_milestone", "INTEGER")
    add_column(conn, "evidence", "suggested_stance", "VARCHAR")
    add_column(conn, "evidence", "reasons", "JSON NOT NULL DEFAULT '[]'")
    add_column(conn, "source_health", "skipped", "JSON NOT NULL DEFAULT '{}'")
    add_column(conn, "source_health", "rate_limit_remaining", "INTEGER")
    add_column(conn, "fetch_run", "items_skipped", "JSON NOT NULL DEFAULT '{}'")
    add_column(conn, "notification", "state", "VARCHAR NOT NULL DEFAULT 'sent'")
    add_column(conn, "notification", "claimed_at", "TIMESTAMP")
    add_column(conn, "notification", "claimed_by", "VARCHAR")
    add_column(conn, "notification", "message_id", "VARCHAR")
    add_column(conn, "notification", "attempts", "INTEGER NOT NULL DEFAULT 0")
    add_column(conn, "notification", "last_error", "VARCHAR")
    add_column(conn, "notification", "payload", "JSON NOT NULL DEFAULT '{}'")
    create_tables(conn, ["matcher_model", "evidence"])  # the new table, evidence's new indexes
    conn.run("DROP INDEX IF EXISTS ix_evidence_review_published")  # a prefix of the new one


MIGRATIONS: dict[int, Callable[[Conn], None]] = {2: _upgrade_to_2, 3: _upgrade_to_3}


def upgrade(conn: Conn, version: int) -> None:
    """From `version` to SCHEMA_VERSION, inside the caller's transaction."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[target](conn)
    conn.run(
        "UPDATE tracker_meta SET value = :v WHERE key = 'schema_version'",
        {"v": str(SCHEMA_VERSION)},
    )
