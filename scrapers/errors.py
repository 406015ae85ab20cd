"""The one exception type that travels inside `scrapers/`; `collect` turns it into an Outcome."""

from __future__ import annotations

import re

__all__ = ["SourceError", "one_line"]

_MAX_REASON_CHARS = 300
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    """Collapse whitespace so a reason always fits on one line of a status table; drop control
    characters (a server's error text may carry terminal escapes)."""
    flat = " ".join(_CONTROLS.sub(" ", text).split())
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
