"""`tracker db copy`."""

from __future__ import annotations

from typing import Annotated

import typer

from tracker.cli.common import STATE, db_app


@db_app.command("copy")
def db_copy(
    to: Annotated[str, typer.Option("--to", help="Target database: a path or a SQLAlchemy URL.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a target that already holds data.")
    ] = False,
) -> None:
    """Copy the whole database (agreements, commitments, evidence, history, source health) to another.

    Works both ways between SQLite and PostgreSQL; counts are verified; a non-empty target is refused
    unless --replace is given.

    Example: tracker db copy --to postgresql+psycopg://tracker@db.example.org/tracker
    """
    from tracker.store import redact
    from tracker.store.copy import copy_database

    result = copy_database(
        STATE.db(), to, replace=replace, busy_timeout_ms=STATE.settings.busy_timeout_ms
    )
    total = sum(result.counts.values())
    detail = ", ".join(f"{n} {t}" for t, n in result.counts.items() if n)
    typer.echo(f"copied {total} rows to {redact(to)} ({detail}); counts verified")
