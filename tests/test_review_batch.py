"""Batch decisions (`tracker review confirm|reject --all …`) and trusted sources that confirm
themselves, end to end: a loopback feed, `confirm = "auto"`, the weekly report's "Confirmed
automatically", and a person's reject that moves the status back with history (issue 14)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tracker.register import batch_decide, batch_select, review
from tracker.store import reads

from .conftest import DATA, errors, query
from .ptyterm import PtySession
from .test_review_loop import (
    CROSSING,
    FLIGHT,
    NOW,
    add,
    opened,
    settings,
    state,
    tracker_env,
)


@pytest.fixture
def world(db: str) -> dict[str, int]:
    """Three flight items from two sources on three days, a crossing item, a football story."""
    d = opened(db)
    return {
        "new": add(d, FLIGHT, "new", suggested_milestone=3, suggested_stance="progress"),
        "apa": add(
            d,
            FLIGHT,
            "apa",
            source="apa",
            publisher="APA",
            country="AZ",
            published_at=NOW - timedelta(days=3),
            suggested_stance="setback",
        ),
        "old": add(d, FLIGHT, "old", published_at=NOW - timedelta(days=40)),
        "crossing": add(d, CROSSING, "crossing", published_at=NOW - timedelta(days=1)),
        "football": add(
            d,
            FLIGHT,
            "football",
            title="Tractor FC FOOTBALL team flies to Baku",
            published_at=NOW - timedelta(days=2),
        ),
        "ferry": add(
            d,
            CROSSING,
            "ferry",
            title="Новый ПАРОМ через Аракс",
            language="ru",
            published_at=NOW - timedelta(days=5),
        ),
    }


def test_confirm_all_of_one_commitment_applies_each_suggestion(cli, db: str, world) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "confirm", "--all", "--commitment", FLIGHT)
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "confirmed 4 evidence items"
    assert state(db, world["new"])[:4] == ("confirmed", 3, "progress", "tester")
    assert state(db, world["apa"])[:3] == ("confirmed", None, "setback")
    assert state(db, world["old"])[:3] == ("confirmed", None, "neutral")  # nothing suggested
    assert state(db, world["crossing"])[0] == "pending"
    assert r.out.count("learning:") <= 1  # retrained once, at the end


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        (["--source", "apa"], ["apa"]),
        (
            ["--since", (NOW - timedelta(days=2)).date().isoformat()],
            ["new", "crossing", "football"],
        ),
        (
            ["--commitment", CROSSING, "--since", (NOW - timedelta(days=4)).date().isoformat()],
            ["crossing"],
        ),
    ],
)
def test_filters_choose_what_a_batch_decides(
    cli, db: str, world, args: list[str], chosen: list[str]
) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "confirm", "--all", *args)
    assert r.code == 0, r.err
    noun = "item" if len(chosen) == 1 else "items"
    assert f"confirmed {len(chosen)} evidence {noun}" in r.out
    decided = {k for k, ev in world.items() if state(db, ev)[0] == "confirmed"}
    assert decided == set(chosen)


def test_reject_all_matching_a_text_in_any_script(cli, db: str, world) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "reject", "--all", "--match", "football", "--reason", "sport, not flights")
    assert (r.code, r.out.splitlines()[0]) == (0, "rejected 1 evidence item")
    assert state(db, world["football"])[::4] == ("rejected", "sport, not flights")
    r = cli("review", "reject", "--all", "--match", "паром", "--commitment", CROSSING)
    assert (r.code, r.out.splitlines()[0]) == (0, "rejected 1 evidence item")
    assert state(db, world["ferry"])[0] == "rejected"
    r = cli("review", "reject", "--all", "--match", "no such words")
    assert (r.code, r.out) == (0, "nothing to reject: no pending evidence matches\n")


def test_dry_run_lists_and_decides_nothing(cli, db: str, world) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "confirm", "--all", "--dry-run")  # no filter: a dry run needs no --yes
    assert r.code == 0, r.err
    assert "6 evidence waiting for review" in r.out and r.out.endswith(
        "would confirm 6 evidence items\n"
    )
    assert "Tractor FC FOOTBALL team flies to Baku" in r.out
    assert all(state(db, ev)[0] == "pending" for ev in world.values())


def test_all_without_a_filter_off_a_terminal_needs_yes(cli, db: str, world) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "reject", "--all")
    assert r.code == 2
    assert errors(r.err) == (
        "error: --all with no filter would reject every pending item (6); add --yes to do "
        "that without a terminal\n"
    )
    assert all(state(db, ev)[0] == "pending" for ev in world.values())
    r = cli("review", "reject", "--all", "--yes")
    assert (r.code, r.out.splitlines()[0]) == (0, "rejected 6 evidence items")


@pytest.mark.parametrize(("answer", "decided"), [("n", 0), ("y", 6)])
def test_all_without_a_filter_on_a_terminal_asks(
    db: str, world, tmp_path: Path, answer: str, decided: int
) -> None:  # type: ignore[no-untyped-def]
    s = PtySession(
        [sys.executable, "-m", "tracker", "review", "confirm", "--all"],
        env=tracker_env(db),
        cwd=tmp_path,
    )
    try:
        s.expect(r"confirm all 6 pending evidence items\? \[y/N\]")
        s.send(answer + "\r")
        s.expect("nothing decided" if not decided else "confirmed 6 evidence items")
        assert s.wait() == 0
    finally:
        s.close()
    assert sum(state(db, ev)[0] == "confirmed" for ev in world.values()) == decided


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["confirm", "3", "--all"], "confirm --all applies each item's own suggestion"),
        (
            ["confirm", "--all", "--milestone", "2"],
            "confirm --all applies each item's own suggestion",
        ),
        (["reject", "3", "--all"], "give either an evidence ID or --all, not both"),
        (
            ["confirm", "3", "--source", "apa"],
            "--commitment, --source, --since, --match and --dry-run go with --all",
        ),
        (["reject", "--match", "x"], "go with --all"),
        (["confirm"], "give an evidence ID, or --all"),
        (
            ["confirm", "--all", "--source", "apaa"],
            "no evidence from a source named 'apaa'; did you mean 'apa'?",
        ),
        (["confirm", "--all", "--since", "yesterday"], "--since must be YYYY-MM-DD"),
        (["reject", "--all", "--match", " "], "--match must not be empty"),
        (["confirm", "--all", "--commitment", "nope"], "unknown commitment 'nope'"),
    ],
)
def test_batch_mistakes_are_one_line(cli, world, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", *args)
    assert r.code == 2, r.out
    line = errors(r.err)
    assert line.startswith("error: ") and message in line and line.count("\n") == 1


def test_a_batch_passes_over_what_someone_else_decided_meanwhile(db: str, world) -> None:  # type: ignore[no-untyped-def]
    d = opened(db)
    items = batch_select(d, slug=FLIGHT)
    review(opened(db), settings(db, "leyla"), world["apa"], "rejected")
    result = batch_decide(d, settings(db), items, "confirmed")
    assert result.decided == 3 and result.already == [(world["apa"], "rejected", "leyla")]
    assert state(db, world["apa"])[::3] == ("rejected", "leyla")


def test_single_decisions_still_work(cli, db: str, world) -> None:  # type: ignore[no-untyped-def]
    r = cli("review", "confirm", str(world["new"]))
    assert (
        r.code == 0 and f"evidence #{world['new']} confirmed ({FLIGHT}) with milestone 3" in r.out
    )
    r = cli("review", "reject", str(world["old"]), "--reason", "old news")
    assert r.code == 0 and state(db, world["old"])[::4] == ("rejected", "old news")


# ---------------------------------------------------------------- trusted sources


TERMINAL = "joint-container-terminal"


def feed(link: str) -> str:
    when = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Port news</title>'
        "<link>https://ports.example.kz/</link><description>x</description>"
        "<item><title>Construction started on the joint container terminal in Aktau</title>"
        f"<link>{link}</link><description>Work on the container terminal at Aktau port started"
        f" this week.</description><guid>{link}</guid><pubDate>{when}</pubDate></item>"
        "</channel></rss>"
    )


def this_week() -> str:
    year, week, _ = date.today().isocalendar()
    return f"{year}-W{week:02d}"


def status_of(cli, slug: str) -> str:  # type: ignore[no-untyped-def]
    import json

    data = json.loads(cli("status", "--json").out)
    return next(c["status"] for c in data["commitments"] if c["slug"] == slug)


def test_a_trusted_source_confirms_itself_and_a_person_can_still_reject_it(
    cli, db: str, httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRACKER_CATALOG", str(DATA / "other_catalog.toml"))
    monkeypatch.setenv("TRACKER_HTTP_MAX_RETRIES", "0")
    link = "https://ports.example.kz/news/terminal-construction"
    httpserver.expect_request("/feed").respond_with_data(
        feed(link), content_type="application/rss+xml"
    )
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "ports-wire"\nkind = "rss"\nurl = "{httpserver.url_for("/feed")}"\n'
        'language = "en"\nconfirm = "auto"\nmin_score = 0.5\n',
        encoding="utf-8",
    )
    assert status_of(cli, TERMINAL) == "stalled"
    r = cli("refresh", "--sources", str(sources))
    assert r.code == 0, r.out + r.err
    ((ev_id, review_state, by, stance, milestone),) = query(
        db,
        "SELECT id, review, reviewed_by, stance, milestone FROM evidence WHERE url = :u",
        {"u": link},
    )
    assert (review_state, by, stance, milestone) == ("confirmed", "auto:ports-wire", "progress", 2)
    assert status_of(cli, TERMINAL) == "in_progress"

    week = this_week()
    r = cli("report", "weekly", "--week", week, "--out", str(tmp_path / "reports"))
    assert r.code == 0, r.err
    text = (tmp_path / "reports" / f"{week}.md").read_text(encoding="utf-8")
    section = text.split("## Confirmed automatically (1)\n", 1)[1].split("\n## ", 1)[0]
    assert f"- #{ev_id} · " in section and "`joint-container-terminal`" in section
    assert "· progress · milestone 2" in section and "tracker review reject ID" in section
    assert "1 confirmed automatically" in text.splitlines()[6]  # the summary line
    shown = cli("report", "weekly", "--week", week, "--out", str(tmp_path / "reports"), "--show")
    assert shown.code == 0 and "Confirmed automatically (1)" in shown.out
    assert f"#{ev_id} · " in shown.out and shown.err.strip().endswith(f"{week}.md")

    r = cli("review", "reject", str(ev_id), "--reason", "the terminal is in Alat, not Aktau")
    assert r.code == 0, r.err
    assert f"{TERMINAL}: in_progress → stalled" in r.out
    assert status_of(cli, TERMINAL) == "stalled"
    history = query(
        db,
        "SELECT h.old_status, h.new_status, h.actor FROM status_history h"
        " JOIN commitment c ON c.id = h.commitment_id WHERE c.slug = :s ORDER BY h.id",
        {"s": TERMINAL},
    )
    assert history[-2:] == [
        ("stalled", "in_progress", "refresh"),
        ("in_progress", "stalled", "tester"),
    ]
    assert query(
        db,
        "SELECT actor, previous, decision FROM review_event WHERE evidence_id = :id",
        {"id": ev_id},
    ) == [("tester", "confirmed", "rejected")]
    cli("report", "weekly", "--week", week, "--out", str(tmp_path / "reports"))
    text = (tmp_path / "reports" / f"{week}.md").read_text(encoding="utf-8")
    assert "Confirmed automatically" not in text  # rejected: no longer standing as it entered


def test_the_week_s_auto_confirmed_are_listed_newest_first_and_counted(db: str) -> None:
    from tracker.reporting import build
    from tracker.weeks import IsoWeek

    d = opened(db)
    today = date.today()
    week = IsoWeek(*today.isocalendar()[:2])
    start = datetime.combine(week.start, datetime.min.time())
    ids = [
        add(
            d,
            FLIGHT,
            f"auto{i}",
            review="confirmed",
            reviewed_by="auto:opensky",
            reviewed_at=start,
            created_at=start + timedelta(minutes=i),
            published_at=start - timedelta(hours=i),
            milestone=3,
            stance="progress",
        )
        for i in range(3)
    ]
    add(d, FLIGHT, "by-hand", review="confirmed", reviewed_by="ana", created_at=start)
    add(
        d,
        FLIGHT,
        "last-week",
        review="confirmed",
        reviewed_by="auto:opensky",
        created_at=start - timedelta(days=1),
    )
    with d.read() as conn:
        report = build(conn, week, today=today, generated_at=datetime(2026, 1, 1), pending_limit=2)
        assert reads.get_evidence(conn, ids[0]).reviewed_by == "auto:opensky"
    assert report.auto_total == 3 and [e.id for e in report.auto_confirmed] == ids[:2]
    assert "- … and 1 more: `tracker export` lists them" in report.markdown()
