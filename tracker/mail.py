"""Mail: settings from the environment (or a TOML file), messages, SMTP delivery, each mail once.

Each mail goes out once: it is claimed in the database before it is sent (`claim`), and recorded
as sent, failed, or — when the server's answer to the complete message never came, or recording
failed — left claimed: the one unknown window, never resent by itself (`send_claimed`). Its
Message-ID is derived from what it is and whom it goes to (`message_id`), so a deliberate resend
is recognisably the same message. The whole SMTP exchange has one deadline (TRACKER_SMTP_TIMEOUT)
and a temporary refusal (4xx) is tried once more.

The SMTP password comes from TRACKER_SMTP_PASSWORD or the config file only. It is never stored in the
database, never part of a printed message or an error: `MailSettings` hides it from `repr`, and
every SMTP error text is scrubbed of it before it reaches a person.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import smtplib
import socket
import ssl
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tracker.errors import EnvironmentProblem, TrackerError, UsageError

if TYPE_CHECKING:
    from tracker.reporting import Produced
    from tracker.store import Database
    from tracker.store.notifications import Notice
    from tracker.weeks import IsoWeek

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0

# setting → (environment variable, key in the [smtp] table of $TRACKER_CONFIG)
VARIABLES = {
    "host": ("TRACKER_SMTP_HOST", "host"),
    "port": ("TRACKER_SMTP_PORT", "port"),
    "security": ("TRACKER_SMTP_SECURITY", "security"),
    "user": ("TRACKER_SMTP_USER", "user"),
    "password": ("TRACKER_SMTP_PASSWORD", "password"),
    "sender": ("TRACKER_MAIL_FROM", "from"),
    "to": ("TRACKER_MAIL_TO", "to"),
    "timeout": ("TRACKER_SMTP_TIMEOUT", "timeout"),
    "ca_file": ("TRACKER_SMTP_CA_FILE", "ca_file"),
}

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"
_ADDRESS = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")


@dataclass(frozen=True)
class Address:
    name: str
    addr: str

    def __str__(self) -> str:
        return formataddr((self.name, self.addr)) if self.name else self.addr


def parse_addresses(raw: str | Sequence[str], what: str) -> tuple[Address, ...]:
    """'a@x.org, Name <b@y.org>' (or a list of such) → addresses; anything odd is a usage error."""
    values = [raw] if isinstance(raw, str) else list(raw)
    result: list[Address] = []
    for value in values:
        if any(ch in value for ch in "\r\n\x00"):
            raise UsageError(f"{what}: line breaks are not allowed in an address")
        if not value.strip():
            continue
        for name, addr in getaddresses([value]):
            if not _ADDRESS.match(addr) or len(addr) > 254:
                shown = addr or value.strip()
                raise UsageError(f"{what}: {shown[:80]!r} is not an email address")
            if Address(name, addr) not in result:
                result.append(Address(name.strip(), addr))
    return tuple(result)


@dataclass(frozen=True)
class MailSettings:
    host: str | None
    port: int
    security: str
    user: str | None
    password: str | None = field(repr=False)
    sender: Address | None
    recipients: tuple[Address, ...]
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def scrub(self, text: str) -> str:
        """`text` without the password, raw or in the base64 forms AUTH PLAIN/LOGIN would use."""
        secret = self.password
        if not secret:
            return text
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        if self.user:
            forms.add(base64.b64encode(f"\0{self.user}\0{secret}".encode()).decode())
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def _config_file(env: Mapping[str, str]) -> dict[str, Any]:
    raw = env.get("TRACKER_CONFIG")
    if not raw:
        return {}
    path = Path(raw).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"TRACKER_CONFIG: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"TRACKER_CONFIG: {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"TRACKER_CONFIG: {path}: not valid TOML: {exc}") from None
    table = data.get("smtp", {})
    if not isinstance(table, dict):
        raise UsageError(f"TRACKER_CONFIG: {path}: [smtp] must be a table")
    known = {key for _, key in VARIABLES.values()}
    for key in table:
        if key not in known:
            raise UsageError(
                f"TRACKER_CONFIG: {path}: unknown key '{key}' in [smtp] "
                f"(known: {', '.join(sorted(known))})"
            )
    return {k: (", ".join(v) if isinstance(v, list) else str(v)) for k, v in table.items()}


def load_settings(
    env: Mapping[str, str],
    *,
    to: Sequence[str] | None = None,
    need_host: bool = True,
    recipients_variable: str = "TRACKER_MAIL_TO",
) -> MailSettings:
    """Mail settings from the environment snapshot (`Settings.env`), then $TRACKER_CONFIG's
    [smtp] table; `to` overrides the recipients. A missing or bad setting is a UsageError naming
    the variable."""
    config = _config_file(env)

    def get(setting: str) -> str | None:
        variable, key = VARIABLES[setting]
        if setting == "to":
            variable = recipients_variable
            value = env.get(variable) or env.get("TRACKER_MAIL_TO") or config.get(key)
        else:
            value = env.get(variable) or config.get(key)
        return value.strip() if value and value.strip() else None

    def missing(setting: str) -> UsageError:
        variable = VARIABLES[setting][0]
        if setting == "to" and recipients_variable != variable:
            variable = f"{variable} (or {recipients_variable})"
        where = " (or in the [smtp] table of $TRACKER_CONFIG)" if env.get("TRACKER_CONFIG") else ""
        return UsageError(f"{variable} is not set{where}; it is needed to send mail")

    security = (get("security") or "starttls").lower()
    if security not in SECURITY:
        raise UsageError(
            f"TRACKER_SMTP_SECURITY must be one of {', '.join(SECURITY)}, got {security!r}"
        )
    host = get("host")
    if host is None and need_host:
        raise missing("host")
    if host is not None and (any(ch.isspace() for ch in host) or "/" in host):
        raise UsageError(f"TRACKER_SMTP_HOST must be a host name, got {host!r}")
    port = _port(get("port"), security)
    timeout = _timeout(get("timeout"))
    ca_file = get("ca_file")
    if ca_file is not None and not Path(ca_file).expanduser().is_file():
        raise UsageError(f"TRACKER_SMTP_CA_FILE: {ca_file}: no such file")

    sender_raw = get("sender")
    if sender_raw is None:
        raise missing("sender")
    senders = parse_addresses(sender_raw, "TRACKER_MAIL_FROM")
    if len(senders) != 1:
        raise UsageError("TRACKER_MAIL_FROM must hold exactly one address")
    if to:
        recipients = parse_addresses(to, "--to")
    else:
        raw_to = get("to")
        if raw_to is None:
            raise missing("to")
        recipients = parse_addresses(raw_to, recipients_variable)
    if not recipients:
        raise missing("to")
    return MailSettings(
        host=host,
        port=port,
        security=security,
        user=get("user"),
        password=env.get("TRACKER_SMTP_PASSWORD") or config.get("password") or None,
        sender=senders[0],
        recipients=recipients,
        timeout=timeout,
        ca_file=str(Path(ca_file).expanduser()) if ca_file else None,
    )


def _port(raw: str | None, security: str) -> int:
    if raw is None:
        return DEFAULT_PORTS[security]
    try:
        port = int(raw)
    except ValueError:
        raise UsageError(f"TRACKER_SMTP_PORT must be a number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"TRACKER_SMTP_PORT must be between 1 and 65535, got {port}")
    return port


def _timeout(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(raw)
    except ValueError:
        raise UsageError(f"TRACKER_SMTP_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not timeout > 0:
        raise UsageError("TRACKER_SMTP_TIMEOUT must be more than 0 seconds")
    return timeout


# ---------------------------------------------------------------- messages


def message_id(kind: str, parts: Sequence[str], settings: MailSettings) -> str:
    """The same Message-ID for the same mail: a hash of what it is (the kind and, e.g., the week),
    its sorted recipients and the sending domain. A copy sent again after the unknown window (see
    `deliver`) is then recognisably the same message, and mail clients show it once."""
    assert settings.sender is not None
    domain = settings.sender.addr.rpartition("@")[2].lower()
    to = ",".join(sorted({a.addr.lower() for a in settings.recipients}))
    digest = hashlib.sha256("\n".join([kind, *parts, to, domain]).encode("utf-8")).hexdigest()
    return f"<tracker-{kind}-{digest[:32]}@{domain}>"


def _headers(message: EmailMessage, settings: MailSettings, subject: str, mid: str | None) -> None:
    assert settings.sender is not None
    message["Subject"] = subject
    message["From"] = str(settings.sender)
    message["To"] = ", ".join(str(a) for a in settings.recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = mid or make_msgid(domain=settings.sender.addr.rpartition("@")[2])
    # RFC 3834: tells vacation responders not to answer a robot.
    message["Auto-Submitted"] = "auto-generated"


def report_message(
    settings: MailSettings,
    subject: str,
    markdown_text: str,
    attachment: bytes,
    filename: str,
    *,
    mid: str | None = None,
) -> EmailMessage:
    """text/plain (the Markdown) and text/html as alternatives, plus the .md file attached."""
    message = EmailMessage()
    _headers(message, settings, subject, mid)
    message.set_content(markdown_text, subtype="plain", charset="utf-8")
    from tracker.outputs.html import render_html

    message.add_alternative(render_html(markdown_text, subject), subtype="html", charset="utf-8")
    message.add_attachment(attachment, maintype="text", subtype="markdown", filename=filename)
    return message


def text_message(
    settings: MailSettings, subject: str, text: str, *, mid: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    _headers(message, settings, subject, mid)
    message.set_content(text, subtype="plain", charset="utf-8")
    return message


def describe_message(message: EmailMessage) -> str:
    """What a dry run prints: the headers, the plain-text body, and a line per other part."""
    lines = [f"{k}: {v}" for k, v in message.items() if k.lower() != "content-type"]
    lines.append("")
    for part in message.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        name = part.get_filename()
        if name:
            lines.append(f"--- attachment {name} ({ctype}, {len(payload)} bytes) ---")
        elif ctype == "text/plain":
            lines.append(f"--- {ctype} ---")
            lines.append(part.get_content().rstrip("\n"))
        else:
            lines.append(f"--- {ctype} ({len(payload)} bytes) ---")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- sending


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"TRACKER_SMTP_CA_FILE: {settings.ca_file}: cannot load: {exc}") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


RETRY_PAUSE = 1.0  # seconds before the one retry of a temporary (4xx) refusal


class MaybeSent(EnvironmentProblem):
    """The whole message reached the server, but its answer did not come back: it may have been
    accepted. Never retried by itself."""


class _Temporary(Exception):
    """A 4xx answer: the server asks to try again later. `text` is the one-line description."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _DeadlineReader(io.RawIOBase):
    """A socket read that never waits past the exchange's deadline, however the server paces its
    lines (a `220-` continuation every 2 s re-arms a per-read timeout forever, not this)."""

    def __init__(self, sock: socket.socket, deadline: float, owner: _SMTP) -> None:
        self._sock = sock
        self._deadline = deadline
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP exchange ran out of time")
        self._sock.settimeout(left)
        got = self._sock.recv_into(buffer)
        self._owner.heard += got
        return got


