"""The weekly report as an HTML fragment for the site: the same Markdown as the file and the mail,
through markdown-it with raw HTML off (as `tracker.outputs.html`), so nothing in it can become a
tag; web text in that Markdown is escaped already (`escape.markdown`, `escape.md_link`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tracker.outputs.weekly import GENERATED_PREFIX, WeeklyReport

__all__ = ["report_fragment"]

# Persian and Azerbaijani titles sit beside English ones: let each block pick its direction.
_AUTO_DIRECTION = {"paragraph_open", "list_item_open", "heading_open", "td_open", "th_open"}
_DROPPED_WITHOUT_PENDING = "## Waiting for review"


def _sections(markdown_text: str, include_pending: bool) -> str:
    """The report without its 'Generated at' footer (the site has one line of its own) and, unless
    pending evidence is published, without the list of evidence waiting for review."""
    lines = markdown_text.rstrip("\n").split("\n")
    if lines and lines[-1].startswith(GENERATED_PREFIX):
        lines = lines[:-1]
        while lines and lines[-1] in ("", "---"):
            lines.pop()
    if include_pending:
        return "\n".join(lines) + "\n"
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("## "):
            skipping = line.startswith(_DROPPED_WITHOUT_PENDING)
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _decorate(token: Any) -> None:
    if token.type in _AUTO_DIRECTION:
        token.attrSet("dir", "auto")
    elif token.type == "link_open":
        token.attrSet("rel", "nofollow noopener noreferrer")
    elif token.type == "table_open":
        token.attrSet("class", "report-table")


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def report_fragment(report: WeeklyReport, *, include_pending: bool) -> str:
    """The report's body as HTML (no document around it). Trusted markup: markdown-it writes it
    with raw HTML disabled and link targets validated, from Markdown whose web text is escaped."""
    md = _parser()
    tokens = md.parse(_sections(report.markdown(), include_pending))
    for token in tokens:
        _decorate(token)
        for child in token.children or ():
            _decorate(child)
    return str(md.renderer.render(tokens, md.options, {}))
