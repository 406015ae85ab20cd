"""Matcher quality and speed on the development set of real news (tests/data/devset, issue 12).

    python tests/bench/matching.py [--half all|A|B] [--errors] [--learn] [--fit] [--json FILE]

Runs the real matcher (rules, places and milestone words of the built-in catalog) over the
521 labelled items and prints:

* precision and recall of (item, commitment) pairs, overall, per language, per commitment;
* how often the suggested milestone and stance agree with the labels;
* throughput: `Matcher.match` items per second on one core (pinned), over the dev set's texts;
* with --errors, every false positive and false negative with the scorer's reasons.

The dev set is split into two halves by item number: A = odd (fa-001, fa-003 …), B = even.
Rules and weights were tuned looking at A; B is the held-out check (see --fit). Items come in
topic runs in the files, so alternating keeps both halves alike.

--learn reviews half A by its labels as a watcher would (confirm or reject every item the
matcher attached; add by hand the ones it missed), trains the learned model on that plus the
catalog's curated evidence, and prints precision and recall on half B before and after.

--fit refits the scorer's WEIGHTS by logistic regression on half A's candidates and prints them
with the result on B (the shipped WEIGHTS are these, rounded).

Not a test module (no test_ prefix); tests/test_devset.py holds the floors with `evaluate`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tracker.catalog import builtin_catalog  # noqa: E402
from tracker.matching import Candidate, Matcher, rules_from_mapping  # noqa: E402

DEVSET = ROOT / "tests" / "data" / "devset"
LANGUAGES = ("fa", "az", "en", "ru")


@dataclass(frozen=True)
class Item:
    id: str
    language: str
    title: str
    summary: str
    labels: frozenset[str]
    milestone: Mapping[str, int]
    stance: str | None
    # A second annotator's stance per label, given blind (without the first's labels or the
    # matcher's output) by the rule in tests/data/devset/STANCE.md.
    stance_second: Mapping[str, str]
    side: str
    near_miss: bool
    title_kind: str

    @property
    def text(self) -> str:
        return self.title + "\n" + self.summary

    @property
    def half(self) -> str:
        return "A" if int(self.id.rsplit("-", 1)[1]) % 2 else "B"


def load_devset(directory: Path = DEVSET) -> list[Item]:
    items: list[Item] = []
    for lang in LANGUAGES:
        with (directory / f"{lang}.toml").open("rb") as fh:
            for raw in tomllib.load(fh)["item"]:
                items.append(
                    Item(
                        id=raw["id"],
                        language=raw["language"],
                        title=raw["title"],
                        summary=raw.get("summary", ""),
                        labels=frozenset(raw["labels"]),
                        milestone=dict(raw.get("milestone", {})),
                        stance=raw.get("stance"),
                        stance_second=dict(raw.get("stance_second", {})),
                        side=raw.get("country", "other"),
                        near_miss=bool(raw.get("near_miss")),
                        title_kind=raw.get("title_kind", "headline"),
                    )
                )
    return items


def select(items: Iterable[Item], half: str) -> list[Item]:
    return [i for i in items if half == "all" or i.half == half]


def builtin_rules() -> list[Any]:
    specs = [c for a in builtin_catalog() for c in a.commitments]
    return [rules_from_mapping(c.slug, c.rules, milestones=c.milestones) for c in specs]


def builtin_matcher(model: Mapping[str, Any] | None = None, **kwargs: Any) -> Matcher:
    return Matcher(builtin_rules(), model, **kwargs)


# ---------------------------------------------------------------- evaluation


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def line(self) -> str:
        return (
            f"precision {self.precision:.3f}  recall {self.recall:.3f}"
            f"  ({self.tp} tp, {self.fp} fp, {self.fn} fn)"
        )


@dataclass
class Report:
    items: int = 0
    overall: Counts = field(default_factory=Counts)
    by_language: dict[str, Counts] = field(default_factory=dict)
    by_commitment: dict[str, Counts] = field(default_factory=dict)
    milestone_right: int = 0
    milestone_matched: int = 0  # labelled milestones whose commitment the matcher attached
    milestone_total: int = 0
    milestone_extra: int = 0  # a milestone suggested where the label has none
    stance_right: int = 0
    stance_matched: int = 0
    stance_total: int = 0
    # Against the second annotator, and on the pairs where both annotators agree.
    stance_second_right: int = 0
    stance_agreed: int = 0  # labelled pairs where the two annotators agree
    stance_agreed_matched: int = 0
    stance_agreed_right: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        def c(x: Counts) -> dict[str, Any]:
            return {"precision": x.precision, "recall": x.recall, "tp": x.tp, "fp": x.fp,
                    "fn": x.fn}  # fmt: skip

        return {
            "items": self.items,
            "overall": c(self.overall),
            "by_language": {k: c(v) for k, v in sorted(self.by_language.items())},
            "by_commitment": {k: c(v) for k, v in sorted(self.by_commitment.items())},
            "milestone": {"right": self.milestone_right, "matched": self.milestone_matched,
                          "total": self.milestone_total, "extra": self.milestone_extra},
            "stance": {"right": self.stance_right, "matched": self.stance_matched,
                       "total": self.stance_total, "second_right": self.stance_second_right,
                       "annotators_agree": self.stance_agreed,
                       "agreed_matched": self.stance_agreed_matched,
                       "agreed_right": self.stance_agreed_right},
        }  # fmt: skip


def _why(cands: Sequence[Candidate], slug: str) -> str:
    for cand in cands:
        if cand.match.slug == slug:
            return "; ".join(cand.match.reasons)
    return "no rule matched"


def evaluate(matcher: Matcher, items: Iterable[Item]) -> Report:
    """Precision and recall of (item, commitment) pairs, and the suggestions' agreement."""
    report = Report()
    for item in items:
        report.items += 1
        cands = matcher.candidates(item.text, item.language, side=item.side)
        got = {c.match.slug: c.match for c in cands if c.accepted}
        for slug in set(got) | item.labels:
            hit, wanted = slug in got, slug in item.labels
            for counts in (
                report.overall,
                report.by_language.setdefault(item.language, Counts()),
                report.by_commitment.setdefault(slug, Counts()),
            ):
                if hit and wanted:
                    counts.tp += 1
                elif hit:
                    counts.fp += 1
                else:
                    counts.fn += 1
            if hit != wanted:
                kind = "FP" if hit else "FN"
                report.errors.append(
                    f"{kind} {item.id} {slug}: {item.title[:90]!r} — {_why(cands, slug)}"
                )
        for slug, number in item.milestone.items():
            report.milestone_total += 1
            if slug in got:
                report.milestone_matched += 1
                report.milestone_right += got[slug].milestone == number
        for slug, match in got.items():
            if slug in item.labels and slug not in item.milestone and match.milestone:
                report.milestone_extra += 1
        if item.stance:
            for slug in item.labels:
                report.stance_total += 1
                second = item.stance_second.get(slug)
                agreed = second == item.stance
                report.stance_agreed += agreed
                if slug in got:
                    report.stance_matched += 1
                    report.stance_right += got[slug].stance == item.stance
                    report.stance_second_right += got[slug].stance == second
                    report.stance_agreed_matched += agreed
                    report.stance_agreed_right += agreed and got[slug].stance == second
    return report


