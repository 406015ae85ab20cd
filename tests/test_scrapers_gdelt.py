"""The `gdelt` kind against GDELT DOC 2.0 ArtList JSON and its plain-text errors."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from scrapers import Outcome, SourceSpec, collect

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import FAST, LoopbackServer, Reply, Request, fixture, serve
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import FAST, LoopbackServer, Reply, Request, fixture, serve

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def search(
    server: LoopbackServer, queries: tuple[tuple[str, str], ...], **options: object
) -> Outcome:
    spec = SourceSpec(
        name="gdelt",
        kind="gdelt",
        language="en",
        queries=queries,
        options={"base_url": server.url("/api/v2/doc/doc"), "min_interval": 0.05, **options},
    )
    (outcome,) = collect([spec], {}, FAST)
    return outcome


def test_artlist_to_items(server: LoopbackServer) -> None:
    server.route("/api/v2/doc/doc", Reply(body=fixture("gdelt_artlist.json"), content_type=JSON))
    outcome = search(server, (("aghband-bridge", '("Aghband" OR "Araz corridor")'),))
    assert outcome.state == "ok"
    english, persian, russian = outcome.items
    assert english.url == (
        "https://www.example-az-agency.az/en/news/aghband-kalala-bridge-completed-0001"
    )
    assert english.title == "Construction of Aghband-Kalala road bridge over Araz river completed"
    assert english.published_at == datetime(2026, 2, 23, 17, 15, tzinfo=UTC)
    assert english.publisher == "example-az-agency.az"
    assert english.language == "en"
    assert english.query_slug == "aghband-bridge"
    assert persian.title == "برقراری پرواز مستقیم تبریز - باکو"
    assert persian.language == "fa"
    # The second seendate shape, YYYYMMDDhhmmss
    assert russian.published_at == datetime(2026, 2, 24, 9, 15, tzinfo=UTC)
    assert russian.language == "ru"


def test_request_parameters_and_filters(server: LoopbackServer) -> None:
    server.route("/api/v2/doc/doc", Reply(body=fixture("gdelt_empty.json"), content_type=JSON))
    outcome = search(
        server,
        (("khodaafarin", '"Khudafarin" crossing'),),
        sourcecountry=["IR", "AJ"],
        sourcelang="persian",
        timespan="24h",
    )
    assert outcome.state == "ok"
    (request,) = server.requests
    assert request.arg("query") == (
        '"Khudafarin" crossing (sourcecountry:IR OR sourcecountry:AJ) sourcelang:persian'
    )
    assert request.arg("mode") == "artlist"
    assert request.arg("format") == "json"
    assert request.arg("maxrecords") == "250"
    assert request.arg("sort") == "DateDesc"
    assert request.arg("timespan") == "24h"
    assert request.headers["user-agent"].startswith("tracker/")


def test_ready_made_filter_expression_is_appended_as_is(server: LoopbackServer) -> None:
    server.route("/api/v2/doc/doc", Reply(body=fixture("gdelt_empty.json"), content_type=JSON))
    search(server, (("", "Tabriz"),), sourcecountry="(sourcecountry:IR OR sourcecountry:AJ)")
    assert server.requests[0].arg("query") == "Tabriz (sourcecountry:IR OR sourcecountry:AJ)"
    assert server.requests[0].arg("timespan") == "7d"


@pytest.mark.parametrize("name", ["gdelt_empty.json", "gdelt_no_articles.json"])
def test_no_matches(server: LoopbackServer, name: str) -> None:
    server.route("/api/v2/doc/doc", Reply(body=fixture(name), content_type=JSON))
    outcome = search(server, (("", "Tabriz"),))
    assert outcome.state == "ok"
    assert outcome.items == []


def test_stray_control_characters_are_tolerated(server: LoopbackServer) -> None:
    server.route(
        "/api/v2/doc/doc", Reply(body=fixture("gdelt_control_chars.json"), content_type=JSON)
    )
    outcome = search(server, (("", "Tabriz"),))
    assert outcome.state == "ok"
    (item,) = outcome.items
    assert item.title == "Tabriz Baku flights resume"
    assert item.published_at == datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gdelt_error_or.txt", "Queries containing OR'd terms must be surrounded by ()."),
        ("gdelt_error_short.txt", "The specified phrase is too short."),
    ],
)
def test_query_errors_come_back_as_200_text(
    server: LoopbackServer, name: str, message: str
) -> None:
    server.route("/api/v2/doc/doc", Reply(body=fixture(name), content_type=HTML))
    outcome = search(server, (("x", '"Aghband" OR "Araz"'),))
    assert outcome.state == "failed"
    assert outcome.reason == f'query ""Aghband" OR "Araz"": GDELT: {message}'


@pytest.mark.parametrize("status", [429, 200])
def test_rate_limit_text(server: LoopbackServer, status: int) -> None:
    server.route(
        "/api/v2/doc/doc",
        Reply(status, fixture("gdelt_rate_limit.txt"), content_type="text/plain"),
    )
    outcome = search(server, (("a", "Tabriz"), ("b", "Baku")))
    assert outcome.state == "failed"
    assert outcome.reason == (
        'query "Tabriz": rate limited: Please limit requests to one every 5 seconds or '
        "contact gdelt-contact@example.org for larger queries."
    )
    assert outcome.http_status == status
    # Stop at once rather than hammer a server that asked us to slow down.
    assert len(server.requests) == 1


def test_failure_of_a_later_query_fails_the_source(server: LoopbackServer) -> None:
    def handler(request: Request) -> Reply:
        if "Baku" in (request.arg("query") or ""):
            return Reply(body=fixture("gdelt_error_or.txt"), content_type=HTML)
        return Reply(body=fixture("gdelt_artlist.json"), content_type=JSON)

    server.route("/api/v2/doc/doc", handler)
    outcome = search(server, (("a", "Tabriz"), ("b", "Tabriz OR Baku")))
    assert outcome.state == "failed"
    assert outcome.reason is not None and outcome.reason.startswith('query "Tabriz OR Baku":')
    assert outcome.items == []


def test_requests_are_spaced_by_min_interval(server: LoopbackServer) -> None:
    stamps: list[float] = []

    def handler(request: Request) -> Reply:
        stamps.append(time.monotonic())
        return Reply(body=fixture("gdelt_empty.json"), content_type=JSON)

    server.route("/api/v2/doc/doc", handler)
    outcome = search(server, (("a", "one"), ("b", "two"), ("c", "three")), min_interval=0.3)
    assert outcome.state == "ok"
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    # Measured where the server sees the requests, so allow for scheduling jitter.
    assert len(gaps) == 2 and min(gaps) >= 0.25


def test_two_gdelt_sources_share_the_pace(server: LoopbackServer) -> None:
    stamps: list[float] = []

    def handler(request: Request) -> Reply:
        stamps.append(time.monotonic())
        return Reply(body=fixture("gdelt_empty.json"), content_type=JSON)

    server.route("/api/v2/doc/doc", handler)
    options = {"base_url": server.url("/api/v2/doc/doc"), "min_interval": 0.3}
    specs = [
        SourceSpec(name=n, kind="gdelt", language="en", queries=(("", n),), options=options)
        for n in ("first", "second")
    ]
    assert [o.state for o in collect(specs, {}, FAST)] == ["ok", "ok"]
    assert stamps[1] - stamps[0] >= 0.25


def test_malformed_json(server: LoopbackServer) -> None:
    server.route("/api/v2/doc/doc", Reply(body=b'{"articles": [', content_type=JSON))
    outcome = search(server, (("", "Tabriz"),))
    assert outcome.state == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith('query "Tabriz": malformed JSON from GDELT: Expecting value')


def test_bad_option_is_reported_as_such(server: LoopbackServer) -> None:
    outcome = search(server, (("", "Tabriz"),), maxrecords=1000)
    assert outcome.state == "failed"
    assert outcome.reason == "option 'maxrecords' must be between 1 and 250, got 1000"
    assert server.requests == []


def test_an_invalid_escape_in_one_title_is_repaired(server: LoopbackServer) -> None:
    """GDELT sends backslashes JSON does not allow (\\' or a Windows path in a title)."""
    server.route("/api/v2/doc/doc", Reply(body=fixture("gdelt_bad_escape.json"), content_type=JSON))
    outcome = search(server, (("a", "Tabriz"),))
    assert outcome.state == "ok"
    assert [item.url for item in outcome.items] == [
        "https://www.example-az-agency.az/en/news/0001",
        "https://www.example-ir-agency.ir/news/2",
        "https://www.example-ru.ru/3",
    ]
    assert outcome.items[1].title == "Tabriz\\'s C:\\Users\\ path \\x41 tractor"
    assert outcome.skipped == {}


def test_an_article_beyond_repair_is_skipped_and_the_others_kept(server: LoopbackServer) -> None:
    server.route(
        "/api/v2/doc/doc", Reply(body=fixture("gdelt_broken_article.json"), content_type=JSON)
    )
    outcome = search(server, (("a", "Tabriz"), ("b", "Baku")))
    assert outcome.state == "ok"
    assert [item.url for item in outcome.items] == [
        "https://www.example-az-agency.az/en/news/0001",
        "https://www.example-ru.ru/3",
    ] * 2
    assert outcome.skipped == {"bad record": 2}  # once per query


def test_articles_without_a_usable_link_are_counted(server: LoopbackServer) -> None:
    body = (
        '{"articles": [{"url": "javascript:alert(1)", "title": "x"}, {"title": "no url"}, '
        '{"url": 42}, "text", {"url": "https://e.example/1", "title": 7, "domain": ["x"]}]}'
    )
    server.route("/api/v2/doc/doc", Reply(body=body, content_type=JSON))
    outcome = search(server, (("", "Tabriz"),))
    assert outcome.state == "ok"
    (item,) = outcome.items
    assert (item.url, item.title, item.publisher) == (
        "https://e.example/1",
        "https://e.example/1",
        None,
    )
    assert outcome.skipped == {"not a web link": 1, "no link": 1, "bad record": 2}
