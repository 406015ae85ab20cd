"""Fill a tracker database with years of evidence, as the tool itself would have stored it.

    TRACKER_DB=/tmp/big.db python tests/bench/fill.py --evidence 1000000 [--years 5] [--fresh]

The database is created (or opened) through `tracker.register.open_store()`, so its schema and the
built-in catalog are the real ones; then N evidence rows are written with raw sqlite3: one big
transaction, `journal_mode=MEMORY` and `synchronous=OFF` during the load, secondary indexes dropped
and rebuilt afterwards from their own SQL, rows generated in a forked child process (pickled over a
pipe) while this one inserts them with `executemany`, so that both cores work. The file is left in
WAL mode, as the tool leaves it. The rows have:

* dates spread over the last `--years` years, ids rising with time (as rows are appended);
* the catalog's commitments, weighted by how much news each one draws;
* titles and summaries in fa/az/en/ru from the benchmark's feed templates, and `matched_terms` and
  `score` computed by the real `tracker.matching.Matcher`; `title_key` by the real
  `normalize_title_key`, never the same key twice for one commitment within the syndication
  window (the tool would have stored a mention instead);
* sources named in the built-in sources file, with their language and side; canonical URLs
  unique per commitment (checked against `tracker.urls.canonical_url` on a sample);
* review states by age (recent: mostly pending; older: mostly rejected, some confirmed — with
  stances and, for progress, the milestones reached so far), reviewer, time and revision, and a
  `review_event` row per review when the schema has that table;
* syndication mentions for a few percent of rows, source health for every named source;
* status history replayed day by day with the real `tracker.status.evaluate`, then checked with
  `tracker.store.writes.sync_statuses`, which must find nothing left to record.

Prints what it wrote and how long it took.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sqlite3
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import feeds

# Share of evidence per commitment slug (unknown slugs from another catalog get the default).
WEIGHTS = {
    "tabriz-baku-flight": 25,
    "khodaafarin-crossing": 25,
    "new-access-point": 14,
    "tourist-tours": 10,
    "reconstruction-engineering": 10,
    "joint-industrial-park": 6,
    "health-tourism": 5,
    "tractor-dealership": 5,
}
DEFAULT_WEIGHT = 5
# Share of each commitment's milestones reached by the end of the period (milestones are reached
# at evenly spaced dates); the rest stay unreached.
REACHED = {
    "tabriz-baku-flight": 1.0,
    "khodaafarin-crossing": 0.6,
    "new-access-point": 0.34,
    "tourist-tours": 0.5,
}
SPEAKERS = {
    "en": ["", "Governor: ", "Minister: ", "Ambassador: ", "Official: ", "Deputy minister: ",
           "MP: ", "Spokesman: ", "Report: "],
    "fa": ["", "استاندار: ", "وزیر راه: ", "سفیر: ", "معاون وزیر: ", "نماینده مجلس: ",
           "سخنگوی دولت: ", "گزارش: ", "مدیرکل: "],
    "az": ["", "Nazir: ", "Səfir: ", "Deputat: ", "Rəsmi: ", "Sözçü: ", "Qubernator: ",
           "Hesabat: ", "Nazir müavini: "],
    "ru": ["", "Министр: ", "Посол: ", "Губернатор: ", "Депутат: ", "Официальный представитель: ",
           "Замминистра: ", "Источник: ", "Эксперт: "],
}  # fmt: skip
REVIEWERS = ["leila", "orxan", "sara", "farid"]
REJECT_REASONS = [
    None,
    None,
    "not about this commitment",
    "duplicate of an earlier report",
    "opinion piece, no new fact",
    "about the province, not the Republic of Azerbaijan",
]
MENTION_SHARE = 0.04
WINDOW = timedelta(days=4)  # a little more than ingest.SYNDICATION_WINDOW (3 days)
TS = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Entry:
    """One possible headline for a commitment, with what the matcher says about it."""

    language: str
    title: str
    key: str
    summary: str
    terms: str  # JSON, as SQLAlchemy's JSON type writes it
    score: float


@dataclass
class CommitmentInfo:
    id: int
    slug: str
    milestones: int
    announced_on: date
    deadline: date | None
    stall_days: int | None
    titles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str
    language: str
    country: str | None
    host: str | None  # for rss: the outlet's host


def _ts(value: datetime) -> str:
    return value.strftime(TS)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def build_pools(
    commitments: list[CommitmentInfo], matcher: Any, rng: random.Random
) -> dict[int, list[Entry]]:
    """Every headline the templates can make, grouped by the commitment the real matcher gives."""
    from scrapers.text import html_to_text
    from tracker.matching import normalize_title_key

    by_slug = {c.slug: c.id for c in commitments}
    pools: dict[int, list[Entry]] = {c.id: [] for c in commitments}
    for language in feeds.LANGUAGES:
        fill = feeds.FILL[language]
        for title_t, lead_t in feeds.RELATED[language]:
            names = _placeholders(title_t)
            ns = [str(n) for n in range(2, 10)] if "n" in names else [""]
            months = fill["month"] if "month" in names else [""]
            for n in ns:
                for month in months:
                    values = feeds._values(language, rng)
                    values.update({k: v for k, v in (("n", n), ("month", month)) if v})
                    base = title_t.format(**values)
                    lead = lead_t.format(**values)
                    fillers = rng.sample(feeds.FILLER[language], 2)
                    summary = html_to_text("".join(f"<p>{s}</p>" for s in [lead, *fillers]))
                    for speaker in SPEAKERS[language]:
                        title = speaker + base
                        for m in matcher.match(title + "\n" + summary, language):
                            cid = by_slug.get(m.slug)
                            if cid is None:
                                continue
                            pools[cid].append(
                                Entry(
                                    language,
                                    title,
                                    normalize_title_key(title),
                                    summary,
                                    json.dumps(list(m.terms)),
                                    m.score,
                                )
                            )
    for cid, pool in pools.items():
        if not pool:  # a commitment from another catalog: reuse any headline, no terms
            pools[cid] = [
                Entry(e.language, e.title, e.key, e.summary, "[]", 0.0)
                for p in pools.values()
                for e in p[:50]
            ]
        rng.shuffle(pools[cid])
    return pools


def _sources() -> tuple[dict[str, list[SourceInfo]], SourceInfo | None]:
    """Sources of the built-in file by language (rss and search kinds), and the flight source."""
    from tracker.sources import load_sources

    by_language: dict[str, list[SourceInfo]] = {}
    flights = None
    for s in load_sources(None).sources:
        host = urlsplit(s.url).hostname if s.url else None
        info = SourceInfo(s.name, s.kind, s.language, s.country, host)
        if s.kind == "opensky":
            flights = info
        elif s.kind in ("rss", "google_news", "gdelt"):
            by_language.setdefault(s.language, []).append(info)
            if s.kind != "rss":  # searches find more than one outlet's feed: weigh them more
                by_language[s.language] += [info] * 3
    return by_language, flights


def _outlets() -> dict[str, list[tuple[str, str, str | None]]]:
    """(publisher, host, side) per language, for search results and mentions."""
    result: dict[str, list[tuple[str, str, str | None]]] = {}
    for language, outlets in feeds.OUTLETS.items():
        result[language] = [
            (name, "www." + domain.split("/")[0], side if side in ("IR", "AZ") else None)
            for name, domain, side in outlets
        ]
    return result


def _canonical(host: str, path: str) -> tuple[str, str]:
    """(url, canonical url) for an https URL without query: what `canonical_url` returns."""
    url = f"https://{host}{path}"
    return url, f"https://{host.removeprefix('www.')}{path}"


def _milestone_dates(
    c: CommitmentInfo, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    share = REACHED.get(c.slug, 0.0)
    reached = round(share * c.milestones)
    begin = max(start, datetime.combine(c.announced_on, datetime.min.time()))
    span = (end - begin) / (reached + 1) if reached else timedelta(0)
    return [(begin + span * (k + 1) * 0.9, k + 1) for k in range(reached)]


def _table_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, bool, bool]]:
    return [
        (name, bool(notnull), bool(pk) or dflt is not None)
        for _, name, _, notnull, dflt, pk in conn.execute(f"PRAGMA table_info({table})")
    ]


def _model_default(model: Any, name: str) -> Any:
    info = model.model_fields.get(name)
    if info is None:
        return None
    value = info.default_factory() if info.default_factory is not None else info.default
    if type(value).__name__ == "PydanticUndefinedType":
        return None
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def insert(
    conn: sqlite3.Connection,
    table: str,
    model: Any,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> int:
    """executemany, filling columns this script does not know (a newer schema) with the model's
    default, and refusing when a NOT NULL column has none."""
    known = set(columns)
    extra: list[tuple[str, object]] = []
    for name, notnull, has_default in _table_columns(conn, table):
        if name in known or has_default:
            continue
        value = _model_default(model, name)
        if value is None and notnull:
            raise SystemExit(f"fill.py: cannot fill new NOT NULL column {table}.{name}; update it")
        extra.append((name, value))
    names = [*columns, *(n for n, _ in extra)]
    tail = tuple(v for _, v in extra)
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    before = conn.total_changes
    conn.executemany(sql, ((*row, *tail) for row in rows) if tail else rows)
    return conn.total_changes - before


EVIDENCE_COLUMNS = (
    "id",
    "commitment_id",
    "url",
    "canonical_url",
    "title",
    "summary",
    "title_key",
    "published_at",
    "source",
    "publisher",
    "language",
    "country",
    "stance",
    "milestone",
    "review",
    "review_reason",
    "reviewed_by",
    "reviewed_at",
    "cancels",
    "matched_terms",
    "score",
    "note",
    "created_at",
    "revision",
)


@dataclass
class Generated:
    """What `generate` collected besides the evidence rows it yields."""

    mentions: list[tuple[object, ...]] = field(default_factory=list)
    per_source: dict[str, int] = field(default_factory=dict)
    sample: list[tuple[object, ...]] = field(default_factory=list)  # for the URL check


def generate(
    n: int,
    commitments: list[CommitmentInfo],
    pools: dict[int, list[Entry]],
    first_id: int,
    start: datetime,
    now: datetime,
    rng: random.Random,
    out: Generated,
) -> Iterator[tuple[object, ...]]:
    """Yield N evidence rows in time order (so that ids rise with time); mentions, counts and a
    sample go to `out`. Streamed, so that a million rows never sit in memory at once."""
    from tracker.matching import normalize_title_key

    sources, flights = _sources()
    outlets = _outlets()
    by_side = {
        side: [o for lang in outlets for o in outlets[lang] if o[2] == side]
        for side in ("IR", "AZ")
    }
    span = (now - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(n))
    weights = [WEIGHTS.get(c.slug, DEFAULT_WEIGHT) for c in commitments]
    chosen = rng.choices(range(len(commitments)), weights=weights, k=n)
    milestone_times = {}
    for c in commitments:
        dates = _milestone_dates(c, start, now)
        milestone_times[c.id] = ([t for t, _ in dates], [m for _, m in dates])
    counters = [0] * len(commitments)
    last_used: dict[tuple[int, str], datetime] = {}
    suffixes: dict[tuple[int, str], int] = {}
    recent = now - timedelta(days=30)
    serial = 4_000_000
    random_ = rng.random
    every = max(1, n // 2000)
    minute = timedelta(minutes=1)
    hour = timedelta(hours=1)

    def pick(seq: Sequence[Any]) -> Any:
        return seq[int(random_() * len(seq))]

    for i in range(n):
        ci = chosen[i]
        c = commitments[ci]
        published = start + timedelta(seconds=int(offsets[i]))
        pool = pools[c.id]
        j = counters[ci]
        entry = pool[j % len(pool)]
        for step in range(1, 9):  # the same headline within the window would be a mention
            seen = last_used.get((c.id, entry.key))
            if seen is None or published - seen > WINDOW:
                break
            entry = pool[(j + step) % len(pool)]
        else:
            k = suffixes.get((c.id, entry.key), 1) + 1
            suffixes[(c.id, entry.key)] = k
            title = f"{entry.title} ({k})"
            entry = Entry(
                entry.language,
                title,
                normalize_title_key(title),
                entry.summary,
                entry.terms,
                entry.score,
            )
        counters[ci] = j + 1
        last_used[(c.id, entry.key)] = published
        serial += 1
        ev_id = first_id + i

        source = pick(sources.get(entry.language) or sources["en"])
        lag = minute * (3 + int(random_() * (90 if source.kind == "rss" else 2880)))
        created = min(published + lag, now)
        if source.kind == "rss":
            url, canonical = _canonical(
                source.host or "example.org", f"/news/{serial}/{entry.language}"
            )
            publisher = None
            country = source.country
        else:
            publisher, host, country = pick(outlets[entry.language])
            if source.kind == "google_news":
                canonical = f"https://news.google.com/rss/articles/CBMi{serial:x}{ev_id:x}"
                url = canonical + "?oc=5"  # a tracking parameter canonical_url drops
            else:
                url, canonical = _canonical(host, f"/{published:%Y/%m/%d}/{serial}")
        title, summary, language = entry.title, entry.summary, entry.language
        terms, score, key = entry.terms, entry.score, entry.key

        # Review, by age: recent items mostly wait; older ones were mostly rejected.
        r = random_()
        if published >= recent:
            review = "pending" if r < 0.9 else ("rejected" if r < 0.98 else "confirmed")
        else:
            review = "rejected" if r < 0.85 else ("confirmed" if r < 0.92 else "pending")
        stance, milestone, reason, by, at, revision = "neutral", None, None, None, None, 0
        source_name = source.name
        times, positions = milestone_times[c.id]
        reached = bisect.bisect_right(times, published)
        if review != "pending":
            by = pick(REVIEWERS)
            at = min(created + hour * (1 + int(random_() * 96)), now)
            revision = 1
            if review == "rejected":
                reason = pick(REJECT_REASONS)
            else:
                s = random_()
                stance = "progress" if s < 0.6 else ("neutral" if s < 0.9 else "setback")
                if stance == "progress" and reached and random_() < 0.3:
                    milestone = positions[reached - 1]
        if (
            flights is not None
            and c.slug == "tabriz-baku-flight"
            and reached >= 4
            and random_() < 0.02
        ):
            # A flight OpenSky saw: trusted structured evidence, confirmed on arrival.
            icao = f"{0x73_0000 + serial % 0xFFFF:06x}"
            stamp = int(published.replace(tzinfo=UTC).timestamp())
            url = canonical = (
                f"https://opensky-network.org/aircraft-profile?icao24={icao}&time={stamp}"
            )
            callsign = f"AHY{serial % 1000}"
            title = f"Flight {callsign} TBZ→GYD observed {published:%Y-%m-%d} (icao24 {icao})"
            summary = f"OpenSky saw {callsign} (icao24 {icao}) leave TBZ at {published:%H:%M} UTC."
            language, terms, score, publisher = "en", "[]", 0.0, None
            key = normalize_title_key(title)
            source_name, country = flights.name, flights.country
            review, stance, milestone = "confirmed", "progress", positions[reached - 1]
            by, at, reason, revision = flights.name, created, None, 0
        out.per_source[source_name] = out.per_source.get(source_name, 0) + 1
        row = (
            ev_id,
            c.id,
            url,
            canonical,
            title,
            summary,
            key,
            published.isoformat(" ", "microseconds"),
            source_name,
            publisher,
            language,
            country,
            stance,
            milestone,
            review,
            reason,
            by,
            at.isoformat(" ", "microseconds") if at else None,
            0,
            terms,
            score,
            None,
            created.isoformat(" ", "microseconds"),
            revision,
        )
        if i % every == 0:
            out.sample.append(row)
        if source_name == source.name and random_() < MENTION_SHARE:
            other_side = {"IR": "AZ", "AZ": "IR"}.get(country or "", "IR")
            name, host, side = pick(by_side[other_side])
            m_url, m_canonical = _canonical(host, f"/news/{serial}-m")
            m_source = pick(sources.get(entry.language) or sources["en"]).name
            m_at = min(published + hour * (1 + int(random_() * 60)), now)
            out.mentions.append((ev_id, m_url, m_canonical, m_source, name, side, _ts(m_at)))
        yield row


def _in_child(
    make: Callable[[Generated], Iterator[tuple[object, ...]]], out: Generated, chunk: int = 20_000
) -> Iterator[tuple[object, ...]]:
    """Run the generator in a forked process and yield its rows here, so that generating (pure
    Python) and inserting (mostly SQLite) use both cores; `out` is filled in at the end."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def produce() -> None:
        mine = Generated()
        batch: list[tuple[object, ...]] = []
        for row in make(mine):
            batch.append(row)
            if len(batch) == chunk:
                sender.send(batch)
                batch = []
        sender.send(batch)
        sender.send(mine)
        sender.close()

    child = context.Process(target=produce, daemon=True)
    child.start()
    sender.close()
    try:
        while True:
            try:
                item = receiver.recv()
            except EOFError:
                raise SystemExit("fill.py: the row generator died; see its error above") from None
            if isinstance(item, Generated):
                out.mentions, out.per_source, out.sample = (
                    item.mentions,
                    item.per_source,
                    item.sample,
                )
                return
            yield from item
    finally:
        child.join(timeout=5)


