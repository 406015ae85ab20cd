"""Making untrusted text (titles, summaries, notes from the web) safe to store and to show."""

from __future__ import annotations

import re

# Embeddings, overrides and isolates can reorder what follows them on screen and so make one row
# look like another. LRM/RLM/ALM (marks) stay: Persian text uses them and they cannot spoof.
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_INVISIBLE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI_CONTROLS}]")
_LINEBREAKS = re.compile(r"[\r\n\u2028\u2029\x85]+")
_SPACES = re.compile(r"[ \t]+")


# C0 controls but tab, line feed and carriage return, DEL, and the C1 controls (0x80-0x9f): no
# text means them, and a terminal obeys some (0x9b starts an escape sequence like ESC [).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_stored(text: str, limit: int = 5000) -> str:
    """What we store: valid Unicode, no control characters (but tab and line breaks), bounded
    length; everything else kept as it came (bidi marks too: Persian text uses them)."""
    if len(text) > 4 * limit:
        text = text[: 4 * limit]  # bound the work before any pass over the text
    text = _CONTROLS.sub("", text)
    # Lone surrogates come from badly decoded input and cannot be encoded to UTF-8 on output.
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def one_line(text: str) -> str:
    """A single display line: line breaks become spaces, runs of spaces collapse."""
    return _SPACES.sub(" ", _LINEBREAKS.sub(" ", text)).strip()


def visible(text: str) -> str:
    """Control and bidi-override characters shown as escapes, so the display cannot be spoofed."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
