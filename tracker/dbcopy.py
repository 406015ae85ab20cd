"""`tracker db copy`: move a whole database between SQLite and PostgreSQL, verified by counts."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import SQLModel

from tracker import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from tracker.db import Database, open_database
from tracker.errors import UsageError

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
)
_BATCH = 5000


@dataclass(frozen=True)
class CopyResult:
    counts: dict[str, int]


def _counts(conn: sa.Connection) -> dict[str, int]:
    return {
        name: int(
            conn.execute(
                sa.select(sa.func.count()).select_from(SQLModel.metadata.tables[name])
            ).scalar_one()
        )
        for name in TABLES
    }


def copy_database(source: Database, target_url: str, *, replace: bool = False) -> CopyResult:
    """Copy every row of `source` into the database at `target_url` in one transaction."""
    from tracker.db import resolve_url

    if resolve_url(target_url) == source.url:
        raise UsageError("--to names the database being copied")
    target = open_database(target_url)  # creates an empty schema when the target is new
    try:
        with source.read() as src_session, target.write() as dst_session:
            src = src_session.connection()
            dst = dst_session.connection()
            existing = _counts(dst)
            if any(existing.values()) and not replace:
                filled = ", ".join(f"{n} {t}" for t, n in existing.items() if n)
                raise UsageError(
                    f"target {target.display} is not empty ({filled}); pass --replace to overwrite it"
                )
            for name in reversed(TABLES):
                dst.execute(SQLModel.metadata.tables[name].delete())
            for name in TABLES:
                table = SQLModel.metadata.tables[name]
                result = src.execution_options(yield_per=_BATCH).execute(sa.select(table))
                for chunk in result.partitions(_BATCH):
                    dst.execute(table.insert(), [dict(row._mapping) for row in chunk])
            if dst.dialect.name == "postgresql":
                # Explicit ids leave PostgreSQL's sequences behind; move them past the copied rows.
                for name in TABLES:
                    table = SQLModel.metadata.tables[name]
                    if "id" in table.c:
                        dst.execute(
                            sa.text(
                                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                            )
                        )
            expected, copied = _counts(src), _counts(dst)
            if expected != copied:
                raise RuntimeError(
                    f"copy verification failed: expected {expected}, copied {copied}"
                )
        return CopyResult(copied)
    finally:
        target.dispose()
