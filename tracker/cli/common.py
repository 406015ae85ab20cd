"""The typer app, its command groups, option bundles and small printing helpers (what needs no
typer is in `tracker.cli.shared`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracker.cli.shared import STATE, print_json, sources_path

if TYPE_CHECKING:
    from tracker.store import Change

__all__ = ["STATE", "app", "print_json", "sources_path"]

app = typer.Typer(
    help="Track whether commitments between governments are kept.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
evidence_app = typer.Typer(help="Record evidence by hand.", no_args_is_help=True)
review_app = typer.Typer()
catalog_app = typer.Typer(
    help="Load agreements and commitments from a catalog file.", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
report_app = typer.Typer(
    help="Reports: the weekly Markdown report, written to a file and optionally mailed.",
    no_args_is_help=True,
)
app.add_typer(evidence_app, name="evidence")
app.add_typer(review_app, name="review")
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")
app.add_typer(report_app, name="report")


SourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--sources", help="Sources file (default: $TRACKER_SOURCES or the built-in list)."
    ),
]
QuietDaysOption = Annotated[
    int,
    typer.Option(
        "--quiet-days", min=1, help="A commitment with no evidence for this many days 'went quiet'."
    ),
]


def echo_changes(changes: Sequence[Change]) -> None:
    for ch in changes:
        typer.echo(f"{ch.slug}: {ch.old or '—'} → {ch.new}")
