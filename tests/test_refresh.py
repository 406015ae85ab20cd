"""`tracker refresh` end to end: a real HTTP server on 127.0.0.1, real SQLite, the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from .conftest import errors, query, run_cli

NOW = datetime.now(UTC)


def rss(items: list[tuple[str, str, str]], title: str = "Example feed") -> str:
    """items: (title, link, description)."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><description>{d}</description>"
        f"<guid>{link}</guid><pubDate>{format_datetime(NOW - timedelta(hours=i + 1))}</pubDate></item>"
        for i, (t, link, d) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://example.org/</link><description>x</description>{body}"
        "</channel></rss>"
    )


FLIGHT = (
    "Iran Air launches Tabriz-Baku flights",
    "https://example.ir/news/1?utm_source=rss",
    "The first Tabriz to Baku flight landed on Tuesday.",
)
BRIDGE = (
    "Aghband-Kalala road bridge over Araz river completed",
    "https://example.az/news/2",
    "Construction of the bridge between Zangilan and Iran is complete.",
)
OTHER = (
    "Wheat prices rise in Europe",
    "https://example.org/news/3",
    "Markets moved on weather news.",
)


@pytest.fixture
def env(db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "TRACKER_DB": db,
        "TRACKER_HTTP_MAX_RETRIES": "0",
        "TRACKER_HTTP_BACKOFF_BASE": "0.01",
        "TRACKER_HTTP_DEADLINE": "5",
        "TRACKER_LOCK_WAIT": "0.5",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def sources_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def feed_source(name: str, url: str, country: str = "IR", extra: str = "") -> str:
    return f'[[source]]\nname = "{name}"\nkind = "rss"\nurl = "{url}"\nlanguage = "en"\ncountry = "{country}"\n{extra}\n'


def evidence(db: str) -> list[tuple[str, str, str, str]]:
    return query(
        db,
        "SELECT c.slug, e.url, e.review, e.source FROM evidence e JOIN commitment c ON c.id = e.commitment_id"
        " WHERE e.source NOT IN ('curated', 'manual') ORDER BY e.id",
    )


def test_refresh_stores_matches_for_review_and_skips_the_rest(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed").respond_with_data(
        rss([FLIGHT, BRIDGE, OTHER]), content_type="application/rss+xml"
    )
    src = sources_file(tmp_path, feed_source("local", httpserver.url_for("/feed")))
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0, r.out + r.err
    assert "1 ok, 0 unchanged, 0 failed, 0 disabled; 3 items seen; 2 new evidence" in r.out
    rows = evidence(db)
    assert (
        "tabriz-baku-flight",
        "https://example.ir/news/1?utm_source=rss",
        "pending",
        "local",
    ) in rows
    assert ("khodaafarin-crossing", "https://example.az/news/2", "pending", "local") in rows
    assert not any("news/3" in row[1] for row in rows)
    data = json.loads(cli("status", "--json").out)
    assert data["pending_review"] == len(rows)
    flight = next(c for c in data["commitments"] if c["slug"] == "tabriz-baku-flight")
    assert flight["pending_review"] == 1
    health = json.loads(cli("sources", "--sources", str(src), "--json").out)["sources"][0]
    assert health["last_state"] == "ok" and health["consecutive_failures"] == 0
    assert health["items_seen"] == 3 and health["new_evidence"] == 2


def test_second_refresh_adds_nothing_and_rejected_items_stay_away(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed").respond_with_data(
        rss([FLIGHT, BRIDGE]), content_type="application/rss+xml"
    )
    src = sources_file(tmp_path, feed_source("local", httpserver.url_for("/feed")))
    cli("refresh", "--sources", str(src))
    first = evidence(db)
    ((bridge_id,),) = query(db, "SELECT id FROM evidence WHERE url = 'https://example.az/news/2'")
    assert cli("review", "reject", str(bridge_id), "--reason", "test").code == 0
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0
    assert "0 new evidence" in r.out
    after = evidence(db)
    assert len(after) == len(first)
    assert ("khodaafarin-crossing", "https://example.az/news/2", "rejected", "local") in after


def test_conditional_get_304_means_unchanged(
    cli, env, httpserver: HTTPServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(rss([FLIGHT]), content_type="application/rss+xml", headers={"ETag": '"v1"'})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    src = sources_file(tmp_path, feed_source("local", httpserver.url_for("/feed")))
    assert "1 new evidence" in cli("refresh", "--sources", str(src)).out
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0
    assert "0 ok, 1 unchanged" in r.out
    assert seen == [None, '"v1"']


def test_same_story_from_both_sides_is_one_evidence_with_a_mention(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/ir").respond_with_data(
        rss([FLIGHT]), content_type="application/rss+xml"
    )
    az = (FLIGHT[0], "https://example.az/syndicated/77", FLIGHT[2])
    httpserver.expect_request("/az").respond_with_data(
        rss([az]), content_type="application/rss+xml"
    )
    src = sources_file(
        tmp_path,
        feed_source("ir-feed", httpserver.url_for("/ir"), "IR")
        + feed_source("az-feed", httpserver.url_for("/az"), "AZ"),
    )
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0, r.err
    export = json.loads(cli("export").out)
    flight = next(c for c in export["commitments"] if c["slug"] == "tabriz-baku-flight")
    scraped = [e for e in flight["evidence"] if e["source"] in ("ir-feed", "az-feed")]
    assert len(scraped) == 1
    (mention,) = scraped[0]["also_reported_by"]
    assert {scraped[0]["country"], mention["country"]} == {"IR", "AZ"}


def test_failing_source_is_recorded_and_others_still_stored(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/good").respond_with_data(
        rss([FLIGHT]), content_type="application/rss+xml"
    )
    httpserver.expect_request("/bad").respond_with_data("oops", status=500)
    src = sources_file(
        tmp_path,
        feed_source("good", httpserver.url_for("/good"))
        + feed_source("bad", httpserver.url_for("/bad")),
    )
    r = cli("refresh", "--quiet", "--sources", str(src))
    assert r.code == 1
    assert "bad: failed: HTTP 500" in r.out
    assert "Traceback" not in r.out + r.err
    assert [row[0] for row in evidence(db)] == ["tabriz-baku-flight"]
    cli("refresh", "--quiet", "--sources", str(src))
    health = {
        s["name"]: s
        for s in json.loads(cli("sources", "--sources", str(src), "--json").out)["sources"]
    }
    assert health["bad"]["consecutive_failures"] == 2
    assert "HTTP 500" in health["bad"]["last_error"]
    assert health["bad"]["failing_since"] is not None
    assert health["good"]["consecutive_failures"] == 0


def refuse_urls_containing(db: str, marker: str) -> None:
    """A trigger in the database under test that refuses evidence whose URL holds `marker`: a
    row the database will not take, as a constraint or a full disk would refuse one."""
    if "://" not in db:
        query(
            db,
            "CREATE TRIGGER refuse BEFORE INSERT ON evidence"
            f" WHEN NEW.url LIKE '%{marker}%'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END",
        )
        return
    query(
        db,
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN"
        f" IF NEW.url LIKE '%{marker}%' THEN RAISE EXCEPTION 'refused by the test trigger';"
        " END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
    )
    query(
        db,
        "CREATE TRIGGER refuse BEFORE INSERT ON evidence FOR EACH ROW EXECUTE FUNCTION refuse()",
    )


def test_a_source_the_database_refuses_fails_alone(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    # Six sources answer at once, so they are stored together (tracker.refresh.STORE_BATCH):
    # the one whose row is refused must fail alone, and every other one be stored whole.
    names = [f"feed{k}" for k in range(6)]
    headlines = [
        ("Iran Air launches Tabriz-Baku flights", "Aghband bridge over the Araz completed"),
        ("Second weekly Tabriz to Baku flight added", "Zangilan road bridge opens to trucks"),
        ("AZAL plans Baku-Tabriz route for spring", "Khodaafarin crossing bridge inspected"),
        ("Tabriz Baku flight tickets go on sale", "Kalala bridge to Iran nears the finish"),
        ("Charter flights from Tabriz reach Baku", "Engineers test the new Araz river bridge"),
        ("Baku to Tabriz air link resumes", "Aghband-Kalala bridge traffic begins"),
    ]
    for k, name in enumerate(names):
        marker = "refused" if k == 3 else "ok"
        flight, bridge = headlines[k]
        items = [
            (flight, f"https://example.ir/{marker}/{k}", "A flight between Tabriz and Baku."),
            (bridge, f"https://example.az/{k}", "The bridge links Zangilan and Iran."),
        ]
        httpserver.expect_request(f"/{name}").respond_with_data(
            rss(items), content_type="application/rss+xml"
        )
    src = sources_file(
        tmp_path, "".join(feed_source(n, httpserver.url_for(f"/{n}")) for n in names)
    )
    assert cli("status").code == 0  # creates the database
    refuse_urls_containing(db, "refused")
    r = cli("refresh", "--quiet", "--sources", str(src))
    assert r.code == 1, r.out + r.err
    assert "feed3: failed: could not store its items:" in r.out
    assert "refused by the test trigger" in r.out
    assert "Traceback" not in r.out + r.err
    stored = {row[3] for row in evidence(db)}
    assert stored == set(names) - {"feed3"}
    assert len(evidence(db)) == 2 * 5  # the others' evidence whole, none of feed3's
    health = {
        s["name"]: s
        for s in json.loads(cli("sources", "--sources", str(src), "--json").out)["sources"]
    }
    assert health["feed3"]["last_state"] == "failed"
    assert all(health[n]["last_state"] == "ok" for n in names if n != "feed3")
    assert all(health[n]["new_evidence"] == 2 for n in names if n != "feed3")


def test_quiet_refresh_prints_nothing_when_all_is_well(
    cli, env, httpserver: HTTPServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed").respond_with_data(
        rss([OTHER]), content_type="application/rss+xml"
    )
    src = sources_file(tmp_path, feed_source("local", httpserver.url_for("/feed")))
    r = cli("refresh", "--quiet", "--sources", str(src))
    # The first use announces the new database once (cron mails it: the right thing to notice).
    assert (r.code, r.out) == (0, "") and r.err.startswith("created ") and errors(r.err) == ""
    again = cli("refresh", "--quiet", "--sources", str(src), "--force")
    assert (again.code, again.out, again.err) == (0, "", "")


def test_sources_not_due_are_skipped_unless_forced(
    cli, env, httpserver: HTTPServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed").respond_with_data(
        rss([OTHER]), content_type="application/rss+xml"
    )
    src = sources_file(
        tmp_path, feed_source("local", httpserver.url_for("/feed"), extra='every = "1h"')
    )
    cli("refresh", "--sources", str(src))
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0
    assert "local: skipped: not due until" in r.out
    assert "1 not due" in r.out
    assert "1 ok" in cli("refresh", "--force", "--sources", str(src)).out
    assert len(httpserver.log) == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '[[source]]\nname = "a"\nkind = "rss"\nlanguage = "en"\n',
            "source 'a': missing field 'url'",
        ),
        (
            '[[source]]\nname = "a"\nkind = "atom"\nurl = "https://x.org"\nlanguage = "en"\n',
            "unknown kind 'atom'",
        ),
        (
            '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.org"\nlanguage = "de"\n',
            "field 'language' must be one of",
        ),
        (
            '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.org"\nlanguage = "en"\nevery = "soon"\n',
            "field 'every' must look like",
        ),
        (
            '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.org"\nlanguage = "en"\ncolour = "red"\n',
            "unknown field 'colour' for kind 'rss'",
        ),
        (
            '[[source]]\nname = "a"\nkind = "rss"\nurl = "https://x.org"\nlanguage = "en"\n[[source]]\nname = "a"\nkind = "rss"\nurl = "https://y.org"\nlanguage = "en"\n',
            "name is used twice",
        ),
        ("[[source]\n", "not valid TOML"),
        ('[[source]]\nkind = "rss"\n', "source #1: missing field 'name'"),
    ],
)
def test_bad_sources_file_is_one_line_exit_2(
    cli, env, tmp_path: Path, text: str, needle: str
) -> None:  # type: ignore[no-untyped-def]
    src = sources_file(tmp_path, text)
    r = cli("refresh", "--sources", str(src))
    assert r.code == 2
    assert errors(r.err).count("\n") == 1 and r.err.startswith(f"error: sources file {src}: ")
    assert needle in r.err


