"""The `rss` kind: RSS 2.0, Atom and RSS 1.0 feeds, Persian encodings and dates, broken feeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from scrapers import HttpSettings, Item, Outcome, SourceSpec, collect
from scrapers.errors import SourceError
from scrapers.feeds import Feed, parse_feed

try:  # tests/ without __init__.py: pytest puts tests/ itself on sys.path
    from loopback import FAST, LoopbackServer, Reply, fast_settings, fixture, serve
except ModuleNotFoundError:  # tests/ as a package
    from tests.loopback import FAST, LoopbackServer, Reply, fast_settings, fixture, serve


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def fetch_feed(
    server: LoopbackServer,
    body: bytes,
    content_type: str | None,
    language: str = "en",
    settings: HttpSettings = FAST,
) -> Outcome:
    url = server.route("/feed", Reply(body=body, content_type=content_type))
    spec = SourceSpec(name="feed", kind="rss", language=language, url=url)
    (outcome,) = collect([spec], {}, settings)
    return outcome


def by_url(items: list[Item], url: str) -> Item:
    return next(item for item in items if item.url == url)


def test_rss2_items_are_plain_text_utc_and_deduplicated(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("rss_en.xml"), "application/rss+xml; charset=utf-8")
    assert outcome.state == "ok" and outcome.http_status == 200
    urls = [item.url for item in outcome.items]
    # The duplicated GUID appears once; the entry without any link is dropped.
    assert urls == [
        "https://en.example-ir-agency.ir/news/85000001/Iran-Azerbaijan-inaugurate-Aghband-bridge",
        server.url("/news/85000002/Tabriz-Baku-flights-to-resume"),
        "https://en.example-ir-agency.ir/news/85000003/",
        "https://en.example-ir-agency.ir/news/85000004/",
    ]
    bridge = outcome.items[0]
    assert bridge.title == "Iran, Azerbaijan inaugurate Aghband bridge over Aras River"
    assert bridge.summary == (
        "TEHRAN, Feb. 23 (EIA) – The Aghband–Kalaleh road bridge over the Aras River was "
        'opened on Monday. Officials said traffic would start "within weeks".'
    )
    assert bridge.published_at == datetime(2026, 2, 23, 14, 10, tzinfo=UTC)
    assert bridge.guid == "https://en.example-ir-agency.ir/news/85000001/"
    assert bridge.publisher == "Example IR Agency - English"
    assert bridge.language == "en"
    flights = outcome.items[1]
    assert flights.title == "Tabriz–Baku flights to resume, says East Azarbaijan governor"
    assert flights.summary.endswith("would resume & be expanded.")
    assert flights.guid == "85000002"
    park = outcome.items[2]
    assert park.summary == "The joint working group on the industrial park met in Tabriz."
    assert park.published_at == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    # More than a day in the future is a feed bug: the date becomes unknown.
    assert outcome.items[3].published_at is None


def test_persian_utf8_feed_with_jalali_dates(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("rss_fa_utf8.xml"), "application/rss+xml", "fa")
    assert outcome.state == "ok"
    first, second, third = outcome.items
    assert first.title == "برقراری پرواز مستقیم تبریز - باکو"
    assert first.summary == "استاندار آذربایجان‌شرقی از برقراری پرواز مستقیم تبریز - باکو خبر داد."
    # "سه‌شنبه ۷ مرداد ۱۴۰۴ - ۱۲:۳۰" Tehran time
    assert first.published_at == datetime(2025, 7, 29, 9, 0, tzinfo=UTC)
    assert second.published_at == datetime(2026, 2, 23, 14, 10, tzinfo=UTC)
    # "۱۳ امرداد ۱۴۰۴", a date without a time, keeps its calendar day
    assert third.published_at == datetime(2025, 8, 4, tzinfo=UTC)
    assert all(item.language == "fa" for item in outcome.items)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("rss_fa_cp1256.xml", "text/xml; charset=windows-1256"),  # header
        ("rss_fa_cp1256.xml", "application/rss+xml"),  # XML declaration only
        ("rss_fa_cp1256.xml", "text/xml; charset=utf-8"),  # header lies, declaration right
        ("rss_fa_cp1256_undeclared.xml", "text/xml"),  # nothing: guessed from language fa
    ],
    ids=["header", "declaration", "lying-header", "guessed"],
)
def test_windows_1256_feed_decodes_arabic_yeh_and_kaf_faithfully(
    server: LoopbackServer, name: str, content_type: str
) -> None:
    outcome = fetch_feed(server, fixture(name), content_type, "fa")
    assert outcome.state == "ok"
    first = outcome.items[0]
    # Arabic yeh U+064A and kaf U+0643 as the bytes say; the matcher normalises later.
    assert first.title == "تشكيل جلسه شهرك صنعتي مشترك در تبريز"
    assert "\u064a" in first.title and "\u0643" in first.title
    assert first.summary.startswith("جلسه كارگروه شهرك صنعتي مشترك ايران")
    assert "\ufffd" not in first.title + first.summary
    # "13 شهريور 1404 - 09:15": Arabic yeh in the month name, Tehran time.
    assert first.published_at == datetime(2025, 9, 4, 5, 45, tzinfo=UTC)
    assert outcome.items[1].summary.endswith("برقرار مي\u200cشود.")


def test_atom_feed(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("atom.xml"), "application/atom+xml")
    assert outcome.state == "ok"
    bridge, crossing = outcome.items
    assert bridge.title == "Araz corridor: Aghband bridge opens"
    assert bridge.url == "https://example-caucasus.org/2026/02/araz-corridor-bridge"
    assert bridge.summary == (
        "The bridge links Aghband in Zangilan with Kalaleh in Iran’s East Azerbaijan."
    )
    assert bridge.published_at == datetime(2026, 2, 23, 14, 5, tzinfo=UTC)
    assert bridge.guid == "tag:example-caucasus.org,2026:articles/9001"
    assert bridge.publisher == "Example Caucasus Review"
    assert crossing.url == server.url("/2026/01/khudafarin-crossing")
    assert crossing.summary == "The Khudafarin crossing has no customs post yet."
    assert crossing.published_at == datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert (crossing.publisher, crossing.publisher_url) == (
        "Partner Wire",
        "https://partner.example/",
    )


def test_rss1_feed(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("rss1.xml"), "application/rdf+xml", "az")
    assert outcome.state == "ok"
    (item,) = outcome.items
    assert item.title == "Xudafərin körpüsü: yeni keçid məntəqəsi"
    assert item.guid == "https://example-az-news.az/en/1"
    assert item.published_at == datetime(2025, 10, 6, 12, 43, tzinfo=UTC)


def test_broken_feed_falls_back_to_feedparser() -> None:
    body = fixture("rss_broken.xml")
    feed = parse_feed(
        body, "application/rss+xml", base_url="https://x/", language="en", settings=FAST
    )
    assert feed.parser == "feedparser"
    assert [item.title for item in feed.items] == [
        "Baku & Tabriz sign road deal",
        "Araz Valley Economic Zone gets first residents",
    ]
    assert feed.items[0].url == "https://example-az-agency.az/news/1?a=1&b=2"
    assert feed.items[0].summary == "Officials from Baku and Tabriz signed a road deal"
    assert feed.items[0].published_at == datetime(2025, 9, 4, 6, 0, tzinfo=UTC)
    well_formed = parse_feed(
        fixture("rss_en.xml"), None, base_url="https://x/", language="en", settings=FAST
    )
    assert well_formed.parser == "lxml"


def test_broken_feed_end_to_end(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("rss_broken.xml"), "application/rss+xml")
    assert outcome.state == "ok" and len(outcome.items) == 2


def test_html_page_instead_of_feed(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("not_a_feed.html"), "text/html; charset=utf-8")
    assert outcome.state == "failed"
    assert outcome.reason == "not a feed: got text/html"


def test_feed_served_as_text_html_still_parses(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("rss_en.xml"), "text/html")
    assert outcome.state == "ok" and len(outcome.items) == 4


def test_json_instead_of_feed(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, b'{"articles": []}', "application/json")
    assert outcome.state == "failed"
    assert outcome.reason == "not a feed: got application/json"


def test_malformed_xml(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, fixture("malformed.xml"), "text/xml")
    assert outcome.state == "failed"
    assert outcome.reason == (
        "malformed XML: Opening and ending tag mismatch: channel line 3 and chanel, "
        "line 5, column 10"
    )


def test_other_xml_is_not_a_feed(server: LoopbackServer) -> None:
    outcome = fetch_feed(server, b"<?xml version='1.0'?><sitemap><loc>x</loc></sitemap>", None)
    assert outcome.state == "failed"
    assert outcome.reason == "not a feed: the document is <sitemap>, not RSS or Atom"


def _long_feed(count: int, title: str, summary: str) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://e.example/{i}</link>"
        f"<description>{summary}</description></item>"
        for i in range(count)
    )
    return f'<rss version="2.0"><channel><title>T</title>{entries}</channel></rss>'.encode()


def test_items_and_text_lengths_are_capped(server: LoopbackServer) -> None:
    settings = fast_settings(max_items_per_feed=10, max_title_chars=50, max_summary_chars=100)
    outcome = fetch_feed(
        server, _long_feed(30, "T" * 300, "S" * 3000), "application/rss+xml", settings=settings
    )
    assert outcome.state == "ok"
    assert len(outcome.items) == 10
    assert all(len(item.title) == 50 and item.title.endswith("…") for item in outcome.items)
    assert all(len(item.summary) == 100 for item in outcome.items)


def test_external_entities_are_not_resolved(server: LoopbackServer) -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>T</title><item><title>a &xxe; b</title>'
        b"<link>https://e.example/1</link></item></channel></rss>"
    )
    outcome = fetch_feed(server, body, "application/rss+xml")
    assert outcome.state == "ok"
    assert "root:" not in outcome.items[0].title


def parse(body: bytes | str, content_type: str | None = "application/xml") -> Feed:
    data = body.encode() if isinstance(body, str) else body
    return parse_feed(
        data, content_type, base_url="https://feeds.example/feed", language="en", settings=FAST
    )


ITEM = "<title>T</title><link>https://e.example/1</link>"


@pytest.mark.parametrize(
    "body",
    [
        f'<rss version="2.0" xmlns="http://backend.userland.com/rss2"><channel><item>{ITEM}'
        "</item></channel></rss>",
        '<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title>T</title>'
        '<link rel="alternate" type="text/html" href="https://e.example/1"/></entry></feed>',
        '<feed><entry><title>T</title><link href="https://e.example/1"/></entry></feed>',
        f'<rss version="2.0"><item>{ITEM}</item></rss>',
    ],
    ids=["userland-namespace", "atom-0.3", "feed-without-namespace", "rss-without-channel"],
)
def test_feeds_lxml_does_not_know_go_to_feedparser(body: str) -> None:
    feed = parse(body)
    assert feed.parser == "feedparser"
    assert [(i.title, i.url) for i in feed.items] == [("T", "https://e.example/1")]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_without_bom(codec: str) -> None:
    body = '<?xml version="1.0"?><rss version="2.0"><channel><item><title>تبریز</title><link>https://e.example/1</link></item></channel></rss>'
    feed = parse(body.encode(codec), "text/xml")
    assert [i.title for i in feed.items] == ["تبریز"]


def test_atom_link_prefers_alternate_and_never_takes_license_or_self() -> None:
    feed = parse(
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://site.example/blog/">'
        '<entry><title>A</title><link rel="license" href="https://creativecommons.org/x"/>'
        '<link rel="self" href="https://site.example/a.atom"/>'
        '<link rel="alternate" href="posts/a"/><id>tag:a</id></entry>'
        '<entry><title>B</title><link rel="license" href="https://creativecommons.org/x"/>'
        '<link rel="enclosure" href="https://cdn.example/b.mp3"/><id>tag:b</id></entry>'
        '<entry><title>C</title><link rel="related" href="https://other.example/"/>'
        "<id>https://site.example/c</id></entry></feed>"
    )
    # Relative to xml:base; the entry without an alternate link is skipped, not given its
    # licence; an entry whose id is a web address is cited by it.
    assert [(i.title, i.url) for i in feed.items] == [
        ("A", "https://site.example/blog/posts/a"),
        ("C", "https://site.example/c"),
    ]
    assert feed.skipped == {"no link": 1}


def test_uppercase_scheme_base64_titles_and_title_fallbacks() -> None:
    feed = parse(
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        "<item><title>Upper</title><link>HTTP://E.example/1</link></item>"
        "<item><dc:title>From dc</dc:title><link>https://e.example/2</link>"
        "<description>the summary</description></item>"
        "<item><media:title>From media</media:title><link>https://e.example/3</link></item>"
        "<item><guid>HTTPS://e.example/4</guid></item>"
        "</channel></rss>"
    )
    assert [(i.title, i.url) for i in feed.items] == [
        ("Upper", "http://E.example/1"),
        ("From dc", "https://e.example/2"),
        ("From media", "https://e.example/3"),
        ("https://e.example/4", "https://e.example/4"),
    ]
    atom = parse(
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry>'
        '<title mode="base64">QXJheiBjb3JyaWRvcg==</title>'
        '<link href="https://e.example/5"/></entry></feed>'
    )
    assert atom.items[0].title == "Araz corridor"


def test_dates_from_dcterms_and_atom_inside_rss() -> None:
    feed = parse(
        '<rss version="2.0" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        "<item><title>a</title><link>https://e.example/a</link>"
        "<dcterms:issued>2025-07-19T10:30:00+03:30</dcterms:issued></item>"
        "<item><title>b</title><link>https://e.example/b</link>"
        "<dcterms:modified>2025-07-19T10:30:00+04:00</dcterms:modified></item>"
        "<item><title>c</title><link>https://e.example/c</link>"
        "<atom:published>2025-07-19T07:00:00Z</atom:published></item>"
        "<item><title>d</title><link>https://e.example/d</link>"
        "<atom:updated>2025-07-19T08:00:00Z</atom:updated></item>"
        "<item><title>e</title><link>https://e.example/e</link>"
        "<pubDate>Sat, 19 Jul 2025 10:30:00 +03:30</pubDate></item>"
        "<item><title>f</title><link>https://e.example/f</link>"
        "<pubDate>Sat, 19 Jul 2025 10:30:00 NOWHERE</pubDate></item>"
        "<item><title>g</title><link>https://e.example/g</link>"
        "<pubDate>۱۴۰۴/۰۴/۲۸ ۱۰:۳۰</pubDate></item>"
        "</channel></rss>"
    )
    dates = {i.title: i.published_at for i in feed.items}
    assert dates == {
        "a": datetime(2025, 7, 19, 7, tzinfo=UTC),
        "b": datetime(2025, 7, 19, 6, 30, tzinfo=UTC),
        "c": datetime(2025, 7, 19, 7, tzinfo=UTC),
        "d": datetime(2025, 7, 19, 8, tzinfo=UTC),
        "e": datetime(2025, 7, 19, 7, tzinfo=UTC),
        "f": None,  # an unknown zone is an unknown date, never UTC
        "g": datetime(2025, 7, 19, 7, tzinfo=UTC),
    }


def test_bad_entries_are_skipped_and_counted() -> None:
    feed = parse(
        '<rss version="2.0"><channel>'
        "<item><title>no link</title></item>"
        "<item><title>script</title><link>javascript:alert(1)</link></item>"
        "<item><title>mail</title><link>mailto:a@b.example</link></item>"
        f"<item>{ITEM}</item>"
        "</channel></rss>"
    )
    assert [i.title for i in feed.items] == ["T"]
    assert feed.skipped == {"no link": 1, "not a web link": 2}


def test_skipped_reach_the_outcome(server: LoopbackServer) -> None:
    body = _long_feed(12, "T", "S").replace(b"<channel>", b"<channel><item><title>x</title></item>")
    outcome = fetch_feed(
        server, body, "application/rss+xml", settings=fast_settings(max_items_per_feed=10)
    )
    assert len(outcome.items) == 10
    assert outcome.skipped == {"no link": 1, "over the item cap": 2}


def test_entity_bomb_in_the_dtd_is_never_expanded() -> None:
    """One stray undefined entity sends the feed to feedparser: the DTD must be gone by then."""
    lol = (
        "<!ENTITY a0 '"
        + "x" * 10_000
        + "'>"
        + "".join(
            f"<!ENTITY a{i} '&a{i - 1};&a{i - 1};&a{i - 1};&a{i - 1};'>" for i in range(1, 10)
        )
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{lol}]><rss version="2.0"><channel>'
        "<item><title>&a9; &bogus;</title><link>https://e.example/1</link></item>"
        + "".join(
            f"<item><title>&a0;</title><link>https://e.example/{n}</link></item>"
            for n in range(2, 300)
        )
        + "</channel></rss>"
    )
    feed = parse(body)
    assert feed.parser == "feedparser"
    assert len(feed.items) == 299
    assert all(len(item.title) < 100 for item in feed.items)


def test_unterminated_doctype_is_refused() -> None:
    with pytest.raises(SourceError, match="unterminated DOCTYPE"):
        parse('<!DOCTYPE rss [<!ENTITY a "x">')


def test_html_with_leading_comments_is_not_a_feed_in_linear_time() -> None:
    with pytest.raises(SourceError, match="not a feed"):
        parse("<!---->" * 100_000 + "<html><body>x</body></html>", "text/html")
    with pytest.raises(SourceError, match="not a feed"):
        parse("<!DOCTYPE html><html></html>", None)


def test_control_characters_c0_and_c1_are_cleaned() -> None:
    feed = parse(
        '<rss version="2.0"><channel><item><title>a\u009b[31mb\u0085c&#x9b;d</title>'
        "<link>https://e.example/1</link></item></channel></rss>"
    )
    assert feed.items[0].title == "a [31mb c d"
