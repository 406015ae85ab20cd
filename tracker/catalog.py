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
from tracker.vocab import STANCES

BUILTIN = "catalog.toml"


@dataclass(frozen=True)
class CuratedEvidence:
    on: date
    title: str
    url: str
    outlet: str
    language: str
    stance: str
    milestone: int | None
    note: str
    cancels: bool = False


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


class _Reader:
    """Typed access to one TOML table that names the file and the place in every error."""

    def __init__(self, origin: str, where: str, table: Mapping[str, Any]) -> None:
        self.origin, self.where, self.table = origin, where, table

    def fail(self, message: str) -> UsageError:
        return UsageError(f"catalog {self.origin}: {self.where}: {message}")

    def get(self, key: str, kind: type, *, required: bool = True, default: Any = None) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(f"missing field '{key}'")
            return default
        value = self.table[key]
        if kind is date and isinstance(value, datetime):
            value = value.date()
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


def read_catalog_text(text: str, origin: str) -> list[AgreementSpec]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"catalog {origin}: not valid TOML: {exc}") from exc
    top = _Reader(origin, "top level", data)
    fmt = top.get("format", int, required=False, default=1)
    if fmt != 1:
        raise top.fail(f"format {fmt} is not supported (this tracker reads format 1)")
    agreements = top.tables("agreement", required=True)
    if not agreements:
        raise top.fail("no [[agreement]] tables")
    seen: set[str] = set()
    result = []
    for i, table in enumerate(agreements):
        spec = _agreement(origin, i, table)
        for c in spec.commitments:
            if c.slug in seen:
                raise UsageError(f"catalog {origin}: commitment slug '{c.slug}' appears twice")
            seen.add(c.slug)
        result.append(spec)
    return result


def read_catalog(path: str | Path) -> list[AgreementSpec]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"catalog {p}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"catalog {p}: cannot read: {exc}") from exc
    return read_catalog_text(text, str(p))


def builtin_catalog() -> list[AgreementSpec]:
    text = resources.files("tracker.data").joinpath(BUILTIN).read_text(encoding="utf-8")
    return read_catalog_text(text, f"(built-in {BUILTIN})")


def _slug(reader: _Reader, key: str = "slug") -> str:
    value = reader.get(key, str)
    if (
        not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in value)
        or value != value.lower()
    ):
        raise reader.fail(f"'{key}' must be lower-case letters, digits and '-', got {value!r}")
    return value


def _agreement(origin: str, index: int, table: Mapping[str, Any]) -> AgreementSpec:
    r = _Reader(origin, f"agreement #{index + 1}", table)
    slug = _slug(r)
    r.where = f"agreement '{slug}'"
    url = r.get("url", str, required=False)
    if url:
        try:
            check_url(url)
        except ValueError as exc:
            raise r.fail(f"field 'url': {exc}") from exc
    commitments = [
        _commitment(origin, slug, j, t) for j, t in enumerate(r.tables("commitment", required=True))
    ]
    if not commitments:
        raise r.fail("has no [[agreement.commitment]] tables")
    return AgreementSpec(
        slug=slug,
        title=r.get("title", str),
        outlet=r.get("outlet", str, required=False, default=""),
        url=url or None,
        published_on=r.get("published_on", date, required=False),
        language=r.get("language", str, required=False, default=""),
        text=r.get("text", str, required=False, default=""),
        summary=r.get("summary", str, required=False, default=""),
        commitments=commitments,
    )


def _commitment(
    origin: str, agreement: str, index: int, table: Mapping[str, Any]
) -> CommitmentSpec:
    r = _Reader(origin, f"agreement '{agreement}' commitment #{index + 1}", table)
    slug = _slug(r)
    r.where = f"commitment '{slug}'"
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
    rules = {
        "rule": list(r.tables("rule")),
        "veto": r.get("veto", dict, required=False, default={}),
    }
    try:
        from tracker.matching import rules_from_mapping

        rules_from_mapping(slug, rules)
    except ValueError as exc:
        raise r.fail(f"match rules: {exc}") from exc
    evidence = [_curated(r, i, t, len(milestones)) for i, t in enumerate(r.tables("evidence"))]
    seen_urls: dict[str, int] = {}
    for i, item in enumerate(evidence, start=1):
        earlier = seen_urls.setdefault(canonical_url(item.url), i)
        if earlier != i:
            raise r.fail(f"evidence #{i} has the same URL as evidence #{earlier} (one row per URL)")
    return CommitmentSpec(
        slug=slug,
        title=r.get("title", str),
        description=r.get("description", str, required=False, default=""),
        quote=r.get("quote", str, required=False, default=""),
        parties=r.str_list("parties", required=False),
        announced_on=r.get("announced_on", date),
        deadline=r.get("deadline", date, required=False),
        stall_days=stall_days,
        milestones=milestones,
        rules=rules,
        queries={k: v.strip() for k, v in queries.items()},
        evidence=evidence,
    )


def _curated(parent: _Reader, index: int, table: Mapping[str, Any], total: int) -> CuratedEvidence:
    r = _Reader(parent.origin, f"{parent.where} evidence #{index + 1}", table)
    url = r.get("url", str)
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
    return CuratedEvidence(
        on=r.get("date", date),
        title=r.get("title", str),
        url=url,
        outlet=r.get("outlet", str, required=False, default=""),
        language=r.get("language", str, required=False, default=""),
        stance=stance,
        milestone=milestone,
        note=r.get("note", str, required=False, default=""),
        cancels=cancels,
    )
