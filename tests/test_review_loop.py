"""`tracker review` on a terminal (issue 14): story clusters, the keystroke loop as a state
machine over the real register (SQLite and PostgreSQL), and the real command on a real
pseudo-terminal: every key, undo, quitting halfway, signals, the terminal given back."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracker.register import ReviewDesk, open_store, review, review_queue
from tracker.review import ReviewLoop, group_stories, split_keys
from tracker.settings import Settings
from tracker.store import Database, reads

from .conftest import query, run_cli
from .ptyterm import PtySession

try:
    from .rows import insert
except ImportError:  # tests/ collected as top-level modules
    from rows import insert  # type: ignore[no-redef]

NOW = datetime.now().replace(microsecond=0) - timedelta(hours=1)
FLIGHT = "tabriz-baku-flight"
CROSSING = "khodaafarin-crossing"


def settings(url: str, user: str = "tester") -> Settings:
    return Settings.from_env({"TRACKER_DB": url, "TRACKER_USER": user})


def opened(url: str) -> Database:
    return open_store(settings(url))


def add(db: Database, slug: str, key: str, **values: Any) -> int:
    """One pending evidence row; a test names only what it is about."""
    from tracker.matching import normalize_title_key

    title = values.pop("title", f"Story {key} about {slug}")
    row: dict[str, Any] = {
        "url": f"https://news.example.ir/{key}",
        "canonical_url": f"https://news.example.ir/{key}",
        "title": title,
        "title_key": normalize_title_key(title),
        "summary": f"The whole text of story {key}.",
        "published_at": NOW,
        "source": "irna-en",
        "publisher": "IRNA",
        "country": "IR",
        "language": "en",
        "created_at": NOW,
        "matched_terms": ["Tabriz", "Baku"],
        "score": 0.82,
        "reasons": ["the place is named"],
    }
    row.update(values)
    with db.write() as conn:
        cid = reads.find_commitment(conn, slug).id
        return insert(conn, "evidence", commitment_id=cid, **row)


def state(db_url: str, evidence_id: int) -> tuple[Any, ...]:
    ((found,),) = [
        query(
            db_url,
            "SELECT review, milestone, stance, reviewed_by, review_reason FROM evidence"
            " WHERE id = :id",
            {"id": evidence_id},
        )
    ]
    return tuple(found)


def events(db_url: str, evidence_id: int) -> list[tuple[Any, ...]]:
    return query(
        db_url,
        "SELECT actor, previous, decision, reason FROM review_event WHERE evidence_id = :id"
        " ORDER BY id",
        {"id": evidence_id},
    )


def loop_on(url: str, slug: str | None = None) -> ReviewLoop:
    db = opened(url)
    queue = review_queue(db, slug)
    return ReviewLoop(queue.clusters, ReviewDesk(db, settings(url)), queue.milestones)


def press(loop: ReviewLoop, keys: str) -> None:
    for key in split_keys(keys):
        loop.press(key)


# ---------------------------------------------------------------- story clusters


def test_one_story_from_several_outlets_is_one_cluster(db: str) -> None:
    d = opened(db)
    title = "Tabriz-Baku flights to start next month, officials say"
    a = add(d, FLIGHT, "a", title=title, source="irna-en", publisher="IRNA")
    b = add(
        d,
        FLIGHT,
        "b",
        title=title,
        source="apa",
        publisher="APA",
        country="AZ",
        published_at=NOW - timedelta(days=5),
    )
    near = add(
        d,
        FLIGHT,
        "c",
        title="Tabriz-Baku flights to start next month, official says",
        source="trend",
        publisher="Trend",
        country="AZ",
        published_at=NOW - timedelta(days=1),
    )
    # Not the same story: too long after, or another commitment's evidence.
    late = add(d, FLIGHT, "d", title=title, published_at=NOW - timedelta(days=13))
    other = add(d, CROSSING, "e", title=title)
    clusters = {tuple(sorted(c.ids)) for c in review_queue(d, None).clusters}
    assert clusters == {tuple(sorted((a, b, near))), (late,), (other,)}


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        # One outlet's near-identical titles are its updates, not copies of one story.
        (
            ("IRNA", "Tabriz-Baku flights to start next month, officials say"),
            ("IRNA", "Tabriz-Baku flights to start next month, officials add"),
            False,
        ),
        (
            ("IRNA", "Tabriz-Baku flights to start next month, officials say"),
            ("APA", "Tabriz-Baku flights to start next month, officials add"),
            True,
        ),
        # Other numbers, another story.
        (
            ("Mehr", "Tabriz-Baku flights: 3 a week from next month"),
            ("Trend", "Tabriz-Baku flights: 4 a week from next month"),
            False,
        ),
        # Short titles must be the same to count.
        (("Mehr", "Flights resume"), ("Trend", "Flights resumed"), False),
        (("Mehr", "Flights resume"), ("Trend", "Flights resume!"), True),
    ],
)
def test_near_identical_titles(
    db: str, first: tuple[str, str], second: tuple[str, str], same: bool
) -> None:
    d = opened(db)
    x = add(d, FLIGHT, "x", publisher=first[0], title=first[1])
    y = add(
        d, FLIGHT, "y", publisher=second[0], title=second[1], published_at=NOW - timedelta(days=2)
    )
    clusters = sorted(sorted(c.ids) for c in review_queue(d, None).clusters)
    assert clusters == ([[x, y]] if same else [[x], [y]])


def test_also_reported_by_links_join_rows_into_one_story(db: str) -> None:
    d = opened(db)
    lead = add(d, FLIGHT, "lead", title="Flights between Tabriz and Baku resume")
    translated = add(
        d,
        FLIGHT,
        "fa",
        title="پرواز تبریز باکو از سر گرفته شد",
        language="fa",
        published_at=NOW - timedelta(hours=2),
    )
    same_link = add(
        d,
        CROSSING,
        "fa-crossing",
        url="https://news.example.ir/fa",
        canonical_url="https://news.example.ir/fa",
    )
    with d.write() as conn:
        insert(
            conn,
            "mention",
            evidence_id=lead,
            url="https://news.example.ir/fa",
            canonical_url="https://news.example.ir/fa",
            source="google-news",
            publisher="IRNA Farsi",
        )
        insert(
            conn,
            "mention",
            evidence_id=lead,
            url="https://report.az/x",
            canonical_url="https://report.az/x",
            source="google-news",
            publisher="Report",
            country="AZ",
        )
    found = review_queue(d, None).clusters
    story = next(c for c in found if lead in c.ids)
    assert sorted(story.ids) == sorted([lead, translated])
    assert [m.publisher for m in story.mentions] == ["Report"]  # the other row is not repeated
    assert any(c.ids == [same_link] for c in found)  # the same link, another commitment: apart


def test_group_stories_is_newest_first_and_leads_with_the_newest_row(db: str) -> None:
    d = opened(db)
    old = add(
        d, FLIGHT, "old", title="Same headline", publisher="A", published_at=NOW - timedelta(days=2)
    )
    new = add(d, FLIGHT, "new", title="Same headline", publisher="B")
    newest_alone = add(d, CROSSING, "x", published_at=NOW + timedelta(minutes=5))
    with d.read() as conn:
        rows = reads.pending(conn)
    clusters = group_stories(rows)
    assert [c.lead.id for c in clusters] == [newest_alone, new]
    assert [e.id for e in clusters[1].members] == [old]


def test_split_keys_keeps_escape_sequences_whole() -> None:
    assert split_keys("cr\x1b[A\x1bq") == ["c", "r", "\x1b[A", "\x1b", "q"]
    assert split_keys("\x1bOP") == ["\x1bOP"]
    assert split_keys("ش") == ["ش"]


# ---------------------------------------------------------------- the loop over the register


def test_confirm_applies_the_suggestion_to_the_whole_story_and_undo_restores_it(db: str) -> None:
    d = opened(db)
    title = "First Tabriz-Baku flight lands in Baku"
    lead = add(d, FLIGHT, "a", title=title, suggested_milestone=3, suggested_stance="progress")
    member = add(
        d,
        FLIGHT,
        "b",
        title=title,
        publisher="APA",
        country="AZ",
        published_at=NOW - timedelta(days=1),
    )
    alone = add(d, CROSSING, "c", published_at=NOW - timedelta(hours=2))
    loop = loop_on(db)
    assert loop.screen().left == 2 and loop.current is not None and loop.current.lead.id == lead
    press(loop, "c")
    assert state(db, lead)[:4] == ("confirmed", 3, "progress", "tester")
    assert state(db, member)[:4] == ("confirmed", 3, "progress", "tester")
    assert f"confirmed #{lead} and 1 more of the same story" in loop.message
    assert loop.current is not None and loop.current.lead.id == alone and loop.left == 1
    press(loop, "u")
    assert loop.current is not None and loop.current.lead.id == lead and loop.left == 2
    assert "undone" in loop.message
    for ev in (lead, member):
        assert state(db, ev) == ("pending", None, "neutral", None, None)
        assert events(db, ev) == [
            ("tester", "pending", "confirmed", None),
            ("tester", "confirmed", "pending", "undo"),
        ]
    press(loop, "u")
    assert loop.message == "nothing to undo"


def test_every_key_of_the_table(db: str) -> None:
    d = opened(db)
    ids = [
        add(d, FLIGHT, f"k{i}", published_at=NOW - timedelta(hours=i), suggested_stance="progress")
        for i in range(6)
    ]
    loop = loop_on(db)
    press(loop, "x")  # setback, then c confirms with it
    assert loop.screen().stance == "setback"
    press(loop, "c")
    assert state(db, ids[0])[:3] == ("confirmed", None, "setback")
    press(loop, "r")
    assert state(db, ids[1])[0] == "rejected"
    press(loop, "Rnot about flights\x7fS\r")  # a typo corrected with backspace
    assert state(db, ids[2])[0] == "rejected" and state(db, ids[2])[4] == "not about flightS"
    press(loop, "m")
    assert loop.mode == "milestone" and len(loop.screen().milestones) == 5
    press(loop, "4")  # one digit is enough with five milestones
    assert state(db, ids[3])[:3] == ("confirmed", 4, "progress")
    press(loop, "o")
    assert loop.screen().expanded
    press(loop, "s")
    assert state(db, ids[4])[0] == "pending" and loop.tally["skipped"] == 1
    press(loop, "n")
    press(loop, "R\x1b")  # a reason started, then left: nothing decided
    assert loop.mode == "item" and state(db, ids[5])[0] == "pending"
    press(loop, "Z")
    assert "unknown key Z" in loop.message
    press(loop, "q")
    assert loop.done and loop.left == 1
    assert loop.tally == {"confirmed": 2, "rejected": 2, "skipped": 1, "already": 0}


def test_undo_goes_back_over_a_decision_and_a_skip(db: str) -> None:
    d = opened(db)
    first = add(d, FLIGHT, "1")
    second = add(d, FLIGHT, "2", published_at=NOW - timedelta(hours=1))
    add(d, FLIGHT, "3", published_at=NOW - timedelta(hours=2))
    loop = loop_on(db)
    press(loop, "sc")
    assert state(db, second)[0] == "confirmed" and loop.left == 1
    press(loop, "u")
    assert loop.current is not None and loop.current.lead.id == second
    assert state(db, second)[0] == "pending" and loop.left == 2
    press(loop, "u")
    assert loop.current.lead.id == first and loop.message == f"back to #{first} (skipped)"
    assert loop.left == 3 and loop.tally == {
        "confirmed": 0,
        "rejected": 0,
        "skipped": 0,
        "already": 0,
    }


def test_a_story_another_watcher_decided_meanwhile_says_so_and_moves_on(db: str) -> None:
    d = opened(db)
    first = add(d, FLIGHT, "1")
    second = add(d, FLIGHT, "2", published_at=NOW - timedelta(hours=1))
    third = add(d, FLIGHT, "3", published_at=NOW - timedelta(hours=2))
    loop = loop_on(db)
    other = open_store(settings(db, "bahram"))
    review(other, settings(db, "bahram"), first, "rejected", reason="off topic")
    review(other, settings(db, "bahram"), second, "confirmed")
    press(loop, "c")  # on the first, which bahram rejected a moment ago
    assert "already reviewed by bahram (rejected)" in loop.message
    assert f"#{second} already confirmed by bahram" in loop.message  # passed over on arrival
    assert loop.current is not None and loop.current.lead.id == third
    assert state(db, first)[:4] == ("rejected", None, "neutral", "bahram")
    assert loop.tally["already"] == 2 and loop.left == 1


def test_undo_refuses_what_someone_else_changed_since(db: str) -> None:
    d = opened(db)
    first = add(d, FLIGHT, "1")
    add(d, FLIGHT, "2", published_at=NOW - timedelta(hours=1))
    loop = loop_on(db)
    press(loop, "c")
    review(open_store(settings(db, "bahram")), settings(db, "bahram"), first, "rejected")
    press(loop, "u")
    assert loop.message.startswith("cannot undo:") and "bahram" in loop.message
    assert state(db, first)[0] == "rejected"


# ---------------------------------------------------------------- on a real terminal


def tracker_env(db: str, user: str = "tester") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env.update(TRACKER_DB=db, TRACKER_USER=user, TERM="xterm-256color", COLUMNS="", LINES="")
    return {k: v for k, v in env.items() if v}


def on_terminal(db: str, tmp_path: Path, *args: str) -> PtySession:
    """`tracker review` on a pseudo-terminal, then `stty -a` on the same terminal: what the
    tool left behind is what the next program finds."""
    command = " ".join([f"'{sys.executable}'", "-m", "tracker", "review", *args])
    return PtySession(
        ["/bin/sh", "-c", f"{command}; echo EXIT=$?; stty -a; echo STTY-END"],
        env=tracker_env(db),
        cwd=tmp_path,
    )


def assert_terminal_restored(session: PtySession) -> None:
    modes = session.expect(r"(?s)EXIT=\d+.*STTY-END")
    flags = set(modes.group(0).split())
    assert {"icanon", "echo", "isig", "icrnl", "opost"} <= flags, modes.group(0)
    raw = session.raw  # the normal screen and the cursor are back, if they were ever left
    assert raw.count("\x1b[?1049h") == raw.count("\x1b[?1049l")
    assert raw.count("\x1b[?25l") == raw.count("\x1b[?25h")
    assert raw.rfind("\x1b[?1049l") >= raw.rfind("\x1b[?1049h")


@pytest.fixture
def five(db: str) -> list[int]:
    d = opened(db)
    return [
        add(
            d,
            FLIGHT,
            f"p{i}",
            published_at=NOW - timedelta(hours=i),
            suggested_milestone=2,
            suggested_stance="progress",
        )
        for i in range(5)
    ]


def test_review_keys_on_a_real_terminal(db: str, five: list[int], tmp_path: Path) -> None:
    s = on_terminal(db, tmp_path)
    try:
        first = s.expect(r"1/5 .*\n(?s:.*)5 left").group(0)
        assert "Story p0 about tabriz-baku-flight" in first
        assert "irna-en (IR)" in first and "ش)" in first  # the source and its side; both calendars
        assert "https://news.example.ir/p0" in first and "Tabriz, Baku · score 0.82" in first
        assert "the place is named" in first and "milestone 2 “" in first
        for key in ("c", "p", "x", "n", "s", "u", "o", "q", "R", "m"):
            assert key in s.text.split("5 left")[0].splitlines()[-1]  # the footer names the keys
        s.send("c")
        s.expect(rf"confirmed #{five[0]} \(milestone 2, progress\)(?s:.*)4 left")
        s.send("r")
        s.expect(r"3 left")
        s.send("Rwrong bridge")
        s.expect(r"reason: wrong bridge")
        s.send("\r")
        s.expect(r"2 left")
        s.send("u")
        s.expect(rf"undone: #{five[2]} waits for review again(?s:.*)3 left")
        s.send("o")
        s.expect(r"The whole text of story p2")
        s.send("q")
        s.expect(r"review: 1 confirmed, 1 rejected, 0 skipped; 3 still waiting")
        assert_terminal_restored(s)
        assert s.wait() == 0
        assert "EXIT=0" in s.text
    finally:
        s.close()
    assert [state(db, i)[0] for i in five] == [
        "confirmed",
        "rejected",
        "pending",
        "pending",
        "pending",
    ]
    assert events(db, five[2])[-1] == ("tester", "rejected", "pending", "undo")


def the_tracker(session: PtySession) -> int:
    """The pid of `tracker` itself, the shell's child on the terminal (Linux /proc)."""
    children = Path(f"/proc/{session.pid}/task/{session.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ("ctrl-c", 0),
        ("SIGTERM", 128 + signal.SIGTERM),
        ("SIGINT", 130),
        ("SIGHUP", 128 + signal.SIGHUP),
    ],
)
def test_quitting_halfway_keeps_every_decision_and_gives_the_terminal_back(
    db: str, five: list[int], tmp_path: Path, how: str, code: int
) -> None:
    s = on_terminal(db, tmp_path)
    try:
        s.expect(r"5 left")
        s.send("c")
        s.expect(r"4 left")
        s.send("r")
        s.expect(r"3 left")
        if how == "ctrl-c":
            s.send("\x03")
        else:
            os.kill(the_tracker(s), getattr(signal, how))
        s.expect(r"review: 1 confirmed, 1 rejected, 0 skipped; 3 still waiting")
        assert_terminal_restored(s)
        s.wait()
        assert f"EXIT={code}" in s.text
    finally:
        s.close()
    assert [state(db, i)[0] for i in five] == [
        "confirmed",
        "rejected",
        "pending",
        "pending",
        "pending",
    ]


