"""The matcher's index at scale: a starred word kept as a stem finds exactly what its listed forms
would, and a catalog of a thousand more commitments compiles to stems rather than forms.

`_Index` lists the forms of starred Latin/Cyrillic anchor words for a small catalog and keeps only
their stems for a large one (`_LISTED_STEMS`). Both are compared here with a brute-force reading of
the same terms (every word's forms listed, every start position tried) on generated token lists:
every stem with every ending of its script, and near misses — a stem with a suffix that is not an
ending, a stem cut short, another script's ending, the first letters alone.
"""

from __future__ import annotations

import importlib.util
import random
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tracker import matching
from tracker.catalog import builtin_catalog, read_catalog_text
from tracker.matching import Matcher, rules_from_mapping

HERE = Path(__file__).resolve().parent


def bench_catalog() -> ModuleType:
    """tests/bench/catalog.py, which writes another team's catalog (without touching sys.path)."""
    spec = importlib.util.spec_from_file_location("bench_catalog", HERE / "bench" / "catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Terms sharing stems, first letters and words across scripts, starred and not, one word and
# several, the starred word first, last, or in the middle, and Persian phrases with joins.
TERMS = [
    "Bakı*", "Bakıxanov", "Bak*", "Baku", "bakı*", "Təbriz*", "Tebriz* airport", "Culfa* körpü*",
    "körpü*", "Aghband-Kalala", "su kəməri*", "dəmir yolu*", "hava liman*", "flight*", "fli*",
    "flights", "Araz* çayı*", "Dormaslor*", "Dormaslor water pipeline", "Dor*", "Dormas*",
    "Тебриз*", "Тебризск*", "торгов* центр*", "мост*", "водопровод* Дормаслор*", "Баку",
    "железн* дорог*", "свободн* экономическ* зон*", "2023*", "فرودگاه*", "قره باغ", "خدا آفرین",
    "پل", "سد", "راه آهن", "تبریز*", "از طریق ایران",
]  # fmt: skip

OTHER_WORDS = ["the", "and", "in", "of", ".", ",", "\n", "%", "water", "pipeline", "airport",
               "су", "и", "в", "در", "و", "ها", "a", "ab", "x"]  # fmt: skip
# Suffixes that are no ending of any script's list (checked below).
NOT_ENDINGS = ["x", "ov", "qz", "ская", "ززز", "larx", "ingz", "dann"]


def registry_of(terms: list[str]) -> matching._Registry:
    registry: matching._Registry = {}
    for term in terms:
        matching._pid(registry, term, "test")
    return registry


def listed_forms(forms: matching._Forms) -> frozenset[str]:
    """A word's forms, listed: what the matcher did before stems."""
    if isinstance(forms, matching._Stem):
        return frozenset(forms.stem + e for e in forms.endings)
    return forms


Spelling = tuple[int, list[frozenset[str]]]  # pattern id, every word's forms listed


def spellings_of(registry: matching._Registry) -> list[Spelling]:
    return [(pid, [listed_forms(f) for f in v]) for pid, vs in registry.values() for v in vs]


def brute_force(spellings: list[Spelling], tokens: list[str]) -> list[tuple[int, int, int]]:
    """Every (start, -end, pattern id) where every word of a spelling stands in its place."""
    found = set()
    for pid, words in spellings:
        for start in range(len(tokens) - len(words) + 1):
            if all(tokens[start + j] in w for j, w in enumerate(words)):
                found.add((start, -(start + len(words)), pid))
    return sorted(found)


def stems_of(registry: matching._Registry) -> list[matching._Stem]:
    return [
        f
        for _, variants in registry.values()
        for v in variants
        for f in v
        if isinstance(f, matching._Stem)
    ]


def near_misses(stem: matching._Stem) -> list[str]:
    s = stem.stem
    misses = [s[:-1], s[:-1] + "a", s[: matching._MIN_STEM], s + s[-1] + "x"]
    misses += [s + suffix for suffix in NOT_ENDINGS]
    other = (
        matching._RU_ENDINGS if stem.endings is matching._LATIN_ENDINGS else matching._LATIN_ENDINGS
    )
    misses += [s + e for e in sorted(other - stem.endings)[:40]]
    return [m for m in misses if m not in listed_forms(stem)]


def token_pool(registry: matching._Registry) -> list[str]:
    pool = list(OTHER_WORDS)
    for _, variants in registry.values():
        for variant in variants:
            for forms in variant:
                pool += sorted(listed_forms(forms))
                if isinstance(forms, matching._Stem):
                    pool += near_misses(forms)
    return sorted(set(pool))


def indexes(registry: matching._Registry) -> tuple[matching._Index, matching._Index]:
    listing = matching._Index(registry, listed_stems=10**9)
    stemming = matching._Index(registry, listed_stems=0)
    assert not listing.stems and not listing.heads
    assert stemming.stems and stemming.heads
    return listing, stemming


def test_the_ending_lists_hold_the_empty_ending_and_the_suffixes_are_no_endings() -> None:
    # `_shortest` and the anchor choice rely on the first; the near misses on the second.
    for endings in (matching._LATIN_ENDINGS, matching._RU_ENDINGS):
        assert "" in endings
        assert not endings & set(NOT_ENDINGS)


def test_every_form_of_every_stem_alone_and_in_phrases() -> None:
    registry = registry_of(TERMS)
    listing, stemming = indexes(registry)
    reference = spellings_of(registry)
    checked = 0
    for stem in stems_of(registry):
        for token in sorted(listed_forms(stem)) + near_misses(stem):
            for tokens in ([token], ["the", token, "."], [token, token], ["su", token, "x"]):
                expected = brute_force(reference, tokens)
                assert stemming.find(tokens) == expected, tokens
                assert listing.find(tokens) == expected, tokens
                checked += 1
    assert checked > 10_000


def test_phrases_of_generated_tokens() -> None:
    registry = registry_of(TERMS)
    listing, stemming = indexes(registry)
    reference = spellings_of(registry)
    pool = token_pool(registry)
    # Each spelling as lists of forms per word, near misses mixed in, to build whole phrases.
    spellings = [
        [
            sorted(listed_forms(f)) + (near_misses(f) if isinstance(f, matching._Stem) else [])
            for f in v
        ]
        for _, variants in registry.values()
        for v in variants
    ]
    rng = random.Random(7)
    found = 0
    for _ in range(4000):
        tokens = [rng.choice(pool) for _ in range(rng.randrange(1, 10))]
        for _ in range(rng.randrange(4)):
            at = rng.randrange(len(tokens) + 1)
            tokens[at:at] = [rng.choice(forms) for forms in rng.choice(spellings)]
        expected = brute_force(reference, tokens)
        assert stemming.find(tokens) == expected, tokens
        assert listing.find(tokens) == expected, tokens
        found += bool(expected)
    assert found > 1000


# --- whole matchers: the real catalog, and a thousand more commitments --------------------------


def real_texts() -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    with (HERE / "data" / "match_cases.toml").open("rb") as fh:
        texts += [(c["text"], c["language"]) for c in tomllib.load(fh)["case"]]
    for lang in ("fa", "az", "en", "ru"):
        with (HERE / "data" / "devset" / f"{lang}.toml").open("rb") as fh:
            items = tomllib.load(fh)["item"]
        texts += [(i["title"] + "\n" + i.get("summary", ""), i["language"]) for i in items]
    return texts


def builtin_rules() -> list[matching.CommitmentRules]:
    return [rules_from_mapping(c.slug, c.rules) for a in builtin_catalog() for c in a.commitments]


def same_candidates(a: Matcher, b: Matcher, texts: list[tuple[str, str]]) -> int:
    """Assert both matchers give the same candidates (scores, reasons …); return how many texts
    had some."""
    with_candidates = 0
    for text, lang in texts:
        got = b.candidates(text, lang)
        assert got == a.candidates(text, lang), text
        with_candidates += bool(got)
    return with_candidates


def test_the_real_catalog_finds_the_same_with_stems(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = builtin_rules()
    listed = Matcher(rules)
    assert not listed._index.stems and not listed._context_index.stems
    monkeypatch.setattr(matching, "_LISTED_STEMS", 0)
    stemmed = Matcher(rules)
    assert stemmed._index.stems and stemmed._context_index.stems
    assert same_candidates(listed, stemmed, real_texts()) > 200


def inflected(term: str, rng: random.Random) -> str:
    """The term with a random ending (or a suffix that is none) on each starred word."""
    words = []
    for word in term.split():
        if word.endswith("*"):
            script = matching._script(word)
            endings = matching._RU_ENDINGS if script == "cyrillic" else matching._LATIN_ENDINGS
            word = word[:-1] + rng.choice([*sorted(endings), *NOT_ENDINGS])
        words.append(word)
    return " ".join(words)


def test_a_thousand_more_commitments_keep_stems_and_match_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = read_catalog_text(bench_catalog().catalog(1000), "(tests/bench/catalog.py)")
    specs = [c for a in other for c in a.commitments]
    rules = builtin_rules() + [rules_from_mapping(c.slug, c.rules) for c in specs]
    stemmed = Matcher(rules)
    # Stems, not their forms: the forms would be some 600,000 strings.
    index, context = stemmed._index, stemmed._context_index
    assert len(index.stems) > 1000 and len(context.stems) > 1000
    assert len(index.words) + len(context.words) < 60_000

    rng = random.Random(3)
    texts = real_texts()[::4]
    for spec in rng.sample(specs, 300):
        groups = [g for r in spec.rules["rule"] for g in r["group"]]
        terms = [[t for ts in g.values() for t in ts] for g in groups]
        words = [inflected(rng.choice(ts), rng) for ts in terms[:2]]
        place = rng.choice(spec.rules["places"] + spec.rules["not_places"])
        text = f"{words[0]} {rng.choice(OTHER_WORDS)} {words[1]}\n{inflected(place, rng)} . "
        texts.append((text + inflected(rng.choice(terms[-1]), rng), "az"))
    monkeypatch.setattr(matching, "_LISTED_STEMS", 10**9)
    listed = Matcher(rules)
    assert not listed._index.stems
    assert same_candidates(listed, stemmed, texts) > 150
