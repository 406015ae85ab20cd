"""Serialising status updates, so that two people acting at once never fork a history.

A status update reads the evidence and the last history row, computes, and appends. On SQLite the
write transaction (BEGIN IMMEDIATE) already serialises every writer. On PostgreSQL two reviewers
confirming *different* evidence of one commitment touch different rows, so neither waits for the
other: each computes from its own view and both append from the same old status
("announced → in_progress" and "announced → delivered"). `status_lock` makes the second wait for
the first to commit; under READ COMMITTED its next statements then see the first one's evidence and
history row, so it appends after it.

The lock is one transaction-scoped advisory lock for every status update rather than a row lock
per commitment: `sync_statuses` recomputes every commitment, so row locks would be taken in
different orders by a review (its commitment first) and a refresh (all, in id order) and could
deadlock. Status updates are short, so one at a time costs nothing noticeable.
"""

from __future__ import annotations

from tracker.store.conn import Conn

__all__ = ["STATUS_LOCK_KEY", "status_lock"]

STATUS_LOCK_KEY = 0x7472_6B73  # "the tracker status update" among PostgreSQL advisory locks


def status_lock(conn: Conn) -> None:
    """Wait until no other transaction is updating statuses; held until this one ends."""
    if conn.dialect == "postgresql":
        conn.rows("SELECT pg_advisory_xact_lock(:k)", {"k": STATUS_LOCK_KEY})
