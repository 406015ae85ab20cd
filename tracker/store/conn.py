"""One way to speak SQL on both backends, and the one time adapter.

Every query in the store is plain SQL with `:name` parameters, run through a `Conn`:

- SQLite goes through the standard library's `sqlite3` (no SQLAlchemy import, so `tracker status`
  and a refresh start fast);
- any other backend (PostgreSQL) goes through a SQLAlchemy connection.

Values cross the boundary in one shape: times are naive UTC `datetime`s, days are `date`s, JSON
columns are Python lists and dicts. `Conn.time`/`Conn.day`/`Conn.json` turn them into what the
backend stores (SQLite keeps SQLAlchemy's text forms, so older databases compare correctly), and
`as_datetime`/`as_date`/`from_json` read any backend's answer back.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Protocol

from tracker.dates import to_naive_utc

__all__ = ["Conn", "SaConn", "SqliteConn", "as_date", "as_datetime", "from_json", "to_naive_utc"]

# How SQLAlchemy writes DateTime to SQLite; text comparison then orders times correctly.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"

Params = Mapping[str, Any]


def as_datetime(value: Any) -> datetime | None:
    """Naive UTC, whether the driver hands back naive or aware values, or text (SQLite)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return to_naive_utc(value)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_optional_date(value: Any) -> date | None:
    return None if value is None else as_date(value)


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class Conn(Protocol):
    """A connection inside one transaction."""

    dialect: str

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Params | None = None) -> int:
        """Execute; the number of rows changed."""
        ...

    def insert(self, sql: str, params: Params) -> int:
        """Execute an INSERT of one row; its new id."""
        ...

    def many(self, sql: str, params: Sequence[Params]) -> None: ...

    def time(self, value: datetime | None) -> Any: ...

    def day(self, value: date | None) -> Any: ...

    def json(self, value: Any) -> Any: ...


def first(conn: Conn, sql: str, params: Params | None = None) -> tuple[Any, ...] | None:
    found = conn.rows(sql, params)
    return found[0] if found else None


def scalar(conn: Conn, sql: str, params: Params | None = None) -> Any:
    row = first(conn, sql, params)
    return row[0] if row else None


def chunks(values: Iterable[Any], size: int = 400) -> list[list[Any]]:
    """Parameter lists short enough for every backend's limit on bound values."""
    items = list(values)
    return [items[i : i + size] for i in range(0, len(items), size)]


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`(:name0, :name1, …)` and its parameters, for `x IN (…)`."""
    keys = [f"{name}{i}" for i in range(len(values))]
    return "(" + ", ".join(f":{k}" for k in keys) + ")", dict(zip(keys, values, strict=True))


class SqliteConn:
    """`sqlite3` with SQLAlchemy's storage formats."""

    dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return self.raw.execute(sql, params or {}).fetchall()

    def run(self, sql: str, params: Params | None = None) -> int:
        return self.raw.execute(sql, params or {}).rowcount

    def insert(self, sql: str, params: Params) -> int:
        cursor = self.raw.execute(sql, params)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def many(self, sql: str, params: Sequence[Params]) -> None:
        if params:
            self.raw.executemany(sql, params)

    def time(self, value: datetime | None) -> Any:
        return None if value is None else to_naive_utc(value).strftime(SQLITE_TIME)

    def day(self, value: date | None) -> Any:
        return None if value is None else value.isoformat()

    def json(self, value: Any) -> Any:
        return json.dumps(value)


@lru_cache(maxsize=512)
def _text(sql: str) -> Any:
    import sqlalchemy as sa

    return sa.text(sql)


class SaConn:
    """A SQLAlchemy connection (PostgreSQL, or any other URL SQLAlchemy knows)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.dialect = str(raw.dialect.name)
        self._keeps_zone = self.dialect == "postgresql"

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        result = self.raw.execute(_text(sql), dict(params or {}))
        return [tuple(r) for r in result] if result.returns_rows else []

    def run(self, sql: str, params: Params | None = None) -> int:
        return int(self.raw.execute(_text(sql), dict(params or {})).rowcount)

    def insert(self, sql: str, params: Params) -> int:
        result = self.raw.execute(_text(sql + " RETURNING id"), dict(params))
        return int(result.scalar_one())

    def many(self, sql: str, params: Sequence[Params]) -> None:
        if params:
            self.raw.execute(_text(sql), [dict(p) for p in params])

    def time(self, value: datetime | None) -> Any:
        return None if value is None else to_naive_utc(value)

    def day(self, value: date | None) -> Any:
        return value

    def json(self, value: Any) -> Any:
        return json.dumps(value)
