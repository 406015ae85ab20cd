"""What happens after a refresh, decided once for `tracker refresh` and for the daemon: which lines
a person sees, which alerts go out, the one-line log, and the exit code.

Alerts go out while the refresh still holds its lock (`Followup.while_locked`, handed to
`refresh(..., while_locked=...)`), so a refresh that waited for the lock never finds them unsent;
the rest (`Followup.after`) runs once the lock is released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from tracker.outputs.escape import terminal
from tracker.vocab import SourceState

if TYPE_CHECKING:
    from tracker.refresh import RefreshReport
    from tracker.settings import Settings
    from tracker.store import Database

__all__ = ["AfterRefresh", "Followup", "after_refresh"]


def _plural(n: int, one: str) -> str:
    return f"{n} {one if n == 1 else one + 's'}"


class AfterRefresh(msgspec.Struct, frozen=True):
    lines: list[str] = msgspec.field(default_factory=list)  # for the person who ran it (stdout)
    log: str = ""  # one line for the daemon's log
    alerts: list[str] = msgspec.field(default_factory=list)  # what happened to the alert mail
    exit_code: int = 0  # 1 when any source failed


def _lines(report: RefreshReport, quiet: bool) -> list[str]:
    if quiet and not report.failed:
        return []
    lines = []
    switched_off = 0
    for r in report.results:
        if r.state == SourceState.DISABLED and not r.source.enabled:
            switched_off += 1  # the user's own choice: counted, not listed one by one
        elif r.state == SourceState.FAILED or (
            not quiet and r.state in (SourceState.DISABLED, SourceState.SKIPPED)
        ):
            reason = (r.reason or "").removeprefix(f"{r.state}: ")
            lines.append(f"{terminal(r.source.name)}: {r.state}: {terminal(reason)}")
    if switched_off and not quiet:
        lines.append(f"{switched_off} source(s) switched off in the sources file (enabled = false)")
    for ch in report.changes:
        lines.append(f"status: {ch.slug}: {ch.old or '—'} → {ch.new}")
    lines.append(report.summary())
    return lines


def _log(report: RefreshReport) -> str:
    ok = report.count(SourceState.OK) + report.count(SourceState.UNCHANGED)
    line = f"refresh: {ok} ok, {report.count(SourceState.FAILED)} failed, {report.new} new evidence"
    if report.changes:
        line += f", {_plural(len(report.changes), 'status change')}"
    failed = [r.source.name for r in report.results if r.state == SourceState.FAILED]
    if failed:
        line += f" (failed: {', '.join(terminal(name) for name in failed)})"
    return line


class Followup:
    """The after-refresh policy of one refresh: `while_locked` (alerts, when `notify` or
    TRACKER_NOTIFY), then `after` (what to print and log, the exit code)."""

    def __init__(self, db: Database, settings: Settings, *, notify: bool, quiet: bool) -> None:
        self.db, self.settings, self.quiet = db, settings, quiet
        self.notify = notify or settings.notify
        self.alerts: list[str] | None = None  # None until the alerts step ran

    def while_locked(self, report: RefreshReport) -> None:
        """Collect and send the alerts: pass this as `refresh(..., while_locked=...)`."""
        self.alerts = []
        if self.notify:
            from tracker.alerts import send_refresh_alerts

            self.alerts = send_refresh_alerts(self.db, self.settings, report)

    def after(self, report: RefreshReport) -> AfterRefresh:
        if self.alerts is None:  # a caller that did not hand `while_locked` to the refresh
            self.while_locked(report)
        alerts = self.alerts or []
        lines = ([] if self.quiet else list(alerts)) + _lines(report, self.quiet)
        return AfterRefresh(lines, _log(report), alerts, 1 if report.failed else 0)


def after_refresh(
    db: Database, settings: Settings, report: RefreshReport, *, notify: bool, quiet: bool
) -> AfterRefresh:
    """Alerts (when `notify` or TRACKER_NOTIFY), then what to print and log, in one step (for a
    refresh that has already released its lock: prefer `Followup`)."""
    return Followup(db, settings, notify=notify, quiet=quiet).after(report)
