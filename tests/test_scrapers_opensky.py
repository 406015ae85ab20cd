"""The `opensky` kind: OAuth2 client credentials, per-day departure windows, observed flights."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from scrapers import Outcome, SourceSpec, collect
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
    assert outcome.elapsed < 1


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
