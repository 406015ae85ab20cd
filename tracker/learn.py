"""Learning from reviews: a small model that re-ranks the matcher's candidates.

Every confirm and every reject a watcher makes is a labelled (item, commitment) example; the
catalog's curated evidence and evidence added by hand are confirmed examples too, and a reviewed
item's other candidates (commitments the rules propose for it that nobody confirmed) count as
rejected. From them `train` builds, in pure Python and in about a second for ten thousand
examples:

* naive-Bayes log ratios of how often each feature occurs in confirmed and in rejected examples,
  for all commitments and for each one. The features are the text's (`matching.model_features`:
  words, five-letter stems, the source's side) and the candidate's (`candidate_features`: the
  rule that proposed it and the scorer's features that are on), so reviews teach both words
  ("dam" is not the crossing) and how far to trust each rule and signal for each commitment;
* one weight: how much the mean ratio of a candidate's features (centred, so the model raises
  some candidates and lowers others) adds to the matcher's own logit. It is fitted by a
  logistic regression on the reviewed candidates, each half scored with ratios counted on the
  other half (so that no example scores itself), rejections weighing twice, and pulled towards
  zero so that a few reviews move the matcher only a little.

This is the NBSVM recipe (Wang & Manning, 2012) reduced to what a few hundred reviews can
support. The weights are plain JSON, stored in the database (`tracker.store.training`) so that
every watcher of a team shares them; a refresh reads them and scores with
`matching.model_logit`, a few look-ups and one sum, never importing anything from here. No
training library is needed (scikit-learn was not worth a dependency for a one-weight fit).
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tracker.matching import (
    Matcher,
    candidate_features,
    model_features,
    rules_from_mapping,
    tokenize,
)
from tracker.store.training import MODEL_NAME, LabelledExample, labelled_examples, save_model

if TYPE_CHECKING:
    from tracker.store.conn import Conn

__all__ = ["MODEL_NAME", "TrainResult", "retrain", "train"]

MIN_EACH = 5  # confirmed and rejected examples needed, at least, before anything is learned
_PRIOR_COUNT = 5.0  # pseudo examples pulling each class's rate of a feature to its overall rate
_MIN_COUNT = 2  # a feature seen once teaches nothing that generalises; it is left out
_MIN_RATIO = 0.05  # ratios closer to zero than this are left out of the stored model
# How strongly the evidence's weight is pulled towards 0 (none). An absolute penalty, so it
# counts for much against the few hundred reviews of a new team (on the development set's splits,
# weaker pulls let the model's noise cost more than it taught) and for little against thousands.
_L2 = 200.0
_MAX_WEIGHT = 2.0
_NEWTON_STEPS = 25
# A wrong attachment costs the watcher twice what a miss costs: the targets allow 5% of
# attachments to be wrong and 10% of evidence to be missed. Rejections weigh that much more.
_REJECT_WEIGHT = 2.0


@dataclass(frozen=True)
class TrainResult:
    """What one training did, for the person who triggered it."""

    name: str
    examples: int
    positives: int
    negatives: int
    features: int  # features kept in the stored model
    seconds: float
    saved: bool
    note: str  # one line: what was learned, or why nothing was


_MAX_STACK_TEXTS = 400  # the weight is fitted on the latest reviewed texts (bounded work)
# Enough characters for the model's first words (matching._MODEL_WORDS) in any of the languages.
_FEATURE_CHARS = 2000


@dataclass
class _Text:
    """One reviewed item and what a person said about each commitment."""

    text: str
    language: str
    side: str | None
    labels: dict[str, int]
    features: list[str]
    fold: int  # the half whose counts do not see this text (see _fit)
    bases: dict[str, float] | None = None  # the matcher's logit per candidate commitment
    extra: dict[str, list[str]] = field(default_factory=dict)  # candidate features, per slug


def _texts(examples: Sequence[LabelledExample]) -> list[_Text]:
    """The examples grouped by item (one item is often reviewed for several commitments)."""
    by_key: dict[tuple[str, str, str, str | None], _Text] = {}
    for ex in examples:
        key = (ex.title, ex.summary, ex.language, ex.side)
        found = by_key.get(key)
        if found is None:
            text = ex.title + "\n" + ex.summary
            found = _Text(
                text=text,
                language=ex.language,
                side=ex.side,
                labels={},
                # The features read the first words only: no need to tokenise a long summary.
                features=model_features(tokenize(text[:_FEATURE_CHARS]), ex.side),
                fold=zlib.crc32(text.encode("utf-8", "surrogatepass")) & 1,
            )
            by_key[key] = found
        # The latest decision on a pair wins (examples come oldest first).
        found.labels[ex.slug] = 1 if ex.label else 0
    return list(by_key.values())


class _Counts:
    """Document frequencies of features among confirmed and rejected examples, for all
    commitments ("*") and per commitment."""

    def __init__(self) -> None:
        self.pos: dict[str, Counter[str]] = {}
        self.neg: dict[str, Counter[str]] = {}
        self.n_pos: Counter[str] = Counter()
        self.n_neg: Counter[str] = Counter()

    def add(self, slug: str, features: list[str], label: int) -> None:
        counts, totals = (self.pos, self.n_pos) if label else (self.neg, self.n_neg)
        for key in ("*", slug):
            counts.setdefault(key, Counter()).update(features)
            totals[key] += 1

    def ratios(self, key: str) -> dict[str, float]:
        """Log ratios of how often each feature (seen at least _MIN_COUNT times) occurs in the
        confirmed and in the rejected examples.

        Both rates are smoothed towards the feature's overall rate with _PRIOR_COUNT pseudo
        examples, so a feature seen rarely, or a class with few examples (rejections are the
        scarce ones), says little: with 200 confirmations and 20 rejections, a word absent from
        the rejections is weak evidence for confirming."""
        pos, neg = self.pos.get(key, Counter()), self.neg.get(key, Counter())
        n_pos, n_neg = self.n_pos[key], self.n_neg[key]
        total = n_pos + n_neg
        if not n_pos or not n_neg:
            return {}
        a = _PRIOR_COUNT
        out: dict[str, float] = {}
        nget, pget = neg.get, pos.get
        for f in pos.keys() | neg.keys():
            p, q = pget(f, 0), nget(f, 0)
            if p + q < _MIN_COUNT:
                continue
            rate = (p + q) / total
            out[f] = math.log((p + a * rate) / (n_pos + a)) - math.log((q + a * rate) / (n_neg + a))
        return out


def _evidence(every: dict[str, float], own: dict[str, float], features: list[str]) -> float:
    total = sum(every.get(f, 0.0) + own.get(f, 0.0) for f in features)
    return total / math.sqrt(len(features) or 1)


def _fit_weight(points: list[tuple[float, float, int]]) -> float:
    """The weight of the (centred) ratio evidence in logit = matcher logit + weight × evidence:
    a one-parameter logistic regression, L2-penalised, by Newton's method, kept within
    [0, _MAX_WEIGHT]. Rejections weigh _REJECT_WEIGHT."""
    w = 0.0
    for _ in range(_NEWTON_STEPS):
        g, h = _L2 * w, _L2
        for base, ev, label in points:
            z = base + w * ev
            p = 1.0 / (1.0 + math.exp(-z)) if -30 < z < 30 else (0.0 if z <= -30 else 1.0)
            weight = 1.0 if label else _REJECT_WEIGHT
            g += weight * (p - label) * ev
            h += weight * p * (1.0 - p) * ev * ev
        step = g / h
        w = min(max(w - step, 0.0), _MAX_WEIGHT)
        if abs(step) < 1e-6:
            break
    return w


def train(examples: Sequence[LabelledExample], matcher: Matcher) -> dict[str, Any] | None:
    """The model's weights learned from `examples`, or None while there are fewer than MIN_EACH
    confirmed or rejected (item, commitment) pairs. `matcher` is the catalog's matcher without a
    model: its scores are what the model learns to correct.

    Besides the explicit decisions, a reviewed item's other candidates (commitments the rules
    propose for it that nobody confirmed) count as rejected: the person who read the item did not
    find it evidence for them. They are the only examples of what the matcher proposes below its
    threshold, which a watcher never sees."""
    texts = _texts(examples)
    # The weight is fitted on the latest texts only (bounded work); the ratios count all.
    for t in texts[-_MAX_STACK_TEXTS:]:
        cands = matcher.candidates(t.text, t.language or None, side=t.side)
        t.bases = {c.match.slug: c.base for c in cands}
        t.extra = {c.match.slug: candidate_features(c.match.rule, c.features) for c in cands}
        for slug in t.bases:
            t.labels.setdefault(slug, 0)
    positives = sum(v for t in texts for v in t.labels.values())
    negatives = sum(len(t.labels) for t in texts) - positives
    if positives < MIN_EACH or negatives < MIN_EACH:
        return None

    folds = [_Counts(), _Counts()]
    for t in texts:
        for slug, label in t.labels.items():
            folds[t.fold].add(slug, t.features + t.extra.get(slug, []), label)
    # Cross-fitted evidence: each half is scored with the ratios counted on the other half.
    cache: dict[tuple[int, str], dict[str, float]] = {}

    def ratios_of(fold: int, key: str) -> dict[str, float]:
        if (fold, key) not in cache:
            cache[fold, key] = folds[1 - fold].ratios(key)
        return cache[fold, key]

    points = [
        (
            t.bases[slug],
            _evidence(ratios_of(t.fold, "*"), ratios_of(t.fold, slug), t.features + t.extra[slug]),
            label,
        )
        for t in texts
        if t.bases is not None
        for slug, label in t.labels.items()
        if slug in t.bases
    ]
    # The evidence is centred on the candidates it was fitted on, so that the model raises some
    # candidates and lowers others rather than moving all of them: the matcher's threshold keeps
    # its meaning. Only the evidence's weight is fitted (one number; stable with few reviews).
    centre = sum(ev for _, ev, _ in points) / len(points) if points else 0.0
    centred = [(b, ev - centre, label) for b, ev, label in points]
    nb_weight = _fit_weight(centred) if centred else 0.0
    bias, base_weight = -nb_weight * centre, 1.0

    everything = _Counts()
    for fold in folds:
        for key, counter in fold.pos.items():
            everything.pos.setdefault(key, Counter()).update(counter)
        for key, counter in fold.neg.items():
            everything.neg.setdefault(key, Counter()).update(counter)
        everything.n_pos.update(fold.n_pos)
        everything.n_neg.update(fold.n_neg)
    ratios: dict[str, dict[str, float]] = {}
    for key in everything.pos.keys() | everything.neg.keys():
        kept = {f: round(r, 3) for f, r in everything.ratios(key).items() if abs(r) >= _MIN_RATIO}
        if kept:
            ratios[key] = kept
    return {
        "format": 1,
        "kind": "naive-bayes ratios + logistic regression",
        "ratios": ratios,
        "stack": {
            "bias": round(bias, 4),
            "base": round(base_weight, 4),
            "nb": round(nb_weight, 4),
        },
        "examples": len(examples),
        "positives": positives,
        "negatives": negatives,
        "candidates": len(points),
    }


def catalog_matcher(conn: Conn) -> Matcher:
    """The matcher of the database's catalog, without a learned model."""
    from tracker.store import reads

    rules = reads.match_set(conn).rules
    return Matcher(rules_from_mapping(slug, table) for slug, table in rules.items())


