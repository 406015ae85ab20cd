"""Text from the web, made inert for the site; dates in both calendars; words for statuses.

Jinja2 escapes every value (autoescape is on everywhere), so markup in a title stays text. Before
that, `inert` gives untrusted text the same treatment as every other medium (`escape.terminal`):
one line, and control and bidi-override characters shown as visible `\\uXXXX` escapes, so a title
cannot reorder what follows it on screen. Characters that XML forbids are replaced as well, so the
same filter serves the Atom feed. Links go through `escape.safe_url`: http(s) only.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from tracker.dates import with_jalali
from tracker.outputs.escape import safe_url, terminal

__all__ = [
    "MEANINGS",
    "day",
    "evidence_day",
    "href",
    "inert",
    "plural",
    "status_label",
]

# Noncharacters and lone surrogates are not allowed in XML 1.0 (the C0 controls are escaped by
# `terminal` already).
_NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")

MEANINGS = {
    "announced": "promised; no milestone confirmed yet",
    "in_progress": "at least one milestone confirmed, and recent confirmed progress",
    "stalled": "not delivered, and no confirmed progress for a long time",
    "partially_delivered": "delivered in a reduced form, or delivered and later suspended",
    "delivered": "the final milestone confirmed",
    "broken": "a confirmed cancellation, or judged by a person not to happen",
}

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def inert(value: object) -> str:
    """Untrusted text as one inert display line (Jinja2 then escapes it for HTML or XML)."""
    if value is None:
        return ""
    return _NOT_XML.sub("\ufffd", terminal(str(value)))


def href(url: str | None) -> str | None:
    """An http(s) link target, or None (then the text is shown without a link).

    `safe_url` percent-encodes what could break out of a URL and, for Markdown, writes `&` as
    `&amp;` where it would start an entity; Jinja2 escapes `&` itself, so that step is undone.
    """
    target = safe_url(url)
    return None if target is None else target.replace("&amp;", "&")


def day(d: date | datetime | None) -> str:
    """'2022-02-19 (1400-11-30 ش)': ISO with the Persian calendar beside it."""
    if d is None:
        return "—"
    return with_jalali(d.date() if isinstance(d, datetime) else d)


def evidence_day(published: datetime, precision: str) -> str:
    """A publication date as precise as it is known: a day, a month or a year."""
    if precision == "year":
        return f"{published.year}"
    if precision == "month":
        return f"{_MONTHS[published.month - 1]} {published.year}"
    return day(published)


def status_label(status: str | None) -> str:
    return (status or "").replace("_", " ")


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
