"""The catalog: agreements → commitments → milestones, match rules, queries, curated evidence.

Read from TOML (see README "Catalog format") and validated into plain records; nothing here touches
the database (`tracker.store.writes.load_catalog` upserts the records: loading the same file twice
changes nothing, a new version updates texts and rules, and evidence is never deleted).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from tracker.errors import UsageError
from tracker.urls import canonical_url, check_url
from tracker.vocab import LANGUAGES, STANCES

BUILTIN = "catalog.toml"


@dataclass(frozen=True)
class CuratedEvidence:
    on: date
    title: str
    url: str  # "" when only a citation is known
    outlet: str
    language: str
    stance: str
    milestone: int | None
    note: str
    cancels: bool = False
    cite: str = ""  # a citation for readers where no article link is known
    date_precision: str = "day"  # day | month | year

    @property
    def key(self) -> str:
        """What keys the row: the canonical URL, or the citation when there is no link."""
        if self.url:
            return canonical_url(self.url)
        import hashlib

        return "cite:" + hashlib.sha256(self.cite.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class CommitmentSpec:
    slug: str
    title: str
    description: str
    quote: str
    parties: list[str]
    announced_on: date
    deadline: date | None
    stall_days: int | None
    milestones: list[str]
    rules: dict[str, Any]
    queries: dict[str, str]
    evidence: list[CuratedEvidence] = field(default_factory=list)


@dataclass(frozen=True)
class AgreementSpec:
    slug: str
    title: str
    outlet: str
    url: str | None
    published_on: date | None
    language: str
    text: str
    summary: str
    commitments: list[CommitmentSpec]


AGREEMENT_KEYS = frozenset(
    {"slug", "title", "outlet", "url", "published_on", "language", "summary", "text", "commitment"}
)
COMMITMENT_KEYS = frozenset(
    {
        "slug",
        "title",
        "description",
        "quote",
        "parties",
        "announced_on",
        "deadline",
        "stall_days",
        "milestones",
        "milestone_terms",
        "places",
        "not_places",
        "queries",
        "veto",
        "rule",
        "evidence",
    }
)
EVIDENCE_KEYS = frozenset(
    {
        "date",
        "date_precision",
        "title",
        "url",
        "cite",
        "outlet",
        "language",
        "stance",
        "milestone",
        "note",
        "cancels",
    }
)
PRECISIONS = ("day", "month", "year")


class _Reader:
    """Typed access to one TOML table that names the file and the place in every error."""

    def __init__(self, origin: str, where: str, table: Mapping[str, Any]) -> None:
        self.origin, self.where, self.table = origin, where, table

    def fail(self, message: str) -> UsageError:
        return UsageError(f"catalog {self.origin}: {self.where}: {message}")

    def only(self, known: frozenset[str]) -> None:
        """Refuse keys the format does not have: a typo must not be silently ignored."""
        unknown = sorted(set(self.table) - known)
        if unknown:
            import difflib

            near = difflib.get_close_matches(unknown[0], sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise self.fail(f"unknown field '{unknown[0]}'{hint}")

    def language(self, key: str = "language") -> str:
        value: str = self.get(key, str, required=False, default="")
        if value and value not in LANGUAGES:
            raise self.fail(f"'{key}' must be one of {', '.join(LANGUAGES)}, got {value!r}")
        return value

    def get(self, key: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(f"missing field '{key}'")
            return default
        value = self.table[key]
        if kind is date and isinstance(value, datetime):
            raise self.fail(f"field '{key}' must be a date (YYYY-MM-DD), got a date and time")
        if kind is str and isinstance(value, str):
            value = value.strip()
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(f"field '{key}' must be {_kind_name(kind)}, got {value!r:.60}")
        if kind is str and required and not value:
            raise self.fail(f"field '{key}' must not be empty")
        return value

    def str_list(self, key: str, *, required: bool = True) -> list[str]:
        value = self.get(key, list, required=required, default=[])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"field '{key}' must be a list of non-empty strings")
        return [v.strip() for v in value]

    def tables(self, key: str, *, required: bool = False) -> list[Mapping[str, Any]]:
        value = self.get(key, list, required=required, default=[])
        if not all(isinstance(v, dict) for v in value):
            raise self.fail(f"'{key}' must be an array of tables ([[...{key}]])")
        return value


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", date: "a date (YYYY-MM-DD)", list: "a list"}.get(
        kind, kind.__name__
    )


def read_catalog_text(text: str, origin: str, today: date | None = None) -> list[AgreementSpec]:
    """Parse and check a catalog. With `today`, curated evidence dated later is refused."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"catalog {origin}: not valid TOML: {exc}") from exc
    top = _Reader(origin, "top level", data)
    top.only(frozenset({"format", "agreement"}))
    fmt = top.get("format", int)
    if fmt != 1:
        raise top.fail(f"format {fmt} is not supported (this tracker reads format 1)")
    agreements = top.tables("agreement", required=True)
    if not agreements:
        raise top.fail("no [[agreement]] tables")
    seen: set[str] = set()
    result = []
    for i, table in enumerate(agreements):
        spec = _agreement(origin, i, table, today)
        for c in spec.commitments:
            if c.slug in seen:
                raise UsageError(f"catalog {origin}: commitment slug '{c.slug}' appears twice")
            seen.add(c.slug)
        result.append(spec)
    return result


