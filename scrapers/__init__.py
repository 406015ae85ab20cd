"""Fetch evidence from the outside world: feeds, search APIs, flight data, web pages.

`collect(specs, validators)` fetches every source concurrently through one shared HTTP client and
returns one `Outcome` per source, in order; it never raises for anything a source does.
`scrapers` knows HTTP and formats only, and never imports `tracker`.

The other names below are loaded on first use (PEP 562): a parser worker, or a command that only
needs `Item` or `HttpSettings`, does not pay for httpx and every parser at import. (`collect` is
bound at once: the name is also its module's, and `scrapers/collect.py` imports nothing heavy.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scrapers.collect import collect, collect_async

if TYPE_CHECKING:
    from scrapers.base import Item, Outcome, OutcomeState, SourceSpec, Validators
    from scrapers.kinds import KINDS, KindInfo
    from scrapers.limits import DEFAULT_USER_AGENT, HttpSettings

__all__ = [
    "DEFAULT_USER_AGENT",
    "KINDS",
    "HttpSettings",
    "Item",
    "KindInfo",
    "Outcome",
    "OutcomeState",
    "SourceSpec",
    "Validators",
    "collect",
    "collect_async",
]

_WHERE = {
    "DEFAULT_USER_AGENT": "scrapers.limits",
    "HttpSettings": "scrapers.limits",
    "Item": "scrapers.base",
    "Outcome": "scrapers.base",
    "OutcomeState": "scrapers.base",
    "SourceSpec": "scrapers.base",
    "Validators": "scrapers.base",
    "KINDS": "scrapers.kinds",
    "KindInfo": "scrapers.kinds",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'scrapers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
