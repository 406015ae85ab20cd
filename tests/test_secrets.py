"""Credentials never leave the environment: not into the database, output, logs, reports, exports.

Secrets here: OPENSKY_CLIENT_SECRET (to servers that echo it back, raw and URL-encoded),
TRACKER_SMTP_PASSWORD (to an SMTP server that refuses the login, and to a dead port), and the
password in a PostgreSQL URL given to --db. Every run's stdout and stderr, the daemon's log, and
every byte of every file the runs leave behind (database, WAL, reports, exports) are searched for
each secret's distinctive core (letters only, so it survives URL-encoding and JSON escaping) and
for the full value raw, URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from .faulty_server import (
    Conn,
    FaultyServer,
    Measured,
    free_port,
    reply,
    run_tracker,
    serving,
    start_tracker,
)
from .smtp_sink import SmtpSink

OPENSKY_SECRET = "Zq8-OsKySecretCore+/=&x"
SMTP_PASSWORD = "Pw9-SmtpSecretCore+/=x"
PG_PASSWORD = "PgSecretCore7"
CORES = ("OsKySecretCore", "SmtpSecretCore", "PgSecretCore")


def forms(secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
    }


ALL_FORMS = {f for s in (OPENSKY_SECRET, SMTP_PASSWORD, PG_PASSWORD) for f in forms(s)}


def leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    found = [core for core in CORES if core.encode() in data]
    found += [form for form in ALL_FORMS if form.encode() in data]
    return found


def assert_clean(*runs: Measured) -> None:
    for r in runs:
        assert leaks(r.out + r.err) == [], (r.out, r.err)
        assert "Traceback" not in r.err


def assert_no_file_leaks(root: Path) -> None:
    checked = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name != "sources.toml":
            assert leaks(path.read_bytes()) == [], path
            checked += 1
    assert checked >= 3


def echo_form(conn: Conn) -> None:
    """A token endpoint that puts what it was sent (the URL-encoded form) into its error."""
    body = conn.request.body.decode("latin-1")
    reply(401, f'{{"error": "invalid_client for {body}"}}', "application/json")(conn)


def echo_raw(conn: Conn) -> None:
    """An API that quotes the client secret back, raw, in a plain-text 500."""
    reply(500, f"internal: client_secret={OPENSKY_SECRET} rejected", "text/plain")(conn)


RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
    "<item><title>Iran Air launches Tabriz-Baku flights</title>"
    "<link>https://example.ir/news/secret-test</link></item></channel></rss>"
)


@pytest.fixture
def server() -> FaultyServer:
    with serving() as s:
        s.route("/token-echo", echo_form)
        s.route(
            "/token-ok",
            reply(200, '{"access_token": "tok", "expires_in": 1800}', "application/json"),
        )
        s.route("/api/flights/departure", echo_raw)
        s.route("/feed", reply(200, RSS, "application/rss+xml"))
        yield s


def sources_file(tmp_path: Path, server: FaultyServer) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(
        f'[[source]]\nname = "wire"\nkind = "rss"\nurl = "{server.url("/feed")}"\nlanguage = "en"\n'
        '[[source]]\nname = "sky-echo-form"\nkind = "opensky"\nlanguage = "en"\n'
        f'token_url = "{server.url("/token-echo")}"\napi_root = "{server.url("/api")}"\ndays = 1\n'
        '[[source]]\nname = "sky-echo-raw"\nkind = "opensky"\nlanguage = "en"\n'
        f'token_url = "{server.url("/token-ok")}"\napi_root = "{server.url("/api")}"\ndays = 1\n',
        encoding="utf-8",
    )
    return path


BASE_ENV = {
    "OPENSKY_CLIENT_ID": "tracker-client",
    "OPENSKY_CLIENT_SECRET": OPENSKY_SECRET,
    "TRACKER_SMTP_USER": "reporter",
    "TRACKER_SMTP_PASSWORD": SMTP_PASSWORD,
    "TRACKER_MAIL_FROM": "Tracker <tracker@example.org>",
    "TRACKER_MAIL_TO": "watcher@example.org",
    "TRACKER_SMTP_HOST": "127.0.0.1",
    "TRACKER_SMTP_SECURITY": "none",
    "TRACKER_SMTP_TIMEOUT": "3",
    "TRACKER_HTTP_MAX_RETRIES": "0",
    "TRACKER_HTTP_DEADLINE": "3",
}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_opensky_and_smtp_secrets_reach_no_output_file_or_log(
    server: FaultyServer, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    db = work / "commitments.db"
    sources = sources_file(tmp_path, server)
    env = {**BASE_ENV, "TRACKER_SMTP_PORT": str(free_port())}
    base = ["--db", str(db)]

    refresh = run_tracker(*base, "refresh", "--sources", str(sources), env=env)
    assert refresh.code == 1, refresh.out + refresh.err
    # Both OpenSky sources failed, and their reasons say why, with the secret blanked out.
    assert "sky-echo-form: failed: OpenSky token request failed: HTTP 401" in refresh.out
    assert "sky-echo-raw: failed: HTTP 500 Internal Server Error: internal: client_secret=***" in (
        refresh.out
    )
    # The secret really went to the server that echoed it.
    assert any(quote_plus(OPENSKY_SECRET).encode() in r.body for r in server.requests)
    quiet = run_tracker(*base, "refresh", "--quiet", "--force", "--sources", str(sources), env=env)
    table = run_tracker(*base, "sources", "--sources", str(sources), env=env)
    as_json = run_tracker(*base, "sources", "--json", "--sources", str(sources), env=env)
    export_json = run_tracker(*base, "export", "-o", str(work / "export.json"), env=env)
    export_csv = run_tracker(*base, "export", "--format", "csv", env=env)
    report = run_tracker(*base, "report", "weekly", "--out", str(work / "reports"), env=env)
    dry_run = run_tracker(
        *base, "report", "weekly", "--out", str(work / "reports"), "--email", "--dry-run", env=env
    )
    dead_smtp = run_tracker(
        *base, "report", "weekly", "--out", str(work / "reports"), "--email", env=env
    )
    with SmtpSink(users={"reporter": "the-right-one"}) as sink:
        refused = run_tracker(
            *base,
            "report",
            "weekly",
            "--out",
            str(work / "reports"),
            "--email",
            "--resend",
            env={**env, "TRACKER_SMTP_PORT": str(sink.port)},
        )
        attempts = list(sink.auth_attempts)
    cron = run_tracker(*base, "cron", "--sources", str(sources), env=env)
    assert quiet.code == 1 and table.code == 0 and as_json.code == 0
    assert export_json.code == 0 and export_csv.code == 0 and report.code == 0, report.err
    assert dry_run.code == 0, dry_run.err
    assert dead_smtp.code == 1 and refused.code == 1, (dead_smtp.err, refused.err)
    assert set(attempts) == {("reporter", SMTP_PASSWORD)}  # the server really got the password
    assert_clean(
        refresh, quiet, table, as_json, export_json, export_csv, report, dry_run, dead_smtp,
        refused, cron,
    )  # fmt: skip

    # The daemon's log: start it, let it refresh once, stop it.
    log = tmp_path / "daemon.log"
    with log.open("wb") as handle:
        daemon = start_tracker(
            *base,
            "daemon",
            "--sources",
            str(sources),
            "--refresh-every",
            "1h",
            "--out",
            str(work / "reports"),
            env=env,
            stderr=handle,
            stdout=handle,
        )
        deadline = time.monotonic() + 20
        while b"refresh:" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            raise
    text = log.read_text()
    assert "refresh: 1 ok, 2 failed" in text, text
    assert leaks(text) == [], text
    assert_no_file_leaks(work)  # database, WAL, reports, export


@pytest.mark.parametrize(
    "password",
    [
        PG_PASSWORD,
        "PgSecretCore%2Fwith%40encoded",
        "PgSecretCore/with/slash",
        "PgSecretCore#hash",
    ],
)
def test_database_url_password_is_never_shown(password: str, tmp_path: Path) -> None:
    url = f"postgresql://tracker:{password}@127.0.0.1:{free_port()}/tracker"
    runs = [
        run_tracker("--db", url, *args, env={"TRACKER_BUSY_TIMEOUT_MS": "200"})
        for args in (
            ["status"],
            ["refresh", "--only", "irna-en"],
            ["export", "-o", str(tmp_path / "x.json")],
            ["report", "weekly", "--out", str(tmp_path / "reports")],
            ["cron"],
        )
    ]
    for r in runs[:-1]:
        assert r.code == 1, r.out + r.err
        assert r.err.startswith("error: cannot connect to postgresql://tracker:***@127.0.0.1:")
    assert runs[-1].code == 0
    for r in runs:
        assert "PgSecretCore" not in r.out + r.err, r.out + r.err
    assert_no_file_leaks_or_none(tmp_path)


def assert_no_file_leaks_or_none(root: Path) -> None:
    """Files may or may not have been written; none of them holds the password."""
    for path in root.rglob("*"):
        if path.is_file():
            assert b"PgSecretCore" not in path.read_bytes(), path
