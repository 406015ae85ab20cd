"""What can be known about a database without SQLAlchemy: where it is, whether a SQLite file is
ours and at which schema version. Kept free of heavy imports so that read-only commands such as
`tracker status` can answer from SQLite directly, quickly.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracker.errors import EnvironmentProblem, UsageError

APP_ID = "tracker"
SCHEMA_VERSION = 2
DEFAULT_DB = "commitments.db"
SQLITE_HEADER = b"SQLite format 3\x00"


def busy_timeout_ms() -> int:
    raw = os.environ.get("TRACKER_BUSY_TIMEOUT_MS", "15000")
    try:
        return max(0, int(raw))
    except ValueError as exc:
        raise UsageError(f"TRACKER_BUSY_TIMEOUT_MS must be an integer, got {raw!r}") from exc


def resolve_url(db: str | None) -> str:
    """`--db`, else TRACKER_DB, else ./commitments.db. A plain path becomes a SQLite URL."""
    value = db or os.environ.get("TRACKER_DB") or DEFAULT_DB
    if "://" in value:
        return value
    return "sqlite:///" + str(Path(value).expanduser().absolute())


def plain_sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (no driver, no query options), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix) :]
    return Path(path) if path and path != ":memory:" else None


# Read the way SQLAlchemy reads a URL: the password runs to the last '@' of the authority, so it
# may itself hold '/', '#' or '?', which urlsplit would take for the end of the host.
_URL_PASSWORD = re.compile(r"^(?P<head>[\w+.-]+://[^:/@]*):[^@]*@")


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for every message a person may see."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", url, count=1)


def inspect_sqlite_file(path: Path) -> int | None:
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
    if not _size_matches_header(path):
        raise EnvironmentProblem(f"{path} is truncated or damaged; left untouched")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=busy_timeout_ms() / 1000)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables:
                return None
            if "tracker_meta" not in tables:
                raise EnvironmentProblem(
                    f"{path} is a SQLite database but not a tracker database; left untouched"
                )
            meta = dict(conn.execute("SELECT key, value FROM tracker_meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise EnvironmentProblem(
                f"database {path} is locked by another process; try again shortly"
            ) from exc
        raise EnvironmentProblem(
            f"{path} is not a usable database ({exc}); left untouched"
        ) from exc
    return version_from_meta(meta, str(path))


def _size_matches_header(path: Path) -> bool:
    """The header's page size × page count must fit in the file (a cheap truncation check)."""
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100:
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return False
    pages = int.from_bytes(header[28:32], "big")
    # The in-header size is only valid when the change counter matches "version-valid-for".
    if header[24:28] != header[92:96] or pages == 0:
        return path.stat().st_size % page_size == 0
    return path.stat().st_size >= pages * page_size


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


@contextmanager
def fast_reader(db: str | None) -> Iterator[sqlite3.Connection | None]:
    """A plain read-only-by-pragma sqlite3 connection when the database is an existing SQLite file
    at the current schema; None when the full path (create, seed, upgrade, other backends) is needed.
    A file that is not ours is refused here exactly as by the full path."""
    path = plain_sqlite_path(resolve_url(db))
    if path is None or not path.exists() or inspect_sqlite_file(path) != SCHEMA_VERSION:
        yield None
        return
    conn = sqlite3.connect(path, timeout=busy_timeout_ms() / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms()}")
        conn.execute("PRAGMA query_only = ON")
        yield conn
    finally:
        conn.close()
