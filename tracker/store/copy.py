"""`tracker db copy`: move a whole database between SQLite and PostgreSQL, verified by counts.

- The source is read in one read-only transaction that sees one snapshot (on PostgreSQL
  REPEATABLE READ, checked on the connection itself): a review or an insert during the copy is
  either wholly in the copy or not at all, and the counts compared at the end are the snapshot's.
- The target is written in one transaction, verified, then committed: a failure anywhere rolls it
  back, and a target the copy itself created (a new file, or the schema in an empty PostgreSQL
  database) is removed again. A failed copy leaves the target as it was.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.errors import EnvironmentProblem, TrackerError, UsageError
from tracker.store.conn import Conn, as_date, as_datetime, from_json
from tracker.store.database import Database, is_database_error, open_database
from tracker.store.sqlfile import redact, resolve_url, sqlite_path

__all__ = ["TABLES", "CopyResult", "copy_database"]

# Parents before children, so foreign keys hold at every step.
TABLES = (
    "agreement",
    "commitment",
    "milestone",
    "evidence",
    "mention",
    "review_event",
    "status_history",
    "source_health",
    "fetch_run",
    "notification",
    "matcher_model",
)
_BATCH = 5000


@dataclass(frozen=True)
class CopyResult:
    counts: dict[str, int]


def _counts(conn: Conn) -> dict[str, int]:
    return {name: int(conn.rows(f"SELECT COUNT(*) FROM {name}")[0][0]) for name in TABLES}


def _converters(conn: Conn, table: Any) -> dict[str, Any]:
    """Per column: how a value read from any backend is written to `conn`'s."""
    import sqlalchemy as sa

    result: dict[str, Any] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, sa.DateTime):
            result[column.name] = lambda v: conn.time(as_datetime(v))
        elif isinstance(kind, sa.Date):
            result[column.name] = lambda v: None if v is None else conn.day(as_date(v))
        elif isinstance(kind, sa.JSON):
            result[column.name] = lambda v: None if v is None else conn.json(from_json(v))
        elif isinstance(kind, sa.Boolean):
            result[column.name] = lambda v: None if v is None else bool(v)
        else:
            result[column.name] = lambda v: v
    return result


def copy_database(
    source: Database, target_url: str, *, replace: bool = False, busy_timeout_ms: int = 15000
) -> CopyResult:
    """Copy every row of `source` into the database at `target_url` in one transaction."""
    from tracker.store import schema  # noqa: F401  (registers the tables)

    if resolve_url(target_url) == source.url:
        raise UsageError("--to names the database being copied")
    path = sqlite_path(resolve_url(target_url))
    if path is not None and source.path is not None and path.resolve() == source.path.resolve():
        raise UsageError("--to names the database being copied")
    had_file = path is not None and path.exists()
    target = open_database(target_url, busy_timeout_ms=busy_timeout_ms)
    try:
        return _copy(source, target, replace)
    except TrackerError:
        _undo_creation(target, path, had_file)
        raise
    except Exception as exc:
        _undo_creation(target, path, had_file)
        if is_database_error(exc):
            lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            detail = redact(lines[0]) if lines else type(exc).__name__
            raise EnvironmentProblem(
                f"copy to {target.display} failed ({detail}); nothing was written, the target "
                "is as it was"
            ) from exc
        raise
    finally:
        target.dispose()


def _copy(source: Database, target: Database, replace: bool) -> CopyResult:
    from sqlmodel import SQLModel

    # One snapshot read, one write transaction: verified before it commits.
    with source.read(snapshot=True) as src, target.write() as dst:
        _check_snapshot(src)
        existing = _counts(dst)
        if any(existing.values()) and not replace:
            filled = ", ".join(f"{n} {t}" for t, n in existing.items() if n)
            raise UsageError(
                f"target {target.display} is not empty ({filled}); pass --replace to overwrite it"
            )
        for name in reversed(TABLES):
            dst.run(f"DELETE FROM {name}")
        for name in TABLES:
            table = SQLModel.metadata.tables[name]
            columns = [c.name for c in table.columns]
            convert = _converters(dst, table)
            insert = (
                f"INSERT INTO {name} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            )
            # Keyset pages on the primary key: each page is one index range, however far in.
            key = "id" if "id" in columns else columns[0]
            at = columns.index(key)
            select = f"SELECT {', '.join(columns)} FROM {name}"
            batch = src.rows(f"{select} ORDER BY {key} LIMIT {_BATCH}")
            while batch:
                dst.many(
                    insert,
                    [
                        {c: convert[c](v) for c, v in zip(columns, row, strict=True)}
                        for row in batch
                    ],
                )
                batch = src.rows(
                    f"{select} WHERE {key} > :last ORDER BY {key} LIMIT {_BATCH}",
                    {"last": batch[-1][at]},
                )
        if dst.dialect == "postgresql":
            # Explicit ids leave PostgreSQL's sequences behind; move them past the copied rows.
            for name in TABLES:
                if "id" in SQLModel.metadata.tables[name].c:
                    dst.rows(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                    )
        expected, copied = _counts(src), _counts(dst)
        if expected != copied:
            differ = ", ".join(
                f"{t} {expected[t]} → {copied[t]}" for t in TABLES if expected[t] != copied[t]
            )
            raise EnvironmentProblem(
                f"copy to {target.display} not verified ({differ}); nothing was written"
            )
    return CopyResult(copied)


def _check_snapshot(src: Conn) -> None:
    """The source transaction must see one snapshot (SQLite's read transactions always do)."""
    if src.dialect != "postgresql":
        return
    isolation, read_only = src.rows(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')"
    )[0]
    if isolation not in ("repeatable read", "serializable") or read_only != "on":
        raise EnvironmentProblem(
            f"cannot read the source in one snapshot (isolation {isolation}, read-only "
            f"{read_only}); nothing was copied"
        )


def _undo_creation(target: Database, path: Path | None, had_file: bool) -> None:
    """Remove what opening the target created, so that a failed copy leaves it as it was."""
    if not target.created:
        return
    target.dispose()
    if path is not None:
        for suffix in ("-wal", "-shm"):
            with suppress(OSError):
                Path(f"{path}{suffix}").unlink()
        with suppress(OSError):
            if had_file:
                path.write_bytes(b"")  # it was an empty file
            else:
                path.unlink()
        return
    with suppress(Exception), target.write() as conn:
        for name in (*reversed(TABLES), "tracker_meta"):
            conn.run(f"DROP TABLE IF EXISTS {name} CASCADE")
