"""The registry of source kinds. A kind's module docstring is its user-facing help."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType

from scrapers import gdelt, google_news, opensky, page, rss
from scrapers.base import Outcome, SourceSpec, Validators
from scrapers.http import HttpSession

__all__ = ["KINDS", "RUNNERS", "KindInfo", "Runner"]

Runner = Callable[[SourceSpec, Validators, HttpSession], Awaitable[Outcome]]


@dataclass(frozen=True)
class KindInfo:
    """What `tracker sources --kinds` shows, and what a sources file may set, for one kind."""

    name: str
    summary: str  # first line of the help
    doc: str  # the whole help text
    needs_url: bool
    options: dict[str, str]  # option name -> one-line help


def _info(name: str, module: ModuleType) -> KindInfo:
    doc = inspect.cleandoc(module.__doc__ or name)
    return KindInfo(
        name=name,
        summary=doc.splitlines()[0],
        doc=doc,
        needs_url=module.NEEDS_URL,
        options=dict(module.OPTIONS),
    )


_MODULES: dict[str, ModuleType] = {
    "rss": rss,
    "google_news": google_news,
    "gdelt": gdelt,
    "opensky": opensky,
    "page": page,
}

KINDS: dict[str, KindInfo] = {name: _info(name, module) for name, module in _MODULES.items()}
RUNNERS: dict[str, Runner] = {name: module.fetch for name, module in _MODULES.items()}
