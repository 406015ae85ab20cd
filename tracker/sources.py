"""The sources file: which feeds, searches, flight data and pages to fetch, and how often.

Format (README "Sources file"): an array of `[[source]]` tables. Common keys are checked here;
any other key is a kind-specific option that the kind's registry entry must know.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from tracker.errors import UsageError
from tracker.urls import check_url
from tracker.vocab import LANGUAGES

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    "confirm",
    "min_score",
}
_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, what: str = "duration") -> timedelta:
    """'30s', '15m', '1h', '2d', '1w' → timedelta."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"{what} must look like 30s, 15m, 1h, 2d or 1w, got {value!r}")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


class Source(msgspec.Struct, frozen=True):
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
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    # "auto": matched items enter confirmed (at or above min_score); "review": a person decides;
    # None: the kind's default (only trusted kinds, flight observations, confirm themselves).
    confirm: str | None = None
    min_score: float = 0.0


class SourcesFile(msgspec.Struct, frozen=True):
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
        from importlib import resources

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


def kinds() -> Mapping[str, KindInfo]:
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


class _Table:
    """One [[source]] table, read field by field; every error names the file and the source."""

    def __init__(self, origin: str, index: int, table: dict[str, Any]) -> None:
        self.origin, self.table = origin, table
        name = table.get("name")
        self.label = f"source '{name}'" if isinstance(name, str) else f"source #{index + 1}"

    def fail(self, msg: str) -> UsageError:
        return UsageError(f"sources file {self.origin}: {self.label}: {msg}")

    def text(self, key: str, required: bool = False) -> str | None:
        if key not in self.table:
            if required:
                raise self.fail(f"missing field '{key}'")
            return None
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"field '{key}' must be a non-empty string")
        return value.strip()

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def every(self) -> timedelta | None:
        if "every" not in self.table:
            return None
        raw = self.table["every"]
        if not isinstance(raw, str):
            raise self.fail("field 'every' must be a string like \"1h\"")
        try:
            return parse_duration(raw, "field 'every'")
        except UsageError as exc:
            raise self.fail(str(exc)) from exc

    def enabled(self) -> bool:
        enabled = self.table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail("field 'enabled' must be true or false")
        return enabled

    def country(self) -> str | None:
        country = self.text("country")
        if country is not None:
            country = country.upper()
            if country not in ("IR", "AZ", "OTHER"):
                raise self.fail(f"field 'country' must be IR, AZ or other, got '{country}'")
        return country

    def url(self) -> str | None:
        url = self.text("url")
        if url is not None:
            try:
                check_url(url)
            except ValueError as exc:
                raise self.fail(f"field 'url': {exc}") from exc
        return url

    def queries(
        self, info: KindInfo, kinds: Mapping[str, KindInfo]
    ) -> tuple[str | None, str | None]:
        queries, query = self.text("queries"), self.text("query")
        if info.query_key is not None:
            if queries is None and query is None:
                queries = "catalog"
            if queries is not None and queries != "catalog":
                raise self.fail(
                    "field 'queries' can only be \"catalog\" (use 'query' for a fixed query)"
                )
            if queries is not None and query is not None:
                raise self.fail("give either 'queries' or 'query', not both")
        elif queries is not None or query is not None:
            searching = sorted(name for name, k in kinds.items() if k.query_key is not None)
            raise self.fail(
                f"fields 'queries'/'query' are only for search kinds ({', '.join(searching)})"
            )
        return queries, query

    def confirm(self) -> tuple[str | None, float]:
        confirm = self.text("confirm")
        if confirm is not None and confirm not in ("auto", "review"):
            raise self.fail(f'field \'confirm\' must be "auto" or "review", got {confirm!r}')
        raw = self.table.get("min_score", 0.0)
        if "min_score" in self.table and confirm != "auto":
            raise self.fail("field 'min_score' only applies with confirm = \"auto\"")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 100:
            raise self.fail(f"field 'min_score' must be a number from 0 to 100, got {raw!r}")
        return confirm, float(raw)

    def options(self, kind: str, info: KindInfo, commitment: str | None) -> dict[str, Any]:
        from scrapers.errors import SourceError

        options = {k: v for k, v in self.table.items() if k not in COMMON_KEYS}
        for key in options:
            if key not in info.options:
                known = ", ".join(sorted(COMMON_KEYS | set(info.options)))
                raise self.fail(f"unknown field '{key}' for kind '{kind}' (known: {known})")
        if commitment is not None and "commitment" not in info.options:
            raise self.fail(f"field 'commitment' is not used by kind '{kind}'")
        if info.needs_commitment and commitment is None:
            raise self.fail("missing field 'commitment' (the commitment a change is evidence for)")
        try:
            # Values too, not only names: a bad option fails now, not at the next refresh.
            info.check_options({**options, **({"commitment": commitment} if commitment else {})})
        except SourceError as exc:
            raise self.fail(exc.reason) from None
        return options


def _parse_one(
    origin: str, i: int, table: dict[str, Any], seen: set[str], kinds: Mapping[str, KindInfo]
) -> Source:
    t = _Table(origin, i, table)
    name = t.required("name")
    if name in seen:
        raise t.fail("name is used twice; names must be unique")
    seen.add(name)
    kind = t.required("kind")
    if kind not in kinds:
        raise t.fail(f"field 'kind': unknown kind '{kind}' (one of {', '.join(sorted(kinds))})")
    info = kinds[kind]
    language = t.required("language")
    if language not in LANGUAGES:
        raise t.fail(f"field 'language' must be one of {', '.join(LANGUAGES)}, got '{language}'")
    url = t.url()
    queries, query = t.queries(info, kinds)
    if info.needs_url and url is None:
        raise t.fail("missing field 'url'")
    every, enabled, country = t.every(), t.enabled(), t.country()
    commitment = t.text("commitment")
    confirm, min_score = t.confirm()
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
        options=t.options(kind, info, commitment),
        confirm=confirm,
        min_score=min_score,
    )


def check_against(spec: SourcesFile, milestones: dict[str, int]) -> None:
    """What the sources file says of the register must be true of it: a named commitment exists,
    a milestone is one of its milestones. `milestones` maps each commitment slug to its count."""
    for source in spec.sources:
        slug = source.commitment or source.options.get("commitment")
        where = f"sources file {spec.origin}: source '{source.name}'"
        if slug is None:
            continue
        if slug not in milestones:
            import difflib

            near = difflib.get_close_matches(str(slug), list(milestones), n=1, cutoff=0.4)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise UsageError(f"{where}: field 'commitment': no commitment '{slug}'{hint}")
        milestone = source.options.get("milestone")
        if isinstance(milestone, int) and not 1 <= milestone <= milestones[slug]:
            raise UsageError(
                f"{where}: field 'milestone' must be between 1 and {milestones[slug]} for "
                f"'{slug}', got {milestone}"
            )
