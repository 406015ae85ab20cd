"""Team mode: PostgreSQL-specific behaviour. The general suite also runs on PostgreSQL through the
`db` fixture; these tests cover concurrency, the advisory lock and moving databases between
backends. All skip when TRACKER_TEST_PG_URL is not set."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from tracker import register
from tracker.errors import EnvironmentProblem
from tracker.settings import Settings
from tracker.store import Database, writes

from .conftest import errors, query, run_cli

TODAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 12)


def open_store(db: str) -> Database:
    return register.open_store(Settings.from_env().with_db(db))


def add_pending(db: str, url: str) -> int:
    ((cid,),) = query(db, "SELECT id FROM commitment WHERE slug = 'tabriz-baku-flight'")
    query(
        db,
        "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key, published_at,"
        " source, language, stance, review, matched_terms, score, created_at, cancels, revision)"
        " VALUES (:cid, :url, :url, 'AZAL adds Tabriz flights', '', '', '2026-11-20 10:00:00', 'trend-en',"
        " 'en', 'neutral', 'pending', '[]', 1.0, '2026-11-20 10:00:00', FALSE, 0)",
        {"cid": cid, "url": url},
    )
    ((ev_id,),) = query(db, "SELECT id FROM evidence WHERE url = :url", {"url": url})
    return ev_id


def test_two_reviewers_at_once_lose_nothing(pg_url: str) -> None:
    database = open_store(pg_url)
    ev_id = add_pending(pg_url, "https://example.az/azal")
    first_wrote = threading.Event()
    second_started = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with database.write() as conn:
                writes.review(conn, ev_id, "confirmed", milestone=3, by="ana", today=TODAY, now=NOW)
                first_wrote.set()
                second_started.wait(5)
                # Hold the row lock while the second reviewer reads the old state and blocks.
                time.sleep(1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_wrote.wait(10)
    second_started.set()
    with (
        pytest.raises(EnvironmentProblem, match="changed by someone else meanwhile"),
        database.write() as conn,
    ):
        writes.review(conn, ev_id, "rejected", reason="dup", by="bahram", today=TODAY, now=NOW)
    thread.join(10)
    assert not errors
    assert query(
        pg_url, "SELECT review, reviewed_by, revision FROM evidence WHERE id = :i", {"i": ev_id}
    ) == [("confirmed", "ana", 1)]
    # told what happened, the second reviewer looks again and acts: both actions are kept
    with database.write() as conn:
        outcome = writes.review(
            conn, ev_id, "rejected", reason="dup", by="bahram", today=TODAY, now=NOW
        )
    assert outcome.note == f"evidence #{ev_id} had already been confirmed by ana"
    assert query(pg_url, "SELECT actor, previous, decision FROM review_event ORDER BY id") == [
        ("ana", "pending", "confirmed"),
        ("bahram", "confirmed", "rejected"),
    ]
    database.dispose()


def test_two_overrides_at_once_are_both_in_the_history(pg_url: str) -> None:
    database = open_store(pg_url)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def act(status: str, who: str) -> None:
        barrier.wait(5)
        try:
            with database.write() as conn:
                results.append(
                    writes.set_status(
                        conn,
                        "tourist-tours",
                        status,
                        reason=f"{who} says so",
                        by=who,
                        today=TODAY,
                        now=NOW,
                    )
                )
        except EnvironmentProblem as exc:
            results.append(exc)

    threads = [
        threading.Thread(target=act, args=a) for a in (("broken", "ana"), ("stalled", "bahram"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    done = [r for r in results if not isinstance(r, EnvironmentProblem)]
    refused = [r for r in results if isinstance(r, EnvironmentProblem)]
    overrides = query(
        pg_url,
        "SELECT h.actor, h.new_status FROM status_history h JOIN commitment c ON c.id = h.commitment_id"
        " WHERE c.slug = 'tourist-tours' AND h.kind = 'override' ORDER BY h.id",
    )
    # Either both landed one after the other, or the loser was told to retry: never a silent loss.
    assert len(done) + len(refused) == 2
    assert len(overrides) == len(done)
    ((final,),) = query(
        pg_url, "SELECT override_status FROM commitment WHERE slug = 'tourist-tours'"
    )
    assert final == overrides[-1][1]
    database.dispose()


def test_copy_round_trip_sqlite_postgresql_sqlite_gives_identical_exports(
    pg_url: str, tmp_path: Path
) -> None:
    first = tmp_path / "first.db"
    back = tmp_path / "back.db"
    env = {"TRACKER_TODAY": "2026-11-26"}
    assert (
        run_cli(
            "--db",
            str(first),
            "evidence",
            "add",
            "health-tourism",
            "--url",
            "https://example.org/h",
            "--title",
            "Clinic signs with Baku agency",
            "--date",
            "2026-03-01",
            "--milestone",
            "1",
            env=env,
        ).code
        == 0
    )
    assert (
        run_cli(
            "--db",
            str(first),
            "set-status",
            "tractor-dealership",
            "broken",
            "--reason",
            "no office",
            env=env,
        ).code
        == 0
    )
    r = run_cli("--db", str(first), "db", "copy", "--to", pg_url, env=env)
    assert r.code == 0, r.err
    assert "counts verified" in r.out
    r = run_cli("--db", pg_url, "db", "copy", "--to", str(back), env=env)
    assert r.code == 0, r.err

    def export(where: str) -> dict:  # type: ignore[type-arg]
        data = json.loads(run_cli("--db", where, "export", env=env).out)
        data.pop("generated_at")
        return data

    assert export(str(first)) == export(pg_url) == export(str(back))
    # ids continue after the copied rows on PostgreSQL: a new row gets a fresh id
    r = run_cli(
        "--db",
        pg_url,
        "evidence",
        "add",
        "tourist-tours",
        "--url",
        "https://example.org/t",
        "--title",
        "Tour operator",
        "--date",
        "2026-03-02",
        env=env,
    )
    assert r.code == 0, r.err


def test_copy_refuses_a_non_empty_target(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    assert run_cli("--db", src.as_posix(), "status").code == 0
    assert run_cli("--db", pg_url, "status").code == 0  # seeds the target
    r = run_cli("--db", str(src), "db", "copy", "--to", pg_url)
    assert r.code == 2
    assert "is not empty" in r.err and "--replace" in r.err
    assert run_cli("--db", str(src), "db", "copy", "--to", pg_url, "--replace").code == 0


def test_password_in_url_is_never_printed(pg_url: str) -> None:
    import sqlalchemy as sa

    url = sa.engine.make_url(pg_url).set(password="hunter2-secret", port=1)
    r = run_cli("--db", url.render_as_string(hide_password=False), "status")
    assert r.code == 1
    assert "hunter2-secret" not in r.out + r.err
    assert "***" in r.err
    assert errors(r.err).count("\n") == 1


def test_refresh_lock_is_an_advisory_lock_across_connections(pg_url: str) -> None:
    from tracker.store.locks import Busy, refresh_lock

    a = open_store(pg_url)
    b = open_store(pg_url)
    with refresh_lock(a, wait=0), pytest.raises(Busy), refresh_lock(b, wait=0.3):
        pass
    with refresh_lock(b, wait=0):
        pass  # released after the first holder finished
    a.dispose()
    b.dispose()


def test_concurrent_first_use_seeds_once(pg_url: str) -> None:
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tracker", "--db", pg_url, "status", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert query(pg_url, "SELECT COUNT(*) FROM commitment") == [(8,)]
    assert query(pg_url, "SELECT COUNT(*) FROM agreement") == [(1,)]
