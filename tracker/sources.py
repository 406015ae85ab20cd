"""The sources file: which feeds, searches, flight data and pages to fetch, and how often.

Format (README "Sources file"): an array of `[[source]]` tables. Common keys are checked here;
any other key is a kind-specific option that the kind's registry entry must know.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.errors import UsageError
from tracker.urls import check_url
from tracker.vocab import LANGUAGES

if TYPE_CHECKING:
    from scrapers import KindInfo

BUILTIN = "sources.toml"
COMMON_KEYS = {
    "name",
    "kind",
    "url",
    "language",
    "country",
    "every",
    "enabled",
    "queries",
    "query",
    "commitment",
}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, what: str = "duration") -> timedelta:
    """'30s', '15m', '1h', '2d', '1w' → timedelta."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"{what} must look like 30s, 15m, 1h, 2d or 1w, got {value!r}")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    language: str
    url: str | None = None
    country: str | None = None
    every: timedelta | None = None
    enabled: bool = True
    # "catalog": one query per commitment from the catalog (queries.<language>, or queries.gdelt);
    # otherwise a fixed query given with `query`.
    queries: str | None = None
    query: str | None = None
    commitment: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourcesFile:
    origin: str
    sources: list[Source]

    def get(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        import difflib

        near = difflib.get_close_matches(name, [s.name for s in self.sources], n=1, cutoff=0.4)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise UsageError(f"no source named '{name}' in {self.origin}{hint}")


def load_sources(path: str | Path | None = None) -> SourcesFile:
    """`path` (`--sources`, else $TRACKER_SOURCES, as the caller's settings say), else the
    built-in file."""
    chosen = path
    if chosen is None:
        text = resources.files("tracker.data").joinpath(BUILTIN).read_text(encoding="utf-8")
        return parse_sources(text, f"(built-in {BUILTIN})")
    p = Path(chosen)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"sources file {p}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"sources file {p}: cannot read: {exc}") from exc
    return parse_sources(text, str(p))


def kinds() -> dict[str, KindInfo]:
    """The source kinds scrapers declare: name → what tracker needs to know about each."""
    from scrapers import KINDS

    return KINDS


def parse_sources(text: str, origin: str) -> SourcesFile:
    KINDS = kinds()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"sources file {origin}: not valid TOML: {exc}") from exc
    extra = set(data) - {"source"}
    if extra:
        raise UsageError(
            f"sources file {origin}: unknown top-level key '{sorted(extra)[0]}' (expected [[source]] tables)"
        )
    tables = data.get("source")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"sources file {origin}: expected one or more [[source]] tables")
    seen: set[str] = set()
    result = [_parse_one(origin, i, table, seen, KINDS) for i, table in enumerate(tables)]
    return SourcesFile(origin, result)


def _parse_one(
    origin: str, i: int, table: dict[str, Any], seen: set[str], kinds: dict[str, KindInfo]
) -> Source:
    label = (
        f"source '{table['name']}'" if isinstance(table.get("name"), str) else f"source #{i + 1}"
    )

    def fail(msg: str, label: str = label) -> UsageError:
        return UsageError(f"sources file {origin}: {label}: {msg}")

    def text_field(key: str, required: bool = True) -> str | None:
        if key not in table:
            if required:
                raise fail(f"missing field '{key}'")
            return None
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise fail(f"field '{key}' must be a non-empty string")
        return value.strip()

    name = text_field("name")
    assert name is not None
    if name in seen:
        raise fail("name is used twice; names must be unique")
    seen.add(name)
    kind = text_field("kind")
    assert kind is not None
    if kind not in kinds:
        raise fail(f"field 'kind': unknown kind '{kind}' (one of {', '.join(sorted(kinds))})")
    info = kinds[kind]
    language = text_field("language")
    if language not in LANGUAGES:
        raise fail(f"field 'language' must be one of {', '.join(LANGUAGES)}, got '{language}'")
    url = text_field("url", required=False)
    if url is not None:
        try:
            check_url(url)
        except ValueError as exc:
            raise fail(f"field 'url': {exc}") from exc
    queries = text_field("queries", required=False)
    query = text_field("query", required=False)
    if info.query_key is not None:
        if queries is None and query is None:
            queries = "catalog"
        if queries is not None and queries != "catalog":
            raise fail("field 'queries' can only be \"catalog\" (use 'query' for a fixed query)")
        if queries is not None and query is not None:
            raise fail("give either 'queries' or 'query', not both")
    elif queries is not None or query is not None:
        searching = sorted(name for name, k in kinds.items() if k.query_key is not None)
        raise fail(f"fields 'queries'/'query' are only for search kinds ({', '.join(searching)})")
    if info.needs_url and url is None:
        raise fail("missing field 'url'")
    every = None
    if "every" in table:
        raw = table["every"]
        if not isinstance(raw, str):
            raise fail("field 'every' must be a string like \"1h\"")
        try:
            every = parse_duration(raw, "field 'every'")
        except UsageError as exc:
            raise fail(str(exc)) from exc
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("field 'enabled' must be true or false")
    country = text_field("country", required=False)
    if country is not None:
        country = country.upper()
        if country not in ("IR", "AZ", "OTHER"):
            raise fail(f"field 'country' must be IR, AZ or other, got '{country}'")
    commitment = text_field("commitment", required=False)
    options = {k: v for k, v in table.items() if k not in COMMON_KEYS}
    for key in options:
        if key not in info.options:
            known = ", ".join(sorted(COMMON_KEYS | set(info.options)))
            raise fail(f"unknown field '{key}' for kind '{kind}' (known: {known})")
    if commitment is not None and "commitment" not in info.options:
        raise fail(f"field 'commitment' is not used by kind '{kind}'")
    if info.needs_commitment and commitment is None:
        raise fail("missing field 'commitment' (the commitment a change is evidence for)")
    from scrapers.errors import SourceError

    try:
        # Values too, not only names: a bad option fails now, not at the next refresh.
        info.check_options({**options, **({"commitment": commitment} if commitment else {})})
    except SourceError as exc:
        raise fail(exc.reason) from None
    return Source(
        name=name,
        kind=kind,
        language=language,
        url=url,
        country=country,
        every=every,
        enabled=enabled,
        queries=queries,
        query=query,
        commitment=commitment,
        options=options,
    )
