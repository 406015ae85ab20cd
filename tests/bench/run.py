"""Measure what `tracker` costs its users, and compare it with the targets of the issue.

    .venv/bin/python tests/bench/run.py [--quick] [--repeat 5] [--out tests/bench/results.json]
        [--only refresh,matching,views,startup] [--tracker "python -m tracker"] [--workdir DIR]

Every command is the real CLI in a subprocess, timed by the wall clock from spawn to exit as a
user would feel it; each measurement runs several times and the median is reported. Prints a
table (measurement, value, target, met?) and the machine, and writes everything as JSON.

What it runs (sizes in brackets are `--quick`'s):

* `tests/bench/feeds.py` in its own process: 200 [50] RSS feeds × 50 [20] items, each feed on its
  own loopback address (127.0.0.2 …), so a refresh meets 200 hosts as in production and runs
  with the production HTTP limits (no TRACKER_HTTP_* override: 2 per host, 10 in all).
* cold refresh — `tracker refresh --sources FILE --force` against a database that holds only the
  schema and the built-in catalog (made by `tracker.register.open_store()` and copied before each
  run), alternating with urlwatch (its own virtualenv, `urls.yaml` of the same URLs, its own
  cache and config, cache deleted before each run); reported as a ratio (target ≤ 1.0×).
* warm refresh — the same command again over the database of a cold run: every feed answers 304
  (target ≤ 0.5× urlwatch on the same 304s). The feed server's request counts are checked after
  every run (all 200 / all 304).
* peak memory — the largest `ru_maxrss` of the refresh processes (read with `os.wait4`; < 150 MB).
* import time of the refresh path — `python -X importtime -m tracker refresh --quiet` over the
  warm database, self times summed from the first tracker module on (≤ 150 ms), and which of
  SQLAlchemy, SQLModel, pydantic and rich it loaded (none; httpx is the HTTP client).
* 1,000 more commitments — `tests/bench/catalog.py` writes another team's catalog, loaded with
  `tracker catalog load`: the cold refresh again (≤ 1.5×), `tracker status` and `tracker report
  weekly` over the refreshed databases with and without it (≤ 3×).
* scale — 2,000 [500] feeds on as many loopback hosts, cold (≤ 10× the 200-feed run, < 300 MB).
* matching throughput — `Matcher.match` over the items of the same feeds (parsed by the real
  scraper), in a child process pinned to one core, against one pass of one compiled regular
  expression of every catalog term over the same text already normalised.
* `tracker status` and `tracker report weekly` at 1,000 and 1,000,000 [100,000] evidence rows,
  databases filled by `tests/bench/fill.py` (its time is reported too).
* start-up — `tracker --help`, and `tracker status` on the small database; plus
  `python -X importtime` of both, to name the heavy imports.

This process imports nothing of tracker's and stays small: on Linux a child's ru_maxrss also
counts the memory of the process it was forked from, so a large parent would inflate every peak.
To measure another tree (a branch, a proposed patch), point PYTHONPATH at it and pass
`--tracker "python -m tracker"`. The machine's load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH,
    ROOT,
    Run,
    clean_env,
    compile_checkout,
    fmt_seconds,
    machine,
    median,
    python,
    run_command,
    run_measured,
    tracker_command,
)

URLWATCH = Path(os.environ.get("URLWATCH_VENV", "/tmp/urlwatch-venv")) / "bin" / "urlwatch"


@dataclass
class Result:
    name: str
    value: float | None  # None: not measured (see `note`)
    unit: str
    target: str
    met: bool | None  # None: no target, information only
    how: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "not available"
        if self.unit == "s":
            return fmt_seconds(self.value)
        if self.unit == "items/s":
            return f"{self.value:,.0f} items/s"
        if self.unit == "MB":
            return f"{self.value:.0f} MB"
        if self.unit == "x":
            return f"{self.value:.2f}×"
        return f"{self.value:g} {self.unit}"


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    results: list[Result] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, result: Result) -> Result:
        self.results.append(result)
        mark = {True: "met", False: "MISSED", None: "info"}[result.met]
        print(f"  {result.name}: {result.shown()}  [{mark}]", flush=True)
        return result

    def log(self, text: str) -> None:
        print(text, flush=True)


# --- helpers -----------------------------------------------------------------------------------


TRACKER: list[str] = []  # set from --tracker, else the console script beside this interpreter


def tracker(*args: str) -> list[str]:
    return [*(TRACKER or tracker_command()), *args]


def load_average() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def check(run: Run, what: str) -> None:
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{what} failed (exit {run.returncode}):\n  " + "\n  ".join(tail))


class FeedServer:
    """tests/bench/feeds.py in its own process."""

    def __init__(self, feeds: int, items: int, seed: int) -> None:
        self.proc = subprocess.Popen(
            [
                python(),
                str(BENCH / "feeds.py"),
                "--feeds",
                str(feeds),
                "--items",
                str(items),
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the feed server did not start")
        self.info = json.loads(line)
        self.feeds: list[dict[str, str]] = self.info["feeds"]

    def stats(self, reset: bool = True) -> dict[str, int]:
        url = self.info["stats"] + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_sources(path: Path, feeds: list[dict[str, str]]) -> None:
    lines = []
    for f in feeds:
        lines += [
            "[[source]]",
            f'name = "{f["name"]}"',
            'kind = "rss"',
            f'url = "{f["url"]}"',
            f'language = "{f["language"]}"',
            f'country = "{f["country"]}"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_urlwatch(directory: Path, feeds: list[dict[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [f"name: {f['name']}\nurl: {f['url']}\n" for f in feeds]
    (directory / "urls.yaml").write_text("---\n".join(jobs), encoding="utf-8")
    (directory / "urlwatch.yaml").write_text(
        "report:\n  stdout:\n    enabled: true\n    color: false\n", encoding="utf-8"
    )


def urlwatch_argv(directory: Path) -> list[str]:
    return [
        str(URLWATCH),
        "--urls",
        str(directory / "urls.yaml"),
        "--config",
        str(directory / "urlwatch.yaml"),
        "--hooks",
        str(directory / "hooks.py"),
        "--cache",
        str(directory / "cache.db"),
    ]


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".refresh.lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def copy_db(source: Path, target: Path) -> None:
    """A copy of a database nobody has open, with its write-ahead log (a command ends with
    os._exit, so what it wrote may still be in the log rather than in the file)."""
    remove_db(target)
    shutil.copyfile(source, target)
    wal = Path(str(source) + "-wal")
    if wal.exists():
        shutil.copyfile(wal, Path(str(target) + "-wal"))


def summary_line(run: Run) -> str:
    lines = run.stdout.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


# --- measurements ------------------------------------------------------------------------------


def measure_refresh(bench: Bench, server: FeedServer) -> None:
    args, work = bench.args, bench.work
    n = len(server.feeds)
    sources = work / "sources.toml"
    write_sources(sources, server.feeds)
    uw_dir = work / "urlwatch"
    write_urlwatch(uw_dir, server.feeds)
    template = work / "template.db"
    # Made in a child: this process stays small, because a child's ru_maxrss also counts the
    # memory of the process it was forked from (Linux carries the old mm's high-water mark
    # across exec), which would inflate every peak measured below.
    make = (
        "import sys; from tracker.register import open_store; from tracker.settings import "
        "Settings; open_store(Settings.from_env().with_db(sys.argv[1]))"
    )
    check(run_command([python(), "-c", make, str(template)], clean_env()), "creating the database")
    refresh = tracker("refresh", "--sources", str(sources), "--force")
    have_urlwatch = URLWATCH.exists()
    if not have_urlwatch:
        bench.notes.append(
            f"urlwatch not found at {URLWATCH}: install it with `python3 -m venv /tmp/urlwatch-venv "
            "&& /tmp/urlwatch-venv/bin/pip install urlwatch` (or set URLWATCH_VENV)"
        )

    bench.log(f"refresh: {n} feeds × {args.items} items, {args.repeat} runs each")
    cold: list[Run] = []
    created: list[Run] = []
    uw_cold: list[Run] = []
    last_db = work / "refresh.db"
    server.stats()
    for i in range(args.repeat):
        db_path = work / f"refresh-{i}.db"
        copy_db(template, db_path)
        run = run_measured(refresh, clean_env({"TRACKER_DB": str(db_path)}), cwd=work)
        check(run, "cold refresh")
        got = server.stats()
        if got.get("200") != n or len(got) != 1:
            raise SystemExit(f"cold refresh: expected {n} × 200 from the server, got {got}")
        if f"{n} ok" not in summary_line(run):
            raise SystemExit(f"cold refresh: unexpected summary {summary_line(run)!r}")
        cold.append(run)
        last_db = db_path
        # The very first refresh of an installation also creates the database file.
        fresh = work / f"created-{i}.db"
        remove_db(fresh)
        run = run_measured(refresh, clean_env({"TRACKER_DB": str(fresh)}), cwd=work)
        check(run, "refresh creating its database")
        server.stats()
        created.append(run)
        remove_db(fresh)
        if have_urlwatch:
            (uw_dir / "cache.db").unlink(missing_ok=True)
            run = run_measured(urlwatch_argv(uw_dir), clean_env(), cwd=uw_dir)
            check(run, "urlwatch (cold)")
            got = server.stats()
            if got.get("200") != n:
                raise SystemExit(f"urlwatch cold: expected {n} × 200 from the server, got {got}")
            uw_cold.append(run)
        if i < args.repeat - 1:
            remove_db(db_path)

    warm: list[Run] = []
    uw_warm: list[Run] = []
    for _ in range(args.repeat):
        run = run_measured(refresh, clean_env({"TRACKER_DB": str(last_db)}), cwd=work)
        check(run, "warm refresh")
        got = server.stats()
        if got.get("304") != n or len(got) != 1:
            raise SystemExit(f"warm refresh: expected {n} × 304 from the server, got {got}")
        if f"{n} unchanged" not in summary_line(run):
            raise SystemExit(f"warm refresh: unexpected summary {summary_line(run)!r}")
        warm.append(run)
        if have_urlwatch:
            run = run_measured(urlwatch_argv(uw_dir), clean_env(), cwd=uw_dir)
            check(run, "urlwatch (warm)")
            server.stats()
            uw_warm.append(run)

    cold_s = median([r.seconds for r in cold])
    uw_s = median([r.seconds for r in uw_cold]) if uw_cold else None
    summary = summary_line(cold[-1])
    bench.extra["refresh"] = {
        "feeds": n,
        "items_per_feed": args.items,
        "hosts": server.info["hosts"],
        "feed_bytes": server.info["bytes"],
        "feed_bytes_gzip": server.info["bytes_gzip"],
        "items_about_commitments": server.info["related"],
        "cold_summary": summary,
        "warm_summary": summary_line(warm[-1]),
    }
    bench.log(f"  cold refresh said: {summary}")
    how = (
        f"`tracker refresh --sources FILE --force`, {n} feeds × {args.items} items on "
        f"{server.info['hosts']} loopback hosts, production HTTP limits; wall clock, "
        f"median of {len(cold)}"
    )
    version = _urlwatch_version() if uw_s is not None else "?"
    if uw_s is not None:
        bench.add(
            Result(
                "urlwatch, same URLs, empty cache",
                uw_s,
                "s",
                "reference",
                None,
                f"urlwatch {version} from its own venv, {n} jobs; median of {len(uw_cold)}, "
                "run alternately with tracker's",
                [r.seconds for r in uw_cold],
            )
        )
    bench.add(
        Result(
            f"cold refresh, {n} feeds × {args.items} items, empty database",
            cold_s,
            "s",
            "information (ratio below)",
            None,
            how + "; database: schema and built-in catalog only",
            [r.seconds for r in cold],
        )
    )
    if uw_s is not None:
        bench.add(
            Result(
                "cold refresh ÷ urlwatch",
                cold_s / uw_s,
                "x",
                "≤ 1.0×",
                cold_s <= uw_s,
                f"{fmt_seconds(cold_s)} ÷ {fmt_seconds(uw_s)}",
            )
        )
    bench.add(
        Result(
            "cold refresh, database file created by the run",
            median([r.seconds for r in created]),
            "s",
            "information",
            None,
            "as above, with no database file beforehand (creation and catalog seeding included)",
            [r.seconds for r in created],
        )
    )
    warm_s = median([r.seconds for r in warm])
    bench.add(
        Result(
            f"warm refresh, {n} feeds unchanged (all 304)",
            warm_s,
            "s",
            "information (ratio below)",
            None,
            f"the same command over a cold run's database; median of {len(warm)}",
            [r.seconds for r in warm],
        )
    )
    if uw_warm:
        uw_warm_s = median([r.seconds for r in uw_warm])
        bench.add(
            Result(
                "urlwatch, same URLs, all 304",
                uw_warm_s,
                "s",
                "reference",
                None,
                f"median of {len(uw_warm)}",
                [r.seconds for r in uw_warm],
            )
        )
        bench.add(
            Result(
                "warm refresh ÷ urlwatch",
                warm_s / uw_warm_s,
                "x",
                "≤ 0.5×",
                warm_s <= 0.5 * uw_warm_s,
                f"{fmt_seconds(warm_s)} ÷ {fmt_seconds(uw_warm_s)}",
            )
        )
    peak = max(r.max_rss_mb for r in [*cold, *created, *warm])
    bench.add(
        Result(
            f"peak memory of a refresh over {n} feeds",
            peak,
            "MB",
            "< 150 MB",
            peak < 150,
            "largest ru_maxrss (os.wait4) of the refresh processes above, cold and warm (the "
            "refresh process; its parser processes are smaller)",
            [r.max_rss_mb for r in cold],
        )
    )
    bench.extra["refresh_runs"] = {"cold_s": cold_s, "db": str(last_db), "template": str(template)}


# Modules a `tracker refresh --quiet` must not load (issue 15): no ORM, no validation library,
# no rich. httpx (with httpcore and anyio) is the project's HTTP client and is loaded on purpose.
HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "rich")


def import_profile(stderr: str) -> tuple[float, list[str]]:
    """(seconds of `-X importtime` self time from the first `tracker` import on, heavy modules
    seen): what the refresh path imports, without the interpreter's own start-up (site,
    encodings) that every Python command pays."""
    total = 0
    counting = False
    heavy: set[str] = set()
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        name = m.group(4)
        counting = counting or name == "tracker" or name.startswith("tracker.")
        if counting:
            total += int(m.group(1))
        if name.split(".")[0] in HEAVY:
            heavy.add(name.split(".")[0])
    return total / 1e6, sorted(heavy)


def measure_imports(bench: Bench, sources: Path, db: Path) -> None:
    """Import time of the refresh path: `python -X importtime -m tracker refresh --quiet` over
    the warm database (every feed answers 304, so nothing is parsed), median of the runs."""
    argv = [python(), "-X", "importtime", "-m", "tracker", "refresh", "--quiet"]
    argv += ["--sources", str(sources), "--force"]
    seconds: list[float] = []
    heavy: set[str] = set()
    for _ in range(bench.args.repeat):
        run = run_command(argv, clean_env({"TRACKER_DB": str(db)}), cwd=bench.work)
        check(run, "tracker refresh --quiet (importtime)")
        took, seen = import_profile(run.stderr.decode(errors="replace"))
        seconds.append(took)
        heavy.update(seen)
    value = median(seconds)
    bench.add(
        Result(
            "import time of the refresh path",
            value,
            "s",
            "≤ 150 ms",
            value <= 0.15,
            "sum of `python -X importtime` self times from the first tracker module on, "
            f"`tracker refresh --quiet` over the warm database; median of {len(seconds)}",
            seconds,
        )
    )
    bench.add(
        Result(
            "heavy modules imported by `tracker refresh --quiet`",
            float(len(heavy)),
            "modules",
            "none of " + ", ".join(HEAVY),
            not heavy,
            ", ".join(sorted(heavy)) or "none",
        )
    )


def measure_commitments(bench: Bench, refresh: list[str], cold_s: float, base_db: Path) -> None:
    """1,000 more commitments from another catalog (tests/bench/catalog.py) loaded with
    `tracker catalog load`: the cold refresh again, and status and the weekly report over the
    refreshed databases with and without them."""
    work, n = bench.work, bench.args.commitments
    other = work / "other-catalog.toml"
    run = run_command([python(), str(BENCH / "catalog.py"), "--commitments", str(n)])
    check(run, "writing the other catalog")
    other.write_bytes(run.stdout)
    template = Path(bench.extra["refresh_runs"]["template"])
    bigger = work / "template-more.db"
    copy_db(template, bigger)
    load = tracker("catalog", "load", str(other))
    check(run_command(load, clean_env({"TRACKER_DB": str(bigger)}), cwd=work), "catalog load")
    runs: list[Run] = []
    db = work / "more.db"
    for _ in range(bench.args.repeat):
        copy_db(bigger, db)
        run = run_measured(refresh, clean_env({"TRACKER_DB": str(db)}), cwd=work)
        check(run, "cold refresh with more commitments")
        runs.append(run)
    value = median([r.seconds for r in runs])
    bench.add(
        Result(
            f"cold refresh with {n:,} more commitments ÷ without",
            value / cold_s,
            "x",
            "≤ 1.5×",
            value <= 1.5 * cold_s,
            f"{fmt_seconds(value)} ÷ {fmt_seconds(cold_s)}; the same feeds, median of {len(runs)}",
            [r.seconds for r in runs],
        )
    )
    for what, argv in (
        ("status", tracker("status")),
        ("report weekly", tracker("report", "weekly", "--out", str(work / "reports-more"))),
    ):
        base = median([r.seconds for r in timed_runs(bench, argv, base_db, what)])
        more = median([r.seconds for r in timed_runs(bench, argv, db, what)])
        bench.add(
            Result(
                f"`tracker {what}` with {n:,} more commitments ÷ without",
                more / base,
                "x",
                "≤ 3×",
                more <= 3 * base,
                f"{fmt_seconds(more)} ÷ {fmt_seconds(base)} over the refreshed databases; "
                f"median of {bench.args.repeat} after a warm-up",
            )
        )


def measure_scale(bench: Bench, cold_s: float | None) -> None:
    """2,000 feeds on 2,000 loopback hosts, cold: time against ten times the 200-feed run."""
    args, work = bench.args, bench.work
    server = FeedServer(args.scale_feeds, args.items, args.seed)
    try:
        n = len(server.feeds)
        sources = work / "sources-scale.toml"
        write_sources(sources, server.feeds)
        template = Path(bench.extra["refresh_runs"]["template"])
        refresh = tracker("refresh", "--sources", str(sources), "--force")
        runs: list[Run] = []
        db = work / "scale.db"
        server.stats()
        for _ in range(args.scale_repeat):
            copy_db(template, db)
            run = run_measured(refresh, clean_env({"TRACKER_DB": str(db)}), cwd=work)
            check(run, "cold refresh at scale")
            got = server.stats()
            if got.get("200") != n or len(got) != 1:
                raise SystemExit(f"scale refresh: expected {n} × 200 from the server, got {got}")
            runs.append(run)
        value = median([r.seconds for r in runs])
        bench.log(f"  {n} feeds said: {summary_line(runs[-1])}")
        target = "≤ 10× the 200-feed cold refresh"
        bench.add(
            Result(
                f"cold refresh, {n:,} feeds on {server.info['hosts']:,} hosts",
                value,
                "s",
                target if cold_s else "information",
                value <= 10 * cold_s if cold_s else None,
                (f"{value / cold_s:.1f}× the 200-feed run; " if cold_s else "")
                + f"median of {len(runs)}",
                [r.seconds for r in runs],
            )
        )
        peak = max(r.max_rss_mb for r in runs)
        bench.add(
            Result(
                f"peak memory of a refresh over {n:,} feeds",
                peak,
                "MB",
                "< 300 MB",
                peak < 300,
                "largest ru_maxrss of those runs",
                [r.max_rss_mb for r in runs],
            )
        )
    finally:
        server.stop()


def _urlwatch_version() -> str:
    run = run_command([str(URLWATCH), "--version"])
    return run.stdout.decode().strip().split()[-1] if run.returncode == 0 else "?"


def measure_matching(bench: Bench) -> None:
    args = bench.args
    run = run_command(
        [
            python(),
            str(Path(__file__).resolve()),
            "--matching-child",
            "--feeds",
            str(args.feeds),
            "--items",
            str(args.items),
            "--repeat",
            str(args.repeat),
        ],
        clean_env(),
    )
    check(run, "matching benchmark")
    data = json.loads(run.stdout)
    bench.extra["matching"] = data
    bench.log(
        f"matching: {data['distinct_items']} distinct items, {data['items']} a round "
        f"({data['matched']} matches), "
        f"{data['patterns']} regex alternatives, core {data['cpu']}"
    )
    bench.add(
        Result(
            "matching throughput, one core",
            data["matcher_items_per_s"],
            "items/s",
            "≥ 20,000 items/s",
            data["matcher_items_per_s"] >= 20_000,
            "Matcher.match(title + newline + summary) over the feeds' items as the scraper "
            f"parses them, pinned to one core; median of {data['rounds']} rounds",
            data["matcher_samples"],
        )
    )
    bench.add(
        Result(
            "matching cost ÷ one compiled-regex pass",
            data["ratio"],
            "x",
            "≤ 3×",
            data["ratio"] <= 3,
            "Matcher.match on the raw text ÷ one `finditer` of one regex of every catalog term "
            f"over the already-normalised text ({data['regex_items_per_s']:,.0f} items/s); "
            f"normalising alone runs at {data['normalize_items_per_s']:,.0f} items/s, "
            f"regex + normalising at {data['regex_with_normalize_items_per_s']:,.0f} items/s "
            f"(ratio {data['ratio_with_normalize']:.2f}×)",
            [],
        )
    )


def matching_child(args: argparse.Namespace) -> None:
    """Runs in its own process, pinned to one core; prints JSON."""
    import statistics

    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    import feeds as feed_mod

    from scrapers import HttpSettings
    from scrapers.feeds import parse_feed
    from tracker.catalog import builtin_catalog
    from tracker.matching import Matcher, normalize, rules_from_mapping

    corpus = feed_mod.render_corpus(args.feeds, args.items, seed=args.seed)
    settings = HttpSettings()
    texts: list[tuple[str, str]] = []
    for f in corpus.feeds:
        parsed = parse_feed(
            f.body,
            "application/rss+xml; charset=utf-8",
            base_url="http://127.0.0.1/",
            language=f.info.language,
            settings=settings,
        )
        texts += [(i.title + "\n" + i.summary, i.language or "") for i in parsed.items]
    specs = [c for a in builtin_catalog() for c in a.commitments]
    matcher = Matcher(rules_from_mapping(c.slug, c.rules) for c in specs)

    terms: set[str] = set()

    def collect(table: Any) -> None:
        if isinstance(table, dict):
            for value in table.values():
                collect(value)
        elif isinstance(table, list):
            for value in table:
                collect(value)
        elif isinstance(table, str):
            terms.add(table)

    for c in specs:
        for rule in c.rules.get("rule", []):
            collect(rule.get("group", []))
            collect(rule.get("veto", {}))
        collect(c.rules.get("veto", {}))
        collect(c.rules.get("mask", {}))
    # A term's normalised words in order, "*" taking any word ending: the classic way to do it.
    alternatives = sorted(
        {re.escape(normalize(t)).replace(r"\*", r"\w*") for t in terms}, key=len, reverse=True
    )
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")
    # Every round sees at least 20,000 items, so that a round lasts long enough to time well.
    distinct = len(texts)
    texts = texts * max(1, -(-20_000 // len(texts)))
    normalised = [normalize(t.replace("\n", " \n ")) for t, _ in texts]

    def timed(fn: Any) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    def run_matcher() -> None:
        for text, lang in texts:
            matcher.match(text, lang)

    def run_regex() -> None:
        for text in normalised:
            for _ in pattern.finditer(text):
                pass

    def run_normalize() -> None:
        for text, _ in texts:
            normalize(text)

    def run_both() -> None:
        for text, _ in texts:
            for _ in pattern.finditer(normalize(text)):
                pass

    matched = sum(1 for text, lang in texts if matcher.match(text, lang))
    rounds = max(3, args.repeat)
    samples: dict[str, list[float]] = {"matcher": [], "regex": [], "normalize": [], "both": []}
    for _ in range(rounds):  # interleaved, so that noise hits all alike
        samples["matcher"].append(timed(run_matcher))
        samples["regex"].append(timed(run_regex))
        samples["normalize"].append(timed(run_normalize))
        samples["both"].append(timed(run_both))
    n = len(texts)
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(
        json.dumps(
            {
                "cpu": cpu,
                "items": n,
                "distinct_items": distinct,
                "matched": matched,
                "patterns": len(alternatives),
                "rounds": rounds,
                "matcher_items_per_s": n / med["matcher"],
                "matcher_samples": [n / s for s in samples["matcher"]],
                "regex_items_per_s": n / med["regex"],
                "normalize_items_per_s": n / med["normalize"],
                "regex_with_normalize_items_per_s": n / med["both"],
                "ratio": med["matcher"] / med["regex"],
                "ratio_with_normalize": med["matcher"] / med["both"],
            }
        )
    )


def fill_database(bench: Bench, path: Path, evidence: int) -> float:
    started = time.perf_counter()
    run = run_command(
        [python(), str(BENCH / "fill.py"), "--evidence", str(evidence), "--fresh"],
        clean_env({"TRACKER_DB": str(path)}),
        timeout=1800,
    )
    check(run, f"fill.py --evidence {evidence}")
    elapsed = time.perf_counter() - started
    bench.log("  " + run.stdout.decode().strip().replace("\n", "\n  "))
    return elapsed


def timed_runs(bench: Bench, argv: list[str], db: Path | str, what: str) -> list[Run]:
    env = clean_env({"TRACKER_DB": str(db)})
    check(run_command(argv, env, cwd=bench.work), what)  # warm-up: page cache, bytecode
    runs = []
    for _ in range(bench.args.repeat):
        run = run_measured(argv, env, cwd=bench.work)
        check(run, what)
        runs.append(run)
    return runs


def report_available() -> bool:
    run = run_command(tracker("report", "weekly", "--help"), clean_env())
    return run.returncode == 0


def measure_views(bench: Bench) -> tuple[Path, dict[str, float]]:
    args, work = bench.args, bench.work
    small, large = work / "small.db", work / "large.db"
    bench.log(f"filling databases: {args.small:,} and {args.large:,} evidence rows")
    fill_small = fill_database(bench, small, args.small)
    fill_large = fill_database(bench, large, args.large)
    bench.add(
        Result(
            f"fill.py --evidence {args.large:,}",
            fill_large,
            "s",
            "well under a minute" if args.large >= 1_000_000 else "information",
            (fill_large < 60) if args.large >= 1_000_000 else None,
            f"wall clock of the script, creating the file (small one: {fill_small:.1f} s)",
        )
    )
    times: dict[str, float] = {}
    for label, db in (("small", small), ("large", large)):
        runs = timed_runs(bench, tracker("status"), db, f"tracker status ({label})")
        times[f"status_{label}"] = median([r.seconds for r in runs])
        times[f"status_{label}_samples"] = [r.seconds for r in runs]  # type: ignore[assignment]
    s_small, s_large = times["status_small"], times["status_large"]
    bench.add(
        Result(
            f"`tracker status` at {args.small:,} evidence rows",
            s_small,
            "s",
            "information (reference for the ratio)",
            None,
            f"wall clock, output piped (plain text); median of {args.repeat} after a warm-up",
            times["status_small_samples"],  # type: ignore[arg-type]
        )
    )
    bench.add(
        Result(
            f"`tracker status` at {args.large:,} evidence rows",
            s_large,
            "s",
            f"< 500 ms and ≤ 1.5× the small one ({fmt_seconds(1.5 * s_small)})",
            s_large < 0.5 and s_large <= 1.5 * s_small,
            f"as above; ratio {s_large / s_small:.2f}×",
            times["status_large_samples"],  # type: ignore[arg-type]
        )
    )
    if not report_available():
        bench.add(
            Result(
                "`tracker report weekly`",
                None,
                "s",
                "< 2 s and ≤ 1.5× at 1,000 rows",
                None,
                "not available: `tracker report weekly --help` fails in this checkout",
            )
        )
        return small, times
    for label, db in (("small", small), ("large", large)):
        out = work / f"reports-{label}"
        runs = timed_runs(
            bench, tracker("report", "weekly", "--out", str(out)), db, f"report ({label})"
        )
        times[f"report_{label}"] = median([r.seconds for r in runs])
        times[f"report_{label}_samples"] = [r.seconds for r in runs]  # type: ignore[assignment]
    r_small, r_large = times["report_small"], times["report_large"]
    bench.add(
        Result(
            f"`tracker report weekly` at {args.small:,} evidence rows",
            r_small,
            "s",
            "information (reference for the ratio)",
            None,
            f"`tracker report weekly --out DIR` (last complete week); median of {args.repeat}",
            times["report_small_samples"],  # type: ignore[arg-type]
        )
    )
    bench.add(
        Result(
            f"`tracker report weekly` at {args.large:,} evidence rows",
            r_large,
            "s",
            f"< 2 s and ≤ 1.5× the small one ({fmt_seconds(1.5 * r_small)})",
            r_large < 2 and r_large <= 1.5 * r_small,
            f"as above; ratio {r_large / r_small:.2f}×",
            times["report_large_samples"],  # type: ignore[arg-type]
        )
    )
    return small, times


def measure_postgres(bench: Bench, large: Path, admin_url: str) -> None:
    """The PostgreSQL column: the large database copied to a fresh PostgreSQL database with
    `tracker db copy`, vacuumed and analysed (as autovacuum would leave it), then the same views."""
    import sqlalchemy as sa

    name = f"tracker_bench_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        run = run_command(
            tracker("--db", str(large), "db", "copy", "--to", url), clean_env(), timeout=3600
        )
        check(run, "db copy to PostgreSQL")
        copy_seconds = time.perf_counter() - started
        target = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with target.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        target.dispose()
        bench.add(
            Result(
                f"`tracker db copy` of {bench.args.large:,} evidence rows to PostgreSQL",
                copy_seconds,
                "s",
                "information",
                None,
                "wall clock of the command, all tables, counts verified",
            )
        )
        for what, argv, limit in (
            ("status", tracker("status"), 0.5),
            (
                "report weekly",
                tracker("report", "weekly", "--out", str(bench.work / "pg-reports")),
                2.0,
            ),
        ):
            runs = timed_runs(bench, argv, url, f"tracker {what} (PostgreSQL)")
            value = median([r.seconds for r in runs])
            bench.add(
                Result(
                    f"`tracker {what}` at {bench.args.large:,} rows, PostgreSQL",
                    value,
                    "s",
                    f"< {limit:g} s (the SQLite target)",
                    value < limit,
                    f"median of {bench.args.repeat} after a warm-up; after VACUUM ANALYZE",
                    [r.seconds for r in runs],
                )
            )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def importtime(argv: list[str], env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """`python -X importtime`: the heaviest top-level imports by cumulative time."""
    run = run_command([python(), "-X", "importtime", *argv], env, cwd=cwd)
    rows = []
    for line in run.stderr.decode(errors="replace").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append(
                {
                    "module": m.group(4),
                    "self_ms": int(m.group(1)) / 1000,
                    "cumulative_ms": int(m.group(2)) / 1000,
                    "depth": len(m.group(3)) // 2,
                }
            )
    total = sum(r["self_ms"] for r in rows)
    top = sorted((r for r in rows if r["depth"] <= 1), key=lambda r: -r["cumulative_ms"])[:12]
    return [{"total_ms": round(total, 1)}, *top]


def measure_startup(bench: Bench, small: Path, times: dict[str, float]) -> None:
    env = clean_env()
    runs = timed_runs(bench, tracker("--help"), bench.work / "unused.db", "tracker --help")
    help_s = median([r.seconds for r in runs])
    bench.add(
        Result(
            "`tracker --help` start-up",
            help_s,
            "s",
            "< 300 ms",
            help_s < 0.3,
            f"wall clock; median of {len(runs)} after a warm-up",
            [r.seconds for r in runs],
        )
    )
    status_s = times["status_small"]
    bench.add(
        Result(
            "`tracker status` start-up (1,000-row database)",
            status_s,
            "s",
            "< 300 ms",
            status_s < 0.3,
            "the small-database `tracker status` above: start-up dominates it",
            times["status_small_samples"],  # type: ignore[arg-type]
        )
    )
    bench.extra["importtime"] = {
        "tracker --help": importtime(["-m", "tracker", "--help"], env, bench.work),
        "tracker status": importtime(
            ["-m", "tracker", "status"], clean_env({"TRACKER_DB": str(small)}), bench.work
        ),
    }
    for label, rows in bench.extra["importtime"].items():
        heavy = ", ".join(
            f"{r['module']} {r['cumulative_ms']:.0f} ms" for r in rows[1:6] if "module" in r
        )
        bench.log(f"  importtime {label}: {rows[0]['total_ms']:.0f} ms in all; heaviest: {heavy}")


# --- output ------------------------------------------------------------------------------------


def print_table(bench: Bench) -> None:
    rows = [("measurement", "value", "target", "met?")]
    for r in bench.results:
        mark = {True: "yes", False: "NO", None: "—"}[r.met]
        rows.append((r.name, r.shown(), r.target, mark))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for k, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    m = bench.extra["machine"]
    print(
        f"\nmachine: {m['cpu_model']}, {m['cores']} cores, Python {m['python']}, "
        f"SQLite {m['sqlite']}, {m['memory_gb']} GB; load average before "
        f"{bench.extra['load_before']}, after {bench.extra['load_after']}"
    )
    for note in bench.notes:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 runs each")
    parser.add_argument("--repeat", type=int, help="runs per measurement (default 5; quick 3)")
    parser.add_argument("--feeds", type=int, help="feeds served (default 200; quick 50)")
    parser.add_argument("--items", type=int, help="items per feed (default 50; quick 20)")
    parser.add_argument("--small", type=int, default=1000, help="evidence rows, small database")
    parser.add_argument(
        "--large", type=int, help="evidence rows (default 1,000,000; quick 100,000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only",
        default="refresh,commitments,scale,matching,views,startup",
        help="comma-separated parts to run (commitments and scale need refresh, startup views)",
    )
    parser.add_argument(
        "--scale-feeds", type=int, help="feeds of the scale run (default 2000; quick 500)"
    )
    parser.add_argument("--scale-repeat", type=int, default=3, help="runs of the scale run")
    parser.add_argument(
        "--commitments", type=int, default=1000, help="commitments in the other catalog"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument(
        "--tracker",
        help='the command to measure, e.g. "python -m tracker" (default: the console script)',
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TRACKER_TEST_PG_URL"),
        help="a PostgreSQL server URL (a database on it is created and dropped) to measure the"
        " views there too (default: $TRACKER_TEST_PG_URL; without it, no PostgreSQL column)",
    )
    parser.add_argument("--matching-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 5)
    args.feeds = args.feeds or (50 if args.quick else 200)
    args.items = args.items or (20 if args.quick else 50)
    args.large = args.large or (100_000 if args.quick else 1_000_000)
    args.scale_feeds = args.scale_feeds or (500 if args.quick else 2000)
    if args.matching_child:
        matching_child(args)
        return
    if args.tracker:
        TRACKER[:] = shlex.split(args.tracker)
        if "/" in TRACKER[0]:  # commands run in the work directory: make a relative path absolute
            TRACKER[0] = str(Path(TRACKER[0]).absolute())
    parts = set(args.only.split(","))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, work)
    bench.extra["machine"] = machine()
    bench.extra["load_before"] = load_average()
    bench.extra["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    bench.extra["tracker"] = tracker()
    bench.extra["checkout"] = str(ROOT)
    if bench.extra["load_before"] and bench.extra["load_before"][0] > 0.5:
        bench.notes.append(
            f"the machine was busy when the run started (load {bench.extra['load_before']}); "
            "figures may be high"
        )
    bench.log(f"work directory: {work}")
    compile_checkout()
    started = time.perf_counter()
    try:
        if "refresh" in parts:
            server = FeedServer(args.feeds, args.items, args.seed)
            try:
                measure_refresh(bench, server)
                runs = bench.extra["refresh_runs"]
                refresh = tracker("refresh", "--sources", str(work / "sources.toml"), "--force")
                measure_imports(bench, work / "sources.toml", Path(runs["db"]))
                if "commitments" in parts:
                    measure_commitments(bench, refresh, runs["cold_s"], Path(runs["db"]))
            finally:
                server.stop()
            if "scale" in parts:
                measure_scale(bench, bench.extra["refresh_runs"]["cold_s"])
        if "matching" in parts:
            measure_matching(bench)
        if "views" in parts:
            small, times = measure_views(bench)
            if "startup" in parts:
                measure_startup(bench, small, times)
            if args.pg_url:
                measure_postgres(bench, work / "large.db", args.pg_url)
    finally:
        bench.extra["load_after"] = load_average()
        bench.extra["runner_max_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
        bench.extra["seconds"] = round(time.perf_counter() - started, 1)
        print_table(bench)
        payload = {
            **bench.extra,
            "config": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k != "matching_child"
            },
            "results": [asdict(r) for r in bench.results],
            "notes": bench.notes,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
