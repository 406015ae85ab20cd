"""The `google_news` kind against recorded-shape Google News RSS search feeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from scrapers import Outcome, SourceSpec, collect

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import FAST, LoopbackServer, Reply, Request, fixture, serve
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import FAST, LoopbackServer, Reply, Request, fixture, serve

RSS = "application/rss+xml; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def search(
    server: LoopbackServer,
    queries: tuple[tuple[str, str], ...],
    language: str = "en",
    **options: object,
) -> Outcome:
    spec = SourceSpec(
        name="gn",
        kind="google_news",
        language=language,
        queries=queries,
        options={"base_url": server.url("/rss/search"), "min_interval": 0, **options},
    )
    (outcome,) = collect([spec], {}, FAST)
    return outcome


def test_items_keep_google_link_and_publisher(server: LoopbackServer) -> None:
    server.route("/rss/search", Reply(body=fixture("google_news_en.xml"), content_type=RSS))
    outcome = search(server, (("tabriz-baku-flight", '"Tabriz" "Baku" flight'),))
    assert outcome.state == "ok"
    first, cluster, no_source = outcome.items
    assert first.title == "AZAL increases Baku-Tabriz flights"
    assert first.url == "https://news.google.com/rss/articles/CBMiEXAMPLE0001?oc=5"
    assert first.guid == "CBMiEXAMPLE0001"
    assert first.publisher == "Example Agency"
    assert first.publisher_url == "https://www.example-agency.az"
    assert first.published_at == datetime(2025, 12, 23, 10, 15, tzinfo=UTC)
    assert first.summary == "AZAL increases Baku-Tabriz flights Example Agency"
    assert first.query_slug == "tabriz-baku-flight"
    assert cluster.title == "Iran, Azerbaijan open Aghband-Kalala bridge over Araz"
    # A cluster: the other outlets' headlines are never this item's text (nothing to match on),
    # and the other outlets are recorded as reporting the same story.
    assert cluster.summary == ""
    assert cluster.also_reported_by == (
        ("https://news.google.com/rss/articles/CBMiEXAMPLE0003?oc=5", "Example Agency"),
    )
    assert first.also_reported_by == ()
    # Without <source> the title is left as it is, and no publisher is invented.
    assert no_source.title == "Tabriz–Baku route: what travellers need to know - Travel Desk"
    assert no_source.publisher is None
    assert no_source.url == "https://news.google.com/read/CBMiEXAMPLE0004?oc=5"


@pytest.mark.parametrize(
    ("language", "hl", "gl", "ceid"),
    [
        ("en", "en-US", "US", "US:en"),
        ("fa", "fa", "IR", "IR:fa"),
        ("az", "az", "AZ", "AZ:az"),
        ("ru", "ru", "RU", "RU:ru"),
    ],
)
def test_edition_follows_language(
    server: LoopbackServer, language: str, hl: str, gl: str, ceid: str
) -> None:
    server.route("/rss/search", Reply(body=fixture("google_news_fa.xml"), content_type=RSS))
    outcome = search(server, (("", "تبریز باکو"),), language)
    assert outcome.state == "ok"
    (request,) = server.requests
    assert request.arg("q") == "تبریز باکو"
    assert (request.arg("hl"), request.arg("gl"), request.arg("ceid")) == (hl, gl, ceid)


def test_edition_options_override(server: LoopbackServer) -> None:
    server.route("/rss/search", Reply(body=fixture("google_news_en.xml"), content_type=RSS))
    search(server, (("", "Tabriz"),), "en", hl="en-GB", gl="GB")
    (request,) = server.requests
    assert (request.arg("hl"), request.arg("gl"), request.arg("ceid")) == ("en-GB", "GB", "GB:en")


def test_persian_title_keeps_inner_dash(server: LoopbackServer) -> None:
    server.route("/rss/search", Reply(body=fixture("google_news_fa.xml"), content_type=RSS))
    outcome = search(server, (("tabriz-baku-flight", "پرواز تبریز باکو"),), "fa")
    (item,) = outcome.items
    assert item.title == "برقراری پرواز مستقیم تبریز - باکو"
    assert item.publisher == "خبرگزاری نمونه"
    assert item.language == "fa"


def test_one_request_per_query_with_slug_attribution(server: LoopbackServer) -> None:
    def handler(request: Request) -> Reply:
        name = "google_news_fa.xml" if request.arg("q") == "باکو" else "google_news_en.xml"
        return Reply(body=fixture(name), content_type=RSS)

    server.route("/rss/search", handler)
    outcome = search(server, (("flight", "Tabriz Baku"), ("bridge", "Aghband"), ("fa", "باکو")))
    assert outcome.state == "ok"
    assert [r.arg("q") for r in server.requests] == ["Tabriz Baku", "Aghband", "باکو"]
    slugs = [item.query_slug for item in outcome.items]
    # The same article found by two commitments' queries is kept once for each.
    assert slugs == ["flight"] * 3 + ["bridge"] * 3 + ["fa"]


def test_requests_are_spaced_by_min_interval(server: LoopbackServer) -> None:
    server.route("/rss/search", Reply(body=fixture("google_news_en.xml"), content_type=RSS))
    started = time.monotonic()
    outcome = search(server, (("a", "one"), ("b", "two"), ("c", "three")), min_interval=0.2)
    assert outcome.state == "ok"
    assert time.monotonic() - started >= 0.4


def test_a_failing_query_fails_the_source_and_names_the_query(server: LoopbackServer) -> None:
    def handler(request: Request) -> Reply:
        if request.arg("q") == "Aghband":
            return Reply(503, "unavailable")
        return Reply(body=fixture("google_news_en.xml"), content_type=RSS)

    server.route("/rss/search", handler)
    outcome = search(server, (("flight", "Tabriz Baku"), ("bridge", "Aghband"), ("x", "later")))
    assert outcome.state == "failed"
    assert (
        outcome.reason
        == 'query "Aghband": HTTP 503 Service Unavailable: unavailable (after 3 attempts)'
    )
    assert outcome.items == []
    assert "later" not in [r.arg("q") for r in server.requests]


def test_blocked_page_instead_of_feed(server: LoopbackServer) -> None:
    server.route(
        "/rss/search",
        Reply(body=fixture("not_a_feed.html"), content_type="text/html; charset=UTF-8"),
    )
    outcome = search(server, (("", "Tabriz"),))
    assert outcome.state == "failed"
    assert outcome.reason == 'query "Tabriz": not a feed: got text/html'


def test_no_queries(server: LoopbackServer) -> None:
    outcome = search(server, ())
    assert outcome.state == "failed"
    assert outcome.reason == "no queries configured for this source"
