"""The command line: the only package that imports typer. It parses arguments, calls the library
(`tracker.register`, `refresh`, `reporting`, …), prints what comes back, and turns every error a
user can cause into one line and an exit code.

Importing this package loads nothing heavy: `main` hands a plain `tracker refresh` (what cron runs)
to `tracker.cli.refresh` without loading typer, and everything else to the typer app in
`tracker.cli.root`. Heavy modules are imported inside commands, so that `tracker --help` starts
quickly.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["app", "entry", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: every error a user can cause ends as one line and an exit code, no traceback."""
    from tracker.cli import refresh
    from tracker.cli.shared import STATE, user_errors

    args = list(sys.argv[1:] if argv is None else argv)
    plain = refresh.parse(args)
    if plain is None:
        from tracker.cli.root import run_typer

        run_typer(args)
        return
    db, params = plain
    STATE.reset(db)
    with user_errors():
        refresh.run(**params)


def entry() -> NoReturn:
    """The console script (and `python -m tracker`): `main`, then a fast exit.

    A command loads SQLAlchemy, pydantic and rich: about a million objects that live until the
    process ends. The cyclic collector finds no garbage among them but walks them again and again
    while they load, and interpreter shutdown frees them one by one: together about 0.15 s of a
    0.45 s command. So the collector is off while a command runs (`daemon` turns it back on) and
    the process ends with `os._exit` once its database is closed (on SQLite the last close folds
    the write-ahead log into the file) and its output is flushed. Tests call `main`.
    """
    import gc
    import os

    gc.disable()
    code = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    from tracker.cli.shared import STATE

    # The command's outcome is decided: a close that fails changes nothing (the log stays
    # beside the file, and the next command reads it).
    with contextlib.suppress(Exception):
        STATE.close()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed by a reader gone away (`| head`)
            stream.flush()
    os._exit(code)


def __getattr__(name: str) -> Any:
    # The typer app is built on first use: `from tracker.cli import app` still works.
    if name == "app":
        from tracker.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
