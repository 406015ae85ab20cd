"""The `opensky` kind: OAuth2 client credentials, per-day departure windows, observed flights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from scrapers import Outcome, SourceSpec, Validators, collect
from scrapers.opensky import day_windows

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import FAST, LoopbackServer, Reply, Request, fixture, serve
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import FAST, LoopbackServer, Reply, Request, fixture, serve

JSON = "application/json"
SECRET = "s3cr3t-Value-never-shown"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def spec(server: LoopbackServer, name: str = "opensky", **options: object) -> SourceSpec:
    base: dict[str, object] = {
        "client_id": "tracker-api-client",
        "client_secret": SECRET,
        "token_url": server.url("/auth/token"),
        "api_root": server.url("/api"),
    }
    return SourceSpec(name=name, kind="opensky", language="en", options={**base, **options})


def run(*specs: SourceSpec) -> list[Outcome]:
    return collect(list(specs), {}, FAST)


def serve_tokens(server: LoopbackServer, *tokens: str) -> None:
    issued = list(tokens)

    def handler(request: Request) -> Reply:
        form = parse_qs(request.body.decode())
        if form.get("client_secret") != [SECRET]:
            return Reply(401, fixture("opensky_token_error.json"), content_type=JSON)
        token = issued.pop(0) if len(issued) > 1 else issued[0]
        body = fixture("opensky_token.json").replace(
            b"eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIn0", token.encode()
        )
        return Reply(body=body, content_type=JSON)

    server.route("/auth/token", handler)


def bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").split(".")[0]


def serve_departures(server: LoopbackServer, accepted: str = "token-1") -> None:
    """Flights on the first day window only; OpenSky's empty 404 for the other windows."""
    first_day = day_windows(2)[0][0]

    def handler(request: Request) -> Reply:
        if bearer(request) != accepted:
            return Reply(401, b"", content_type=None)
        airport = request.arg("airport")
        if request.arg("begin") != str(first_day):
            return Reply(404, b"", content_type=None)
        return Reply(body=fixture(f"opensky_departures_{airport}.json"), content_type=JSON)

    server.route("/api/flights/departure", handler)


def test_disabled_without_credentials(server: LoopbackServer) -> None:
    bare = SourceSpec(name="opensky", kind="opensky", language="en")
    partial = spec(server, client_secret="")
    for outcome in run(bare, partial):
        assert outcome.state == "disabled"
        assert outcome.reason == "disabled: set OPENSKY_CLIENT_ID and OPENSKY_CLIENT_SECRET"
    assert server.requests == []


