"""Bytes to text, and markup to plain text, the same way for every kind."""

from __future__ import annotations

import codecs
import html
import re
from typing import Literal

__all__ = [
    "collapse",
    "decode_body",
    "detect_charset",
    "html_to_lines",
    "html_to_text",
    "strip_xml_declaration",
    "truncate",
]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Without any declaration, the legacy code page of the source's language is the best guess:
# Iranian sites that are not UTF-8 are windows-1256, Russian ones windows-1251.
_LEGACY_BY_LANGUAGE = {
    "fa": "cp1256",
    "ar": "cp1256",
    "ru": "cp1251",
    "az": "cp1254",
    "tr": "cp1254",
}

_XML_DECL = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INVISIBLE = re.compile(
    r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE
)
_BLOCK_TAG = re.compile(
    r"</?(?:address|article|aside|blockquote|br|dd|div|dl|dt|figcaption|figure|footer|form|"
    r"h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|td|th|tr|ul)\b[^>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]*>")


def _codec(label: str | bytes | None) -> str | None:
    if not label:
        return None
    name = label.decode("ascii", "ignore") if isinstance(label, bytes) else label
    try:
        codec = codecs.lookup(name.strip()).name
    except LookupError:
        return None
    if codec == "ascii":
        # "us-ascii" is nearly always a wrong default; let the next signal decide.
        return None
    # Browsers read latin-1 labels as windows-1252 (WHATWG); servers rely on it.
    return "cp1252" if codec == "iso8859-1" else codec


def _valid_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# A UTF-8 document with a stray broken byte still has far more valid multi-byte characters than
# broken sequences; text in a legacy code page (windows-1256, -1251) has almost none.
_UTF8_MAJORITY = 3


def _mostly_utf8(body: bytes) -> bool:
    """UTF-8 apart from a few broken bytes, which then become U+FFFD instead of turning the
    whole document into mojibake by sending it to a legacy code page."""
    text = body.decode("utf-8", errors="replace")
    broken = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")
    if broken <= 0:
        return True
    wide = sum(1 for ch in text if ch > "\x7f") - broken
    return wide >= _UTF8_MAJORITY * broken


def detect_charset(
    body: bytes,
    content_type: str | None,
    *,
    markup: Literal["xml", "html", "text"] = "text",
    language: str | None = None,
) -> str:
    """Pick the encoding: BOM, Content-Type charset, XML declaration or HTML meta, then a guess."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    candidates: list[str | None] = []
    match = _CT_CHARSET.search(content_type or "")
    candidates.append(_codec(match.group(1)) if match else None)
    if markup in ("xml", "html"):
        decl = _XML_DECL_ENCODING.match(body[:1024])
        candidates.append(_codec(decl.group(1)) if decl else None)
    if markup == "html":
        meta = _META_CHARSET.search(body[:4096])
        candidates.append(_codec(meta.group(1)) if meta else None)
    utf8_ok: bool | None = None
    for name in candidates:
        if name is None:
            continue
        if name == "utf-8":
            # A server that claims UTF-8 for windows-1256 bytes is common on older Iranian
            # sites; believe a later signal or the guess instead of producing mojibake.
            utf8_ok = _valid_utf8(body) if utf8_ok is None else utf8_ok
            if not utf8_ok and not _mostly_utf8(body):
                continue
        return name
    if utf8_ok is not False and _mostly_utf8(body):
        return "utf-8"
    return _LEGACY_BY_LANGUAGE.get((language or "").split("-")[0].lower(), "cp1252")


def decode_body(
    body: bytes,
    content_type: str | None,
    *,
    markup: Literal["xml", "html", "text"] = "text",
    language: str | None = None,
) -> str:
    encoding = detect_charset(body, content_type, markup=markup, language=language)
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")


def strip_xml_declaration(text: str) -> str:
    """Drop `<?xml … encoding=…?>` once the text is decoded, so parsers cannot re-decode it."""
    return _XML_DECL.sub("", text, count=1)


_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def collapse(text: str) -> str:
    """One line, single spaces, no control characters; ZWNJ stays (Persian spelling needs it)."""
    if _CONTROLS.search(text):
        text = _CONTROLS.sub(" ", text)
    return " ".join(text.split())


def _strip_markup(text: str, block: str) -> str:
    text = _COMMENT.sub(" ", text)
    text = _INVISIBLE.sub(" ", text)
    text = _BLOCK_TAG.sub(block, text)
    text = _ANY_TAG.sub("", text)
    return html.unescape(text)


def html_to_text(text: str | None) -> str:
    """Plain, one-line text from an HTML fragment (or from text that merely has entities)."""
    if not text:
        return ""
    if "<" in text or "&" in text:
        text = _strip_markup(text, " ")
    return collapse(text)


def html_to_lines(text: str) -> list[str]:
    """Plain text split at block elements, one normalised line each, empty lines dropped."""
    lines = (collapse(line) for line in _strip_markup(text, "\n").splitlines())
    return [line for line in lines if line]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
