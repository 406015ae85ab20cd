"""Typed access to a source's `options` table, with one-line errors naming the option."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from scrapers.errors import SourceError

__all__ = ["Options"]


class Options:
    """Reads `SourceSpec.options`; a wrong type raises SourceError, so the source fails alone."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw

    def raw(self, name: str) -> Any:
        return self._raw.get(name)

    def text(self, name: str, default: str) -> str:
        value = self.optional_text(name)
        return default if value is None else value

    def optional_text(self, name: str) -> str | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise SourceError(f"option '{name}' must be text, got {value!r}")
        return value.strip() or None

    def required_text(self, name: str, kind: str) -> str:
        value = self.optional_text(name)
        if value is None:
            raise SourceError(f"option '{name}' is required for kind {kind}")
        return value

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float = math.inf
    ) -> float:
        value = self._raw.get(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SourceError(f"option '{name}' must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number) or number < minimum:
            raise SourceError(f"option '{name}' must be a number ≥ {minimum:g}, got {value!r}")
        if number > maximum:
            raise SourceError(f"option '{name}' must be at most {maximum:g}, got {value!r}")
        return number

    def url(self, name: str, default: str) -> str:
        """An http(s) address (an API endpoint the kind talks to)."""
        value = self.text(name, default)
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise SourceError(f"option '{name}' must be an http(s) URL, got {value!r}")
        return value

    def matching(self, name: str, default: str, pattern: str, what: str) -> str:
        """Text that must match `pattern` whole; `what` says what is expected."""
        value = self.text(name, default)
        if len(value) > 200 or not re.fullmatch(pattern, value):
            raise SourceError(f"option '{name}' must be {what}, got {value!r}")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.optional_integer(name)
        value = default if value is None else value
        if not minimum <= value <= maximum:
            raise SourceError(
                f"option '{name}' must be between {minimum} and {maximum}, got {value}"
            )
        return value

    def optional_integer(self, name: str) -> int | None:
        value = self._raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            raise SourceError(f"option '{name}' must be a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise SourceError(f"option '{name}' must be a whole number, got {value!r}")

    def optional_positive(self, name: str) -> int | None:
        """A whole number ≥ 1, or None when not given (e.g. a milestone number)."""
        value = self.optional_integer(name)
        if value is not None and value < 1:
            raise SourceError(f"option '{name}' must be a whole number ≥ 1, got {value}")
        return value

    def words(self, name: str) -> list[str]:
        """A list option, also accepted as one comma-separated string."""
        value = self._raw.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value if v.strip()]
        raise SourceError(f"option '{name}' must be text or a list of text, got {value!r}")
