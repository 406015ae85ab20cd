"""Commands for reporting and scheduling: `report weekly`, `cron`, `daemon`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracker.cli.common import STATE, QuietDaysOption, SourcesOption, app, report_app, sources_path
from tracker.errors import UsageError


@report_app.command("weekly")
def report_weekly(
    week: Annotated[
        str | None,
        typer.Option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the YYYY-Www.md file.")] = Path(
        "reports"
    ),
    email: Annotated[
        bool,
        typer.Option("--email", help="Mail it (settings: TRACKER_SMTP_*, TRACKER_MAIL_*)."),
    ] = False,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Recipient instead of $TRACKER_MAIL_TO; repeat for more."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the mail instead of sending it.")
    ] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send even if this week's report already went out.")
    ] = False,
    quiet_days: QuietDaysOption = 60,
    sources: SourcesOption = None,
) -> None:
    """Write the weekly report (Markdown) and print its path; --email also mails it.

    A week's report is rebuilt from the status history and evidence dates, so any past week can be
    written again. Mailing is recorded: the same week is not sent twice to the same recipients
    unless --resend.

    Example: tracker report weekly --email --to watcher@example.org
    """
    from tracker import reporting
    from tracker.dates import utcnow
    from tracker.weeks import IsoWeek

    email = email or dry_run or resend or bool(to)
    chosen = IsoWeek.parse(week) if week is not None else None
    settings = STATE.settings
    smtp = None
    if email:
        from tracker import mail

        # Checked before anything is written: a setup mistake should change nothing.
        smtp = mail.load_settings(settings.env, to=to or None, need_host=not dry_run)
    produced = reporting.produce(
        STATE.db(),
        week=chosen,
        out_dir=out,
        today=settings.today(),
        now=utcnow(),
        quiet_days=quiet_days,
        sources=sources_path(sources),
    )
    typer.echo(str(produced.written.path))
    if smtp is None:
        return
    from tracker import mail

    delivery = mail.deliver_report(STATE.db(), produced, smtp, resend=resend, dry_run=dry_run)
    for line in delivery.lines:
        typer.echo(line)


@app.command("cron")
def cron(
    sources: SourcesOption = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Working directory for the jobs; reports go to DIR/reports (default: .)."
        ),
    ] = None,
    email: Annotated[
        bool, typer.Option("--email/--no-email", help="Mail the weekly report.")
    ] = True,
    notify: Annotated[
        bool, typer.Option("--notify", help="Refresh with --notify (alert mails).")
    ] = False,
) -> None:
    """Print crontab lines for this installation: an hourly refresh and a Monday report.

    The lines use absolute paths (this tracker, the database, the sources file) so they work from
    cron's bare environment. Install them with `crontab -e`.

    Example: tracker cron --sources /etc/tracker/sources.toml >> my-crontab
    """
    from tracker import schedule

    if sources is not None and not sources.is_file():
        raise UsageError(f"sources file {sources}: no such file")
    settings = STATE.settings
    plan = schedule.cron_plan(
        db_arg=settings.db,
        sources=sources,
        workdir=directory or Path.cwd(),
        email=email,
        notify=notify,
        env=settings.env,
    )
    typer.echo(plan.text(), nl=False)


@app.command("daemon")
def daemon(
    sources: SourcesOption = None,
    refresh_every: Annotated[
        str,
        typer.Option("--refresh-every", help="How often to refresh: 30s, 15m, 1h, 1d."),
    ] = "1h",
    report_cron: Annotated[
        str,
        typer.Option(
            "--report-cron",
            help="When to write the weekly report, as crontab fields in local time.",
        ),
    ] = "30 6 * * mon",
    email: Annotated[
        bool, typer.Option("--email/--no-email", help="Mail the weekly report.")
    ] = False,
    notify: Annotated[
        bool, typer.Option("--notify", help="Alert mails after refreshes (or TRACKER_NOTIFY=1).")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for weekly reports.")] = Path(
        "reports"
    ),
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Report recipient instead of $TRACKER_MAIL_TO; repeatable."),
    ] = None,
    quiet_days: QuietDaysOption = 60,
) -> None:
    """Run refreshes and the weekly report on a schedule until SIGTERM or Ctrl-C.

    Each run logs one line to standard error. Refreshes never overlap one started by cron: the
    daemon skips its turn when another refresh holds the lock.

    Example: tracker daemon --refresh-every 30m --email
    """
    import gc

    gc.enable()  # `tracker.cli.entry` turns it off for short commands; this one runs for weeks

    from tracker import schedule

    config = schedule.make_config(
        STATE.settings,
        sources=sources,
        refresh_every=refresh_every,
        report_cron=report_cron,
        email=email,
        notify=notify,
        out_dir=out,
        to=to,
        quiet_days=quiet_days,
    )
    db = STATE.db()
    code = schedule.Daemon(db, config, schedule.Log()).run()
    raise SystemExit(code)
