"""Build the golden database with a fixed script and write what the views print.

Run: python tests/golden/build.py OUT_DIR   (writes OUT_DIR/*.txt, OUT_DIR/golden.db)

The database is seeded from a frozen copy of the catalog (tests/golden/catalog.toml, via
TRACKER_CATALOG) with TRACKER_TODAY fixed, gets one refresh from a loopback feed, two reviews, a
hand-added item and an override. `mask` removes what depends on the wall clock (the moment the
script ran), so two runs of the same code give the same files. A refactor must leave them
byte-identical; a deliberate change of behaviour regenerates them (`--update`) in the same commit.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
# A replayed day sees only its own past, and the history is stamped with the real clock: replay a
# day after any run of this script, so that every row the script writes is in that past.
TODAY = "2030-01-07"
OUTPUTS = (
    "status.json",
    "status.txt",
    "export.json",
    "export.csv",
    "report.md",
    *(
        f"show-{slug}.txt"
        for slug in (
            "joint-industrial-park",
            "reconstruction-engineering",
            "khodaafarin-crossing",
            "new-access-point",
            "tabriz-baku-flight",
            "health-tourism",
            "tourist-tours",
            "tractor-dealership",
        )
    ),
)


def mask(text: str, run_day: str) -> str:
    """Times and days stamped by the run itself (on or after the day it ran) become <now> and
    <day>: an override's day, a history row's time."""
    stamp = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?")

    def sub(m: re.Match[str]) -> str:
        if m.group(1) < run_day:
            return m.group(0)
        return "<now>" if len(m.group(0)) > 10 else "<day>"

    return stamp.sub(sub, text)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    def handler(*args: object, **kwargs: object) -> _Quiet:
        return _Quiet(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def build(out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    run_day = datetime.now(UTC).date().isoformat()
    db = out / "golden.db"
    for leftover in out.glob("golden.db*"):
        leftover.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "OPENSKY_"))}
    env.update(
        TRACKER_DB=str(db),
        TRACKER_CATALOG=str(HERE / "catalog.toml"),
        TRACKER_TODAY=TODAY,
        TRACKER_USER="golden",
        TRACKER_HTTP_DEADLINE="10",
        COLUMNS="200",
    )
    server, port = _serve(HERE)
    sources = out / "sources.toml"
    sources.write_text(
        f'[[source]]\nname = "golden-wire"\nkind = "rss"\nlanguage = "en"\ncountry = "other"\n'
        f'url = "http://127.0.0.1:{port}/feed.xml"\n',
        encoding="utf-8",
    )

    def tracker(*args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "tracker", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=out,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"tracker {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    try:
        tracker("status")
        tracker("refresh", "--sources", str(sources))
    finally:
        server.shutdown()
    pending = json.loads(tracker("export"))
    ids = {
        e["title"]: e["id"]
        for c in pending["commitments"]
        for e in c["evidence"]
        if e["review"] == "pending"
    }
    by_title = sorted(ids.items())
    for title, evidence_id in by_title:
        if "dealership" in title:
            tracker(
                "review", "confirm", str(evidence_id), "--milestone", "3", "--stance", "progress"
            )
        elif "dam" in title:
            tracker("review", "reject", str(evidence_id), "--reason", "the dam, not the crossing")
    tracker(
        "evidence",
        "add",
        "health-tourism",
        "--url",
        "https://golden.example.org/manual/1",
        "--title",
        "Tabriz hospitals sign a referral agreement with Baku clinics",
        "--date",
        "2026-11-23",
        "--stance",
        "progress",
    )
    tracker("set-status", "tourist-tours", "stalled", "--reason", "no tours found by the editor")
    tracker("set-status", "joint-industrial-park", "broken", "--reason", "a test override")
    tracker("set-status", "joint-industrial-park", "--clear")
    texts = {
        "status.json": tracker("status", "--json"),
        "status.txt": tracker("status"),
        "export.json": tracker("export", "--format", "json"),
        "export.csv": tracker("export", "--format", "csv"),
    }
    for name in OUTPUTS:
        if name.startswith("show-"):
            texts[name] = tracker("show", name[5:-4])
    tracker("report", "weekly", "--week", "2026-W48", "--out", str(out / "reports"))
    texts["report.md"] = (out / "reports" / "2026-W48.md").read_text(encoding="utf-8")
    return {name: mask(text, run_day) for name, text in texts.items()}


def main() -> None:
    args = sys.argv[1:]
    update = "--update" in args
    args = [a for a in args if a != "--update"]
    out = Path(args[0]) if args else Path("/tmp/tracker-golden")
    texts = build(out)
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
        if update:
            (HERE / "expected" / name).parent.mkdir(exist_ok=True)
            (HERE / "expected" / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(texts)} files to {out}" + (" and tests/golden/expected" if update else ""))


if __name__ == "__main__":
    main()
