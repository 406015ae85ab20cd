"""Scheduling: crontab lines that really run, and the daemon as a real process with a real feed."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tracker.errors import UsageError
from tracker.schedule import cron_plan, parse_cron, tracker_command

from .conftest import errors

try:
    from .smtp_sink import SmtpSink, silent_server
    from .test_report import make_world
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from smtp_sink import SmtpSink, silent_server  # type: ignore[no-redef]
    from test_report import make_world  # type: ignore[no-redef]

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [a-z-]+: ")
REFRESH_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ refresh: (\d+) ok, (\d+) failed, (\d+) new evidence"
)
HTTP_ENV = {
    "TRACKER_HTTP_MAX_RETRIES": "0",
    "TRACKER_HTTP_BACKOFF_BASE": "0.01",
    "TRACKER_HTTP_DEADLINE": "5",
    "TRACKER_HTTP_CONNECT_TIMEOUT": "2",
    "TRACKER_HTTP_READ_TIMEOUT": "2",
}


def rss_feed() -> str:
    now = datetime.now(UTC)
    items = [
        (
            "Iran Air launches Tabriz-Baku flights",
            "https://example.ir/news/1",
            "The first Tabriz to Baku flight landed on Tuesday.",
        ),
        ("Wheat prices rise in Europe", "https://example.org/news/3", "Markets moved."),
    ]
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><description>{d}</description>"
        f"<guid>{link}</guid><pubDate>{format_datetime(now - timedelta(hours=i + 1))}</pubDate>"
        "</item>"
        for i, (t, link, d) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>Example</title><link>https://example.org/</link><description>x</description>"
        f"{body}</channel></rss>"
    )


@pytest.fixture
def feed(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/feed.xml").respond_with_data(
        rss_feed(), content_type="application/rss+xml"
    )
    return httpserver.url_for("/feed.xml")


def write_sources(path: Path, url: str) -> Path:
    path.write_text(
        f'[[source]]\nname = "local-feed"\nkind = "rss"\nurl = "{url}"\n'
        'language = "en"\ncountry = "IR"\n',
        encoding="utf-8",
    )
    return path


def scraped_evidence(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT e.url, e.source FROM evidence e WHERE e.source = 'local-feed' ORDER BY e.id"
        ).fetchall()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    env.update(HTTP_ENV)
    env.update(extra)
    return env


# ---------------------------------------------------------------- crontab


def crontab_entries(text: str) -> list[tuple[list[str], str]]:
    """(five schedule fields, command) for every job line; comments and VAR=value lines skipped."""
    entries = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            continue
        parts = line.split(None, 5)
        assert len(parts) == 6, line
        entries.append((parts[:5], parts[5]))
    return entries


def shell_command(cron_command: str) -> str:
    # What cron does with the command part: an unescaped % would be a newline, \% is a %.
    assert not re.search(r"(?<!\\)%", cron_command)
    return cron_command.replace("\\%", "%")


def test_cron_lines_parse_and_use_absolute_paths(
    cli: Any, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "://" in db:
        pytest.skip("SQLite paths are the subject here")
    sources = write_sources(tmp_path / "sources.toml", "https://example.org/feed.xml")
    monkeypatch.setenv("TRACKER_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "never-printed-secret")
    monkeypatch.setenv("TRACKER_MAIL_TO", "a@example.org, b@example.org")
    result = cli("cron", "--sources", "sources.toml")
    assert result.code == 0, result.err
    text = result.out
    assert "never-printed-secret" not in text
    assert "TRACKER_SMTP_HOST=smtp.example.org\n" in text
    assert "TRACKER_MAIL_TO=a@example.org, b@example.org\n" in text
    assert "# TRACKER_SMTP_PASSWORD is set in your shell and deliberately not printed" in text
    (refresh, refresh_cmd), (report, report_cmd) = crontab_entries(text)
    assert refresh == ["17", "*", "*", "*", "*"]
    assert report == ["30", "6", "*", "*", "1"]
    for fields in (refresh, report):
        parse_cron(" ".join(fields))  # valid crontab fields
    exe = " ".join(tracker_command())
    db_abs = str(Path(db).absolute())
    assert refresh_cmd == (
        f"cd {tmp_path} && {exe} --db {db_abs} refresh --quiet --sources {sources}"
    )
    assert report_cmd == (
        f"cd {tmp_path} && {exe} --db {db_abs} report weekly --out {tmp_path / 'reports'} "
        f"--sources {sources} --email >/dev/null"
    )
    assert Path(tracker_command()[0]).is_absolute()


def test_cron_report_line_runs_and_mails(
    db_path: Path, tmp_path: Path, feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work dir %x"  # a space and a percent sign, both must survive cron
    work.mkdir()
    sources = write_sources(tmp_path / "sources.toml", feed)
    plan = cron_plan(db_arg=str(db_path), sources=sources, workdir=work, env={})
    (_, refresh_cmd), (_, report_cmd) = crontab_entries(plan.text())
    assert "\\%x" in report_cmd
    # cron's environment is bare: only what the crontab sets, plus HOME/PATH/SHELL.
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **HTTP_ENV}
    refreshed = subprocess.run(
        ["sh", "-c", shell_command(refresh_cmd)],
        env=bare,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout == ""  # --quiet: nothing for cron to mail
    assert scraped_evidence(db_path) == [("https://example.ir/news/1", "local-feed")]
    with SmtpSink(workdir=tmp_path) as sink:
        reported = subprocess.run(
            ["sh", "-c", shell_command(report_cmd)],
            env={**bare, **sink.env()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reported.returncode == 0, reported.stderr
        assert reported.stdout == "" and reported.stderr == ""
        (got,) = sink.wait_for(1)
    (written,) = (work / "reports").iterdir()
    assert re.fullmatch(r"\d{4}-W\d\d\.md", written.name)
    assert got.message()["Subject"].startswith(f"Weekly report {written.stem}: ")


def test_cron_never_prints_a_database_password(cli: Any) -> None:
    result = cli("--db", "postgresql://tracker:pa55word@db.example/tracker", "cron")
    assert result.code == 0, result.err
    assert "pa55word" not in result.out
    assert "add a line TRACKER_DB=<the URL> above these" in result.out
    assert all("--db" not in cmd for _, cmd in crontab_entries(result.out))
    plain = cli("--db", "postgresql://db.example/tracker", "cron", "--no-email")
    assert all(
        "--db postgresql://db.example/tracker" in cmd for _, cmd in crontab_entries(plain.out)
    )
    assert all("--email" not in cmd for _, cmd in crontab_entries(plain.out))


def test_cron_missing_sources_file_is_a_usage_error(cli: Any) -> None:
    result = cli("cron", "--sources", "nope.toml")
    assert result.code == 2 and "nope.toml: no such file" in result.err


# ---------------------------------------------------------------- cron expressions


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("30 6 * * 1", datetime(2026, 11, 26), datetime(2026, 11, 30, 6, 30)),  # Monday
        ("30 6 * * mon", datetime(2026, 11, 26), datetime(2026, 11, 30, 6, 30)),
        ("0 9 * * 0", datetime(2026, 11, 26), datetime(2026, 11, 29, 9, 0)),  # Sunday
        ("0 9 * * 7", datetime(2026, 11, 26), datetime(2026, 11, 29, 9, 0)),  # Sunday too
        ("0 9 * * 1-5", datetime(2026, 11, 28), datetime(2026, 11, 30, 9, 0)),  # Sat → Mon
        ("0 9 * * 0-2", datetime(2026, 11, 26), datetime(2026, 11, 29, 9, 0)),
        ("0 9 * * */3", datetime(2026, 11, 26, 10), datetime(2026, 11, 28, 9, 0)),  # 0,3,6
        ("*/15 * * * *", datetime(2026, 11, 26, 10, 1), datetime(2026, 11, 26, 10, 15)),
    ],
)
def test_crontab_weekdays_mean_what_cron_means(
    expr: str, after: datetime, expected: datetime
) -> None:
    trigger = parse_cron(expr, timezone="UTC")
    start = after.replace(tzinfo=UTC)
    assert trigger.get_next_fire_time(None, start) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "0 9 * * 8", "0 25 * * *", "x y z a b"])
def test_bad_cron_expressions(expr: str) -> None:
    with pytest.raises(UsageError, match="--report-cron"):
        parse_cron(expr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refresh-every", "2x"], "--refresh-every must look like 30s, 15m, 1h"),
        (["--refresh-every", "0s"], "--refresh-every must look like"),
        (["--report-cron", "61 * * * *"], "--report-cron '61 * * * *'"),
        (["--report-cron", "* * *"], "--report-cron must have 5 fields"),
        (["--email"], "TRACKER_SMTP_HOST is not set"),
        (["--sources", "missing.toml"], "missing.toml: no such file"),
    ],
)
def test_daemon_refuses_bad_options_at_once(cli: Any, args: list[str], message: str) -> None:
    result = cli("daemon", *args)
    assert result.code == 2
    assert message in result.err and errors(result.err).count("\n") == 1


# ---------------------------------------------------------------- the daemon, for real


class Daemon:
    """`python -m tracker daemon …` in a subprocess, its stderr read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20) -> list[str]:
        """Wait until `count` log lines match `pattern`; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [line for line in self.lines if re.search(pattern, line)]
            if len(matching) >= count:
                return matching
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self._queue.empty()):
                raise AssertionError(f"no {count}× {pattern!r} in:\n" + "\n".join(self.lines))
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=min(left, 0.2)))

    def stop(self, sig: int = signal.SIGTERM, within: float = 8) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=within)
        elapsed = time.monotonic() - started
        time.sleep(0.1)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code, elapsed

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.slow
def test_daemon_refreshes_steps_aside_survives_errors_and_stops_on_sigterm(
    db_path: Path, tmp_path: Path, feed: str
) -> None:
    from tracker.register import open_store
    from tracker.settings import Settings
    from tracker.store.locks import refresh_lock

    sources = write_sources(tmp_path / "sources.toml", feed)
    database = open_store(
        Settings.from_env().with_db(str(db_path))
    )  # create and seed it before the daemon starts
    args = ["--db", str(db_path), "daemon", "--sources", str(sources), "--refresh-every", "1s"]
    daemon: Daemon | None = None
    try:
        with refresh_lock(database, wait=0):
            # A cron-run refresh holds the lock: the daemon must not run alongside it.
            daemon = Daemon(args, child_env(), tmp_path)
            daemon.wait_for(r"Z daemon: started \(pid \d+\); refresh every 1s; weekly report")
            skipped = daemon.wait_for(r"Z refresh: skipped: another refresh is running")
            assert f"pid {os.getpid()}" in skipped[0]
            assert scraped_evidence(db_path) == []
        refreshes = daemon.wait_for(r"Z refresh: \d+ ok", count=2)
        first = REFRESH_LINE.match(refreshes[0])
        assert first is not None and first.groups() == ("1", "0", "1")
        assert scraped_evidence(db_path) == [("https://example.ir/news/1", "local-feed")]
        # A job that fails must not end the daemon.
        sources.write_text("this is [not toml", encoding="utf-8")
        daemon.wait_for(r"Z refresh: error: sources file .*: not valid TOML")
        write_sources(sources, feed)
        seen = len([line for line in daemon.lines if REFRESH_LINE.match(line)])
        daemon.wait_for(r"Z refresh: \d+ ok", count=seen + 1)
        code, elapsed = daemon.stop(signal.SIGTERM)
    finally:
        if daemon is not None:
            daemon.kill()
        database.dispose()
    assert code == 0 and elapsed < 5
    assert daemon.lines[-2:] == [daemon.lines[-2], daemon.lines[-1]]
    assert daemon.lines[-2].endswith("Z daemon: stopping")
    assert daemon.lines[-1].endswith("Z daemon: stopped")
    assert all(LOG_LINE.match(line) for line in daemon.lines), daemon.lines
    assert daemon.proc.stdout is not None and daemon.proc.stdout.read() == ""


@pytest.mark.slow
def test_ctrl_c_during_a_hung_refresh_still_stops_promptly(db_path: Path, tmp_path: Path) -> None:
    with silent_server("mute") as port:
        # The feed server accepts and never answers: the refresh hangs on it.
        sources = write_sources(tmp_path / "sources.toml", f"http://127.0.0.1:{port}/feed.xml")
        env = child_env(TRACKER_HTTP_DEADLINE="60", TRACKER_HTTP_READ_TIMEOUT="60")
        daemon = Daemon(
            ["--db", str(db_path), "daemon", "--sources", str(sources), "--refresh-every", "1h"],
            env,
            tmp_path,
        )
        try:
            daemon.wait_for(r"Z daemon: started")
            time.sleep(0.5)  # the first refresh is now waiting on the mute server
            code, elapsed = daemon.stop(signal.SIGINT)
        finally:
            daemon.kill()
    assert code == 0 and elapsed < 8
    assert daemon.lines[-1].endswith("(its open database transaction rolls back)")


# ---------------------------------------------------------------- the daemon's report job


def test_report_job_writes_mails_and_says_so_in_one_line(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.schedule import DaemonConfig, report_job
    from tracker.settings import Settings

    monkeypatch.setenv("TRACKER_TODAY", "2026-11-26")
    db = make_world(db_path)
    lines: list[str] = []
    try:
        down = SmtpSink(workdir=tmp_path)
        for key, value in down.env().items():
            monkeypatch.setenv(key, value)
        config = DaemonConfig(
            settings=Settings.from_env(),
            sources=None,
            every=timedelta(hours=1),
            report_cron="30 6 * * 1",
            email=True,
            notify=False,
            out_dir=tmp_path / "reports",
        )
        assert report_job(db, config, lines.append) is False  # the daemon retries later
        assert lines[-1] == (
            f"report: wrote {tmp_path / 'reports' / '2026-W47.md'}; mail not sent: cannot "
            f"connect to SMTP server 127.0.0.1:{down.port}: connection refused"
        )
        with down:
            assert report_job(db, config, lines.append) is True
            assert len(down.wait_for(1)) == 1
        assert lines[-1] == (
            f"report: kept unchanged {tmp_path / 'reports' / '2026-W47.md'}; sent report "
            "2026-W47 to watcher@example.org, second@example.net"
        )
    finally:
        db.dispose()
