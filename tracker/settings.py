"""One settings object, read from the environment once and passed down.

Nothing else in `tracker` reads `os.environ`: the CLI (or a test, or the daemon) builds `Settings`
at start and hands it to the functions it calls. A bad value is a one-line usage error naming the
variable, raised when the settings are read, so a typo never silently becomes a default.

Mail settings are kept raw here (`env`) and checked by `tracker.mail` when mail is actually sent:
a broken TRACKER_SMTP_PORT must not stop `tracker status`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from tracker.errors import UsageError

if TYPE_CHECKING:
    from scrapers import HttpSettings

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "DEFAULT_LOCK_WAIT", "Settings"]

DEFAULT_BUSY_TIMEOUT_MS = 15_000
DEFAULT_LOCK_WAIT = 10.0
_TRUE = ("1", "true", "yes", "on")


def _flag(raw: str | None) -> bool:
    return (raw or "").strip().lower() in _TRUE


def _busy_timeout(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_BUSY_TIMEOUT_MS
    try:
        return max(0, int(raw))
    except ValueError:
        raise UsageError(f"TRACKER_BUSY_TIMEOUT_MS must be an integer, got {raw!r}") from None


def _lock_wait(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_LOCK_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"TRACKER_LOCK_WAIT must be a number of seconds ≥ 0, got {raw!r}")
    return value


def _zone(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    from tracker.weeks import week_zone

    week_zone(raw)  # a bad name is a usage error now, not at the report
    return raw.strip()


def _replay_day(raw: str | None) -> date | None:
    if not raw:
        return None
    from tracker.dates import parse_date

    return parse_date(raw, "TRACKER_TODAY")


class Settings(msgspec.Struct, frozen=True):
    """Everything the environment may configure (README "Files and settings")."""

    db: str | None = None  # TRACKER_DB: a path or a SQLAlchemy URL
    user: str | None = None  # TRACKER_USER: who acts (reviews, overrides, history)
    replay_day: date | None = None  # TRACKER_TODAY: compute as of that day
    catalog: str | None = None  # TRACKER_CATALOG: what a new database is seeded from
    sources: str | None = None  # TRACKER_SOURCES: the sources file
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS  # TRACKER_BUSY_TIMEOUT_MS
    lock_wait: float = DEFAULT_LOCK_WAIT  # TRACKER_LOCK_WAIT: seconds a refresh waits
    notify: bool = False  # TRACKER_NOTIFY: alert mail after refreshes
    week_zone: str | None = None  # TRACKER_WEEK_ZONE: where "the last complete week" is judged
    http: Mapping[str, str] = msgspec.field(default_factory=dict)  # TRACKER_HTTP_<FIELD> overrides
    env: Mapping[str, str] = msgspec.field(default_factory=dict)  # raw snapshot: mail, cron lines

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        if "TRACKER_DB" in env and not env["TRACKER_DB"].strip():
            raise UsageError("TRACKER_DB is set but empty; unset it or name a database")
        return cls(
            db=env.get("TRACKER_DB") or None,
            user=env.get("TRACKER_USER") or None,
            replay_day=_replay_day(env.get("TRACKER_TODAY")),
            catalog=env.get("TRACKER_CATALOG") or None,
            sources=env.get("TRACKER_SOURCES") or None,
            busy_timeout_ms=_busy_timeout(env.get("TRACKER_BUSY_TIMEOUT_MS")),
            lock_wait=_lock_wait(env.get("TRACKER_LOCK_WAIT")),
            notify=_flag(env.get("TRACKER_NOTIFY")),
            week_zone=_zone(env.get("TRACKER_WEEK_ZONE")),
            http={
                key.removeprefix("TRACKER_HTTP_").lower(): value
                for key, value in env.items()
                if key.startswith("TRACKER_HTTP_")
            },
            env=env,
        )

    def with_db(self, db: str | None) -> Settings:
        """The same settings with `--db` (when given) taking the place of TRACKER_DB."""
        if db is not None and not db.strip():
            raise UsageError("--db must name a database file or URL, got an empty string")
        return msgspec.structs.replace(self, db=db) if db is not None else self

    def today(self) -> date:
        """Today in UTC, or the replayed day."""
        return self.replay_day or datetime.now(UTC).date()

    @staticmethod
    def real_today() -> date:
        """Today in UTC whatever is replayed: what "in the future" means for recorded facts."""
        return datetime.now(UTC).date()

    def actor(self) -> str:
        """Who is acting: TRACKER_USER, else the login name."""
        if self.user:
            return self.user
        import getpass

        try:
            return getpass.getuser()
        except Exception:  # no login name in some containers
            return "unknown"

    def http_settings(self) -> HttpSettings:
        """The scrapers' limits with TRACKER_HTTP_<FIELD> overrides (tests use short timeouts)."""
        from scrapers import HttpSettings

        known = set(HttpSettings.__struct_fields__)
        defaults = HttpSettings()
        overrides: dict[str, Any] = {}
        for name, raw in self.http.items():
            if name not in known:
                continue
            default = getattr(defaults, name)
            try:
                overrides[name] = raw if isinstance(default, str) else type(default)(raw)
            except ValueError:
                raise UsageError(
                    f"TRACKER_HTTP_{name.upper()} must be a number, got {raw!r}"
                ) from None
        try:
            return HttpSettings(**overrides)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"HTTP settings: {exc}") from exc
