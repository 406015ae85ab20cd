"""Learning from reviews: a small model that re-ranks the matcher's candidates.

Every confirm and every reject a watcher makes is a labelled (item, commitment) example; the
catalog's curated evidence and evidence added by hand are confirmed examples too. From them
`train` builds, in pure Python and well under a second for ten thousand examples:

* naive-Bayes log-count ratios of the matcher's model features (`matching.model_features`:
  words, word stems and word pairs, each also tied to the commitment, and the source's side):
  how much more often a feature appears in confirmed than in rejected examples;
* a logistic regression with three weights that combines the mean ratio of a candidate's
  features with the matcher's own score (cross-fitted: each half of the examples is scored with
  ratios counted on the other half, so that the combination is not fooled by examples scoring
  themselves), pulled towards "trust the matcher" so that a few reviews move it a little.

This is the NBSVM recipe (Wang & Manning, 2012) with a logistic instead of an SVM on top. The
weights are plain JSON, stored in the database (`tracker.store.training`) so that every watcher
of a team shares them; a refresh reads them and scores with `matching.model_logit`, a few look-ups
and one sum, never importing anything from here.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tracker.matching import Matcher, model_features, rules_from_mapping, tokenize
from tracker.store.training import LabelledExample, labelled_examples, save_model

if TYPE_CHECKING:
    from tracker.store.conn import Conn

__all__ = ["MODEL_NAME", "TrainResult", "retrain", "train"]

MODEL_NAME = "matcher"
MIN_EACH = 3  # confirmed and rejected examples needed, at least, before anything is learned
_ALPHA = 1.0  # add-one smoothing of the counts
_MIN_COUNT = 2  # a feature seen once teaches nothing that generalises; it is left out
_MIN_RATIO = 0.05  # ratios closer to zero than this are left out of the stored model
_PRIOR = (0.0, 1.0, 0.0)  # bias, matcher-score weight, ratio weight before any review
_L2 = 2.0  # how strongly the three weights are pulled towards _PRIOR
_NEWTON_STEPS = 25


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


@dataclass
class _Row:
    features: list[str]
    label: int
    base: float | None  # the matcher's logit; None when the rules do not propose this pair
    fold: int


def _rows(examples: Sequence[LabelledExample], matcher: Matcher) -> list[_Row]:
    """Each example's features and the matcher's score of it (each distinct text read once)."""
    rows: list[_Row] = []
    seen: dict[tuple[str, str, str, str | None], tuple[list[str], dict[str, float], int]] = {}
    for ex in examples:
        key = (ex.title, ex.summary, ex.language, ex.side)
        if key not in seen:
            text = ex.title + "\n" + ex.summary
            bases = {
                c.match.slug: c.base
                for c in matcher.candidates(text, ex.language or None, side=ex.side)
            }
            # Half the examples count the ratios that score the other half (see _fit_stack);
            # the same text always falls in the same half.
            fold = zlib.crc32(text.encode("utf-8", "surrogatepass")) & 1
            seen[key] = (tokenize(text), bases, fold)
        tokens, bases, fold = seen[key]
        rows.append(
            _Row(
                features=model_features(tokens, ex.slug, ex.side),
                label=1 if ex.label else 0,
                base=bases.get(ex.slug),
                fold=fold,
            )
        )
    return rows


def _ratios(pos: Counter[str], neg: Counter[str], n_pos: int, n_neg: int) -> dict[str, float]:
    """Log-count ratios of the features seen at least _MIN_COUNT times."""
    top = max([1, *pos.values(), *neg.values()])
    logs = [math.log(i + _ALPHA) for i in range(top + 1)]
    offset = math.log(n_neg + 2 * _ALPHA) - math.log(n_pos + 2 * _ALPHA)
    out: dict[str, float] = {}
    for f in pos.keys() | neg.keys():
        p, q = pos[f], neg[f]
        if p + q >= _MIN_COUNT:
            out[f] = logs[p] - logs[q] + offset
    return out


def _evidence(ratios: dict[str, float], features: list[str]) -> float:
    get = ratios.get
    return sum(get(f, 0.0) for f in features) / math.sqrt(len(features) or 1)


def _solve3(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting for the 3×3 Newton step."""
    m = [[*row, b[i]] for i, row in enumerate(a)]
    n = len(b)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            return [0.0] * n
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            for k in range(col, n + 1):
                m[r][k] -= factor * m[col][k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][k] * x[k] for k in range(r + 1, n))) / m[r][r]
    return x


def _fit_stack(points: list[tuple[float, float, int]]) -> tuple[float, float, float]:
    """Logistic regression of label on (1, matcher logit, mean ratio), L2 towards _PRIOR, by
    Newton's method (three weights: a few passes over the points)."""
    w = list(_PRIOR)
    for _ in range(_NEWTON_STEPS):
        grad = [_L2 * (w[i] - _PRIOR[i]) for i in range(3)]
        hess = [[_L2 if i == j else 0.0 for j in range(3)] for i in range(3)]
        for base, ev, label in points:
            x = (1.0, base, ev)
            z = w[0] + w[1] * base + w[2] * ev
            p = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
            g = p - label
            h = p * (1.0 - p)
            for i in range(3):
                grad[i] += g * x[i]
                for j in range(3):
                    hess[i][j] += h * x[i] * x[j]
        step = _solve3(hess, grad)
        w = [w[i] - step[i] for i in range(3)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return w[0], w[1], w[2]


def train(examples: Sequence[LabelledExample], matcher: Matcher) -> dict[str, Any] | None:
    """The model's weights learned from `examples`, or None when there are fewer than MIN_EACH
    confirmed or rejected ones. `matcher` is the catalog's matcher without a model: its scores
    are what the model learns to correct."""
    positives = sum(1 for ex in examples if ex.label)
    negatives = len(examples) - positives
    if positives < MIN_EACH or negatives < MIN_EACH:
        return None
    rows = _rows(examples, matcher)
    pos: list[Counter[str]] = [Counter(), Counter()]
    neg: list[Counter[str]] = [Counter(), Counter()]
    n_pos, n_neg = [0, 0], [0, 0]
    for row in rows:
        if row.label:
            pos[row.fold].update(row.features)
            n_pos[row.fold] += 1
        else:
            neg[row.fold].update(row.features)
            n_neg[row.fold] += 1
    # Cross-fitted evidence for the candidates the model will actually see at refresh.
    by_fold = [_ratios(pos[1 - k], neg[1 - k], n_pos[1 - k], n_neg[1 - k]) for k in (0, 1)]
    points = [
        (row.base, _evidence(by_fold[row.fold], row.features), row.label)
        for row in rows
        if row.base is not None
    ]
    bias, base_weight, nb_weight = _fit_stack(points) if points else _PRIOR
    ratios = _ratios(pos[0] + pos[1], neg[0] + neg[1], sum(n_pos), sum(n_neg))
    kept = {f: round(r, 3) for f, r in ratios.items() if abs(r) >= _MIN_RATIO}
    return {
        "format": 1,
        "kind": "naive-bayes ratios + logistic regression",
        "ratios": kept,
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
        features=len(weights["ratios"]),
        seconds=seconds,
        saved=True,
        note=(
            f"matcher model learned from {len(examples)} examples ({positives} confirmed,"
            f" {negatives} rejected) in {seconds:.2f} s"
        ),
    )
