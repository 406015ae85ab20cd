"""Running on a schedule: crontab lines for this installation, or a long-running daemon.

Both call the same functions as the CLI. The daemon's refresh takes the same lock as a cron-run
`tracker refresh`, so the two never overlap; when the lock is held the daemon logs one line and
waits for its next turn. Its report claims each mail in the database like any other run, so two
daemons, or a daemon and cron, mail each week once. Crontab expressions are read with APScheduler's
`CronTrigger`; the daemon keeps time itself (see `Daemon`).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
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
STOP_GRACE = 4.0  # seconds a running job gets to finish after SIGTERM before the daemon leaves
TICK = 0.25  # how often the daemon looks at its clocks
LATE = timedelta(minutes=1)  # a report this far past its time says it "missed its time"
REPORT_RETRY = timedelta(minutes=5)  # first retry of a failed mail; then 3× longer each time
REPORT_RETRY_MAX = timedelta(hours=6)

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
    "TRACKER_WEEK_ZONE",
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


def _cron_header(email: bool, env: Mapping[str, str], notes: list[str]) -> list[str]:
    """The comment lines and environment settings above the crontab's jobs."""
    out = [
        "# tracker: paste into `crontab -e`. Cron mails whatever these print: refresh --quiet",
        "# prints only when a source fails, and the report line prints only errors.",
        "# Times are the cron daemon's local time; the report covers the last complete ISO week"
        " in the local zone (or TRACKER_WEEK_ZONE).",
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
    return out


def cron_plan(
    *,
    db_arg: str | None,
    sources: Path | None,
    workdir: Path,
    email: bool = True,
    notify: bool = False,
    env: Mapping[str, str],
    command: list[str] | None = None,
    publish: Path | None = None,
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

    out = _cron_header(email, env, notes)
    tail = ""
    folder = _publish_folder(publish)
    if folder is not None:
        # ';' not '&&': the site is rebuilt even when a source failed (refresh then exits 1).
        site = [*base, "publish", "--out", str(folder), "--quiet", *source_args]
        tail = " ; " + " ".join(_cron_quote(w) for w in site)
    out.append(line(CRON_REFRESH, refresh, tail))
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
    zone: tzinfo | None = None  # weeks and --report-cron; None: the local zone
    report_retry: timedelta = REPORT_RETRY  # the first retry of a failed mail; then ×3, ≤ 6 h
    publish: Path | None = None  # a static site rebuilt after every refresh and report
    publish_pending: bool = False

    @property
    def week_zone(self) -> tzinfo:
        if self.zone is None:
            from tracker.weeks import week_zone

            self.zone = week_zone(None)
        return self.zone


def refresh_job(db: Database, config: DaemonConfig, log: Callable[[str], None]) -> None:
    """One refresh, summarised in one line; never raises. Alerts go out while it holds the lock."""
    from tracker.followup import Followup
    from tracker.refresh import refresh
    from tracker.sources import load_sources
    from tracker.store.locks import Busy, Interrupted

    settings = config.settings
    followup = Followup(db, settings, notify=config.notify, quiet=True)
    try:
        spec = load_sources(config.sources)  # re-read: edits apply without a restart
        # Wait for nobody: if cron's refresh holds the lock, this turn is simply skipped.
        report = refresh(
            db,
            spec,
            settings,
            today=settings.today(),
            lock_wait=0,
            while_locked=followup.while_locked,
        )
    except Busy as exc:
        log(f"refresh: skipped: {exc}")
        return
    except Interrupted:
        log(
            "refresh: stopped between two sources (the daemon is stopping); what it stored is whole"
        )
        return
    except TrackerError as exc:
        log(f"refresh: error: {exc}")
        return
    except Exception as exc:
        log(f"refresh: failed: {_describe(exc)}")
        return
    after = followup.after(report)
    log(after.log)
    for text in after.alerts:
        log(f"alerts: {text}")
    publish_job(db, config, log)


def publish_job(db: Database, config: DaemonConfig, log: Callable[[str], None]) -> None:
    """Rebuild the published site (`--publish DIR`), in one line; never raises. It reads one
    snapshot and never blocks a refresh."""
    if config.publish is None:
        return
    from msgspec.structs import replace

    from tracker.publish import publish

    settings = config.settings
    if config.sources is not None:
        settings = replace(settings, sources=str(config.sources))
    try:
        result = publish(db, settings, config.publish, include_pending=config.publish_pending)
    except TrackerError as exc:
        log(f"publish: error: {exc}")
        return
    except Exception as exc:
        log(f"publish: failed: {_describe(exc)}")
        return
    log(f"publish: {result.summary}")


def _report_day(config: DaemonConfig) -> date:
    from tracker.weeks import today_in

    return config.settings.replay_day or today_in(config.week_zone)


def report_job(db: Database, config: DaemonConfig, log: Callable[[str], None]) -> bool:
    """Write (and mail) the last complete week's report, and mail earlier weeks whose mail failed;
    True unless some mail failed and is worth trying again."""
    from tracker import reporting
    from tracker.dates import utcnow
    from tracker.weeks import IsoWeek

    today = _report_day(config)

    def produce(week: IsoWeek) -> reporting.Produced:
        return reporting.produce(
            db,
            week=week,
            out_dir=config.out_dir,
            today=today,
            now=utcnow(),
            quiet_days=config.quiet_days,
            sources=config.sources or config.settings.sources,
            zone=config.week_zone,
        )

    try:
        produced = produce(IsoWeek.last_complete(today))
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
        lines = mail.deliver_reports(db, produced, smtp, produce)
    except mail.Unsent as exc:
        log("; ".join([line, *exc.lines, f"mail not sent: {exc}"]))
        return not _retryable(exc)
    except TrackerError as exc:
        log(f"{line}; mail not sent: {exc}")
        return False
    except Exception as exc:
        log(f"{line}; mail not sent: {_describe(exc)}")
        return False
    log("; ".join([line, *lines]))
    return True


def _retryable(exc: BaseException) -> bool:
    # A send whose fate is unknown waits for a person (--resend); anything else may pass later.
    return "sent state unknown" not in str(exc).split(" (and ")[0]


def report_pending(db: Database, config: DaemonConfig, now: datetime) -> str | None:
    """Why the report should run now, at start-up: the last scheduled run's week was not done
    (the daemon was down, or the machine asleep), or an earlier mail failed and awaits its retry
    (a retry survives a restart: it is the notification table's failed rows). None otherwise."""
    from tracker.weeks import IsoWeek, today_in

    fire = last_fire_time(parse_cron(config.report_cron, timezone=config.week_zone), now)
    if fire is None:
        return None
    week = IsoWeek.last_complete(config.settings.replay_day or today_in(config.week_zone, fire))
    if not config.email:
        if (config.out_dir / f"{week.label}.md").is_file():
            return None
        return f"the report of {week.label} (due {fire:%Y-%m-%d %H:%M %Z}) was not written"
    from tracker import mail
    from tracker.store import notifications

    try:
        smtp = mail.load_settings(config.settings.env, to=config.to or None)
        with db.read() as conn:
            done = notifications.find(conn, mail.report_key(week.label, smtp.recipients))
        due, _ = mail.backlog(db, smtp, IsoWeek.last_complete(today_in(config.week_zone, now)))
    except Exception:  # the run itself will say what is wrong
        return "its state could not be read"
    if done is None or done.state == notifications.FAILED:
        return f"the report of {week.label} (due {fire:%Y-%m-%d %H:%M %Z}) was not mailed"
    if due:
        return f"the mail of {', '.join(w.label for w in due)} failed earlier"
    return None


def last_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest time at or before `now` that `trigger` fires at, within the last 8 days."""
    fire = trigger.get_next_fire_time(None, now - timedelta(days=8))
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _every_text(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _elapsed_clock() -> float:
    """Seconds on a clock that setting the wall clock cannot move (and that, on Linux, keeps
    counting while the machine sleeps, so an hourly refresh is due after a night's sleep)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        with suppress(OSError):
            return time.clock_gettime(boottime)
    return time.monotonic()


class _Worker:
    """One long-lived thread per job (so its database connections are reused), run on demand."""

    def __init__(self, name: str, job: Callable[[], object], log: Callable[[str], None]) -> None:
        self.name, self.job, self.log = name, job, log
        self._go = threading.Event()
        self._lock = threading.Lock()
        self.busy = False
        threading.Thread(target=self._loop, name=f"tracker-{name}", daemon=True).start()

    def start(self) -> bool:
        with self._lock:
            if self.busy:
                return False
            self.busy = True
        self._go.set()
        return True

    def _loop(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            try:
                self.job()
            except BaseException as exc:  # belt and braces: a job must never end the daemon
                self.log(f"{self.name}: failed: {_describe(exc)}")
            finally:
                with self._lock:
                    self.busy = False


class Daemon:
    """Refreshes on an interval and the weekly report on a crontab schedule, until SIGTERM, SIGINT
    or SIGHUP. The main thread keeps time; each job runs on its own worker thread.

    - The interval is measured on a clock that wall-clock changes cannot move (`_elapsed_clock`):
      setting the clock back an hour does not stop refreshes for an hour.
    - The report is due when the wall clock in the week zone passes its next crontab time, checked
      every tick: a late wake runs it at once ("missed its time … running now"). At start-up, a
      week that was not done while the daemon was down, or a failed mail, is run at once.
    - A failed mail is tried again after `report_retry`, then 3× longer each time (at most 6 h).
    - Before each job the database file's identity is checked: a file deleted or replaced under
      the daemon is reopened (its old write-ahead log set aside first, never applied to the new
      file), with one log line.
    - A stop asks the running refresh to stop before its next write (`Database.cancel`); a job
      still running after STOP_GRACE is cut short (its open transaction rolls back).
    """

    def __init__(
        self,
        db: Database,
        config: DaemonConfig,
        log: Callable[[str], None],
        opener: Callable[[], Database] | None = None,
        *,
        clock: Callable[[], float] = _elapsed_clock,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        """`opener` opens the database again (after its file was replaced); `clock` and `wall`
        are the two clocks (seconds elapsed; the aware wall-clock time), for tests."""
        self.db, self.config, self.log, self.opener = db, config, log, opener
        zone = config.week_zone
        self.clock = clock
        self.wall = wall or (lambda: datetime.now(zone))
        self.stop = threading.Event()
        self.trigger = parse_cron(config.report_cron, timezone=config.week_zone)
        self._old: list[Database] = []  # replaced files' databases, dropped once no job runs
        self._retries = 0
        self._retry_at: float | None = None
        self._retry_lock = threading.Lock()
        self.workers = {
            "refresh": _Worker("refresh", self._refresh, log),
            "report": _Worker("report", self._report, log),
        }

    # ------------------------------------------------------------ jobs

    def _refresh(self) -> None:
        refresh_job(self.db, self.config, self.log)

    def _report(self) -> None:
        ok = report_job(self.db, self.config, self.log)
        publish_job(self.db, self.config, self.log)  # the new week's page
        with self._retry_lock:
            if ok:
                self._retries, self._retry_at = 0, None
                return
            delay = min(
                self.config.report_retry.total_seconds() * 3**self._retries,
                REPORT_RETRY_MAX.total_seconds(),
            )
            self._retries += 1
            self._retry_at = self.clock() + delay
        when = self.wall() + timedelta(seconds=delay)
        self.log(f"report: will try the mail again at {when:%Y-%m-%d %H:%M:%S %Z}")

    def _dispatch(self, name: str) -> None:
        if not self._check_database():
            return
        if not self.workers[name].start():
            self.log(f"{name}: skipped this turn: the previous run is still going")

    def _check_database(self) -> bool:
        """Before each job: is the database file still the one opened? False: do not run now."""
        change = self.db.replaced()
        if change is None:
            self.db.remember_files()
            return True
        old = self.db
        moved = old.set_aside()
        if self.opener is None:
            self.log(f"database: {old.display} was {change} under the daemon; stopping")
            self.stop.set()
            return False
        try:
            self.db = self.opener()
        except TrackerError as exc:
            self.log(f"database: {old.display} was {change} and cannot be reopened: {exc}")
            return False
        old.cancel.set()
        self._old.append(old)
        aside = f"; its old write-ahead log was set aside ({', '.join(p.name for p in moved)})"
        self.log(
            f"database: {old.display} was {change} while the daemon ran; reopened it"
            + (" (a new database)" if self.db.created else "")
            + (aside if moved else "")
        )
        return True

    def _idle(self) -> bool:
        return not any(w.busy for w in self.workers.values())

    # ------------------------------------------------------------ the clock

    def _signal(self, signum: int, _frame: object) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            self.stop_reason = "SIGHUP (hangup: the terminal or session went away); stopping"
        self.stop.set()

    stop_reason = ""

    def run(self, *, signals: bool = True) -> int:
        from tracker.weeks import zone_name

        every = self.config.every.total_seconds()
        zone = self.config.week_zone
        previous = {}
        if signals:
            wanted = [signal.SIGTERM, signal.SIGINT]
            # Under `nohup` SIGHUP is ignored on purpose: keep it so.
            if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
                wanted.append(signal.SIGHUP)
            previous = {sig: signal.signal(sig, self._signal) for sig in wanted}
        try:
            now = self.wall()
            next_report = self.trigger.get_next_fire_time(None, now)
            self.log(
                f"daemon: started (pid {os.getpid()}); refresh every {_every_text(self.config.every)}"
                + (" with alerts" if self.config.notify else "")
                + f"; weekly report at '{self.config.report_cron}' in {zone_name(zone)} "
                f"(next {next_report:%Y-%m-%d %H:%M %Z}, "
                + ("mailed" if self.config.email else "not mailed")
                + f"); database {self.db.display}"
            )
            next_refresh = self.clock()  # the first refresh right away
            why = report_pending(self.db, self.config, now)
            if why is not None:
                self.log(f"report: missed its time: {why}; running now")
                self._dispatch("report")
            while not self.stop.wait(TICK):
                clock = self.clock()
                if clock >= next_refresh:
                    self._dispatch("refresh")
                    # Missed turns (a long run, a sleeping machine) are merged into this one.
                    next_refresh += every * (1 + int((clock - next_refresh) // every))
                now = self.wall()
                if next_report is not None and now >= next_report:
                    if now - next_report > LATE:
                        self.log(
                            f"report: missed its time ({next_report:%Y-%m-%d %H:%M %Z}); "
                            "running now"
                        )
                    self._dispatch("report")
                    next_report = self.trigger.get_next_fire_time(next_report, now)
                with self._retry_lock:
                    retry = self._retry_at is not None and clock >= self._retry_at
                    if retry:
                        self._retry_at = None
                if retry:
                    self._dispatch("report")
                if self._old and self._idle():
                    for old in self._old:
                        old.abandon()
                    self._old = []
            return self._stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self) -> int:
        self.log(f"daemon: {self.stop_reason or 'stopping'}")
        self.db.cancel.set()  # a refresh stops before its next write
        deadline = time.monotonic() + STOP_GRACE
        while not self._idle() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._idle():
            self.log(
                f"daemon: stopped; a job was still running after {STOP_GRACE:g} s and was "
                "cut short (its open database transaction rolls back)"
            )
            sys.stderr.flush()
            sys.stdout.flush()
            # The worker threads would otherwise keep the process alive until the job ends;
            # nothing half-written survives because each write is one transaction.
            os._exit(0)
        self.log("daemon: stopped")
        return 0


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
    week_zone: str | None = None,
    publish: Path | None = None,
    publish_pending: bool = False,
) -> DaemonConfig:
    """Check every option before anything starts: a bad one is a one-line usage error."""
    from tracker.sources import load_sources, parse_duration
    from tracker.weeks import week_zone as zone_of

    every = parse_duration(refresh_every, "--refresh-every")
    zone = zone_of(week_zone)
    parse_cron(report_cron, timezone=zone)
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
        zone=zone,
        publish=_publish_folder(publish),
        publish_pending=publish_pending,
    )


def _publish_folder(folder: Path | None) -> Path | None:
    """The site's folder, checked now (a folder tracker did not make is refused before start)."""
    if folder is None:
        return None
    from tracker.publish import check_folder

    folder = folder.expanduser().absolute()
    check_folder(folder)
    return folder
