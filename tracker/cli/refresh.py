"""`tracker refresh` without typer: the command cron runs every few minutes.

Loading typer (and the click it carries) and building the command tree is about a fifth of the
start-up of `tracker refresh --quiet`, and a refresh needs none of it. So `tracker.cli.main`
first offers the arguments to `parse`, which knows exactly one shape:

    [--db URL] refresh [--sources PATH] [--only NAME] [--force] [--quiet|-q] [--notify] [--json]

with each option at most once, values given as `--opt VALUE` or `--opt=VALUE`. Anything else
(`--help`, an unknown or repeated option, a missing, empty or dash-led value, another command)
returns None, and typer parses it as before, so every usage error keeps typer's message. Both
ways end in `run`; `tests/test_cli_refresh_fast.py` checks that `parse` gives what typer gives
for the same arguments, and that the two know the same options.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.cli.shared import STATE, print_json, sources_path

if TYPE_CHECKING:
    from rich.progress import TaskID

    from scrapers import Outcome

# option → parameter name; flags take no value
VALUED = {"--sources": "sources", "--only": "only"}
FLAGS = {
    "--force": "force",
    "--quiet": "quiet",
    "-q": "quiet",
    "--notify": "notify",
    "--json": "as_json",
}
DEFAULTS: dict[str, Any] = {
    "sources": None,
    "only": None,
    "force": False,
    "quiet": False,
    "notify": False,
    "as_json": False,
}


def _value(args: list[str], i: int, option: str) -> tuple[str, int] | None:
    """The value of the option at `args[i]` and the index after it, or None when it is not a
    plain value (typer then says what is wrong)."""
    _, eq, inline = option.partition("=")
    if eq:
        value, nxt = inline, i + 1
    elif i + 1 < len(args):
        value, nxt = args[i + 1], i + 2
    else:
        return None
    if not value or value.startswith("-"):
        return None
    return value, nxt


def parse(args: list[str]) -> tuple[str | None, dict[str, Any]] | None:
    """(`--db`, the refresh command's parameters) when `args` is a plain `tracker refresh`,
    else None."""
    db: str | None = None
    i = 0
    if args[:1] == ["--db"] or (args and args[0].startswith("--db=")):
        got = _value(args, 0, args[0])
        if got is None:
            return None
        db, i = got
    if args[i : i + 1] != ["refresh"]:
        return None
    i += 1
    params = dict(DEFAULTS)
    seen: set[str] = set()
    while i < len(args):
        option = args[i]
        name = option.partition("=")[0]
        if name in seen:
            return None
        if name in VALUED:
            got = _value(args, i, option)
            if got is None:
                return None
            value, i = got
            params[VALUED[name]] = Path(value) if name == "--sources" else value
        elif option in FLAGS:
            params[FLAGS[option]] = True
            i += 1
        else:
            return None
        seen.add(name)
    return db, params


def run(
    sources: Path | None,
    only: str | None,
    force: bool,
    quiet: bool,
    notify: bool,
    as_json: bool,
) -> None:
    """Fetch every due source, store new evidence for review, update statuses; print what
    `tracker refresh` prints and exit 1 when any source failed."""
    from scrapers.serve import launch_early

    # Nearly every run parses something: the parser processes' server starts up on the other
    # core while this process imports, reads its sources and opens the database (~0.1 s).
    launch_early()
    from tracker import refresh as refresher
    from tracker import register
    from tracker.followup import Followup
    from tracker.sources import load_sources

    spec = load_sources(sources_path(sources))  # checked before the database is opened
    if only is not None:
        spec.get(only)
    settings = STATE.settings
    db = STATE.db()
    spec = register.checked_sources(db, spec)
    progress = None
    if not quiet and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
    task: list[TaskID] = []

    def on_start(n: int) -> None:
        if progress is not None:
            progress.start()
            task.append(progress.add_task("fetching", total=n))

    def on_outcome(outcome: Outcome) -> None:
        if progress is not None and task:
            progress.advance(task[0])

    followup = Followup(db, settings, notify=notify, quiet=quiet or as_json)
    try:
        report = refresher.refresh(
            db,
            spec,
            settings,
            today=settings.today(),
            only=only,
            force=force,
            on_start=on_start,
            on_outcome=on_outcome,
            while_locked=followup.while_locked,  # alerts go out before the lock is released
        )
    finally:
        if progress is not None:
            progress.stop()
    after = followup.after(report)
    if as_json:
        print_json({**report.data(), "alerts": after.alerts})
    else:
        sys.stdout.writelines(line + "\n" for line in after.lines)
    if after.exit_code:
        raise SystemExit(after.exit_code)
