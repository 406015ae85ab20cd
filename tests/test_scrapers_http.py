"""HTTP client behaviour, exercised through `collect()` against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from scrapers import DEFAULT_USER_AGENT, HttpSettings, Outcome, SourceSpec, Validators, collect

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import (
        FAST,
        LoopbackServer,
        Reply,
        Request,
        fast_settings,
        fixture,
        free_port,
        serve,
    )
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import (
        FAST,
        LoopbackServer,
        Reply,
        Request,
        fast_settings,
        fixture,
        free_port,
        serve,
    )

FEED = fixture("rss_en.xml")
RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def rss(url: str, name: str = "feed") -> SourceSpec:
    return SourceSpec(name=name, kind="rss", language="en", url=url)


def run(
    spec: SourceSpec, validators: Validators | None = None, settings: HttpSettings = FAST
) -> Outcome:
    (outcome,) = collect([spec], {spec.name: validators or Validators()}, settings)
    assert outcome.state != "failed" or (outcome.reason and "\n" not in outcome.reason)
    return outcome


def test_sends_identifying_user_agent_and_only_decodable_encodings(
    server: LoopbackServer,
) -> None:
    url = server.route("/rss", Reply(body=FEED, content_type=RSS))
    assert run(rss(url)).state == "ok"
    sent = server.requests[0].headers
    assert sent["user-agent"] == DEFAULT_USER_AGENT
    assert "+https://" in DEFAULT_USER_AGENT
    assert sent["accept-encoding"] == "gzip, deflate"
    custom = fast_settings(user_agent="other/1.0 (+https://example.org)")
    run(rss(url), settings=custom)
    assert server.requests[1].headers["user-agent"] == "other/1.0 (+https://example.org)"


def test_etag_round_trip_gives_unchanged_without_parsing(server: LoopbackServer) -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, content_type=None, headers={"ETag": '"v1"'})
        return Reply(body=FEED, content_type=RSS, headers={"ETag": '"v1"'})

    url = server.route("/rss", handler)
    first = run(rss(url))
    assert first.state == "ok" and first.items
    assert first.validators.etag == '"v1"'
    second = run(rss(url), first.validators)
    assert server.requests[1].headers["if-none-match"] == '"v1"'
    assert second.state == "unchanged"
    assert second.items == [] and second.http_status == 304
    assert second.validators.etag == '"v1"'


def test_last_modified_round_trip(server: LoopbackServer) -> None:
    stamp = "Mon, 02 Mar 2026 09:00:00 GMT"

    def handler(request: Request) -> Reply:
        if request.headers.get("if-modified-since") == stamp:
            return Reply(304, content_type=None)
        return Reply(body=FEED, content_type=RSS, headers={"Last-Modified": stamp})

    url = server.route("/rss", handler)
    first = run(rss(url))
    assert first.validators == Validators(last_modified=stamp)
    second = run(rss(url), first.validators)
    assert second.state == "unchanged"
    # A 304 that repeats no validators keeps the ones we sent.
    assert second.validators.last_modified == stamp


def test_full_response_without_validators_forgets_old_ones(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(body=FEED, content_type=RSS))
    outcome = run(rss(url), Validators(etag='"old"', last_modified="yesterday"))
    assert outcome.state == "ok"
    assert outcome.validators == Validators()


def test_429_with_short_retry_after_waits_then_succeeds(server: LoopbackServer) -> None:
    url = server.route(
        "/rss",
        [
            Reply(429, "slow down", headers={"Retry-After": "1"}),
            Reply(body=FEED, content_type=RSS),
        ],
    )
    outcome = run(rss(url))
    assert outcome.state == "ok"
    assert len(server.requests) == 2
    assert 0.9 <= outcome.elapsed < 4  # waited the 1 s asked for, not the cap


def test_429_with_long_retry_after_fails_at_once(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(429, "slow down", headers={"Retry-After": "3600"}))
    outcome = run(rss(url), settings=fast_settings(retry_after_cap=60.0))
    assert outcome.state == "failed"
    assert outcome.reason == "rate limited: server asks to retry after 3600 s"
    assert outcome.retry_after == 3600
    assert outcome.http_status == 429
    assert outcome.elapsed < 3  # at once, not after an hour
    assert len(server.requests) == 1


def test_503_retry_after_as_http_date(server: LoopbackServer) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    url = server.route("/rss", Reply(503, "maintenance", headers={"Retry-After": later}))
    outcome = run(rss(url))
    assert outcome.state == "failed"
    assert outcome.reason is not None and outcome.reason.startswith("rate limited: server asks")
    assert outcome.retry_after is not None and 7100 < outcome.retry_after <= 7200
    assert outcome.elapsed < 3


def test_503_then_200_is_retried(server: LoopbackServer) -> None:
    url = server.route("/rss", [Reply(503, "busy"), Reply(body=FEED, content_type=RSS)])
    outcome = run(rss(url))
    assert outcome.state == "ok" and outcome.items
    assert len(server.requests) == 2


def test_502_every_time_gives_up_after_bounded_retries(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(502, "bad gateway"))
    outcome = run(rss(url), settings=fast_settings(max_retries=2))
    assert outcome.state == "failed"
    assert outcome.reason == "HTTP 502 Bad Gateway: bad gateway (after 3 attempts)"
    assert len(server.requests) == 3


def test_500_fails_without_retry(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(500, content_type="text/html", body="<h1>oops</h1>"))
    outcome = run(rss(url))
    assert outcome.state == "failed"
    assert outcome.reason == "HTTP 500 Internal Server Error"
    assert outcome.http_status == 500
    assert len(server.requests) == 1


def test_connection_refused() -> None:
    port = free_port()
    outcome = run(rss(f"http://127.0.0.1:{port}/rss"))
    assert outcome.state == "failed"
    assert outcome.reason == f"connection refused (127.0.0.1:{port}) (after 3 attempts)"


def test_reset_connection_is_retried(server: LoopbackServer) -> None:
    url = server.route("/rss", [Reply(reset=True), Reply(body=FEED, content_type=RSS)])
    outcome = run(rss(url))
    assert outcome.state == "ok"
    assert len(server.requests) == 2


def test_server_that_never_answers_ends_at_the_deadline(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(hang=True))
    settings = fast_settings(read_timeout=5.0, deadline=1.0)
    outcome = run(rss(url), settings=settings)
    assert outcome.state == "failed"
    assert outcome.reason == "timed out after 1.0 s"
    assert 0.9 <= outcome.elapsed < 3
    assert len(server.requests) == 1


def test_drip_feeding_server_ends_at_the_total_deadline(server: LoopbackServer) -> None:
    # One byte every 0.5 s never trips the 1 s read timeout; only the deadline stops it.
    url = server.route("/rss", Reply(body=FEED, content_type=RSS, drip=0.5))
    outcome = run(rss(url), settings=fast_settings(read_timeout=1.0, deadline=2.0))
    assert outcome.state == "failed"
    assert outcome.reason == "timed out after 2.0 s"
    assert 1.9 <= outcome.elapsed < 4


def test_body_over_the_cap_by_declared_length(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(body=b"x" * 100_000, content_type=RSS))
    outcome = run(rss(url), settings=fast_settings(max_body_bytes=64 * 1024))
    assert outcome.state == "failed"
    assert outcome.reason == "response larger than 64 KB"


def test_body_over_the_cap_while_streaming(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(body=b"x" * 1_000_000, content_type=RSS, chunked=True))
    outcome = run(rss(url), settings=fast_settings(max_body_bytes=64 * 1024))
    assert outcome.state == "failed"
    assert outcome.reason == "response larger than 64 KB"


def _gzip_of_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


def test_gzip_bomb_is_stopped_early_with_bounded_memory(server: LoopbackServer) -> None:
    bomb = _gzip_of_zeros(200)  # ~200 KB on the wire, 200 MB inflated
    assert len(bomb) < 1024 * 1024
    url = server.route(
        "/rss", Reply(body=bomb, content_type=RSS, headers={"Content-Encoding": "gzip"})
    )
    tracemalloc.start()
    try:
        outcome = run(rss(url), settings=fast_settings(max_body_bytes=1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.state == "failed"
    assert outcome.reason == "response larger than 1 MB after decompression"
    assert peak < 16 * 1024 * 1024
    assert outcome.elapsed < 4


def test_gzip_feed_is_decoded(server: LoopbackServer) -> None:
    url = server.route(
        "/rss",
        Reply(body=gzip.compress(FEED), content_type=RSS, headers={"Content-Encoding": "gzip"}),
    )
    outcome = run(rss(url))
    assert outcome.state == "ok"
    assert len(outcome.items) == 4


def test_redirect_is_followed_and_links_resolve_against_the_final_url(
    server: LoopbackServer,
) -> None:
    server.route("/moved/rss", Reply(body=FEED, content_type=RSS))
    url = server.route("/rss", Reply(301, headers={"Location": "/moved/rss"}))
    outcome = run(rss(url))
    assert outcome.state == "ok"
    relative = next(i for i in outcome.items if i.guid == "85000002")
    assert relative.url == server.url("/news/85000002/Tabriz-Baku-flights-to-resume")


def test_redirect_loop_fails_readably(server: LoopbackServer) -> None:
    server.route("/b", Reply(302, headers={"Location": "/a"}))
    url = server.route("/a", Reply(302, headers={"Location": "/b"}))
    outcome = run(rss(url))
    assert outcome.state == "failed"
    assert outcome.reason == f"redirect loop: {server.url('/b')} redirects back to {url}"


def test_too_many_redirects(server: LoopbackServer) -> None:
    for hop in range(10):
        server.route(f"/r{hop}", Reply(302, headers={"Location": f"/r{hop + 1}"}))
    outcome = run(rss(server.url("/r0")), settings=fast_settings(max_redirects=5))
    assert outcome.state == "failed"
    assert outcome.reason == "too many redirects (more than 5)"
    assert len(server.requests) == 6


def test_per_host_limit_caps_simultaneous_requests(server: LoopbackServer) -> None:
    specs = [
        rss(server.route(f"/feed{i}", Reply(body=FEED, content_type=RSS, delay=0.3)), f"s{i}")
        for i in range(6)
    ]
    started = time.monotonic()
    outcomes = collect(specs, {}, fast_settings(per_host_limit=2))
    elapsed = time.monotonic() - started
    assert [o.state for o in outcomes] == ["ok"] * 6
    assert server.max_active == 2
    assert elapsed >= 0.85  # three rounds of two


def test_sources_on_different_hosts_run_concurrently() -> None:
    # Timeouts well above the delay: a loaded CI machine must not turn waiting into failing.
    patient = fast_settings(read_timeout=5.0, deadline=8.0)
    with ExitStack() as stack:
        servers = [stack.enter_context(serve()) for _ in range(5)]
        specs = [
            rss(s.route("/rss", Reply(body=FEED, content_type=RSS, delay=1.0)), f"s{i}")
            for i, s in enumerate(servers)
        ]
        started = time.monotonic()
        outcomes = collect(specs, {}, patient)
        elapsed = time.monotonic() - started
    assert [o.state for o in outcomes] == ["ok"] * 5
    # One after another would take five delays (5 s); together, one (and a parser's start).
    assert elapsed < 3.8


def test_global_limit_caps_all_hosts_together() -> None:
    with ExitStack() as stack:
        servers = [stack.enter_context(serve()) for _ in range(4)]
        specs = [
            rss(s.route("/rss", Reply(body=FEED, content_type=RSS, delay=0.3)), f"s{i}")
            for i, s in enumerate(servers)
        ]
        started = time.monotonic()
        outcomes = collect(specs, {}, fast_settings(global_limit=2))
        elapsed = time.monotonic() - started
    assert [o.state for o in outcomes] == ["ok"] * 4
    assert elapsed >= 0.55


def test_one_failing_source_does_not_stop_the_others(server: LoopbackServer) -> None:
    good = server.route("/good", Reply(body=FEED, content_type=RSS, delay=0.2))
    bad = server.route("/bad", Reply(500))
    specs = [
        rss(good, "good"),
        rss(bad, "bad"),
        SourceSpec(name="odd", kind="carrier-pigeon", language="en"),
        SourceSpec(name="no-url", kind="rss", language="en"),
        SourceSpec(name="typo", kind="rss", language="en", url=good, options={"selectr": "x"}),
    ]
    seen: list[str] = []
    outcomes = collect(specs, {}, FAST, on_outcome=lambda o: seen.append(o.source))
    assert [o.source for o in outcomes] == ["good", "bad", "odd", "no-url", "typo"]
    assert [o.state for o in outcomes] == ["ok", "failed", "failed", "failed", "failed"]
    assert outcomes[1].reason == "HTTP 500 Internal Server Error"
    assert outcomes[2].reason is not None
    assert outcomes[2].reason.startswith("unknown kind 'carrier-pigeon' (known kinds: gdelt,")
    assert outcomes[3].reason == "kind rss needs a url"
    assert outcomes[4].reason == "unknown option(s) selectr for kind rss (allowed: none)"
    # on_outcome hears of each source once, the slow good one last.
    assert sorted(seen) == sorted(o.source for o in outcomes)
    assert seen[-1] == "good"


def test_failed_outcome_keeps_the_validators_it_was_given(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(500))
    stored = Validators(etag='"v7"', last_modified="Mon, 02 Mar 2026 09:00:00 GMT")
    assert run(rss(url), stored).validators == stored


def test_collect_works_when_called_inside_an_event_loop(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(body=FEED, content_type=RSS))

    async def caller() -> list[Outcome]:
        return collect([rss(url)], {}, FAST)

    (outcome,) = asyncio.run(caller())
    assert outcome.state == "ok"