def test_observed_flights_in_both_directions(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    serve_departures(server)
    (outcome,) = run(spec(server, milestone=2))
    assert outcome.state == "ok"
    to_baku, to_tabriz = outcome.items
    assert to_tabriz.title == "Flight AHY091 UBBB→OITT observed 2026-01-01 (icao24 600a1b)"
    assert (
        to_tabriz.url
        == "https://opensky-network.org/aircraft-profile?icao24=600a1b&time=1767261900"
    )
    assert to_tabriz.published_at == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert to_tabriz.structured == {
        "commitment": "tabriz-baku-flight",
        "milestone": 2,
        "trusted": True,
        "callsign": "AHY091",
        "icao24": "600a1b",
        "departure": "UBBB",
        "arrival": "OITT",
        "first_seen": "2026-01-01T10:05:00Z",
        "last_seen": "2026-01-01T11:15:00Z",
    }
    assert to_baku.title == "Flight IRA761 OITT→UBBB observed 2026-01-01 (icao24 4081e5)"
    assert to_baku.structured["departure"] == "OITT"
    # Flights to other airports, or with no estimated arrival, are not evidence.
    assert {item.structured["icao24"] for item in outcome.items} == {"600a1b", "4081e5"}


def test_token_flow_and_day_windows(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    serve_departures(server)
    (outcome,) = run(spec(server))
    assert outcome.state == "ok"
    (token_request,) = server.requests_to("/auth/token")
    assert token_request.method == "POST"
    assert parse_qs(token_request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["tracker-api-client"],
        "client_secret": [SECRET],
    }
    calls = server.requests_to("/api/flights/departure")
    assert all(bearer(call) == "token-1" for call in calls)
    today = int(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    windows = sorted({(int(c.arg("begin") or 0), int(c.arg("end") or 0)) for c in calls})
    # Yesterday and the day before, each inside one UTC day, nothing from today.
    assert windows == [(today - 2 * 86400, today - 86400 - 1), (today - 86400, today - 1)]
    assert sorted(c.arg("airport") or "" for c in calls) == ["OITT", "OITT", "UBBB", "UBBB"]


def test_expired_token_is_renewed_once(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1", "token-2")
    serve_departures(server, accepted="token-2")
    (outcome,) = run(spec(server))
    assert outcome.state == "ok" and len(outcome.items) == 2
    assert len(server.requests_to("/auth/token")) == 2


def test_token_refused_even_after_renewal(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1", "token-2")
    serve_departures(server, accepted="never")
    (outcome,) = run(spec(server))
    assert outcome.state == "failed"
    assert outcome.reason == "OpenSky refused the access token (HTTP 401) even after renewing it"


def test_no_flights_is_an_empty_404(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    server.route("/api/flights/departure", Reply(404, b"", content_type=None))
    (outcome,) = run(spec(server, days=3))
    assert outcome.state == "ok"
    assert outcome.items == []
    assert len(server.requests_to("/api/flights/departure")) == 6


def test_wrong_credentials_fail_without_revealing_the_secret(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    (outcome,) = run(spec(server, client_secret="wrong-" + SECRET))
    assert outcome.state == "failed"
    assert outcome.reason == "OpenSky token request failed: HTTP 401 Unauthorized (invalid_client)"
    assert SECRET not in repr(outcome)


def test_credit_exhaustion_is_a_rate_limit(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    server.route(
        "/api/flights/departure",
        Reply(429, b"", content_type=None, headers={"X-Rate-Limit-Retry-After-Seconds": "7200"}),
    )
    (outcome,) = run(spec(server))
    assert outcome.state == "failed"
    assert outcome.reason == "rate limited: server asks to retry after 7200 s"
    assert outcome.retry_after == 7200
    assert outcome.elapsed < 3  # at once, not after two hours


def test_sources_share_one_token(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    serve_departures(server)
    outcomes = run(spec(server, "a"), spec(server, "b", from_airport="UBBB", to_airport="OITT"))
    assert [o.state for o in outcomes] == ["ok", "ok"]
    assert len(server.requests_to("/auth/token")) == 1


def test_other_airports_and_commitment(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    serve_departures(server)
    (outcome,) = run(spec(server, from_airport="ubbb", to_airport="oitt", commitment="other"))
    assert outcome.state == "ok"
    assert {item.structured["commitment"] for item in outcome.items} == {"other"}
    assert all(item.structured["milestone"] is None for item in outcome.items)
    assert SECRET not in repr(outcome)


def run_with(source: SourceSpec, snapshot: str | None = None) -> Outcome:
    (outcome,) = collect([source], {source.name: Validators(snapshot=snapshot)}, FAST)
    return outcome


def days_asked(server: LoopbackServer) -> list[str]:
    calls = server.requests_to("/api/flights/departure")
    return [datetime.fromtimestamp(int(c.arg("begin") or 0), UTC).date().isoformat() for c in calls]


def test_past_days_cost_30_credits_each_within_the_daily_budget(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    server.route("/api/flights/departure", Reply(404, b"", content_type=None))
    # 90 credits pay for three requests: one day (two directions) fits, the rest does not.
    outcome = run_with(spec(server, days=3, daily_credits=90))
    assert outcome.state == "ok"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert days_asked(server) == [yesterday, yesterday]  # newest first
    assert outcome.skipped == {"credit budget": 4}
    state = json.loads(outcome.validators.snapshot or "")
    assert state["spent"] == 60 and state["day"] == datetime.now(UTC).date().isoformat()


def test_spending_is_remembered_across_runs_of_the_same_day(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    server.route("/api/flights/departure", Reply(404, b"", content_type=None))
    today = datetime.now(UTC).date().isoformat()
    spent = json.dumps({"day": today, "spent": 3990, "done": []})
    outcome = run_with(spec(server, days=1, daily_credits=4000), spent)
    assert days_asked(server) == []
    assert outcome.skipped == {"credit budget": 2}
    # A new day starts with a fresh budget.
    yesterday_state = json.dumps({"day": "2000-01-01", "spent": 3990, "done": []})
    assert run_with(spec(server, days=1), yesterday_state).skipped == {}


def test_days_read_for_good_are_not_paid_for_again(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    server.route("/api/flights/departure", Reply(404, b"", content_type=None))
    first = run_with(spec(server, days=3))
    assert len(days_asked(server)) == 6
    state = json.loads(first.validators.snapshot or "")
    today = datetime.now(UTC).date()
    # Yesterday may still change (the nightly batch); older days are final.
    assert state["done"] == [(today - timedelta(days=d)).isoformat() for d in (3, 2)]
    again = run_with(spec(server, days=3), first.validators.snapshot)
    assert days_asked(server)[6:] == [(today - timedelta(days=1)).isoformat()] * 2
    assert again.state == "ok"
    # Every day asked for already read: no request, nothing spent, "unchanged".
    server.requests.clear()
    done = json.dumps({"day": today.isoformat(), "spent": 0, "done": state["done"]})
    outcome = run_with(spec(server, days=3, milestone=None), done)
    assert len(days_asked(server)) == 2  # yesterday only
    yesterday = (today - timedelta(days=1)).isoformat()
    all_done = json.dumps({"day": today.isoformat(), "spent": 0, "done": [yesterday]})
    server.requests.clear()
    outcome = run_with(spec(server, days=1), all_done)
    assert outcome.state == "unchanged" and days_asked(server) == []


def test_rate_limit_remaining_is_read_and_respected(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    left = iter(["100", "70", "40", "10"])

    def handler(request: Request) -> Reply:
        return Reply(404, b"", content_type=None, headers={"X-Rate-Limit-Remaining": next(left)})

    server.route("/api/flights/departure", handler)
    outcome = run_with(spec(server, days=3))
    # After two days OpenSky says 10 are left: not enough for another day of two requests.
    assert len(days_asked(server)) == 4
    assert outcome.rate_limit_remaining == 10
    assert outcome.skipped == {"credit budget": 2}


def test_unreadable_flight_records_are_skipped_and_counted(server: LoopbackServer) -> None:
    serve_tokens(server, "token-1")
    body = json.dumps(
        [
            {"icao24": "600a1b", "firstSeen": 1767261900, "estArrivalAirport": "OITT"},
            {"icao24": "not-hex", "firstSeen": 1767261900, "estArrivalAirport": "OITT"},
            {"icao24": "600a1c", "firstSeen": "yesterday", "estArrivalAirport": "OITT"},
            {"icao24": "600a1d", "firstSeen": 10**30, "estArrivalAirport": "OITT"},
            "not an object",
        ]
    ).encode()
    server.route("/api/flights/departure", Reply(body=body, content_type=JSON))
    outcome = run_with(spec(server, days=1, from_airport="UBBB", to_airport="OITT"))
    assert outcome.state == "ok"
    assert [item.structured["icao24"] for item in outcome.items] == ["600a1b"]
    assert outcome.skipped == {"bad record": 3}
