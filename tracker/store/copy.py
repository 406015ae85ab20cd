"""`tracker db copy`: move a whole database between SQLite and PostgreSQL, verified by counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.errors import UsageError
from tracker.store.conn import Conn, as_date, as_datetime, from_json
from tracker.store.database import Database, open_database
from tracker.store.sqlfile import resolve_url

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
    from sqlmodel import SQLModel

    from tracker.store import schema  # noqa: F401  (registers the tables)

    if resolve_url(target_url) == source.url:
        raise UsageError("--to names the database being copied")
    target = open_database(target_url, busy_timeout_ms=busy_timeout_ms)
    try:
        with source.read(snapshot=True) as src, target.write() as dst:
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
                raise RuntimeError(
                    f"copy verification failed: expected {expected}, copied {copied}"
                )
        return CopyResult(copied)
    finally:
        target.dispose()
