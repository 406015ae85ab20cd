"""What the shipped catalog says: structure, the quotes against the source article, milestones,
curated evidence, search queries and match rules (tracker/data/catalog.toml)."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tracker.matching import Matcher, rules_from_mapping

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parent / "tracker" / "data" / "catalog.toml"
# The seed article lives beside the repository in the development workspace, not inside it.
SEED_ARTICLE = HERE.parent.parent / "shared" / "seed" / "article.fa.txt"

SLUGS = [
    "joint-industrial-park",
    "reconstruction-engineering",
    "khodaafarin-crossing",
    "new-access-point",
    "tabriz-baku-flight",
    "health-tourism",
    "tourist-tours",
    "tractor-dealership",
]
LANGUAGES = {"fa", "az", "en", "ru"}
STANCES = {"progress", "setback", "neutral"}
# The format's own key lists (the loader refuses anything else), so this file and the loader agree.
from tracker.catalog import COMMITMENT_KEYS, EVIDENCE_KEYS  # noqa: E402
from tracker.matching import _RULE_KEYS as RULE_KEYS  # noqa: E402

URL = re.compile(r"^https?://[^\s/]+\.[a-z]{2,}(/\S*)?$")
# Where each commitment honestly stands on the curated record alone (SOURCES.md §6): the
# highest milestone its confirmed evidence reaches, out of how many.
EXPECTED_REACH = {
    "joint-industrial-park": 0,
    "reconstruction-engineering": 0,
    "khodaafarin-crossing": 3,  # bridge completed; posts unfinished, opening unconfirmed
    "new-access-point": 2,  # Horadiz–Aghband road under construction (2023 decree on)
    "tabriz-baku-flight": 5,  # 12 flights a week by December 2025: delivered
    "health-tourism": 0,
    "tourist-tours": 0,
    "tractor-dealership": 0,
}


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    with CATALOG.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def agreement(data: dict[str, Any]) -> dict[str, Any]:
    [only] = data["agreement"]
    return dict(only)


@pytest.fixture(scope="module")
def commitments(agreement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["slug"]: c for c in agreement["commitment"]}


def test_format_and_one_agreement(data: dict[str, Any], agreement: dict[str, Any]) -> None:
    assert data["format"] == 1
    assert agreement["slug"] == "eaz-azerbaijan-2022"
    assert agreement["language"] == "fa"
    assert agreement["published_on"] == date(2022, 2, 19)
    assert URL.match(agreement["url"])
    for key in ("title", "outlet", "text", "summary"):
        assert isinstance(agreement[key], str) and agreement[key].strip(), key


def test_exactly_the_eight_commitments(agreement: dict[str, Any]) -> None:
    assert [c["slug"] for c in agreement["commitment"]] == SLUGS


def test_agreement_text_is_the_seed_article(agreement: dict[str, Any]) -> None:
    if not SEED_ARTICLE.exists():
        pytest.skip(f"seed article not present at {SEED_ARTICLE}")
    assert squash(agreement["text"]) == squash(SEED_ARTICLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("slug", SLUGS)
def test_commitment_fields(slug: str, commitments: dict[str, dict[str, Any]]) -> None:
    c = commitments[slug]
    assert set(c) <= COMMITMENT_KEYS, f"unexpected keys {set(c) - COMMITMENT_KEYS}"
    for key in ("title", "description", "quote"):
        assert isinstance(c[key], str) and c[key].strip(), key
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", c["description"].strip())
    assert 2 <= len(sentences) <= 4, "description: two to four sentences"
    assert c["parties"] and all(isinstance(p, str) and p.strip() for p in c["parties"])
    assert c["announced_on"] == date(2022, 2, 19)
    if "deadline" in c:
        assert isinstance(c["deadline"], date) and c["deadline"] > c["announced_on"]
    if "stall_days" in c:
        assert isinstance(c["stall_days"], int) and c["stall_days"] > 0


@pytest.mark.parametrize("slug", SLUGS)
def test_quote_is_in_the_article(
    slug: str, agreement: dict[str, Any], commitments: dict[str, dict[str, Any]]
) -> None:
    quote = squash(commitments[slug]["quote"])
    assert quote in squash(agreement["text"])
    if SEED_ARTICLE.exists():
        assert quote in squash(SEED_ARTICLE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("slug", SLUGS)
def test_milestones(slug: str, commitments: dict[str, dict[str, Any]]) -> None:
    milestones = commitments[slug]["milestones"]
    assert 3 <= len(milestones) <= 5
    assert all(isinstance(m, str) and m.strip() for m in milestones)
    assert len(set(milestones)) == len(milestones)


@pytest.mark.parametrize("slug", SLUGS)
def test_queries(slug: str, commitments: dict[str, dict[str, Any]]) -> None:
    queries = commitments[slug]["queries"]
    assert set(queries) == LANGUAGES | {"gdelt"}
    assert all(isinstance(q, str) and q.strip() for q in queries.values())
    gdelt = queries["gdelt"]
    # GDELT searches the English translation, rejects OR outside parentheses and phrases or
    # keywords shorter than four characters (SOURCES.md §1).
    assert gdelt.isascii()
    depth = 0
    for token in re.findall(r'\(|\)|"[^"]*"|[^\s()"]+', gdelt):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            assert depth >= 0, "unbalanced parentheses"
        elif token == "OR":
            assert depth > 0, "OR outside parentheses"
        else:
            words = token.strip('"').split()
            assert words and all(len(w) >= 4 for w in words), f"too short: {token}"
    assert depth == 0, "unbalanced parentheses"


@pytest.mark.parametrize("slug", SLUGS)
def test_match_rules_shape(slug: str, commitments: dict[str, dict[str, Any]]) -> None:
    c = commitments[slug]
    assert c["rule"], "at least one rule"
    names = [r["name"] for r in c["rule"]]
    assert len(set(names)) == len(names), "rule names are unique within a commitment"
    for rule in c["rule"]:
        assert set(rule) <= RULE_KEYS
        assert rule["group"], f"{rule['name']}: no groups"
        for group in rule["group"]:
            assert group and all(group.values()), f"{rule['name']}: empty group"
            assert set(group) <= LANGUAGES
        for key in ("veto", "mask"):
            assert set(rule.get(key, {})) <= LANGUAGES
    # A text in any one of the four languages can match the commitment on its own terms: some
    # rule has terms in that language in every one of its groups.
    for language in LANGUAGES:
        assert any(all(g.get(language) for g in r["group"]) for r in c["rule"]), language
    assert set(c.get("veto", {})) <= LANGUAGES
    # The matcher accepts them (and rejects conflicts such as a term both required and vetoed).
    rules_from_mapping(slug, c)


def test_all_rules_compile_together(commitments: dict[str, dict[str, Any]]) -> None:
    matcher = Matcher(rules_from_mapping(s, c) for s, c in commitments.items())
    assert matcher.match("Tabriz–Baku flights\nIran Air") != []


@pytest.mark.parametrize("slug", SLUGS)
def test_curated_evidence(slug: str, commitments: dict[str, dict[str, Any]]) -> None:
    c = commitments[slug]
    evidence = c.get("evidence", [])
    urls = [e.get("url") or e["cite"] for e in evidence]
    # The store keeps one row per commitment and URL; a repeated URL would be dropped.
    assert len(set(urls)) == len(urls), "evidence URLs repeat within the commitment"
    for e in evidence:
        assert set(e) <= EVIDENCE_KEYS and {"date", "title", "stance", "note"} <= set(e)
        assert isinstance(e["date"], date) and date(2010, 1, 1) <= e["date"] <= date.today()
        # An article's own address, never a site's home page; or an explicit citation.
        if "url" in e:
            assert URL.match(e["url"]), e["url"]
            parts = urlsplit(e["url"])
            assert parts.path.strip("/") or parts.query, (
                f"a home page is not a citation: {e['url']}"
            )
        else:
            assert e["cite"].strip(), e["title"]
        assert e["stance"] in STANCES
        assert e["language"] in LANGUAGES, e["title"]
        assert e["title"].strip() and e["note"].strip() and e.get("outlet", "x").strip()
        if "milestone" in e:
            assert isinstance(e["milestone"], int)
            assert 1 <= e["milestone"] <= len(c["milestones"])
            # Only progress moves a milestone.
            assert e["stance"] == "progress", e["title"]
    dates = [e["date"] for e in evidence]
    assert dates == sorted(dates), "evidence in date order"


@pytest.mark.parametrize("slug", SLUGS)
def test_curated_record_reaches_the_honest_milestone(
    slug: str, commitments: dict[str, dict[str, Any]]
) -> None:
    c = commitments[slug]
    reached = max((e.get("milestone", 0) for e in c.get("evidence", [])), default=0)
    assert reached == EXPECTED_REACH[slug]
    delivered = reached == len(c["milestones"])
    assert delivered is (slug == "tabriz-baku-flight")
    # Milestones move forward with time.
    steps = [(e["date"], e["milestone"]) for e in c.get("evidence", []) if "milestone" in e]
    assert [m for _, m in steps] == sorted(m for _, m in steps)


def test_the_crossing_and_access_point_split(commitments: dict[str, dict[str, Any]]) -> None:
    """The two share the Aghband–Kalaleh site; each description says which stories are whose."""
    crossing = commitments["khodaafarin-crossing"]["description"]
    access = commitments["new-access-point"]["description"]
    assert "Aghband" in crossing and "new-access-point" in crossing
    assert "khodaafarin-crossing" in access and "both" in access
