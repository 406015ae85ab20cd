"""The matcher: normalisation, word boundaries, rule semantics, and the real catalog on
realistic headlines in Persian, Azerbaijani, English and Russian (tests/data/match_cases.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.matching import (
    CommitmentRules,
    Match,
    Matcher,
    Rule,
    detect_language,
    normalize,
    normalize_title_key,
    rules_from_mapping,
)

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parent / "tracker" / "data" / "catalog.toml"
CASES_FILE = HERE / "data" / "match_cases.toml"


def _load_cases() -> list[dict[str, Any]]:
    with CASES_FILE.open("rb") as fh:
        return list(tomllib.load(fh)["case"])


CASES = _load_cases()


@pytest.fixture(scope="module")
def catalog_matcher() -> Matcher:
    with CATALOG.open("rb") as fh:
        data = tomllib.load(fh)
    commitments = [c for a in data["agreement"] for c in a["commitment"]]
    return Matcher(rules_from_mapping(c["slug"], c) for c in commitments)


def one_rule(*groups: list[str], veto: tuple[str, ...] = (), mask: tuple[str, ...] = ()) -> Matcher:
    """A matcher with one commitment "c" and one rule made of `groups`."""
    rule = Rule("r", tuple(tuple(g) for g in groups), tuple(veto), tuple(mask))
    return Matcher([CommitmentRules("c", (rule,), ())])


def hits(matcher: Matcher, text: str) -> bool:
    return bool(matcher.match(text))


# --- the case file against the real catalog ---------------------------------------------------


def test_case_file_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 120
    for case in CASES:
        assert set(case) == {"id", "language", "text", "expect"}, case["id"]
        assert case["language"] in {"fa", "az", "en", "ru"}, case["id"]
    languages = {c["language"] for c in CASES}
    assert languages == {"fa", "az", "en", "ru"}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any], catalog_matcher: Matcher) -> None:
    found = catalog_matcher.match(case["text"], case["language"])
    got = {m.slug for m in found}
    detail = "; ".join(f"{m.slug} via {m.rule!r} on {m.terms}" for m in found)
    assert got == set(case["expect"]), detail or "nothing matched"


def test_precision_and_recall_on_case_file(catalog_matcher: Matcher) -> None:
    """Over (case, commitment) pairs. The case file was written alongside the catalog, so 1.0 is
    the bar: a lower number means a rule change broke a case someone cared about."""
    tp = fp = fn = 0
    for case in CASES:
        got = {m.slug for m in catalog_matcher.match(case["text"], case["language"])}
        want = set(case["expect"])
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(
        f"\nmatch cases: precision {precision:.3f}, recall {recall:.3f} ({tp} tp, {fp} fp, {fn} fn)"
    )
    assert (precision, recall) == (1.0, 1.0)


def test_language_label_does_not_restrict(catalog_matcher: Matcher) -> None:
    text = "برقراری پرواز تبریز - باکو\nنخستین پرواز آزال انجام شد."
    assert [m.slug for m in catalog_matcher.match(text, "en")] == ["tabriz-baku-flight"]
    assert catalog_matcher.match(text, None) == catalog_matcher.match(text, "fa")


def test_match_reports_terms_rule_score_reasons_and_suggestions(catalog_matcher: Matcher) -> None:
    [match] = catalog_matcher.match(
        "Iran Air launches Tabriz–Baku flights\nThe first flight left Tabriz for Baku."
    )
    assert match.slug == "tabriz-baku-flight"
    assert match.rule == "Tabriz and Baku with a flight"
    # Catalog spellings, in the order the text first uses them; each stretch of text once.
    assert match.terms == ("Iran Air", "Tabriz", "Baku", "flight*")
    # The scorer's score is a probability-like number; the reasons say what made it.
    assert 0.5 <= match.score <= 1.0
    assert match.reasons[0] == "rule 'Tabriz and Baku with a flight'"
    assert "in the headline" in match.reasons
    assert match.reasons[-1].startswith("score ")
    # "First scheduled flight operated" is milestone 3; a step reached is progress.
    assert (match.milestone, match.stance) == (3, "progress")


def test_matches_are_sorted_best_first(catalog_matcher: Matcher) -> None:
    found = catalog_matcher.match(
        "Рейсы Тебриз — Баку и новые туры\n"
        "После запуска авиарейсов туроператоры Тебриза начали продавать туры в Азербайджан."
    )
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert {m.slug for m in found} == {"tabriz-baku-flight", "tourist-tours"}


# --- normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        # Arabic letters and Persian letters
        (["كيك", "کیک", "كيک"], "کیک"),
        (["جمهوري", "جمهورى", "جمهوری"], "جمهوری"),
        (["مدرسة", "مدرسه"], "مدرسه"),
        (["خانۀ", "خانه"], "خانه"),
        # madda and hamza forms folded to bare alef on both sides
        (["خداآفرین", "خداافرین", "خداأفرین"], "خداافرین"),
        # harakat, superscript alef, hamza above and tatweel removed
        (["تَبریز", "تبريز", "تبـــریز", "تبریزٔ"], "تبریز"),
        # ZWNJ and a space are the same word break
        (["قره\u200cباغ", "قره باغ", "قره  \u200c باغ"], "قره باغ"),
        # a suffix written with a ZWNJ, a space or nothing is re-attached
        (["شهرک\u200cهای صنعتی", "شهرک های صنعتی", "شهرکهای صنعتی"], "شهرکهای صنعتی"),
        (["می\u200cشود", "می شود"], "می شود"),
        # digits
        (["۱۴۰۴", "١٤٠٤", "1404"], "1404"),
        # Azerbaijani letters, including the dotted and dotless i
        (["Xudafərin", "XUDAFƏRİN", "Xudaferin"], "xudaferin"),
        (["İran", "iran", "IRAN"], "iran"),
        (["CƏBRAYIL", "Cəbrayıl", "Cebrayil"], "cebrayil"),
        (["Ağbənd", "Agbend", "AĞBƏND"], "agbend"),
        (["Şərqi Zəngəzur", "Serqi Zengezur"], "serqi zengezur"),
        (["Ölkə Üçün Çox", "olke ucun cox"], "olke ucun cox"),
        # Russian ё, also decomposed (е + U+0308)
        (["Полёт", "полет", "Поле\u0308т"], "полет"),
        # hyphens and dashes are spaces; whitespace collapses
        (
            ["Aghband-Kalala", "Aghband–Kalala", "Aghband — Kalala", "Aghband\u2011Kalala"],
            "aghband kalala",
        ),
        # invisible marks
        (["Ba\u200bku", "Baku\u200f", "\u200eBaku", "\ufeffBaku"], "baku"),
    ],
)
def test_normalize_folds_variants(variants: list[str], expected: str) -> None:
    assert {normalize(v) for v in variants} == {expected}


def test_normalize_keeps_punctuation_apart() -> None:
    assert normalize("باکو، تبریز؟") == "باکو ، تبریز ؟"
    assert normalize("Baku’s «bridge»!") == "baku ' s « bridge » !"
    assert normalize("Tabriz🇦🇿Baku") == "tabriz 🇦 🇿 baku"


def test_normalize_is_idempotent() -> None:
    for case in CASES:
        once = normalize(case["text"])
        assert normalize(once) == once, case["id"]


def test_normalize_does_not_lose_schwa() -> None:
    # NFKD + ASCII-ignore would give "xudafrin"
    assert normalize("Xudafərin") != "xudafrin"
    # 'İ'.lower() leaves a combining dot behind
    assert len(normalize("İ")) == 1


def test_normalize_title_key() -> None:
    assert normalize_title_key("Construction of Aghband-Kalala bridge — completed!") == (
        normalize_title_key("construction of Aghband–Kalala bridge completed")
    )
    assert normalize_title_key("پل آق‌بند – کلاله تکمیل شد") == normalize_title_key(
        "پل آقبند-کلاله تكميل شد."
    )
    assert normalize_title_key("AZAL Bakı-Təbriz reysi") == "azalbakitebrizreysi"
    assert normalize_title_key("Baku flight") != normalize_title_key("Tabriz flight")


# --- word boundaries and forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("Baku", "Flights to Baku.", True),
        ("Baku", "Baku's airport", True),
        ("Baku", "Snow in Bakuriani", False),
        ("Baku", "Abaku", False),
        ("Баку", "Курорт Бакуриани", False),
        ("باکو", "پرواز به باکو، امروز", True),
        ("باکو", "«باکو»", True),
        # Persian: the dam word must not fire inside other words, but takes its plural
        ("سد", "سدیم در آب", False),
        ("سد", "سدها پر شد", True),
        ("سد", "سد\u200cها پر شد", True),
        ("سد", "مسدود شد", False),
        # the attached conjunction is not stripped (see the module docstring)
        ("تبریز", "وتبریز", False),
        # a term written with a space matches its parts written together
        ("قره باغ", "قرهباغ", True),
        ("قره باغ", "قره\u200cباغ", True),
        ("خدا آفرین", "خداآفرین", True),
        ("خدا آفرین", "خداافرین", True),
        ("خدا آفرین", "خدا آفرین", True),
        ("تراکتور سازی", "تراکتورسازی تبریز", True),
        ("تراکتور سازی", "تراکتور تبریز", False),
        # Persian suffixes left attached by a missing ZWNJ
        ("شهرک صنعتی", "شهرکهای صنعتی", True),
        ("تور", "تورهای گردشگری", True),
        ("تور", "توریسم", False),
        ("گردشگر", "گردشگران", False),
        ("گردشگر*", "گردشگران", True),
        # stems take a closed list of endings, not any continuation
        ("Bakı*", "Bakıdan qayıdıb", True),
        ("Bakı*", "Bakının", True),
        ("Bakı*", "Baki ile", True),
        ("Bakı*", "Bakıxanov qəsəbəsi", False),
        ("Xudafərin*", "Xudafərində", True),
        ("körpü*", "körpüsünün", True),
        ("Тебриз*", "из Тебриза", True),
        ("Тебриз*", "в Тебризе", True),
        ("пункт* пропуск*", "пунктом пропуска", True),
        ("flight*", "two flights", True),
        ("flight*", "flightless bird", False),
        ("Baku", "BAKU", True),
        # phrases need their words adjacent, and punctuation breaks them
        ("Iran Azerbaijan", "Iran-Azerbaijan trade", True),
        ("Iran Azerbaijan", "Iran. Azerbaijan", False),
        ("Iran Azerbaijan", "Iran and Azerbaijan", False),
        ("Iran Azerbaijan", "Iran\nAzerbaijan", False),
    ],
)
def test_term_boundaries(term: str, text: str, expected: bool) -> None:
    assert hits(one_rule([term]), text) is expected


def test_phrase_does_not_run_from_title_into_summary() -> None:
    assert not hits(one_rule(["Tabriz Baku"]), "Flight from Tabriz\nBaku airport")
    assert hits(one_rule(["Tabriz"], ["Baku"]), "Flight from Tabriz\nBaku airport")


# --- rule semantics --------------------------------------------------------------------------


def test_every_group_needed_any_rule_enough() -> None:
    matcher = one_rule(["Tabriz"], ["Baku"], ["flight*"])
    assert hits(matcher, "Tabriz to Baku flights")
    assert not hits(matcher, "Tabriz to Baku by bus")
    either = Matcher(
        [CommitmentRules("c", (Rule("a", (("dam",),), ()), Rule("b", (("bridge",),), ())), ())]
    )
    assert [m.rule for m in either.match("a bridge")] == ["b"]


def test_rule_and_commitment_vetoes() -> None:
    rule = Rule("r", (("Khudafarin",), ("border",)), ("dam",))
    matcher = Matcher([CommitmentRules("c", (rule,), ("hydropower",))])
    assert hits(matcher, "Khudafarin border crossing")
    assert not hits(matcher, "Khudafarin dam on the border")
    assert not hits(matcher, "Khudafarin hydropower on the border")


def test_longer_veto_shadows_the_group_term_inside_it() -> None:
    matcher = one_rule(["Khoda Afarin"], ["border"], veto=("Khoda Afarin County",))
    assert not hits(matcher, "Khoda Afarin County on the border")
    assert hits(matcher, "Khoda Afarin crossing on the border")


def test_mask_only_shadows() -> None:
    matcher = one_rule(["ITMCO"], ["Azerbaijan"], mask=("East Azerbaijan",))
    assert not hits(matcher, "ITMCO of East Azerbaijan exports to Iraq")
    assert hits(matcher, "ITMCO of East Azerbaijan exports to Azerbaijan")
    # a mask never makes a rule match on its own
    assert not one_rule(["x"], mask=("East Azerbaijan",)).match("East Azerbaijan")


def test_terms_of_other_rules_do_not_shadow() -> None:
    long_rule = Rule("long", (("joint industrial park",), ("Karabakh",)), ())
    short_rule = Rule("short", (("industrial park",), ("joint",), ("Parsabad",)), ())
    matcher = Matcher([CommitmentRules("c", (long_rule, short_rule), ())])
    assert [m.rule for m in matcher.match("A joint industrial park near Parsabad")] == ["short"]


def test_terms_on_the_same_words_all_count() -> None:
    # "Agbend" (English spelling) and "Ağbənd*" (Azerbaijani stem) both match the word "Agbend";
    # neither hides the other, and the word is reported once, under the first catalog spelling.
    [match] = one_rule(["Agbend"], ["Ağbənd*"]).match("Agbend")
    assert match.terms == ("Agbend",)


def test_no_match_is_an_empty_list(catalog_matcher: Matcher) -> None:
    assert catalog_matcher.match("") == []
    assert catalog_matcher.match("Weather in Lisbon") == []
    assert Matcher([]).match("Tabriz Baku flight") == []


def test_match_is_a_frozen_value() -> None:
    [match] = one_rule(["Baku"]).match("Baku")
    assert match == Match(
        slug="c",
        terms=("Baku",),
        score=match.score,
        rule="r",
        milestone=None,
        stance="neutral",
        reasons=match.reasons,
    )
    with pytest.raises(AttributeError):
        match.score = 0.0  # type: ignore[misc]


def test_three_field_rule_still_works() -> None:
    rule = Rule("r", (("Baku",),), ())
    assert rule.mask == ()
    assert hits(Matcher([CommitmentRules("c", (rule,), ())]), "Baku")


def test_matcher_rejects_duplicate_slugs_and_empty_groups() -> None:
    rule = Rule("r", (("Baku",),), ())
    with pytest.raises(ValueError, match="given twice"):
        Matcher([CommitmentRules("c", (rule,), ()), CommitmentRules("c", (rule,), ())])
    with pytest.raises(ValueError, match="at least one term"):
        Matcher([CommitmentRules("c", (Rule("r", ((),), ()),), ())])


# --- rules_from_mapping ----------------------------------------------------------------------


def test_rules_from_mapping_flattens_languages() -> None:
    table = {
        "title": "ignored",
        "milestones": ["Crossing open"],
        "queries": {"en": "ignored"},
        "veto": {"en": ["dam"], "fa": ["سد"]},
        "rule": [
            {
                "name": "crossing",
                "veto": {"ru": ["ГЭС"]},
                "mask": {"en": ["Khoda Afarin County"]},
                "group": [
                    {"en": ["Khudafarin"], "fa": ["خدا آفرین"], "az": ["Xudafərin*"]},
                    {"en": ["border"]},
                ],
            }
        ],
    }
    rules = rules_from_mapping("khodaafarin-crossing", table)
    assert rules == CommitmentRules(
        slug="khodaafarin-crossing",
        rules=(
            Rule(
                name="crossing",
                groups=(("Khudafarin", "خدا آفرین", "Xudafərin*"), ("border",)),
                veto=("ГЭС",),
                mask=("Khoda Afarin County",),
            ),
        ),
        veto=("dam", "سد"),
        # The milestone titles are kept: their words stand in for milestone terms.
        milestone_terms=((),),
        milestones=("Crossing open",),
    )


GOOD_RULE: dict[str, Any] = {"name": "r", "group": [{"en": ["Baku"]}]}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([], "expected a table"),
        ({}, "at least one"),
        ({"rule": []}, "at least one"),
        ({"rule": {"name": "r"}}, "at least one"),
        ({"rule": ["not a table"]}, "rule 1: expected a table"),
        ({"rule": [{"group": [{"en": ["x"]}]}]}, "rule 1: needs a non-empty name"),
        ({"rule": [{"name": " ", "group": [{"en": ["x"]}]}]}, "non-empty name"),
        ({"rule": [{"name": "r", "groups": [{"en": ["x"]}]}]}, "unknown key"),
        ({"rule": [{"name": "r"}]}, "rule 'r': needs at least one"),
        ({"rule": [{"name": "r", "group": []}]}, "needs at least one"),
        ({"rule": [{"name": "r", "group": [{}]}]}, "group 1: has no terms"),
        ({"rule": [{"name": "r", "group": [{"en": []}]}]}, "group 1: has no terms"),
        ({"rule": [{"name": "r", "group": [["Baku"]]}]}, "expected a table of language"),
        ({"rule": [{"name": "r", "group": [{"en": "Baku"}]}]}, "group 1.en: expected a list"),
        ({"rule": [{"name": "r", "group": [{"en": [1]}]}]}, "non-empty string"),
        ({"rule": [{"name": "r", "group": [{"en": [""]}]}]}, "non-empty string"),
        ({"rule": [{"name": "r", "group": [{"English": ["x"]}]}]}, "not a language code"),
        ({"rule": [{"name": "r", "group": [{"en": ["*Baku"]}]}]}, "may only end a word"),
        ({"rule": [{"name": "r", "group": [{"en": ["Tebriz *"]}]}]}, "may only end a word"),
        ({"rule": [{"name": "r", "group": [{"en": ["Ba*"]}]}]}, "shorter than 3"),
        ({"rule": [{"name": "r", "group": [{"en": ["..."]}]}]}, "no letters or digits"),
        ({"rule": [GOOD_RULE], "veto": ["dam"]}, "veto: expected a table"),
        ({"rule": [{**GOOD_RULE, "veto": {"en": "dam"}}]}, "veto.en: expected a list"),
        ({"rule": [GOOD_RULE], "veto": {"en": ["Baku"]}}, "both a group term and a veto"),
        ({"rule": [{**GOOD_RULE, "mask": {"en": ["BAKU"]}}]}, "both a group term and a mask"),
    ],
)
def test_rules_from_mapping_errors(table: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        rules_from_mapping("some-slug", table)
    assert "some-slug" in str(info.value)


# --- the scorer: strength, places, lists, the search query, thresholds ------------------------


def commitment(
    slug: str,
    *rules: Rule,
    places: tuple[str, ...] = (),
    not_places: tuple[str, ...] = (),
    milestone_terms: tuple[tuple[str, ...], ...] = (),
    milestones: tuple[str, ...] = (),
) -> CommitmentRules:
    return CommitmentRules(
        slug,
        rules,
        (),
        places=places,
        not_places=not_places,
        milestone_terms=milestone_terms,
        milestones=milestones,
    )


def score_of(matcher: Matcher, text: str, **kwargs: Any) -> float:
    [cand] = matcher.candidates(text, "en", **kwargs)
    return cand.match.score


def test_a_weak_rule_needs_support_that_a_strong_one_does_not() -> None:
    strong = Matcher([commitment("c", Rule("r", (("bridge",),), ()))])
    weak = Matcher([commitment("c", Rule("r", (("bridge",),), (), strength=0.5))])
    assert strong.match("A bridge")
    assert not weak.match("A bridge")
    # A rejected candidate is still there for benchmarks and training, with its reasons.
    [cand] = weak.candidates("A bridge", "en")
    assert not cand.accepted and cand.match.score < cand.threshold
    assert cand.match.reasons[0] == "rule 'r' (weak, 0.5)"


def test_places_raise_and_competing_places_lower_the_score() -> None:
    rule = Rule("r", (("bridge",),), (), strength=0.5)
    m = Matcher([commitment("c", rule, places=("Aghband",), not_places=("Astara",))])
    plain = score_of(m, "A new bridge")
    assert score_of(m, "A new bridge at Aghband") > plain
    assert score_of(m, "A new bridge at Astara") < plain
    [match] = m.match("A new bridge at Aghband")
    assert "place: Aghband" in match.reasons
    [cand] = m.candidates("A new bridge at Astara", "en")
    assert "competing place: Astara" in cand.match.reasons


def test_a_place_that_is_the_rules_own_word_is_no_extra_support() -> None:
    rule = Rule("r", (("Tabriz",), ("tours",)), (), strength=0.5)
    m = Matcher([commitment("c", rule, places=("Tabriz", "East Azerbaijan"))])
    assert score_of(m, "Tabriz tours") == score_of(Matcher([commitment("c", rule)]), "Tabriz tours")
    assert score_of(m, "Tabriz tours; Tabriz hotels full") == score_of(m, "Tabriz tours")
    assert score_of(m, "Tabriz tours in East Azerbaijan") > score_of(m, "Tabriz tours")


def test_every_commitment_a_list_of_agreements_names_gets_the_item() -> None:
    weak = [
        commitment(slug, Rule("r", ((word,),), (), strength=0.5))
        for slug, word in (("a", "flight"), ("b", "tractor"), ("c", "tours"), ("d", "bridge"))
    ]
    m = Matcher(weak)
    assert m.match("A flight") == []
    listed = m.match("Agreed: a flight, a tractor office, tours and a bridge")
    assert {x.slug for x in listed} == {"a", "b", "c", "d"}
    assert all("a list naming 4 commitments" in x.reasons for x in listed)
    # A list names the promises; it suggests no milestone for any of them.
    assert all(x.milestone is None for x in listed)


def test_the_search_query_that_found_the_item_raises_its_commitment() -> None:
    m = Matcher([commitment("c", Rule("r", (("bridge",),), (), strength=0.5))])
    assert score_of(m, "A bridge", query_slug="c") > score_of(m, "A bridge")
    assert score_of(m, "A bridge", query_slug="other") == score_of(m, "A bridge")
    assert m.match("A bridge over the Araz", query_slug="c")
    assert (
        "found by this commitment's search query" in m.match("A bridge", query_slug="c")[0].reasons
    )


def test_thresholds_are_per_language_and_the_script_decides_without_a_label() -> None:
    m = Matcher(
        [commitment("c", Rule("r", (("باکو", "Baku"),), ()))], thresholds={"fa": 0.99, "en": 0.5}
    )
    assert m.match("Baku", "en")
    assert not m.match("باکو", "fa")
    assert not m.match("باکو")  # Persian script: the Persian threshold
    [cand] = m.candidates("باکو", None)
    assert (cand.language, cand.threshold) == ("fa", 0.99)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("پرواز تبریز باکو", "fa"),
        ("Рейс Тебриз — Баку", "ru"),
        ("Təbriz-Bakı reysi bərpa olunub", "az"),
        ("Tabriz-Baku flight resumes", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_a_weak_candidate_beside_a_strong_one_is_a_side_remark() -> None:
    flight = commitment("flight", Rule("r", (("Tabriz",), ("Baku",), ("flight",)), ()))
    tours = commitment("tours", Rule("r", (("tourism",),), (), strength=0.75))
    m = Matcher([flight, tours])
    alone = score_of(Matcher([tours]), "Tabriz Baku flight to boost tourism")
    both = {c.match.slug: c for c in m.candidates("Tabriz Baku flight to boost tourism", "en")}
    assert both["tours"].match.score < alone
    assert "weak beside a stronger commitment" in both["tours"].match.reasons


# --- suggestions: milestone and stance -----------------------------------------------------------

CROSSING = commitment(
    "crossing",
    Rule("r", (("Aghband",), ("bridge",)), ()),
    milestone_terms=(
        ("foundation laid",),
        ("under construction", "%"),
        ("completed",),
        (),
        ("opened to traffic",),
    ),
)


@pytest.mark.parametrize(
    ("text", "milestone", "stance"),
    [
        ("Aghband bridge: foundation laid", 1, "progress"),
        ("Aghband bridge under construction", 2, "progress"),
        ("Aghband bridge completed", 3, "progress"),
        ("Aghband bridge opened to traffic", 5, "progress"),
        # A plan is not a step: "to be completed" says the work is under way.
        ("Aghband bridge to be completed by the end of the year", 2, "progress"),
        ("Aghband bridge will be opened to traffic next month", 4, "progress"),
        # A share of the work done is work under way.
        ("Aghband bridge: 70% of the work completed", 2, "progress"),
        ("Aghband bridge discussed by ministers", None, "neutral"),
        ("Aghband bridge works suspended", None, "setback"),
        ("Aghband bridge: construction halted; the bridge completed last year", 3, "setback"),
        ("Aghband bridge traffic resumed after the suspension", None, "neutral"),
    ],
)
def test_milestone_and_stance_suggestions(text: str, milestone: int | None, stance: str) -> None:
    [match] = Matcher([CROSSING]).match(text)
    assert (match.milestone, match.stance) == (milestone, stance)


def test_milestone_titles_stand_in_for_missing_terms() -> None:
    m = Matcher(
        [
            commitment(
                "flight",
                Rule("r", (("Tabriz",), ("Baku",)), ()),
                milestones=("Route agreed", "First scheduled flight operated", "Daily flights"),
            )
        ]
    )
    # Two words of a title in one sentence ("scheduled … flight*") stand for it.
    [match] = m.match("Tabriz Baku: the first scheduled flights operated on Tuesday")
    assert match.milestone == 2
    [match] = m.match("Tabriz Baku talks")
    assert match.milestone is None


def test_the_stance_is_the_news_not_each_commitment_alone() -> None:
    bridge = commitment(
        "bridge", Rule("r", (("Aghband",), ("bridge",)), ()), milestone_terms=(("completed",),)
    )
    road = commitment("road", Rule("r", (("Horadiz",), ("road",)), ()))
    found = {
        m.slug: m
        for m in Matcher([bridge, road]).match("Aghband bridge completed; Horadiz road next")
    }
    assert (found["bridge"].milestone, found["bridge"].stance) == (1, "progress")
    assert (found["road"].milestone, found["road"].stance) == (None, "progress")


def test_the_catalog_milestone_wording_in_four_languages(catalog_matcher: Matcher) -> None:
    texts = {
        "en": "First flight lands: Iran Air launches Tabriz-Baku flights",
        "fa": "نخستین پرواز تبریز - باکو انجام شد",
        "az": "Təbriz-Bakı: ilk reys həyata keçirilib",
        "ru": "Первый рейс Тебриз — Баку выполнен",
    }
    for language, text in texts.items():
        [match] = catalog_matcher.match(text, language)
        assert (match.slug, match.milestone, match.stance) == (
            "tabriz-baku-flight",
            3,
            "progress",
        ), language
    setbacks = {
        "en": "Tabriz-Baku flights suspended",
        "fa": "پروازهای تبریز - باکو لغو شد",
        "az": "Təbriz-Bakı reysləri dayandırıldı",
        "ru": "Рейсы Тебриз — Баку приостановлены",
    }
    for language, text in setbacks.items():
        [match] = catalog_matcher.match(text, language)
        assert match.stance == "setback", language


# --- catalog keys of the scorer ------------------------------------------------------------------


def test_rules_from_mapping_reads_strength_places_and_milestone_terms() -> None:
    table = {
        "rule": [{"name": "weak", "strength": 0.5, "group": [{"en": ["bridge"]}]}],
        "places": ["Aghband", "Ağbənd*"],
        "not_places": ["Astara"],
        "milestone_terms": {"2": {"en": ["under construction"], "ru": ["строится"]}},
        "milestones": ["Launched", "Under way", "Open"],
    }
    rules = rules_from_mapping("c", table)
    assert rules.rules[0].strength == 0.5
    assert (rules.places, rules.not_places) == (("Aghband", "Ağbənd*"), ("Astara",))
    assert rules.milestone_terms == ((), ("under construction", "строится"), ())
    assert rules.milestones == ("Launched", "Under way", "Open")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rule": [{**GOOD_RULE, "strength": 0}]}, "strength must be more than 0"),
        ({"rule": [{**GOOD_RULE, "strength": 1.5}]}, "at most 1"),
        ({"rule": [{**GOOD_RULE, "strength": "high"}]}, "strength must be a number"),
        ({"places": "Aghband"}, "places: expected a list"),
        ({"not_places": [""]}, "not_places: every term must be a non-empty string"),
        ({"places": ["Astara"], "not_places": ["Astara"]}, "both a place and a competing place"),
        ({"milestone_terms": {"x": {"en": ["a"]}}}, "not a milestone number"),
        ({"milestone_terms": {"1": ["a"]}}, "expected a table of language"),
        ({"milestone_terms": {"4": {"en": ["a"]}}, "milestones": ["a", "b"]}, "milestone 4"),
    ],
)
def test_scorer_keys_errors(extra: dict[str, Any], message: str) -> None:
    table = {"rule": [GOOD_RULE], **extra}
    with pytest.raises(ValueError, match=message):
        rules_from_mapping("some-slug", table)


def test_percent_is_the_only_sign_a_term_may_be() -> None:
    assert hits(one_rule(["%"]), "70 % done")
    with pytest.raises(ValueError, match="no letters or digits"):
        rules_from_mapping("c", {"rule": [{"name": "r", "group": [{"en": ["$"]}]}]})


# ---------------------------------------------------------------- the fold's fast path

# Characters the fold table changes (punctuation, letter forms, marks it drops, the quote that
# other quotes become), characters it keeps, and characters past its end.
_FOLD_SAMPLES = (
    "'`’‘\"«»،؛؟.,!?-–—_()[]\\^$*+|{}ـًٌٍَُِّْٰكيىةۀأإآؤئ٠١٢۰۱۲ÇçƏəİıŞşÜüЁёЙй"
    "\x00\x01\x1f\x7f\u200b\u200d\u200e\u00ad\u0301\u2022\u22ff"
)
_FOLD_KEPT = "abcXYZ019 \n\tتبریزباکوпривет\u200c\U0001f600\ufeff"


@given(st.text(alphabet=st.sampled_from(_FOLD_SAMPLES + _FOLD_KEPT), max_size=300))
@settings(max_examples=800, deadline=None)
def test_the_fold_gives_what_the_fold_table_gives(text: str) -> None:
    from tracker.matching import _FOLD_LIST, _fold

    assert _fold(text) == text.translate(_FOLD_LIST)


def test_the_fold_gives_what_the_fold_table_gives_past_its_limits() -> None:
    from tracker.matching import _CHANGED, _FOLD_LIST, _FOLD_LONGEST, _FOLD_MOST, _fold

    many = "".join(sorted(_CHANGED)[: _FOLD_MOST * 3]) + " خبر `quoted' "
    long = ("Tabriz–Baku «flight», ‘resumed’ " * (_FOLD_LONGEST // 20))[: _FOLD_LONGEST + 7]
    every = "".join(_CHANGED) + "".join(reversed(_CHANGED))
    pairs = ["".join(_CHANGED)[i : i + _FOLD_MOST] for i in range(0, len(_CHANGED), _FOLD_MOST)]
    for text in (many, long, every, "", "`'`", "'`'", *pairs):
        assert _fold(text) == text.translate(_FOLD_LIST)
