"""The `page` kind: baseline, unchanged, changed, and its failure modes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scrapers import Outcome, SourceSpec, Validators, collect
from scrapers.page import change_url

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import FAST, LoopbackServer, Reply, Request, fixture, serve
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import FAST, LoopbackServer, Reply, Request, fixture, serve

HTML = "text/html; charset=utf-8"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def watch(
    url: str, validators: Validators | None = None, language: str = "en", **options: object
) -> Outcome:
    spec = SourceSpec(
        name="airline-timetable",
        kind="page",
        language=language,
        url=url,
        options={"commitment": "tabriz-baku-flight", "selector": "main", **options},
    )
    (outcome,) = collect([spec], {spec.name: validators or Validators()}, FAST)
    return outcome


def test_first_visit_records_a_baseline(server: LoopbackServer) -> None:
    url = server.route("/flights", Reply(body=fixture("page_v1.html"), content_type=HTML))
    outcome = watch(url)
    assert outcome.state == "ok"
    assert outcome.items == []
    text = (
        "International routes\nBaku – Moscow daily\nBaku – Tehran Mon, Thu\n"
        "Timetable valid from 1 January 2026."
    )
    assert outcome.validators.snapshot == text
    assert outcome.validators.fingerprint == hashlib.sha256(text.encode()).hexdigest()


def test_noise_outside_the_selector_is_unchanged(server: LoopbackServer) -> None:
    url = server.route(
        "/flights",
        [
            Reply(body=fixture("page_v1.html"), content_type=HTML),
            Reply(body=fixture("page_v1_noise.html"), content_type=HTML),
        ],
    )
    baseline = watch(url)
    again = watch(url, baseline.validators)
    assert again.state == "unchanged"
    assert again.items == []
    assert again.validators.fingerprint == baseline.validators.fingerprint


def test_whole_body_default_selector_sees_the_noise(server: LoopbackServer) -> None:
    url = server.route(
        "/flights",
        [
            Reply(body=fixture("page_v1.html"), content_type=HTML),
            Reply(body=fixture("page_v1_noise.html"), content_type=HTML),
        ],
    )
    baseline = watch(url, selector="body")
    changed = watch(url, baseline.validators, selector="body")
    assert changed.state == "ok"
    # Scripts never count, visible text does.
    assert changed.items[0].summary == "Generated at 11:12:13"


def test_change_becomes_one_untrusted_item(server: LoopbackServer) -> None:
    server.route(
        "/flights",
        [
            Reply(body=fixture("page_v1.html"), content_type=HTML),
            Reply(body=fixture("page_v2.html"), content_type=HTML),
        ],
    )
    url = server.url("/flights?lang=en")
    baseline = watch(url, title="Airline timetable")
    changed = watch(url, baseline.validators, title="Airline timetable")
    assert changed.state == "ok"
    (item,) = changed.items
    fingerprint = changed.validators.fingerprint
    assert fingerprint is not None and fingerprint != baseline.validators.fingerprint
    assert item.title == "Page changed: Airline timetable"
    assert item.url == f"{url}&tracker-change={fingerprint[:12]}"
    assert item.summary == "Baku – Tabriz Tue, Fri"
    assert item.structured == {"commitment": "tabriz-baku-flight", "trusted": False}
    assert item.published_at is not None
    assert datetime.now(UTC) - item.published_at < timedelta(seconds=5)


def test_change_without_a_stored_snapshot_summarises_the_start(server: LoopbackServer) -> None:
    url = server.route("/flights", Reply(body=fixture("page_v2.html"), content_type=HTML))
    outcome = watch(url, Validators(fingerprint="0" * 64))
    (item,) = outcome.items
    assert item.title == "Page changed: airline-timetable"
    assert item.summary.startswith("International routes Baku – Moscow daily")
    assert item.url == f"{url}?tracker-change={outcome.validators.fingerprint[:12]}"


def test_removed_text_is_summarised(server: LoopbackServer) -> None:
    url = server.route(
        "/flights",
        [
            Reply(body=fixture("page_v2.html"), content_type=HTML),
            Reply(body=fixture("page_v1.html"), content_type=HTML),
        ],
    )
    baseline = watch(url)
    changed = watch(url, baseline.validators)
    assert changed.items[0].summary == "Removed: Baku – Tabriz Tue, Fri"


def test_summary_is_capped(server: LoopbackServer) -> None:
    long_page = "<main>" + "".join(f"<p>line {i} {'x' * 50}</p>" for i in range(50)) + "</main>"
    url = server.route("/p", Reply(body=long_page, content_type=HTML))
    outcome = watch(url, Validators(fingerprint="0" * 64, snapshot="line 0"))
    assert len(outcome.items[0].summary) == FAST.page_summary_chars


def test_conditional_get_once_a_baseline_exists(server: LoopbackServer) -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"p1"':
            return Reply(304, content_type=None)
        return Reply(body=fixture("page_v1.html"), content_type=HTML, headers={"ETag": '"p1"'})

    url = server.route("/flights", handler)
    # No fingerprint yet: ask unconditionally, or a 304 would leave nothing to compare with.
    baseline = watch(url, Validators(etag='"p1"'))
    assert baseline.state == "ok" and baseline.validators.fingerprint
    assert "if-none-match" not in server.requests[0].headers
    again = watch(url, baseline.validators)
    assert again.state == "unchanged"
    assert again.validators == baseline.validators


def test_windows_1256_page_declared_in_meta(server: LoopbackServer) -> None:
    url = server.route("/fa", Reply(body=fixture("page_fa_cp1256.html"), content_type="text/html"))
    outcome = watch(url, language="fa", selector="#news")
    assert outcome.validators.snapshot == "آخرين اخبار\nشهرك صنعتي مشترك تبريز"


def test_selector_matching_nothing(server: LoopbackServer) -> None:
    url = server.route("/flights", Reply(body=fixture("page_v1.html"), content_type=HTML))
    outcome = watch(url, selector="#timetable")
    assert outcome.state == "failed"
    assert outcome.reason == "selector '#timetable' matched nothing"


def test_invalid_selector(server: LoopbackServer) -> None:
    url = server.route("/flights", Reply(body=fixture("page_v1.html"), content_type=HTML))
    outcome = watch(url, selector="main[[")
    assert outcome.state == "failed"
    assert outcome.reason == "invalid CSS selector 'main[['"


def test_commitment_is_required(server: LoopbackServer) -> None:
    url = server.route("/flights", Reply(body=fixture("page_v1.html"), content_type=HTML))
    outcome = watch(url, commitment=None)
    assert outcome.state == "failed"
    assert outcome.reason == "option 'commitment' is required for kind page"
    assert server.requests == []


def test_not_a_web_page(server: LoopbackServer) -> None:
    url = server.route("/file", Reply(body=b"%PDF-1.7", content_type="application/pdf"))
    outcome = watch(url)
    assert outcome.state == "failed"
    assert outcome.reason == "not a web page: got application/pdf"


def test_change_url_keeps_fragment() -> None:
    assert change_url("https://e.example/a#top", "abcdef0123456789") == (
        "https://e.example/a?tracker-change=abcdef012345#top"
    )
