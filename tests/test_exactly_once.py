"""Each mail exactly once: real `tracker` processes, a real SMTP server (aiosmtpd), SQLite and
PostgreSQL (the `db` fixture).

- Runs at once (several `report weekly --email`, two daemons, a daemon and cron) mail a week once:
  the send is claimed in the database first.
- What the server accepted is never sent again, whatever fails afterwards: recording "sent", the
  process (SIGKILL at the server's acceptance), or the server's answer (it never comes). The next
  run says "sent state unknown … run with --resend", and --resend sends the same Message-ID.
- A 451 is tried exactly once more; a failed week goes out with the next week's run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracker import mail
from tracker.store import Database

from .conftest import query
from .faulty_server import run_tracker, start_tracker
from .smtp_sink import SmtpSink, free_port
from .test_report import make_world
from .test_schedule import Daemon, child_env

REPORT = ["report", "weekly", "--email"]
SENT_W47 = "sent report 2026-W47 to watcher@example.org, second@example.net"
SOURCES = '[[source]]\nname = "off"\nkind = "rss"\nurl = "https://off.example/rss"\nlanguage = "en"\nenabled = false\n'


@pytest.fixture
def world(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TRACKER_TODAY", "2026-11-26")  # the last complete week is 2026-W47
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES, encoding="utf-8")
    monkeypatch.setenv("TRACKER_SOURCES", str(sources))
    database = make_world(db)
    yield database
    database.dispose()


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def one_error(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and err.strip() == lines[0], err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def notification(db: str, like: str = "report:%") -> list[tuple[Any, ...]]:
    return query(
        db,
        "SELECT key, state, attempts, message_id FROM notification WHERE key LIKE :k ORDER BY key",
        {"k": like},
    )


# ---------------------------------------------------------------- runs at once


def test_report_runs_at_once_mail_the_week_once(
    world: Database, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(delay=1.5) as sink:  # the first sender is still talking when the others look
        use(monkeypatch, sink.env())
        procs = [
            start_tracker(*REPORT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)
        ]
        outs = [(p.communicate(timeout=60), p.returncode) for p in procs]
        time.sleep(0.3)
        received, attempts = len(sink.received), sink.attempts
    assert [code for _, code in outs] == [0, 0, 0, 0], outs
    texts = [out.decode() for (out, _), _ in outs]
    assert sum(SENT_W47 in t for t in texts) == 1, texts
    for text in texts:
        assert SENT_W47 in text or re.search(
            r"report 2026-W47 (is being sent to .* by \S+ pid \d+ \(claimed at [0-9: -]+ UTC\); "
            r"not sending it twice|was already sent to )",
            text,
        ), text
    assert (received, attempts) == (1, 1)
    ((_, state, tries, _),) = notification(db)
    assert (state, tries) == ("sent", 1)


def daemon_args(db: str) -> list[str]:
    return ["--db", db, "daemon", "--email", "--refresh-every", "1h"]


CATCHING_UP_W47 = r"Z report: missed its time: the report of 2026-W47 .* running now"


def _said(daemon: Daemon, pattern: str) -> bool:
    """Whether `daemon` has logged a line matching `pattern` (waiting a moment for its output)."""
    try:
        daemon.wait_for(pattern, timeout=0.1)
    except AssertionError:
        return False
    return True


@pytest.mark.slow
def test_two_daemons_and_a_daemon_with_cron_mail_the_week_once(
    world: Database, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(delay=1.0) as sink:
        use(monkeypatch, sink.env())
        # Two daemons start at once; the week's report was never mailed: each runs it at once,
        # unless it sees the other one's claim first.
        daemons = [Daemon(daemon_args(db), child_env(), tmp_path) for _ in range(2)]
        try:
            # Either may be first to claim it (one of them, not necessarily the first started).
            deadline = time.monotonic() + 30
            while not any(_said(d, CATCHING_UP_W47) for d in daemons):
                assert time.monotonic() < deadline, [d.lines for d in daemons]
            assert len(sink.wait_for(1, timeout=20)) == 1
            time.sleep(3)
            for d in daemons:
                assert d.stop()[0] == 0
        finally:
            for d in daemons:
                d.kill()
        logs = [line for d in daemons for line in d.lines if " report: " in line]
        assert sum(SENT_W47 in line for line in logs) == 1, logs
        assert len(sink.received) == 1

        # A daemon and a cron-run report, at once, for the next week.
        monkeypatch.setenv("TRACKER_TODAY", "2026-12-03")
        daemon = Daemon(daemon_args(db), child_env(), tmp_path)
        try:
            daemon.wait_for(r"Z daemon: started")  # its catch-up of 2026-W48 starts now …
            cron = start_tracker(*REPORT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = cron.communicate(timeout=60)  # … and so does cron's run
            assert cron.returncode == 0, err
            time.sleep(3)
            assert daemon.stop()[0] == 0
        finally:
            daemon.kill()
        said = out.decode() + "\n".join(daemon.lines)
        assert said.count(SENT_W47.replace("W47", "W48")) == 1, said
        time.sleep(0.3)
        w48 = [r for r in sink.received if "2026-W48" in r.message()["Subject"]]
        assert len(w48) == 1, [r.message()["Subject"] for r in sink.received]
        assert len(sink.received) == 2


# ---------------------------------------------------------------- the unknown window


def test_a_failure_to_record_after_acceptance_is_never_resent(
    world: Database, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At the moment the server accepts the message, the notification table goes away: the
    # sender cannot record "sent".
    broken: list[bool] = []

    def break_the_database() -> None:
        if not broken:
            broken.append(True)
            query(db, "ALTER TABLE notification RENAME TO notification_gone")

    with SmtpSink(on_data=break_the_database) as sink:
        use(monkeypatch, sink.env())
        first = run_tracker(*REPORT)
        assert first.code == 1
        one_error(
            first.err,
            "report 2026-W47 was sent to watcher@example.org, second@example.net, but recording "
            "that failed",
            "not sent again by itself",
        )
        query(db, "ALTER TABLE notification_gone RENAME TO notification")
        for _ in range(2):  # the daemon used to retry this hourly, sending up to 13 copies
            again = run_tracker(*REPORT)
            assert again.code == 1
            one_error(
                again.err,
                "sent state unknown for week 2026-W47",
                "claimed at ",
                "run 'tracker report weekly --week 2026-W47 --email --resend' to send it again",
            )
        assert len(sink.wait_for(1)) == 1 and sink.attempts == 1
        resent = run_tracker(*REPORT, "--resend")
        assert resent.code == 0, resent.err
        assert SENT_W47 in resent.out
        first_copy, second_copy = sink.wait_for(2)
    # The resend is recognisably the same message.
    assert first_copy.message()["Message-ID"] == second_copy.message()["Message-ID"]
    ((_, state, tries, mid),) = notification(db)
    assert (state, tries, mid) == ("sent", 2, first_copy.message()["Message-ID"])


def test_a_kill_between_acceptance_and_record_is_not_resent(
    world: Database, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender: list[subprocess.Popen[bytes]] = []

    def kill_the_sender() -> None:
        os.kill(sender[0].pid, signal.SIGKILL)

    with SmtpSink(on_data=kill_the_sender) as sink:
        use(monkeypatch, sink.env())
        sender.append(start_tracker(*REPORT))
        assert sender[0].wait(60) == -signal.SIGKILL
        assert len(sink.wait_for(1)) == 1
        after = run_tracker(*REPORT)
        assert after.code == 1
        one_error(
            after.err,
            "sent state unknown for week 2026-W47",
            "the sending process ended before it could record the outcome",
            "--resend",
        )
        time.sleep(0.3)
        assert (len(sink.received), sink.attempts) == (1, 1)


def test_an_answer_that_never_comes_is_unknown_not_resent(
    world: Database, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(delay=3.0) as sink:  # takes the message, answers after the client gave up
        use(monkeypatch, sink.env(TRACKER_SMTP_TIMEOUT="1"))
        first = run_tracker(*REPORT)
        assert first.code == 1
        one_error(first.err, "after the whole message had been sent", "sent state unknown")
        assert len(sink.wait_for(1, timeout=6)) == 1
        again = run_tracker(*REPORT)
        assert again.code == 1
        one_error(again.err, "sent state unknown for week 2026-W47", "the whole message")
        assert sink.attempts == 1


# ---------------------------------------------------------------- temporary refusals


def test_a_451_is_retried_exactly_once(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(replies=["451 4.3.0 try again later"]) as sink:
        use(monkeypatch, sink.env())
        ok = cli(*REPORT)
        assert ok.code == 0, ok.err
        assert (len(sink.wait_for(1)), sink.attempts) == (1, 2)
    with SmtpSink(replies=["451 4.3.0 busy", "451 4.3.0 still busy"]) as sink:
        use(monkeypatch, sink.env())
        refused = cli(*REPORT, "--week", "2026-W46")
        assert refused.code == 1
        one_error(refused.err, "answered 451 4.3.0 still busy (tried twice)")
        assert (sink.received, sink.attempts) == ([], 2)
        # Failed for certain: the next run sends it.
        later = cli(*REPORT, "--week", "2026-W46")
        assert later.code == 0, later.err
        assert (len(sink.wait_for(1)), sink.attempts) == (1, 3)


# ---------------------------------------------------------------- mail that is never sent


def test_a_failed_week_goes_out_with_the_next_weeks_run(
    world: Database, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    use(monkeypatch, sink.env())
    down = run_tracker(*REPORT)  # cron on Monday 30 November: the server is down
    assert down.code == 1
    one_error(down.err, "connection refused")
    monkeypatch.setenv("TRACKER_TODAY", "2026-12-03")  # a week later: 2026-W48
    with sink:
        later = run_tracker(*REPORT)
        assert later.code == 0, later.err
        assert later.out.splitlines() == [
            "reports/2026-W48.md",
            f"{SENT_W47} (catching up)",
            SENT_W47.replace("W47", "W48"),
        ]
        got = sink.wait_for(2)
        again = run_tracker(*REPORT)  # nothing left to catch up
        assert again.code == 0, again.err
        assert "already sent" in again.out
    subjects = sorted(r.message()["Subject"].split(":")[0] for r in got)
    assert subjects == ["Weekly report 2026-W47", "Weekly report 2026-W48"]
    assert len(sink.received) == 2
    to = mail.parse_addresses(sink.env()["TRACKER_MAIL_TO"], "to")
    assert [row[:2] for row in notification(db)] == [
        (mail.report_key("2026-W47", to), "sent"),
        (mail.report_key("2026-W48", to), "sent"),
    ]


@pytest.mark.slow
def test_a_failed_mail_is_retried_after_a_daemon_restart(
    world: Database, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    use(monkeypatch, sink.env())
    first = Daemon(daemon_args(db), child_env(), tmp_path)
    try:
        first.wait_for(r"Z report: wrote .*; mail not sent: cannot connect to SMTP server")
        first.wait_for(r"Z report: will try the mail again at ")
        assert first.stop()[0] == 0
    finally:
        first.kill()
    with sink:
        second = Daemon(daemon_args(db), child_env(), tmp_path)
        try:
            second.wait_for(r"Z report: missed its time: the report of 2026-W47 .* not mailed")
            second.wait_for(re.escape(SENT_W47))
            assert second.stop()[0] == 0
        finally:
            second.kill()
        assert len(sink.wait_for(1)) == 1


def test_message_ids_name_the_week_the_recipients_and_the_domain() -> None:
    def settings(to: str, sender: str = "tracker@example.org") -> mail.MailSettings:
        return mail.load_settings(
            {"TRACKER_SMTP_HOST": "h", "TRACKER_MAIL_FROM": sender, "TRACKER_MAIL_TO": to}
        )

    one = mail.message_id("report", ["2026-W47"], settings("a@x.org, B@y.org"))
    assert one == mail.message_id("report", ["2026-W47"], settings("b@y.org, a@x.org"))
    assert re.fullmatch(r"<tracker-report-[0-9a-f]{32}@example\.org>", one)
    assert one != mail.message_id("report", ["2026-W48"], settings("a@x.org, b@y.org"))
    assert one != mail.message_id("report", ["2026-W47"], settings("a@x.org"))
    assert one != mail.message_id(
        "report", ["2026-W47"], settings("a@x.org, b@y.org", "t@example.net")
    )
