"""What the matcher learns from: reviewed evidence in, the learned model's weights out and back.

Plain SQL over a `Conn` (SQLite and PostgreSQL alike), records out. The model itself is trained
and used elsewhere (`tracker.learn`, `tracker.matching`); this module only stores it, in the
`matcher_model` table, so that every watcher of a team shares one model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from tracker.store.conn import Conn, as_datetime, first, from_json

__all__ = [
    "MODEL_NAME",
    "LabelledExample",
    "StoredModel",
    "labelled_examples",
    "load_model",
    "save_model",
    "stored_model",
]


MODEL_NAME = "matcher"  # the model a refresh loads and retraining replaces
# Training reads at most this many of the newest decisions (plus every curated and hand-added
# item): enough to learn a team's habits, and it keeps a retraining under a second or two even on
# a database that has seen a million reviews.
MAX_EXAMPLES = 10_000


class LabelledExample(msgspec.Struct, frozen=True):
    """One (item, commitment) pair a person decided on: confirmed (label 1) or rejected (0)."""

    title: str
    summary: str
    language: str
    slug: str
    label: int
    milestone: int | None = None
    stance: str | None = None
    side: str | None = None  # the publishing side (IR, AZ, other), when known


class StoredModel(msgspec.Struct, frozen=True):
    name: str
    trained_at: datetime
    examples: int
    weights: dict[str, Any]


# Confirmed and rejected evidence that a person decided on (a review event), added by hand, or
# curated in the catalog. Rows a trusted structured source confirmed by itself (an observed
# flight) are left out: nobody judged them, and their "titles" are not news.
_COLUMNS = (
    "SELECT e.title, e.summary, e.language, c.slug, e.review, e.milestone, e.stance, e.country,"
    " e.id FROM evidence e JOIN commitment c ON c.id = e.commitment_id"
)
_CURATED_SQL = (
    _COLUMNS + " WHERE e.review IN ('confirmed', 'rejected') AND e.source IN ('curated', 'manual')"
)
# The newest reviewed rows, through the review log's index (newest decisions first).
_REVIEWED_SQL = (
    _COLUMNS + " JOIN (SELECT DISTINCT evidence_id FROM ("
    "  SELECT evidence_id FROM review_event ORDER BY id DESC LIMIT :limit) newest) r"
    " ON r.evidence_id = e.id"
    " WHERE e.review IN ('confirmed', 'rejected') AND e.source NOT IN ('curated', 'manual')"
)


def labelled_examples(conn: Conn, limit: int = MAX_EXAMPLES) -> list[LabelledExample]:
    """The reviewed (item, commitment) pairs, oldest first: every curated or hand-added item, and
    the items of the newest `limit` review decisions."""
    rows = conn.rows(_CURATED_SQL) + conn.rows(_REVIEWED_SQL, {"limit": limit})
    rows.sort(key=lambda r: r[8])
    return [
        LabelledExample(
            title=title or "",
            summary=summary or "",
            language=language or "",
            slug=slug,
            label=1 if review == "confirmed" else 0,
            milestone=milestone,
            stance=stance,
            side=country,
        )
        for title, summary, language, slug, review, milestone, stance, country, _ in rows
    ]


def load_model(conn: Conn, name: str) -> dict[str, Any] | None:
    """The stored weights of model `name`, or None when none was trained yet."""
    row = first(conn, "SELECT weights FROM matcher_model WHERE name = :name", {"name": name})
    if row is None:
        return None
    weights = from_json(row[0])
    return weights if isinstance(weights, dict) and weights else None


def stored_model(conn: Conn, name: str) -> StoredModel | None:
    """The whole stored row of model `name` (when it was trained, on how many examples)."""
    row = first(
        conn,
        "SELECT name, trained_at, examples, weights FROM matcher_model WHERE name = :name",
        {"name": name},
    )
    if row is None:
        return None
    trained_at = as_datetime(row[1])
    assert trained_at is not None
    return StoredModel(
        name=row[0], trained_at=trained_at, examples=int(row[2] or 0), weights=from_json(row[3])
    )


def save_model(
    conn: Conn, name: str, weights: dict[str, Any], examples: int, trained_at: datetime
) -> None:
    """Store (or replace) model `name`."""
    # ON CONFLICT … DO UPDATE is understood by SQLite (3.24+) and PostgreSQL alike.
    conn.run(
        "INSERT INTO matcher_model (name, trained_at, examples, weights)"
        " VALUES (:name, :trained_at, :examples, :weights)"
        " ON CONFLICT (name) DO UPDATE SET trained_at = excluded.trained_at,"
        " examples = excluded.examples, weights = excluded.weights",
        {
            "name": name,
            "trained_at": conn.time(trained_at),
            "examples": examples,
            "weights": conn.json(weights),
        },
    )
