"""The weekly report as an HTML document for the mail's second part.

Inline styles, because mail clients drop <style> blocks. markdown-it runs with raw HTML off, so
nothing in the Markdown (which escapes web text already) can become a tag.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_html"]

_STYLES = {
    "table_open": "border-collapse:collapse;border:1px solid #999999;margin:8px 0;font-size:13px",
    "th_open": "border:1px solid #999999;padding:4px 8px;text-align:left;background-color:#eeeeee",
    "td_open": "border:1px solid #999999;padding:4px 8px;vertical-align:top",
    "heading_open": "font-family:Arial,Helvetica,sans-serif;color:#222222",
    "code_inline": "font-family:Menlo,Consolas,monospace;background-color:#f3f3f3;padding:0 2px",
    "link_open": "color:#1a5fb4",
    "hr": "border:0;border-top:1px solid #cccccc",
}
_BODY_STYLE = "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.45;color:#222222"


# Persian and Azerbaijani titles sit beside English ones: let each block pick its direction.
_AUTO_DIRECTION = {"paragraph_open", "list_item_open", "heading_open", "td_open", "th_open"}


def _style(token: Any) -> None:
    if token.type in _AUTO_DIRECTION:
        token.attrSet("dir", "auto")
    style = _STYLES.get(token.type)
    if style is None:
        return
    # Keep the column alignment markdown-it puts on cells.
    existing = token.attrGet("style")
    token.attrSet("style", f"{existing};{style}" if existing else style)
    if token.type == "table_open":
        # Old attributes too: some clients (Outlook) honour these and not CSS borders.
        token.attrSet("border", "1")
        token.attrSet("cellpadding", "4")
        token.attrSet("cellspacing", "0")


def render_html(markdown_text: str, title: str) -> str:
    """The report as an HTML document with inline styles (mail clients drop <style> blocks)."""
    from html import escape

    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown_text)
    for token in tokens:
        _style(token)
        for child in token.children or ():
            _style(child)
    body = md.renderer.render(tokens, md.options, {})
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n"
        f'<body style="{_BODY_STYLE}">\n{body}</body></html>\n'
    )
