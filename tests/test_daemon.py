"""The daemon under things that happen to long-running processes: signals, a database file
replaced or deleted under it, the wall clock set back or jumping ahead (a late wake), a mail
server that is down for a while; and weeks judged in one declared zone.

Real daemon processes where the behaviour is about the process (signals, files); the daemon's own
loop in a thread, with a wall clock the test can turn, where it is about the clock.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tracker.errors import UsageError
from tracker.schedule import Daemon as DaemonLoop
from tracker.schedule import make_config, report_pending
from tracker.settings import Settings
from tracker.store import Database
from tracker.weeks import IsoWeek, today_in, week_zone

from .conftest import query
from .faulty_server import FaultyServer, reply, run_tracker, serving
from .smtp_sink import SmtpSink, free_port
from .test_exactly_once import SOURCES
from .test_report import make_world
from .test_schedule import Daemon, child_env

FEEDS = 30
ITEMS = 120


def feed(k: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Tabriz Baku flight, feed {k}, story {i}</title>"
        f"<link>https://example.org/d{k}/{i}</link><description>Baku flight.</description>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>D{k}</title>{items}</channel></rss>'


@pytest.fixture(scope="module")
def server() -> Iterator[FaultyServer]:
    with serving() as s:
        for k in range(FEEDS):
            s.route(f"/d{k}", reply(200, feed(k), "application/rss+xml"))
        yield s


def write_sources(path: Path, server: FaultyServer, feeds: int) -> Path:
    path.write_text(
        "".join(
            f'[[source]]\nname = "d{k}"\nkind = "rss"\nurl = "{server.url(f"/d{k}")}"\n'
            'language = "en"\n'
            for k in range(feeds)
        ),
        encoding="utf-8",
    )
    return path


def scraped(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM evidence WHERE source LIKE 'd%'").fetchone()[0]
        )


# ---------------------------------------------------------------- signals


def test_sighup_stops_the_daemon_cleanly_with_one_line(db_path: Path, tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text(SOURCES, encoding="utf-8")
    args = ["--db", str(db_path), "daemon", "--sources", str(tmp_path / "sources.toml")]
    daemon = Daemon(args, child_env(), tmp_path)
    try:
        daemon.wait_for(r"Z refresh: ")
        code, elapsed = daemon.stop(signal.SIGHUP)
    finally:
        daemon.kill()
    assert code == 0 and elapsed < 5
    assert daemon.lines[-2].endswith(
        "Z daemon: SIGHUP (hangup: the terminal or session went away); stopping"
    )
    assert daemon.lines[-1].endswith("Z daemon: stopped")


def test_under_nohup_sighup_is_still_ignored(db_path: Path, tmp_path: Path) -> None:
    nohup = shutil.which("nohup")
    if nohup is None:
        pytest.skip("no nohup here")
    (tmp_path / "sources.toml").write_text(SOURCES, encoding="utf-8")
    proc = subprocess.Popen(
        [nohup, sys.executable, "-m", "tracker", "--db", str(db_path), "daemon", "--sources",
         str(tmp_path / "sources.toml")],
        env=child_env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        while "daemon: started" not in proc.stderr.readline():
            assert proc.poll() is None
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None  # still running, as nohup asked
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGHUP" not in rest and rest.rstrip().endswith("daemon: stopped")


@pytest.mark.slow
def test_sigterm_during_a_refresh_stops_it_between_two_sources(
    server: FaultyServer, tmp_path: Path
) -> None:
    """The refresh stores one source after another; told to stop, it stops before the next one
    (each source whole), and the daemon is gone well within 5 s."""
    sources = write_sources(tmp_path / "sources.toml", server, FEEDS)
    template = tmp_path / "template.db"
    assert run_tracker("--db", str(template), "status").code == 0
    stops = []
    for attempt in range(6):
        db = tmp_path / f"d{attempt}.db"
        with sqlite3.connect(template) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        daemon = Daemon(
            ["--db", str(db), "daemon", "--sources", str(sources), "--refresh-every", "1h"],
            child_env(),
            tmp_path,
        )
        try:
            daemon.wait_for(r"Z daemon: started")
            deadline = time.monotonic() + 30
            while scraped(db) == 0 and time.monotonic() < deadline:  # the first source is in
                time.sleep(0.005)
            code, elapsed = daemon.stop(signal.SIGTERM)
        finally:
            daemon.kill()
        assert code == 0
        stops.append(elapsed)
        stored = scraped(db)
        assert stored % ITEMS == 0, stored  # whole sources only
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        if any("refresh: stopped between two sources" in line for line in daemon.lines):
            assert stored < FEEDS * ITEMS
            break
    else:
        pytest.fail(f"SIGTERM never landed between two sources: {daemon.lines}")
    print(f"stopped {stops[-1]:.2f} s after SIGTERM ({attempt + 1} tries)")
    assert stops[-1] < 5
    assert daemon.lines[-1].endswith("Z daemon: stopped")
    # A refresh afterwards completes what was cut short.
    rerun = run_tracker("--db", str(db), "refresh", "--sources", str(sources))
    assert rerun.code == 0, rerun.err
    assert scraped(db) == FEEDS * ITEMS


# ---------------------------------------------------------------- the file under the daemon


def backup(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.mark.slow
def test_a_database_restored_under_the_daemon_is_reopened_without_its_old_log(
    server: FaultyServer, tmp_path: Path
) -> None:
    live, saved = tmp_path / "live.db", tmp_path / "backup.db"
    assert run_tracker("--db", str(live), "status").code == 0
    backup(live, saved)
    marker = run_tracker(
        "--db", str(saved), "evidence", "add", "health-tourism", "--url",
        "https://example.org/only-in-the-backup", "--title", "Only in the backup",
        "--date", "2026-03-01",
    )  # fmt: skip
    assert marker.code == 0, marker.err
    conn = sqlite3.connect(saved)  # a backup is one file: its log folded in and removed
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{saved}-wal").exists()
    sources = write_sources(tmp_path / "sources.toml", server, 2)
    daemon = Daemon(
        ["--db", str(live), "daemon", "--sources", str(sources), "--refresh-every", "1s"],
        child_env(),
        tmp_path,
    )
    try:
        daemon.wait_for(r"Z refresh: 2 ok", count=2)
        assert Path(f"{live}-wal").stat().st_size > 0  # the live file's log, still open
        saved.replace(live)  # mv backup.db live.db
        moved = daemon.wait_for(
            r"Z database: .*live\.db was replaced while the daemon ran; reopened it; its old "
            r"write-ahead log was set aside \(live\.db-wal\.replaced-\d+T\d+"
        )
        seen = len(daemon.lines)
        # The first refresh stored the feeds in the old file; the next one stores them again,
        # in the restored one.
        daemon.wait_for(r"Z refresh: 2 ok, 0 failed, 240 new evidence", count=2)
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    print(moved[0])
    assert all("database:" not in line for line in daemon.lines[seen:])
    # The restore stands: the backup's own row is there, and the daemon's new refresh too.
    with sqlite3.connect(live) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute(
            "SELECT COUNT(*) FROM evidence WHERE url = 'https://example.org/only-in-the-backup'"
        ).fetchone() == (1,)
    assert scraped(live) == 2 * ITEMS
    assert run_tracker("--db", str(live), "status").code == 0
    assert list(tmp_path.glob("live.db-wal.replaced-*"))


@pytest.mark.slow
def test_a_database_deleted_under_the_daemon_is_made_anew_and_used(
    server: FaultyServer, tmp_path: Path
) -> None:
    live = tmp_path / "live.db"
    sources = write_sources(tmp_path / "sources.toml", server, 2)
    daemon = Daemon(
        ["--db", str(live), "daemon", "--sources", str(sources), "--refresh-every", "1s"],
        child_env(),
        tmp_path,
    )
    try:
        daemon.wait_for(r"Z refresh: 2 ok, 0 failed, 240 new evidence")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{live}{suffix}").unlink(missing_ok=True)
        daemon.wait_for(r"Z database: .*live\.db was deleted while the daemon ran; reopened it")
        daemon.wait_for(r"Z refresh: 2 ok, 0 failed, 240 new evidence", count=2)
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    # What the daemon reported is what everybody sees.
    assert scraped(live) == 2 * ITEMS


# ---------------------------------------------------------------- clocks


class Wall:
    """A wall clock the test can turn: real time plus an offset."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(self.zone) + self.offset


