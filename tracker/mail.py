"""Mail: settings from the environment (or a TOML file), messages, SMTP delivery, "sent once".

The SMTP password comes from TRACKER_SMTP_PASSWORD or the config file only. It is never stored in the
database, never part of a printed message or an error: `MailSettings` hides it from `repr`, and
every SMTP error text is scrubbed of it before it reaches a person.
"""

from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import socket
import ssl
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tracker.errors import EnvironmentProblem, UsageError

if TYPE_CHECKING:
    from tracker.reporting import Produced
    from tracker.store import Database

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
    port_raw = get("port")
    port = DEFAULT_PORTS[security]
    if port_raw is not None:
        try:
            port = int(port_raw)
        except ValueError:
            raise UsageError(f"TRACKER_SMTP_PORT must be a number, got {port_raw!r}") from None
        if not 0 < port < 65536:
            raise UsageError(f"TRACKER_SMTP_PORT must be between 1 and 65535, got {port}")
    timeout = DEFAULT_TIMEOUT
    timeout_raw = get("timeout")
    if timeout_raw is not None:
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise UsageError(
                f"TRACKER_SMTP_TIMEOUT must be a number of seconds, got {timeout_raw!r}"
            ) from None
        if timeout <= 0:
            raise UsageError("TRACKER_SMTP_TIMEOUT must be more than 0 seconds")
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


# ---------------------------------------------------------------- messages


def _headers(message: EmailMessage, settings: MailSettings, subject: str) -> None:
    assert settings.sender is not None
    message["Subject"] = subject
    message["From"] = str(settings.sender)
    message["To"] = ", ".join(str(a) for a in settings.recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.sender.addr.rpartition("@")[2])
    # RFC 3834: tells vacation responders not to answer a robot.
    message["Auto-Submitted"] = "auto-generated"


def report_message(
    settings: MailSettings, subject: str, markdown_text: str, attachment: bytes, filename: str
) -> EmailMessage:
    """text/plain (the Markdown) and text/html as alternatives, plus the .md file attached."""
    message = EmailMessage()
    _headers(message, settings, subject)
    message.set_content(markdown_text, subtype="plain", charset="utf-8")
    from tracker.outputs.html import render_html

    message.add_alternative(render_html(markdown_text, subject), subtype="html", charset="utf-8")
    message.add_attachment(attachment, maintype="text", subtype="markdown", filename=filename)
    return message


def text_message(settings: MailSettings, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    _headers(message, settings, subject)
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


def _describe(exc: BaseException, settings: MailSettings) -> str:
    where = f"SMTP server {settings.where}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
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


def send(settings: MailSettings, message: EmailMessage) -> list[str]:
    """Deliver `message`; returns recipients the server refused while accepting others.

    Raises EnvironmentProblem (one line, no password) when nothing could be delivered.
    """
    if settings.host is None:
        raise UsageError("TRACKER_SMTP_HOST is not set; it is needed to send mail")
    if settings.user and settings.security == "none" and settings.host not in _LOOPBACK:
        raise UsageError(
            "refusing to send the SMTP password unencrypted: set TRACKER_SMTP_SECURITY to "
            "starttls or ssl"
        )
    assert settings.sender is not None
    try:
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout,
                context=_tls_context(settings),
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
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
        raise
    except (smtplib.SMTPException, OSError) as exc:
        raise EnvironmentProblem(_describe(exc, settings)) from None
    return sorted(refused)


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


# ---------------------------------------------------------------- "sent once" bookkeeping


def recipients_hash(recipients: Sequence[Address]) -> str:
    joined = ",".join(sorted({a.addr.lower() for a in recipients}))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def report_key(week_label: str, recipients: Sequence[Address]) -> str:
    return f"report:{week_label}:{recipients_hash(recipients)}"


def already_sent(db: Database, key: str) -> datetime | None:
    from tracker.store import reads

    with db.read() as conn:
        return reads.sent_at(conn, key)


def sent_keys(db: Database, keys: Sequence[str]) -> set[str]:
    from tracker.store import reads

    with db.read() as conn:
        return reads.sent_keys(conn, keys)


def record_sent(db: Database, keys: Sequence[str], detail: str) -> None:
    """Remember that these notifications went out; an existing key is updated (a --resend)."""
    from tracker.dates import utcnow
    from tracker.store import writes

    with db.write() as conn:
        writes.record_sent(conn, keys, detail, utcnow())


# ---------------------------------------------------------------- the weekly report by mail


@dataclass(frozen=True)
class Delivery:
    state: str  # sent | already-sent | dry-run
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
    """Mail the written report once per week and recipient list; `resend` mails it again."""
    report, written = produced.report, produced.written
    key = report_key(report.week.label, settings.recipients)
    to = ", ".join(a.addr for a in settings.recipients)
    if not dry_run and not resend:
        when = already_sent(db, key)
        if when is not None:
            return Delivery(
                "already-sent",
                [
                    f"report {report.week.label} was already sent to {to} on "
                    f"{when:%Y-%m-%d %H:%M} UTC; --resend sends it again"
                ],
            )
    # The attachment and the plain part are the file as written, even when an earlier run's
    # identical file was kept (its "Generated at" line then tells when it was first made).
    text = written.data.decode("utf-8")
    message = report_message(settings, report.subject, text, written.data, written.path.name)
    if dry_run:
        (out or sys.stdout).write(describe_message(message))
        return Delivery("dry-run", [])
    refused = send(settings, message)
    digest = hashlib.sha256(written.data).hexdigest()[:16]
    detail = f"{written.path.name} sha256:{digest} {message['Message-ID']}"
    try:
        record_sent(db, [key], detail)
    except Exception as exc:
        raise EnvironmentProblem(
            f"report {report.week.label} was sent to {to}, but recording that failed "
            f"({type(exc).__name__}); a re-run would send it again"
        ) from None
    lines = [f"sent report {report.week.label} to {to}"]
    if refused:
        lines.append(f"warning: the server refused {', '.join(refused)}")
    return Delivery("sent", lines)
