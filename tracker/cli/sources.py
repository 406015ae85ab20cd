"""`tracker refresh` and `tracker sources`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tracker.cli.common import STATE, SourcesOption, app, print_json, sources_path

if TYPE_CHECKING:
    from scrapers import Outcome


@app.command()
def refresh(
    sources: SourcesOption = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Fetch only the source with this name.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Fetch sources that are not due yet.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print nothing unless something failed (for cron)."),
    ] = False,
    notify: Annotated[
        bool, typer.Option("--notify", help="Email alerts for status changes and failing sources.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON (sources, counts, skipped items).")
    ] = False,
) -> None:
    """Fetch every due source, store new evidence for review, update statuses.

    Exit 0 when all sources succeeded (or were unchanged, disabled or not due), 1 when any failed.

    Example: tracker refresh --quiet
    """
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
        from rich.progress import Progress, TaskID

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
    for line in [] if as_json else after.lines:
        typer.echo(line)
    if after.exit_code:
        raise SystemExit(after.exit_code)


@app.command("sources")
def sources_cmd(
    sources: SourcesOption = None,
    kinds: Annotated[
        bool, typer.Option("--kinds", help="Describe the source kinds and their options.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The configured sources and their health (last success, failures, last error).

    Example: tracker sources --json
    """
    if kinds:
        from tracker.outputs.terminal import kinds_help
        from tracker.sources import kinds as declared

        typer.echo(kinds_help(declared()), nl=False)
        return
    from tracker import register
    from tracker.sources import load_sources

    spec = load_sources(sources_path(sources))  # checked before the database is opened
    spec = register.checked_sources(STATE.db(), spec)
    rows = register.source_rows(STATE.db(), spec)
    if as_json:
        print_json({"file": spec.origin, "sources": rows})
        return
    from tracker.outputs.terminal import console, sources_table

    console().print(sources_table(spec.origin, rows))
