"""Bytes to text, and markup to plain text, the same way for every kind.

Everything here runs on bytes a stranger wrote, so every function is linear in its input: no
regular expression that can backtrack over an unbounded run, markup scanned with `str.find`,
and `html_to_text(…, limit)` cuts the raw text before it does any work.
"""

from __future__ import annotations

import codecs
import re
from typing import Literal

__all__ = [
    "collapse",
    "decode_body",
    "decode_body_checked",
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
# Quantifiers are bounded and the patterns run on a bounded prefix, so they stay cheap on any input.
_XML_DECL_ENCODING = re.compile(
    rb"""^\s{0,64}<\?xml[^>]{0,256}?encoding\s{0,8}=\s{0,8}["']([A-Za-z0-9._:-]{1,40})["']"""
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s{0,8}=\s{0,8}["']?\s{0,8}([A-Za-z0-9._:-]{1,40})""",
    re.IGNORECASE,
)
_CT_CHARSET = re.compile(r"""charset\s{0,8}=\s{0,8}["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
# Without any declaration, the legacy code page of the source's language is the best guess:
# Iranian sites that are not UTF-8 are windows-1256, Russian ones windows-1251.
_LEGACY_BY_LANGUAGE = {
    "fa": "cp1256",
    "ar": "cp1256",
    "ru": "cp1251",
    "az": "cp1254",
    "tr": "cp1254",
}

_XML_DECL = re.compile(r"^\ufeff?\s{0,64}<\?xml[^>]{0,512}\?>")
# C0 controls except tab/newline/CR (whitespace, collapsed below), DEL, and the C1 range:
# \x9b is a one-byte terminal escape (CSI) and must never reach a terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# html.unescape turns a numeric reference into an int: one with thousands of digits raises
# ValueError (Python's int-from-string limit), so such references become U+FFFD first. Nine
# digits is already past the largest code point (0x10FFFF = 1114111).
_LONG_CHARREF = re.compile(r"&#(?:[xX][0-9a-fA-F]{9,}|[0-9]{9,});?")
_TAG_NAME = re.compile(r"/?([A-Za-z][A-Za-z0-9]{0,15})")
# Where markup can start: "<" then a letter, "/", "!" or "?"; any other "<" is text ("a < b").
_TAG_START = re.compile(r"<[A-Za-z/!?]")

_INVISIBLE = frozenset({"script", "style", "noscript", "template"})
_BLOCK = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
# How much raw markup may be read for each character of output: generous for tag-heavy HTML,
# and a bound on the work any one field can cause.
_RAW_PER_CHAR = 20


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


def _strict_utf8(body: bytes) -> str | None:
    """The body read as UTF-8, or None when it is not valid UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    # Counted in C: a Python loop over 10 MB of characters would take a second.
    wide = len(text) - len(text.encode("ascii", "ignore")) - broken
    return wide >= _UTF8_MAJORITY * broken


def _wide_without_bom(head: bytes) -> str | None:
    """UTF-32 / UTF-16 recognised by the zero bytes around the first ASCII character (XML 1.0
    appendix F): such a body is text in no 8-bit encoding."""
    if len(head) < 4:
        return None
    zero = [b == 0 for b in head[:4]]
    if zero == [True, True, True, False]:
        return "utf-32-be"
    if zero == [False, True, True, True]:
        return "utf-32-le"
    if zero == [True, False, True, False]:
        return "utf-16-be"
    if zero == [False, True, False, True]:
        return "utf-16-le"
    return None


def detect_charset(
    body: bytes,
    content_type: str | None,
    *,
    markup: Literal["xml", "html", "text"] = "text",
    language: str | None = None,
) -> str:
    """Pick the encoding: BOM, UTF-16/32 by shape, Content-Type charset, XML declaration or HTML
    meta, then a guess."""
    return _detect(body, content_type, markup, language)[0]


def _detect(
    body: bytes,
    content_type: str | None,
    markup: Literal["xml", "html", "text"],
    language: str | None,
) -> tuple[str, str | None]:
    """(`detect_charset`'s answer, the body read as strict UTF-8 if that answer is "utf-8"
    and the check behind it already read the body so; else None), so that a valid UTF-8 body
    is decoded once, not twice."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name, None
    wide = _wide_without_bom(body[:4])
    if wide is not None:
        return wide, None
    candidates: list[str | None] = []
    match = _CT_CHARSET.search((content_type or "")[:512])
    candidates.append(_codec(match.group(1)) if match else None)
    if markup in ("xml", "html"):
        decl = _XML_DECL_ENCODING.match(body[:1024])
        candidates.append(_codec(decl.group(1)) if decl else None)
    if markup == "html":
        meta = _META_CHARSET.search(body[:4096])
        candidates.append(_codec(meta.group(1)) if meta else None)
    utf8_ok: bool | None = None
    strict: str | None = None
    for candidate in candidates:
        if candidate is None:
            continue
        name = candidate
        if name in ("utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            # A declaration read from ASCII-compatible bytes cannot be UTF-16/32 (the bytes
            # would be wide): the label is wrong, so believe the bytes instead.
            continue
        if name == "utf-8":
            # A server that claims UTF-8 for windows-1256 bytes is common on older Iranian
            # sites; believe a later signal or the guess instead of producing mojibake.
            if utf8_ok is None:
                strict = _strict_utf8(body)
                utf8_ok = strict is not None
            if not utf8_ok and not _mostly_utf8(body):
                continue
        return name, strict
    if utf8_ok is not False and _mostly_utf8(body):
        return "utf-8", strict
    return _LEGACY_BY_LANGUAGE.get((language or "").split("-")[0].lower(), "cp1252"), None


def decode_body(
    body: bytes,
    content_type: str | None,
    *,
    markup: Literal["xml", "html", "text"] = "text",
    language: str | None = None,
) -> str:
    return decode_body_checked(body, content_type, markup=markup, language=language)[0]


def decode_body_checked(
    body: bytes,
    content_type: str | None,
    *,
    markup: Literal["xml", "html", "text"] = "text",
    language: str | None = None,
) -> tuple[str, bool]:
    """(`decode_body`'s text, whether that text is exactly the body read as strict UTF-8: then
    the text's UTF-8 encoding is the body itself, and need not be made again)."""
    encoding, strict = _detect(body, content_type, markup, language)
    if strict is not None and encoding == "utf-8":
        # What body.decode("utf-8", errors="replace") returns for a valid body. It starts with
        # no BOM: a body that does is read by the BOM branch, which reads nothing.
        return strict, True
    try:
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff"), False


def strip_xml_declaration(text: str) -> str:
    """Drop `<?xml … encoding=…?>` once the text is decoded, so parsers cannot re-decode it."""
    return _XML_DECL.sub("", text, count=1)


def collapse(text: str) -> str:
    """One line, single spaces, no control characters (C0 or C1); ZWNJ stays (Persian spelling
    needs it)."""
    # isprintable() is False for every control character, and cheaper than the search.
    if not text.isprintable() and _CONTROLS.search(text):
        text = _CONTROLS.sub(" ", text)
    return " ".join(text.split())


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    if "&#" in text:
        text = _LONG_CHARREF.sub("\ufffd", text)
    import html  # here: the refresh process reads no markup, its parser processes do

    return html.unescape(text)


def _skip_invisible(text: str, name: str, start: int) -> int:
    """Index just past `</name …>` from `start`, or the end: a script runs to its end tag."""
    size = len(name)
    at = start
    while True:
        close = text.find("</", at)
        if close < 0:
            return len(text)
        after = close + 2 + size
        if text[close + 2 : after].lower() == name and not text[after : after + 1].isalnum():
            end = text.find(">", after)
            return len(text) if end < 0 else end + 1
        at = close + 2


# The fast path of _strip_markup: two substitutions in C instead of a loop over the tags. It is
# taken only where it reads exactly as the scan does: no comment, no invisible element opened,
# no "<" inside a tag (so every "<" + letter, "/", "!" or "?" starts a tag, as it does for the
# scan), and a ">" after the last "<" (so no pattern below backtracks: linear, as the scan is).
# ASCII matching: the scan's tag names are ASCII, so "<lı>" (dotless i) is not an "<li>".
_FAST_REFUSED = re.compile(
    r"<!--|<[A-Za-z/!?][^<>]*<|<(?:script|style|noscript|template)(?![A-Za-z0-9])",
    re.ASCII | re.IGNORECASE,
)


def _trie(words: list[str]) -> str:
    """An alternation matching exactly `words`, factored by common prefixes ("p(?:re)?",
    "h(?:1|2|…|eader|r)") so that a "<" is tried against a few first letters, not against
    every name in turn. Followed by a lookahead for the end of the name, it matches what the
    flat alternation does: at most one name can end where a tag name ends."""
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[:1], []).append(word[1:])
    branches = []
    for head, tails in sorted(heads.items()):
        if not head:
            continue
        rest = _trie(tails) if any(tails) else ""
        if rest and "" in tails:
            rest = f"(?:{rest})?"
        branches.append(re.escape(head) + rest)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


_BLOCK_TAG = re.compile(
    r"</?" + _trie(sorted(_BLOCK)) + r"(?![A-Za-z0-9])[^>]*>",
    re.ASCII | re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[A-Za-z/!?][^>]*>")


def _strip_markup_fast(text: str, block: str) -> str | None:
    """`_strip_markup` by two substitutions, or None when the text is not one it can read."""
    if text.rfind("<") > text.rfind(">") or _FAST_REFUSED.search(text):
        return None
    stripped = _ANY_TAG.sub("", _BLOCK_TAG.sub(block, text))
    return _unescape(stripped) if "&" in stripped else stripped


def _strip_markup(text: str, block: str) -> str:
    """Tags removed (block-level ones become `block`), comments and invisible elements dropped,
    entities decoded. One pass of `str.find`: linear whatever the input."""
    fast = _strip_markup_fast(text, block)
    return fast if fast is not None else _strip_markup_scan(text, block)


def _strip_markup_scan(text: str, block: str) -> str:
    """`_strip_markup` the long way (also the reference the fast path is tested against)."""
    out: list[str] = []
    pos = 0
    end = len(text)
    while pos < end:
        start = _TAG_START.search(text, pos)
        if start is None:
            out.append(text[pos:])
            break
        lt = start.start()
        out.append(text[pos:lt])
        if text.startswith("<!--", lt):
            close = text.find("-->", lt + 4)
            out.append(" ")
            pos = end if close < 0 else close + 3
            continue
        gt = text.find(">", lt + 1)
        if gt < 0:
            # No '>' anywhere after this point, so no later '<' can open a tag either.
            out.append(text[lt:])
            break
        match = _TAG_NAME.match(text, lt + 1, gt)
        name = match.group(1).lower() if match else ""
        closing = text.startswith("</", lt)
        pos = gt + 1
        if name in _INVISIBLE and not closing and not text.startswith("/", gt - 1):
            pos = _skip_invisible(text, name, pos)
            out.append(" ")
        elif name in _BLOCK:
            out.append(block)
    return _unescape("".join(out))


def html_to_text(text: str | None, limit: int | None = None) -> str:
    """Plain, one-line text from an HTML fragment (or from text that merely has entities).

    With `limit`, the raw text is cut before any work (at `limit` × 20 characters: markup makes
    text longer, never shorter by more than that in practice) and the result is at most `limit`
    characters, ending in "…" when cut.
    """
    if not text:
        return ""
    if limit is not None:
        text = text[: max(limit, 1) * _RAW_PER_CHAR]
    if "<" in text or "&" in text:
        fast = _strip_markup_fast(text, " ")  # _strip_markup, one call fewer on the hot path
        text = fast if fast is not None else _strip_markup_scan(text, " ")
    flat = collapse(text)
    return flat if limit is None or len(flat) <= limit else truncate(flat, limit)


def html_to_lines(text: str) -> list[str]:
    """Plain text split at block elements, one normalised line each, empty lines dropped."""
    lines = (collapse(line) for line in _strip_markup(text, "\n").splitlines())
    return [line for line in lines if line]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