def retrain(conn: Conn, *, name: str = MODEL_NAME, now: datetime | None = None) -> TrainResult:
    """Read every reviewed example, train, and store the model as `name` (replacing it).

    Nothing is stored while there are fewer than MIN_EACH confirmed or rejected examples; the
    result says so in its note."""
    started = time.perf_counter()
    examples = labelled_examples(conn)
    positives = sum(1 for ex in examples if ex.label)
    negatives = len(examples) - positives
    weights = train(examples, catalog_matcher(conn)) if examples else None
    seconds = time.perf_counter() - started
    if weights is None:
        return TrainResult(
            name=name,
            examples=len(examples),
            positives=positives,
            negatives=negatives,
            features=0,
            seconds=seconds,
            saved=False,
            note=(
                f"not learning yet: {positives} confirmed and {negatives} rejected examples,"
                f" {MIN_EACH} of each needed"
            ),
        )
    save_model(conn, name, weights, len(examples), now or datetime.now(UTC).replace(tzinfo=None))
    seconds = time.perf_counter() - started
    return TrainResult(
        name=name,
        examples=len(examples),
        positives=positives,
        negatives=negatives,
        features=sum(len(r) for r in weights["ratios"].values()),
        seconds=seconds,
        saved=True,
        note=(
            f"matcher model learned from {len(examples)} examples ({positives} confirmed,"
            f" {negatives} rejected) in {seconds:.2f} s"
        ),
    )