class _SMTP(smtplib.SMTP):
    """smtplib with one deadline for the whole exchange: connecting, every read and every write
    get only the time that is left. Counts the bytes heard, and notes when the message's final
    dot went out (after that, a missing answer leaves the delivery unknown)."""

    def __init__(self, *, deadline: float, **kwargs: Any) -> None:
        self.deadline = deadline
        self.heard = 0
        self.dot_sent = False
        super().__init__(timeout=max(0.001, deadline - time.monotonic()), **kwargs)

    def open(self, host: str, port: int) -> None:
        """Connect and read the greeting (what the constructor would do, but on an object that
        already exists, so that what was heard is known when it fails)."""
        self._host = host
        code, message = self.connect(host, port)
        if code != 220:
            self.close()
            raise smtplib.SMTPConnectError(code, message)

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP exchange ran out of time")
        return left

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(host, port, self.left())  # type: ignore[misc]

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = io.BufferedReader(_DeadlineReader(self.sock, self.deadline, self))
        return super().getreply()

    def send(self, s: Any) -> None:
        if self.sock is not None:
            try:
                self.sock.settimeout(self.left())
            except TimeoutError:
                self.close()
                raise
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.dot_sent = True


class _SMTP_SSL(_SMTP, smtplib.SMTP_SSL):
    pass


