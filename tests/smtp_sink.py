"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), optionally with STARTTLS or SMTPS and AUTH.

Every accepted message is kept as raw bytes with its envelope, so a test can parse exactly what a
mail client would receive. `env()` gives the TRACKER_SMTP_* settings that point at the sink.

For the exactly-once tests it can misbehave after the whole message has arrived: answer from a
queue of `replies` (e.g. "451 4.3.0 try again later"; a 4xx/5xx answer keeps nothing), keep the
message and then wait `delay` seconds before answering (without blocking other connections), or
run `on_data` first (a test's own action at that exact moment: kill the sender, break its
database).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    tls: bool

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        sink = self.sink
        sink.attempts += 1
        if sink.on_data is not None:
            sink.on_data()
        reply = sink.replies.pop(0) if sink.replies else "250 OK"
        if reply.startswith("2"):  # kept at once, as a server commits a message before answering
            auth = session.auth_data
            login = auth.login.decode() if isinstance(auth, LoginPassword) else None
            sink.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=envelope.original_content or envelope.content,
                    login=login,
                    tls=server.transport.get_extra_info("ssl_object") is not None,
                )
            )
        if sink.delay:
            await asyncio.sleep(sink.delay)
        return reply
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        sink.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content or envelope.content,
                login=login,
                tls=server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return reply


class SmtpSink:
    """`tls`: None (plain), "starttls" or "ssl"; `users`: login → password (AUTH required)."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        users: dict[str, str] | None = None,
        ca: trustme.CA | None = None,
        port: int | None = None,
        workdir: Path | None = None,
        delay: float = 0.0,
        replies: list[str] | None = None,
        on_data: Callable[[], None] | None = None,
    ) -> None:
        self.tls = tls
        self.delay = delay
        self.replies = list(replies or [])
        self.on_data = on_data
        self.attempts = 0  # DATA commands received, whatever the answer
        self.users = users
        self.port = port or free_port()
        self.received: list[Received] = []
        self.auth_attempts: list[tuple[str, str]] = []
        self.ca = ca or (trustme.CA() if tls else None)
        self.ca_file: Path | None = None
        if self.ca is not None:
            self.ca_file = (workdir or Path.cwd()) / f"smtp-ca-{self.port}.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.auth_attempts.append((login, password))
        ok = self.users is not None and self.users.get(login) == password
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        if self.tls is not None:
            assert self.ca is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            if self.tls == "starttls":
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
            else:
                kwargs["ssl_context"] = context
        if self.users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            kwargs["auth_require_tls"] = self.tls is not None
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=5, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, **extra: str) -> dict[str, str]:
        values = {
            "TRACKER_SMTP_HOST": "127.0.0.1",
            "TRACKER_SMTP_PORT": str(self.port),
            "TRACKER_SMTP_SECURITY": self.tls or "none",
            "TRACKER_MAIL_FROM": "Tracker <tracker@example.org>",
            "TRACKER_MAIL_TO": "watcher@example.org, second@example.net",
            "TRACKER_SMTP_TIMEOUT": "5",
        }
        if self.ca_file is not None:
            values["TRACKER_SMTP_CA_FILE"] = str(self.ca_file)
        values.update(extra)
        return values

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


@contextmanager
def silent_server(mode: str) -> Iterator[int]:
    """A TCP port that misbehaves: 'mute' accepts and never greets; 'drop' accepts and hangs up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = int(server.getsockname()[1])
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            if mode == "drop":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()
