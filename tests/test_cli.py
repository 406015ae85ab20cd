"""The commands as a user runs them: output, exit codes, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import Result, errors, query, run_cli

SLUGS = [
    "joint-industrial-park",
    "reconstruction-engineering",
    "khodaafarin-crossing",
    "new-access-point",
    "tabriz-baku-flight",
    "health-tourism",
    "tourist-tours",
    "tractor-dealership",
]
ANSI = re.compile(r"\x1b\[")


def one_line_error(r: Result, code: int, *needles: str) -> None:
    assert r.code == code, (r.code, r.out, r.err)
    lines = errors(r.err).strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in r.err
    for n in needles:
        assert n in lines[0], lines[0]


def test_status_on_a_fresh_database_shows_every_commitment(cli, db: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("status")
    assert r.code == 0, r.err
    for slug in SLUGS:
        assert slug in r.out
    assert query(db, "SELECT COUNT(*) FROM commitment") == [(8,)]
    assert not ANSI.search(r.out)  # not a terminal: plain text
    assert "…" not in r.out  # nothing cut off
    assert "waiting for review" in r.out


def test_bare_tracker_runs_status(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli()
    assert r.code == 0
    assert "tabriz-baku-flight" in r.out


def test_status_json_and_filters(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli("status", "--json").out)
    assert [c["slug"] for c in data["commitments"]] == SLUGS
    flight = next(c for c in data["commitments"] if c["slug"] == "tabriz-baku-flight")
    # Delivered in December 2025, then suspended with Iran's airspace closed from 28 Feb 2026.
    assert flight["status"] == "partially_delivered"
    assert flight["milestones_reached"] == flight["milestones_total"]
    only = json.loads(cli("status", "--json", "--status", "stalled").out)
    assert {c["slug"] for c in only["commitments"]} == {
        c["slug"] for c in data["commitments"] if c["status"] == "stalled"
    }
    assert only["commitments"]
    assert json.loads(cli("status", "--json", "--agreement", "nope-x").out or "{}") == {}


def test_show_card(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("show", "tabriz-baku-flight")
    assert r.code == 0, r.err
    assert "برقراری خط پروازی تبریز" in r.out  # the Persian quote
    assert "Milestones" in r.out and "History" in r.out and "Evidence" in r.out
    assert re.search(r"20\d\d-\d\d-\d\d \(14\d\d-\d\d-\d\d ش\)", r.out)  # ISO with Jalali beside


def test_evidence_add_review_and_override_cycle(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "evidence",
        "add",
        "tractor-dealership",
        "--url",
        "https://example.org/itmco-office",
        "--title",
        "ITMCO opens a sales office in Baku",
        "--date",
        "2026-01-10",
        "--milestone",
        "1",
        "--note",
        "seen by our correspondent",
    )
    assert r.code == 0, r.err
    ev_id = int(re.search(r"#(\d+)", r.out).group(1))  # type: ignore[union-attr]
    card = cli("show", "tractor-dealership").out
    assert "ITMCO opens a sales office in Baku" in card
    dup = cli(
        "evidence",
        "add",
        "tractor-dealership",
        "--url",
        "https://www.example.org/itmco-office#x",
        "--title",
        "again",
        "--date",
        "2026-01-10",
    )
    one_line_error(dup, 2, f"#{ev_id}", "already records this URL")

    r = cli("set-status", "tractor-dealership", "broken", "--reason", "ITMCO denies any plan")
    assert r.code == 0, r.err
    assert "→ broken (override)" in r.out
    data = json.loads(cli("export").out)
    c = next(c for c in data["commitments"] if c["slug"] == "tractor-dealership")
    assert c["status"] == "broken"
    assert c["history"][-1]["kind"] == "override"
    assert c["history"][-1]["reason"] == "ITMCO denies any plan"
    assert c["history"][-1]["by"] == "tester"
    r = cli("set-status", "tractor-dealership", "--clear")
    assert r.code == 0, r.err
    c = next(
        c for c in json.loads(cli("export").out)["commitments"] if c["slug"] == "tractor-dealership"
    )
    assert c["status"] != "broken"
    assert [h["kind"] for h in c["history"]][-2:] == ["override", "clear"]


def test_review_confirm_and_reject(cli, db: str) -> None:  # type: ignore[no-untyped-def]
    cli("status")
    ((cid,),) = query(db, "SELECT id FROM commitment WHERE slug='khodaafarin-crossing'")
    for i, title in enumerate(["Aghband crossing opens", "Khudafarin dam turbines"], start=1):
        query(
            db,
            "INSERT INTO evidence (commitment_id, url, canonical_url, title, summary, title_key, published_at,"
            " source, language, stance, review, matched_terms, score, created_at, cancels, revision)"
            " VALUES (:cid, :url, :url, :title, '', '', '2026-11-20 10:00:00', 'trend-en', 'en', 'neutral',"
            " 'pending', '[\"Aghband\"]', 1.0, '2026-11-20 10:00:00', FALSE, 0)",
            {"cid": cid, "url": f"https://example.az/{i}", "title": title},
        )
    ids = [r[0] for r in query(db, "SELECT id FROM evidence WHERE review='pending' ORDER BY id")]
    listing = cli("review")
    assert "2 evidence waiting for review" in listing.out
    assert "Aghband crossing opens" in listing.out
    ok = cli("review", "confirm", str(ids[0]), "--milestone", "4", "--stance", "progress")
    assert ok.code == 0, ok.err
    no = cli("review", "reject", str(ids[1]), "--reason", "about the dam")
    assert no.code == 0, no.err
    assert cli("review").out.strip() == "nothing waiting for review"
    again = cli("review", "reject", str(ids[0]), "--reason", "changed my mind")
    assert "had already been confirmed by tester" in again.out
    rows = query(
        db,
        "SELECT review, review_reason FROM evidence WHERE id IN (:a, :b) ORDER BY id",
        {"a": ids[0], "b": ids[1]},
    )
    assert rows == [("rejected", "changed my mind"), ("rejected", "about the dam")]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["show", "tabriz-baku-flihgt"],
            ["unknown commitment", "did you mean 'tabriz-baku-flight'"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "not a url",
                "--title",
                "x",
                "--date",
                "2025-01-01",
            ],
            ["http(s) URL"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "ftp://x.org/a",
                "--title",
                "x",
                "--date",
                "2025-01-01",
            ],
            ["http(s) URL"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "https://x.org/a",
                "--title",
                "x",
                "--date",
                "2025-13-01",
            ],
            ["--date must be YYYY-MM-DD"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "https://x.org/a",
                "--title",
                "x",
                "--date",
                "2025-01-01",
                "--stance",
                "great",
            ],
            ["unknown stance"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "https://x.org/a",
                "--title",
                "x",
                "--date",
                "2025-01-01",
                "--milestone",
                "9",
            ],
            ["milestone must be between 1 and"],
        ),
        (
            [
                "evidence",
                "add",
                "tabriz-baku-flight",
                "--url",
                "https://x.org/a",
                "--title",
                "x",
                "--date",
                "2999-01-01",
            ],
            ["in the future"],
        ),
        (
            ["set-status", "tabriz-baku-flight", "finished", "--reason", "x"],
            ["unknown status 'finished'"],
        ),
        (["set-status", "tabriz-baku-flight", "broken"], ["a reason is required"]),
        (["set-status", "tabriz-baku-flight"], ["either a STATUS"]),
        (["status", "--status", "done"], ["unknown status 'done'"]),
        (["status", "--agreement", "nope"], ["unknown agreement 'nope'"]),
        (["review", "confirm", "999999"], ["no evidence with id 999999"]),
        (["review", "confirm", "abc"], ["valid integer", "evidence_id"]),
        (["export", "--format", "xml"], ["--format must be json or csv"]),
        (["catalog", "load", "missing.toml"], ["catalog missing.toml: no such file"]),
        (["frobnicate"], ["No such command 'frobnicate'"]),
        (["status", "--colour"], ["No such option"]),
    ],
)
def test_user_errors_are_one_line_and_exit_2(cli, args: list[str], needles: list[str]) -> None:  # type: ignore[no-untyped-def]
    one_line_error(cli(*args), 2, *needles)


def test_environment_errors_exit_1(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("hello")
    one_line_error(run_cli("--db", str(notes), "status"), 1, "not a SQLite database")
    one_line_error(
        run_cli("--db", str(tmp_path / "no" / "x.db"), "status"), 1, "directory does not exist"
    )
    assert notes.read_text() == "hello"


def test_markup_in_titles_is_shown_literally(cli) -> None:  # type: ignore[no-untyped-def]
    title = "[bold red]x[/bold red] \u202eevil\u202c <b>y</b>"
    r = cli(
        "evidence",
        "add",
        "health-tourism",
        "--url",
        "https://example.org/m",
        "--title",
        title,
        "--date",
        "2025-05-05",
        "--stance",
        "neutral",
    )
    assert r.code == 0, r.err
    out = cli("show", "health-tourism").out
    assert "[bold red]x[/bold red]" in out
    assert "\u202e" not in out and "\\u202e" in out
    assert "<b>y</b>" in out


def test_export_json_matches_documented_schema(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli("export", "--format", "json").out)
    assert set(data) >= {"generated_at", "agreements", "commitments"}
    c = data["commitments"][0]
    assert set(c) >= {
        "slug",
        "agreement",
        "title",
        "status",
        "explanation",
        "flags",
        "milestones",
        "history",
        "evidence",
    }
    e = next(e for c in data["commitments"] for e in c["evidence"])
    assert set(e) >= {
        "id",
        "url",
        "title",
        "published_at",
        "source",
        "language",
        "stance",
        "milestone",
        "review",
        "matched_terms",
    }


def test_export_csv(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import csv

    out = tmp_path / "e.csv"
    r = cli("export", "--format", "csv", "--output", str(out))
    assert r.code == 0, r.err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and {r["review"] for r in rows} == {"confirmed"}
    assert {r["commitment"] for r in rows} <= set(SLUGS)


def test_console_script_and_module_entry(tmp_path: Path) -> None:
    r = run_cli("--help")
    assert r.code == 0
    for cmd in (
        "status",
        "show",
        "evidence",
        "review",
        "set-status",
        "export",
        "catalog",
        "refresh",
        "sources",
    ):
        assert cmd in r.out
    r = run_cli("status", env={"TRACKER_DB": str(tmp_path / "x.db")})
    assert r.code == 0, r.err
    assert "khodaafarin-crossing" in r.out


def test_show_limits_the_evidence_list_and_says_so(cli) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        r = cli(
            "evidence",
            "add",
            "tourist-tours",
            "--url",
            f"https://example.org/tour/{i}",
            "--title",
            f"Tour number {i}",
            "--date",
            f"2025-0{i + 1}-01",
            "--stance",
            "neutral",
        )
        assert r.code == 0, r.err
    out = cli("show", "tourist-tours", "--limit", "2").out
    assert "Evidence (3), newest first; showing 2 (--limit)" in out
    assert "Tour number 2" in out and "Tour number 1" in out and "Tour number 0" not in out
    assert "showing" not in cli("show", "tourist-tours").out
