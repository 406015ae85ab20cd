"""The one place that opens databases.

SQLite gets WAL, foreign keys, a busy timeout and real transactions (pysqlite's own implicit
transactions do not cover DDL, which would let a crash leave a half-created schema). Any other
SQLAlchemy URL (PostgreSQL) is used as given. The schema is versioned in `tracker_meta`; an older
database is upgraded in place, a database that is not ours is refused without being touched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel

from tracker import models
from tracker.errors import EnvironmentProblem, UsageError
from tracker.sqlitefile import (  # noqa: F401  (re-exported: the one place that opens databases)
    APP_ID,
    DEFAULT_DB,
    SCHEMA_VERSION,
    SQLITE_HEADER,
    busy_timeout_ms,
    inspect_sqlite_file,
    redact,
    resolve_url,
    version_from_meta,
)

CREATE_LOCK_KEY = 0x7472_6B63  # PostgreSQL advisory lock held while creating the schema


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:":
        return None
    return Path(path)


@dataclass
class Database:
    url: str
    engine: Engine
    write_engine: Engine
    created: bool = False
    upgraded_from: int | None = None

    @property
    def display(self) -> str:
        path = sqlite_path(self.url)
        return str(path) if path else redact(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; it never takes the write lock, so it runs during a refresh."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits at the end or rolls back entirely on any error."""
        with Session(self.write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    timeout = busy_timeout_ms()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see module docstring
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {timeout}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the lock up front: upgrading a read transaction to a write one fails
        # at once with SQLITE_BUSY in WAL mode, whatever the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _make_engines(url: str) -> tuple[Engine, Engine]:
    try:
        if url.startswith("sqlite"):
            kwargs: dict[str, object] = {"connect_args": {"timeout": busy_timeout_ms() / 1000}}
            read = sa.create_engine(url, **kwargs)
            write = sa.create_engine(url, **kwargs)
            _configure_sqlite(read, immediate=False)
            _configure_sqlite(write, immediate=True)
            return read, write
        engine = sa.create_engine(url, pool_pre_ping=True)
        return engine, engine
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise UsageError(f"cannot use database URL {redact(url)}: {exc}") from exc


Seeder = Callable[[Session], None]


def open_database(db: str | None = None, *, seed: Seeder | None = None) -> Database:
    """Open (creating, seeding or upgrading as needed) the tracker database."""
    url = resolve_url(db)
    path = sqlite_path(url)
    version = inspect_sqlite_file(path) if path is not None else None
    read, write = _make_engines(url)
    database = Database(url=url, engine=read, write_engine=write)
    try:
        if path is None:
            version = _server_version(read, url)
        if version is None:
            database.created = _create(database, seed)
            if not database.created:  # another process created it since we looked
                version = (
                    inspect_sqlite_file(path) if path is not None else _server_version(read, url)
                )
        if version is not None and version < SCHEMA_VERSION:
            _upgrade(database, version)
            database.upgraded_from = version
    except sa.exc.OperationalError as exc:
        database.dispose()
        raise EnvironmentProblem(describe_operational_error(exc, database.display)) from exc
    return database


def describe_operational_error(exc: BaseException, where: str) -> str:
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    if "locked" in text or "busy" in text:
        return f"database {where} is locked by another process; try again shortly"
    if "readonly" in text or "read-only" in text:
        return f"database {where} is read-only"
    return f"database {where}: {redact(text.splitlines()[0])}"


def _server_version(engine: Engine, url: str) -> int | None:
    """For server databases: None when empty, the version when ours, an error otherwise."""
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if not names:
                return None
            if "tracker_meta" not in names:
                raise EnvironmentProblem(
                    f"{redact(url)} holds tables but is not a tracker database; left untouched"
                )
            meta = dict(conn.execute(sa.text("SELECT key, value FROM tracker_meta")).all())
    except sa.exc.OperationalError as exc:
        raise EnvironmentProblem(f"cannot connect to {redact(url)}: {_first_line(exc)}") from exc
    return version_from_meta({str(k): str(v) for k, v in meta.items()}, redact(url))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()
    return redact(text[0]) if text else type(exc).__name__


def _create(database: Database, seed: Seeder | None) -> bool:
    """Schema, meta rows and the seed catalog in one transaction: all or nothing. False when
    another process created the database meanwhile."""
    with database.write() as session:
        conn = session.connection()
        # Two first uses at once (two watchers, or the daemon and a person): one creates, the
        # other waits for its lock (SQLite: BEGIN IMMEDIATE) and then finds the schema made.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CREATE_LOCK_KEY})
        if sa.inspect(conn).has_table("tracker_meta"):
            return False
        SQLModel.metadata.create_all(conn)
        session.add(models.Meta(key="app", value=APP_ID))
        session.add(models.Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        session.flush()
        if seed is not None:
            seed(session)
    return True


# Each step upgrades from version N-1 to N inside the same transaction as the version bump.
def _upgrade_to_2(conn: Connection) -> None:
    # Version 2 added source health, fetch runs, syndication mentions, sent notifications, the
    # review log, cancellation evidence and optimistic-locking revisions.
    new_tables = [
        SQLModel.metadata.tables[name]
        for name in ("mention", "source_health", "fetch_run", "notification", "review_event")
    ]
    SQLModel.metadata.create_all(conn, tables=new_tables)
    columns = {c["name"] for c in sa.inspect(conn).get_columns("evidence")}
    if "cancels" not in columns:
        conn.exec_driver_sql(
            "ALTER TABLE evidence ADD COLUMN cancels BOOLEAN NOT NULL DEFAULT FALSE"
        )
    if "revision" not in columns:
        conn.exec_driver_sql("ALTER TABLE evidence ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    columns = {c["name"] for c in sa.inspect(conn).get_columns("commitment")}
    if "revision" not in columns:
        conn.exec_driver_sql(
            "ALTER TABLE commitment ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"
        )
    for index in SQLModel.metadata.tables["evidence"].indexes:
        index.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _upgrade_to_2}


def _upgrade(database: Database, version: int) -> None:
    with database.write() as session:
        conn = session.connection()
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](conn)
        conn.execute(
            sa.text("UPDATE tracker_meta SET value = :v WHERE key = 'schema_version'"),
            {"v": str(SCHEMA_VERSION)},
        )
