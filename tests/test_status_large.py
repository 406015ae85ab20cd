"""`tracker status` over a long register (issue 15): every commitment listed, web and catalog text
inert, and the table drawn by `terminal.LongTable` exactly as rich's own Table draws it.

How fast it is lives in the benchmark (tests/bench/run.py, "`tracker status` with 1,000 more
commitments"), not here.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from rich.segment import Segment

from tracker.outputs import terminal
from tracker.status import Digest, Verdict
from tracker.store.records import CommitmentRecord, Row
from tracker.vocab import SYMBOLS

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 30)
HOSTILE = [
    "[bold red]markup[/bold red] [link=https://evil.example]click[/link]",
    "\x1b[2J\x1b]8;;https://evil.example\x07cleared\x1b[0m",
    "line one\nline two\r\nthree",
    "tab\tseparated\tvalues",
    "\u202eevil bidi override\u202c and :smile: emoji code",
    "Təbriz–Bakı 大桥建设 工程 と 日本語の文字列",
    "e\u0301\u0301\u0301 combining marks " * 3,
    "a" * 70,
    "",
    " spaces around ",
]


def _row(rng: random.Random, n: int) -> Row:
    status = rng.choice(sorted(SYMBOLS))
    words = ["bridge", "crossing", "Araz", "power", "line", "hospital", "Nakhchivan", "corridor"]
    title = " ".join(rng.choice(words) for _ in range(rng.randint(1, 14)))
    if n % 7 == 0:
        title = HOSTILE[(n // 7) % len(HOSTILE)]
    milestones = [
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 9)))
        for _ in range(rng.randint(1, 5))
    ]
    if n % 11 == 0:
        milestones[0] = HOSTILE[(n // 11) % len(HOSTILE)]
    progress = rng.randint(0, len(milestones))
    commitment = CommitmentRecord(
        id=n,
        slug=f"other-{n:04d}" if n % 13 else f"[red]slug-{n}[/red]",
        agreement_id=1,
        agreement_slug="other",
        position=n,
        title=title,
        description="",
        quote="",
        parties=[],
        announced_on=TODAY - timedelta(days=rng.randint(0, 2000)),
        deadline=None,
        stall_days=None,
        override_status=None,
        override_reason=None,
        override_by=None,
        override_at=None,
    )
    last = TODAY - timedelta(days=rng.randint(0, 900)) if rng.random() < 0.6 else None
    digest = Digest(pending=rng.choice([0, 0, 1, 12, 1234]), last_evidence=last)
    flags = tuple(f for f in ("overdue", "contested", "stale") if rng.random() < 0.25)
    verdict = Verdict(status, "why", flags, progress, status)
    return Row(commitment, "other", milestones, digest, verdict)


def _rows(count: int, seed: int = 15) -> list[Row]:
    rng = random.Random(seed)
    return [_row(rng, n) for n in range(count)]


def _draw(renderable: object, width: int, colour: bool) -> str:
    out = io.StringIO()
    Console(
        file=out,
        width=width,
        force_terminal=colour,
        no_color=not colour,
        color_system="truecolor" if colour else None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    ).print(renderable)
    return out.getvalue()


def _both(rows: list[Row]) -> tuple[object, object]:
    """The same rows as rich's Table and as LongTable."""
    rich_table = terminal.status_table(rows, TODAY, 7, long_from=len(rows) + 1)
    long_table = terminal.status_table(rows, TODAY, 7, long_from=1)
    assert type(rich_table).__name__ == "Table"
    assert isinstance(long_table, terminal.LongTable)
    return rich_table, long_table


@pytest.mark.parametrize("count", [1, 2, 3, 150])
@pytest.mark.parametrize("width", [240, 120, 80, 50, 40, 24])
@pytest.mark.parametrize("colour", [False, True])
def test_long_table_draws_what_rich_draws(count: int, width: int, colour: bool) -> None:
    rich_table, long_table = _both(_rows(count))
    assert _draw(long_table, width, colour) == _draw(rich_table, width, colour)


@pytest.mark.parametrize("width", [240, 120, 80, 50])
def test_long_table_draws_the_rows_itself(width: int) -> None:
    """Not by handing them back to rich's Table (as it does on a terminal too narrow for all
    seven columns), or the comparison above would prove nothing."""
    _, long_table = _both(_rows(150))
    console = Console(file=io.StringIO(), width=width)
    drawn = list(long_table.__rich_console__(console, console.options))  # type: ignore[attr-defined]
    assert drawn and all(isinstance(part, Segment) for part in drawn)


def test_long_table_leaves_the_table_to_rich_if_rich_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LongTable uses rich's non-public layout methods; a rich release without them must cost
    speed, not the status view."""
    from rich.table import Table

    rich_table, long_table = _both(_rows(150))
    expected = _draw(rich_table, 120, False)
    monkeypatch.delattr(Table, "_calculate_column_widths")
    console = Console(file=io.StringIO(), width=120)
    drawn = list(long_table.__rich_console__(console, console.options))  # type: ignore[attr-defined]
    assert [type(part).__name__ for part in drawn] == ["Table"]
    monkeypatch.undo()  # rich's Table itself needs the method to draw
    assert _draw(drawn[0], 120, False) == expected


def test_a_long_register_lists_every_commitment_and_keeps_text_inert() -> None:
    rows = _rows(terminal.LONG_TABLE_ROWS + 50)
    table = terminal.status_table(rows, TODAY, 7)
    assert isinstance(table, terminal.LongTable)
    text = _draw(table, 240, colour=False)
    for row in rows:
        assert terminal.terminal(row.commitment.slug) in text
    assert "[bold red]markup[/bold red]" in text  # printed, not obeyed
    assert "[red]slug-0[/red]" in text
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    coloured = _draw(table, 120, colour=True)
    assert "\x1b[2J" not in coloured and "\x1b]8;;" not in coloured


def test_status_lists_every_commitment_of_a_long_catalog(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.toml"
    made = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bench" / "catalog.py"), "--commitments", "150"],
        capture_output=True,
        text=True,
        check=True,
    )
    other.write_text(made.stdout, encoding="utf-8")
    assert cli("catalog", "load", str(other)).code == 0
    r = cli("status")
    assert r.code == 0, r.err
    import json

    slugs = [c["slug"] for c in json.loads(cli("status", "--json").out)["commitments"]]
    assert len(slugs) >= 158
    lines = r.out.splitlines()
    for slug in slugs:
        assert sum(line.split()[:1] == [slug] for line in lines) == 1, slug
