"""Learning from reviews (tracker/learn.py) and its storage (tracker/store/training.py): what is
learned moves candidates the way the reviews went, the weights are plain JSON that the matcher
scores with on its own, and `retrain` reads every review from the database and stores the model
on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from tracker.learn import MIN_EACH, MODEL_NAME, retrain, train
from tracker.matching import CommitmentRules, Matcher, Rule, model_features, model_logit, tokenize
from tracker.register import open_store
from tracker.settings import Settings
from tracker.store import reads, writes
from tracker.store.records import NewEvidence
from tracker.store.training import (
    LabelledExample,
    labelled_examples,
    load_model,
    save_model,
    stored_model,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 12, 0)
TODAY = date(2026, 11, 30)

# One commitment whose single rule ("Araz" and "bridge") cannot tell the crossing's bridge from
# the dam's: what the reviews have to teach.
BRIDGE = Matcher([CommitmentRules("bridge", (Rule("r", (("Araz",), ("bridge",)), ()),), ())])


def example(title: str, label: int, slug: str = "bridge") -> LabelledExample:
    return LabelledExample(title=title, summary="", language="en", slug=slug, label=label)


def reviews(n: int = 12) -> list[LabelledExample]:
    confirmed = [
        example(f"Customs post at the Araz bridge crossing ready, report {i}", 1) for i in range(n)
    ]
    rejected = [
        example(f"Araz bridge near the dam reservoir floods fields, report {i}", 0)
        for i in range(n)
    ]
    return confirmed + rejected


def logit_of(matcher: Matcher, text: str) -> float:
    [cand] = matcher.candidates(text, "en")
    return cand.logit


def test_nothing_is_learned_from_one_kind_of_review_only() -> None:
    only_confirmed = [example(f"Araz bridge crossing {i}", 1) for i in range(40)]
    assert train(only_confirmed, BRIDGE) is None
    assert train(reviews(MIN_EACH - 1)[: MIN_EACH - 1], BRIDGE) is None


def test_model_lowers_what_was_rejected_and_raises_what_was_confirmed() -> None:
    model = train(reviews(), BRIDGE)
    assert model is not None
    learned = Matcher(
        [CommitmentRules("bridge", (Rule("r", (("Araz",), ("bridge",)), ()),), ())], model
    )
    dam = "Araz bridge by the dam reservoir"
    crossing = "Araz bridge customs post opens"
    assert logit_of(learned, dam) < logit_of(BRIDGE, dam)
    assert logit_of(learned, crossing) > logit_of(BRIDGE, crossing)
    [match] = learned.match(crossing)
    assert any(r.startswith("learned from reviews: +") for r in match.reasons)


def test_a_reviewed_items_other_candidates_count_as_rejected() -> None:
    """The person who confirmed an item for one commitment did not find it evidence for the
    others the rules proposed: those are the only examples of what falls below the threshold."""
    two = Matcher(
        [
            CommitmentRules("bridge", (Rule("r", (("Araz",), ("bridge",)), ()),), ()),
            CommitmentRules("dam", (Rule("r", (("Araz",), ("dam",)), ()),), ()),
        ]
    )
    confirmed_bridge_only = [
        example(f"Araz bridge and the old dam road, report {i}", 1) for i in range(8)
    ]
    model = train(confirmed_bridge_only, two)
    assert model is not None
    assert model["negatives"] == 8  # every item's "dam" candidate
    assert model["positives"] == 8


def test_model_is_plain_json_and_scoring_never_imports_the_training_code() -> None:
    model = train(reviews(), BRIDGE)
    assert model is not None
    assert json.loads(json.dumps(model)) == model
    assert set(model) >= {"ratios", "stack"}
    # Scoring is look-ups and one sum over the text's features.
    features = model_features(tokenize("Araz bridge customs post"), "AZ")
    assert isinstance(model_logit(model, "bridge", features, 0.5), float)
    script = (
        "import json, sys\n"
        "from tracker.matching import CommitmentRules, Matcher, Rule\n"
        f"model = json.loads({json.dumps(json.dumps(model))})\n"
        "rules = [CommitmentRules('bridge', (Rule('r', (('Araz',), ('bridge',)), ()),), ())]\n"
        "Matcher(rules, model).match('Araz bridge customs post')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('tracker.learn', 'sklearn'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_a_malformed_model_is_refused() -> None:
    with pytest.raises(ValueError, match="ratios, stack"):
        Matcher([], {"weights": {}})


def test_training_ten_thousand_examples_takes_about_a_second() -> None:
    """The target is under a second (tests/bench/matching.py --learn measures it); the bound
    here only catches a change that makes training several times slower."""
    examples = [
        LabelledExample(
            title=f"Araz bridge {'customs post' if i % 3 else 'dam reservoir'} report {i}",
            summary="Officials of Iran and Azerbaijan inspected the works on the Araz river. " * 3,
            language="en",
            slug="bridge",
            label=1 if i % 3 else 0,
        )
        for i in range(10_000)
    ]
    started = time.perf_counter()
    model = train(examples, BRIDGE)
    assert model is not None
    assert time.perf_counter() - started < 5.0


# --- storage and retraining, on both backends --------------------------------------------------


def pending(conn: object, slug: str, title: str, n: int) -> int:
    ids = dict(reads.match_set(conn).ids)  # type: ignore[arg-type]
    url = f"https://example.org/news/{n}"
    writes.store_found(
        conn,  # type: ignore[arg-type]
        [
            NewEvidence(
                commitment_id=ids[slug],
                url=url,
                canonical_url=url,
                title=title,
                published_at=NOW,
                source="test-feed",
                created_at=NOW,
                language="en",
                country="AZ",
            )
        ],
    )
    rows = [e for e in reads.pending(conn) if e.url == url]  # type: ignore[arg-type]
    return rows[0].id


def test_retrain_reads_reviews_and_stores_the_model(db: str) -> None:
    database = open_store(Settings(db=db))
    try:
        with database.write() as conn:
            curated = len(labelled_examples(conn))
            for i in range(8):
                ok = pending(conn, "khodaafarin-crossing", f"Aghband customs post works {i}", i)
                writes.review(conn, ok, "confirmed", by="ana", today=TODAY, now=NOW)
                bad = pending(
                    conn, "khodaafarin-crossing", f"Khudafarin bridges photo tour {i}", 100 + i
                )
                writes.review(conn, bad, "rejected", by="ana", today=TODAY, now=NOW)
            # Pending items are not examples.
            pending(conn, "khodaafarin-crossing", "Aghband bridge still pending", 999)
            examples = labelled_examples(conn)
            assert len(examples) == curated + 16
            assert sum(1 for e in examples if not e.label) == 8
            assert {e.side for e in examples if e.title.startswith("Aghband customs")} == {"AZ"}
            result = retrain(conn, now=NOW)
        assert result.saved, result.note
        assert (result.examples, result.negatives) == (curated + 16, 8)
        assert result.features > 0 and result.seconds < 5
        assert "learned from" in result.note
        with database.read() as conn:
            model = load_model(conn, MODEL_NAME)
            row = stored_model(conn, MODEL_NAME)
        assert model is not None and row is not None
        assert (row.examples, row.trained_at) == (curated + 16, NOW)
        # The stored weights work in a matcher built from the same database's rules.
        with database.read() as conn:
            rules = reads.match_set(conn).rules
        from tracker.matching import rules_from_mapping

        matcher = Matcher((rules_from_mapping(s, r) for s, r in rules.items()), model)
        assert matcher.match("Aghband customs post works continue")
        # Retraining replaces the stored model.
        with database.write() as conn:
            again = retrain(conn, now=datetime(2026, 12, 1))
            assert again.saved
        with database.read() as conn:
            assert stored_model(conn, MODEL_NAME).trained_at == datetime(2026, 12, 1)  # type: ignore[union-attr]
    finally:
        database.dispose()


def test_retrain_without_enough_reviews_stores_nothing_and_says_why(db: str) -> None:
    database = open_store(Settings(db=db))
    try:
        with database.write() as conn:
            # Curated evidence only: confirmed examples, and too few rejections.
            conn.run("DELETE FROM review_event")
            conn.run("UPDATE evidence SET review = 'confirmed'")
            conn.run("DELETE FROM evidence WHERE id NOT IN (SELECT MIN(id) FROM evidence)")
            result = retrain(conn, now=NOW)
            assert not result.saved
            assert result.note.startswith("not learning yet")
            assert load_model(conn, MODEL_NAME) is None
    finally:
        database.dispose()


def test_save_model_replaces_and_load_model_reads_back(db: str) -> None:
    database = open_store(Settings(db=db))
    try:
        with database.write() as conn:
            assert load_model(conn, "other") is None
            save_model(conn, "other", {"ratios": {}, "stack": {"bias": 0.0}}, 3, NOW)
            save_model(conn, "other", {"ratios": {"*": {"x": 1.0}}, "stack": {}}, 4, NOW)
        with database.read() as conn:
            assert load_model(conn, "other") == {"ratios": {"*": {"x": 1.0}}, "stack": {}}
            assert stored_model(conn, "other").examples == 4  # type: ignore[union-attr]
    finally:
        database.dispose()
