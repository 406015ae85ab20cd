"""One refresh at a time per database: a file lock for SQLite, an advisory lock for PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracker.errors import EnvironmentProblem
from tracker.store.database import Database

__all__ = ["Busy", "refresh_lock"]

# An arbitrary constant naming "the tracker refresh" among PostgreSQL advisory locks.
PG_LOCK_KEY = 0x7472_6B72


class Busy(EnvironmentProblem):
    """Another refresh holds the lock."""


@contextmanager
def refresh_lock(db: Database, wait: float) -> Iterator[None]:
    """Hold the database's refresh lock, waiting at most `wait` seconds for another holder."""
    if db.path is not None:
        with _file_lock(db.path.with_name(db.path.name + ".refresh.lock"), wait):
            yield
    elif db.dialect == "postgresql":
        with _pg_lock(db, wait):
            yield
    else:
        yield


@contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[None]:
    import fcntl

    try:
        handle = path.open("a+")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create lock file {path}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise Busy(
                        f"another refresh is running ({holder}); waited {wait:g} s, stepping aside"
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


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
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