def test_killed_outright_it_has_already_written_every_decision(
    db: str, five: list[int], tmp_path: Path
) -> None:
    s = on_terminal(db, tmp_path)
    try:
        s.expect(r"5 left")
        s.send("c")
        s.expect(r"4 left")
        os.kill(the_tracker(s), signal.SIGKILL)  # no chance to clean up: nothing is lost anyway
        s.expect(r"EXIT=137")
    finally:
        s.close()
    assert [state(db, i)[0] for i in five] == ["confirmed"] + ["pending"] * 4


def test_another_watcher_s_decision_shows_on_the_terminal(
    db: str, five: list[int], tmp_path: Path
) -> None:
    s = on_terminal(db, tmp_path)
    try:
        s.expect(r"5 left")
        r = run_cli(
            "review", "reject", str(five[0]), env={"TRACKER_DB": db, "TRACKER_USER": "leyla"}
        )
        assert r.code == 0, r.err
        s.send("c")
        s.expect(rf"#{five[0]} already reviewed by leyla \(rejected\); moving on(?s:.*)4 left")
        s.send("q")
        assert_terminal_restored(s)
    finally:
        s.close()
    assert state(db, five[0])[:4] == ("rejected", None, "neutral", "leyla")


def test_list_or_a_pipe_prints_the_list(db: str, five: list[int], tmp_path: Path) -> None:
    s = on_terminal(db, tmp_path, "--list")
    try:
        s.expect(r"5 evidence waiting for review")
        assert s.wait() == 0
    finally:
        s.close()
    piped = run_cli("review", env={"TRACKER_DB": db})
    assert piped.code == 0 and "5 evidence waiting for review" in piped.out
    assert "\x1b[" not in piped.out


