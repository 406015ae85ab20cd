"""The one exception type that travels inside `scrapers/`; `collect` turns it into an Outcome.

Also the two helpers that make any text fit to show: `one_line` and `redact_url`.
"""

from __future__ import annotations

import re

__all__ = ["SourceError", "one_line", "redact_url"]

_MAX_REASON_CHARS = 300
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Query parameters whose value is a credential (searched in the lower-cased name).
_SECRET_PARAM = re.compile(
    r"pass(?:word|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|signature|credential"
)
_SECRET_PARAM_NAMES = frozenset({"key", "sig", "auth"})
# Where a URL ends inside running text.
_URL_END = re.compile(r"[\s\"'<>`]")
_AUTHORITY_END = re.compile(r"[/?#\s\"'<>`]")
_HIDDEN = "***"


def _redact_query(query: str) -> str:
    parts = query.split("&")
    for n, part in enumerate(parts):
        name, equals, value = part.partition("=")
        lowered = name.lower()
        if equals and value and (lowered in _SECRET_PARAM_NAMES or _SECRET_PARAM.search(lowered)):
            parts[n] = f"{name}={_HIDDEN}"
    return "&".join(parts)


def _redact_from_authority(rest: str) -> str:
    """`rest` is what follows `scheme://` in a URL; return it with its secrets hidden."""
    end = _AUTHORITY_END.search(rest)
    cut = end.start() if end else len(rest)
    authority, tail = rest[:cut], rest[cut:]
    at = authority.rfind("@")
    if at >= 0:  # user information may itself hold an '@' (u@srv:pass@host): keep the last
        authority = f"{_HIDDEN}@{authority[at + 1 :]}"
    if "?" in tail:
        path, _, query = tail.partition("?")
        query, hash_, fragment = query.partition("#")
        tail = f"{path}?{_redact_query(query)}{hash_}{fragment}"
    return authority + tail


def redact_url(url: str) -> str:
    """`url` as it may be shown: user information (`user:pass@`) and the values of query
    parameters named like credentials (`token=`, `api_key=`, `password=`...) become `***`.

    Never raises, whatever the input; a string without `://` is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    return scheme + sep + _redact_from_authority(rest) if sep else url


def _redact_urls(text: str) -> str:
    """Every URL inside running text redacted, in one left-to-right pass (linear time)."""
    if "://" not in text:
        return text
    out: list[str] = []
    done = 0
    start = text.find("://")
    while start >= 0:
        begin = start + 3
        end = _URL_END.search(text, begin)
        stop = end.start() if end else len(text)
        out.append(text[done:begin])
        out.append(_redact_from_authority(text[begin:stop]))
        done = stop
        start = text.find("://", stop)
    out.append(text[done:])
    return "".join(out)


def one_line(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    """Collapse whitespace so a reason always fits on one line of a status table; drop control
    characters (a server's error text may carry terminal escapes); hide the credentials of any
    URL in it (before cutting, so that a cut cannot leave half a password showing)."""
    flat = _redact_urls(" ".join(_CONTROLS.sub(" ", text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class SourceError(Exception):
    """A source misbehaved; `reason` is shown to the user as is."""

    def __init__(
        self,
        reason: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = one_line(reason)
        self.http_status = http_status
        self.retry_after = retry_after