def run_loop(daemon: DaemonLoop) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, kwargs={"signals": False}, daemon=True)
    thread.start()
    return thread


def wait_lines(lines: list[str], test: Callable[[list[str]], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not test(lines):
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)


@pytest.fixture
def quiet_world(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("TRACKER_TODAY", "2026-11-26")
    (tmp_path / "sources.toml").write_text(SOURCES, encoding="utf-8")
    monkeypatch.setenv("TRACKER_SOURCES", str(tmp_path / "sources.toml"))
    database = make_world(db_path)
    yield database
    database.dispose()


def test_the_wall_clock_set_back_or_jumping_ahead(quiet_world: Database, tmp_path: Path) -> None:
    zone = ZoneInfo("UTC")
    config = make_config(
        Settings.from_env(),
        sources=None,
        refresh_every="1s",
        report_cron="30 6 * * mon",
        email=False,
        notify=False,
        out_dir=tmp_path / "reports",
        week_zone="UTC",
    )
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "2026-W47.md").write_text("already written\n")  # nothing to catch up
    wall = Wall(zone)
    lines: list[str] = []
    daemon = DaemonLoop(quiet_world, config, lines.append, wall=wall)
    thread = run_loop(daemon)
    try:
        wait_lines(lines, lambda ls: sum(x.startswith("refresh: 0 ok") for x in ls) >= 2)
        wall.offset = -timedelta(hours=1)  # someone sets the clock back an hour
        before = sum("refresh: " in x for x in lines)
        time.sleep(3.5)
        assert sum("refresh: " in x for x in lines) >= before + 2, lines  # still every second
        assert not any(x.startswith("report:") for x in lines), lines
        # The machine slept through Monday 06:30: on waking, the report runs at once.
        next_monday = daemon.trigger.get_next_fire_time(None, wall())
        wall.offset += next_monday - wall() + timedelta(hours=2)
        wait_lines(lines, lambda ls: any("report: missed its time (" in x for x in ls))
        wait_lines(
            lines, lambda ls: any(x.startswith(("report: kept", "report: wrote")) for x in ls)
        )
    finally:
        daemon.stop.set()
        thread.join(10)
    assert lines[-1] == "daemon: stopped"


def test_a_failed_mail_is_retried_with_backoff_until_it_goes(
    quiet_world: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    for key, value in sink.env().items():
        monkeypatch.setenv(key, value)
    config = make_config(
        Settings.from_env(),
        sources=None,
        refresh_every="1h",
        report_cron="30 6 * * mon",
        email=True,
        notify=False,
        out_dir=tmp_path / "reports",
    )
    config.report_retry = timedelta(seconds=0.4)
    lines: list[str] = []
    daemon = DaemonLoop(quiet_world, config, lines.append)
    thread = run_loop(daemon)
    try:
        # Down: the catch-up at start fails, then the retries after 0.4 s and 1.2 s fail too.
        wait_lines(lines, lambda ls: sum("will try the mail again at" in x for x in ls) >= 3)
        with sink:
            wait_lines(lines, lambda ls: any("sent report 2026-W47" in x for x in ls), timeout=30)
            assert len(sink.wait_for(1)) == 1
            time.sleep(1.5)
            assert len(sink.received) == 1  # no retry once it went
    finally:
        daemon.stop.set()
        thread.join(10)
    failures = [x for x in lines if "mail not sent: cannot connect" in x]
    assert len(failures) >= 3


# ---------------------------------------------------------------- weeks in one zone


def test_the_last_complete_week_is_judged_in_the_declared_zone() -> None:
    tehran = ZoneInfo("Asia/Tehran")
    monday_1am = datetime(2026, 11, 30, 1, 0, tzinfo=tehran)  # still Sunday 21:30 in UTC
    assert IsoWeek.last_complete(today_in(tehran, monday_1am)).label == "2026-W48"
    assert IsoWeek.last_complete(monday_1am.astimezone(UTC).date()).label == "2026-W47"
    # Every zone east of UTC+7 used to mail the week before last on a Monday at 06:30.
    tokyo = ZoneInfo("Asia/Tokyo")
    morning = datetime(2026, 11, 30, 6, 30, tzinfo=tokyo)
    assert IsoWeek.last_complete(today_in(tokyo, morning)).label == "2026-W48"
    assert IsoWeek(2026, 48).utc_bounds(tehran) == (
        datetime(2026, 11, 22, 20, 30),
        datetime(2026, 11, 29, 20, 30),
    )


def test_a_daemon_in_tehran_reports_last_week_on_monday_at_one(
    quiet_world: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACKER_TODAY")
    config = make_config(
        Settings.from_env(),
        sources=None,
        refresh_every="1h",
        report_cron="0 1 * * mon",
        email=False,
        notify=False,
        out_dir=tmp_path / "reports",
        week_zone="Asia/Tehran",
    )
    now = datetime(2026, 11, 30, 1, 5, tzinfo=ZoneInfo("Asia/Tehran"))
    why = report_pending(quiet_world, config, now)
    assert why == "the report of 2026-W48 (due 2026-11-30 01:00 +0330) was not written"


def test_the_week_zone_setting() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        week_zone("Mars/Olympus")
    r = run_tracker("report", "weekly", "--week-zone", "Mars/Olympus")
    assert r.code == 2
    assert r.err == (
        "error: TRACKER_WEEK_ZONE / --week-zone: unknown time zone 'Mars/Olympus' "
        "(use a name such as Asia/Tehran or UTC)\n"
    )


def test_report_weekly_defaults_to_the_last_complete_week_of_its_zone(
    db_path: Path, tmp_path: Path
) -> None:
    for zone in ("Asia/Tehran", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        r = run_tracker("--db", str(db_path), "report", "weekly", env={"TZ": zone})
        assert r.code == 0, r.err
        expected = IsoWeek.last_complete(today_in(ZoneInfo(zone))).label
        assert r.out == f"reports/{expected}.md\n", (zone, r.out)
    assert query(str(db_path), "SELECT COUNT(*) FROM commitment") == [(8,)]
