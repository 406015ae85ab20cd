"""`tracker refresh` and `tracker sources`."""

from __future__ import annotations

from typing import Annotated

import typer

from tracker.cli.common import STATE, SourcesOption, app, print_json, sources_path


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
    from tracker.cli.refresh import run

    run(sources, only, force, quiet, notify, as_json)


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
