"""Fifty pending items reviewed with keys alone, as a person would, on a real pseudo-terminal.

    python tests/bench/review_keys.py [--items 50] [--think 1.2] [--fill N] [--pg-url URL]

`tracker review` runs on a pseudo-terminal (tests/ptyterm.py) over a fresh database: the built-in
catalog plus `--items` pending stories (after `--fill N` evidence rows written by fill.py, to see
the cost on a big database; or on PostgreSQL with `--pg-url`). A fixed, seeded script then does
what a practised reviewer does: reads each story for `--think` seconds, and presses c (most), r, x
then c, m then a digit, R and types a reason at 8 characters a second, s, an o to read the full
text, and a u to take back a decision now and then (and decide again).

It reports the wall-clock time of the whole review and what the tool itself needs per key: from the
moment a key is sent until the next screen (its footer) has been drawn; the start-up (command to
first screen) and the ending (q to exit, which retrains the matcher once) apart.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.ptyterm import PtySession  # noqa: E402

TITLES = [
    "Tabriz–Baku flights to run three times a week from next month",
    "Khodaafarin bridge: works on the Iranian bank reach 70 percent",
    "East Azerbaijan firms shortlisted for Aghdam reconstruction",
    "Tabriz tractor maker opens an office in Baku",
    "Health tourism: Azerbaijani patients treated in Tabriz hospitals",
    "Joint industrial park in Karabakh: site visit by Iranian delegation",
    "Tour operators from Tabriz launch Shusha packages",
    "New crossing point on the Araz to open next year, governor says",
]


def seed(url: str, items: int) -> None:
    from tests.rows import insert
    from tracker.matching import normalize_title_key
    from tracker.register import open_store
    from tracker.settings import Settings
    from tracker.store import reads

    db = open_store(Settings.from_env({"TRACKER_DB": url}))
    now = datetime.now().replace(microsecond=0)
    with db.write() as conn:
        slugs = reads.commitment_slugs(conn)
        ids = {s: reads.find_commitment(conn, s).id for s in slugs}
        for i in range(items):
            slug = slugs[i % len(slugs)]
            title = f"{TITLES[i % len(TITLES)]} ({i})"
            insert(
                conn,
                "evidence",
                commitment_id=ids[slug],
                url=f"https://bench.example.ir/review/{i}",
                canonical_url=f"https://bench.example.ir/review/{i}",
                title=title,
                title_key=normalize_title_key(title),
                summary="The full text of the story. " * 30,
                published_at=now - timedelta(minutes=i),
                source="irna-en" if i % 3 else "apa",
                publisher="IRNA" if i % 3 else "APA",
                country="IR" if i % 3 else "AZ",
                language="en",
                created_at=now,
                matched_terms=["Tabriz", "Baku"],
                score=0.7 + (i % 30) / 100,
                suggested_milestone=1 + i % 3 if i % 2 else None,
                suggested_stance="progress" if i % 2 else "neutral",
                reasons=["the place is named", "the headline names the route"],
            )


def script(items: int, rng: random.Random) -> list[list[str]]:
    """Per story, the keys a person presses (each a separate keystroke)."""
    plan: list[list[str]] = []
    for i in range(items):
        roll = rng.random()
        if roll < 0.60:
            keys = ["c"]
        elif roll < 0.75:
            keys = ["r"]
        elif roll < 0.83:
            keys = ["x", "c"]
        elif roll < 0.90:
            keys = ["m", str(rng.randint(1, 3))]
        elif roll < 0.95:
            keys = ["R", *"off topic", "\r"]
        else:
            keys = ["s"]
        if i in (7, 31):
            keys = ["o", *keys]
        if i in (12, 40):
            keys = [*keys, "u", "c"]  # took back, then decided again
        plan.append(keys)
    return plan


def run(url: str, items: int, think: float, rng: random.Random) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env.update(TRACKER_DB=url, TRACKER_USER="bench", TERM="xterm-256color")
    started = time.monotonic()
    s = PtySession(
        [sys.executable, "-m", "tracker", "review"], env=env, cwd=Path(tempfile.gettempdir())
    )
    latencies: list[float] = []
    try:
        s.expect(r"· \d+ left", timeout=120)
        startup = time.monotonic() - started
        for keys in script(items, rng):
            time.sleep(think)  # reading the story
            for n, key in enumerate(keys):
                if n:
                    time.sleep(0.125 if len(key) == 1 and key.isalpha() and keys[0] == "R" else 0.3)
                sent = s.send(key)
                s.expect(r"· \d+ left|review: \d+ confirmed", timeout=60)
                latencies.append(time.monotonic() - sent)
        # The last story decided, the loop ends by itself: its summary, the matcher retrained
        # once, exit. (A 'q' ends it the same way when stories are left.)
        if s.code is None and "still waiting" not in s.text:
            sent = s.send("q")
        code = s.wait(timeout=120)
        ending = time.monotonic() - sent
    finally:
        s.close()
    total = time.monotonic() - started
    tool = sum(latencies) + startup + ending
    summary = [line for line in s.text.splitlines() if line.startswith("review:")]
    return {
        "items": items,
        "keys": len(latencies),
        "exit": code,
        "wall_clock_s": round(total, 2),
        "tool_time_s": round(tool, 2),
        "startup_s": round(startup, 3),
        "ending_s (last key to exit, learning once)": round(ending, 3),
        "per_key_ms": {
            "median": round(1000 * statistics.median(latencies), 1),
            "p95": round(1000 * sorted(latencies)[int(0.95 * (len(latencies) - 1))], 1),
            "max": round(1000 * max(latencies), 1),
        },
        "summary": summary[-1] if summary else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--think", type=float, default=1.2, help="seconds to read each story")
    parser.add_argument("--fill", type=int, default=0, help="evidence rows to write first")
    parser.add_argument("--pg-url", help="a PostgreSQL database URL (an empty database)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg_url or str(Path(tmp) / "review.db")
        if args.fill:
            env = dict(os.environ, TRACKER_DB=url)
            subprocess.run(
                [sys.executable, str(ROOT / "tests/bench/fill.py"), "--evidence", str(args.fill)],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        seed(url, args.items)
        result = run(url, args.items, args.think, random.Random(args.seed))
    result["database"] = "postgresql" if args.pg_url else "sqlite"
    result["fill"] = args.fill
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
