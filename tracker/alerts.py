"""Alert mail after a refresh: a commitment's status changed, a source started failing or recovered.

Off unless asked for (`tracker refresh --notify`, TRACKER_NOTIFY=1, `tracker daemon --notify`).
Each event has a key in the Notification table and goes out once:

- `status:<slug>:<history id>` for a status change made by a refresh in the last ALERT_WINDOW;
- `source-failing:<name>:<failing_since>` for a source at or past FAILURE_THRESHOLD failures;
- `source-recovered:<name>:<last_success>` for a source that worked again after failing.

The keys are claimed before the mail is sent (`tracker.mail.claim`), inside the refresh lock (the
refresh's `while_locked` step), so a refresh that waited for the lock finds them taken. An event
whose mail failed keeps its title and body in its row and goes out with a later refresh while it
is within ALERT_WINDOW — also a "works again" event, which no later refresh would see afresh. An
event whose fate is unknown (the mail may have gone) is said once and never sent again.
Nothing here raises: the refresh's exit code stays about its sources, and a problem becomes one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tracker.errors import TrackerError

if TYPE_CHECKING:
    from tracker.refresh import RefreshReport
    from tracker.settings import Settings
    from tracker.store import Database
    from tracker.store.notifications import Notice

ALERT_WINDOW = timedelta(days=3)
ALERT_RECIPIENTS = "TRACKER_ALERT_TO"  # falls back to TRACKER_MAIL_TO
KINDS = ("status", "source-failing", "source-recovered")


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
    """Events this refresh (or a recent one) produced: not yet sent, and not claimed either."""
    from tracker.store import notifications

    events = _derive(db, report, now)
    with db.read() as conn:
        known = notifications.find_many(conn, [e.key for e in events])
    return [e for e in events if e.key not in known]


def _derive(db: Database, report: RefreshReport, now: datetime) -> list[Event]:
    """Every event the database and this refresh's results show, sent or not."""
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
    return events


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
    """Mail the refresh's new events, and earlier ones whose mail failed, in one message; returns
    lines for the person running it. Run it while the refresh still holds its lock."""
    from tracker.dates import utcnow

    now = now or utcnow()
    try:
        return _send(db, settings, report, now)
    except TrackerError as exc:
        return [f"alerts not sent: {exc}"]
    except Exception as exc:  # an alert must never break the refresh that triggered it
        return [f"alerts not sent: unexpected {type(exc).__name__}: {exc}"]


def _send(db: Database, settings: Settings, report: RefreshReport, now: datetime) -> list[str]:
    from tracker import mail
    from tracker.store import notifications

    fresh = _derive(db, report, now)
    with db.read() as conn:
        known = notifications.find_many(conn, [e.key for e in fresh])
        retry = notifications.pending(
            conn, [f"{kind}:" for kind in KINDS], since=now - ALERT_WINDOW
        )
    candidates: dict[str, Event] = {}
    for notice in retry:  # failed earlier: the stored event, unless this refresh has it afresh
        stored = _event(notice.payload)
        if stored is not None:
            candidates[notice.key] = stored
    for event in fresh:
        row = known.get(event.key)
        if row is None or row.state == notifications.FAILED:
            candidates[event.key] = event
    lines = _unknown_lines(db, [n for n in known.values() if mail.unknown(n, now)])
    if not candidates:
        return lines
    events = sorted(candidates.values(), key=lambda e: (KINDS.index(e.kind), e.key))
    won, _ = mail.claim(
        db,
        [e.key for e in events],
        payloads={e.key: asdict(e) for e in events},
        now=now,
    )
    events = [e for e in events if e.key in set(won)]
    if not events:
        return lines
    keys = [e.key for e in events]
    subject, body = compose(events)
    try:
        smtp = mail.load_settings(settings.env, recipients_variable=ALERT_RECIPIENTS)
    except TrackerError as exc:
        from tracker.dates import utcnow

        with db.write(guarded=False) as conn:
            notifications.mark_failed(conn, keys, by=mail.claimer(), now=utcnow(), error=str(exc))
        mail.release(keys)
        return [*lines, f"alerts not sent: {exc}"]
    message = mail.text_message(
        smtp, subject, body, mid=mail.message_id("alert", sorted(keys), smtp)
    )
    try:
        mail.send_claimed(db, smtp, message, keys, what="alert", detail=subject)
    except TrackerError as exc:
        return [*lines, f"alerts not sent: {exc}"]
    to = ", ".join(a.addr for a in smtp.recipients)
    return [*lines, f"alert sent to {to}: {_counted(events)}"]


def _event(payload: dict[str, Any]) -> Event | None:
    try:
        event = Event(**{k: str(payload[k]) for k in ("key", "kind", "title", "body")})
    except (KeyError, TypeError):
        return None
    return event if event.kind in KINDS else None


def _unknown_lines(db: Database, unknown: list[Notice]) -> list[str]:
    """Events whose mail may or may not have gone out: said once, never sent again."""
    from tracker.store import notifications

    unsaid = [n for n in unknown if not n.payload.get("unknown_said")]
    if not unsaid:
        return []
    with db.write(guarded=False) as conn:
        notifications.note(conn, [n.key for n in unsaid], unknown_said=True)
    first = min((n.claimed_at for n in unsaid if n.claimed_at), default=None)
    when = f" (claimed at {first:%Y-%m-%d %H:%M} UTC)" if first else ""
    return [
        f"alerts: sent state unknown for {len(unsaid)} event(s){when}: the mail may have gone "
        "out, so they are not sent again"
    ]
