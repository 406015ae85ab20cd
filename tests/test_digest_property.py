"""The digest the status engine reads is computed twice: in Python (`status.digest`, over a list of
evidence) and in SQL (`store.reads.digests`, over millions of rows). For any evidence set, on SQLite
and on PostgreSQL, both must give the same digest and so the same verdict."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.status import CommitmentFacts, EvidenceFact, digest, evaluate
from tracker.store import Conn, Database, open_database, reads

try:
    from .rows import insert
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from rows import insert  # type: ignore[no-redef]

ANNOUNCED = date(2022, 2, 19)
MILESTONES = ["agreed", "built", "opened"]
SLUGS = ("one", "two")

evidence_rows = st.lists(
    st.tuples(
        st.sampled_from(SLUGS),
        st.integers(min_value=0, max_value=1500),  # day after the announcement
        st.integers(min_value=0, max_value=3),  # hour: several rows on one day
        st.sampled_from(["progress", "setback", "neutral"]),
        st.sampled_from(["pending", "confirmed", "rejected"]),
        st.one_of(st.none(), st.integers(min_value=1, max_value=4)),  # 4: out of range
        st.booleans(),
    ),
    max_size=25,
)


def _seed(conn: Conn) -> None:
    aid = insert(conn, "agreement", slug="a", title="A")
    for slug in SLUGS:
        cid = insert(
            conn, "commitment", slug=slug, agreement_id=aid, title=slug, announced_on=ANNOUNCED
        )
        for i, title in enumerate(MILESTONES, start=1):
            insert(conn, "milestone", commitment_id=cid, position=i, title=title)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("digest") / "d.db")
        yield open_database(url, seed=_seed)
        return
    from .conftest import PG_URL

    if not PG_URL:
        pytest.skip("TRACKER_TEST_PG_URL is not set (no PostgreSQL server for this run)")
    import uuid

    import sqlalchemy as sa

    name = f"tracker_digest_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    database = open_database(url, seed=_seed)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=evidence_rows, today_offset=st.integers(min_value=0, max_value=1800))
def test_python_and_sql_digests_agree(
    world: Database, rows: list[tuple], today_offset: int
) -> None:  # type: ignore[type-arg]
    today = ANNOUNCED + timedelta(days=today_offset)
    facts: dict[str, list[EvidenceFact]] = {slug: [] for slug in SLUGS}
    with world.write() as conn:
        conn.run("DELETE FROM evidence")
        ids = {c.slug: c.id for c in reads.commitments(conn)}
        for n, (slug, day, hour, stance, review, milestone, cancels) in enumerate(rows):
            at = datetime.combine(ANNOUNCED + timedelta(days=day), datetime.min.time()).replace(
                hour=hour
            )
            ev_id = insert(
                conn,
                "evidence",
                commitment_id=ids[slug],
                url=f"https://example.org/{n}",
                canonical_url=f"https://example.org/{n}",
                title=f"item {n}",
                published_at=at,
                source="test",
                stance=stance,
                review=review,
                milestone=milestone,
                cancels=cancels,
                created_at=at,
            )
            facts[slug].append(
                EvidenceFact(ev_id, at.date(), stance, review, milestone, cancels, at=at)
            )
        sql = reads.digests(conn)
    for slug in SLUGS:
        expected = digest(facts[slug], milestones=len(MILESTONES))
        got = sql.get(ids[slug])
        if got is None:  # the SQL digest leaves out commitments with no counted evidence
            assert expected.pending == expected.confirmed == 0
            continue
        assert got == expected
        commitment = CommitmentFacts(slug=slug, announced_on=ANNOUNCED, milestones=MILESTONES)
        assert evaluate(commitment, got, today) == evaluate(commitment, expected, today)
