"""What every command shares and what needs no typer: the settings and database a command opens
(once each), the sources path, JSON output. `tracker refresh` runs on these alone (see
`tracker.cli.refresh`), so cron's command loads neither typer nor click."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tracker.errors import TrackerError

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store import Database


class State:
    """What the root callback learned (`--db`) and what commands open from it, once each."""

    def __init__(self) -> None:
        self.db_arg: str | None = None
        self._settings: Settings | None = None
        self._db: Database | None = None

    def reset(self, db_arg: str | None) -> None:
        self.db_arg = db_arg
        self._settings = None
        self._db = None

    @property
    def settings(self) -> Settings:
        """The environment, read once per command; `--db` wins over TRACKER_DB."""
        if self._settings is None:
            from tracker.settings import Settings

            self._settings = Settings.from_env().with_db(self.db_arg)
        return self._settings

    def db(self) -> Database:
        if self._db is None:
            from tracker.register import first_use_line, open_store

            self._db = open_store(self.settings)
            line = first_use_line(self._db, self.settings)
            if line:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        return self._db

    def close(self) -> None:
        """Close the database this command opened. On SQLite the last connection to close
        checkpoints the write-ahead log into the file and removes it: a copy of
        `commitments.db` alone is then the whole database, not a 4 KB shell of it."""
        if self._db is not None:
            self._db.dispose()
            self._db = None


STATE = State()


def sources_path(given: Path | None) -> Path | None:
    """`--sources`, else TRACKER_SOURCES, else None (the built-in list)."""
    if given is not None:
        return given
    chosen = STATE.settings.sources
    return Path(chosen) if chosen else None


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    # An argument or a server's text quoted in the message must not drive the terminal.
    from tracker.outputs.escape import terminal

    sys.stderr.write(f"error: {terminal(message)}\n")
    raise SystemExit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every error a user can cause (and every database or OS error) ends as one line and an
    exit code, never a traceback."""
    try:
        yield
    except TrackerError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        # `tracker export | head` closed the pipe: not an error worth a message.
        sys.stderr.close()
        raise SystemExit(0) from None
    except Exception as exc:  # database and OS errors: one line, never a traceback
        fail(_describe(exc), 1)


def _describe(exc: Exception) -> str:
    from tracker.store import describe_error, is_database_error, is_environment_error, redact

    where = redact(STATE.db_arg or "database")
    if is_environment_error(exc):
        return describe_error(exc, where)
    if is_database_error(exc):
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
        return f"database error: {redact(lines[0])}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
