"""What can be known about a database before opening it: where it is, whether a SQLite file is
ours and at which schema version, and how to show its URL without a password.

Kept free of heavy imports: read-only commands on an existing SQLite file never load SQLAlchemy.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from tracker.errors import EnvironmentProblem
from tracker.settings import DEFAULT_BUSY_TIMEOUT_MS

__all__ = [
    "APP_ID",
    "DEFAULT_DB",
    "SCHEMA_VERSION",
    "inspect_sqlite_file",
    "redact",
    "resolve_url",
    "sqlite_path",
    "version_from_meta",
]

APP_ID = "tracker"
SCHEMA_VERSION = 3
DEFAULT_DB = "commitments.db"
SQLITE_HEADER = b"SQLite format 3\x00"
# Query parameters that carry a secret in a database URL (libpq's and common drivers' names).
_SECRET_PARAMS = re.compile(r"pass|secret|token|sslpassword|key", re.I)
_PLACEHOLDER = "TRACKERREDACTEDPASSWORD"


def resolve_url(db: str | None) -> str:
    """`--db` / TRACKER_DB (as given by the caller), else ./commitments.db; a plain path becomes
    a SQLite URL."""
    value = db or DEFAULT_DB
    if "://" in value:
        return value
    return "sqlite:///" + str(Path(value).expanduser().absolute())


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///PATH` URL, else None (server databases, in-memory)."""
    if not url.startswith("sqlite"):
        return None
    if url.startswith("sqlite:///") and "?" not in url:
        path = url[len("sqlite:///") :]
    else:
        from sqlalchemy.engine import make_url

        path = make_url(url).database or ""
    if not path or path == ":memory:":
        return None
    return Path(path)


def redact(url: str) -> str:
    """The URL with any password (in the user information or a query parameter) shown as ***.

    Parsed the way SQLAlchemy parses it (the password runs to the last '@', so it may hold '/',
    '#' or '?'; a user name may hold '@'), never with a pattern of our own.
    """
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        # Unparseable: hide everything between the scheme and the last '@'.
        head, _, rest = url.partition("://")
        return f"{head}://***@{rest.rpartition('@')[2]}" if "@" in rest else url
    changed = False
    if parsed.password is not None:
        parsed = parsed.set(password=_PLACEHOLDER)
        changed = True
    query = dict(parsed.query)
    for key in query:
        if _SECRET_PARAMS.search(key):
            query[key] = _PLACEHOLDER
            changed = True
    if not changed:
        return url
    rendered = parsed.set(query=query).render_as_string(hide_password=False)
    return rendered.replace(_PLACEHOLDER, "***")


def has_secret(url: str) -> bool:
    return redact(url) != url


def writable(path: Path) -> bool:
    """Whether this process may change the database: the file and its folder (SQLite writes its
    journal, write-ahead log and shared memory beside it)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection, also to a file in a folder we may not write.

    SQLite reads a WAL database through its `-shm` file, which it must be able to create. In a
    read-only folder without one, and with no write-ahead log waiting either (nothing in it to
    miss), the file is opened as immutable: SQLite then reads it as it is, without the -shm.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as exc:
        wal = Path(str(path) + "-wal")
        if "unable to open" not in str(exc) or writable(path) or wal.exists():
            raise
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=timeout)


def inspect_sqlite_file(path: Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> int | None:
    """Schema version of an existing file, None for a new/empty one. Opens it read-only."""
    if not path.exists():
        if not path.parent.exists():
            raise EnvironmentProblem(f"cannot create database {path}: directory does not exist")
        if not os.access(path.parent, os.W_OK):
            raise EnvironmentProblem(f"cannot create database {path}: directory is not writable")
        return None
    if path.is_dir():
        raise EnvironmentProblem(f"database path {path} is a directory")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read database {path}: {exc.strerror}") from exc
    if header == b"":
        return None
    if header != SQLITE_HEADER:
        raise EnvironmentProblem(f"{path} is not a SQLite database; left untouched")
    timeout = busy_timeout_ms / 1000
    try:
        try:
            meta = _read_meta(connect_read_only(path, timeout), path)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            # A writer was killed mid-transaction: its journal must be rolled back (or its log
            # recovered) before anyone can read, which a read-only connection may not do. SQLite
            # does it on an ordinary open, as it would for any program; nothing else is written.
            meta = _read_meta(sqlite3.connect(path, timeout=timeout), path, query_only=True)
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise EnvironmentProblem(
                f"database {path} is locked by another process; try again shortly"
            ) from exc
        raise EnvironmentProblem(
            f"{path} is not a usable database ({exc}); left untouched"
        ) from exc
    return None if meta is None else version_from_meta(meta, str(path))


def _read_meta(
    conn: sqlite3.Connection, path: Path, *, query_only: bool = False
) -> dict[str, str] | None:
    """The tracker_meta rows of an existing file (None when it has no tables), closing `conn`."""
    try:
        if query_only:
            conn.execute("PRAGMA query_only = ON")
        if not _looks_whole(path):
            _quick_check(conn, path)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "tracker_meta" not in tables:
            raise EnvironmentProblem(
                f"{path} is a SQLite database but not a tracker database; left untouched"
            )
        return dict(conn.execute("SELECT key, value FROM tracker_meta").fetchall())
    finally:
        conn.close()


def _looks_whole(path: Path) -> bool:
    """Whether the file is as long as its header says: a cheap hint, never a verdict.

    When it is not, SQLite is asked to check the file (`_quick_check`): during a checkpoint SQLite
    writes the header before the file has grown, and the pages past the end are still in the
    write-ahead log, so a sound database can look short for a moment (or for good, after a kill at
    that moment). Checking every time would cost a full read of a large database on every command.
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
        size = path.stat().st_size
    except OSError:
        return False
    if len(header) < 100:
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return False
    pages = int.from_bytes(header[28:32], "big")
    # The in-header size is only valid when the change counter matches "version-valid-for".
    if header[24:28] != header[92:96] or pages == 0:
        return size % page_size == 0
    return size >= pages * page_size


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """SQLite's own verdict on the file and its write-ahead log (read-only: nothing is changed)."""
    problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise EnvironmentProblem(
            f"{path} is damaged (SQLite's check: {'; '.join(problems)[:200]}); left untouched"
        )


def version_from_meta(meta: dict[str, str], where: str) -> int:
    if meta.get("app") != APP_ID:
        raise EnvironmentProblem(f"{where} is not a tracker database; left untouched")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError as exc:
        raise EnvironmentProblem(
            f"{where} has an unreadable schema version; left untouched"
        ) from exc
    if version > SCHEMA_VERSION:
        raise EnvironmentProblem(
            f"{where} was written by a newer tracker (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade tracker"
        )
    return version
