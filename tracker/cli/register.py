"""Commands that read and change the register: status, show, evidence add, set-status, export,
catalog load."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tracker.cli.common import STATE, app, catalog_app, echo_changes, evidence_app, print_json
from tracker.errors import UsageError
from tracker.outputs.escape import terminal


@app.command()
def status(
    only_status: Annotated[
        str | None, typer.Option("--status", help="Only commitments with this status.")
    ] = None,
    agreement: Annotated[
        str | None, typer.Option("--agreement", help="Only this agreement's commitments.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the same as JSON.")] = False,
) -> None:
    """Where every commitment stands.

    Example: tracker status --status stalled
    """
    from tracker import register
    from tracker.vocab import parse_status

    if only_status is not None:
        parse_status(only_status)
    today = STATE.settings.today()
    rows, total_pending = register.status_rows(
        STATE.db(), today, agreement=agreement, status=only_status
    )
    if as_json:
        from tracker.outputs.export import status_data

        print_json(status_data(rows, today, total_pending))
        return
    from tracker.outputs.terminal import console, status_table

    out = console()
    if not rows:
        out.print("no commitments match")
        return
    out.print(status_table(rows, today, total_pending))


@app.command()
def show(
    slug: Annotated[str, typer.Argument(help="The commitment's slug, e.g. khodaafarin-crossing.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many evidence items (newest).")
    ] = 100,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline", help="Instead: evidence per month as a bar line, milestones marked."
        ),
    ] = False,
) -> None:
    """The whole card of one commitment: quote, milestones, status and why, history, evidence.

    Example: tracker show tabriz-baku-flight
    Example: tracker show tabriz-baku-flight --timeline
    """
    from tracker import register
    from tracker.outputs.terminal import card, console

    today = STATE.settings.today()
    if timeline:
        from tracker.outputs.timeline import timeline as draw

        out = console()
        found = register.timeline(STATE.db(), today, slug)
        out.print(draw(found.row, found.points, today, min(out.width, 160)))
        return
    console().print(card(register.card(STATE.db(), today, slug, limit), today))


@evidence_app.command("add")
def evidence_add(
    slug: Annotated[str, typer.Argument(help="The commitment's slug.")],
    url: Annotated[str, typer.Option("--url", help="Where the evidence can be read.")],
    title: Annotated[str, typer.Option("--title", help="A title or headline.")],
    on: Annotated[
        str, typer.Option("--date", help="Date of the event or publication, YYYY-MM-DD.")
    ],
    stance: Annotated[
        str, typer.Option("--stance", help="progress, setback or neutral.")
    ] = "progress",
    milestone: Annotated[
        int | None, typer.Option("--milestone", help="Milestone number it reaches (1-based).")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Free text kept with the evidence.")
    ] = None,
    cancellation: Annotated[
        bool,
        typer.Option(
            "--cancellation", help="It confirms the commitment was cancelled (status: broken)."
        ),
    ] = False,
) -> None:
    """Add evidence by hand; it counts as confirmed.

    Example: tracker evidence add tabriz-baku-flight --url https://example.org/a --title "First flight" --date 2025-07-29 --milestone 4
    """
    from tracker import register
    from tracker.dates import parse_date

    when = parse_date(on, "--date")
    evidence_id, changes = register.add_evidence(
        STATE.db(),
        STATE.settings,
        slug,
        url=url,
        title=title,
        on=when,
        stance=stance,
        milestone=milestone,
        note=note,
        cancels=cancellation,
    )
    typer.echo(f"added evidence #{evidence_id} to {slug}")
    echo_changes(changes)


@app.command("set-status")
def set_status(
    slug: Annotated[str, typer.Argument(help="The commitment's slug.")],
    new_status: Annotated[
        str | None,
        typer.Argument(
            help="announced, in_progress, stalled, partially_delivered, delivered or broken."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required when setting).")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the override; the engine decides again.")
    ] = False,
) -> None:
    """Override a commitment's status with a reason, or --clear the override.

    Example: tracker set-status tractor-dealership broken --reason "ITMCO said it has no plans"
    """
    from tracker import register

    if clear == (new_status is not None):
        raise UsageError("give either a STATUS with --reason, or --clear")
    db = STATE.db()
    if clear and not register.has_override(db, slug):
        typer.echo(f"{slug} has no override to clear; its status stays as computed")
        return
    before, after = register.set_status(db, STATE.settings, slug, new_status, reason=reason)
    typer.echo(f"{slug}: {before} → {after}" + (" (override cleared)" if clear else " (override)"))


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Everything as data: agreements, commitments, statuses, history and evidence.

    Example: tracker export --format json -o tracker.json
    """
    from tracker import register

    if fmt not in ("json", "csv"):
        raise UsageError(f"--format must be json or csv, got {fmt!r}")
    today = STATE.settings.today()
    db = STATE.db()
    text = register.export_json(db, today) if fmt == "json" else register.export_csv(db, today)
    if output is None:
        if sys.stdout.isatty():
            from tracker.outputs.escape import terminal_block

            text = terminal_block(text)  # a title must not drive the terminal it is shown on
        sys.stdout.write(text)
        return
    from tracker.outputs.files import write_atomic

    write_atomic(output, text.encode("utf-8"))
    typer.echo(f"wrote {terminal(str(output))}", err=True)


@catalog_app.command("load")
def catalog_load(file: Annotated[Path, typer.Argument(help="A catalog TOML file.")]) -> None:
    """Add or update agreements from a catalog file. Idempotent; never deletes evidence.

    Example: tracker catalog load their-catalog.toml
    """
    from tracker import catalog, register

    catalog.read_catalog(file, STATE.settings.real_today())  # checked before the database is opened
    result = register.load_catalog(STATE.db(), STATE.settings, file)
    typer.echo(
        f"loaded {terminal(str(file))}: {result.agreements} agreement(s), "
        f"{result.commitments_added} commitment(s) added, "
        f"{result.commitments_updated} updated, {result.evidence_added} curated evidence added"
    )
