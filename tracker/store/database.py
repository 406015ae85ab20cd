"""The one place that opens databases.

SQLite files are opened with the standard library (WAL, foreign keys, a busy timeout, and our own
BEGIN so that schema creation is transactional too); any other SQLAlchemy URL (PostgreSQL) through
SQLAlchemy. The schema is versioned in `tracker_meta`: a new database is created and seeded in one
transaction, an older one is upgraded in place, and a database that is not ours is refused without
being touched.

Three things a long-running process needs are here too: a per-thread *write guard* (the refresh
lock checks, before every write transaction, that it is still held, and on PostgreSQL the writes
run on the very connection that holds it), a `cancel` event that stops a refresh at its next
write (SIGTERM in the daemon), and the file's identity, so that a database deleted or replaced
under a running daemon is noticed (`replaced`, `abandon`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

import msgspec

from tracker.errors import EnvironmentProblem, UsageError
from tracker.settings import DEFAULT_BUSY_TIMEOUT_MS
from tracker.store.conn import Conn, SaConn, SqliteConn
from tracker.store.sqlfile import (
    APP_ID,
    SCHEMA_VERSION,
    connect_read_only,
    inspect_sqlite_file,
    redact,
    resolve_url,
    sqlite_path,
    version_from_meta,
    writable,
)

__all__ = [
    "Database",
    "Seeder",
    "WriteGuard",
    "describe_error",
    "is_database_error",
    "is_environment_error",
    "open_database",
]

CREATE_LOCK_KEY = 0x7472_6B63  # PostgreSQL advisory lock held while creating the schema

Seeder = Callable[[Conn], None]
FileId = tuple[int, int]  # (st_dev, st_ino)

# Connections of a database file that was replaced under us: never used again and never closed,
# because closing the last one would checkpoint into the old file and delete the write-ahead log
# by name — a name that may by then belong to the new file.
_ABANDONED: list[Any] = []


class WriteGuard(Protocol):
    """Checked at the start of every write transaction of the thread that installed it."""

    connection: Any  # a SQLAlchemy connection to write on (PostgreSQL), or None

    def check(self, conn: Conn) -> None: ...


def _file_id(path: Path) -> FileId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Database(msgspec.Struct):
    url: str
    path: Path | None  # the file, for SQLite
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
    created: bool = False
    upgraded_from: int | None = None
    _engine: Any = None  # SQLAlchemy engine, for server databases
    _local: threading.local = msgspec.field(default_factory=threading.local)
    _opened: list[sqlite3.Connection] = msgspec.field(default_factory=list)
    _opened_lock: threading.Lock = msgspec.field(default_factory=threading.Lock)
    # Set to stop writers that run under a guard (a refresh) at their next transaction.
    cancel: threading.Event = msgspec.field(default_factory=threading.Event)
    identity: FileId | None = None  # the SQLite file's (st_dev, st_ino) when it was opened
    read_only: bool = False  # a file (or folder) this process may read but not write
    # Its -wal and -shm, last seen.
    _sidecars: dict[str, FileId] = msgspec.field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return "sqlite" if self.path is not None else str(self._engine.dialect.name)

    @property
    def display(self) -> str:
        return str(self.path) if self.path is not None else redact(self.url)

    # ------------------------------------------------------------ SQLite connections

    def _sqlite(self, writer: bool) -> sqlite3.Connection:
        """This thread's connection of that role (a daemon runs jobs on two threads)."""
        attr = "writer" if writer else "reader"
        raw: sqlite3.Connection | None = getattr(self._local, attr, None)
        if raw is None and self.read_only:
            assert self.path is not None
            if writer:
                raise EnvironmentProblem(
                    f"database {self.path} is read-only; this command needs to change it"
                )
            raw = connect_read_only(self.path, self.busy_timeout_ms / 1000)
            raw.isolation_level = None
            raw.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            setattr(self._local, attr, raw)
            with self._opened_lock:
                self._opened.append(raw)
        if raw is None:
            assert self.path is not None
            raw = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # we issue BEGIN ourselves: pysqlite's would skip DDL
                check_same_thread=False,
            )
            raw.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            raw.execute("PRAGMA foreign_keys = ON")
            if writer:
                _write_ahead(raw, self.busy_timeout_ms / 1000)
                raw.execute("PRAGMA synchronous = NORMAL")
            else:
                raw.execute("PRAGMA query_only = ON")
            setattr(self._local, attr, raw)
            with self._opened_lock:
                self._opened.append(raw)
        return raw

    @contextmanager
    def _sqlite_transaction(self, writer: bool) -> Iterator[Conn]:
        raw = self._sqlite(writer)
        # A writer takes the lock up front: upgrading a read transaction to a write one fails
        # at once with SQLITE_BUSY in WAL mode, whatever the busy timeout.
        raw.execute("BEGIN IMMEDIATE" if writer else "BEGIN")
        try:
            yield SqliteConn(raw)
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        else:
            raw.execute("COMMIT")

    # ------------------------------------------------------------ the API

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Conn]:
        """A read transaction, never blocked by a refresh. On SQLite every read transaction sees
        one snapshot; on PostgreSQL `snapshot=True` asks for that too (REPEATABLE READ), so a
        long read such as `db copy` cannot mix states from before and after a concurrent write."""
        if self.path is not None:
            with self._sqlite_transaction(writer=False) as conn:
                yield conn
            return
        with self._engine.connect() as raw, raw.begin():
            conn = SaConn(raw)
            if snapshot and conn.dialect == "postgresql":
                conn.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn

    @contextmanager
    def write(self, *, guarded: bool = True) -> Iterator[Conn]:
        """One transaction that commits at the end or rolls back entirely on any error.

        Under a write guard (a refresh holding its lock) the guard is checked first, inside the
        transaction; `guarded=False` is for writes that must happen whatever the guard says (the
        record that a mail went out)."""
        guard: WriteGuard | None = getattr(self._local, "guard", None) if guarded else None
        if self.path is not None:
            with self._sqlite_transaction(writer=True) as conn:
                if guard is not None:
                    guard.check(conn)
                yield conn
            return
        pinned = guard.connection if guard is not None else None
        if pinned is not None:
            with pinned.begin():
                conn = SaConn(pinned)
                assert guard is not None
                guard.check(conn)
                yield conn
            return
        with self._engine.connect() as raw, raw.begin():
            yield SaConn(raw)

    def check_guard(self) -> None:
        """Raise what this thread's write guard raises (LockLost: a refresh's lock is gone), by
        an empty guarded write; nothing without a guard."""
        if getattr(self._local, "guard", None) is not None:
            with self.write():
                pass

    @contextmanager
    def guarded_by(self, guard: WriteGuard) -> Iterator[None]:
        """Check `guard` before every write transaction of this thread while inside."""
        previous = getattr(self._local, "guard", None)
        self._local.guard = guard
        try:
            yield
        finally:
            self._local.guard = previous

    # ------------------------------------------------------------ the file under us

    def remember_files(self) -> None:
        """Note the identity of the write-ahead log and shared-memory files beside the database
        (called before each job of a long-running process, while the file is still ours)."""
        if self.path is None or self.replaced() is not None:
            return
        for suffix in ("-wal", "-shm"):
            found = _file_id(Path(f"{self.path}{suffix}"))
            if found is not None:
                self._sidecars[suffix] = found

    def replaced(self) -> str | None:
        """'deleted' or 'replaced' when the file at the path is no longer the one opened."""
        if self.path is None or self.identity is None:
            return None
        now = _file_id(self.path)
        if now is None:
            return "deleted"
        return None if now == self.identity else "replaced"

    def set_aside(self) -> list[Path]:
        """The file was replaced: rename its old write-ahead log and shared memory, if still
        beside the path, so that SQLite never applies them to the new file (open connections keep
        theirs). Call before the path is opened again. Returns where they went."""
        moved: list[Path] = []
        if self.path is None:
            return moved
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix, known in self._sidecars.items():
            current = Path(f"{self.path}{suffix}")
            if _file_id(current) == known:
                aside = current.with_name(f"{current.name}.replaced-{stamp}")
                with suppress(OSError):
                    current.rename(aside)
                    moved.append(aside)
        self._sidecars = {}
        return moved

    def abandon(self) -> None:
        """Stop using a replaced file for good (once no job runs on it): its connections are
        dropped unclosed (see `_ABANDONED`)."""
        with self._opened_lock:
            _ABANDONED.extend(self._opened)
            self._opened = []
        self._local = threading.local()

    @contextmanager
    def session_connection(self) -> Iterator[Any]:
        """A SQLAlchemy connection on a server database (advisory locks live on one connection)."""
        with self._engine.connect() as raw:
            yield raw

    def dispose(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for raw in opened:
            with suppress(sqlite3.Error):
                raw.close()
        self._local = threading.local()
        if self._engine is not None:
            self._engine.dispose()


def _server_engine(url: str) -> Any:
    try:
        import sqlalchemy as sa

        return sa.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise UsageError(f"cannot use database URL {redact(url)}: {exc}") from exc
    except Exception as exc:  # ArgumentError, NoSuchModuleError, ValueError: a bad URL
        raise UsageError(f"cannot use database URL {redact(url)}: {exc}") from exc


def open_database(
    db: str | None = None,
    *,
    seed: Seeder | None = None,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> Database:
    """Open (creating, seeding or upgrading as needed) the tracker database."""
    url = resolve_url(db)
    path = sqlite_path(url)
    if path is not None:
        version = inspect_sqlite_file(path, busy_timeout_ms)
        read_only = path.exists() and not writable(path)
        if read_only and version is None:
            raise EnvironmentProblem(f"database {path} is read-only and holds no tracker database")
        if read_only and version is not None and version < SCHEMA_VERSION:
            raise EnvironmentProblem(
                f"database {path} is at schema {version} and needs an upgrade to {SCHEMA_VERSION},"
                " but it is read-only; open it once where it can be written"
            )
        database = Database(
            url=url,
            path=path,
            busy_timeout_ms=busy_timeout_ms,
            identity=_file_id(path),
            read_only=read_only,
        )
    else:
        database = Database(url=url, path=None, _engine=_server_engine(url))
        version = None
    try:
        if path is None:
            version = _server_version(database)
        if version is None:
            database.created = _create(database, seed)
            if not database.created:  # another process created it since we looked
                version = (
                    inspect_sqlite_file(path, busy_timeout_ms)
                    if path is not None
                    else _server_version(database)
                )
        if version is not None and version < SCHEMA_VERSION:
            from tracker.store.migrations import upgrade

            with database.write() as conn:
                upgrade(conn, version)
            database.upgraded_from = version
        if path is not None:
            database.identity = _file_id(path)  # the file a first use just created
    except EnvironmentProblem:
        database.dispose()
        raise
    except Exception as exc:
        database.dispose()
        if _is_operational(exc):
            raise EnvironmentProblem(describe_error(exc, database.display)) from exc
        raise
    return database


def is_environment_error(exc: BaseException) -> bool:
    """Locked, read-only, disk full, server gone, refresh lock lost: the environment's problem,
    not the data's."""
    return isinstance(exc, EnvironmentProblem) or _is_operational(exc)


def is_database_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, sa.exc.SQLAlchemyError)


def _is_operational(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return True
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return False
    return isinstance(exc, sa.exc.OperationalError)


def _write_ahead(raw: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode, waiting out other processes within `timeout` seconds.

    Turning a new database's journal into a write-ahead log needs it to itself for a moment, and
    SQLite answers "database is locked" at once, without its busy timeout, when another process
    is turning the same file at that moment (several commands using a new database at once). The
    mode is stored in the file, so this can wait only on a database's first uses."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def describe_error(exc: BaseException, where: str) -> str:
    """A database error from either driver as one line for a person."""
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    if "locked" in text or "busy" in text:
        return f"database {where} is locked by another process; try again shortly"
    if "readonly" in text or "read-only" in text:
        return f"database {where} is read-only"
    if "disk is full" in text or "No space left" in text:
        return f"database {where}: the disk is full"
    return f"database {where}: {redact(text.strip().splitlines()[0] if text.strip() else text)}"


def _server_version(database: Database) -> int | None:
    """For server databases: None when empty, the version when ours, an error otherwise."""
    import sqlalchemy as sa

    url = redact(database.url)
    try:
        with database.session_connection() as raw:
            names = set(sa.inspect(raw).get_table_names())
            if not names:
                return None
            if "tracker_meta" not in names:
                raise EnvironmentProblem(
                    f"{url} holds tables but is not a tracker database; left untouched"
                )
            meta = dict(raw.execute(sa.text("SELECT key, value FROM tracker_meta")).all())
    except sa.exc.OperationalError as exc:
        lines = str(getattr(exc, "orig", exc)).strip().splitlines()
        detail = redact(lines[0]) if lines else type(exc).__name__
        raise EnvironmentProblem(f"cannot connect to {url}: {detail}") from exc
    return version_from_meta({str(k): str(v) for k, v in meta.items()}, url)


def _has_meta(conn: Conn) -> bool:
    if conn.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tracker_meta'"
    else:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_name = 'tracker_meta'"
    return bool(conn.rows(sql))


def _create(database: Database, seed: Seeder | None) -> bool:
    """Schema, meta rows and the seed catalog in one transaction: all or nothing. False when
    another process created the database meanwhile."""
    from tracker.store.migrations import create_schema

    with database.write() as conn:
        # Two first uses at once (two watchers, or the daemon and a person): one creates, the
        # other waits for its lock (SQLite: BEGIN IMMEDIATE) and then finds the schema made.
        if conn.dialect == "postgresql":
            conn.rows("SELECT pg_advisory_xact_lock(:k)", {"k": CREATE_LOCK_KEY})
        if _has_meta(conn):
            return False
        create_schema(conn)
        conn.many(
            "INSERT INTO tracker_meta (key, value) VALUES (:key, :value)",
            [
                {"key": "app", "value": APP_ID},
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            ],
        )
        if seed is not None:
            seed(conn)
    return True
