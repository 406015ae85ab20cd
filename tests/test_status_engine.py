"""The status engine's rules, exhaustively, without a database."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tracker.status import (
    DEFAULT_STALL_DAYS,
    CommitmentFacts,
    EvidenceFact,
    Override,
    digest,
    evaluate,
)

ANNOUNCED = date(2022, 2, 19)
FACTS = CommitmentFacts(
    slug="tabriz-baku-flight",
    announced_on=ANNOUNCED,
    milestones=[
        "route agreed",
        "airline designated",
        "tickets on sale",
        "first flight",
        "regular service",
    ],
)


def ev(
    i: int,
    on: date,
    stance: str = "progress",
    review: str = "confirmed",
    milestone: int | None = None,
    cancels: bool = False,
) -> EvidenceFact:
    return EvidenceFact(
        id=i, on=on, stance=stance, review=review, milestone=milestone, cancels=cancels
    )


def verdict(
    evidence: list[EvidenceFact],
    today: date,
    facts: CommitmentFacts = FACTS,
    override: Override | None = None,
):  # type: ignore[no-untyped-def]
    return evaluate(facts, digest(evidence), today, override)


def test_fresh_commitment_is_announced() -> None:
    v = verdict([], ANNOUNCED + timedelta(days=10))
    assert v.status == "announced"
    assert v.progress == 0
    assert v.flags == ()
    assert "no confirmed progress yet" in v.explanation


def test_announced_becomes_stalled_after_the_window() -> None:
    assert verdict([], ANNOUNCED + timedelta(days=DEFAULT_STALL_DAYS)).status == "announced"
    v = verdict([], ANNOUNCED + timedelta(days=DEFAULT_STALL_DAYS + 1))
    assert v.status == "stalled"
    assert (
        f"no confirmed progress since it was announced {DEFAULT_STALL_DAYS + 1} days ago"
        in v.explanation
    )
    assert "the limit is 180" in v.explanation


def test_stall_window_is_configurable_per_commitment() -> None:
    facts = CommitmentFacts(slug="x", announced_on=ANNOUNCED, milestones=["a", "b"], stall_days=30)
    assert verdict([], ANNOUNCED + timedelta(days=30), facts).status == "announced"
    assert verdict([], ANNOUNCED + timedelta(days=31), facts).status == "stalled"


def test_confirmed_milestone_means_in_progress_and_names_it() -> None:
    on = date(2025, 5, 10)
    v = verdict([ev(7, on, milestone=1)], on + timedelta(days=3))
    assert v.status == "in_progress"
    assert v.progress == 1
    assert "milestone 1/5 'route agreed'" in v.explanation
    assert "evidence #7" in v.explanation


def test_pending_evidence_moves_nothing_but_raises_needs_review() -> None:
    on = date(2025, 5, 10)
    v = verdict([ev(1, on, review="pending", milestone=4)], on)
    assert v.status == "stalled"  # years since the announcement, and pending counts for nothing
    assert v.progress == 0
    assert v.flags == ("needs_review",)
    assert "1 evidence item waiting for review" in v.explanation


def test_rejected_evidence_counts_for_nothing() -> None:
    on = date(2025, 5, 10)
    v = verdict([ev(1, on, review="rejected", milestone=5)], on)
    assert v.status == "stalled"
    assert v.flags == ()


def test_progress_goes_quiet_then_stalls() -> None:
    on = date(2025, 1, 1)
    facts = [ev(1, on, milestone=2)]
    assert verdict(facts, on + timedelta(days=DEFAULT_STALL_DAYS)).status == "in_progress"
    v = verdict(facts, on + timedelta(days=DEFAULT_STALL_DAYS + 1))
    assert v.status == "stalled"
    assert "last reached milestone 2/5 'airline designated'" in v.explanation


def test_progress_without_milestone_keeps_it_alive() -> None:
    first = date(2024, 1, 1)
    later = first + timedelta(days=170)
    facts = [ev(1, first, milestone=1), ev(2, later)]  # later: progress news, no milestone
    v = verdict(facts, first + timedelta(days=DEFAULT_STALL_DAYS + 30))
    assert v.status == "in_progress"


def test_final_milestone_is_delivered_and_skipping_steps_is_fine() -> None:
    on = date(2025, 12, 23)
    v = verdict([ev(3, on, milestone=5)], on + timedelta(days=900))
    assert v.status == "delivered"  # delivered never stalls
    assert v.progress == 5
    assert "milestone 5/5 'regular service' reached on 2025-12-23 (evidence #3)" in v.explanation


def test_setback_after_delivery_is_partially_delivered() -> None:
    done = date(2025, 9, 4)
    v = verdict(
        [ev(1, done, milestone=5), ev(2, done + timedelta(days=60), stance="setback")],
        done + timedelta(days=61),
    )
    assert v.status == "partially_delivered"
    assert "then a confirmed setback on 2025-11-03 (evidence #2)" in v.explanation


def test_setback_before_delivery_does_not_undo_it() -> None:
    done = date(2025, 9, 4)
    v = verdict(
        [ev(1, done - timedelta(days=10), stance="setback"), ev(2, done, milestone=5)], done
    )
    assert v.status == "delivered"


def test_confirmed_cancellation_is_broken_even_after_progress() -> None:
    on = date(2024, 3, 1)
    v = verdict(
        [ev(1, on, milestone=2), ev(2, on + timedelta(days=5), stance="setback", cancels=True)],
        on + timedelta(days=6),
    )
    assert v.status == "broken"
    assert "confirmed cancellation on 2024-03-06 (evidence #2)" in v.explanation


def test_pending_cancellation_is_not_broken() -> None:
    on = date(2024, 3, 1)
    v = verdict(
        [ev(1, on, milestone=2), ev(2, on, stance="setback", review="pending", cancels=True)], on
    )
    assert v.status == "in_progress"


def test_overdue_and_late_flags() -> None:
    facts = CommitmentFacts(
        slug="x", announced_on=ANNOUNCED, milestones=["a", "b"], deadline=date(2023, 1, 1)
    )
    assert "overdue" in verdict([], date(2023, 1, 2), facts).flags
    assert "overdue" not in verdict([], date(2023, 1, 1), facts).flags
    late = verdict([ev(1, date(2023, 6, 1), milestone=2)], date(2023, 6, 2), facts)
    assert late.status == "delivered"
    assert late.flags == ("late",)
    on_time = verdict([ev(1, date(2022, 12, 1), milestone=2)], date(2023, 6, 2), facts)
    assert on_time.flags == ()


def test_broken_is_not_overdue() -> None:
    facts = CommitmentFacts(
        slug="x", announced_on=ANNOUNCED, milestones=["a", "b"], deadline=date(2023, 1, 1)
    )
    v = verdict([ev(1, date(2022, 6, 1), stance="setback", cancels=True)], date(2024, 1, 1), facts)
    assert v.status == "broken"
    assert "overdue" not in v.flags


@pytest.mark.parametrize(
    ("progress_age", "setback_age", "disputed"),
    [(10, 20, True), (10, 89, True), (10, 91, False), (95, 10, False), (None, 10, False)],
)
def test_disputed_when_recent_evidence_points_both_ways(
    progress_age: int | None, setback_age: int, disputed: bool
) -> None:
    today = date(2026, 1, 1)
    facts = [ev(1, today - timedelta(days=setback_age), stance="setback")]
    if progress_age is not None:
        facts.append(ev(2, today - timedelta(days=progress_age), milestone=1))
    assert ("disputed" in verdict(facts, today).flags) is disputed


def test_first_confirmation_of_a_milestone_dates_it() -> None:
    d1, d2 = date(2025, 7, 29), date(2025, 9, 4)
    dg = digest(
        [
            ev(9, d2, milestone=4),
            ev(4, d1, milestone=4),
            ev(5, d1 - timedelta(days=1), milestone=4, review="pending"),
        ]
    )
    assert dg.reached[4].on == d1
    assert dg.reached[4].evidence_id == 4


def test_out_of_range_milestones_are_ignored() -> None:
    on = date(2025, 1, 1)
    v = verdict([ev(1, on, milestone=9)], on)
    assert v.progress == 0
    assert v.status != "delivered"


def test_override_wins_and_keeps_the_computed_reason() -> None:
    on = date(2025, 1, 1)
    ov = Override(status="broken", reason="minister said no", by="ana", on=on)
    v = verdict([ev(1, on, milestone=1)], on, override=ov)
    assert v.status == "broken"
    assert v.computed_status == "in_progress"
    assert v.explanation.startswith("set to broken by ana on 2025-01-01: minister said no")
    assert "computed: in_progress" in v.explanation


def test_flags_are_in_a_stable_order() -> None:
    facts = CommitmentFacts(
        slug="x", announced_on=ANNOUNCED, milestones=["a", "b"], deadline=date(2023, 1, 1)
    )
    today = date(2025, 1, 1)
    evidence = [
        ev(1, today, review="pending"),
        ev(2, today - timedelta(days=1), stance="setback"),
        ev(3, today - timedelta(days=2), milestone=1),
    ]
    assert verdict(evidence, today, facts).flags == ("overdue", "needs_review", "disputed")


# ---------------------------------------------------------------- the decision table, from data


def _rule_cases() -> list[dict]:  # type: ignore[type-arg]
    import tomllib
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "status_rules.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))["case"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", _rule_cases(), ids=lambda c: c["name"])
def test_decision_table_row(case: dict) -> None:  # type: ignore[type-arg]
    facts = CommitmentFacts(slug="c", announced_on=ANNOUNCED, milestones=["a", "b", "c"])
    evidence = [
        ev(i, ANNOUNCED + timedelta(days=day), stance, review, milestone or None, cancels)
        for i, day, stance, review, milestone, cancels in case["evidence"]
    ]
    v = verdict(evidence, ANNOUNCED + timedelta(days=case["today"]), facts)
    assert (v.status, v.rule) == (case["status"], case["rule"]), v.explanation
    for cited in case["cites"]:
        assert f"evidence #{cited}" in v.explanation
    assert not re.search(r"-\d+ day", v.explanation)


def test_decision_table_covers_every_rule() -> None:
    rules = {c["rule"] for c in _rule_cases()}
    assert rules == {
        "cancelled",
        "delivered-then-setback",
        "delivered",
        "announced",
        "stalled-since-announcement",
        "in-progress",
        "stalled",
    }


def test_a_later_milestone_implies_the_earlier_ones() -> None:
    v = verdict(
        [ev(1, ANNOUNCED + timedelta(days=30), milestone=3)], ANNOUNCED + timedelta(days=40)
    )
    states = {m.position: m for m in v.milestones}
    assert v.progress == 3
    assert [m.reached for m in v.milestones] == [True, True, True, False, False]
    assert states[1].implied and states[2].implied and states[1].on is None
    assert not states[3].implied and states[3].evidence_id == 1
