"""Commands for reporting and scheduling: `report weekly`, `cron`, `daemon`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracker.cli.common import STATE, QuietDaysOption, SourcesOption, app, report_app, sources_path
from tracker.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tracker.mail import MailSettings
    from tracker.reporting import Produced
    from tracker.store import Database
    from tracker.weeks import IsoWeek

WeekZoneOption = Annotated[
    str | None,
    typer.Option(
        "--week-zone",
        help="Time zone in which 'the last complete week' is judged, e.g. Asia/Tehran "
        "(default: $TRACKER_WEEK_ZONE, else the local zone).",
    ),
]
PublishOption = Annotated[
    Path | None,
    typer.Option(
        "--publish",
        help="Rebuild the static site in this folder after every refresh (see tracker publish).",
    ),
]


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
    week_zone: WeekZoneOption = None,
    show: Annotated[
        bool,
        typer.Option("--show", help="Also render the week in the terminal (path on stderr)."),
    ] = False,
) -> None:
    """Write the weekly report (Markdown) and print its path; --email also mails it.

    The default week is the last complete ISO week in the local time zone (or --week-zone /
    TRACKER_WEEK_ZONE). A week's report is rebuilt from the status history and evidence dates, so
    any past week can be written again. Mailing is claimed and recorded: the same week goes once
    to the same recipients unless --resend, even when several runs happen at once; a run of the
    default week also mails earlier weeks (up to 4) whose mail failed.

    Example: tracker report weekly --email --to watcher@example.org
    """
    from tracker import reporting
    from tracker.dates import utcnow
    from tracker.weeks import IsoWeek, today_in
    from tracker.weeks import week_zone as zone_of

    email = email or dry_run or resend or bool(to)
    settings = STATE.settings
    zone = zone_of(week_zone or settings.week_zone)
    today = settings.replay_day or today_in(zone)
    chosen = IsoWeek.parse(week) if week is not None else IsoWeek.last_complete(today)
    smtp = None
    if email:
        from tracker import mail

        # Checked before anything is written: a setup mistake should change nothing.
        smtp = mail.load_settings(settings.env, to=to or None, need_host=not dry_run)
    db = STATE.db()

    def produce(which: IsoWeek) -> Produced:
        return reporting.produce(
            db,
            week=which,
            out_dir=out,
            today=today,
            now=utcnow(),
            quiet_days=quiet_days,
            sources=sources_path(sources),
            zone=zone,
        )

    produced = produce(chosen)
    if show:
        from tracker.outputs.terminal import console
        from tracker.outputs.weekly_terminal import render

        console().print(render(produced.report))
    typer.echo(str(produced.written.path), err=show)
    if smtp is not None:
        _mail(db, produced, smtp, produce, resend=resend, dry_run=dry_run, backlog=week is None)


def _mail(
    db: Database,
    produced: Produced,
    smtp: MailSettings,
    produce: Callable[[IsoWeek], Produced],
    *,
    resend: bool,
    dry_run: bool,
    backlog: bool,
) -> None:
    """Mail the report (and, for the default week, earlier weeks whose mail failed)."""
    from tracker import mail

    if dry_run:
        mail.deliver_report(db, produced, smtp, dry_run=True)
        return
    try:
        lines = mail.deliver_reports(
            db, produced, smtp, produce, resend=resend, with_backlog=backlog
        )
    except mail.Unsent as exc:
        for line in exc.lines:
            typer.echo(line)
        raise
    for line in lines:
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
    publish: PublishOption = None,
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
        publish=publish,
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
    week_zone: WeekZoneOption = None,
    publish: PublishOption = None,
    publish_pending: Annotated[
        bool,
        typer.Option("--publish-pending", help="With --publish: show pending evidence too."),
    ] = False,
) -> None:
    """Run refreshes and the weekly report on a schedule until SIGTERM, Ctrl-C or SIGHUP.

    Each run logs one line to standard error. Refreshes never overlap one started by cron: the
    daemon skips its turn when another refresh holds the lock. A report missed while the daemon
    was down or the machine asleep runs at once; a failed mail is tried again.

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
        week_zone=week_zone or STATE.settings.week_zone,
        publish=publish,
        publish_pending=publish_pending,
    )
    db = STATE.db()

    def reopen() -> Database:
        from tracker.register import open_store

        return open_store(STATE.settings)

    code = schedule.Daemon(db, config, schedule.Log(), opener=reopen).run()
    raise SystemExit(code)
