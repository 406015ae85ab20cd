"""Alert mail after a refresh: once per event, through a real SMTP server, never breaking refresh."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracker.alerts import send_refresh_alerts
from tracker.refresh import RefreshReport, SourceResult
from tracker.settings import Settings
from tracker.sources import Source
from tracker.store import Database

try:
    from .conftest import run_cli
    from .faulty_server import start_tracker
    from .rows import insert, update
    from .smtp_sink import SmtpSink, free_port
    from .test_report import at, history, make_world
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from conftest import run_cli  # type: ignore[no-redef]
    from faulty_server import start_tracker  # type: ignore[no-redef]
    from rows import insert, update  # type: ignore[no-redef]
    from smtp_sink import SmtpSink, free_port  # type: ignore[no-redef]
    from test_report import at, history, make_world  # type: ignore[no-redef]

NOW = datetime(2026, 11, 20, 6, 0)  # two days after the crossing's change, apa just failing


@pytest.fixture
def world(db: str) -> Iterator[Database]:
    database = make_world(db)
    yield database
    database.dispose()


def result(name: str, state: str, **flags: bool) -> SourceResult:
    return SourceResult(Source(name=name, kind="rss", language="en"), state, **flags)


def refresh_report(*results: SourceResult) -> RefreshReport:
    return RefreshReport(results=list(results))


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def alerts(db: Database, report: RefreshReport, now: datetime) -> list[str]:
    """`send_refresh_alerts` with the settings of the environment as it is now."""
    return send_refresh_alerts(db, Settings.from_env(), report, now=now)


def test_nothing_new_means_no_mail_and_no_need_for_settings(world: Database) -> None:
    quiet = refresh_report(result("irna-en", "ok"))
    assert alerts(world, quiet, now=datetime(2026, 12, 30)) == []


def test_each_event_is_mailed_once(world: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    report = refresh_report(
        result("irna-en", "ok"), result("apa", "failed", crossed_threshold=True)
    )
    with SmtpSink() as sink:
        use(monkeypatch, sink.env())
        lines = alerts(world, report, now=NOW)
        assert lines == [
            "alert sent to watcher@example.org, second@example.net: "
            "1 status change, 1 source failing"
        ]
        (got,) = sink.wait_for(1)
        # The next refresh sees the same state: nothing goes out again.
        assert alerts(world, report, now=NOW) == []
        assert len(sink.received) == 1
    msg = got.message()
    assert msg["Subject"] == "tracker alert: 1 status change, 1 source failing"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert (
        "khodaafarin-crossing (Khodaafarin crossing): announced → in_progress on "
        "2026-11-18 12:00 UTC"
    ) in body
    assert "source apa (rss) has failed 4 times in a row since 2026-11-20 03:00 UTC" in body
    assert "last error: HTTP 503 | <b>down</b>" in body
    with world.read() as conn:
        keys = sorted(k for (k,) in conn.rows("SELECT key FROM notification"))
    assert keys == ["source-failing:apa:2026-11-20T03:00:00", "status:khodaafarin-crossing:2"]


def test_a_recovery_is_one_alert(world: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with world.write() as conn:
        update(
            conn,
            "source_health",
            {"name": "apa"},
            consecutive_failures=0,
            failing_since=None,
            last_success=at(2026, 11, 21, 7, 30),
        )
    report = refresh_report(result("apa", "ok", recovered=True))
    with SmtpSink() as sink:
        use(monkeypatch, sink.env(TRACKER_ALERT_TO="oncall@example.org"))
        later = datetime(2026, 11, 25)  # the crossing's change is outside the alert window now
        assert alerts(world, report, now=later) == [
            "alert sent to oncall@example.org: 1 source recovered"
        ]
        assert alerts(world, report, now=later) == []
        (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["oncall@example.org"]
    assert got.message()["Subject"] == "tracker alert: source apa works again"


def test_only_changes_made_by_refresh_are_alerted(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world.write() as conn:
        # A person's override and a catalog load are not news to the person who made them.
        insert(
            conn,
            "status_history",
            commitment_id=3,
            at=at(2026, 11, 19),
            old_status="announced",
            new_status="broken",
            kind="override",
            actor="tester",
            reason="x",
        )
        history(conn, 4, at(2026, 11, 19, 1), "in_progress", "delivered")  # by refresh
    with SmtpSink() as sink:
        use(monkeypatch, sink.env())
        lines = alerts(world, refresh_report(), now=NOW)
        assert lines == ["alert sent to watcher@example.org, second@example.net: 2 status changes"]
        body = sink.wait_for(1)[0].message().get_content()
    assert "rail-link" in body and "gas-swap" not in body


def test_missing_settings_say_so_and_a_later_refresh_sends(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = refresh_report(result("apa", "failed", crossed_threshold=True))
    assert alerts(world, report, now=NOW) == [
        "alerts not sent: TRACKER_SMTP_HOST is not set; it is needed to send mail"
    ]
    with SmtpSink() as sink:
        env = sink.env()
        del env["TRACKER_MAIL_TO"]
        use(monkeypatch, env)
        assert alerts(world, report, now=NOW) == [
            "alerts not sent: TRACKER_MAIL_TO (or TRACKER_ALERT_TO) is not set; "
            "it is needed to send mail"
        ]
        monkeypatch.setenv("TRACKER_MAIL_TO", "watcher@example.org")
        assert alerts(world, report, now=NOW) == [
            "alert sent to watcher@example.org: 1 status change, 1 source failing"
        ]
        assert len(sink.wait_for(1)) == 1


def test_a_down_server_is_one_line_and_the_alert_is_retried(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    use(monkeypatch, sink.env(TRACKER_SMTP_PASSWORD="hunter2-secret", TRACKER_SMTP_USER="u"))
    monkeypatch.setenv("TRACKER_SMTP_SECURITY", "none")
    report = refresh_report(result("apa", "failed", crossed_threshold=True))
    lines = alerts(world, report, now=NOW)
    assert lines == [
        f"alerts not sent: cannot connect to SMTP server 127.0.0.1:{port}: connection refused"
    ]
    monkeypatch.delenv("TRACKER_SMTP_USER")
    monkeypatch.delenv("TRACKER_SMTP_PASSWORD")
    with sink:
        assert alerts(world, report, now=NOW)[0].startswith("alert sent to ")
        assert len(sink.wait_for(1)) == 1


def test_a_new_failure_spell_is_a_new_alert(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = refresh_report(result("apa", "failed", crossed_threshold=True))
    with SmtpSink() as sink:
        use(monkeypatch, sink.env())
        alerts(world, report, now=NOW)
        with world.write() as conn:
            update(conn, "source_health", {"name": "apa"}, failing_since=at(2026, 11, 24, 5))
        lines = alerts(world, report, now=datetime(2026, 11, 25))
        assert lines == ["alert sent to watcher@example.org, second@example.net: 1 source failing"]
        assert len(sink.wait_for(2)) == 2


def test_refresh_notify_end_to_end(
    cli: Any, db: str, tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tracker refresh --notify` against a real feed that fails three times, then recovers."""
    healthy = {"value": False}

    def feed(request: Request) -> Response:
        if not healthy["value"]:
            return Response("down for maintenance", status=500)
        return Response(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
            "<link>https://example.org/</link><description>x</description></channel></rss>",
            content_type="application/rss+xml",
        )

    httpserver.expect_request("/feed.xml").respond_with_handler(feed)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "local-feed"\nkind = "rss"\nurl = "{httpserver.url_for("/feed.xml")}"\n'
        'language = "en"\ncountry = "AZ"\n',
        encoding="utf-8",
    )
    for key, value in {"TRACKER_HTTP_MAX_RETRIES": "0", "TRACKER_HTTP_DEADLINE": "5"}.items():
        monkeypatch.setenv(key, value)
    with SmtpSink(workdir=tmp_path) as sink:
        use(monkeypatch, sink.env())
        outputs = [cli("refresh", "--notify", "--sources", str(sources)) for _ in range(4)]
        assert [r.code for r in outputs] == [1, 1, 1, 1]  # refresh's exit code is about sources
        assert "alert sent to" not in outputs[1].out
        assert (
            "alert sent to watcher@example.org, second@example.net: 1 source failing"
            in outputs[2].out
        )
        assert "alert" not in outputs[3].out  # still failing: not repeated
        (failing,) = sink.wait_for(1)
        healthy["value"] = True
        recovered = cli("refresh", "--notify", "--sources", str(sources))
        assert recovered.code == 0, recovered.err
        assert "1 source recovered" in recovered.out
        assert len(sink.wait_for(2)) == 2
        monkeypatch.delenv("TRACKER_SMTP_HOST")
        healthy["value"] = False
        for _ in range(3):
            last = cli("refresh", "--notify", "--sources", str(sources))
        assert last.code == 1
        assert "alerts not sent: TRACKER_SMTP_HOST is not set" in last.out
    assert failing.message()["Subject"] == "tracker alert: source local-feed failing"
    assert "has failed 3 times in a row" in failing.message().get_content()


