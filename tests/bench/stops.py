"""Measured: how long `tracker daemon` takes to stop after SIGTERM, and how close the SMTP
deadline is to TRACKER_SMTP_TIMEOUT.

    python tests/bench/stops.py [--runs 5]

- SIGTERM while idle; while a refresh stores its sources (it stops before the next source); while
  a refresh waits on a feed server that never answers (the job is cut short after STOP_GRACE).
- `mail.send` against a server that sends a `220-` continuation line every 2 s, with a 3 s
  deadline: how long until it is cut.

Not a test module (no `test_` prefix); prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.faulty_server import reply, serving
from tests.smtp_sink import silent_server
from tests.test_daemon import FEEDS, ITEMS, feed
from tests.test_smtp_deadline import endless_greeting, settings, talking_server
from tracker import mail
from tracker.errors import EnvironmentProblem


def _sources(path: Path, urls: list[str]) -> Path:
    path.write_text(
        "".join(
            f'[[source]]\nname = "s{k}"\nkind = "rss"\nurl = "{url}"\nlanguage = "en"\n'
            for k, url in enumerate(urls)
        ),
        encoding="utf-8",
    )
    return path


def _daemon(db: Path, sources: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracker", "--db", str(db), "daemon", "--sources", str(sources)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_line(proc: subprocess.Popen[str], needle: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if needle in line:
            return
    raise RuntimeError(f"the daemon ended before {needle!r}")


def _stop(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return time.monotonic() - started


def _scraped(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=0.05) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM evidence WHERE source LIKE 's%'").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def measure_stops(runs: int, work: Path, env: dict[str, str]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"idle": [], "mid-store": [], "hung-feed": []}
    subprocess.run(
        [sys.executable, "-m", "tracker", "--db", str(work / "t.db"), "status"],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    with serving() as server:
        for k in range(FEEDS):
            server.route(f"/d{k}", reply(200, feed(k), "application/rss+xml"))
        many = _sources(work / "many.toml", [server.url(f"/d{k}") for k in range(FEEDS)])
        with silent_server("mute") as port:
            hung = _sources(work / "hung.toml", [f"http://127.0.0.1:{port}/feed.xml"])
            for n in range(runs):
                for case, sources in (("idle", many), ("mid-store", many), ("hung-feed", hung)):
                    db = work / f"{case}-{n}.db"
                    with sqlite3.connect(work / "t.db") as src, sqlite3.connect(db) as dst:
                        src.backup(dst)
                    proc = _daemon(db, sources, env)
                    if case == "idle":
                        _wait_line(proc, "refresh: ")
                    elif case == "mid-store":
                        while _scraped(db) == 0 and proc.poll() is None:
                            time.sleep(0.005)
                    else:
                        _wait_line(proc, "daemon: started")
                        time.sleep(0.5)
                    results[case].append(_stop(proc))
    return results


def measure_smtp(runs: int) -> list[float]:
    cuts = []
    with talking_server(endless_greeting) as port:
        smtp = settings(port, "3")
        for _ in range(runs):
            started = time.monotonic()
            with contextlib.suppress(EnvironmentProblem):
                mail.send(smtp, mail.text_message(smtp, "s", "t"))
            cuts.append(time.monotonic() - started)
    return cuts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "OPENSKY_"))}
    env.update(
        {"TRACKER_HTTP_DEADLINE": "60", "TRACKER_HTTP_READ_TIMEOUT": "60", "TRACKER_USER": "bench"}
    )
    with tempfile.TemporaryDirectory() as scratch:
        stops = measure_stops(args.runs, Path(scratch), env)
    cuts = measure_smtp(args.runs)
    summary = {
        "sigterm_stop_seconds": {
            case: {"median": round(statistics.median(v), 2), "max": round(max(v), 2)}
            for case, v in stops.items()
        },
        "smtp_deadline_3s_cut_seconds": {
            "median": round(statistics.median(cuts), 3),
            "max": round(max(cuts), 3),
        },
        "items_per_feed": ITEMS,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
