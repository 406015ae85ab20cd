"""The registry of source kinds. A kind is one module; its docstring is its user-facing help.

A kind module declares, as module-level names, everything the rest of the program needs to know
about it, so that adding a kind touches `scrapers/` and the docs only:

- `NEEDS_URL: bool` — the source must give `url`;
- `NEEDS_COMMITMENT: bool` — the source must name the commitment its items are evidence for;
- `QUERY_KEY: str | None` — None: the kind runs no catalog queries; "language": one query per
  commitment from the catalog's `queries.<the source's language>`; any other string: that key
  of the catalog's `queries` table (gdelt: "gdelt");
- `CREDENTIALS: dict[str, str]` — option name → environment variable that fills it; these
  options are secrets and never shown;
- `TRUSTED: bool` — its items may confirm themselves (a flight observed) without review;
- `OPTIONS: dict[str, str]` — option name → one-line help;
- `check_options(options)` — refuses bad option values with a SourceError naming the option
  (the same checks run again when the source is fetched);
- `fetch(spec, validators, session)` — the runner.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from scrapers.base import Outcome, SourceSpec, Validators

if TYPE_CHECKING:
    from scrapers.http import HttpSession

__all__ = ["KINDS", "RUNNERS", "KindInfo", "Runner"]

Runner = Callable[[SourceSpec, Validators, "HttpSession"], Awaitable[Outcome]]
V = TypeVar("V")


class KindInfo(msgspec.Struct, frozen=True):
    """What `tracker sources --kinds` shows, what a sources file may set, and what the tracker
    must do for one kind."""

    name: str
    summary: str  # first line of the help
    doc: str  # the whole help text
    needs_url: bool
    options: dict[str, str]  # option name -> one-line help
    # None: no catalog queries; "language": queries.<source language>; else that queries key.
    query_key: str | None
    needs_commitment: bool
    credentials: dict[str, str]  # option name -> environment variable; never shown
    trusted: bool  # items may confirm themselves by default
    # Validates option values (types, ranges) at load time; raises SourceError naming the option.
    check_options: Callable[[Mapping[str, Any]], None]


def _info(name: str, module: ModuleType) -> KindInfo:
    doc = inspect.cleandoc(module.__doc__ or name)
    return KindInfo(
        name=name,
        summary=doc.splitlines()[0],
        doc=doc,
        needs_url=module.NEEDS_URL,
        options=dict(module.OPTIONS),
        query_key=module.QUERY_KEY,
        needs_commitment=module.NEEDS_COMMITMENT,
        credentials=dict(module.CREDENTIALS),
        trusted=module.TRUSTED,
        check_options=module.check_options,
    )


# Each kind is the module scrapers.<name>, imported when the kind is first looked up: a refresh
# of RSS feeds loads neither the GDELT, OpenSky nor page clients (and what they import).
_NAMES = ("rss", "google_news", "gdelt", "opensky", "page")


class _Registry(Mapping[str, V]):
    """name -> what `make` reads from that kind's module, for every kind in `_NAMES`."""

    def __init__(self, make: Callable[[str, ModuleType], V]) -> None:
        self._make = make
        self._made: dict[str, V] = {}

    def __getitem__(self, name: str) -> V:
        made = self._made.get(name)
        if made is None:
            if name not in _NAMES:
                raise KeyError(name)
            made = self._made[name] = self._make(name, importlib.import_module(f"scrapers.{name}"))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)

    def __contains__(self, name: object) -> bool:
        return name in _NAMES


KINDS: Mapping[str, KindInfo] = _Registry(_info)
RUNNERS: Mapping[str, Runner] = _Registry(lambda _, module: module.fetch)
