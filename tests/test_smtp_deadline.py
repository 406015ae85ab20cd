"""TRACKER_SMTP_TIMEOUT bounds the whole SMTP exchange, not each read.

A tiny real server greets with a `220-` continuation line every 2 s and never finishes its
greeting: every single read succeeds within a per-read timeout, so only a deadline for the whole
exchange ends it. The same for a server that answers every command, slowly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tracker import mail
from tracker.errors import EnvironmentProblem

from .faulty_server import run_tracker
from .test_exactly_once import SOURCES
from .test_report import make_world


@contextmanager
def talking_server(talk: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 running `talk` for each connection; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=talk, args=(conn, stop), daemon=True)
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(2)
        server.close()


def endless_greeting(conn: socket.socket, stop: threading.Event) -> None:
    with conn:
        n = 0
        while not stop.wait(0 if n == 0 else 2.0):
            try:
                conn.sendall(f"220-still greeting you, line {n}\r\n".encode())
            except OSError:
                return
            n += 1


def slow_answers(conn: socket.socket, stop: threading.Event) -> None:
    """A server that answers every command correctly, 1.5 s later each time."""
    with conn:
        try:
            conn.sendall(b"220 slow.example ESMTP\r\n")
            reader = conn.makefile("rb")
            while not stop.is_set():
                line = reader.readline()
                if not line:
                    return
                time.sleep(1.5)
                word = line.split(b" ")[0].strip().upper()
                if word in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 slow.example\r\n")
                elif word == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    while reader.readline() not in (b".\r\n", b""):
                        pass
                    conn.sendall(b"250 kept\r\n")
                elif word == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return


def settings(port: int, timeout: str) -> mail.MailSettings:
    return mail.load_settings(
        {
            "TRACKER_SMTP_HOST": "127.0.0.1",
            "TRACKER_SMTP_PORT": str(port),
            "TRACKER_SMTP_SECURITY": "none",
            "TRACKER_SMTP_TIMEOUT": timeout,
            "TRACKER_MAIL_FROM": "tracker@example.org",
            "TRACKER_MAIL_TO": "watcher@example.org",
        }
    )


@pytest.mark.parametrize(
    ("talk", "says"),
    [
        (endless_greeting, "did not finish the exchange within 3 s"),
        (slow_answers, "did not finish the exchange within 3 s"),
    ],
    ids=["220-continuation-every-2s", "every-answer-1.5s-late"],
)
def test_a_talking_server_is_cut_at_the_deadline(
    talk: Callable[[socket.socket, threading.Event], None], says: str
) -> None:
    with talking_server(talk) as port:
        smtp = settings(port, "3")
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem) as caught:
            mail.send(smtp, mail.text_message(smtp, "s", "t"))
        elapsed = time.monotonic() - started
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    print(f"cut after {elapsed:.2f} s (deadline 3 s)")
    assert 2.9 <= elapsed < 4.5  # the deadline, not a multiple of it


@pytest.mark.slow
def test_report_email_against_a_talking_server_ends_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "c.db"
    make_world(db).dispose()
    (tmp_path / "sources.toml").write_text(SOURCES, encoding="utf-8")
    with talking_server(endless_greeting) as port:
        r = run_tracker(
            "--db",
            str(db),
            "report",
            "weekly",
            "--email",
            env={
                "TRACKER_TODAY": "2026-11-26",
                "TRACKER_SOURCES": str(tmp_path / "sources.toml"),
                **settings_env(port),
            },
        )
    assert r.code == 1
    assert r.err == (
        f"error: SMTP server 127.0.0.1:{port} did not finish the exchange within 3 s "
        "(TRACKER_SMTP_TIMEOUT bounds the whole exchange)\n"
    )
    assert r.seconds < 10  # it used to run past 60 s
    assert Path("reports/2026-W47.md").is_file()  # the file is kept for the next run


def settings_env(port: int) -> dict[str, str]:
    return {
        "TRACKER_SMTP_HOST": "127.0.0.1",
        "TRACKER_SMTP_PORT": str(port),
        "TRACKER_SMTP_SECURITY": "none",
        "TRACKER_SMTP_TIMEOUT": "3",
        "TRACKER_MAIL_FROM": "tracker@example.org",
        "TRACKER_MAIL_TO": "watcher@example.org",
    }