def test_a_failed_recovery_alert_is_sent_by_a_later_refresh(
    world: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the refresh that saw the recovery knows of it; its failed mail must not be lost."""
    with world.write() as conn:
        update(
            conn,
            "source_health",
            {"name": "apa"},
            consecutive_failures=0,
            failing_since=None,
            last_success=at(2026, 11, 21, 7, 30),
        )
    later = datetime(2026, 11, 25)
    port = free_port()
    sink = SmtpSink(port=port)
    use(monkeypatch, sink.env())
    recovered = refresh_report(result("apa", "ok", recovered=True))
    assert alerts(world, recovered, now=later) == [
        f"alerts not sent: cannot connect to SMTP server 127.0.0.1:{port}: connection refused"
    ]
    with sink:
        # The next refresh sees a healthy source: nothing new, but the stored alert goes out.
        assert alerts(world, refresh_report(result("apa", "ok")), now=later) == [
            "alert sent to watcher@example.org, second@example.net: 1 source recovered"
        ]
        assert alerts(world, refresh_report(result("apa", "ok")), now=later) == []
        (got,) = sink.wait_for(1)
    assert got.message()["Subject"] == "tracker alert: source apa works again"
    with world.read() as conn:
        rows = conn.rows("SELECT key, state, attempts FROM notification")
    assert [(k.split(":")[0], s, n) for k, s, n in rows] == [("source-recovered", "sent", 2)]


@pytest.mark.slow
def test_refreshes_at_once_alert_once(
    db: str, tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert is sent while the refresh holds its lock: the one waiting for the lock finds
    the event sent, not still waiting to be mailed."""
    httpserver.expect_request("/feed.xml").respond_with_data("down", status=500)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "local-feed"\nkind = "rss"\nurl = "{httpserver.url_for("/feed.xml")}"\n'
        'language = "en"\n',
        encoding="utf-8",
    )
    env = {"TRACKER_HTTP_MAX_RETRIES": "0", "TRACKER_LOCK_WAIT": "60"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = ["refresh", "--sources", str(sources)]
    for _ in range(2):  # two failures: the next refresh crosses the threshold
        assert run_cli(*args).code == 1
    with SmtpSink(workdir=tmp_path, delay=2.0) as sink:  # a slow server: the send takes 2 s
        use(monkeypatch, sink.env())
        procs = [
            start_tracker(*args, "--notify", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=60)[0].decode() for p in procs]
        time.sleep(0.5)
        assert sum("alert sent to" in out for out in outs) == 1, outs
        assert len(sink.received) == 1