def _describe(
    exc: BaseException, settings: MailSettings, *, expired: bool = False, heard: int = 0
) -> str:
    where = f"SMTP server {settings.where}"
    if expired and heard:
        text = (
            f"{where} did not finish the exchange within {settings.timeout:g} s "
            "(TRACKER_SMTP_TIMEOUT bounds the whole exchange)"
        )
    elif expired:
        text = f"{where} did not answer within {settings.timeout:g} s"
    elif isinstance(exc, smtplib.SMTPAuthenticationError):
        detail = _text(exc.smtp_error) if exc.smtp_error else ""
        text = f"{where} refused the login for user '{settings.user}': {exc.smtp_code} {detail}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        text = f"{where}: {exc}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(
            f"{addr} ({code} {msg.decode('utf-8', 'replace')})"
            for addr, (code, msg) in exc.recipients.items()
        )
        text = f"{where} refused every recipient: {refused}"
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        text = f"{where} refused the sender {exc.sender}: {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc):
        # smtplib reports a read timeout as a disconnection.
        text = f"{where} did not answer within {settings.timeout:g} s"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = f"{where} closed the connection unexpectedly"
    elif isinstance(exc, ConnectionRefusedError):
        text = f"cannot connect to {where}: connection refused"
    elif isinstance(exc, TimeoutError):
        text = f"{where} did not answer within {settings.timeout:g} s"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = (
            f"{where}: TLS certificate not trusted ({exc.verify_message}); "
            "set TRACKER_SMTP_CA_FILE to the CA that signed it"
        )
    elif isinstance(exc, ssl.SSLError):
        text = f"{where}: TLS failed: {exc.reason or exc}"
    elif isinstance(exc, socket.gaierror):
        text = f"cannot find SMTP server {settings.host}: {exc.strerror}"
    elif isinstance(exc, OSError):
        text = f"cannot talk to {where}: {exc.strerror or exc}"
    else:
        text = f"{where}: {type(exc).__name__}: {exc}"
    return settings.scrub(" ".join(text.split()))