def test_unknown_only_and_missing_file(cli, env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("refresh", "--only", "irna-eng")
    assert (
        r.code == 2 and "no source named 'irna-eng'" in r.err and "did you mean 'irna-en'" in r.err
    )
    r = cli("refresh", "--sources", str(tmp_path / "none.toml"))
    assert r.code == 2 and "no such file" in r.err


def test_builtin_sources_parse_and_opensky_is_disabled_without_credentials(cli, env) -> None:  # type: ignore[no-untyped-def]
    from tracker.sources import load_sources

    builtin = load_sources()
    assert {
        "irna-en",
        "mehr-en",
        "tehrantimes",
        "google-news-fa",
        "gdelt",
        "opensky-tabriz-baku",
    } <= {s.name for s in builtin.sources}
    r = cli("refresh", "--only", "opensky-tabriz-baku")
    assert r.code == 0, r.out + r.err
    assert "disabled: set OPENSKY_CLIENT_ID and OPENSKY_CLIENT_SECRET" in r.out


def test_second_refresh_steps_aside_while_one_runs(
    env, httpserver: HTTPServer, tmp_path: Path, db: str
) -> None:  # type: ignore[no-untyped-def]
    from tracker.register import open_store
    from tracker.settings import Settings
    from tracker.store.locks import refresh_lock

    httpserver.expect_request("/feed").respond_with_data(
        rss([OTHER]), content_type="application/rss+xml"
    )
    src = sources_file(tmp_path, feed_source("local", httpserver.url_for("/feed")))
    database = open_store(Settings.from_env().with_db(db))
    with refresh_lock(database, wait=10):
        r = run_cli("refresh", "--sources", str(src), env=env)
        status = run_cli("status", env=env)
    assert r.code == 1
    assert r.err.startswith("error: another refresh is running")
    assert "stepping aside" in r.err
    assert status.code == 0  # readers are not blocked
    assert run_cli("refresh", "--sources", str(src), env=env).code == 0


def test_opensky_flight_is_trusted_evidence(
    cli, env, httpserver: HTTPServer, tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    day = (NOW - timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    flight = {
        "icao24": "730a1b",
        "firstSeen": int(day.timestamp()),
        "estDepartureAirport": "OITT",
        "lastSeen": int(day.timestamp()) + 4200,
        "estArrivalAirport": "UBBB",
        "callsign": "IRA6271 ",
        "estDepartureAirportHorizDistance": 1450,
        "estDepartureAirportVertDistance": 38,
        "estArrivalAirportHorizDistance": 2210,
        "estArrivalAirportVertDistance": 120,
        "departureAirportCandidatesCount": 0,
        "arrivalAirportCandidatesCount": 1,
    }
    httpserver.expect_request("/auth/token", method="POST").respond_with_json(
        {"access_token": "tok", "expires_in": 1800, "token_type": "Bearer"}
    )

    def departures(request: Request) -> Response:
        if request.headers.get("Authorization") != "Bearer tok":
            return Response(status=401)
        if request.args.get("airport") == "OITT" and int(request.args["begin"]) <= flight[
            "firstSeen"
        ] <= int(request.args["end"]):
            return Response(json.dumps([flight]), content_type="application/json")
        return Response(b"", status=404)

    httpserver.expect_request("/api/flights/departure").respond_with_handler(departures)
    src = sources_file(
        tmp_path,
        '[[source]]\nname = "sky"\nkind = "opensky"\nlanguage = "en"\ncommitment = "tabriz-baku-flight"\n'
        f'api_root = "{httpserver.url_for("/api")}"\ntoken_url = "{httpserver.url_for("/auth/token")}"\n',
    )
    monkeypatch.setenv("OPENSKY_CLIENT_ID", "me")
    monkeypatch.setenv("OPENSKY_CLIENT_SECRET", "very-secret-value")
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0, r.out + r.err
    rows = evidence(db)
    assert rows == [("tabriz-baku-flight", rows[0][1], "confirmed", "sky")]
    for table in ("evidence", "source_health", "fetch_run", "status_history"):
        assert "very-secret-value" not in repr(query(db, f"SELECT * FROM {table}"))


def test_switched_off_sources_are_counted_not_listed(
    cli, env, httpserver: HTTPServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/feed").respond_with_data(
        rss([OTHER]), content_type="application/rss+xml"
    )
    src = sources_file(
        tmp_path,
        feed_source("local", httpserver.url_for("/feed"))
        + feed_source("off-one", "https://example.org/rss", extra="enabled = false")
        + feed_source("off-two", "https://example.org/rss2", extra="enabled = false"),
    )
    r = cli("refresh", "--sources", str(src))
    assert r.code == 0, r.err
    assert "2 source(s) switched off in the sources file (enabled = false)" in r.out
    assert "off-one" not in r.out
    assert "1 ok, 0 unchanged, 0 failed, 2 disabled" in r.out
    assert len(httpserver.log) == 1  # switched-off sources are never fetched