def read_catalog(path: str | Path, today: date | None = None) -> list[AgreementSpec]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"catalog {p}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"catalog {p}: cannot read: {exc}") from exc
    return read_catalog_text(text, str(p), today)


def builtin_catalog(today: date | None = None) -> list[AgreementSpec]:
    text = resources.files("tracker.data").joinpath(BUILTIN).read_text(encoding="utf-8")
    return read_catalog_text(text, f"(built-in {BUILTIN})", today)


def _slug(reader: _Reader, key: str = "slug") -> str:
    value = reader.get(key, str)
    if (
        not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in value)
        or value != value.lower()
    ):
        raise reader.fail(f"'{key}' must be lower-case letters, digits and '-', got {value!r}")
    return value


def _agreement(
    origin: str, index: int, table: Mapping[str, Any], today: date | None
) -> AgreementSpec:
    r = _Reader(origin, f"agreement #{index + 1}", table)
    slug = _slug(r)
    r.where = f"agreement '{slug}'"
    r.only(AGREEMENT_KEYS)
    url = r.get("url", str, required=False)
    if url:
        try:
            check_url(url)
        except ValueError as exc:
            raise r.fail(f"field 'url': {exc}") from exc
    commitments = [
        _commitment(origin, slug, j, t, today)
        for j, t in enumerate(r.tables("commitment", required=True))
    ]
    if not commitments:
        raise r.fail("has no [[agreement.commitment]] tables")
    return AgreementSpec(
        slug=slug,
        title=r.get("title", str),
        outlet=r.get("outlet", str, required=False, default=""),
        url=url or None,
        published_on=r.get("published_on", date, required=False),
        language=r.language(),
        text=r.get("text", str, required=False, default=""),
        summary=r.get("summary", str, required=False, default=""),
        commitments=commitments,
    )


def _commitment(
    origin: str, agreement: str, index: int, table: Mapping[str, Any], today: date | None
) -> CommitmentSpec:
    r = _Reader(origin, f"agreement '{agreement}' commitment #{index + 1}", table)
    slug = _slug(r)
    r.where = f"commitment '{slug}'"
    r.only(COMMITMENT_KEYS)
    milestones = r.str_list("milestones")
    if not 1 <= len(milestones) <= 10:
        raise r.fail("'milestones' must list 1 to 10 steps (the last one means delivered)")
    stall_days = r.get("stall_days", int, required=False)
    if stall_days is not None and stall_days < 1:
        raise r.fail("'stall_days' must be a positive number of days")
    queries = r.get("queries", dict, required=False, default={})
    for key, value in queries.items():
        if not isinstance(value, str) or not value.strip():
            raise r.fail(f"'queries.{key}' must be a non-empty string")
        if key not in (*LANGUAGES, "gdelt"):
            raise r.fail(
                f"'queries.{key}': the key must be a language ({', '.join(LANGUAGES)}) or gdelt"
            )
    announced_on = r.get("announced_on", date)
    deadline = r.get("deadline", date, required=False)
    if deadline is not None and deadline < announced_on:
        raise r.fail(
            f"'deadline' {deadline.isoformat()} is before 'announced_on' {announced_on.isoformat()}"
        )
    rules: dict[str, Any] = {
        "rule": list(r.tables("rule")),
        "veto": r.get("veto", dict, required=False, default={}),
    }
    # Optional context for the matcher's scorer (see README "Catalog format").
    for key in ("places", "not_places"):
        if key in r.table:
            rules[key] = r.str_list(key, required=False)
    if "milestone_terms" in r.table:
        rules["milestone_terms"] = _milestone_terms(r, len(milestones))
    # The titles too: their words stand in for milestone terms the catalog does not give.
    rules["milestones"] = list(milestones)
    try:
        from tracker.matching import rules_from_mapping

        rules_from_mapping(slug, rules)
    except ValueError as exc:
        raise r.fail(f"match rules: {exc}") from exc
    evidence = [
        _curated(r, i, t, len(milestones), today) for i, t in enumerate(r.tables("evidence"))
    ]
    seen_urls: dict[str, int] = {}
    for i, item in enumerate(evidence, start=1):
        earlier = seen_urls.setdefault(item.key, i)
        if earlier != i:
            raise r.fail(f"evidence #{i} has the same URL as evidence #{earlier} (one row per URL)")
    return CommitmentSpec(
        slug=slug,
        title=r.get("title", str),
        description=r.get("description", str, required=False, default=""),
        quote=r.get("quote", str, required=False, default=""),
        parties=r.str_list("parties", required=False),
        announced_on=announced_on,
        deadline=deadline,
        stall_days=stall_days,
        milestones=milestones,
        rules=rules,
        queries={k: v.strip() for k, v in queries.items()},
        evidence=evidence,
    )


