"""Fetch evidence from the outside world: feeds, search APIs, flight data, web pages.

`collect(specs, validators)` fetches every source concurrently through one shared HTTP client and
returns one `Outcome` per source, in order; it never raises for anything a source does.
`scrapers` knows HTTP and formats only, and never imports `tracker`.
"""

from scrapers.base import Item, Outcome, OutcomeState, SourceSpec, Validators
from scrapers.collect import collect, collect_async
from scrapers.http import DEFAULT_USER_AGENT, HttpSettings
from scrapers.kinds import KINDS, KindInfo

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