def _temporary(exc: BaseException) -> bool:
    """A 4xx answer (451 local error, 421 closing, 450 mailbox busy, …): worth one more try."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(
            400 <= code < 500 for code, _ in exc.recipients.values()
        )
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= exc.smtp_code < 500


def _send_once(settings: MailSettings, message: EmailMessage, deadline: float) -> list[str]:
    assert settings.host is not None and settings.sender is not None
    smtp: _SMTP | None = None
    try:
        if settings.security == "ssl":
            smtp = _SMTP_SSL(deadline=deadline, context=_tls_context(settings))
        else:
            smtp = _SMTP(deadline=deadline)
        smtp.open(settings.host, settings.port)
        if settings.security == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise EnvironmentProblem(
                    f"SMTP server {settings.where} does not offer STARTTLS; use "
                    "TRACKER_SMTP_SECURITY=ssl, or none for a local relay"
                )
            smtp.starttls(context=_tls_context(settings))
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        refused = smtp.send_message(
            message,
            from_addr=settings.sender.addr,
            to_addrs=[a.addr for a in settings.recipients],
        )
    except (EnvironmentProblem, UsageError):
        if smtp is not None:
            smtp.close()
        raise
    except (smtplib.SMTPException, OSError) as exc:
        expired = time.monotonic() >= deadline
        heard = smtp.heard if smtp is not None else 0
        if smtp is not None:
            smtp.close()
        text = _describe(exc, settings, expired=expired, heard=heard)
        if (
            smtp is not None
            and smtp.dot_sent
            and not isinstance(exc, smtplib.SMTPResponseException)
        ):
            raise MaybeSent(f"{text} after the whole message had been sent") from None
        if _temporary(exc):
            raise _Temporary(text) from None
        raise EnvironmentProblem(text) from None
    # Accepted: whatever QUIT answers (or does not) changes nothing.
    with suppress(Exception):
        smtp.quit()
    smtp.close()
    return sorted(refused)


def send(settings: MailSettings, message: EmailMessage) -> list[str]:
    """Deliver `message` within TRACKER_SMTP_TIMEOUT for the whole exchange; returns recipients
    the server refused while accepting others. A temporary refusal (4xx) is tried once more.

    Raises EnvironmentProblem (one line, no password) when nothing was delivered, and MaybeSent
    when the answer to the complete message never came."""
    if settings.host is None:
        raise UsageError("TRACKER_SMTP_HOST is not set; it is needed to send mail")
    if settings.user and settings.security == "none" and settings.host not in _LOOPBACK:
        raise UsageError(
            "refusing to send the SMTP password unencrypted: set TRACKER_SMTP_SECURITY to "
            "starttls or ssl"
        )
    deadline = time.monotonic() + settings.timeout
    try:
        return _send_once(settings, message, deadline)
    except _Temporary as first:
        pause = min(RETRY_PAUSE, deadline - time.monotonic() - RETRY_PAUSE)
        if pause < 0:
            raise EnvironmentProblem(first.text) from None
        time.sleep(pause)
    try:
        return _send_once(settings, message, deadline)
    except _Temporary as second:
        raise EnvironmentProblem(f"{second.text} (tried twice)") from None


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


# ---------------------------------------------------------------- each mail once

CLAIM_TIMEOUT = timedelta(minutes=10)  # a claim this old is no longer "being sent right now"
_IN_FLIGHT: set[str] = set()  # keys this process is sending right now
_IN_FLIGHT_LOCK = threading.Lock()


def recipients_hash(recipients: Sequence[Address]) -> str:
    joined = ",".join(sorted({a.addr.lower() for a in recipients}))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def report_key(week_label: str, recipients: Sequence[Address]) -> str:
    return f"report:{week_label}:{recipients_hash(recipients)}"


def claimer() -> str:
    """Who claims a send: this host and process."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def _claimer_alive(notice: Notice) -> bool | None:
    """True/False when the claiming process is on this host and running/gone; None elsewhere."""
    host, _, pid = (notice.claimed_by or "").partition(" pid ")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    if int(pid) == os.getpid():
        with _IN_FLIGHT_LOCK:
            return notice.key in _IN_FLIGHT
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def being_sent(notice: Notice, now: datetime) -> bool:
    """A claim whose sender may still be at work: not to be touched, not even by a resend."""
    if notice.state != "claimed" or notice.claimed_at is None:
        return False
    return _claimer_alive(notice) is not False and now - notice.claimed_at < CLAIM_TIMEOUT


