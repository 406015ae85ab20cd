"""Writing test rows straight into a database through the store's own connection.

Tests that need a particular world (a week of history, a source failing since Tuesday) insert the
rows they need; missing columns take the schema's defaults, so a test names only what it is about.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracker.store import Conn

_JSON_DICTS = {"rules", "queries"}


def _table(name: str) -> Any:
    from sqlmodel import SQLModel

    from tracker.store import schema  # noqa: F401  (registers the tables)

    return SQLModel.metadata.tables[name]


def _value(conn: Conn, column: Any, value: Any) -> Any:
    import sqlalchemy as sa

    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return conn.time(value)
    if isinstance(column.type, sa.Date):
        return conn.day(value if not isinstance(value, datetime) else value.date())
    if isinstance(column.type, sa.JSON):
        return conn.json(value)
    if isinstance(column.type, sa.Boolean):
        return bool(value)
    return value


def values_for(conn: Conn, table: str, values: dict[str, Any]) -> dict[str, Any]:
    t = _table(table)
    unknown = set(values) - set(t.columns.keys())
    if unknown:
        raise KeyError(f"{table} has no column(s) {sorted(unknown)}")
    row: dict[str, Any] = {}
    for column in t.columns:
        if column.name in values:
            row[column.name] = _value(conn, column, values[column.name])
        elif column.primary_key and column.name == "id":
            continue
        elif column.default is not None and hasattr(column.default, "arg"):
            row[column.name] = _value(conn, column, column.default.arg)
        elif not column.nullable and column.name in _JSON_DICTS:
            row[column.name] = conn.json({})
        elif not column.nullable and type(column.type).__name__ == "JSON":
            row[column.name] = conn.json([])
    return row


def insert(conn: Conn, table: str, **values: Any) -> int:
    """Insert one row; its id (0 for tables keyed otherwise)."""
    row = values_for(conn, table, values)
    sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"
    if "id" in _table(table).columns:
        return conn.insert(sql, row)
    conn.run(sql, row)
    return 0


def update(conn: Conn, table: str, where: dict[str, Any], **values: Any) -> int:
    """Update rows matching `where` (column = value); how many changed."""
    t = _table(table)
    sets = {k: _value(conn, t.columns[k], v) for k, v in values.items()}
    keys = {f"w_{k}": _value(conn, t.columns[k], v) for k, v in where.items()}
    sql = (
        f"UPDATE {table} SET {', '.join(f'{k} = :{k}' for k in sets)}"
        f" WHERE {' AND '.join(f'{k} = :w_{k}' for k in where)}"
    )
    return conn.run(sql, {**sets, **keys})
