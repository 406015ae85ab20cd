"""The persistence boundary: the only package that speaks SQL or imports SQLAlchemy and SQLModel.

- `database`: opening (SQLite through `sqlite3`, other URLs through SQLAlchemy), creating and
  seeding in one transaction, upgrading (`migrations`), refusing what is not ours (`sqlfile`);
- `conn`: one connection interface for both backends and the one time adapter;
- `reads` / `writes`: every query, plain SQL, records out (`records`), never ORM rows;
- `locks`: one refresh at a time; `copy`: `tracker db copy`; `schema`: the SQLModel tables.

Everything here is imported lazily where it is heavy (SQLAlchemy, SQLModel), so reading an
existing SQLite database loads neither.
"""

from __future__ import annotations

from tracker.store import reads, writes
from tracker.store.conn import Conn
from tracker.store.database import (
    Database,
    Seeder,
    describe_error,
    is_database_error,
    is_environment_error,
    open_database,
)
from tracker.store.records import (
    AgreementRecord,
    Card,
    Change,
    CommitmentRecord,
    EvidenceRecord,
    HealthRecord,
    HistoryRecord,
    MatchSet,
    MentionRecord,
    NewEvidence,
    ReviewEventRecord,
    ReviewOutcome,
    Row,
)
from tracker.store.sqlfile import SCHEMA_VERSION, has_secret, redact, resolve_url, sqlite_path

__all__ = [
    "SCHEMA_VERSION",
    "AgreementRecord",
    "Card",
    "Change",
    "CommitmentRecord",
    "Conn",
    "Database",
    "EvidenceRecord",
    "HealthRecord",
    "HistoryRecord",
    "MatchSet",
    "MentionRecord",
    "NewEvidence",
    "ReviewEventRecord",
    "ReviewOutcome",
    "Row",
    "Seeder",
    "describe_error",
    "has_secret",
    "is_database_error",
    "is_environment_error",
    "open_database",
    "reads",
    "redact",
    "resolve_url",
    "sqlite_path",
    "writes",
]
