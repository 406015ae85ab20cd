"""Running on a schedule: crontab lines for this installation, or a long-running daemon.

Both call the same functions as the CLI. The daemon's refresh takes the same lock as a cron-run
`tracker refresh`, so the two never overlap; when the lock is held the daemon logs one line and
waits for its next turn.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tracker.errors import TrackerError, UsageError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from tracker.settings import Settings
    from tracker.store import Database

DEFAULT_REPORT_CRON = "30 6 * * mon"
DEFAULT_REFRESH_EVERY = "1h"
CRON_REFRESH = "17 * * * *"  # an odd minute, so it does not join the top-of-the-hour crowd
CRON_REPORT = "30 6 * * 1"
STOP_GRACE = 5.0  # seconds a running job gets to finish after SIGTERM before the daemon leaves
REPORT_RETRY = timedelta(hours=1)
REPORT_RETRIES = 12

# Mail settings worth carrying into the crontab (never the password).
CRON_ENV = (
    "TRACKER_CONFIG",
    "TRACKER_SMTP_HOST",
    "TRACKER_SMTP_PORT",
    "TRACKER_SMTP_SECURITY",
    "TRACKER_SMTP_USER",
    "TRACKER_SMTP_CA_FILE",
    "TRACKER_SMTP_TIMEOUT",
    "TRACKER_MAIL_FROM",
    "TRACKER_MAIL_TO",
    "TRACKER_ALERT_TO",
    "TRACKER_NOTIFY",
)

# ---------------------------------------------------------------- crontab


def tracker_command() -> list[str]:
    """How to start this very installation: its `tracker` script, else `python -m tracker`."""
    # Not resolved: a virtualenv's python is a symlink, and resolving it would leave the venv.
    python = Path(sys.executable).absolute()
    script = python.parent / "tracker"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "tracker"]


def _cron_quote(word: str) -> str:
    # cron turns an unescaped % in the command into a newline.
    return shlex.quote(word).replace("%", "\\%")


def _env_line(name: str, value: str) -> str | None:
    if any(ch in value for ch in "\n\r\"'\\") or not value.strip():
        return None
    return f"{name}={value.strip()}"


@dataclass(frozen=True)
class CronPlan:
    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def cron_plan(
    *,
    db_arg: str | None,
    sources: Path | None,
    workdir: Path,
    email: bool = True,
    notify: bool = False,
    env: Mapping[str, str],
    command: list[str] | None = None,
) -> CronPlan:
    """Crontab lines: an hourly quiet refresh and a Monday-morning weekly report. `db_arg` is
    `--db`, else TRACKER_DB; `env` the environment snapshot (Settings.env)."""
    from tracker.store import has_secret, resolve_url, sqlite_path

    base = list(command or tracker_command())
    url = resolve_url(db_arg)
    path = sqlite_path(url)
    notes: list[str] = []
    if path is not None:
        base += ["--db", str(path)]
    elif has_secret(url):
        notes.append(
            "# The database URL holds a password, so it is not written on a command line: add a "
            "line TRACKER_DB=<the URL> above these (crontab -e)."
        )
    else:
        base += ["--db", url]
    chosen_sources = sources or (
        Path(env["TRACKER_SOURCES"]) if env.get("TRACKER_SOURCES") else None
    )
    source_args = (
        ["--sources", str(chosen_sources.expanduser().absolute())] if chosen_sources else []
    )
    workdir = workdir.expanduser().absolute()
    reports = workdir / "reports"

    refresh = [*base, "refresh", "--quiet", *source_args] + (["--notify"] if notify else [])
    report = [*base, "report", "weekly", "--out", str(reports), *source_args]
    if email:
        report.append("--email")

    def line(schedule: str, words: list[str], tail: str = "") -> str:
        return (
            f"{schedule} cd {_cron_quote(str(workdir))} && "
            + " ".join(_cron_quote(w) for w in words)
            + tail
        )

    out = [
        "# tracker: paste into `crontab -e`. Cron mails whatever these print: refresh --quiet",
        "# prints only when a source fails, and the report line prints only errors.",
        "# Times are the cron daemon's local time; reports cover ISO weeks in UTC.",
    ]
    if email:
        out.append(
            "# The report mail needs TRACKER_SMTP_HOST, TRACKER_MAIL_FROM and TRACKER_MAIL_TO (and"
            " TRACKER_SMTP_USER/TRACKER_SMTP_PASSWORD if the server wants a login), set below or"
            " in a TRACKER_CONFIG file."
        )
    out += notes
    for name in CRON_ENV:
        value = env.get(name)
        if value:
            env_line = _env_line(name, value)
            out.append(env_line or f"# {name} is set in your shell but cannot be copied here")
    if env.get("TRACKER_SMTP_PASSWORD"):
        out.append(
            "# TRACKER_SMTP_PASSWORD is set in your shell and deliberately not printed: add"
            " TRACKER_SMTP_PASSWORD=... here yourself, or keep it in the TRACKER_CONFIG file."
        )
    out.append(line(CRON_REFRESH, refresh))
    out.append(line(CRON_REPORT, report, " >/dev/null"))
    return CronPlan(out)


# ---------------------------------------------------------------- cron expressions

_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _dow_to_names(field_text: str) -> str:
    """Crontab day-of-week numbers (0 or 7 = Sunday) as names: APScheduler 3 counts 0 as Monday."""
    out: list[str] = []
    for part in field_text.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        if not m:
            out.append(part)  # names, or something APScheduler will judge
            continue
        span, step = m.group(1), int(m.group(2) or 1)
        if span == "*":
            lo, hi = 0, 6
        elif "-" in span:
            lo, hi = (int(x) for x in span.split("-"))
        else:
            lo = hi = int(span)
            if m.group(2):
                hi = 6
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step > 0):
            raise ValueError(f"day of week {part!r} is out of range (0-7, 0 and 7 are Sunday)")
        days = sorted({d % 7 for d in range(lo, hi + 1, step)})
        out.extend(_DOW[d] for d in days)
    return ",".join(dict.fromkeys(out))


def parse_cron(expr: str, what: str = "--report-cron", timezone: Any = None) -> CronTrigger:
    """A standard 5-field crontab expression as an APScheduler trigger (weekday numbers as cron's)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise UsageError(f"{what} must have 5 fields (minute hour day month weekday), got {expr!r}")
    try:
        fields[4] = _dow_to_names(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as exc:
        raise UsageError(f"{what} {expr!r}: {exc}") from None


# ---------------------------------------------------------------- the daemon


class Log:
    """One line per event on stderr, with a UTC timestamp, from any thread."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        from tracker.dates import utcnow

        stamp = utcnow().replace(microsecond=0).isoformat() + "Z"
        with self._lock:
            try:
                self.stream.write(f"{stamp} {' '.join(message.split())}\n")
                self.stream.flush()
            except (OSError, ValueError):  # a closed stderr must not kill a job
                pass


@dataclass
class DaemonConfig:
    settings: Settings
    sources: Path | None
    every: timedelta
    report_cron: str
    email: bool
    notify: bool
    out_dir: Path
    to: list[str] = field(default_factory=list)
    quiet_days: int = 60


def refresh_job(db: Database, config: DaemonConfig, log: Callable[[str], None]) -> None:
    """One refresh, summarised in one line; never raises."""
    from tracker.followup import after_refresh
    from tracker.refresh import refresh
    from tracker.sources import load_sources
    from tracker.store.locks import Busy

    settings = config.settings
    try:
        spec = load_sources(config.sources)  # re-read: edits apply without a restart
        # Wait for nobody: if cron's refresh holds the lock, this turn is simply skipped.
        report = refresh(db, spec, settings, today=settings.today(), lock_wait=0)
    except Busy as exc:
        log(f"refresh: skipped: {exc}")
        return
    except TrackerError as exc:
        log(f"refresh: error: {exc}")
        return
    except Exception as exc:
        log(f"refresh: failed: {_describe(exc)}")
        return
    after = after_refresh(db, settings, report, notify=config.notify, quiet=True)
    log(after.log)
    for text in after.alerts:
        log(f"alerts: {text}")


def report_job(db: Database, config: DaemonConfig, log: Callable[[str], None]) -> bool:
    """Write (and mail) the last complete week's report; True unless mailing failed."""
    from tracker import reporting
    from tracker.dates import utcnow

    try:
        produced = reporting.produce(
            db,
            week=None,
            out_dir=config.out_dir,
            today=config.settings.today(),
            now=utcnow(),
            quiet_days=config.quiet_days,
            sources=config.sources or config.settings.sources,
        )
    except TrackerError as exc:
        log(f"report: error: {exc}")
        return True  # retrying will not fix a broken setup; the next week's run will tell again
    except Exception as exc:
        log(f"report: failed: {_describe(exc)}")
        return True
    written = produced.written
    line = f"report: {'kept unchanged' if written.reused else 'wrote'} {written.path}"
    if not config.email:
        log(line)
        return True
    from tracker import mail

    try:
        smtp = mail.load_settings(config.settings.env, to=config.to or None)
        delivery = mail.deliver_report(db, produced, smtp)
    except TrackerError as exc:
        log(f"{line}; mail not sent: {exc}")
        return False
    except Exception as exc:
        log(f"{line}; mail not sent: {_describe(exc)}")
        return False
    log(f"{line}; {'; '.join(delivery.lines)}")
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _every_text(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Daemon:
    """APScheduler in a background thread; the main thread waits for SIGTERM/SIGINT."""

    def __init__(self, db: Database, config: DaemonConfig, log: Callable[[str], None]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.db, self.config, self.log = db, config, log
        self.stop = threading.Event()
        self._running = 0
        self._running_lock = threading.Lock()
        self._retries = 0
        self.trigger = parse_cron(config.report_cron)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def _tracked(self, name: str, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with self._running_lock:
                self._running += 1
            try:
                job()
            except BaseException as exc:  # belt and braces: a job must never end the daemon
                self.log(f"{name}: failed: {_describe(exc)}")
            finally:
                with self._running_lock:
                    self._running -= 1

        return run

    def _report(self) -> None:
        if report_job(self.db, self.config, self.log):
            self._retries = 0
            return
        if self._retries >= REPORT_RETRIES:
            self.log("report: giving up on the mail until the next scheduled run")
            self._retries = 0
            return
        self._retries += 1
        from datetime import datetime

        when = datetime.now(self.trigger.timezone) + REPORT_RETRY
        self.scheduler.add_job(
            self._tracked("report", self._report),
            "date",
            run_date=when,
            id="report-retry",
            replace_existing=True,
            misfire_grace_time=int(REPORT_RETRY.total_seconds()),
        )
        self.log(f"report: will try the mail again at {when:%Y-%m-%d %H:%M %Z}")

    def _on_event(self, event: Any) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED

        name = "report" if event.job_id.startswith("report") else event.job_id
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.log(f"{name}: skipped this turn: the previous run is still going")
        elif event.code == EVENT_JOB_MISSED:
            when = getattr(event, "scheduled_run_time", None)
            self.log(f"{name}: missed its time" + (f" ({when:%Y-%m-%d %H:%M %Z})" if when else ""))

    def _signal(self, signum: int, _frame: object) -> None:
        self.stop.set()

    def run(self) -> int:
        import logging
        from datetime import datetime

        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.triggers.interval import IntervalTrigger

        # Our own one-line log replaces APScheduler's multi-line warnings; errors still show.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        every = self.config.every
        self.scheduler.add_job(
            self._tracked("refresh", lambda: refresh_job(self.db, self.config, self.log)),
            IntervalTrigger(seconds=int(every.total_seconds())),
            id="refresh",
            next_run_time=datetime.now(self.trigger.timezone),  # first refresh right away
            misfire_grace_time=max(1, int(every.total_seconds())),
        )
        self.scheduler.add_job(
            self._tracked("report", self._report),
            self.trigger,
            id="report",
            misfire_grace_time=6 * 3600,  # a machine asleep at 06:30 still sends it at 09:00
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        previous = {
            sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.scheduler.start()
            next_report = self.scheduler.get_job("report").next_run_time
            self.log(
                f"daemon: started (pid {os.getpid()}); refresh every {_every_text(every)}"
                + (" with alerts" if self.config.notify else "")
                + f"; weekly report at '{self.config.report_cron}' "
                f"(next {next_report:%Y-%m-%d %H:%M %Z}, "
                + ("mailed" if self.config.email else "not mailed")
                + f"); database {self.db.display}"
            )
            while not self.stop.wait(0.5):
                pass
            self.log("daemon: stopping")
            self.scheduler.shutdown(wait=False)
            deadline = threading.Event()
            waited = 0.0
            while self._running and waited < STOP_GRACE:
                deadline.wait(0.1)
                waited += 0.1
            if self._running:
                self.log(
                    f"daemon: stopped; a job was still running after {STOP_GRACE:g} s and was "
                    "cut short (its open database transaction rolls back)"
                )
                sys.stderr.flush()
                sys.stdout.flush()
                # The pool's worker threads would otherwise keep the process alive until the job
                # ends; nothing half-written survives because each write is one transaction.
                os._exit(0)
            self.log("daemon: stopped")
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def make_config(
    settings: Settings,
    *,
    sources: Path | None,
    refresh_every: str,
    report_cron: str,
    email: bool,
    notify: bool,
    out_dir: Path,
    to: list[str] | None = None,
    quiet_days: int = 60,
) -> DaemonConfig:
    """Check every option before anything starts: a bad one is a one-line usage error."""
    from tracker.sources import load_sources, parse_duration

    every = parse_duration(refresh_every, "--refresh-every")
    parse_cron(report_cron)
    sources = sources or (Path(settings.sources) if settings.sources else None)
    load_sources(sources)
    if email:
        from tracker import mail

        mail.load_settings(settings.env, to=to or None)
    return DaemonConfig(
        settings=settings,
        sources=sources,
        every=every,
        report_cron=report_cron,
        email=email,
        notify=notify or settings.notify,
        out_dir=out_dir.expanduser().absolute(),
        to=list(to or []),
        quiet_days=quiet_days,
    )
