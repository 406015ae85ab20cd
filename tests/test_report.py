"""The weekly report: contents, Markdown safety, past weeks, files, scale — on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tracker.outputs.escape import markdown as md_text
from tracker.outputs.escape import md_link, safe_url
from tracker.outputs.files import write_unless_same
from tracker.outputs.weekly import GENERATED_PREFIX, WeeklyReport
from tracker.reporting import build, configured_sources, produce
from tracker.store import Conn, Database, open_database
from tracker.text import one_line, visible
from tracker.weeks import IsoWeek

from .conftest import errors

try:
    from .rows import insert
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from rows import insert  # type: ignore[no-redef]

TODAY = date(2026, 11, 26)  # a Thursday; the last complete week is 2026-W47
W47 = IsoWeek(2026, 47)  # Monday 2026-11-16 – Sunday 2026-11-22
GENERATED = datetime(2026, 11, 26, 9, 0, 0)
CONFIGURED = ["irna-en", "apa", "trend", "azertag"]


def at(*args: int) -> datetime:
    """A naive-UTC datetime (the store converts it for each backend)."""
    return datetime(*args)


def add_commitment(
    conn: Conn, agreement_id: int, slug: str, announced: date, milestones: list[str]
) -> int:
    cid = insert(
        conn,
        "commitment",
        slug=slug,
        agreement_id=agreement_id,
        position=0,
        title=slug.replace("-", " ").capitalize(),
        announced_on=announced,
    )
    for i, title in enumerate(milestones, start=1):
        insert(conn, "milestone", commitment_id=cid, position=i, title=title)
    return cid


def add_evidence(conn: Conn, commitment_id: int, key: str, **values: Any) -> int:
    defaults: dict[str, Any] = {
        "url": f"https://news.example.org/{key}",
        "title": f"Story {key}",
        "source": "irna-en",
        "country": "IR",
        "stance": "neutral",
        "review": "pending",
    }
    defaults.update(values)
    return insert(
        conn,
        "evidence",
        commitment_id=commitment_id,
        canonical_url=f"https://news.example.org/{key}",
        **defaults,
    )


def history(conn: Conn, commitment_id: int, when: datetime, old: str | None, new: str) -> None:
    insert(
        conn,
        "status_history",
        commitment_id=commitment_id,
        at=when,
        old_status=old,
        new_status=new,
        kind="computed",
        actor="refresh" if old else "catalog",
        reason=f"test: {new}",
    )


def seed_world(conn: Conn) -> None:
    """Four commitments that exercise every section of the W47 report (see each comment)."""
    aid = insert(
        conn,
        "agreement",
        slug="iran-azerbaijan-2022",
        title="Iran–Azerbaijan transport memorandum",
        outlet="IRNA",
        published_on=date(2022, 2, 19),
    )
    announced = date(2022, 2, 19)
    # Moved announced → in_progress during W47, recorded in history.
    crossing = add_commitment(
        conn, aid, "khodaafarin-crossing", announced, ["site agreed", "works", "opened"]
    )
    history(conn, crossing, at(2026, 1, 5), None, "announced")
    history(conn, crossing, at(2026, 11, 18, 12), "announced", "in_progress")
    first = add_evidence(
        conn,
        crossing,
        "site",
        title="Site agreed for the Khodaafarin bridge",
        stance="progress",
        milestone=1,
        review="confirmed",
        published_at=at(2026, 11, 17, 9),
        created_at=at(2026, 11, 18, 11),
    )
    insert(
        conn,
        "mention",
        evidence_id=first,
        url="https://apa.example.az/site",
        canonical_url="https://apa.example.az/site",
        source="apa",
        country="AZ",
    )
    add_evidence(
        conn,
        crossing,
        "pending",
        title="Azerbaijani side inspects the crossing",
        source="apa",
        country="AZ",
        published_at=at(2026, 11, 20, 8),
        created_at=at(2026, 11, 20, 9),
    )
    add_evidence(  # rejected: never counted
        conn,
        crossing,
        "rejected",
        review="rejected",
        published_at=at(2026, 11, 19),
        created_at=at(2026, 11, 19),
    )
    add_evidence(  # recorded in W48: not part of W47
        conn,
        crossing,
        "next-week",
        published_at=at(2026, 11, 23, 8),
        created_at=at(2026, 11, 24, 8),
    )
    # No history at all: its status is worked out by the engine; stalled since early 2025.
    flight = add_commitment(
        conn, aid, "tabriz-baku-flight", announced, ["route agreed", "first flight"]
    )
    add_evidence(
        conn,
        flight,
        "route",
        stance="progress",
        milestone=1,
        review="confirmed",
        published_at=at(2025, 1, 10, 12),
        created_at=at(2026, 1, 5),
    )
    # Young and quiet is fine: announced 25 days before the week's end.
    swap = add_commitment(conn, aid, "gas-swap", date(2026, 11, 1), ["contract", "gas flows"])
    history(conn, swap, at(2026, 11, 2), None, "announced")
    # No history; in progress at W46's end, delivered during W47: a reconstructed change.
    rail = add_commitment(conn, aid, "rail-link", announced, ["survey", "tracks laid"])
    add_evidence(
        conn,
        rail,
        "survey",
        stance="progress",
        milestone=1,
        review="confirmed",
        published_at=at(2026, 10, 1, 12),
        created_at=at(2026, 10, 1, 13),
    )
    add_evidence(
        conn,
        rail,
        "tracks",
        title="Tracks laid on the Rasht–Astara link",
        stance="progress",
        milestone=2,
        review="confirmed",
        published_at=at(2026, 11, 19, 12),
        created_at=at(2026, 11, 19, 13),
    )
    # Announced after W47: absent from that week's report.
    add_commitment(conn, aid, "future-port", date(2026, 12, 1), ["opened"])
    for health in [
        dict(
            name="irna-en", kind="rss", last_attempt=at(2026, 11, 22), last_success=at(2026, 11, 22)
        ),
        dict(
            name="apa",
            kind="rss",
            last_attempt=at(2026, 11, 22),
            last_success=at(2026, 11, 19),
            consecutive_failures=4,
            failing_since=at(2026, 11, 20, 3),
            last_error="HTTP 503 | <b>down</b>",
        ),
        dict(  # not fetched for three weeks: silent
            name="trend",
            kind="rss",
            last_attempt=at(2026, 11, 1),
            last_success=at(2026, 11, 1),
            last_state="ok",
        ),
        dict(  # failed once, just now: failing, not silent
            name="azertag",
            kind="rss",
            last_attempt=at(2026, 11, 22),
            last_success=at(2026, 11, 21),
            last_state="failed",
            consecutive_failures=1,
            failing_since=at(2026, 11, 22),
            last_error="HTTP 502",
        ),
        dict(  # no longer in the sources file
            name="old-source",
            kind="rss",
            last_attempt=at(2026, 11, 22),
            consecutive_failures=9,
            failing_since=at(2026, 1, 1),
        ),
    ]:
        insert(conn, "source_health", **health)


def make_world(db: str | Path) -> Database:
    """The world in a fresh database: a SQLite path or a database URL."""
    return open_database(str(db), seed=seed_world)


@pytest.fixture
def world(db: str) -> Iterator[Database]:
    """On every backend the `db` fixture offers (PostgreSQL when TRACKER_TEST_PG_URL is set)."""
    database = make_world(db)
    yield database
    database.dispose()


def weekly(db: Database, week: IsoWeek = W47, **kwargs: Any) -> WeeklyReport:
    kwargs.setdefault("sources", CONFIGURED)
    with db.read() as conn:
        return build(conn, week, today=TODAY, generated_at=GENERATED, **kwargs)


# ---------------------------------------------------------------- Markdown helpers


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


def inline_text(token: Token) -> str:
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))


def sections(tokens: list[Token]) -> list[str]:
    return [
        tokens[i + 1].content
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag in ("h1", "h2")
    ]


def table_rows(tokens: list[Token]) -> list[list[str]]:
    rows: list[list[str]] = []
    for i, t in enumerate(tokens):
        if t.type == "tr_open":
            rows.append([])
        elif t.type in ("th_open", "td_open"):
            rows[-1].append(inline_text(tokens[i + 1]))
    return rows


def links(tokens: list[Token]) -> list[tuple[str, str]]:
    """(href, text) of every link in the document."""
    found = []
    for t in tokens:
        children = t.children or []
        for j, c in enumerate(children):
            if c.type == "link_open":
                text = []
                for d in children[j + 1 :]:
                    if d.type == "link_close":
                        break
                    text.append(d.content)
                found.append((str(c.attrGet("href")), "".join(text)))
    return found


def all_types(tokens: list[Token]) -> set[str]:
    types = set()
    for t in tokens:
        types.add(t.type)
        types.update(c.type for c in t.children or [])
    return types


# ---------------------------------------------------------------- contents


def test_sections_come_in_order_with_the_headline_numbers(world: Database) -> None:
    report = weekly(world)
    text = report.markdown()
    tokens = parse(text)
    assert sections(tokens) == [
        "Weekly report 2026-W47: Iran–Azerbaijan transport memorandum",
        "Commitments",
        "Status changes this week",
        "New evidence this week",
        "Gone quiet",
        "Waiting for review (1)",
        "Sources failing or silent",
    ]
    assert (
        report.summary
        == "2 status changes, 3 new evidence, 1 waiting for review, 2 sources failing, "
        "1 source silent"
    )
    assert f"**Summary:** {report.summary}" in text
    # Both calendars in the date range.
    assert "Monday 2026-11-16 – Sunday 2026-11-22" in text
    assert "1405-08-25 – 1405-09-01 (25 Aban – 1 Azar 1405)" in text
    assert report.subject == f"Weekly report 2026-W47: {report.summary}"


def test_table_shows_every_announced_commitment_with_its_change(world: Database) -> None:
    rows = table_rows(parse(weekly(world).markdown()))
    assert rows[0] == [
        "Commitment",
        "Status",
        "Change since 2026-W46",
        "Milestones",
        "Last evidence",
        "Flags",
    ]
    body = {row[0].split("(")[-1].rstrip(")"): row for row in rows[1:]}
    assert list(body) == ["khodaafarin-crossing", "tabriz-baku-flight", "gas-swap", "rail-link"]
    assert all(len(row) == 6 for row in rows)
    crossing = body["khodaafarin-crossing"]
    assert crossing[1:] == [
        "◐ in_progress",
        "○ announced → ◐ in_progress",
        "1/3: site agreed",
        "2026-11-20",
        "needs_review",
    ]
    assert body["tabriz-baku-flight"][1:3] == ["⏸ stalled", "—"]
    assert body["gas-swap"][1:4] == ["○ announced", "—", "0/2"]
    assert body["rail-link"][1:4] == [
        "● delivered",
        "◐ in_progress → ● delivered",
        "2/2: tracks laid",
    ]


def test_changes_quiet_evidence_pending_and_sources(world: Database) -> None:
    text = weekly(world).markdown()
    assert (
        "- 2026-11-18 12:00 UTC `khodaafarin-crossing`: ○ `announced` → ◐ `in_progress` "
        "(computed by refresh): test: in_progress"
    ) in text
    assert (
        "- during the week (reconstructed from evidence dates) `rail-link`: ◐ `in_progress` → "
        "● `delivered`"
    ) in text
    # Grouped by commitment, with the outlet, stance and review state; both sides noted.
    assert "### `khodaafarin-crossing` — Khodaafarin crossing (2)" in text
    assert (
        "- 2026-11-17 · irna-en, IR · [Site agreed for the Khodaafarin bridge]"
        "(https://news.example.org/site) · progress · confirmed · "
        "**reported by both Iranian and Azerbaijani outlets** · also carried by 1 other outlet"
    ) in text
    assert "### `rail-link` — Rail link (1)" in text
    assert "Story rejected" not in text and "Story next-week" not in text
    # Gone quiet: the stalled flight only (the gas swap is young, the rail link delivered).
    quiet = text.split("## Gone quiet")[1].split("## Waiting")[0]
    assert "`tabriz-baku-flight`" in quiet
    assert "last evidence 2025-01-10 (681 days earlier)" in quiet
    assert "gas-swap" not in quiet and "rail-link" not in quiet
    pending = text.split("## Waiting for review (1)")[1].split("## Sources")[0]
    assert "`khodaafarin-crossing` · apa, AZ · [Azerbaijani side inspects the crossing]" in pending
    sources = text.split("## Sources failing or silent")[1]
    assert (
        "- apa (rss): failing since 2026-11-20 03:00 UTC, 4 failures in a row; "
        "last error: HTTP 503 \\| &lt;b>down&lt;/b>"
    ) in sources
    assert "- trend (rss): silent, last success 2026-11-01 00:00 UTC" in sources
    assert "- azertag (rss): failing since 2026-11-22 00:00 UTC, 1 failure in a row" in sources
    assert "old-source" not in sources and "irna-en" not in sources


def test_without_a_source_list_every_recorded_source_counts(world: Database) -> None:
    text = weekly(world, sources=None).markdown()
    assert "- old-source (rss): failing since 2026-01-01" in text


def test_a_past_week_is_rebuilt_from_history_and_evidence_dates(world: Database) -> None:
    report = weekly(world, IsoWeek(2026, 46))
    rows = {line.slug: line for line in report.commitments}
    assert rows["khodaafarin-crossing"].status == "announced"  # history before W47's change
    assert rows["rail-link"].status == "in_progress"  # engine as of 2026-11-15
    assert rows["rail-link"].progress == 1
    assert rows["khodaafarin-crossing"].last_evidence is None  # W47's evidence not yet published
    assert report.changes == []
    assert report.new_total == 0
    # Long before the database existed: engine only, and later commitments are absent.
    old = weekly(world, IsoWeek(2022, 10))
    assert [line.slug for line in old.commitments] == [
        "khodaafarin-crossing",
        "tabriz-baku-flight",
        "rail-link",
    ]
    assert {line.status for line in old.commitments} == {"announced"}


def test_the_week_in_progress_is_marked_and_future_weeks_refused(world: Database) -> None:
    report = weekly(world, IsoWeek(2026, 48))
    assert report.in_progress and report.as_of == TODAY
    assert "in progress, as of 2026-11-26" in report.markdown()
    assert report.new_total == 1  # the W48 evidence
    from tracker.errors import UsageError

    with pytest.raises(UsageError, match="has not started yet"):
        weekly(world, IsoWeek(2026, 50))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 23), "2026-W47"),  # Monday: last week just ended
        (date(2026, 11, 22), "2026-W46"),  # Sunday: this week is not over yet
        (date(2026, 11, 26), "2026-W47"),
        (date(2027, 1, 4), "2026-W53"),  # 2026 has 53 ISO weeks
        (date(2021, 1, 4), "2020-W53"),
    ],
)
def test_default_week_is_the_last_complete_one(today: date, expected: str) -> None:
    assert IsoWeek.last_complete(today).label == expected


@pytest.mark.parametrize("value", ["2026-47", "W47", "2026-W00", "2025-W53", "2026-W54", "next"])
def test_bad_week_names_are_usage_errors(value: str) -> None:
    from tracker.errors import UsageError

    with pytest.raises(UsageError, match="--week"):
        IsoWeek.parse(value)


def test_week_parsing_accepts_iso_forms() -> None:
    assert IsoWeek.parse("2026-W47") == IsoWeek.parse("2026w47") == W47
    assert (W47.start, W47.end, W47.previous.label) == (
        date(2026, 11, 16),
        date(2026, 11, 22),
        "2026-W46",
    )


def test_pending_list_is_capped_at_the_newest(db: str) -> None:
    def seed(conn: Any) -> None:
        seed_world(conn)
        for i in range(70):
            add_evidence(
                conn,
                1,
                f"bulk-{i:03d}",
                published_at=at(2026, 11, 1, i // 60, i % 60),
                created_at=at(2026, 11, 1, 1),
            )

    report = weekly(open_database(db, seed=seed))
    assert report.pending_total == 71
    assert len(report.pending) == 50
    text = report.markdown()
    assert "## Waiting for review (71)" in text
    assert "- … and 21 more, newest first: run `tracker review`" in text
    # Newest first: the W47 item, then the bulk in reverse.
    assert report.pending[0].title == "Azerbaijani side inspects the crossing"
    assert report.pending[1].title == "Story bulk-069"


# ---------------------------------------------------------------- Markdown safety

NASTY = [
    "Pipes | in | the | title",
    "*stars* and __under__ and _one_",
    "[a link](https://evil.example/) and ![img](https://evil.example/x.png)",
    "<script>alert(1)</script> <b>bold</b> <!-- c -->",
    "`code` and ``more``",
    "line one\nline two\r\n| --- |\n# heading",
    "bidi \u202eoverride\u202c and \x07bell",
    "entity &lt;b&gt; &#60;i&#62; &amp; plain & ampersand",
    "back\\slash\\ at end\\",
    "~~strike~~ and #hash ##",
    "https://autolink.example/ <https://angle.example/>",
    "snake_case_name, x_y_, _a_b_ and 2*3*4 and پل_خداآفرین_",
    "trailing hashes ##",
]


@pytest.mark.parametrize("title", NASTY)
def test_web_text_cannot_break_the_report(db: str, title: str) -> None:
    def seed(conn: Any) -> None:
        seed_world(conn)
        add_evidence(
            conn,
            1,
            "nasty",
            title=title,
            source="src | *x*",
            publisher="Pub <i>",
            published_at=at(2026, 11, 21),
            created_at=at(2026, 11, 21),
        )
        # Catalog text goes through the same escaping.
        conn.run("UPDATE commitment SET title = :t WHERE id = 1", {"t": title})
        conn.run("UPDATE agreement SET title = :t WHERE id = 1", {"t": title})

    tokens = parse(weekly(open_database(db, seed=seed)).markdown())
    types = all_types(tokens)
    assert not types & {"html_inline", "html_block", "image", "s_open"}
    # The only emphasis is the report's own: three labels, one both-sides note, the footer.
    kinds = [c.type for t in tokens for c in t.children or []]
    assert kinds.count("strong_open") == 4
    assert kinds.count("em_open") == 1
    rows = table_rows(tokens)
    assert len(rows) == 5 and all(len(r) == 6 for r in rows)
    expected = visible(one_line(title))
    assert rows[1][0] == f"{expected} (khodaafarin-crossing)"
    assert inline_text(tokens[1]) == f"Weekly report 2026-W47: {expected}"
    # Exactly one link per evidence with an http(s) URL; the nasty one carries its title intact.
    found = links(tokens)
    assert len(found) == 6  # 4 new evidence + 2 pending
    assert ("https://news.example.org/nasty", expected) in found
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert len(headings) == 7 + 2  # the sections + two commitments with new evidence


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://x.example/a b(c)<d>", "https://x.example/a%20b%28c%29%3Cd%3E"),
        ("https://x.example/p?q=1&r=2", "https://x.example/p?q=1&r=2"),
        (
            "http://x.example/\\)](javascript:alert(1))",
            "http://x.example/%5C%29%5D%28javascript:alert%281%29%29",
        ),
        ("https://x.example/\u202eevil", "https://x.example/%E2%80%AEevil"),
        ("https://x.example/fa/خبر", "https://x.example/fa/%D8%AE%D8%A8%D8%B1"),
    ],
)
def test_link_targets_cannot_break_out(url: str, href: str) -> None:
    tokens = parse(f"- {md_link('title [x]', url)}\n")
    assert links(tokens) == [(href, "title [x]")]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "ftp://x.example/", "//x.example/", "", None]
)
def test_only_http_links_become_links(url: str | None) -> None:
    assert safe_url(url) is None
    tokens = parse(f"- {md_link('a title', url)}\n")
    assert links(tokens) == []
    assert "a title" in tokens[3].content


def test_md_text_is_inert() -> None:
    assert md_text("a|b*c_d[e]f`g<h>#~\\") == "a\\|b\\*c_d\\[e\\]f\\`g&lt;h>#\\~\\\\"
    assert md_text("x\ny") == "x y"
    # Intraword underscores are inert and stay readable; the others are escaped.
    assert md_text("in_progress _x_ a__b snake_") == "in_progress \\_x\\_ a\\_\\_b snake\\_"


# ---------------------------------------------------------------- files


def test_same_database_and_week_give_the_same_file(world: Database, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    first = produce(world, week=W47, out_dir=out, today=TODAY, now=GENERATED, sources=None)
    assert first.written.path == out / "2026-W47.md" and not first.written.reused
    later = datetime(2026, 11, 27, 18, 5, 1)
    again = weekly(world, sources=configured_sources(None))  # what produce() uses by default
    again.generated_at = later
    differing = [
        (a, b)
        for a, b in zip(
            first.written.data.decode().splitlines(), again.markdown().splitlines(), strict=True
        )
        if a != b
    ]
    assert differing == [
        (
            "_Generated at 2026-11-26T09:00:00Z by tracker " + again.version + "._",
            "_Generated at 2026-11-27T18:05:01Z by tracker " + again.version + "._",
        )
    ]
    stat = first.written.path.stat()
    kept = produce(world, week=W47, out_dir=out, today=TODAY, now=later, sources=None)
    assert kept.written.reused and kept.written.data == first.written.data
    assert first.written.path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in out.iterdir()) == ["2026-W47.md"]  # no temp files left


def test_a_changed_report_replaces_the_file_atomically(world: Database, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    first = produce(world, week=W47, out_dir=out, today=TODAY, now=GENERATED, sources=None)
    with world.write() as conn:
        add_evidence(
            conn, 2, "late-find", published_at=at(2026, 11, 21), created_at=at(2026, 11, 21)
        )
    second = produce(world, week=W47, out_dir=out, today=TODAY, now=GENERATED, sources=None)
    assert not second.written.reused
    assert second.written.path.read_bytes() == second.written.data != first.written.data
    assert b"Story late-find" in second.written.data
    assert sorted(p.name for p in out.iterdir()) == ["2026-W47.md"]


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    from tracker.errors import EnvironmentProblem

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EnvironmentProblem, match="cannot write"):
        write_unless_same(blocker / "reports" / "2026-W47.md", "# x\n", GENERATED_PREFIX)


# ---------------------------------------------------------------- the command


def test_cli_writes_the_report_and_prints_its_path(
    world: Database, cli: Any, tmp_path: Path
) -> None:
    world.dispose()
    result = cli("report", "weekly", "--week", "2026-W47", "--out", str(tmp_path / "r"))
    assert result.code == 0, result.err
    assert result.out == f"{tmp_path / 'r' / '2026-W47.md'}\n"
    text = (tmp_path / "r" / "2026-W47.md").read_text(encoding="utf-8")
    assert text.startswith("# Weekly report 2026-W47: ")


def test_cli_default_week_and_directory(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.dispose()
    monkeypatch.setenv("TRACKER_TODAY", "2026-11-23")
    result = cli("report", "weekly")
    assert result.code == 0, result.err
    assert result.out == "reports/2026-W47.md\n"
    assert Path("reports/2026-W47.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W60"], "2026 has no ISO week 60"),
        (["--week", "soon"], "--week must look like 2026-W47"),
        (["--quiet-days", "0"], "--quiet-days"),
    ],
)
def test_cli_bad_options_are_one_line_exit_2(
    world: Database, cli: Any, args: list[str], message: str
) -> None:
    world.dispose()
    result = cli("report", "weekly", *args)
    assert result.code == 2
    assert message in result.err and errors(result.err).count("\n") == 1
    assert not Path("reports").exists()


# ---------------------------------------------------------------- scale


def _bulk_evidence(path: Path, rows: int) -> None:
    """`rows` evidence rows over ~2.7 years, 90% pending, inserted by SQLite itself (fast)."""
    conn = sqlite3.connect(path, isolation_level=None)
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'evidence'"
        " AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
        INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key,
            published_at, source, language, country, stance, milestone, review, cancels,
            matched_terms, score, created_at, revision)
        SELECT 1 + (i % 4), 'https://bulk.example/' || i, 'https://bulk.example/' || i,
            'Bulk story ' || i, '', '',
            strftime('%Y-%m-%d %H:%M:%f000', '2026-11-25', '-' || (i * 86) || ' seconds'),
            'src' || (i % 7), 'en', CASE WHEN i % 2 = 0 THEN 'IR' ELSE 'AZ' END,
            CASE WHEN i % 50 = 0 THEN 'progress' ELSE 'neutral' END,
            CASE WHEN i % 5000 = 0 THEN 1 ELSE NULL END,
            CASE WHEN i % 50 = 0 THEN 'confirmed' WHEN i % 12 = 1 THEN 'rejected'
                 ELSE 'pending' END,
            0, '[]', 0.5,
            strftime('%Y-%m-%d %H:%M:%f000', '2026-11-25', '-' || (i * 86) || ' seconds',
                     '+1 hour'),
            0
        FROM n
        """
    )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


@pytest.mark.slow
def test_a_million_evidence_rows_give_a_bounded_report(db_path: Path) -> None:
    """The report stays a readable size at scale (its speed is measured in tests/bench/run.py)."""
    make_world(db_path).dispose()
    _bulk_evidence(db_path, 1_000_000)
    db = open_database(str(db_path))
    report = weekly(db)
    text = report.markdown()
    assert report.pending_total > 800_000 and len(report.pending) == 50
    assert report.new_total > 6_000
    assert sum(len(v) for v in report.new_evidence.values()) <= 4 * 20
    assert len(text) < 200_000
