"""Typed access to a source's `options` table, with one-line errors naming the option."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._raw.get(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SourceError(f"option '{name}' must be a number, got {value!r}") from None
        if isinstance(value, bool) or not math.isfinite(number) or number < minimum:
            raise SourceError(f"option '{name}' must be a number ≥ {minimum:g}, got {value!r}")
        return number

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
