"""Alert mail after a refresh: a commitment's status changed, a source started failing or recovered.

Off unless asked for (`tracker refresh --notify`, TRACKER_NOTIFY=1, `tracker daemon --notify`).
Each event has a key in the Notification table and goes out once:

- `status:<slug>:<history id>` for a status change made by a refresh in the last ALERT_WINDOW;
- `source-failing:<name>:<failing_since>` for a source at or past FAILURE_THRESHOLD failures;
- `source-recovered:<name>:<last_success>` for a source that worked again after failing.

A key is recorded only after the mail went out, so an event whose mail failed is sent by a later
refresh (status changes while still in the window, failing sources while they still fail).
Nothing here raises: the refresh's exit code stays about its sources, and a problem becomes one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from tracker.errors import TrackerError

if TYPE_CHECKING:
    from tracker.refresh import RefreshReport
    from tracker.settings import Settings
    from tracker.store import Database

ALERT_WINDOW = timedelta(days=3)
ALERT_RECIPIENTS = "TRACKER_ALERT_TO"  # falls back to TRACKER_MAIL_TO


@dataclass(frozen=True)
class Event:
    key: str
    kind: str  # status | source-failing | source-recovered
    title: str  # a short line, used as the subject when it is the only event
    body: str


def _stamp(value: datetime) -> str:
    # Full precision: two failure spells of one source must never share a key.
    return value.isoformat()


def collect_events(db: Database, report: RefreshReport, now: datetime) -> list[Event]:
    """Events this refresh (or a recent one whose mail failed) produced, not yet sent."""
    from tracker.outputs.escape import terminal
    from tracker.refresh import FAILURE_THRESHOLD
    from tracker.store import reads

    events: list[Event] = []
    with db.read() as conn:
        recent = reads.history_between(
            conn, now - ALERT_WINDOW, now + ALERT_WINDOW, kind="computed", actor="refresh"
        )
        health = reads.health(conn, [r.source.name for r in report.results])
        for h, slug, title in recent:
            old, new = h.old_status, h.new_status
            if old == new:
                continue
            events.append(
                Event(
                    key=f"status:{slug}:{h.id}",
                    kind="status",
                    title=f"{slug}: {old or '—'} → {new}",
                    body=(
                        f"{slug} ({terminal(title)}): {old or '—'} → {new} "
                        f"on {h.at:%Y-%m-%d %H:%M} UTC\n  why: {terminal(h.reason)}"
                    ),
                )
            )
        for result in report.results:
            s = health.get(result.source.name)
            if s is None:
                continue
            name = result.source.name
            if s.consecutive_failures >= FAILURE_THRESHOLD:
                since = s.failing_since
                error = terminal(s.last_error)
                events.append(
                    Event(
                        key=f"source-failing:{name}:{_stamp(since) if since else 'unknown'}",
                        kind="source-failing",
                        title=f"source {name} failing",
                        body=(
                            f"source {name} ({s.kind}) has failed {s.consecutive_failures} "
                            "times in a row"
                            + (f" since {since:%Y-%m-%d %H:%M} UTC" if since else "")
                            + (f"\n  last error: {error}" if error else "")
                        ),
                    )
                )
            elif result.recovered and s.last_success is not None:
                ok = s.last_success
                events.append(
                    Event(
                        key=f"source-recovered:{name}:{_stamp(ok)}",
                        kind="source-recovered",
                        title=f"source {name} works again",
                        body=(
                            f"source {name} ({s.kind}) works again "
                            f"(success at {ok:%Y-%m-%d %H:%M} UTC)"
                        ),
                    )
                )
        done = reads.sent_keys(conn, [e.key for e in events])
    return [e for e in events if e.key not in done]


def _counted(events: list[Event]) -> str:
    labels = {
        "status": ("status change", "status changes"),
        "source-failing": ("source failing", "sources failing"),
        "source-recovered": ("source recovered", "sources recovered"),
    }
    parts = []
    for kind, (one, many) in labels.items():
        n = sum(1 for e in events if e.kind == kind)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def compose(events: list[Event]) -> tuple[str, str]:
    """Subject and body of one alert mail covering `events`."""
    if len(events) == 1:
        subject = f"tracker alert: {events[0].title}"
    else:
        subject = f"tracker alert: {_counted(events)}"
    body = "\n\n".join(e.body for e in events)
    body += (
        "\n\n-- \nSent by tracker after a refresh. Each event is reported once; "
        "see `tracker status` and `tracker sources` for the whole picture.\n"
    )
    return subject, body


def send_refresh_alerts(
    db: Database, settings: Settings, report: RefreshReport, now: datetime | None = None
) -> list[str]:
    """Mail the refresh's new events in one message; returns lines for the person running it."""
    from tracker.dates import utcnow

    now = now or utcnow()
    try:
        events = collect_events(db, report, now)
        if not events:
            return []
        from tracker import mail

        smtp = mail.load_settings(settings.env, recipients_variable=ALERT_RECIPIENTS)
        subject, body = compose(events)
        mail.send(smtp, mail.text_message(smtp, subject, body))
    except TrackerError as exc:
        return [f"alerts not sent: {exc}"]
    except Exception as exc:  # an alert must never break the refresh that triggered it
        return [f"alerts not sent: unexpected {type(exc).__name__}: {exc}"]
    to = ", ".join(a.addr for a in smtp.recipients)
    line = f"alert sent to {to}: {_counted(events)}"
    try:
        mail.record_sent(db, [e.key for e in events], subject)
    except Exception as exc:
        return [f"{line}; but recording it failed ({type(exc).__name__}), so it may be sent again"]
    return [line]