def unknown(notice: Notice, now: datetime) -> bool:
    """Claimed, and nobody is sending it any more: the server may or may not have taken it."""
    return notice.state == "claimed" and not being_sent(notice, now)


def already_sent(db: Database, key: str) -> datetime | None:
    from tracker.store import notifications

    with db.read() as conn:
        return notifications.sent_at(conn, key)


def claim(
    db: Database,
    keys: Sequence[str],
    *,
    resend: bool = False,
    detail: str = "",
    payloads: dict[str, dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> tuple[list[str], dict[str, Notice]]:
    """Claim `keys` for one send, atomically: (the keys now ours, the others as they stand).
    A failed send is claimed again; with `resend` also a sent one or one whose fate is unknown,
    never one that another process is sending right now."""
    from tracker.dates import utcnow
    from tracker.store import notifications

    now = now or utcnow()

    def may_take(notice: Notice) -> bool:
        if notice.state == notifications.FAILED:
            return True
        return resend and not being_sent(notice, now)

    with db.write(guarded=False) as conn:
        won, lost = notifications.claim(
            conn,
            keys,
            by=claimer(),
            now=now,
            detail=detail,
            payloads=payloads,
            may_take=may_take,
        )
    with _IN_FLIGHT_LOCK:  # ours now: until send_claimed ends, this process is sending them
        _IN_FLIGHT.update(won)
    return won, lost


def release(keys: Iterable[str]) -> None:
    """This process is no longer sending these keys (see `being_sent`)."""
    with _IN_FLIGHT_LOCK:
        _IN_FLIGHT.difference_update(keys)


def send_claimed(
    db: Database,
    settings: MailSettings,
    message: EmailMessage,
    keys: Sequence[str],
    *,
    what: str,
    detail: str,
) -> list[str]:
    """Send a message whose keys this process has claimed, and record how it went: `sent` once
    the server accepted it, `failed` when it certainly did not, left `claimed` when that cannot be
    known. Returns the recipients refused while others were accepted; raises one line otherwise."""
    from tracker.dates import utcnow
    from tracker.store import notifications

    me = claimer()
    to = ", ".join(a.addr for a in settings.recipients)
    try:
        try:
            refused = send(settings, message)
        except MaybeSent as exc:
            with suppress(Exception), db.write(guarded=False) as conn:
                notifications.note(conn, keys, error=str(exc))
            raise EnvironmentProblem(
                f"{what}: {exc}; the server may have taken it, so it is not sent again by "
                "itself (sent state unknown); --resend sends it again"
            ) from None
        except TrackerError as exc:
            with suppress(Exception), db.write(guarded=False) as conn:
                notifications.mark_failed(conn, keys, by=me, now=utcnow(), error=str(exc))
            raise
        try:
            with db.write(guarded=False) as conn:
                notifications.mark_sent(
                    conn, keys, by=me, now=utcnow(), detail=detail, mid=message["Message-ID"]
                )
        except Exception as exc:
            from tracker.store import describe_error

            raise EnvironmentProblem(
                f"{what} was sent to {to}, but recording that failed "
                f"({describe_error(exc, db.display)}); it stays claimed, so it is not sent "
                "again by itself: the next run reports its state as unknown"
            ) from None
    finally:
        release(keys)
    return refused


def unknown_line(what: str, notice: Notice, hint: str = "run with --resend to send again") -> str:
    when = f"{notice.claimed_at:%Y-%m-%d %H:%M} UTC" if notice.claimed_at else "an unknown time"
    why = notice.last_error or "the sending process ended before it could record the outcome"
    return (
        f"sent state unknown for {what}, claimed at {when} by {notice.claimed_by or 'unknown'} "
        f"({why}); {hint}"
    )


# ---------------------------------------------------------------- the weekly report by mail


@dataclass(frozen=True)
class Delivery:
    state: str  # sent | already-sent | being-sent | dry-run
    lines: list[str]


def deliver_report(
    db: Database,
    produced: Produced,
    settings: MailSettings,
    *,
    resend: bool = False,
    dry_run: bool = False,
    out: TextIO | None = None,
) -> Delivery:
    """Mail the written report exactly once per week and recipient list; `resend` mails it again.

    The send is claimed in the database first, so of two runs at once (two daemons, a daemon and
    cron, two team members) only one sends. Raises one line when it was not sent, or when its
    fate is unknown (see `send_claimed`)."""
    from tracker.dates import utcnow

    report, written = produced.report, produced.written
    label = report.week.label
    key = report_key(label, settings.recipients)
    to = ", ".join(a.addr for a in settings.recipients)
    mid = message_id("report", [label], settings)
    # The attachment and the plain part are the file as written, even when an earlier run's
    # identical file was kept (its "Generated at" line then tells when it was first made).
    text = written.data.decode("utf-8")
    message = report_message(
        settings, report.subject, text, written.data, written.path.name, mid=mid
    )
    if dry_run:
        (out or sys.stdout).write(describe_message(message))
        return Delivery("dry-run", [])
    digest = hashlib.sha256(written.data).hexdigest()[:16]
    detail = f"{written.path.name} sha256:{digest} {mid}"
    payload = {"kind": "report", "week": label, "to": [a.addr for a in settings.recipients]}
    now = utcnow()
    won, lost = claim(db, [key], resend=resend, detail=detail, payloads={key: payload}, now=now)
    if not won:
        notice = lost[key]
        if notice.state == "sent":
            return Delivery(
                "already-sent",
                [
                    f"report {label} was already sent to {to} on "
                    f"{notice.changed_at:%Y-%m-%d %H:%M} UTC; --resend sends it again"
                ],
            )
        if being_sent(notice, now):
            when = f"{notice.claimed_at:%Y-%m-%d %H:%M:%S}" if notice.claimed_at else "?"
            return Delivery(
                "being-sent",
                [
                    f"report {label} is being sent to {to} by {notice.claimed_by} (claimed at "
                    f"{when} UTC); not sending it twice"
                ],
            )
        raise EnvironmentProblem(
            unknown_line(f"week {label} (report to {to})", notice, _hint(label))
        )
    refused = send_claimed(db, settings, message, [key], what=f"report {label}", detail=detail)
    lines = [f"sent report {label} to {to}"]
    if refused:
        lines.append(f"warning: the server refused {', '.join(refused)}")
    return Delivery("sent", lines)


def _hint(label: str) -> str:
    return f"run 'tracker report weekly --week {label} --email --resend' to send it again"


class Unsent(EnvironmentProblem):
    """Some mail was not sent; `lines` tells what was."""

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = lines


BACKLOG_WEEKS = 4  # a report run also sends this many earlier weeks whose mail failed


def backlog(
    db: Database, settings: MailSettings, current: IsoWeek
) -> tuple[list[IsoWeek], list[str]]:
    """Earlier weeks (at most BACKLOG_WEEKS back) whose report to these recipients was written but
    not sent — a failed send — oldest first; and a line for each whose fate is unknown."""
    from tracker.dates import utcnow
    from tracker.store import notifications

    weeks: list[IsoWeek] = []
    step = current
    for _ in range(BACKLOG_WEEKS):
        step = step.previous
        weeks.append(step)
    keys = {report_key(w.label, settings.recipients): w for w in weeks}
    with db.read() as conn:
        found = notifications.find_many(conn, list(keys))
    now = utcnow()
    due = sorted(keys[k] for k, n in found.items() if n.state == notifications.FAILED)
    to = ", ".join(a.addr for a in settings.recipients)
    unknown_lines = [
        unknown_line(f"week {keys[k].label} (report to {to})", n, _hint(keys[k].label))
        for k, n in sorted(found.items())
        if unknown(n, now)
    ]
    return due, unknown_lines


def deliver_reports(
    db: Database,
    current: Produced,
    settings: MailSettings,
    produce_week: Callable[[IsoWeek], Produced],
    *,
    resend: bool = False,
    with_backlog: bool = True,
) -> list[str]:
    """The report of `current`'s week, and before it every earlier week of the backlog (rebuilt
    with `produce_week`). Lines for the person; one EnvironmentProblem at the end when anything
    was not sent (naming the first problem and how many more there were)."""
    lines: list[str] = []
    problems: list[str] = []
    weeks: list[IsoWeek] = []
    if with_backlog:
        weeks, problems = backlog(db, settings, current.report.week)
    for week in weeks:
        try:
            delivery = deliver_report(db, produce_week(week), settings)
        except TrackerError as exc:
            problems.append(str(exc))
            continue
        lines.extend(f"{line} (catching up)" for line in delivery.lines)
    try:
        lines.extend(deliver_report(db, current, settings, resend=resend).lines)
    except TrackerError as exc:
        problems.insert(0, str(exc))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Unsent(problems[0] + more, lines)
    return lines
