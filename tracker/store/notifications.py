"""Every read and write of the notification table: the bookkeeping behind "each mail once".

A mail (a weekly report, or one alert mail covering several events) is *claimed* before it is
sent: one row per key, written in one transaction that first takes the same lock on both backends
(SQLite's write lock through BEGIN IMMEDIATE, a transaction-scoped advisory lock on PostgreSQL),
so that of two processes trying at once exactly one gets the claim. Then:

    (no row) ──claim──▶ claimed ──accepted by the server──▶ sent
                           │  └──definitely not accepted──▶ failed ──claim again──▶ claimed …
                           └── the process died, the server's answer never came, or recording
                               "sent" failed: stays `claimed` — the one unknown window

A `claimed` row is never sent again by itself: nobody can tell whether the server took the message.
Only an explicit resend takes it over (with the same Message-ID, so the copy is recognisable).

`sent_at` is the time of the row's last change of state (the column predates the states and cannot
be empty); it means "sent at" only for `state = 'sent'`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tracker.store.conn import Conn, as_datetime, chunks, first, from_json, in_list

__all__ = [
    "CLAIMED",
    "FAILED",
    "SENT",
    "Notice",
    "claim",
    "find",
    "find_many",
    "lock",
    "mark_failed",
    "mark_sent",
    "note",
    "pending",
    "record_sent",
    "sent_at",
    "sent_keys",
]

CLAIMED, SENT, FAILED = "claimed", "sent", "failed"
NOTIFY_LOCK_KEY = 0x7472_6B6E  # "tracker notifications" among PostgreSQL advisory locks
_COLUMNS = (
    "key, state, sent_at, claimed_at, claimed_by, message_id, attempts, last_error, payload, detail"
)


@dataclass(frozen=True)
class Notice:
    key: str
    state: str
    changed_at: datetime  # the `sent_at` column: when the state last changed
    claimed_at: datetime | None
    claimed_by: str | None
    message_id: str | None
    attempts: int
    last_error: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


def _notice(r: tuple[Any, ...]) -> Notice:
    changed = as_datetime(r[2])
    assert changed is not None
    payload = from_json(r[8]) if r[8] is not None else {}
    return Notice(
        key=r[0],
        state=r[1] or SENT,
        changed_at=changed,
        claimed_at=as_datetime(r[3]),
        claimed_by=r[4],
        message_id=r[5],
        attempts=int(r[6] or 0),
        last_error=r[7],
        payload=payload if isinstance(payload, dict) else {},
        detail=r[9] or "",
    )


def lock(conn: Conn) -> None:
    """Claims one at a time. SQLite: the write transaction already is (BEGIN IMMEDIATE)."""
    if conn.dialect == "postgresql":
        conn.rows("SELECT pg_advisory_xact_lock(:k)", {"k": NOTIFY_LOCK_KEY})


# ---------------------------------------------------------------- reads


def find(conn: Conn, key: str) -> Notice | None:
    row = first(conn, f"SELECT {_COLUMNS} FROM notification WHERE key = :k", {"k": key})
    return _notice(row) if row else None


def find_many(conn: Conn, keys: Sequence[str]) -> dict[str, Notice]:
    found: dict[str, Notice] = {}
    for chunk in chunks(sorted(set(keys))):
        marks, params = in_list("k", chunk)
        for row in conn.rows(f"SELECT {_COLUMNS} FROM notification WHERE key IN {marks}", params):
            notice = _notice(row)
            found[notice.key] = notice
    return found


def pending(
    conn: Conn, prefixes: Sequence[str], *, since: datetime, states: Collection[str] = (FAILED,)
) -> list[Notice]:
    """Rows in `states` whose key starts with one of `prefixes`, claimed since `since`, oldest
    first: the sends to retry (failed) or to report (claimed)."""
    result: list[Notice] = []
    marks, params = in_list("s", sorted(states))
    for prefix in prefixes:
        escaped = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        rows = conn.rows(
            f"SELECT {_COLUMNS} FROM notification WHERE key LIKE :p ESCAPE '!'"
            f" AND state IN {marks} AND claimed_at >= :since ORDER BY claimed_at, id",
            {**params, "p": escaped + "%", "since": conn.time(since)},
        )
        result.extend(_notice(r) for r in rows)
    return result


def sent_at(conn: Conn, key: str) -> datetime | None:
    """When `key` was sent, or None when it was not (or its fate is unknown)."""
    row = first(
        conn,
        "SELECT sent_at FROM notification WHERE key = :k AND state = :s",
        {"k": key, "s": SENT},
    )
    return as_datetime(row[0]) if row else None


def sent_keys(conn: Conn, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that were sent."""
    return {k for k, n in find_many(conn, keys).items() if n.state == SENT}


