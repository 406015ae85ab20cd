"""`tracker show SLUG --timeline` (evidence per month as a bar line, milestones marked) and
`tracker report weekly --show` (the week in the terminal, the Markdown file's content)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from tracker.outputs.timeline import BARS, buckets

from .conftest import DATA
from .test_review_loop import add, opened


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def test_buckets_count_each_month_and_leave_rejected_out() -> None:
    points = [
        (datetime(2024, 5, 20), "confirmed", "progress"),
        (datetime(2024, 5, 21), "pending", "neutral"),
        (datetime(2024, 7, 1), "rejected", "neutral"),
        (datetime(2024, 8, 31, 23), "confirmed", "setback"),
        (datetime(2023, 1, 1), "confirmed", "progress"),  # before the span: left out
    ]
    cols = buckets(date(2024, 5, 14), date(2024, 8, 2), points, width=80)
    assert [(b.start, b.total) for b in cols] == [
        (date(2024, 5, 1), 2),
        (date(2024, 6, 1), 0),
        (date(2024, 7, 1), 0),
        (date(2024, 8, 1), 1),
    ]
    assert (cols[0].confirmed_progress, cols[0].pending, cols[3].confirmed_setback) == (1, 1, 1)


def test_a_span_wider_than_the_terminal_groups_months() -> None:
    cols = buckets(date(2015, 1, 1), date(2026, 12, 31), [], width=40)
    assert len(cols) <= 40 and cols[0].months == 4 and cols[1].start == date(2015, 5, 1)


@pytest.fixture
def ferry(cli, db: str) -> str:  # type: ignore[no-untyped-def]
    """The other team's catalog: aktau-alat-ferry announced 2024-05-14, milestone 2 reached by
    curated evidence of 2024-09-02."""
    assert cli("catalog", "load", str(DATA / "other_catalog.toml")).code == 0
    d = opened(db)
    add(d, "aktau-alat-ferry", "p1", published_at=datetime(2024, 9, 3), title="Ferry a")
    add(d, "aktau-alat-ferry", "p2", published_at=datetime(2024, 9, 4), title="Ferry b")
    add(d, "aktau-alat-ferry", "r1", published_at=datetime(2024, 6, 1), review="rejected")
    return "aktau-alat-ferry"


def test_show_timeline_draws_months_and_marks_milestones(cli, ferry: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("show", ferry, "--timeline")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["aktau-alat-ferry", "⏸", "stalled"]
    assert lines[2].startswith(f"evidence per month, 2024-05 to {date.today():%Y-%m}: 3 items")
    bars, marks, years = lines[3], lines[4], lines[5]
    months = months_between(date(2024, 5, 1), date.today()) + 1
    assert len(bars.rstrip()) == months
    assert bars[4] == BARS[-1]  # September 2024: the curated item and two pending ones
    assert bars[1] == "·"  # June: only a rejected item
    assert marks.index("2") == 4 and marks.strip() == "2"
    assert years.startswith("2024") and "2025" in years
    assert years.index("2025") == months_between(date(2024, 5, 1), date(2025, 1, 1))
    assert " 1 vessels chartered: implied by a later milestone" in lines
    assert any(line.startswith(" 2 first sailing: 2024-09-02 (1403-06-12 ش)") for line in lines)
    assert " 3 weekly schedule: not reached" in r.out
    assert "\x1b[" not in r.out  # piped: plain text


def test_show_timeline_of_an_unknown_commitment_is_one_line(cli, db: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("show", "tabriz-baku-flght", "--timeline")
    assert r.code == 2 and "did you mean 'tabriz-baku-flight'?" in r.err


def test_report_weekly_show_has_the_markdown_s_content(cli, db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = opened(db)
    now = datetime.now() - timedelta(minutes=5)
    add(
        d,
        "tabriz-baku-flight",
        "w1",
        title="[bold]Flights[/bold] resume",
        created_at=now,
        published_at=now,
        publisher="IRNA",
    )
    year, week, _ = date.today().isocalendar()
    label = f"{year}-W{week:02d}"
    r = cli("report", "weekly", "--week", label, "--out", str(tmp_path), "--show")
    assert r.code == 0, r.err
    assert r.err.strip().splitlines()[-1] == str(tmp_path / f"{label}.md")
    markdown = (tmp_path / f"{label}.md").read_text(encoding="utf-8")
    headings = [h.removeprefix("## ") for h in re.findall(r"^## .*$", markdown, re.M)]
    assert len(headings) >= 6
    position = 0
    for heading in headings:  # every section, in the same order
        plain = heading.replace("`", "")
        found = r.out.find(plain, position)
        assert found >= 0, (heading, r.out)
        position = found
    assert "[bold]Flights[/bold] resume" in r.out  # markup stays text
    summary = re.search(r"^\*\*Summary:\*\* (.*)$", markdown, re.M)
    assert summary is not None and f"Summary: {summary.group(1)}" in r.out
    for slug in ("tabriz-baku-flight", "khodaafarin-crossing"):
        assert slug in r.out
