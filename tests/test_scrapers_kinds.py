"""The public API and the registry of kinds, whose docstrings are user-facing help."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import scrapers
from scrapers import KINDS, HttpSettings, KindInfo, SourceSpec, collect
from scrapers.errors import SourceError

PACKAGE = Path(scrapers.__file__).parent


def test_public_api() -> None:
    assert set(scrapers.__all__) >= {"collect", "HttpSettings", "KINDS", "KindInfo"}
    params = list(inspect.signature(collect).parameters)
    assert params[:4] == ["specs", "validators", "settings", "on_outcome"]
    assert collect([], {}) == []


def test_production_defaults() -> None:
    settings = HttpSettings()
    assert settings.user_agent == "tracker/0.1 (+https://github.com/tracker-monitor/tracker)"
    assert settings.retry_after_cap == 60
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.max_redirects == 5
    assert settings.per_host_limit == 2
    assert settings.max_items_per_feed == 500


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="deadline"):
        HttpSettings(deadline=0)


@pytest.mark.parametrize(
    ("name", "needs_url"),
    [("rss", True), ("google_news", False), ("gdelt", False), ("opensky", False), ("page", True)],
)
def test_every_kind_is_documented(name: str, needs_url: bool) -> None:
    info = KINDS[name]
    assert isinstance(info, KindInfo)
    assert info.name == name and info.needs_url is needs_url
    assert info.summary == info.doc.splitlines()[0] and info.summary.endswith(".")
    assert "Example" in info.doc and f'kind = "{name}"' in info.doc
    assert all(isinstance(help_, str) and help_ for help_ in info.options.values())


def test_examples_are_valid_toml_with_known_keys() -> None:
    spec_fields = set(SourceSpec.__struct_fields__)
    for name, info in KINDS.items():
        example = info.doc.split("Example", 1)[1].split(":", 1)[1]
        (table,) = tomllib.loads(textwrap.dedent(example))["source"]
        assert table["kind"] == name
        assert set(table) <= spec_fields | set(info.options), name


def test_scrapers_never_imports_tracker() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "tracker" or n.startswith("tracker.") for n in names), path
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, scrapers; print('tracker' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("name", "query_key", "needs_commitment", "credentials", "trusted"),
    [
        ("rss", None, False, {}, False),
        ("google_news", "language", False, {}, False),
        ("gdelt", "gdelt", False, {}, False),
        (
            "opensky",
            None,
            False,
            {"client_id": "OPENSKY_CLIENT_ID", "client_secret": "OPENSKY_CLIENT_SECRET"},
            True,
        ),
        ("page", None, True, {}, False),
    ],
)
def test_a_kind_declares_what_the_tracker_needs(
    name: str,
    query_key: str | None,
    needs_commitment: bool,
    credentials: dict[str, str],
    trusted: bool,
) -> None:
    info = KINDS[name]
    assert info.query_key == query_key
    assert info.needs_commitment is needs_commitment
    assert info.credentials == credentials
    assert set(info.credentials) <= set(info.options)
    assert info.trusted is trusted
    # The documented example passes the kind's own value checks.
    example = info.doc.split("Example", 1)[1].split(":", 1)[1]
    (table,) = tomllib.loads(textwrap.dedent(example))["source"]
    spec_fields = set(SourceSpec.__struct_fields__)
    info.check_options({k: v for k, v in table.items() if k not in spec_fields})
    info.check_options({})


@pytest.mark.parametrize(
    ("kind", "options", "reason"),
    [
        ("gdelt", {"maxrecords": 0}, "option 'maxrecords' must be between 1 and 250, got 0"),
        ("gdelt", {"maxrecords": 251}, "option 'maxrecords' must be between 1 and 250, got 251"),
        ("gdelt", {"maxrecords": "many"}, "option 'maxrecords' must be a whole number, got 'many'"),
        (
            "gdelt",
            {"timespan": "7 years"},
            "option 'timespan' must look like 15min, 24h, 7d, 2w or 3m, got '7 years'",
        ),
        (
            "gdelt",
            {"timespan": "5min"},
            "option 'timespan' must be at least 15 minutes, got '5min'",
        ),
        ("gdelt", {"min_interval": -1}, "option 'min_interval' must be a number ≥ 0, got -1"),
        (
            "gdelt",
            {"sourcecountry": ["IR", "x y"]},
            "option 'sourcecountry' must be codes or names such as IR or persian, got 'x y'",
        ),
        (
            "gdelt",
            {"base_url": "ftp://x"},
            "option 'base_url' must be an http(s) URL, got 'ftp://x'",
        ),
        (
            "google_news",
            {"min_interval": "soon"},
            "option 'min_interval' must be a number, got 'soon'",
        ),
        (
            "google_news",
            {"hl": "en US"},
            "option 'hl' must be a language code such as en-US, got 'en US'",
        ),
        ("google_news", {"ceid": "US"}, "option 'ceid' must be COUNTRY:lang, e.g. US:en, got 'US'"),
        ("opensky", {"days": 31}, "option 'days' must be between 1 and 30, got 31"),
        ("opensky", {"days": 0}, "option 'days' must be between 1 and 30, got 0"),
        ("opensky", {"milestone": 0}, "option 'milestone' must be a whole number ≥ 1, got 0"),
        ("opensky", {"milestone": 1.5}, "option 'milestone' must be a whole number, got 1.5"),
        (
            "opensky",
            {"from_airport": "TBZ"},
            "option 'from_airport' must be a 4-character ICAO code such as OITT, got 'TBZ'",
        ),
        (
            "opensky",
            {"api_root": "not a url"},
            "option 'api_root' must be an http(s) URL, got 'not a url'",
        ),
        (
            "page",
            {"selector": "   "},
            "option 'selector' must not be empty (leave it out to watch the body)",
        ),
        ("page", {"selector": "main[["}, "invalid CSS selector 'main[['"),
        ("page", {"title": 7}, "option 'title' must be text, got 7"),
    ],
)
def test_bad_option_values_are_refused_at_load_time(
    kind: str, options: dict[str, object], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        KINDS[kind].check_options(options)
    assert caught.value.reason == reason