# A person's review as `store.review` records it: the decision, and the milestone and stance only
# when they were given (a confirmation here always gives its stance).
REVIEW_EVENTS_SQL = """
INSERT INTO review_event (evidence_id, at, actor, previous, decision, milestone, stance, reason)
SELECT id, reviewed_at, reviewed_by, 'pending', review, milestone,
       CASE WHEN review = 'confirmed' THEN stance END, review_reason
FROM evidence WHERE id >= ? AND revision = 1
"""


def replay_history(
    conn: sqlite3.Connection, commitments: list[CommitmentInfo], start: date, today: date
) -> list[tuple[object, ...]]:
    """Status history, one check a day, with the real engine over the evidence of each day."""
    from tracker.status import CommitmentFacts, Digest, Reached, evaluate

    rows = conn.execute(
        "SELECT commitment_id, id, published_at, review, stance, milestone, cancels "
        "FROM evidence WHERE review <> 'rejected' ORDER BY published_at, id"
    ).fetchall()
    by_commitment: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_commitment.setdefault(row[0], []).append(row)
    history: list[tuple[object, ...]] = []
    first_day = min(start, *(c.announced_on for c in commitments))
    for c in commitments:
        facts = CommitmentFacts(
            slug=c.slug,
            announced_on=c.announced_on,
            milestones=c.titles,
            deadline=c.deadline,
            stall_days=c.stall_days,
        )
        events = by_commitment.get(c.id, [])
        days = [datetime.fromisoformat(e[2]).date() for e in events]
        reached: dict[int, Reached] = {}
        last_progress = last_setback = cancelled = None
        pending = confirmed = 0
        last_evidence: date | None = None
        k = 0
        previous: str | None = None
        day = max(first_day, c.announced_on)
        while day <= today:
            # Evidence published before the end of `day` counts (as at a refresh that evening).
            upto = bisect.bisect_right(days, day)
            while k < upto:
                _, ev_id, _, review, stance, ms, cancels = events[k]
                on = days[k]
                last_evidence = on if last_evidence is None or on > last_evidence else last_evidence
                if review == "pending":
                    pending += 1
                else:
                    confirmed += 1
                    if ms is not None and stance != "setback" and ms not in reached:
                        reached[ms] = Reached(ms, on, ev_id)
                    if stance == "progress":
                        last_progress = (on, ev_id)
                    elif stance == "setback":
                        last_setback = (on, ev_id)
                    if cancels and cancelled is None:
                        cancelled = (on, ev_id)
                k += 1
            digest = Digest(
                reached=dict(reached),
                last_progress=last_progress,
                last_setback=last_setback,
                cancelled=cancelled,
                pending=pending,
                last_evidence=last_evidence,
                confirmed=confirmed,
            )
            verdict = evaluate(facts, digest, day)
            if verdict.status != previous:
                at = datetime.combine(day, datetime.min.time()) + timedelta(hours=20)
                history.append(
                    (
                        c.id,
                        _ts(at),
                        previous,
                        verdict.status,
                        "computed",
                        "refresh",
                        verdict.explanation,
                    )
                )
                previous = verdict.status
            day += timedelta(days=1)
    return history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evidence", type=int, required=True, help="evidence rows to add")
    parser.add_argument("--db", help="database path (default: $TRACKER_DB)")
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="delete the database file first")
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="generate rows in this process (default: a forked child, to use a second core)",
    )
    args = parser.parse_args(argv)
    target = args.db or os.environ.get("TRACKER_DB")
    if not target or "://" in target:
        parser.error("give a SQLite file path with --db or TRACKER_DB")
    path = Path(target).expanduser().absolute()
    if args.fresh:
        for suffix in ("", "-wal", "-shm", ".refresh.lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    started = time.perf_counter()
    from tracker.dates import utcnow
    from tracker.matching import Matcher, rules_from_mapping
    from tracker.register import open_store
    from tracker.settings import Settings
    from tracker.store import reads, writes
    from tracker.store import schema as models

    settings = Settings.from_env().with_db(str(path))
    db = open_store(settings)
    with db.read() as rconn:
        rows = reads.commitments(rconn)
        titles = reads.milestones(rconn)
        matches = reads.match_set(rconn)
        matcher = Matcher(rules_from_mapping(slug, r) for slug, r in matches.rules.items())
        commitments = [
            CommitmentInfo(
                id=c.id,
                slug=c.slug,
                milestones=len(titles.get(c.id, [])),
                announced_on=c.announced_on,
                deadline=c.deadline,
                stall_days=c.stall_days,
                titles=titles.get(c.id, []),
            )
            for c in rows
        ]
    db.dispose()
    today = settings.today()
    now = min(utcnow(), datetime.combine(today, datetime.max.time()).replace(microsecond=0))
    start = now - timedelta(days=round(365.25 * args.years))
    rng = random.Random(args.seed)
    pools = build_pools(commitments, matcher, rng)
    prepared = time.perf_counter()

    conn = sqlite3.connect(path, isolation_level=None)
    # One writer, nobody reading: no WAL copy of every page, no fsync, sorter threads for indexes.
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA threads = 2")
    conn.execute("PRAGMA cache_size = -500000")
    conn.execute("PRAGMA temp_store = MEMORY")
    scraped = conn.execute(
        "SELECT COUNT(*) FROM evidence WHERE source NOT IN ('curated', 'manual')"
    ).fetchone()[0]
    if scraped:
        raise SystemExit(f"fill.py: {path} already holds {scraped} scraped evidence; use --fresh")
    first_id = (conn.execute("SELECT MAX(id) FROM evidence").fetchone()[0] or 0) + 1
    data = Generated()
    rows_iter = (
        _in_child(
            lambda out: generate(args.evidence, commitments, pools, first_id, start, now, rng, out),
            data,
        )
        if args.evidence >= 50_000 and not args.one_process
        else generate(args.evidence, commitments, pools, first_id, start, now, rng, data)
    )

    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('evidence', 'mention', 'review_event', 'status_history')"
    ).fetchall()
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    n_evidence = insert(conn, "evidence", models.Evidence, EVIDENCE_COLUMNS, rows_iter)
    generated = time.perf_counter()
    n_mentions = insert(
        conn,
        "mention",
        models.Mention,
        ("evidence_id", "url", "canonical_url", "source", "publisher", "country", "published_at"),
        data.mentions,
    )
    n_reviews = 0
    if "review_event" in tables and hasattr(models, "ReviewEvent"):
        n_reviews = conn.execute(REVIEW_EVENTS_SQL, (first_id,)).rowcount
    # Source health as a working installation has it: every named source recently fetched.
    from tracker.sources import load_sources

    health = []
    for s in load_sources(None).sources:
        last = now - timedelta(minutes=rng.randint(5, 50))
        every = s.every or timedelta(hours=1)
        health.append(
            (
                s.name,
                s.kind,
                s.country,
                _ts(last),
                _ts(last),
                "ok" if s.enabled else "disabled",
                0,
                rng.randint(20, 100),
                0,
                data.per_source.get(s.name, 0),
                _ts(last + every),
            )
        )
    conn.execute("DELETE FROM source_health")
    insert(
        conn,
        "source_health",
        models.SourceHealth,
        (
            "name",
            "kind",
            "country",
            "last_attempt",
            "last_success",
            "last_state",
            "consecutive_failures",
            "items_seen",
            "new_evidence",
            "total_evidence",
            "next_due",
        ),
        health,
    )
    inserted = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    indexed = time.perf_counter()
    history = replay_history(conn, commitments, start.date(), today)
    conn.execute("DELETE FROM status_history")  # the seed's one row each, replaced by the replay
    n_history = insert(
        conn,
        "status_history",
        models.StatusHistory,
        ("commitment_id", "at", "old_status", "new_status", "kind", "actor", "reason"),
        history,
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")  # as tracker.db leaves it
    conn.close()
    committed = time.perf_counter()

    # Checks with the tool's own code: URLs canonical, nothing left for the engine to record.
    from tracker.urls import canonical_url

    for row in data.sample:
        assert canonical_url(str(row[2])) == row[3], (row[2], row[3])
    db = open_store(settings)
    with db.write() as wconn:
        late = writes.sync_statuses(wconn, today, "refresh", utcnow())
    db.dispose()
    finished = time.perf_counter()
    size = path.stat().st_size / 1024 / 1024
    print(
        f"{path}: {n_evidence:,} evidence, {n_mentions:,} mentions, {n_reviews:,} review events, "
        f"{n_history:,} status-history rows, {len(health)} source-health rows; {size:,.0f} MB"
    )
    print(
        f"time {finished - started:.1f} s (prepare {prepared - started:.1f}, "
        f"generate+insert evidence {generated - prepared:.1f}, "
        f"other rows {inserted - generated:.1f}, "
        f"index {indexed - inserted:.1f}, history+commit {committed - indexed:.1f}, "
        f"checks {finished - committed:.1f})"
    )
    if late:
        print(
            f"note: sync_statuses recorded {len(late)} change(s) the replay had not",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
