"""Everything a person reads passes one escaping function for its medium.

Text from the web (titles, outlet names, error messages a server wrote) is untrusted: on a
terminal it must never become an escape sequence or a second table row; in Markdown it must never
become structure (a link, emphasis, a table cell, HTML); in a spreadsheet it must never become a
formula.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from tracker.text import one_line, visible

__all__ = [
    "csv_cell",
    "markdown",
    "md_code",
    "md_link",
    "safe_url",
    "terminal",
    "terminal_block",
    "without_userinfo",
]


def terminal(text: str | None) -> str:
    """One display line; control and bidi-override characters as visible `\\uXXXX` escapes."""
    return visible(one_line(text or ""))


def terminal_block(text: str) -> str:
    """Many lines for a terminal (an export printed there): line feeds and tabs stay, every
    other control or bidi character (a carriage return too) becomes a visible escape."""
    return visible(text).replace("\r", "\\u000d")


# Characters that start emphasis, code, links, table cells or strikethrough anywhere in a line.
# Line-start markers (`-`, `+`, `>`, `#`, `1.`) need no escape because web text never starts a line
# here: it always follows a bullet, a cell border or a label (the H1, where a trailing `#` would
# matter, escapes it itself).
_MD_PUNCT = re.compile(r"([\\`*\[\]|~])")
# An underscore between two letters or digits cannot open or close emphasis (CommonMark 6.2), so
# `in_progress` stays readable in the plain-text mail; any other underscore is escaped.
_LOOSE_UNDERSCORE = re.compile(r"_(?![^\W_])|(?<![^\W_])_")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_URL_UNSAFE = set(" ()<>\"\\`|^{}'")


def markdown(value: str | None) -> str:
    """Untrusted text as inert Markdown: one line, visible controls, escaped punctuation."""
    text = visible(one_line(value or ""))
    text = _MD_PUNCT.sub(r"\\\1", text)
    text = _LOOSE_UNDERSCORE.sub(r"\\_", text)
    text = _ENTITY.sub("&amp;", text)
    return text.replace("<", "&lt;")


def without_userinfo(url: str) -> str:
    """The URL without `user:password@` (a feed's address may carry them; no view shows them)."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{head}://{authority.rpartition('@')[2]}{slash}{tail}"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL safe inside `(...)` of a Markdown link, or None for anything else."""
    if not url:
        return None
    url = without_userinfo(url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    out = []
    for ch in url:
        if ch in _URL_UNSAFE or unicodedata.category(ch)[0] in "CZ":
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return _ENTITY.sub("&amp;", "".join(out))


def md_link(text: str | None, url: str | None) -> str:
    label = markdown(text) or markdown(url) or "(untitled)"
    target = safe_url(url)
    return f"[{label}]({target})" if target else label


def md_code(identifier: str) -> str:
    """A slug, status or flag as a code span; anything unexpected falls back to escaped text."""
    if identifier and all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in identifier):
        return f"`{identifier}`"
    return markdown(identifier)


def csv_cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ (or a tab or CR) as formulas: neutralise them."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