def print_report(title: str, report: Report, errors: bool = False) -> None:
    print(f"\n== {title}: {report.items} items")
    print(f"overall      {report.overall.line()}")
    for lang in LANGUAGES:
        if lang in report.by_language:
            print(f"  {lang}         {report.by_language[lang].line()}")
    for slug, counts in sorted(report.by_commitment.items()):
        print(f"  {slug:27} {counts.line()}")
    m, s = report, report
    print(
        f"milestone    right {m.milestone_right}/{m.milestone_matched} of the attached"
        f" ({_pct(m.milestone_right, m.milestone_matched)}),"
        f" {m.milestone_right}/{m.milestone_total} of all labelled"
        f" ({_pct(m.milestone_right, m.milestone_total)});"
        f" {m.milestone_extra} suggested where the label has none"
    )
    print(
        f"stance       right {s.stance_right}/{s.stance_matched} of the attached"
        f" ({_pct(s.stance_right, s.stance_matched)}),"
        f" {s.stance_right}/{s.stance_total} of all labelled"
        f" ({_pct(s.stance_right, s.stance_total)})"
    )
    print(
        f"             second annotator (blind): the two agree on {s.stance_agreed}/"
        f"{s.stance_total} ({_pct(s.stance_agreed, s.stance_total)}); the matcher agrees with"
        f" the second on {s.stance_second_right}/{s.stance_matched}"
        f" ({_pct(s.stance_second_right, s.stance_matched)}), and is right on"
        f" {s.stance_agreed_right}/{s.stance_agreed_matched}"
        f" ({_pct(s.stance_agreed_right, s.stance_agreed_matched)}) of the attached pairs"
        " both annotators agree on"
    )
    if errors:
        print(f"errors ({len(report.errors)}):")
        for line in report.errors:
            print("  " + line)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "n/a"


