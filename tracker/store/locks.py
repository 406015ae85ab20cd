"""One refresh at a time per database: a file lock for SQLite, an advisory lock for PostgreSQL.

For real, not just at the start:

- SQLite: the lock file sits beside the database's *real* path (symlinks resolved, so `real/c.db`
  and `alias/c.db` share one lock); it is opened without following a symlink and without
  truncating (the holder's line is written once the lock is ours). Before every write of the
  refresh the lock file at that path must still be the one we hold.
- PostgreSQL: the session advisory lock lives on one connection, and every write of the refresh
  runs on that same connection after checking, in the same transaction, that the lock is still
  granted to it. A server restart ends that session and with it the lock; the next write then fails
  with one line instead of carrying on next to another refresh.
- Either way, `Database.cancel` stops the refresh at its next write (a daemon told to stop).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tracker.errors import EnvironmentProblem
from tracker.store.conn import Conn
from tracker.store.database import Database

__all__ = ["Busy", "Interrupted", "LockLost", "lock_path", "refresh_lock"]

# An arbitrary constant naming "the tracker refresh" among PostgreSQL advisory locks.
PG_LOCK_KEY = 0x7472_6B72


class Busy(EnvironmentProblem):
    """Another refresh holds the lock."""


class LockLost(EnvironmentProblem):
    """The refresh lock is no longer ours: writing stopped."""


class Interrupted(EnvironmentProblem):
    """The refresh was asked to stop (`Database.cancel`) and stopped before its next write."""


def lock_path(db_path: Path) -> Path:
    """The lock file of a SQLite database: beside its real path, symlinks resolved."""
    real = db_path.resolve()
    return real.with_name(real.name + ".refresh.lock")


@contextmanager
def refresh_lock(db: Database, wait: float) -> Iterator[None]:
    """Hold the database's refresh lock, waiting at most `wait` seconds for another holder."""
    if db.path is not None:
        with _file_lock(db, lock_path(db.path), wait):
            yield
    elif db.dialect == "postgresql":
        with _pg_lock(db, wait):
            yield
    else:
        yield


def _check_cancel(db: Database) -> None:
    if db.cancel.is_set():
        raise Interrupted("refresh stopped before its next write: asked to stop")


class _FileGuard:
    connection: Any = None

    def __init__(self, db: Database, path: Path, fd: int) -> None:
        self.db, self.path, self.fd = db, path, fd

    def check(self, conn: Conn) -> None:
        _check_cancel(self.db)
        held = os.fstat(self.fd)
        try:
            there = os.stat(self.path, follow_symlinks=False)
        except OSError:
            there = None
        if there is None or (there.st_dev, there.st_ino) != (held.st_dev, held.st_ino):
            raise LockLost(
                f"the refresh lock file {self.path} was removed or replaced while this refresh "
                "held it; stopped writing (another refresh may be running)"
            )


def _holder(fd: int) -> str:
    with suppress(OSError):
        text = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "another process"


@contextmanager
def _file_lock(db: Database, path: Path, wait: float) -> Iterator[None]:
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise EnvironmentProblem(
                f"lock file {path} is a symbolic link; refusing to follow it (remove it)"
            ) from exc
        raise EnvironmentProblem(f"cannot create lock file {path}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(
                        f"another refresh is running ({_holder(fd)}); waited {wait:g} s, "
                        "stepping aside"
                    ) from None
                time.sleep(0.1)
        # The lock is ours: only now is the previous holder's line replaced by ours.
        line = f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, line, 0)
        try:
            with db.guarded_by(_FileGuard(db, path, fd)):
                yield
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _PgGuard:
    def __init__(self, db: Database, connection: Any) -> None:
        self.db, self.connection = db, connection

    def check(self, conn: Conn) -> None:
        _check_cancel(self.db)
        try:
            held = conn.rows(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1",
                {"hi": PG_LOCK_KEY >> 32, "lo": PG_LOCK_KEY & 0xFFFF_FFFF},
            )[0][0]
        except Exception as exc:
            from tracker.store.database import is_environment_error

            if not is_environment_error(exc):
                raise
            raise LockLost(_lost(self.db, exc)) from None
        if not held:
            raise LockLost(_lost(self.db, None))


def _lost(db: Database, exc: BaseException | None) -> str:
    why = "the connection holding it was lost (did the server restart?)"
    if exc is None:
        why = "it is no longer held by this session"
    return (
        f"lost the refresh lock on {db.display}: {why}; stopped writing, the sources stored so "
        "far are complete; run the refresh again"
    )


@contextmanager
def _pg_lock(db: Database, wait: float) -> Iterator[None]:
    import sqlalchemy as sa

    with db.session_connection() as conn:
        deadline = time.monotonic() + wait
        while not conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}
        ).scalar():
            if time.monotonic() >= deadline:
                raise Busy(
                    f"another refresh is running on this database; waited {wait:g} s, stepping aside"
                )
            time.sleep(0.2)
        conn.commit()
        try:
            with db.guarded_by(_PgGuard(db, conn)):
                yield
        finally:
            # A lost session has lost its lock already: nothing to release, nothing to report.
            with suppress(Exception):
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                conn.commit()
