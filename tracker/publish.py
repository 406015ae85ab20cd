"""`tracker publish`: the register as a static web site in one folder.

Gathers everything in one read transaction (`tracker.store.reads`, the weekly reports through
`tracker.reporting.build`), renders it (`tracker.outputs.site`), and writes each file atomically
(`tracker.outputs.files`), leaving a file that says the same as before untouched, so a static host
or `rsync` sees only what changed. `data.json` is `tracker export --format json`.

The folder is ours only if it holds our marker file (`.tracker-publish`, which also lists the files
we wrote): a new or empty folder is claimed, any other non-empty folder is refused, and a rebuild
removes only files that an earlier build wrote there and this one did not (the page of a
commitment that no longer exists, say). Nothing else in the folder is ever touched.

`publish()` is what the CLI, the daemon and a cron line call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath

from tracker.dates import utcnow
from tracker.errors import EnvironmentProblem, UsageError
from tracker.outputs.files import write_atomic, write_unless_same
from tracker.outputs.site import GENERATED_PREFIX, CommitmentPage, SiteData, render_site
from tracker.outputs.weekly import WeeklyReport
from tracker.settings import Settings
from tracker.store import Conn, Database, EvidenceRecord, HistoryRecord, reads
from tracker.weeks import IsoWeek

__all__ = ["MARKER", "PENDING_LIMIT", "PublishResult", "check_folder", "gather", "publish"]

MARKER = ".tracker-publish"
LOCK = ".tracker-publish.lock"
MADE_BY = "tracker publish"
PENDING_LIMIT = 200  # evidence waiting for review listed per commitment with --include-pending
LOCK_WAIT = 60.0
# Lines that may differ between two builds of the same data: index.html's "Generated at" line and
# the export's generated_at. Any other file must match byte for byte to be left as it is.
VOLATILE = {"index.html": GENERATED_PREFIX, "data.json": '  "generated_at": '}
_NEVER = "\x00"


@dataclass(frozen=True)
class PublishResult:
    out_dir: Path
    written: tuple[str, ...]  # files (re)written, relative to out_dir
    unchanged: tuple[str, ...]  # files that already said the same
    removed: tuple[str, ...]  # files of an earlier build that this one no longer has
    commitments: int
    weeks: int
    seconds: float

    @property
    def summary(self) -> str:
        return (
            f"published {self.commitments} commitments and {self.weeks} weekly reports to "
            f"{self.out_dir}: {len(self.written)} files written, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed ({self.seconds:.1f} s)"
        )

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


# ---------------------------------------------------------------- gathering


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("tracker")
    except Exception:  # running from a checkout that was never installed
        return "unknown"


def _week_range(first: date | None, today: date) -> list[IsoWeek]:
    if first is None:
        return []
    week, last = IsoWeek.of(first), IsoWeek.last_complete(today)
    weeks = []
    while week <= last:
        weeks.append(week)
        week = IsoWeek.of(week.end + timedelta(days=1))
    return weeks


def _first_day(pages: Sequence[CommitmentPage], history: Sequence[HistoryRecord]) -> date | None:
    """The first week worth a report: the first evidence or history, but not before the first
    commitment was announced (a report lists only the commitments announced by its week's end)."""
    if not pages:
        return None
    days = [e.published_at.date() for p in pages for e in p.evidence]
    days += [e.created_at.date() for p in pages for e in p.evidence]
    days += [h.at.date() for h in history]
    announced = min(p.row.commitment.announced_on for p in pages)
    return max(min(days), announced) if days else announced


def _shown(
    evidence: Sequence[EvidenceRecord], include_pending: bool
) -> tuple[list[EvidenceRecord], int]:
    """What a page lists (newest first): confirmed evidence, and with `include_pending` the newest
    PENDING_LIMIT waiting for review; and how many waiting items it leaves out."""
    confirmed = [e for e in evidence if e.review == "confirmed"]
    waiting = [e for e in evidence if e.review == "pending"]
    if not include_pending:
        return confirmed, len(waiting)
    listed = {e.id for e in confirmed} | {e.id for e in waiting[:PENDING_LIMIT]}
    return [e for e in evidence if e.id in listed], max(0, len(waiting) - PENDING_LIMIT)


def _pages(conn: Conn, today: date, include_pending: bool) -> list[CommitmentPage]:
    agreements = {a.id: a for a in reads.agreements(conn)}
    history: dict[int, list[HistoryRecord]] = {}
    for h in reads.all_history(conn):
        history.setdefault(h.commitment_id, []).append(h)
    pages = []
    for row in reads.rows(conn, today):
        c = row.commitment
        shown, hidden = _shown(reads.evidence_of(conn, c.id), include_pending)
        pages.append(
            CommitmentPage(
                row=row,
                agreement=agreements[c.agreement_id],
                history=history.get(c.id, []),
                evidence=shown,
                pending_hidden=hidden,
            )
        )
    mentions = reads.mentions_of(conn, [e.id for p in pages for e in p.evidence])
    return [
        CommitmentPage(
            row=p.row,
            agreement=p.agreement,
            history=p.history,
            evidence=p.evidence,
            mentions={e.id: mentions[e.id] for e in p.evidence if e.id in mentions},
            pending_hidden=p.pending_hidden,
        )
        for p in pages
    ]


def gather(
    db: Database, settings: Settings, *, today: date, now: datetime, include_pending: bool
) -> SiteData:
    """Everything the site shows, read in one transaction."""
    from tracker import reporting

    names = reporting.configured_sources(settings.sources)
    with db.read(snapshot=True) as conn:
        pages = _pages(conn, today, include_pending)
        weeks: list[WeeklyReport] = [
            reporting.build(
                conn,
                week,
                today=today,
                generated_at=now,
                pending_limit=reporting.DEFAULT_PENDING_LIMIT if include_pending else 0,
                sources=names,
            )
            for week in _week_range(_first_day(pages, reads.all_history(conn)), today)
        ]
        return SiteData(
            today=today,
            generated_at=now,
            version=_version(),
            agreements=reads.agreements(conn),
            pages=pages,
            weeks=weeks,
            include_pending=include_pending,
            pending_total=reads.pending_count(conn),
        )


# ---------------------------------------------------------------- the folder


def _read_marker(out: Path) -> list[str] | None:
    """The files an earlier build wrote, or None when the folder is not ours."""
    try:
        data = json.loads((out / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("made_by") != MADE_BY:
        return None
    files = data.get("files")
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


def _marker_bytes(files: Sequence[str]) -> bytes:
    data = {"made_by": MADE_BY, "format": 1, "files": sorted(files)}
    return (json.dumps(data, indent=1) + "\n").encode("utf-8")


def check_folder(out_dir: Path) -> list[str] | None:
    """Refuse a folder we may not write: a file, or a non-empty folder without our marker. The
    files an earlier build wrote there, or None for a new or empty folder. Changes nothing."""
    out = out_dir.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder")
    try:
        if not out.is_dir():
            return None
        previous = _read_marker(out)
        if previous is None and any(out.iterdir()):
            raise UsageError(
                f"--out {out_dir} is not empty and was not made by tracker publish "
                f"(no {MARKER} file); choose a new or empty folder"
            )
    except OSError as exc:
        raise EnvironmentProblem(f"cannot use {out}: {exc.strerror or exc}") from exc
    return previous


def _claim(out_dir: Path) -> tuple[Path, list[str]]:
    """The folder, made ours if it is new or empty; the files an earlier build wrote there."""
    out = out_dir.expanduser().absolute()
    previous = check_folder(out_dir)
    if previous is not None:
        return out, previous
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {out}: {exc.strerror or exc}") from exc
    write_atomic(out / MARKER, _marker_bytes([]))
    return out, []


@contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One build at a time per folder (the daemon's refresh and report jobs, or cron and a person)."""
    import fcntl

    try:
        handle = (out / LOCK).open("a+")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot lock {out}: {exc.strerror or exc}") from exc
    with handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EnvironmentProblem(
                        f"another tracker publish is writing {out}; waited {LOCK_WAIT:g} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale(out: Path, stale: set[str]) -> list[str]:
    """Delete files an earlier build wrote and this one did not; only plain files inside `out`."""
    root = out.resolve()
    removed = []
    for rel in sorted(stale):
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts or parts[0].startswith("."):
            continue
        target = out.joinpath(*parts)
        try:
            if not target.parent.resolve().is_relative_to(root):
                continue
            if target.is_symlink() or not target.is_file():
                continue
            target.unlink()
        except OSError:
            continue
        removed.append(rel)
    return removed


def publish(
    db: Database,
    settings: Settings,
    out_dir: Path,
    *,
    include_pending: bool = False,
    now: datetime | None = None,
) -> PublishResult:
    """Build the site into `out_dir` (see the module's docstring)."""
    from tracker.register import export_json

    started = time.monotonic()
    today = settings.today()
    out, previous = _claim(out_dir)
    with _lock(out):
        site = gather(
            db, settings, today=today, now=now or utcnow(), include_pending=include_pending
        )
        files = [*render_site(site), ("data.json", export_json(db, today))]
        written: list[str] = []
        unchanged: list[str] = []
        for rel, text in files:
            target = out.joinpath(*PurePosixPath(rel).parts)
            result = write_unless_same(target, text, VOLATILE.get(rel, _NEVER))
            (unchanged if result.reused else written).append(rel)
        names = [rel for rel, _ in files]
        write_atomic(out / MARKER, _marker_bytes(names))
        removed = _remove_stale(out, set(previous) - set(names))
    return PublishResult(
        out_dir=out,
        written=tuple(written),
        unchanged=tuple(unchanged),
        removed=tuple(removed),
        commitments=len(site.pages),
        weeks=len(site.weeks),
        seconds=time.monotonic() - started,
    )
