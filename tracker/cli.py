"""The command line: parses arguments, calls the library, prints. No logic a test would need.

Heavy modules (SQLAlchemy, rich tables) are imported inside commands so that `tracker --help`
starts quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from tracker.errors import TrackerError, UsageError

if TYPE_CHECKING:
    from tracker.db import Database

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
app.add_typer(evidence_app, name="evidence")
app.add_typer(review_app, name="review")
app.add_typer(catalog_app, name="catalog")
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


class State:
    db_arg: str | None = None
    _db: Database | None = None

    def db(self) -> Database:
        if self._db is None:
            from tracker.store import open_store

            self._db = open_store(self.db_arg)
        return self._db


STATE = State()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database path or SQLAlchemy URL (default: $TRACKER_DB or ./commitments.db).",
        ),
    ] = None,
) -> None:
    STATE.db_arg = db
    STATE._db = None
    if ctx.invoked_subcommand is None:
        ctx.invoke(status)


def _today():  # type: ignore[no-untyped-def]
    from tracker.dates import today

    return today()


def _print_json(data: object) -> None:
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


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
    from tracker import readmodel
    from tracker.sqlitefile import fast_reader
    from tracker.status import STATUSES

    if only_status is not None and only_status not in STATUSES:
        from tracker import store

        store.check_status_name(only_status)
    today = _today()
    # An existing SQLite database is read directly: no SQLAlchemy import, a fast start.
    with fast_reader(STATE.db_arg) as conn:
        if conn is not None:
            reader = readmodel.Reader.sqlite(conn)
            if agreement is not None:
                from tracker.store import check_agreement

                check_agreement(readmodel.agreement_slugs(reader), agreement)
            rows = readmodel.rows(reader, today, agreement=agreement, status=only_status)
            total_pending = readmodel.pending_count(reader)
    if conn is None:
        from tracker import store

        with STATE.db().read() as session:
            rows = store.rows(session, today, agreement=agreement, status=only_status)
            total_pending = store.count_pending(session)
    if as_json:
        _print_json(readmodel.status_data(rows, today, total_pending))
        return
    from tracker.views import console, status_table

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
) -> None:
    """The whole card of one commitment: quote, milestones, status and why, history, evidence.

    Example: tracker show tabriz-baku-flight
    """
    from tracker import store
    from tracker.views import card, console

    today = _today()
    with STATE.db().read() as session:
        commitment = store.find_commitment(session, slug)
        row = store.rows(session, today, slugs=[slug])[0]
        hist = store.history(session, commitment.id)  # type: ignore[arg-type]
        evidence = store.evidence_of(session, commitment.id, limit)  # type: ignore[arg-type]
        total = (
            store.count_evidence(session, commitment.id)
            if len(evidence) == limit
            else len(evidence)
        )  # type: ignore[arg-type]
    reached = {p: r.on for p, r in row.digest.reached.items()}
    console().print(card(row, today, hist, evidence, reached, total))


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
    from tracker import store
    from tracker.dates import parse_date

    when = parse_date(on, "--date")
    today = _today()
    with STATE.db().write() as session:
        row, changes = store.add_evidence(
            session,
            slug,
            url=url,
            title=title,
            on=when,
            stance=stance,
            milestone=milestone,
            note=note,
            cancels=cancellation,
            today=today,
        )
        evidence_id = row.id
    typer.echo(f"added evidence #{evidence_id} to {slug}")
    _echo_changes(changes)


def _echo_changes(changes: list) -> None:  # type: ignore[type-arg]
    for ch in changes:
        typer.echo(f"{ch.slug}: {ch.old or '—'} → {ch.new}")


@review_app.callback(invoke_without_command=True)
def review_list(
    ctx: typer.Context,
    slug: Annotated[str | None, typer.Option("--commitment", help="Only this commitment.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
) -> None:
    """List evidence waiting for review, newest first; then confirm or reject it.

    Example: tracker review --commitment khodaafarin-crossing
    """
    if ctx.invoked_subcommand is not None:
        return
    from tracker import store
    from tracker.views import console, pending_table

    with STATE.db().read() as session:
        items = store.pending(session, slug, limit=limit)
        total = store.count_pending(session, slug) if len(items) == limit else len(items)
    if not items:
        typer.echo("nothing waiting for review")
        return
    console().print(pending_table(items, total))


@review_app.command("confirm")
def review_confirm(
    evidence_id: Annotated[int, typer.Argument(help="Evidence id (see 'tracker review').")],
    milestone: Annotated[
        int | None, typer.Option("--milestone", help="Milestone it reaches.")
    ] = None,
    stance: Annotated[
        str | None, typer.Option("--stance", help="progress, setback or neutral.")
    ] = None,
) -> None:
    """Confirm evidence: it now counts for the status.

    Example: tracker review confirm 42 --milestone 3
    """
    _review(evidence_id, "confirmed", milestone=milestone, stance=stance)


@review_app.command("reject")
def review_reject(
    evidence_id: Annotated[int, typer.Argument(help="Evidence id (see 'tracker review').")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is not evidence.")] = None,
) -> None:
    """Reject evidence; it is remembered so that a later refresh does not bring it back.

    Example: tracker review reject 42 --reason "about the dam, not the crossing"
    """
    _review(evidence_id, "rejected", reason=reason)


def _review(evidence_id: int, decision: str, **kwargs: object) -> None:
    from tracker import store

    today = _today()
    with STATE.db().write() as session:
        outcome = store.review(session, evidence_id, decision, today=today, **kwargs)  # type: ignore[arg-type]
        slug = store.find_slug(session, outcome.evidence.commitment_id)
    if outcome.note:
        typer.echo(f"note: {outcome.note}")
    typer.echo(f"evidence #{evidence_id} {decision} ({slug})")
    _echo_changes(outcome.changes)


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
    from tracker import store

    if clear == (new_status is not None):
        raise UsageError("give either a STATUS with --reason, or --clear")
    today = _today()
    with STATE.db().write() as session:
        before, after = store.set_status(session, slug, new_status, reason=reason, today=today)
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
    from tracker import export as exporter

    if fmt not in ("json", "csv"):
        raise UsageError(f"--format must be json or csv, got {fmt!r}")
    today = _today()
    with STATE.db().read() as session:
        text = (
            exporter.to_json(session, today) if fmt == "json" else exporter.to_csv(session, today)
        )
    if output is None:
        sys.stdout.write(text)
        return
    _write_atomic(output, text)
    typer.echo(f"wrote {output}", err=True)


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


@catalog_app.command("load")
def catalog_load(file: Annotated[Path, typer.Argument(help="A catalog TOML file.")]) -> None:
    """Add or update agreements from a catalog file. Idempotent; never deletes evidence.

    Example: tracker catalog load their-catalog.toml
    """
    from tracker import catalog, store

    specs = catalog.read_catalog(file)  # validated before the database is touched
    today = _today()
    with STATE.db().write() as session:
        result = catalog.load_into(session, specs)
        session.flush()
        store.sync_statuses(session, today, by="catalog")
    typer.echo(
        f"loaded {file}: {result.agreements} agreement(s), {result.commitments_added} commitment(s) added, "
        f"{result.commitments_updated} updated, {result.evidence_added} curated evidence added"
    )


SourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--sources", help="Sources file (default: $TRACKER_SOURCES or the built-in list)."
    ),
]


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
) -> None:
    """Fetch every due source, store new evidence for review, update statuses.

    Exit 0 when all sources succeeded (or were unchanged, disabled or not due), 1 when any failed.

    Example: tracker refresh --quiet
    """
    from tracker import refresh as refresher
    from tracker.sources import load_sources

    spec = load_sources(sources)
    if only is not None:
        spec.get(only)
    today = _today()
    db = STATE.db()
    progress = None
    if not quiet and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
    task: list[int] = []

    def on_start(n: int) -> None:
        if progress is not None:
            progress.start()
            task.append(progress.add_task("fetching", total=n))

    def on_outcome(outcome: object) -> None:
        if progress is not None and task:
            progress.advance(task[0])

    try:
        report = refresher.refresh(
            db, spec, today=today, only=only, force=force, on_start=on_start, on_outcome=on_outcome
        )
    finally:
        if progress is not None:
            progress.stop()
    if notify or _env_flag("TRACKER_NOTIFY"):
        from tracker import alerts

        sent = alerts.send_refresh_alerts(db, report)
        for line in sent:
            if not quiet:
                typer.echo(line)
    from tracker.text import for_terminal

    if not quiet or report.failed:
        switched_off = 0
        for r in report.results:
            if r.state == "disabled" and not r.source.enabled:
                switched_off += 1  # the user's own choice: counted, not listed one by one
            elif r.state == "failed" or (not quiet and r.state in ("disabled", "skipped")):
                reason = (r.reason or "").removeprefix(f"{r.state}: ")
                typer.echo(f"{r.source.name}: {r.state}: {for_terminal(reason)}")
        if switched_off and not quiet:
            typer.echo(
                f"{switched_off} source(s) switched off in the sources file (enabled = false)"
            )
        for ch in report.changes:
            typer.echo(f"status: {ch.slug}: {ch.old or '—'} → {ch.new}")
        typer.echo(report.summary())
    if report.failed:
        raise SystemExit(1)


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


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
        from scrapers import KINDS

        for name in sorted(KINDS):
            info = KINDS[name]
            typer.echo(f"{name}: {info.summary}\n")
            typer.echo(_indent(info.doc.strip()))
            if info.options:
                typer.echo("\n    options:")
                for opt, help_text in sorted(info.options.items()):
                    typer.echo(f"      {opt}: {help_text}")
            typer.echo("")
        return
    from tracker import refresh as refresher
    from tracker.ingest import health_rows
    from tracker.sources import load_sources

    spec = load_sources(sources)
    with STATE.db().read() as session:
        rows = refresher.source_table(spec, health_rows(session))
    if as_json:
        _print_json({"file": spec.origin, "sources": rows})
        return
    from rich.table import Table
    from rich.text import Text

    from tracker.text import for_terminal
    from tracker.views import console

    table = Table(title=f"Sources from {spec.origin}", title_justify="left")
    for col in (
        "name",
        "kind",
        "lang",
        "side",
        "last success",
        "failures",
        "last error",
        "items",
        "new",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            Text(r["name"] + ("" if r["enabled"] else " (off)")),
            r["kind"],
            r["language"],
            r["country"] or "—",
            r["last_success"] or "never",
            str(r["consecutive_failures"]),
            Text(for_terminal(r["last_error"] or "—")),
            str(r["items_seen"]),
            str(r["new_evidence"]),
        )
    console().print(table)


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else "" for line in text.splitlines())


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
    from tracker.db import redact
    from tracker.dbcopy import copy_database

    result = copy_database(STATE.db(), to, replace=replace)
    total = sum(result.counts.values())
    detail = ", ".join(f"{n} {t}" for t, n in result.counts.items() if n)
    typer.echo(f"copied {total} rows to {redact(to)} ({detail}); counts verified")


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)


def _click_exceptions():  # type: ignore[no-untyped-def]
    # Newer typer vendors click as typer._click; older releases use the click package.
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error a user can cause ends as one line and an exit code, no traceback."""
    ex = _click_exceptions()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="tracker", standalone_mode=False)
    except typer.Abort:
        _fail("aborted", 130)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except getattr(ex, "NoArgsIsHelpError", ()) as exc:  # type: ignore[misc]
        typer.echo(exc.ctx.get_help())
        raise SystemExit(0) from None
    except ex.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx else "tracker"
        _fail(f"{exc.format_message()} (see '{path} --help')".replace("\n", " "), 2)
    except ex.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), exc.exit_code or 1)
    except TrackerError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # `tracker export | head` closed the pipe: not an error worth a message.
        sys.stderr.close()
        raise SystemExit(0) from None
    except Exception as exc:  # database and OS errors: one line, never a traceback
        _fail(_describe(exc), 1)
    if isinstance(rv, int) and rv:
        raise SystemExit(rv)


def entry() -> NoReturn:
    """The console script (and `python -m tracker`): `main`, then a fast exit.

    A command loads SQLAlchemy, pydantic and rich: about a million objects that live until the
    process ends. The cyclic collector finds no garbage among them but walks them again and again
    while they load, and interpreter shutdown frees them one by one: together about 0.15 s of a
    0.45 s command. So the collector is off while a command runs (`daemon` turns it back on) and
    the process ends with `os._exit` once its output is flushed. Tests call `main`.
    """
    import contextlib
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
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed by a reader gone away (`| head`)
            stream.flush()
    os._exit(code)


def _describe(exc: Exception) -> str:
    try:
        import sqlalchemy as sa

        from tracker.db import describe_operational_error, redact

        if isinstance(exc, sa.exc.OperationalError):
            return describe_operational_error(exc, redact(STATE.db_arg or "database"))
        if isinstance(exc, sa.exc.SQLAlchemyError):
            return f"database error: {redact(str(getattr(exc, 'orig', exc)).splitlines()[0])}"
    except ImportError:
        pass
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


if __name__ == "__main__":
    main()


# Commands that live in their own modules register themselves on `app` when imported.
from tracker import cli_report  # noqa: E402, F401
