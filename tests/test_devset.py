"""The matcher on the development set of real news (tests/data/devset, issue 12): quality must
not silently fall back.

The floors sit a little under what the matcher reached when they were set (tests/bench/matching.py
prints the figures, the errors and the throughput). Raising the matcher raises them; a change
that lowers a figure below its floor fails here and has to say why."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent / "bench" / "matching.py"
SLUGS = {
    "joint-industrial-park",
    "reconstruction-engineering",
    "khodaafarin-crossing",
    "new-access-point",
    "tabriz-baku-flight",
    "health-tourism",
    "tourist-tours",
    "tractor-dealership",
}

# Reached on 2026-11-30: precision 0.959, recall 0.901; per language precision 0.918-1.000,
# recall 0.860-0.940; milestone 84% and stance 90% (190/210) of the attached pairs.
FLOOR = {"precision": 0.95, "recall": 0.88}
LANGUAGE_FLOOR = {"precision": 0.90, "recall": 0.84}
MILESTONE_FLOOR = 0.82  # right among labelled milestones whose commitment was attached
STANCE_FLOOR = 0.90  # right among labelled stances whose commitment was attached


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("devset_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture(scope="module")
def items() -> list[Any]:
    return bench.load_devset()


@pytest.fixture(scope="module")
def report(items: list[Any]) -> Any:
    return bench.evaluate(bench.builtin_matcher(), items)


def test_devset_is_what_the_issue_asked_for(items: list[Any]) -> None:
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids)) >= 400
    for language in ("fa", "az", "en", "ru"):
        assert sum(1 for i in items if i.language == language) >= 60, language
    assert sum(1 for i in items if i.near_miss) >= len(items) / 2
    for item in items:
        assert item.labels <= SLUGS, item.id
        assert not (item.near_miss and item.labels), item.id
        assert set(item.milestone) <= item.labels, item.id
        if item.labels:
            assert item.stance in {"progress", "setback", "neutral"}, item.id
            # The second, blind annotation covers every label (tests/data/devset/STANCE.md).
            assert set(item.stance_second) == item.labels, item.id
            assert set(item.stance_second.values()) <= {"progress", "setback", "neutral"}
    # Both halves (tuning and checking) hold every language.
    for half in ("A", "B"):
        assert {i.language for i in items if i.half == half} == {"fa", "az", "en", "ru"}


def test_precision_and_recall_overall(report: Any) -> None:
    overall = report.overall
    print(f"\ndev set: {overall.line()}")
    assert overall.precision >= FLOOR["precision"], "\n".join(report.errors)
    assert overall.recall >= FLOOR["recall"], "\n".join(report.errors)


@pytest.mark.parametrize("language", ["fa", "az", "en", "ru"])
def test_precision_and_recall_per_language(report: Any, language: str) -> None:
    counts = report.by_language[language]
    errors = [e for e in report.errors if f" {language}-" in e]
    assert counts.precision >= LANGUAGE_FLOOR["precision"], "\n".join(errors)
    assert counts.recall >= LANGUAGE_FLOOR["recall"], "\n".join(errors)


def test_suggested_milestone_and_stance(report: Any) -> None:
    r = report
    milestone = r.milestone_right / r.milestone_matched
    stance = r.stance_right / r.stance_matched
    print(f"\nmilestone right {milestone:.0%}, stance right {stance:.0%} of the attached pairs")
    assert milestone >= MILESTONE_FLOOR
    assert stance >= STANCE_FLOOR


def test_every_match_explains_itself(items: list[Any]) -> None:
    matcher = bench.builtin_matcher()
    for item in items[::7]:
        for match in matcher.match(item.text, item.language, side=item.side):
            assert match.reasons[0].startswith("rule "), item.id
            assert match.reasons[-1].startswith("score "), item.id
            assert 0.0 <= match.score <= 1.0
            assert match.stance in {"progress", "setback", "neutral"}
