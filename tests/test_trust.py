"""The register says only what the evidence supports (issue 11): one test per class of defect,
through the real commands, on SQLite and PostgreSQL (the `cli` fixture)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from .conftest import DATA, Result, errors, query, run_cli

Cli = Callable[..., Result]


def one_error(r: Result, code: int, *needles: str) -> str:
    lines = errors(r.err).strip().splitlines()
    assert r.code == code, (r.code, r.out, r.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- 1. ownership of commitments


def test_a_catalog_cannot_take_over_another_agreements_commitment(
    cli: Cli, db: str, tmp_path: Path
) -> None:
    cli("status")
    before = query(db, "SELECT slug, title, agreement_id FROM commitment ORDER BY id")
    text = (DATA / "other_catalog.toml").read_text(encoding="utf-8")
    hijack = tmp_path / "hijack.toml"
    hijack.write_text(text.replace('slug = "aktau-alat-ferry"', 'slug = "tabriz-baku-flight"'))
    one_error(
        cli("catalog", "load", str(hijack)),
        2,
        "'tabriz-baku-flight'",
        "'eaz-azerbaijan-2022'",
        "'caspian-ferry-2024'",
    )
    assert query(db, "SELECT slug, title, agreement_id FROM commitment ORDER BY id") == before
    assert query(db, "SELECT COUNT(*) FROM agreement") == [(1,)]  # nothing written at all
    # The owner itself may still update it: loading the built-in catalog again is fine.
    ok = cli("catalog", "load", str(DATA / "other_catalog.toml"))
    assert ok.code == 0, ok.err


# ---------------------------------------------------------------- 2. status rules, end to end


def test_recent_confirmed_progress_is_in_progress_however_old_the_promise(cli: Cli) -> None:
    three_days_ago = (date.today() - timedelta(days=3)).isoformat()
    r = cli(
        "evidence", "add", "health-tourism", "--url", "https://example.org/ht/1",
        "--title", "Tabriz clinics sign up patients from Baku", "--date", three_days_ago,
    )  # fmt: skip
    assert r.code == 0, r.err
    (row,) = [
        c for c in json.loads(cli("status", "--json").out)["commitments"]
        if c["slug"] == "health-tourism"
    ]  # fmt: skip
    assert row["status"] == "in_progress"
    assert "3 days ago" in row["explanation"] and "evidence #" in row["explanation"]


# ---------------------------------------------------------------- 3. a replayed day


def test_a_replayed_day_sees_only_its_own_past(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("status")
    monkeypatch.setenv("TRACKER_TODAY", "2025-08-01")
    data = json.loads(cli("status", "--json").out)
    flight = next(c for c in data["commitments"] if c["slug"] == "tabriz-baku-flight")
    # Iran Air's first flight (29 Jul 2025) was the newest milestone then; AZAL came in September.
    assert flight["status"] == "in_progress"
    assert flight["milestones_reached"] == 3
    assert "2025-12" not in flight["explanation"] and "2026" not in flight["explanation"]
    exported = json.loads(cli("export").out)
    for c in exported["commitments"]:
        assert all(e["published_at"] <= "2025-08-02" for e in c["evidence"])
    shown = cli("show", "tabriz-baku-flight").out
    assert "2025-12-23" not in shown
    for text in (json.dumps(data), json.dumps(exported), shown, cli("status").out):
        assert "-1 day" not in text and not any(f"-{n} day" in text for n in range(2, 400))


# ---------------------------------------------------------------- 4. one meaning of milestones


def test_a_later_milestone_implies_the_earlier_ones_everywhere(cli: Cli, tmp_path: Path) -> None:
    r = cli(
        "evidence", "add", "tractor-dealership", "--url", "https://example.org/itmco/baku",
        "--title", "ITMCO opens a dealership in Baku", "--date", "2026-11-20", "--milestone", "3",
    )  # fmt: skip
    assert r.code == 0, r.err
    status = json.loads(cli("status", "--json").out)
    (s,) = [c for c in status["commitments"] if c["slug"] == "tractor-dealership"]
    assert s["milestones_reached"] == 3
    export = json.loads(cli("export").out)
    (c,) = [c for c in export["commitments"] if c["slug"] == "tractor-dealership"]
    assert [(m["reached"], m["implied"]) for m in c["milestones"]] == [
        (True, True),
        (True, True),
        (True, False),
    ]
    assert c["milestones"][0]["reached_on"] is None and c["milestones"][2]["reached_on"]
    assert "implied by a later milestone" in cli("show", "tractor-dealership").out
    out = tmp_path / "r"
    cli("report", "weekly", "--week", "2026-W47", "--out", str(out))
    assert "3/3: Office or dealership open" in (out / "2026-W47.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- 5. bad data refused at load

GOOD = (DATA / "other_catalog.toml").read_text(encoding="utf-8")
BAD_CATALOGS = [
    (GOOD.replace("format = 1\n", "format = 1\ncolour = 'red'\n"), "unknown field 'colour'"),
    (GOOD.replace("format = 1\n", ""), "missing field 'format'"),
    (GOOD.replace('language = "en"', 'language = "de"', 1), "'language' must be one of"),
    (
        GOOD.replace("announced_on = 2024-05-14", "announced_on = 2024-05-14T10:00:00"),
        "a date and time",
    ),
    (GOOD.replace("deadline = 2025-12-31", "deadline = 2023-12-31"), "before 'announced_on'"),
    (GOOD.replace('title = "Aktau–Alat ferry line"', 'titel = "x"\ntitle = "y"'), "'titel'"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_CATALOGS)
def test_a_bad_catalog_is_refused_whole(
    cli: Cli, db: str, tmp_path: Path, text: str, needle: str
) -> None:
    cli("status")
    before = query(db, "SELECT COUNT(*) FROM commitment")
    path = tmp_path / "their.toml"
    path.write_text(text, encoding="utf-8")
    one_error(cli("catalog", "load", str(path)), 2, needle)
    assert query(db, "SELECT COUNT(*) FROM commitment") == before


def test_curated_evidence_may_not_come_from_the_future_or_cancel_with_progress(
    cli: Cli, tmp_path: Path
) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    item = (
        '\n[[agreement.commitment.evidence]]\ndate = {d}\ntitle = "x"\n'
        'url = "https://example.org/x"\nstance = "{s}"\ncancels = {c}\n'
    )
    for d, s, c, needle in (
        (future, "neutral", "false", "is in the future"),
        ("2024-06-01", "progress", "true", "cannot be 'progress'"),
    ):
        path = tmp_path / "c.toml"
        path.write_text(GOOD + item.format(d=d, s=s, c=c), encoding="utf-8")
        one_error(cli("catalog", "load", str(path)), 2, needle)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ('kind = "gdelt"\nlanguage = "en"\nmaxrecords = 100000', "maxrecords"),
        (
            'kind = "opensky"\nlanguage = "en"\ncommitment = "tabriz-baku-flight"\nmilestone = 9',
            "'milestone' must be between 1 and 5",
        ),
        (
            'kind = "page"\nlanguage = "en"\nurl = "https://example.org/p"\ncommitment = "nope"',
            "no commitment 'nope'",
        ),
    ],
)
def test_a_bad_source_is_refused_when_loaded(
    cli: Cli, tmp_path: Path, source: str, needle: str
) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(f'[[source]]\nname = "s"\n{source}\n', encoding="utf-8")
    for command in ("refresh", "sources"):
        one_error(cli(command, "--sources", str(path)), 2, needle)


# ---------------------------------------------------------------- 6. nothing drives the terminal

HOSTILE = "a\x1b[2Jb\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\u202eevil\x9b31m"


def test_arguments_echoed_in_errors_are_inert(cli: Cli) -> None:
    for args in (
        ["show", HOSTILE],
        ["status", "--status", HOSTILE],
        ["status", "--agreement", HOSTILE],
        ["review", "--commitment", HOSTILE],
        ["review", "confirm", "1", "--stance", HOSTILE],
        ["set-status", HOSTILE, "--clear"],
        ["refresh", "--only", HOSTILE],
    ):
        r = cli(*args)
        assert r.code == 2, (args, r.err)
        for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert raw not in r.err + r.out, (args, r.err)


def test_export_to_a_terminal_is_inert_and_to_a_file_exact(cli: Cli, tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    r = cli(
        "evidence", "add", "tourist-tours", "--url", "https://example.org/tours/1",
        "--title", "=HYPERLINK(\"x\") " + HOSTILE, "--date", "2026-11-01",
    )  # fmt: skip
    assert r.code == 0, r.err
    for fmt in ("csv", "json"):
        primary, secondary = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "export", "--format", fmt],
            stdout=secondary,
            stderr=subprocess.PIPE,
            env=dict(os.environ, COLUMNS="200"),
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(60)
        os.close(primary)
        shown = b"".join(chunks).decode("utf-8")
        assert proc.returncode == 0
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in shown, fmt
    out = tmp_path / "x.csv"
    assert cli("export", "--format", "csv", "-o", str(out)).code == 0
    data = out.read_text(encoding="utf-8")
    assert (
        "'=HYPERLINK" in data and "\u202e" in data
    )  # a file gets the data, neutralised for sheets


# ---------------------------------------------------------------- 7. nothing dropped silently


def test_refresh_counts_every_item_it_did_not_store(cli: Cli, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    items = [
        ("Tabriz–Baku flights resume twice a week", "https://example.org/a/1"),
        ("Tabriz–Baku flights resume twice a week, says AZAL", "javascript:alert(1)"),
        ("Weather in Tehran", "https://example.org/a/2"),
        ("Iran Air adds Tabriz–Baku flight", "file:///etc/passwd"),
    ]
    body = "".join(
        f"<item><title>{t}</title><link>{u.replace('&', '&amp;')}</link>"
        "<pubDate>Mon, 23 Nov 2026 09:00:00 GMT</pubDate></item>"
        for t, u in items
    )
    httpserver.expect_request("/feed").respond_with_data(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>',
        content_type="application/rss+xml",
    )
    src = tmp_path / "s.toml"
    src.write_text(
        f'[[source]]\nname = "wire"\nkind = "rss"\nlanguage = "en"\n'
        f'url = "{httpserver.url_for("/feed")}"\n',
        encoding="utf-8",
    )
    r = cli("refresh", "--sources", str(src), "--json")
    data = json.loads(r.out)
    seen, new = data["items_seen"], data["new_evidence"]
    assert seen == 4 and new == 1, data
    assert sum(data["skipped"].values()) == seen - new, data["skipped"]
    assert data["skipped"].get("about no commitment") == 1
    sources = json.loads(cli("sources", "--sources", str(src), "--json").out)["sources"]
    assert sum(sources[0]["skipped"].values()) == 3
    again = cli("refresh", "--sources", str(src), "--force")
    assert "not stored:" in again.out and "already recorded" in again.out


# ---------------------------------------------------------------- 8. exit codes


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["report", "weekly", "--week", "0001-W01"], 2, "between 1900 and 9998"),
        (
            [
                "evidence", "add", "tourist-tours", "--url", "https://example.org/t",
                "--title", "t", "--date", "20261120",
            ],
            2,
            "must be YYYY-MM-DD",
        ),
        (["--db", "", "status"], 2, "--db must name a database"),
    ],
)  # fmt: skip
def test_user_errors_exit_2(cli: Cli, args: list[str], code: int, needle: str) -> None:
    one_error(cli(*args), code, needle)


def test_an_unwritable_output_is_an_environment_error(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(cli("export", "-o", str(blocker / "x.json")), 1, "cannot write")
    one_error(cli("report", "weekly", "--out", str(blocker / "reports")), 1, "cannot write")


# ---------------------------------------------------------------- 10. no change that isn't one


def test_clearing_no_override_changes_nothing(cli: Cli, db: str) -> None:
    cli("status")
    before = query(db, "SELECT COUNT(*) FROM status_history")
    r = cli("set-status", "tourist-tours", "--clear")
    assert r.code == 0 and "has no override to clear" in r.out
    assert query(db, "SELECT COUNT(*) FROM status_history") == before


# ---------------------------------------------------------------- 11. a coherent weekly report


def test_curated_evidence_is_the_starting_record_not_news(cli: Cli, tmp_path: Path) -> None:
    cli("status")
    today = date.today()
    week = f"{today.isocalendar().year}-W{today.isocalendar().week:02d}"
    r = cli("report", "weekly", "--week", week, "--out", str(tmp_path))
    text = (tmp_path / f"{week}.md").read_text(encoding="utf-8")
    assert r.code == 0
    assert "0 new evidence" in text


# ---------------------------------------------------------------- 12. first use is visible


def test_creating_a_database_says_so_once(tmp_path: Path) -> None:
    first = run_cli("status", cwd=tmp_path)
    assert first.code == 0
    assert first.err.count("created ") == 1
    assert "with 8 commitments from the built-in catalog" in first.err
    second = run_cli("status", cwd=tmp_path)
    assert "created " not in second.err


# ---------------------------------------------------------------- 13. show tells the whole story


def test_show_gives_notes_rejections_and_sources(cli: Cli) -> None:
    shown = cli("show", "tractor-dealership").out
    assert "note: " in shown  # curated notes
    assert "curated" in shown


# ---------------------------------------------------------------- 9. read-only is not broken


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A folder whose database this process may read but not write, and how to make it so.

    As root, file permissions do not stop writes: the folder is then a tmpfs mounted read-only
    (the way a backup volume or a colleague's share is); otherwise a folder without write
    permission."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:

        def lock() -> None:
            (folder / "c.db").chmod(stat.S_IRUSR)
            folder.chmod(stat.S_IRUSR | stat.S_IXUSR)

        yield folder, lock
        folder.chmod(stat.S_IRWXU)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")

    def remount() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    try:
        yield folder, remount
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("clean", [True, False], ids=["checkpointed", "with-its-log"])
def test_a_read_only_database_is_read(
    read_only_folder: tuple[Path, Callable[[], None]], tmp_path: Path, clean: bool
) -> None:
    folder, lock = read_only_folder
    db = folder / "c.db"
    assert run_cli("--db", str(db), "status").code == 0
    if clean:  # no -wal or -shm left: SQLite cannot create its -shm in a read-only folder
        import sqlite3

        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    lock()
    for args in (
        ["status"],
        ["show", "tabriz-baku-flight"],
        ["review"],
        ["export"],
        ["report", "weekly", "--week", "2026-W47", "--out", str(tmp_path / "reports")],
    ):
        r = run_cli("--db", str(db), *args)
        assert r.code == 0, (args, r.err)
        assert errors(r.err) == ""
    r = run_cli("--db", str(db), "set-status", "tourist-tours", "broken", "--reason", "x")
    assert r.code == 1 and "is read-only" in r.err and "not a usable database" not in r.err


# ---------------------------------------------------------------- the record corrected (issue 19)


def test_a_corrected_catalog_withdraws_what_it_no_longer_holds(
    cli: Cli, db: str, tmp_path: Path
) -> None:
    """An item the catalog drops stops counting (rejected by 'catalog', with the reason), and
    comes back if the catalog brings it back; nothing is deleted."""
    path = tmp_path / "theirs.toml"
    item = (
        '\n[[agreement.commitment.evidence]]\ndate = 2024-09-02\ntitle = "First ferry sails"\n'
        'url = "https://example.org/news/second-sailing"\nlanguage = "en"\nstance = "progress"\n'
        "milestone = 2\n"
    )
    second = '\n[[agreement.commitment]]\nslug = "joint-container-terminal"'
    head, _, tail = GOOD.partition(second)
    assert tail, "the test catalog's second commitment moved"
    with_item = head + item + second + tail
    path.write_text(with_item, encoding="utf-8")
    assert cli("catalog", "load", str(path)).code == 0
    ((review,),) = query(db, "SELECT review FROM evidence WHERE url LIKE '%second-sailing'")
    assert review == "confirmed"
    path.write_text(GOOD, encoding="utf-8")
    assert cli("catalog", "load", str(path)).code == 0
    ((review, by, reason),) = query(
        db,
        "SELECT review, reviewed_by, review_reason FROM evidence WHERE url LIKE '%second-sailing'",
    )
    assert (review, by) == ("rejected", "catalog") and "withdrawn from the catalog" in reason
    path.write_text(with_item, encoding="utf-8")
    assert cli("catalog", "load", str(path)).code == 0
    assert query(db, "SELECT review FROM evidence WHERE url LIKE '%second-sailing'") == [
        ("confirmed",)
    ]