# ---------------------------------------------------------------- writes


def claim(
    conn: Conn,
    keys: Sequence[str],
    *,
    by: str,
    now: datetime,
    message_id: str | None = None,
    detail: str = "",
    payloads: dict[str, dict[str, Any]] | None = None,
    may_take: Callable[[Notice], bool] = lambda notice: notice.state == FAILED,
) -> tuple[list[str], dict[str, Notice]]:
    """Claim `keys` for one send: (the keys now ours, the others as they stand).

    A key without a row is claimed; a key whose row `may_take` accepts (by default: a failed
    send) is claimed again; any other row is left alone and returned. Call inside a write
    transaction: the claim is atomic with everything checked here."""
    lock(conn)
    existing = find_many(conn, keys)
    won: list[str] = []
    lost: dict[str, Notice] = {}
    for key in keys:
        payload = conn.json((payloads or {}).get(key, {}))
        row = existing.get(key)
        values = {
            "k": key,
            "at": conn.time(now),
            "by": by,
            "mid": message_id,
            "d": detail,
            "p": payload,
            "claimed": CLAIMED,
        }
        if row is None:
            conn.run(
                "INSERT INTO notification (key, sent_at, detail, state, claimed_at, claimed_by,"
                " message_id, attempts, last_error, payload)"
                " VALUES (:k, :at, :d, :claimed, :at, :by, :mid, 1, NULL, :p)",
                values,
            )
            won.append(key)
        elif may_take(row):
            # Compare-and-set on what was read: belt and braces on top of the lock.
            changed = conn.run(
                "UPDATE notification SET state = :claimed, sent_at = :at, claimed_at = :at,"
                " claimed_by = :by, message_id = :mid, detail = :d, payload = :p,"
                " attempts = attempts + 1"
                " WHERE key = :k AND state = :old AND attempts = :n",
                {**values, "old": row.state, "n": row.attempts},
            )
            if changed == 1:
                won.append(key)
            else:  # pragma: no cover - only without the lock
                lost[key] = row
        else:
            lost[key] = row
    return won, lost


def mark_sent(
    conn: Conn,
    keys: Sequence[str],
    *,
    by: str,
    now: datetime,
    detail: str | None = None,
    mid: str | None = None,
) -> int:
    """The server accepted the mail claimed by `by`; how many rows say so now."""
    done = 0
    for key in keys:
        done += conn.run(
            "UPDATE notification SET state = :sent, sent_at = :at, last_error = NULL,"
            " detail = COALESCE(:d, detail), message_id = COALESCE(:mid, message_id)"
            " WHERE key = :k AND claimed_by = :by",
            {"sent": SENT, "at": conn.time(now), "d": detail, "mid": mid, "k": key, "by": by},
        )
    return done


def mark_failed(conn: Conn, keys: Sequence[str], *, by: str, now: datetime, error: str) -> int:
    """The server certainly did not take the mail: the keys may be claimed and sent again."""
    done = 0
    for key in keys:
        done += conn.run(
            "UPDATE notification SET state = :failed, sent_at = :at, last_error = :e"
            " WHERE key = :k AND claimed_by = :by AND state = :claimed",
            {
                "failed": FAILED,
                "at": conn.time(now),
                "e": error[:500],
                "k": key,
                "by": by,
                "claimed": CLAIMED,
            },
        )
    return done


def note(conn: Conn, keys: Sequence[str], *, error: str | None = None, **payload: Any) -> None:
    """Keep a claim as it is, adding what is known (why its fate is unknown; that it was
    reported) to its last error and payload."""
    for key, row in find_many(conn, keys).items():
        merged = {**row.payload, **payload}
        conn.run(
            "UPDATE notification SET last_error = COALESCE(:e, last_error), payload = :p"
            " WHERE key = :k",
            {"e": error[:500] if error else None, "p": conn.json(merged), "k": key},
        )


def record_sent(conn: Conn, keys: Sequence[str], detail: str, now: datetime) -> None:
    """Record keys as sent without a claim (an import, or a test setting up a world); an existing
    row is updated."""
    for key in keys:
        params = {"k": key, "at": conn.time(now), "d": detail, "sent": SENT}
        if not conn.run(
            "UPDATE notification SET sent_at = :at, detail = :d, state = :sent WHERE key = :k",
            params,
        ):
            conn.run(
                "INSERT INTO notification (key, sent_at, detail, state, claimed_at, attempts,"
                " payload) VALUES (:k, :at, :d, :sent, :at, 1, '{}')",
                params,
            )
