"""`tracker report weekly --email` against a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from tracker import mail
from tracker.errors import UsageError
from tracker.outputs.html import render_html
from tracker.store import Database

from .conftest import errors

try:
    from .smtp_sink import SmtpSink, free_port, silent_server
    from .test_report import make_world
except ImportError:  # tests/ collected as top-level modules (no __init__.py)
    from smtp_sink import SmtpSink, free_port, silent_server  # type: ignore[no-redef]
    from test_report import make_world  # type: ignore[no-redef]

PASSWORD = "s3cret-Pa55word"
SUBJECT = (
    "Weekly report 2026-W47: 2 status changes, 3 new evidence, 1 waiting for review, "
    "1 source failing, 1 source silent"
)
SOURCES = "".join(
    f'[[source]]\nname = "{name}"\nkind = "rss"\nurl = "https://{name}.example/rss"\n'
    f'language = "en"\ncountry = "{country}"\n\n'
    for name, country in (("irna-en", "IR"), ("apa", "AZ"), ("trend", "AZ"))
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


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


def report_file() -> Path:
    return Path("reports/2026-W47.md")


def one_line_error(result: Any) -> str:
    assert errors(result.err).count("\n") == 1, result.err
    assert result.err.startswith("error: ")
    return str(result.err)


def test_the_report_arrives_with_both_alternatives_and_the_file(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink:
        use(monkeypatch, sink.env())
        result = cli("report", "weekly", "--email")
        assert result.code == 0, result.err
        assert result.out.splitlines() == [
            "reports/2026-W47.md",
            "sent report 2026-W47 to watcher@example.org, second@example.net",
        ]
        (got,) = sink.wait_for(1)
    data = report_file().read_bytes()
    assert got.mail_from == "tracker@example.org"
    assert got.rcpt_tos == ["watcher@example.org", "second@example.net"]
    msg = got.message()
    assert msg["Subject"] == SUBJECT
    assert msg["From"] == "Tracker <tracker@example.org>"
    assert msg["To"] == "watcher@example.org, second@example.net"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@example.org>")
    assert msg.get_content_type() == "multipart/mixed"
    alternative = msg.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain",
        "text/html",
    ]
    plain = msg.get_body(("plain",))
    # Text parts travel in canonical form (CRLF line ends); the attachment byte for byte.
    assert plain.get_content().replace("\r\n", "\n") == data.decode("utf-8")
    html = msg.get_body(("html",)).get_content()
    (table,) = re.findall(r"<table[^>]*>", html)
    assert 'border="1"' in table and 'cellpadding="4"' in table
    assert 'style="border-collapse:collapse;border:1px solid #999999' in table
    assert re.search(r'<td dir="auto" style="border:1px solid #999999;padding:4px 8px', html)
    assert '<a href="https://news.example.org/site" style="color:#1a5fb4">' in html
    assert "<script" not in html and "&lt;b&gt;down&lt;/b&gt;" in html
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "2026-W47.md"
    assert attachment.get_content_type() == "text/markdown"
    assert attachment.get_payload(decode=True) == data


def test_auth_over_starttls_with_a_private_ca(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    with SmtpSink(tls="starttls", users={"reporter": PASSWORD}, ca=ca) as sink:
        use(
            monkeypatch,
            sink.env(TRACKER_SMTP_USER="reporter", TRACKER_SMTP_PASSWORD=PASSWORD),
        )
        result = cli("report", "weekly", "--email", "--to", "editor@example.org")
        assert result.code == 0, result.err
        (got,) = sink.wait_for(1)
    assert got.tls and got.login == "reporter"
    assert got.rcpt_tos == ["editor@example.org"]
    assert PASSWORD not in result.out + result.err


def test_implicit_tls(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    with SmtpSink(tls="ssl", ca=ca) as sink:
        use(monkeypatch, sink.env())
        result = cli("report", "weekly", "--email")
        assert result.code == 0, result.err
        (got,) = sink.wait_for(1)
    assert got.tls


def test_an_untrusted_certificate_is_refused(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    with SmtpSink(tls="starttls", ca=ca) as sink:
        env = sink.env()
        del env["TRACKER_SMTP_CA_FILE"]  # system trust only: the private CA is unknown
        use(monkeypatch, env)
        result = cli("report", "weekly", "--email")
        assert sink.received == []
    assert result.code == 1
    assert "TLS certificate not trusted" in one_line_error(result)
    assert "TRACKER_SMTP_CA_FILE" in result.err
    assert report_file().is_file()


def test_server_down_keeps_the_file_and_a_rerun_sends_exactly_once(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    sink = SmtpSink(port=port)
    use(monkeypatch, sink.env())
    down = cli("report", "weekly", "--email")
    assert down.code == 1
    assert (
        one_line_error(down) == f"error: cannot connect to SMTP server 127.0.0.1:{port}: "
        "connection refused\n"
    )
    assert down.out == "reports/2026-W47.md\n"
    written = report_file().stat()
    with sink:
        sent = cli("report", "weekly", "--email")
        assert sent.code == 0, sent.err
        again = cli("report", "weekly", "--email")
        assert again.code == 0, again.err
        assert len(sink.wait_for(1)) == 1
        assert again.out.splitlines()[1].startswith(
            "report 2026-W47 was already sent to watcher@example.org, second@example.net on "
        )
        assert again.out.endswith("; --resend sends it again\n")
        # The file from the failed run was reused, not written a second time.
        assert report_file().stat().st_mtime_ns == written.st_mtime_ns
        assert sorted(p.name for p in Path("reports").iterdir()) == ["2026-W47.md"]
        forced = cli("report", "weekly", "--email", "--resend")
        assert forced.code == 0, forced.err
        assert len(sink.wait_for(2)) == 2
        # Other recipients are another delivery.
        other = cli("report", "weekly", "--email", "--to", "new@example.org")
        assert other.code == 0, other.err
        assert len(sink.wait_for(3)) == 3
    attached = [next(r.message().iter_attachments()) for r in sink.received]
    assert {a.get_payload(decode=True) for a in attached} == {report_file().read_bytes()}


def test_a_refused_login_is_one_line_without_the_password(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    with SmtpSink(tls="starttls", users={"reporter": "the-right-one"}, ca=ca) as sink:
        use(
            monkeypatch,
            sink.env(TRACKER_SMTP_USER="reporter", TRACKER_SMTP_PASSWORD=PASSWORD),
        )
        result = cli("report", "weekly", "--email")
        # It really tried (smtplib tries each mechanism the server offers).
        assert set(sink.auth_attempts) == {("reporter", PASSWORD)}
        assert sink.received == []
    assert result.code == 1
    line = one_line_error(result)
    assert f"SMTP server 127.0.0.1:{sink.port} refused the login for user 'reporter': 535" in line
    assert PASSWORD not in result.out + result.err
    assert report_file().is_file()


def test_a_mute_server_times_out(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with silent_server("mute") as port:
        use(
            monkeypatch,
            SmtpSink(port=port).env(TRACKER_SMTP_TIMEOUT="0.5"),
        )
        started = time.monotonic()
        result = cli("report", "weekly", "--email")
        elapsed = time.monotonic() - started
    assert result.code == 1
    assert one_line_error(result) == (
        f"error: SMTP server 127.0.0.1:{port} did not answer within 0.5 s\n"
    )
    assert elapsed < 5


def test_a_dropped_connection(world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_server("drop") as port:
        use(monkeypatch, SmtpSink(port=port).env())
        result = cli("report", "weekly", "--email")
    assert result.code == 1
    assert one_line_error(result) == (
        f"error: SMTP server 127.0.0.1:{port} closed the connection unexpectedly\n"
    )


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        ("TRACKER_SMTP_HOST", {}, "TRACKER_SMTP_HOST is not set"),
        ("TRACKER_MAIL_FROM", {}, "TRACKER_MAIL_FROM is not set"),
        ("TRACKER_MAIL_TO", {}, "TRACKER_MAIL_TO is not set"),
        (None, {"TRACKER_MAIL_TO": "watcher@example.org, nobody"}, "'nobody' is not an email"),
        (None, {"TRACKER_MAIL_FROM": "a@x.org, b@y.org"}, "exactly one address"),
        (None, {"TRACKER_SMTP_SECURITY": "tls"}, "TRACKER_SMTP_SECURITY must be one of"),
        (None, {"TRACKER_SMTP_PORT": "smtp"}, "TRACKER_SMTP_PORT must be a number"),
        (None, {"TRACKER_SMTP_CA_FILE": "/nonexistent/ca.pem"}, "TRACKER_SMTP_CA_FILE"),
        (None, {"TRACKER_CONFIG": "/nonexistent.toml"}, "TRACKER_CONFIG"),
    ],
)
def test_bad_settings_are_one_line_usage_errors_and_change_nothing(
    world: Database,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    drop: str | None,
    extra: dict[str, str],
    message: str,
) -> None:
    env = SmtpSink().env(TRACKER_SMTP_PASSWORD=PASSWORD, **extra)
    if drop:
        del env[drop]
    use(monkeypatch, env)
    result = cli("report", "weekly", "--email")
    assert result.code == 2
    assert message in one_line_error(result)
    assert PASSWORD not in result.err
    assert not Path("reports").exists()


def test_header_injection_through_to_is_refused(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, SmtpSink().env())
    result = cli("report", "weekly", "--email", "--to", "a@example.org\r\nBcc: evil@example.org")
    assert result.code == 2
    assert "line breaks are not allowed" in one_line_error(result)


def test_dry_run_prints_the_message_and_sends_nothing(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = SmtpSink().env()
    del env["TRACKER_SMTP_HOST"]  # not needed to show the message
    use(monkeypatch, env)
    result = cli("report", "weekly", "--dry-run")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("reports/2026-W47.md\n")
    assert f"Subject: {SUBJECT}\n" in out
    assert "To: watcher@example.org, second@example.net\n" in out
    assert "--- text/plain ---\n# Weekly report 2026-W47: " in out
    assert "--- text/html (" in out
    size = report_file().stat().st_size
    assert f"--- attachment 2026-W47.md (text/markdown, {size} bytes) ---" in out
    # Nothing recorded: a real run afterwards still sends.
    assert (
        mail.already_sent(
            world, mail.report_key("2026-W47", mail.parse_addresses(env["TRACKER_MAIL_TO"], "to"))
        )
        is None
    )


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_settings_from_a_config_file(
    world: Database, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with SmtpSink(users={"reporter": PASSWORD}) as sink:
        config = tmp_path / "tracker.toml"
        config.write_text(
            "[smtp]\n"
            f'host = "127.0.0.1"\nport = {sink.port}\nsecurity = "none"\n'
            f'user = "reporter"\npassword = "{PASSWORD}"\n'
            'from = "tracker@example.org"\nto = ["a@example.org", "b@example.org"]\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("TRACKER_CONFIG", str(config))
        result = cli("report", "weekly", "--email")
        assert result.code == 0, result.err
        (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ["a@example.org", "b@example.org"] and got.login == "reporter"
    config.write_text('[smtp]\nhost = "x"\nsmtp_host = "y"\n', encoding="utf-8")
    bad = cli("report", "weekly", "--email")
    assert bad.code == 2 and "unknown key 'smtp_host'" in one_line_error(bad)


def test_the_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[smtp]\nhost = "file.example"\nfrom = "f@example.org"\nto = "t@example.org"\n'
    )
    settings = mail.load_settings(
        {"TRACKER_CONFIG": str(config), "TRACKER_SMTP_HOST": "env.example"}
    )
    assert (settings.host, settings.port, settings.security) == ("env.example", 587, "starttls")
    assert [a.addr for a in settings.recipients] == ["t@example.org"]


def test_the_password_never_shows(tmp_path: Path) -> None:
    settings = mail.load_settings(
        {
            "TRACKER_SMTP_HOST": "smtp.example.org",
            "TRACKER_SMTP_USER": "u",
            "TRACKER_SMTP_PASSWORD": PASSWORD,
            "TRACKER_MAIL_FROM": "a@example.org",
            "TRACKER_MAIL_TO": "b@example.org",
        }
    )
    assert PASSWORD not in repr(settings)
    assert settings.scrub(f"535 bad {PASSWORD} here") == "535 bad *** here"


def test_a_plaintext_login_to_a_remote_server_is_refused() -> None:
    settings = mail.load_settings(
        {
            "TRACKER_SMTP_HOST": "smtp.example.org",
            "TRACKER_SMTP_SECURITY": "none",
            "TRACKER_SMTP_USER": "u",
            "TRACKER_SMTP_PASSWORD": PASSWORD,
            "TRACKER_MAIL_FROM": "a@example.org",
            "TRACKER_MAIL_TO": "b@example.org",
        }
    )
    with pytest.raises(UsageError, match="unencrypted"):
        mail.send(settings, mail.text_message(settings, "s", "t"))


@pytest.mark.parametrize(
    ("raw", "addrs"),
    [
        ("a@example.org", ["a@example.org"]),
        ("A Person <a@example.org>, b@sub.example.co.uk", ["a@example.org", "b@sub.example.co.uk"]),
        ("a@example.org, a@example.org", ["a@example.org"]),
    ],
)
def test_address_lists(raw: str, addrs: list[str]) -> None:
    assert [a.addr for a in mail.parse_addresses(raw, "x")] == addrs


@pytest.mark.parametrize("raw", ["a", "a@b", "@example.org", "a@@example.org", "a b@example.org"])
def test_bad_addresses(raw: str) -> None:
    with pytest.raises(UsageError, match="is not an email address"):
        mail.parse_addresses(raw, "TRACKER_MAIL_TO")


def test_html_keeps_no_raw_html_and_styles_every_cell() -> None:
    html = render_html(
        "# T\n\n| a | b |\n| --- | --- |\n| <b>x</b> | &lt;i> |\n\n<script>x</script>\n", "T <s>"
    )
    assert "<script>" not in html and "<b>" not in html
    assert "<title>T &lt;s&gt;</title>" in html
    assert len(re.findall(r'<td dir="auto" style="border:1px solid', html)) == 2
    assert len(re.findall(r'<th dir="auto" style="border:1px solid', html)) == 2
    assert '<h1 dir="auto" style="font-family:' in html
