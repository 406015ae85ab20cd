"""The public API and the registry of kinds, whose docstrings are user-facing help."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import scrapers
from scrapers import KINDS, HttpSettings, KindInfo, SourceSpec, collect

PACKAGE = Path(scrapers.__file__).parent


def test_public_api() -> None:
    assert set(scrapers.__all__) >= {"collect", "HttpSettings", "KINDS", "KindInfo"}
    params = list(inspect.signature(collect).parameters)
    assert params == ["specs", "validators", "settings", "on_outcome"]
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
    spec_fields = {f.name for f in dataclasses.fields(SourceSpec)}
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