# ---------------------------------------------------------------- speed


def throughput(matcher: Matcher, items: Sequence[Item], minimum: int = 20_000) -> float:
    """Items per second of `Matcher.match` on one core (best of 5 rounds of ≥ `minimum` items)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: time it unpinned
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    texts = [(i.text, i.language) for i in items]
    texts = texts * max(1, -(-minimum // len(texts)))
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for text, lang in texts:
            matcher.match(text, lang)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


# ---------------------------------------------------------------- learning


def reviews_of(matcher: Matcher, items: Iterable[Item], add_missed: bool = True) -> list[Any]:
    """What a watcher reviewing `items` by their labels leaves in the database: a confirm or a
    reject for every (item, commitment) the matcher attached, and the missed ones added by hand."""
    from tracker.store.training import LabelledExample

    out: list[LabelledExample] = []
    for item in items:
        got = {m.slug for m in matcher.match(item.text, item.language, side=item.side)}
        slugs = got | item.labels if add_missed else got
        for slug in sorted(slugs):
            out.append(
                LabelledExample(
                    title=item.title,
                    summary=item.summary,
                    language=item.language,
                    slug=slug,
                    label=1 if slug in item.labels else 0,
                    milestone=item.milestone.get(slug),
                    stance=item.stance,
                    side=item.side,
                )
            )
    return out


def curated_examples() -> list[Any]:
    """The catalog's curated evidence, as the confirmed examples a new database starts with."""
    from tracker.store.training import LabelledExample

    return [
        LabelledExample(
            title=e.title, summary=e.note, language=e.language, slug=c.slug, label=1,
            milestone=e.milestone, stance=e.stance,
        )
        for a in builtin_catalog()
        for c in a.commitments
        for e in c.evidence
    ]  # fmt: skip


def learn_effect(items: Sequence[Item], add_missed: bool = True) -> dict[str, Any]:
    from tracker.learn import train

    base = builtin_matcher()
    train_items, test_items = select(items, "A"), select(items, "B")
    examples = curated_examples() + reviews_of(base, train_items, add_missed)
    started = time.perf_counter()
    model = train(examples, base)
    seconds = time.perf_counter() - started
    before = evaluate(base, test_items)
    after = evaluate(builtin_matcher(model), test_items) if model else before
    return {
        "examples": len(examples),
        "positives": sum(1 for e in examples if e.label),
        "seconds": seconds,
        "model": model,
        "before": before,
        "after": after,
    }


def training_time(n: int = 10_000) -> float:
    """Seconds to train on `n` examples made of the dev set's reviews, repeated with varied text
    (so that every example is a distinct item, as in a real database)."""
    from tracker.learn import train
    from tracker.store.training import LabelledExample

    base = builtin_matcher()
    seeds = curated_examples() + reviews_of(base, load_devset())
    examples = []
    for k in range(n):
        e = seeds[k % len(seeds)]
        examples.append(
            LabelledExample(
                title=f"{e.title} ({k})", summary=e.summary, language=e.language, slug=e.slug,
                label=e.label, milestone=e.milestone, stance=e.stance, side=e.side,
            )
        )  # fmt: skip
    started = time.perf_counter()
    train(examples, base)
    return time.perf_counter() - started