def _milestone_terms(r: _Reader, total: int) -> dict[str, dict[str, list[str]]]:
    """`milestone_terms.<n>.<language> = ["…"]`: words that suggest milestone n was reached."""
    raw = r.get("milestone_terms", dict, required=False, default={})
    result: dict[str, dict[str, list[str]]] = {}
    for number, by_language in raw.items():
        if not number.isdigit() or not 1 <= int(number) <= total:
            raise r.fail(
                f"'milestone_terms.{number}': the key must be a milestone from 1 to {total}"
            )
        if not isinstance(by_language, dict):
            raise r.fail(f"'milestone_terms.{number}' must be a table of languages")
        for language, terms in by_language.items():
            if language not in LANGUAGES:
                raise r.fail(f"'milestone_terms.{number}.{language}': unknown language")
            if not isinstance(terms, list) or not all(
                isinstance(t, str) and t.strip() for t in terms
            ):
                raise r.fail(f"'milestone_terms.{number}.{language}' must be a list of strings")
            result.setdefault(number, {})[language] = [t.strip() for t in terms]
    return result


def _curated(
    parent: _Reader, index: int, table: Mapping[str, Any], total: int, today: date | None
) -> CuratedEvidence:
    r = _Reader(parent.origin, f"{parent.where} evidence #{index + 1}", table)
    r.only(EVIDENCE_KEYS)
    url = r.get("url", str, required=False, default="")
    cite = r.get("cite", str, required=False, default="")
    if not url and not cite:
        raise r.fail("needs a 'url', or a 'cite' text when no article link is known")
    if url:
        try:
            check_url(url)
        except ValueError as exc:
            raise r.fail(f"field 'url': {exc}") from exc
    stance = r.get("stance", str, required=False, default="neutral")
    if stance not in STANCES:
        raise r.fail(f"'stance' must be one of {', '.join(STANCES)}, got {stance!r}")
    milestone = r.get("milestone", int, required=False)
    if milestone is not None and not 1 <= milestone <= total:
        raise r.fail(f"'milestone' must be between 1 and {total}, got {milestone}")
    cancels = r.get("cancels", bool, required=False, default=False)
    if cancels and stance == "progress":
        raise r.fail("'cancels = true' records a cancellation: its stance cannot be 'progress'")
    on = r.get("date", date)
    if today is not None and on > today:
        raise r.fail(f"'date' {on.isoformat()} is in the future (today is {today.isoformat()})")
    precision = r.get("date_precision", str, required=False, default="day")
    if precision not in PRECISIONS:
        raise r.fail(f"'date_precision' must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return CuratedEvidence(
        on=on,
        title=r.get("title", str),
        url=url,
        outlet=r.get("outlet", str, required=False, default=""),
        language=r.language(),
        stance=stance,
        milestone=milestone,
        note=r.get("note", str, required=False, default=""),
        cancels=cancels,
        cite=cite,
        date_precision=precision,
    )
