"""The static site, rendered: data in (`SiteData`), files out (relative path → text).

Jinja2 with autoescape on for every template (HTML and the Atom feed); untrusted text passes the
`t` filter (`text.inert`) and links the `href` filter (http(s) only). The one piece of markup not
produced by a template is the weekly report's body, written by markdown-it with raw HTML off.
Every page links to the others by relative paths, so the folder works from file:// and on any
static host; nothing is loaded from outside it, and no page has a script.

Deterministic: the same data gives the same bytes, apart from the one line starting with
`GENERATED_PREFIX` in index.html.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

from markupsafe import Markup

from tracker.dates import iso_utc
from tracker.outputs.site import views
from tracker.outputs.site.model import CommitmentPage, SiteData
from tracker.outputs.site.text import (
    MEANINGS,
    day,
    href,
    inert,
    plural,
    status_label,
)
from tracker.outputs.site.timeline import timeline
from tracker.outputs.site.weeks import report_fragment

__all__ = ["GENERATED_PREFIX", "STYLESHEET", "render_site"]

GENERATED_PREFIX = '<p class="generated">Generated at '
STYLESHEET = "style.css"
FLAG_WORDS = {
    "overdue": ("⚠", "overdue", "the deadline passed and it is not delivered"),
    "late": ("◷", "late", "delivered after its deadline"),
    "needs_review": ("?", "needs review", "evidence is waiting for a person to review it"),
    "disputed": ("⇅", "disputed", "confirmed progress and a confirmed setback in the last 90 days"),
}


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("tracker.outputs.site", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(t=inert, href=href, day=day, iso=iso_utc, label=status_label)
    env.globals.update(
        plural=plural,
        meanings=MEANINGS,
        flag_words=FLAG_WORDS,
        generated_prefix=Markup(GENERATED_PREFIX),
    )
    return env


def _render(template: str, **context: Any) -> str:
    return str(_environment().get_template(template).render(**context))


def _stylesheet() -> str:
    return (resources.files("tracker.outputs.site") / "static" / STYLESHEET).read_text("utf-8")


def _feed_tag(data: SiteData) -> str:
    """The prefix of the feed's ids: stable for as long as the register's first agreement is."""
    first = data.agreements[0].slug if data.agreements else "register"
    return f"tag:tracker,2026:{inert(first)}"


def _commitment_page(page: CommitmentPage, card: views.Card, data: SiteData) -> str:
    items = views.evidence_views(page)
    shown = {ev.e.id for ev in items}
    return _render(
        "commitment.html",
        root="../",
        data=data,
        page=page,
        card=card,
        c=page.row.commitment,
        verdict=page.row.verdict,
        items=items,
        why=views.explanation(page.row.verdict.explanation, shown),
        milestones=views.milestones(page.row),
        by_id={ev.e.id: ev for ev in items},
        changes=views.status_changes(page.history),
        line=timeline(page.row, data.today, page.evidence, page.history),
    )


def _weeks(data: SiteData) -> Iterator[tuple[str, str]]:
    newest_first = list(reversed(data.weeks))
    yield "weeks/index.html", _render("weeks.html", root="../", data=data, weeks=newest_first)
    labels = [r.week.label for r in data.weeks]
    for i, report in enumerate(data.weeks):
        body = Markup(report_fragment(report, include_pending=data.include_pending))
        yield (
            f"weeks/{report.week.label}.html",
            _render(
                "week.html",
                root="../",
                data=data,
                report=report,
                body=body,
                previous=labels[i - 1] if i > 0 else None,
                following=labels[i + 1] if i + 1 < len(labels) else None,
            ),
        )


def render_site(data: SiteData) -> Iterator[tuple[str, str]]:
    """Every file of the site except data.json, as (relative path, text), in a fixed order."""
    cards = [views.card(p, data.today) for p in data.pages]
    yield STYLESHEET, _stylesheet()
    yield (
        "index.html",
        _render(
            "index.html",
            root="",
            data=data,
            cards=cards,
            by_agreement={
                a.id: [c for p, c in zip(data.pages, cards, strict=True) if p.agreement.id == a.id]
                for a in data.agreements
            },
            changes=views.changes(data.pages, cards, data.today),
            change_days=views.CHANGE_DAYS,
        ),
    )
    for page, card in zip(data.pages, cards, strict=True):
        yield card.file, _commitment_page(page, card, data)
    entries = views.feed_entries(data.pages, cards, _feed_tag(data))
    yield (
        "feed.xml",
        _render(
            "feed.xml",
            data=data,
            entries=entries,
            tag=_feed_tag(data),
            updated=entries[0].updated if entries else views.day_start(data.today),
        ),
    )
    yield from _weeks(data)
