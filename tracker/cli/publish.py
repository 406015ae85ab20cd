"""`tracker publish`: the register as a static web site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker.cli.common import STATE, SourcesOption, app, sources_path


@app.command("publish")
def publish(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for the site: new, empty, or made by an earlier publish."
        ),
    ],
    include_pending: Annotated[
        bool,
        typer.Option(
            "--include-pending",
            help="Also list evidence waiting for review, marked as such (default: confirmed only).",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Print nothing unless something goes wrong (cron).")
    ] = False,
    sources: SourcesOption = None,
) -> None:
    """Write the register as a static web site: index.html, a page per commitment, feed.xml (Atom),
    data.json (the export) and weeks/ (the weekly reports).

    No server and no JavaScript needed; every link is relative, so the folder works opened from
    disk and on any static host. Rebuilding rewrites only files whose content changed, and removes
    only pages that an earlier publish wrote and that no longer exist. A non-empty folder that
    tracker publish did not make is refused.

    Example: tracker publish --out site --include-pending
    """
    from msgspec.structs import replace

    from tracker.publish import check_folder
    from tracker.publish import publish as build

    check_folder(out)  # before the database is opened (or created): a refusal changes nothing
    settings = STATE.settings
    chosen = sources_path(sources)
    if chosen is not None:
        settings = replace(settings, sources=str(chosen))
    result = build(STATE.db(), settings, out, include_pending=include_pending)
    if not quiet:
        typer.echo(result.summary)
        typer.echo(f"open {result.index}")