# ---------------------------------------------------------------- fitting the scorer


def fit_weights(items: Sequence[Item], l2: float = 1.0) -> dict[str, float]:
    """Logistic regression of the label on the scorer's features, over every candidate the rules
    propose for `items` (gradient descent; a dozen weights, a few hundred candidates)."""
    matcher = builtin_matcher()
    rows: list[tuple[Mapping[str, float], int]] = []
    for item in items:
        for cand in matcher.candidates(item.text, item.language, side=item.side):
            rows.append((cand.features, 1 if cand.match.slug in item.labels else 0))
    names = sorted({k for feats, _ in rows for k in feats})
    w = dict.fromkeys(names, 0.0)
    bias = 0.0
    rate = 0.5
    for _ in range(4000):
        grad = dict.fromkeys(names, 0.0)
        gb = 0.0
        for feats, label in rows:
            z = bias + sum(w[k] * v for k, v in feats.items())
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            gb += p - label
            for k, v in feats.items():
                grad[k] += (p - label) * v
        n = len(rows) or 1
        bias -= rate * gb / n
        for k in names:
            w[k] -= rate * (grad[k] / n + l2 * w[k] / n)
    return {"bias": bias, **w}


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("all", "A", "B"), default="all")
    parser.add_argument("--errors", action="store_true", help="list every error")
    parser.add_argument("--learn", action="store_true", help="train on half A's reviews")
    parser.add_argument("--fit", action="store_true", help="refit WEIGHTS on half A")
    parser.add_argument("--no-speed", action="store_true", help="skip the throughput runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    items = load_devset()
    matcher = builtin_matcher()
    out: dict[str, Any] = {}
    if args.fit:
        weights = fit_weights(select(items, "A"))
        print("weights fitted on half A:")
        print(json.dumps({k: round(v, 2) for k, v in weights.items()}, indent=1))
        refit = builtin_matcher(weights=weights)
        print_report("half B with the refitted weights", evaluate(refit, select(items, "B")))
        print_report("half A with the refitted weights", evaluate(refit, select(items, "A")))

    halves = ("all", "A", "B") if args.half == "all" else (args.half,)
    for half in halves:
        report = evaluate(matcher, select(items, half))
        name = {"all": "dev set", "A": "half A", "B": "half B"}[half]
        print_report(name, report, errors=args.errors and half == args.half)
        out[half] = report.as_dict()

    if args.learn:
        effect = learn_effect(items)
        print(
            f"\n== learning: {effect['examples']} examples ({effect['positives']} confirmed) from"
            f" the catalog and the reviews of half A, trained in {effect['seconds']:.3f} s"
        )
        if effect["model"] is None:
            print("not enough examples to learn from")
        else:
            ratios = sum(len(r) for r in effect["model"]["ratios"].values())
            print(f"model: {effect['model']['stack']}, {ratios} ratios")
        print(f"half B before: {effect['before'].overall.line()}")
        print(f"half B after:  {effect['after'].overall.line()}")
        for lang in LANGUAGES:
            b, a = effect["before"].by_language.get(lang), effect["after"].by_language.get(lang)
            if b and a:
                print(f"  {lang} before {b.line()}\n     after  {a.line()}")
        seconds = training_time()
        print(f"training on 10,000 examples: {seconds:.2f} s")
        out["learn"] = {
            "examples": effect["examples"],
            "seconds": effect["seconds"],
            "before": effect["before"].as_dict()["overall"],
            "after": effect["after"].as_dict()["overall"],
            "train_10000_s": seconds,
        }

    if not args.no_speed:
        speed = throughput(matcher, items)
        print(f"\nthroughput: {speed:,.0f} items/s on one core (Matcher.match over the dev set)")
        out["items_per_s"] = speed
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
