"""The typer app, its command groups, and what every command shares: the settings, the database,
option bundles and small printing helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tracker.settings import Settings
    from tracker.store import Change, Database

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
                typer.echo(line, err=True)
        return self._db


STATE = State()

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


def sources_path(given: Path | None) -> Path | None:
    """`--sources`, else TRACKER_SOURCES, else None (the built-in list)."""
    if given is not None:
        return given
    chosen = STATE.settings.sources
    return Path(chosen) if chosen else None


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def echo_changes(changes: Sequence[Change]) -> None:
    for ch in changes:
        typer.echo(f"{ch.slug}: {ch.old or '—'} → {ch.new}")