def test_an_empty_queue_says_so_on_a_terminal(db: str, tmp_path: Path) -> None:
    opened(db)
    s = on_terminal(db, tmp_path)
    try:
        s.expect(r"nothing waiting for review")
        assert_terminal_restored(s)
    finally:
        s.close()


def test_hostile_titles_stay_text_in_the_loop(db: str, tmp_path: Path) -> None:
    d = opened(db)
    add(d, FLIGHT, "evil", title="[bold red]x[/] \x1b[2J\u202eevil", publisher="[link=x]y[/link]")
    s = on_terminal(db, tmp_path)
    try:
        screen = s.expect(r"1 left").string
        assert "[bold red]x[/]" in screen and "\\u202e" in screen and "[link=x]y[/link]" in screen
        assert "\x1b[2J\u202e" not in s.raw
        s.send("q")
        assert_terminal_restored(s)
    finally:
        s.close()


def test_two_rows_listing_the_same_other_outlet_are_one_story(db: str) -> None:
    d = opened(db)
    a = add(d, FLIGHT, "a", title="Flights resume between the two cities")
    b = add(d, FLIGHT, "b", title="Azerbaijan and Iran restore the air link", publisher="APA")
    for ev in (a, b):
        with d.write() as conn:
            insert(
                conn,
                "mention",
                evidence_id=ev,
                url="https://report.az/y",
                canonical_url="https://report.az/y",
                source="google-news",
                publisher="Report",
            )
    (story,) = review_queue(d, None).clusters
    assert sorted(story.ids) == sorted([a, b]) and [m.publisher for m in story.mentions] == [
        "Report"
    ]


def test_a_session_loads_the_newest_and_counts_the_rest(db: str) -> None:
    d = opened(db)
    ids = [add(d, FLIGHT, f"n{i}", published_at=NOW - timedelta(hours=i)) for i in range(3)]
    queue = review_queue(d, None, limit=2)
    assert [c.lead.id for c in queue.clusters] == ids[:2]
    assert (queue.evidence, queue.waiting) == (2, 3)
