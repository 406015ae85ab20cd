"""Decide which commitments a news item is evidence for, how sure that is, and what it suggests.

Pure and fast: no database, no I/O, nothing from the rest of `tracker`. Matching runs in two
stages:

1. **Candidates.** The catalog's match rules are compiled once into a token index; finding the
   candidates of one item is a normalisation pass, one tokenisation, one dictionary probe per token
   (for a catalog of thousands of commitments, which keeps stems rather than every inflected
   form, also a slice of each token) and a few set operations. Most items stop here with no
   candidate.
2. **Scoring.** Each (commitment, item) candidate gets a score from a handful of features that say
   how much the text is *about* the commitment rather than merely sharing its words: the strength
   of the rule that found it, whether its terms stand in the headline and in one sentence, the
   places the catalog names for the commitment against competing places (``places`` /
   ``not_places``), whether the item lists several of the catalog's commitments (a governor's list
   of agreements: every named agreement gets the item), and whether the search query of this
   commitment found it (``query_slug``). A logistic function turns the weighted sum into a score
   between 0 and 1, compared with a threshold per language. A model learned from reviews
   (`tracker.learn`; passed as ``Matcher(model=weights)``) adds what the watchers' confirms and
   rejects taught; scoring with it is a few dictionary look-ups and one sum.

Every match also carries a suggested milestone (from the catalog's ``milestone_terms``, or words of
the milestone titles), a suggested stance (setback for suspended/cancelled/halted, progress when a
milestone is reached, else neutral) and the reasons behind its score.

How a commitment's rules are read (this is the contract the catalog is written against):

* A commitment is a candidate when ANY of its rules matches. A rule matches when EVERY one of its
  groups has at least one term in the text and none of its veto terms (nor the commitment's) is
  there. A rule's ``strength`` (0 < strength ≤ 1, default 1) says how sure a match of that rule
  alone is: a weak rule proposes a candidate that needs support (a place, the headline, a list of
  agreements, the search query, the learned model) to be accepted.
* Terms match whole words, after `normalize` has been applied to both the term and the text, so
  "Baku" never matches inside "Bakuriani" and "سد" (dam) never inside another word.
* A term's words match in order with nothing between them but spaces; punctuation between them
  breaks the phrase, so "Iran. Azerbaijan" is not the term "Iran Azerbaijan". Hyphens and dashes
  count as spaces, so "Aghband-Kalala" is the term "Aghband Kalala".
* A word ending in ``*`` takes inflectional endings from a closed list for its script (Azerbaijani
  case and possessive endings plus English -s/-ed/-ing for Latin, Russian noun and adjective
  endings for Cyrillic): "Bakı*" matches "Bakıdan", "Тебриз*" matches "Тебриза", and neither
  matches an unrelated longer word the way a bare prefix would ("Bakı*" does not match
  "Bakıxanov").
* Persian words always accept the suffixes that a lost ZWNJ glues on (ها، های، ی، ای …), and "*"
  adds the plural/adjective endings ان، یان، گان، ات. A Persian term written with a space (or a
  ZWNJ) between its parts also matches the parts written together: "قره باغ" matches "قرهباغ",
  "خدا آفرین" matches "خداآفرین". So write Persian compounds with the space.
* An attached conjunction "و" is NOT stripped: standard Persian writes it as a separate word, and
  accepting it glued on would let short terms match unrelated words.
* Each rule is read on its own: its group, veto and mask terms and the commitment's veto terms
  are found leftmost-longest without overlap. Where two of them overlap, the one that starts
  first wins, and of two that start together the longer wins; terms matching exactly the same
  words all count. A longer phrase therefore shadows the shorter terms inside it, e.g. the veto
  "Khoda Afarin County" hides the group term "Khoda Afarin". Terms of other rules never shadow.
* Mask terms (optional ``mask.<lang>`` on a rule) count for nothing except that shadowing:
  a mask "East Azerbaijan" stops the country term "Azerbaijan" from counting inside the province's
  name, while "Azerbaijan" elsewhere in the same text still counts.
* Places, competing places and milestone terms use the same term syntax; they never make a
  candidate, they only score and explain one.
* `Match.score` is the scorer's probability-like score (0–1, three decimals); `Match.reasons`
  names what raised or lowered it.

The ``language`` argument of `Matcher.match` does not restrict the terms: feeds mislabel
languages and texts mix scripts (Persian articles quote "AZAL"), and the terms of one language
rarely collide with words of another. It only picks the threshold (when it is not given, the
text's script decides). Veto terms are therefore chosen so that they are not ordinary words in the
other languages (e.g. no bare "bend" for Azerbaijani "bənd", dam).
"""

from __future__ import annotations

import gc
import math
import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import product
from operator import itemgetter
from typing import Any

import msgspec

__all__ = [
    "THRESHOLDS",
    "WEIGHTS",
    "Candidate",
    "CommitmentRules",
    "Match",
    "Matcher",
    "Rule",
    "candidate_features",
    "detect_language",
    "model_features",
    "model_logit",
    "normalize",
    "normalize_title_key",
    "rules_from_mapping",
    "tokenize",
]


# --- normalisation -----------------------------------------------------------------------------


def _build_fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    # Generic Latin diacritics (é, ñ, ş, ç, ğ, ö, ü …): keep the ASCII base letter. Done from the
    # Unicode data rather than by NFKD+ASCII-ignore because that drops letters with no
    # decomposition (ə), which the explicit entries below handle.
    for cp in range(0xC0, 0x250):
        decomposed = unicodedata.normalize("NFD", chr(cp))
        base = decomposed[0]
        if len(decomposed) > 1 and base.isascii() and base.isalpha():
            table[cp] = base.lower()
    explicit = {
        # Azerbaijani letters that NFKD does not reduce to ASCII, or reduces wrongly.
        "ə": "e",
        "Ə": "e",
        "ı": "i",
        "İ": "i",
        # Russian writes ё and е interchangeably.
        "ё": "е",
        "Ё": "е",
        # Arabic letters typed by Arabic keyboards or copied from Arabic sources.
        "ي": "ی",
        "ى": "ی",
        "ك": "ک",
        "ة": "ه",
        "ۀ": "ه",
        "ە": "ه",
        "ھ": "ه",
        # Alef forms are folded to bare alef on both sides: sources write خداآفرین and خداافرین.
        "آ": "ا",
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "ؤ": "و",
        "ئ": "ی",
        "ء": None,
        "ـ": None,  # tatweel is decoration
        # Apostrophe look-alikes, so "Baku’s" and "Baku's" tokenise the same way.
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "′": "'",
        "`": "'",
    }
    table.update({ord(k): v for k, v in explicit.items()})
    for zero, first in ((0x06F0, "0"), (0x0660, "0")):
        for i in range(10):
            table[zero + i] = chr(ord(first) + i)
    # Hyphens, dashes and underscores join words visually but not semantically.
    for ch in "-‐‑‒–—―−﹘﹣－_":
        table[ord(ch)] = " "
    # Combining marks: Latin/Cyrillic accents left by casefold('İ') and decomposed input, Arabic
    # harakat, superscript alef and hamza above/below.
    for start, end in (
        (0x0300, 0x036F),
        (0x0483, 0x0489),
        (0x0610, 0x061A),
        (0x064B, 0x065F),
        (0x0670, 0x0670),
        (0x06D6, 0x06ED),
        (0x08D3, 0x08FF),
        (0x1AB0, 0x1AFF),
        (0x1DC0, 0x1DFF),
        (0x20D0, 0x20FF),
    ):
        for cp in range(start, end + 1):
            table[cp] = None
    # Invisible format characters other than ZWNJ, which needs context, and the BOM, which lies
    # past the table (see _tokens).
    for cp in (0x00AD, 0x061C, 0x200B, 0x200D, 0x200E, 0x200F, 0x2060):
        table[cp] = None
    for cp in range(0x202A, 0x202F):
        table[cp] = None
    for cp in range(0x2066, 0x206A):
        table[cp] = None
    return table


_ZWNJ = "\u200c"
# str.translate looks each character up in the table; a list indexed by code point answers in
# half the time of a dict, which raises (internally) for every character it does not map. NFKC
# has already reduced presentation forms, so past U+2300 only the BOM still needs handling.
# Punctuation is set apart by spaces here, so that str.split() is the tokeniser.
_FOLD_CAP = 0x2300


def _build_fold_list() -> list[str | None]:
    fold = _build_fold_table()
    out: list[str | None] = []
    for cp in range(_FOLD_CAP):
        ch = chr(cp)
        if cp in fold:
            to = fold[cp]
            # A look-alike folded to punctuation ("’" → "'") is spaced like punctuation itself.
            spaced = to is not None and len(to) == 1 and not (to.isalnum() or to.isspace())
            out.append(f" {to} " if spaced else to)
        elif ch.isalnum() or ch.isspace() or ch == _ZWNJ:
            out.append(ch)
        else:
            out.append(f" {ch} ")
    return out


_FOLD_LIST = _build_fold_list()


def _char_class(chars: Iterable[str]) -> str:
    """A regular-expression class of `chars`, runs of code points written as ranges."""
    runs: list[list[int]] = []
    for cp in sorted(map(ord, chars)):
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    parts = (
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs
    )
    return "[" + "".join(parts) + "]"


# What the fold table changes, for `_fold`: a character and what replaces it ("" drops it).
_CHANGED = {chr(cp): to or "" for cp, to in enumerate(_FOLD_LIST) if to != chr(cp)}
_CHANGES = re.compile(_char_class(_CHANGED))
# Characters that other replacements bring in ("`" becomes " ' "): replaced before the others,
# so that nothing a replacement inserted is replaced again and the result is the table's.
_INNER = frozenset(c for ch, to in _CHANGED.items() for c in to if c != ch and c in _CHANGED)
if any(c != ch and c in _CHANGED for ch in _INNER for c in _CHANGED[ch]):
    raise RuntimeError("fold table: the replacement of an inserted character inserts another")
# Past these, `_fold` leaves the work to str.translate (one lookup per character, whatever the
# text holds): one replace pass per distinct character would cost more, and a hostile text could
# name every character the table changes.
_FOLD_LONGEST = 4000
_FOLD_MOST = 12


def _fold(text: str) -> str:
    """`text.translate(_FOLD_LIST)`, in two thirds of the time on news text: a title or a
    summary holds a few distinct characters that the table changes (punctuation, Arabic letter
    forms), each replaced in one pass at C speed, where translate looks every character up."""
    if len(text) > _FOLD_LONGEST:
        return text.translate(_FOLD_LIST)
    found = set(_CHANGES.findall(text))
    if len(found) > _FOLD_MOST:
        return text.translate(_FOLD_LIST)
    inner = found & _INNER
    for ch in inner:
        text = text.replace(ch, _CHANGED[ch])
    for ch in found - inner if inner else found:
        text = text.replace(ch, _CHANGED[ch])
    return text


_BEYOND_TABLE = re.compile("[^\x00-\u22ff]")
_BOM = "\ufeff"
# Suffixes a writer attaches with a ZWNJ (or, carelessly, a space) and which the matcher accepts
# after any Persian word; re-attaching them gives "شهرک‌های", "شهرک های" and "شهرکهای" one form.
_FA_SUFFIXES = ("ها", "های", "هایی", "ی", "ای", "ایی", "یی", "اش")
_ZWNJ_BEFORE_SUFFIX = re.compile(_ZWNJ + "(?=(?:هایی|های|ها|ایی|ای|یی|ی|اش)(?!\\w))")
# A free-standing "ای" or "ی" is a real word (vocative, letter name); only the plural marker is
# never one, so only it is re-attached when a space stands where the ZWNJ should be.
_PLURAL_WORDS = frozenset({"ها", "های", "هایی"})
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    """Normalise `text` and split it into words and single punctuation marks."""
    if text.isascii():
        return _fold(text).lower().split()
    # NFKC first so that decomposed input (е + U+0308, ا + U+0653) and Arabic presentation forms
    # reach the fold table as the single code points it knows.
    text = _fold(unicodedata.normalize("NFKC", text.casefold()))
    if _BOM in text:
        text = text.replace(_BOM, "")
    if _ZWNJ in text:
        text = _ZWNJ_BEFORE_SUFFIX.sub("", text).replace(_ZWNJ, " ")
    # Characters past the table (emoji and the like) were not spaced; the regex splits them off.
    tokens = _TOKEN.findall(text) if _BEYOND_TABLE.search(text) else text.split()
    if _PLURAL_WORDS.isdisjoint(tokens):
        return tokens
    joined: list[str] = []
    for tok in tokens:
        if tok in _PLURAL_WORDS and joined and _WORD.fullmatch(joined[-1]):
            joined[-1] += tok
        else:
            joined.append(tok)
    return joined


def normalize(text: str) -> str:
    """Return the canonical form used for matching, for Persian, Azerbaijani, Russian, English.

    Case-folded; Arabic letter variants, alef forms, digits and Azerbaijani/Latin diacritics
    folded; tatweel, harakat and invisible marks removed; dashes become spaces; ZWNJ becomes a
    space, except before a suffix, which is re-attached; punctuation is kept, because it
    separates phrases, but set apart by spaces; whitespace collapsed to single spaces.
    """
    return " ".join(_tokens(text))


def normalize_title_key(title: str) -> str:
    """Return a key under which the same headline syndicated elsewhere collides.

    Spaces are dropped as well as punctuation, because Persian copies of one headline differ in
    where they put ZWNJs and spaces ("قره باغ" / "قرهباغ").
    """
    return "".join(t for t in _tokens(title) if _WORD.fullmatch(t))


# --- rules -------------------------------------------------------------------------------------


class Rule(msgspec.Struct, frozen=True):
    """Matches when every group has a term in the text and no veto term is there."""

    name: str
    groups: tuple[tuple[str, ...], ...]
    veto: tuple[str, ...]
    # Optional, so that the three-field form of the published API keeps working.
    mask: tuple[str, ...] = ()
    strength: float = 1.0  # how sure a match of this rule alone is (0 < strength <= 1)


class CommitmentRules(msgspec.Struct, frozen=True):
    """A commitment's rules (any one may match), the veto terms that apply to all of them, and
    what the scorer and the suggestions read: its places, competing places and milestone words."""

    slug: str
    rules: tuple[Rule, ...]
    veto: tuple[str, ...]
    places: tuple[str, ...] = ()
    not_places: tuple[str, ...] = ()
    # Milestone n (1-based) is suggested by the terms at index n-1; () where the catalog gives none.
    milestone_terms: tuple[tuple[str, ...], ...] = ()
    # The milestone titles: words of a title stand in for terms the catalog does not give.
    milestones: tuple[str, ...] = ()


class Match(msgspec.Struct, frozen=True):
    """One commitment a text is evidence for, and why."""

    slug: str
    terms: tuple[str, ...]  # catalog spellings of the terms that made the match, in text order
    score: float  # the scorer's score, 0-1 (see the module docstring)
    rule: str  # name of the strongest rule that matched
    milestone: int | None = None  # the milestone the text suggests was reached (1-based)
    stance: str | None = None  # progress | setback | neutral, as the text suggests
    reasons: tuple[str, ...] = ()  # why the score is what it is, one short phrase each


class Candidate(msgspec.Struct, frozen=True):
    """A (commitment, item) pair the rules proposed, scored, whether or not it was accepted.

    `Matcher.candidates` returns these for benchmarks and for training the learned model;
    `Matcher.match` returns the accepted ones' `match`."""

    match: Match
    features: Mapping[str, float]  # the scorer's inputs (see WEIGHTS)
    base: float  # the scorer's logit before the learned model
    logit: float  # after the learned model (= base without one)
    threshold: float  # the score needed, for this text's language
    accepted: bool
    language: str


_LANG_KEY = re.compile(r"^[a-z]{2,3}$")
_RULE_KEYS = frozenset({"name", "group", "veto", "mask", "strength"})


def _terms_by_language(where: str, value: Any) -> tuple[str, ...]:
    """Flatten a {language: [terms]} table, checking its shape."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table of language = [terms], got {value!r}")
    terms: list[str] = []
    for lang, items in value.items():
        if not isinstance(lang, str) or not _LANG_KEY.match(lang):
            raise ValueError(f"{where}: {lang!r} is not a language code (like en, fa, az, ru)")
        terms += _term_list(f"{where}.{lang}", items)
    return tuple(terms)


def _term_list(where: str, items: Any) -> list[str]:
    if not isinstance(items, list):
        raise ValueError(f"{where}: expected a list of strings, got {items!r}")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where}: every term must be a non-empty string")
        _compile_term(item, where)  # fail at load time, not at match time
    return list(items)


def _strength(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: strength must be a number, got {value!r}")
    if not 0 < value <= 1:
        raise ValueError(f"{where}: strength must be more than 0 and at most 1, got {value!r}")
    return float(value)


def _milestone_terms(where: str, value: Any) -> dict[int, tuple[str, ...]]:
    """`{"2": {"en": [...], "fa": [...]}}` (as the catalog loader keeps it) → {2: terms}."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table of milestone number = {{language = [terms]}}")
    out: dict[int, tuple[str, ...]] = {}
    for number, by_language in value.items():
        key = str(number)
        if not key.isdigit() or int(key) < 1:
            raise ValueError(f"{where}: {number!r} is not a milestone number (1, 2, …)")
        out[int(key)] = _terms_by_language(f"{where}.{key}", by_language)
    return out


def rules_from_mapping(
    slug: str, mapping: Mapping[str, Any], milestones: Sequence[str] | None = None
) -> CommitmentRules:
    """Build a commitment's rules from its catalog table.

    Reads the keys ``rule`` and ``veto`` (the candidates), ``places``, ``not_places`` and
    ``milestone_terms`` (the scorer and the suggestions), and the milestone titles from
    ``milestones`` (the argument, else the table's key of that name), whose words stand in for
    milestone terms the catalog does not give. Other keys (title, queries …) are ignored. Raises
    ValueError naming the commitment, rule and group when the shape is wrong.
    """
    where = f"commitment {slug!r}"
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a table, got {type(mapping).__name__}")
    raw_rules = mapping.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ValueError(f"{where}: needs at least one [[…rule]] table")
    rules: list[Rule] = []
    for r_index, raw in enumerate(raw_rules, start=1):
        r_where = f"{where} rule {r_index}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{r_where}: expected a table, got {raw!r}")
        unknown = sorted(set(raw) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"{r_where}: unknown key(s) {', '.join(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{r_where}: needs a non-empty name")
        r_where = f"{where} rule {name!r}"
        raw_groups = raw.get("group")
        if not isinstance(raw_groups, list) or not raw_groups:
            raise ValueError(f"{r_where}: needs at least one [[…rule.group]] table")
        groups: list[tuple[str, ...]] = []
        for g_index, raw_group in enumerate(raw_groups, start=1):
            g_where = f"{r_where} group {g_index}"
            terms = _terms_by_language(g_where, raw_group)
            if not terms:
                raise ValueError(f"{g_where}: has no terms")
            groups.append(terms)
        veto = _terms_by_language(f"{r_where} veto", raw.get("veto", {}))
        mask = _terms_by_language(f"{r_where} mask", raw.get("mask", {}))
        strength = _strength(r_where, raw.get("strength", 1.0))
        rules.append(Rule(name=name, groups=tuple(groups), veto=veto, mask=mask, strength=strength))
    veto = _terms_by_language(f"{where} veto", mapping.get("veto", {}))
    places = tuple(_term_list(f"{where} places", mapping.get("places", [])))
    not_places = tuple(_term_list(f"{where} not_places", mapping.get("not_places", [])))
    by_number = _milestone_terms(f"{where} milestone_terms", mapping.get("milestone_terms", {}))
    titles = list(milestones if milestones is not None else mapping.get("milestones") or [])
    if not all(isinstance(t, str) for t in titles):
        raise ValueError(f"{where} milestones: expected a list of titles")
    count = max([len(titles), *by_number])
    if titles and count > len(titles):
        raise ValueError(
            f"{where} milestone_terms: milestone {count} does not exist (there are {len(titles)})"
        )
    result = CommitmentRules(
        slug=slug,
        rules=tuple(rules),
        veto=veto,
        places=places,
        not_places=not_places,
        milestone_terms=tuple(by_number.get(n, ()) for n in range(1, count + 1)),
        milestones=tuple(titles),
    )
    _CompiledCommitment(result)  # surfaces conflicts (a term both required and vetoed) at load
    return result


# --- term compilation --------------------------------------------------------------------------


def _endings(*parts: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize("".join(p)) if any(p) else "" for p in product(*parts))


# Azerbaijani (after folding ə→e, ı→i …) case endings after a bare stem and after a possessive,
# possessives, plural and the -li/-daki derivations; plus English plural and verb endings. The
# list is closed so that a stem never swallows an unrelated longer word.
_AZ_CASE = (
    "", "in", "un", "nin", "nun", "a", "e", "ya", "ye", "i", "u", "ni", "nu", "yi", "yu",
    "da", "de", "ta", "te", "dan", "den", "tan", "ten", "la", "le", "yla", "yle",
    "daki", "deki", "taki", "teki", "li", "lu",
)  # fmt: skip
_AZ_CASE_AFTER_POSS = (
    "", "nin", "nun", "na", "ne", "ni", "nu", "nda", "nde", "ndan", "nden", "yla", "yle",
    "ndaki", "ndeki",
)  # fmt: skip
_LATIN_ENDINGS = (
    _endings(("", "lar", "ler"), _AZ_CASE)
    | _endings(("", "lar", "ler"), ("i", "u", "si", "su"), _AZ_CASE_AFTER_POSS)
    | _endings(("li", "lu"), ("lar", "ler"), ("", "in", "a", "e", "i", "da", "de", "dan", "den"))
    | frozenset({"s", "es", "ed", "ing", "er", "ers"})
)
# "й" ends the genitive plural of nouns in -ия/-ие ("компаний", "территорий").
_RU_ENDINGS = frozenset(
    normalize(e)
    for e in (
        "", "а", "я", "у", "ю", "ом", "ем", "ой", "ей", "е", "и", "ы", "ов", "ев", "ам", "ям", "й",
        "ами", "ями", "ах", "ях", "ью", "ый", "ий", "ая", "яя", "ое", "ее", "ые", "ие", "ого",
        "его", "ому", "ему", "ым", "им", "ую", "юю", "ых", "их", "ыми", "ими",
    )
)  # fmt: skip
_FA_AUTO = frozenset(("", *_FA_SUFFIXES))
_FA_STAR = frozenset(a + b for a in ("", "ان", "یان", "گان", "ات") for b in _FA_AUTO)
_MIN_STEM = 3
_BAD_STAR = re.compile(r"(?<!\w)\*|\*\w")
_MAX_JOINS = 4  # 2**4 spellings per term at most; longer Persian phrases keep their spaces


def _script(word: str) -> str:
    for ch in word:
        cp = ord(ch)
        if 0x0600 <= cp <= 0x06FF or 0xFB50 <= cp <= 0xFEFF:
            return "arabic"
        if 0x0400 <= cp <= 0x04FF:
            return "cyrillic"
        if ch.isalpha():
            return "latin"
    return "other"


class _Stem:
    """A starred Latin or Cyrillic word: its stem followed by one of its script's endings.

    ``token in stem`` says what ``token in {stem + e for e in endings}`` would, without the three
    hundred strings a Latin stem would take: a catalog of a thousand commitments would otherwise
    hold some six hundred thousand of them."""

    __slots__ = ("endings", "size", "stem")

    def __init__(self, stem: str, endings: frozenset[str]) -> None:
        self.stem = stem
        self.size = len(stem)
        self.endings = endings

    def __contains__(self, token: str) -> bool:
        return token.startswith(self.stem) and token[self.size :] in self.endings

    def forms(self) -> frozenset[str]:
        return frozenset(map(self.stem.__add__, self.endings))


# The surface forms one word of a term may take: listed, or a stem and its endings.
_Forms = frozenset[str] | _Stem


def _forms(word: str, star: bool) -> _Forms:
    script = _script(word)
    if script == "arabic":
        # A few dozen forms at most: listed, which also serves words shorter than a stem.
        return frozenset(map(word.__add__, _FA_STAR if star else _FA_AUTO))
    if not star:
        return frozenset((word,))
    return _Stem(word, _RU_ENDINGS if script == "cyrillic" else _LATIN_ENDINGS)


def _shortest(forms: _Forms) -> int:
    """The length of the shortest form (every ending list holds the empty ending)."""
    return forms.size if isinstance(forms, _Stem) else min(map(len, forms))


# One spelling of a term: for each text token, the surface forms it may take.
_Variant = tuple[_Forms, ...]


def _compile_term(term: str, where: str = "term") -> tuple[str, tuple[_Variant, ...]]:
    """Return (pattern key, spellings) for a catalog term, or raise ValueError naming `where`."""
    try:
        return _expand_term(term)
    except ValueError as exc:
        raise ValueError(f"{where}: {term!r}: {exc}") from None


# Catalog loading validates every term and Matcher compiles it again: the expansion (tokenising,
# Persian joins) is worth keeping.
@lru_cache(maxsize=8192)
def _expand_term(term: str) -> tuple[str, tuple[_Variant, ...]]:
    if _BAD_STAR.search(term):
        raise ValueError("'*' may only end a word, as in 'Tebriz*'")
    words: list[tuple[str, bool]] = []  # (token, takes endings)
    for tok in _tokens(term):
        if tok != "*":
            words.append((tok, False))
            continue
        stem = words[-1][0]
        if len(stem) < _MIN_STEM:
            raise ValueError(
                f"stem {stem!r} is shorter than {_MIN_STEM} letters and would match too many words"
            )
        words[-1] = (stem, True)
    # "%" is the one sign that may be a term on its own: progress is reported in percent.
    if not any(_WORD.fullmatch(w) or w == "%" for w, _ in words):
        raise ValueError("has no letters or digits to match")
    key = " ".join(w + ("*" if star else "") for w, star in words)

    # Gaps between two Persian words may be written closed; each such gap is tried both ways.
    gaps = [
        i
        for i in range(len(words) - 1)
        if _script(words[i][0]) == "arabic" and _script(words[i + 1][0]) == "arabic"
    ][:_MAX_JOINS]
    variants: list[_Variant] = []
    for closed in product((False, True), repeat=len(gaps)):
        joined = {g for g, c in zip(gaps, closed, strict=True) if c}
        merged: list[tuple[str, bool]] = []
        for i, (word, star) in enumerate(words):
            if i - 1 in joined:
                merged[-1] = (merged[-1][0] + word, star)
            else:
                merged.append((word, star))
        variants.append(tuple(_forms(w, s) for w, s in merged))
    return key, tuple(variants)


# --- what every language says about progress, setbacks and plans ------------------------------
#
# These word lists are the matcher's, not a catalog's: they describe news in general. They are
# only looked for in texts that already have a candidate, so they cost nothing on the nine items
# in ten that match nothing.


def _az_verb(*stems: str) -> list[str]:
    """Azerbaijani past, perfect and present forms of verb stems (folded: ı→i, ə→e).

    The closed ending list of "*" is for nouns; verbs take these instead. Future forms (-acaq)
    are left out on purpose: a thing that will be done is not done (see _PLAN)."""
    endings = ("di", "du", "ib", "ub", "ir", "ur", "mis", "mus", "dir")
    return [stem + e for stem in stems for e in endings]


_SETBACK = (
    # en
    "suspend", "suspends", "suspended", "suspending", "suspension*", "cancel", "cancels",
    "cancelled", "canceled", "cancelling", "cancellation*", "halt", "halts", "halted",
    "postpone*", "postponed", "delayed", "scrapped", "put on hold", "stopped", "stalled",
    # fa
    "لغو", "تعلیق", "متوقف", "توقف", "تعویق", "تاخیر", "ممنوع*", "مانع از", "جوسازی",
    # az
    "ləğv", "ləğv edil*", *_az_verb("dayandiril", "dayandir", "texire salin", "legv edil",
                                     "legv olun", "dondurul"),
    # ru
    "приостановл*", "приостановлен*", "приостановлено", "приостановил*", "приостанавлива*", "отмен*", "отменен*",
    "отменено", "отменил*", "прекращен*", "прекращено", "прекратил*", "заморожен*",
    "отложен*", "отложено",
)  # fmt: skip

# A suspension lifted is progress: "flights resumed after the suspension".
_RESUME = (
    "resume", "resumes", "resumed", "resuming", "resumption", "restore", "restored",
    "reopen*", "reopened",
    "از سر گرفته", "از سرگیری", "ازسرگیری", "برقراری مجدد", "بازگشایی",
    *_az_verb("berpa olun", "berpa edil", "yeniden acil"),
    "возобнов*", "возобновлен*", "возобновлено", "возобновил*",
)  # fmt: skip

# Words that make the next few words a plan rather than a fact: "to be completed", "will open",
# "планируется завершить", "تا پایان سال تکمیل".
_PLAN = (
    "will", "to be", "plan", "plans", "planned", "planning", "expected", "expects", "set to",
    "soon", "next year", "next month", "by the end of", "intends", "intend", "aims", "would",
    "scheduled to", "going to", "proposed", "could", "may become", "to launch", "to open",
    "to start", "to begin", "to resume", "to increase",
    "خواهد", "خواهند", "قرار است", "برنامه ریزی", "پیش بینی", "تا پایان", "به زودی", "در آینده",
    "در نظر", "آماده", "مقرر شد",
    "planlaşdırılır", "planlaşdırılıb", "nəzərdə tutulur", "nəzərdə tutulub", "gözlənilir",
    "tezliklə", "sonunadək", "sonuna qədər",
    "будет", "будут", "планиру*", "планируется", "ожида*", "ожидается", "намерен*",
    "в ближайшее", "до конца", "скоро", "предполага*", "предусмотрен*",
)  # fmt: skip
# Azerbaijani future: the suffix itself is the plan (tamamlanacaq, açılacaq, olunacağı).
_AZ_FUTURE = ("acaq", "ecek", "acaqdir", "ecekdir", "acaqlar", "ecekler", "acagi", "eceyi")
# A share of the work ("70% completed", "۷۰ درصد") is work under way, not a step reached.
_PARTIAL = frozenset({"%", "percent", "درصد", "faiz", "faizi", "процент", "процента", "процентов"})
# A side or a part of the work: "the Iranian part", "Azerbaijan's side", "بخش ایرانی".
_PART = ("side", "part of", "بخش", "سمت", "часть", "части", "сторон*")
_PLAN_BEFORE = 6  # a plan word up to this many words before a milestone term makes it a plan
_PLAN_AFTER = 2

# Sentence ends: a term's neighbours in the same sentence are its context.
_BREAKS = frozenset({".", "!", "?", "؟", "؛", ";", "…", "\n"})

# Words too common to stand for a milestone when a title's words stand in for its terms.
_TITLE_STOPWORDS = frozenset(
    (
        "the", "and", "for", "from", "with", "into", "onto", "over", "under", "between", "both",
        "each", "first", "second", "third", "its", "their", "this", "that", "these", "those",
        "than", "then", "when", "where", "which", "while", "within", "without", "about", "after",
        "before", "across", "along", "among", "more", "most", "other", "some", "such", "only",
        "very", "also", "been", "being", "have", "were",
    )
)  # fmt: skip


# --- the scorer -------------------------------------------------------------------------------

# Weights of the scorer's features (see `Candidate.features`); the score is
# 1 / (1 + exp(-(bias + Σ weight × feature))). Set by hand, in round numbers, looking at the
# errors of half A of the development set (tests/data/devset; tests/bench/matching.py), and
# checked on half B: a rule of strength 1 alone is accepted; a weak rule (0.5–0.75) needs one more
# sign (headline and sentence, a place, milestone wording, a list, the query); two competing
# places outweigh a strong rule. (`--fit` shows what a logistic regression on half A would pick.)
WEIGHTS: Mapping[str, float] = {
    "bias": -3.0,
    "strength": 4.0,  # the best matching rule's strength, 0-1
    "title": 0.3,  # a supporting term stands in the headline (or the lead a feed gives for it)
    "sentence": 0.3,  # every group of the best rule is met within one sentence
    "rules": 1.0,  # other rules of the commitment match too (their strengths, up to 1)
    "places": 1.0,  # the commitment's places, beyond the rule's own words (0, 1 or 2)
    "not_places": -1.5,  # competing places (0, 1 or 2)
    "milestone": 0.7,  # the text uses the wording of one of the commitment's milestones
    "overshadowed": -0.7,  # a weak rule, beside another commitment's strong one (and no list)
    "list": 2.0,  # the item names three or more of the catalog's commitments
    "query": 1.5,  # this commitment's search query found the item
}
# The score a candidate needs, by language: set on the development set, in steps of 0.05 from
# 0.40, as the lowest thresholds that keep overall precision at 0.95 (and, where a higher one
# loses no true match, the higher): tests/bench/matching.py prints the figures. Azerbaijani
# needs more than the others: its outlets report every border, security and dam event near
# Aghband and Khudafarin, so the same words come with more near misses.
THRESHOLDS: Mapping[str, float] = {"fa": 0.40, "az": 0.50, "en": 0.45, "ru": 0.40}
_DEFAULT_THRESHOLD = 0.5


def _sigmoid(x: float) -> float:
    if x < -30:
        return 0.0
    if x > 30:
        return 1.0
    return 1.0 / (1.0 + math.exp(-x))


def detect_language(text: str) -> str:
    """fa, ru, az or en, from the script of the first few hundred characters."""
    head = text[:300]
    arabic = cyrillic = 0
    for ch in head:
        cp = ord(ch)
        if 0x0600 <= cp <= 0x06FF or 0xFB50 <= cp <= 0xFEFF:
            arabic += 1
        elif 0x0400 <= cp <= 0x04FF:
            cyrillic += 1
    if arabic or cyrillic:
        return "fa" if arabic >= cyrillic else "ru"
    lowered = head.lower()
    # ə and ı are Azerbaijani's own letters (ı also Turkish, which the catalog does not cover).
    if "ə" in lowered or "ı" in lowered or "ğ" in lowered:
        return "az"
    return "en"


# --- the learned model's features -------------------------------------------------------------


_MODEL_WORDS = 80  # the learned model reads the headline and the start of the summary


def model_features(tokens: Sequence[str], side: str | None = None) -> list[str]:
    """The learned model's features of a text, from its normalised tokens (`tokenize`).

    Words and the first five letters of longer words (a cheap stem for Azerbaijani, Russian and
    Persian endings, marked with "~"), each once; plus the source's side. (Word pairs were
    tried: on the development set's splits they changed nothing and made training slower.) The model keeps ratios of these both for all commitments and for each one,
    so that a rejection of "dam" for the crossing teaches the crossing more than the flight.
    `tracker.learn` trains on exactly these."""
    words = [t for t in tokens[: _MODEL_WORDS * 2] if t[0].isalnum()][:_MODEL_WORDS]
    feats = set(words)
    feats.update([w[:5] + "~" for w in words if len(w) > 5])
    feats.add("side=" + (side or "?"))
    return list(feats)


def candidate_features(rule: str, features: Mapping[str, float]) -> list[str]:
    """The learned model's features of a candidate beyond its text: the rule that proposed it
    and the scorer's features that are on. Reviews teach per commitment how far each deserves
    the trust the scorer gives it (a rule that is mostly rejected, a competing place that is
    mostly right)."""
    return ["rule=" + rule, *("has=" + k for k, v in features.items() if v and k != "strength")]


def model_logit(model: Mapping[str, Any], slug: str, features: Sequence[str], base: float) -> float:
    """The learned model's logit for one candidate: a few look-ups and one sum.

    `model` is what `tracker.learn` stores: log-count ratios of features among confirmed and
    rejected examples (naive Bayes), for all commitments ("*") and for each, and the logistic
    regression that combines their mean with the scorer's own logit."""
    ratios: Mapping[str, Mapping[str, float]] = model["ratios"]
    every, own = ratios.get("*", {}), ratios.get(slug, {})
    evidence = sum(every.get(f, 0.0) + own.get(f, 0.0) for f in features)
    evidence /= math.sqrt(len(features) or 1)
    stack: Mapping[str, float] = model["stack"]
    return stack["bias"] + stack["base"] * base + stack["nb"] * evidence


# --- matcher -----------------------------------------------------------------------------------

_SEPARATOR = "\n"  # whitespace is never a token, so no phrase runs from title into summary
# Up to this many commitments, testing each one against the text costs less than looking up
# the ones that use its terms.
_WALK_AT_MOST = 64
# Normalised term -> (pattern id, spellings); shared so a term used by several commitments is
# looked for once.
_Registry = dict[str, tuple[int, tuple[_Variant, ...]]]
# A term as its anchor word finds it: (pattern id, position of the anchor word, forms of every
# word). A term is looked up by its longest word rather than its first, so that a term starting
# with a common word ("از طریق ایران", "through Iran") costs nothing on texts without its rare word.
_Entry = tuple[int, int, _Variant]
_Span = tuple[int, int]
# Up to this many starred Latin/Cyrillic anchor words, an index lists their forms (the built-in
# catalog has some 280 in its rules and 240 in its context terms); past it, it keeps stems.
_LISTED_STEMS = 500
# A token's first letters, which every stem has (C speed: no Python frame per token).
_HEAD = itemgetter(slice(0, _MIN_STEM))
# Up to this many distinct anchor words in a text, their positions are found by list.index (one
# scan of the tokens each, in C); past it, by one Python pass over the tokens.
_SCAN_AT_MOST = 6


def _pid(registry: _Registry, term: str, where: str) -> int:
    key, variants = _compile_term(term, where)
    if key not in registry:
        registry[key] = (len(registry), variants)
    return registry[key][0]


def _anchor(variant: _Variant) -> int:
    """The position of a spelling's longest word (the first of equals)."""
    lengths = [_shortest(forms) for forms in variant]
    return lengths.index(max(lengths))


class _Index:
    """The terms of a registry by their anchor words, and `find`, which finds them in a text.

    An anchor word whose forms are listed is found by one probe per token in a dictionary of its
    forms: the fastest test there is. A starred Latin or Cyrillic anchor word takes some three
    hundred forms, so past `listed_stems` of them (a catalog of a thousand commitments has some
    3,300) they are kept as stems alone: a token whose first letters begin a stem is tried
    against the stems of those letters, length by length (a few probes), and the rest of the
    token must be one of the stem's endings. A thousand commitments then compile in a quarter
    of the time and a ninth of the memory, and each text pays a slice of every token (some
    12 µs an item on the benchmark's feeds: a fifth of matching)."""

    __slots__ = ("exact", "heads", "stems", "words")

    def __init__(self, registry: _Registry, listed_stems: int | None = None) -> None:
        entries = [(pid, _anchor(v), v) for pid, variants in registry.values() for v in variants]
        starred = {f.stem for _, k, v in entries if isinstance(f := v[k], _Stem)}
        if listed_stems is None:
            listed_stems = _LISTED_STEMS
        made: dict[str, frozenset[str]] = {}  # a stem's forms, made once

        def listed(forms: _Forms) -> _Forms:
            if isinstance(forms, _Stem):
                if forms.stem not in made:
                    made[forms.stem] = forms.forms()
                return made[forms.stem]
            return forms

        listing = len(starred) <= listed_stems
        # Entries by the forms of their anchor word, so that a listed stem's three hundred forms
        # go into the dictionary at C speed with one shared list (never appended to afterwards)
        # instead of one append per form: the built-in catalog compiles in a third of the time,
        # and every parser process compiles it.
        by_anchor: dict[frozenset[str], list[_Entry]] = {}
        stems: dict[str, tuple[_Stem, list[_Entry]]] = {}
        for pid, k, variant in entries:
            if listing:  # every word: the other words of a term are checked by a set probe too
                variant = tuple(map(listed, variant))
            entry = (pid, k, variant)
            forms = variant[k]
            if isinstance(forms, _Stem):
                stems.setdefault(forms.stem, (forms, []))[1].append(entry)
            else:
                by_anchor.setdefault(forms, []).append(entry)
        exact: dict[str, list[_Entry]] = {}
        for forms, group in by_anchor.items():
            merged = {form: exact[form] + group for form in exact.keys() & forms}
            exact.update(dict.fromkeys(forms, group))
            exact.update(merged)
        self.exact = exact
        self.words = frozenset(exact)
        self.stems = stems
        sizes: defaultdict[str, set[int]] = defaultdict(set)
        for stem in stems:
            sizes[stem[:_MIN_STEM]].add(len(stem))
        # First letters -> the lengths of the stems that begin with them, shortest first.
        self.heads = {head: tuple(sorted(lengths)) for head, lengths in sizes.items()}

    def find(self, tokens: list[str]) -> list[tuple[int, int, int]]:
        """Every occurrence of every indexed term, as (start, -end, pattern id), sorted so that
        the leftmost come first and, at one start, the longest."""
        # Each anchor word's position and the terms it anchors. The anchor words the text holds
        # are found at C speed; most texts hold none, or a few, whose positions list.count and
        # list.index find in C too, at a fraction of a Python step per token.
        common = self.words.intersection(tokens)
        hits: list[tuple[int, list[_Entry]]] = []
        if len(common) <= _SCAN_AT_MOST:
            exact = self.exact
            for tok in common:
                entries = exact[tok]
                i = -1
                for _ in range(tokens.count(tok)):
                    i = tokens.index(tok, i + 1)
                    hits.append((i, entries))
        else:  # many (a list, a hostile text): one pass, linear whatever the text
            exact = self.exact
            hits = [(i, exact[tok]) for i, tok in enumerate(tokens) if tok in common]
        if self.heads:
            hits += self._stem_hits(tokens)
        n = len(tokens)
        found: list[tuple[int, int, int]] = []
        for i, entries in hits:
            for pid, k, variant in entries:
                start = i - k
                end = start + len(variant)
                if start < 0 or end > n:
                    continue
                j = start
                for forms in variant:
                    if j != i and tokens[j] not in forms:
                        break
                    j += 1
                else:
                    found.append((start, -end, pid))
        found.sort()
        return found

    def _stem_hits(self, tokens: list[str]) -> list[tuple[int, list[_Entry]]]:
        """The positions of the tokens that are a stem and one of its endings, each with the
        terms that stem anchors."""
        heads = list(map(_HEAD, tokens))
        if self.heads.keys().isdisjoint(heads):
            return []
        hits: list[tuple[int, list[_Entry]]] = []
        stems = self.stems
        for i in [i for i, head in enumerate(heads) if head in self.heads]:
            tok = tokens[i]
            for size in self.heads[heads[i]]:
                if size > len(tok):
                    break
                got = stems.get(tok[:size])
                if got is not None and tok[size:] in got[0].endings:
                    hits.append((i, got[1]))
        return hits


def _text_tokens(text: str) -> tuple[list[str], int]:
    """The tokens of title, line break, summary; and how many of them are the title's."""
    title, _, summary = text.partition("\n")
    tokens = _tokens(title)
    title_len = len(tokens)
    if summary:
        tokens.append(_SEPARATOR)
        tokens += _tokens(summary)
    return tokens, title_len


def tokenize(text: str) -> list[str]:
    """The tokens the matcher reads in `text` (title, newline, summary): normalised words and
    punctuation marks, with a line break between title and summary."""
    return _text_tokens(text)[0]


class _CompiledCommitment:
    """One commitment's rules as sets of pattern ids, and its context terms in a second registry."""

    __slots__ = (
        "display",
        "gates",
        "milestones",
        "not_places",
        "order",
        "pids",
        "places",
        "rules",
        "slug",
    )

    def __init__(
        self,
        commitment: CommitmentRules,
        registry: _Registry | None = None,
        context: _Registry | None = None,
    ):
        self.slug = commitment.slug
        registry = {} if registry is None else registry
        context = {} if context is None else context
        where = f"commitment {commitment.slug!r}"
        self.display: dict[int, str] = {}
        self.order: dict[int, int] = {}  # catalog order, to pick one name for a stretch of text

        def pid_of(term: str) -> int:
            pid = _pid(registry, term, where)
            self.display.setdefault(pid, term)
            self.order.setdefault(pid, len(self.order))
            return pid

        common_veto = {pid_of(t) for t in commitment.veto}
        # (name, groups, veto, every term the rule looks at, strength)
        self.rules: list[
            tuple[str, tuple[frozenset[int], ...], frozenset[int], frozenset[int], float]
        ] = []
        for rule in commitment.rules:
            if not rule.groups or any(not g for g in rule.groups):
                raise ValueError(
                    f"commitment {commitment.slug!r} rule {rule.name!r}: every rule needs"
                    " at least one group and every group at least one term"
                )
            if not 0 < rule.strength <= 1:
                raise ValueError(
                    f"commitment {commitment.slug!r} rule {rule.name!r}: strength must be"
                    f" more than 0 and at most 1, got {rule.strength!r}"
                )
            groups = tuple(frozenset(pid_of(t) for t in g) for g in rule.groups)
            veto = frozenset({pid_of(t) for t in rule.veto} | common_veto)
            mask = frozenset(pid_of(t) for t in rule.mask)
            in_groups = frozenset().union(*groups)
            for label, other in (("a veto", veto), ("a mask", mask)):
                clash = in_groups & other
                if clash:
                    raise ValueError(
                        f"commitment {commitment.slug!r} rule {rule.name!r}: "
                        f"{self.display[min(clash)]!r} is both a group term and {label} term"
                    )
            self.rules.append(
                (rule.name, groups, veto, in_groups | veto | mask, float(rule.strength))
            )
        if not self.rules:
            raise ValueError(f"commitment {commitment.slug!r} has no rules")
        self.pids = frozenset().union(*(r[3] for r in self.rules))
        self.gates = _gates([r[1] for r in self.rules])

        # Context: places and milestone words, looked for only once the item is a candidate.
        def ctx(term: str) -> int:
            pid = _pid(context, term, where)
            self.display.setdefault(-1 - pid, term)  # negative keys: context pattern ids
            return pid

        self.places = frozenset(ctx(t) for t in commitment.places)
        self.not_places = frozenset(ctx(t) for t in commitment.not_places)
        both = self.places & self.not_places
        if both:
            raise ValueError(
                f"{where}: {self.display[-1 - min(both)]!r} is both a place and a competing place"
            )
        # Per milestone: (pattern ids, how many of them one sentence needs).
        self.milestones: list[tuple[frozenset[int], int]] = []
        count = max(len(commitment.milestone_terms), len(commitment.milestones))
        for n in range(count):
            terms = commitment.milestone_terms[n] if n < len(commitment.milestone_terms) else ()
            if terms:
                self.milestones.append((frozenset(ctx(t) for t in terms), 1))
                continue
            words = _title_words(commitment.milestones[n]) if n < len(commitment.milestones) else []
            # Latin and Cyrillic title words take their endings ("flight" → "flights").
            pids = frozenset(ctx(w + "*" if _script(w) != "arabic" else w) for w in words)
            self.milestones.append((pids, min(2, len(pids))))


def _gates(rules: list[tuple[frozenset[int], ...]]) -> tuple[frozenset[int], ...]:
    """Gate n: the n-th group of every rule (its last, if it has fewer). A rule holds only if
    the text has a term of each of its groups, so a commitment can hold only if the text has a
    term of every gate: a few set tests at C speed turn away most texts that name one of its
    words without any rule's whole combination."""
    depth = max(len(groups) for groups in rules)
    return tuple(
        frozenset().union(*(groups[min(n, len(groups) - 1)] for groups in rules))
        for n in range(depth)
    )


def _title_words(title: str) -> list[str]:
    """The words of a milestone title that can stand for it (without catalog milestone terms)."""
    words = [t for t in _tokens(title) if t.isalpha() and len(t) >= 4]
    return list(dict.fromkeys(w for w in words if w not in _TITLE_STOPWORDS))


def _leftmost_longest(
    occurrences: list[tuple[int, int, int]], wanted: frozenset[int]
) -> dict[int, list[_Span]]:
    """Pick the non-overlapping occurrences a rule sees, leftmost first, then longest.

    `occurrences` are (start, -end, pattern id), sorted. Returns each located pattern id with
    the (start, end) spans it matched, in text order.
    """
    located: dict[int, list[_Span]] = {}
    last = (-1, -1)
    for start, neg_stop, pid in occurrences:
        if pid not in wanted:
            continue
        span = (start, -neg_stop)
        # Terms matching exactly the same words (e.g. "Iran" and "İran*") all count.
        if start < last[1] and span != last:
            continue
        last = span
        located.setdefault(pid, []).append(span)
    return located


class _Found(msgspec.Struct):
    """What the rules found for one commitment in one text (before scoring)."""

    commitment: _CompiledCommitment
    rule: str
    strength: float
    sentence: bool
    rules: float  # the strengths of the other rules that match too, summed
    terms: tuple[str, ...]
    in_title: int
    stretches: int
    covered: frozenset[int]  # positions of the words the best rule stands on
    features: dict[str, float] = msgspec.field(default_factory=dict)
    reasons: list[str] = msgspec.field(default_factory=list)


class Matcher:
    """Compiled match rules and scorer for a set of commitments; `match` is thread-safe.

    `model` is a learned model as `tracker.learn` stores it (None: the scorer alone);
    `thresholds` and `weights` override THRESHOLDS and WEIGHTS (for benchmarks and tests).
    """

    def __init__(
        self,
        commitments: Iterable[CommitmentRules],
        model: Mapping[str, Any] | None = None,
        *,
        thresholds: Mapping[str, float] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        # Compiling allocates some hundred thousand small objects that all live as long as the
        # matcher; the cyclic garbage collector would walk them again and again meanwhile
        # (three times the compile time), and none of them can form a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._compile(commitments, model, thresholds, weights)
        finally:
            if collecting:
                gc.enable()

    def _compile(
        self,
        commitments: Iterable[CommitmentRules],
        model: Mapping[str, Any] | None,
        thresholds: Mapping[str, float] | None,
        weights: Mapping[str, float] | None,
    ) -> None:
        registry: _Registry = {}
        context: _Registry = {}
        self._commitments: list[_CompiledCommitment] = []
        seen: set[str] = set()
        for c in commitments:
            if c.slug in seen:
                raise ValueError(f"commitment {c.slug!r} is given twice")
            seen.add(c.slug)
            self._commitments.append(_CompiledCommitment(c, registry, context))
        self._index = _Index(registry)
        # Pattern id -> the commitments (by position) whose rules use it.
        users: defaultdict[int, list[int]] = defaultdict(list)
        for i, compiled in enumerate(self._commitments):
            for pid in compiled.pids:
                users[pid].append(i)
        big = len(self._commitments) > _WALK_AT_MOST
        self._users: dict[int, list[int]] | None = dict(users) if big else None

        where = "built-in word lists"
        self._setback = frozenset(_pid(context, t, where) for t in _SETBACK)
        self._resume = frozenset(_pid(context, t, where) for t in _RESUME)
        self._plan = frozenset(_pid(context, t, where) for t in _PLAN)
        self._part = frozenset(_pid(context, t, where) for t in _PART)
        self._context_index = _Index(context)

        self._weights = dict(WEIGHTS if weights is None else weights)
        self._thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
        if model is not None and not ({"ratios", "stack"} <= set(model)):
            raise ValueError("model: expected the weights tracker.learn stores (ratios, stack)")
        self._model = model

    @property
    def model(self) -> Mapping[str, Any] | None:
        return self._model

    def match(
        self,
        text: str,
        language: str | None = None,
        *,
        query_slug: str | None = None,
        side: str | None = None,
    ) -> list[Match]:
        """Return the commitments `text` (title, newline, summary) is evidence for, best first.

        `query_slug` names the commitment whose search query found the item, `side` the
        source's side (IR, AZ, other); both only inform the score."""
        return [
            c.match
            for c in self.candidates(text, language, query_slug=query_slug, side=side)
            if c.accepted
        ]

    def candidates(
        self,
        text: str,
        language: str | None = None,
        *,
        query_slug: str | None = None,
        side: str | None = None,
    ) -> list[Candidate]:
        """Every candidate the rules propose for `text`, scored, accepted or not, best first."""
        tokens, title_len = _text_tokens(text)
        found = self._index.find(tokens)
        if not found:
            return []
        present = {occ[2] for occ in found}
        sentences: list[list[int]] = []  # the sentence of each token, computed once if needed
        raw: list[_Found] = []
        commitments = self._commitments
        if self._users is not None:
            # Of a large catalog, only the commitments that use a term the text has (in
            # catalog order): a thousand are not walked for every item.
            users = self._users
            using = sorted({i for pid in present for i in users.get(pid, ())})
            commitments = [commitments[i] for i in using]
        for c in commitments:
            for gate in c.gates:
                if gate.isdisjoint(present):
                    break
            else:
                hit = _commitment_hit(c, found, present, tokens, title_len, sentences)
                if hit is not None:
                    raw.append(hit)
        if not raw:
            return []
        return self._score(raw, tokens, sentences[0], text, language, query_slug, side)

    def _score(
        self,
        raw: list[_Found],
        tokens: list[str],
        sentence_of: list[int],
        text: str,
        language: str | None,
        query_slug: str | None,
        side: str | None,
    ) -> list[Candidate]:
        lang = language if language in self._thresholds else detect_language(text)
        threshold = self._thresholds.get(lang, _DEFAULT_THRESHOLD)
        ctx = self._context(tokens, sentence_of)
        weights = self._weights
        features: list[str] | None = None  # the learned model's, computed once per text
        scored: list[tuple[_Found, dict[str, float], float, float, int | None, list[str]]] = []
        for f in raw:
            feats, milestone, reasons = _features(f, ctx, raw, query_slug)
            base = weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in feats.items())
            logit = base
            if self._model is not None:
                if features is None:
                    features = model_features(tokens, side)
                extra = candidate_features(f.rule, feats)
                logit = model_logit(self._model, f.commitment.slug, features + extra, base)
                reasons.append(f"learned from reviews: {logit - base:+.1f}")
            scored.append((f, feats, base, logit, milestone, reasons))

        # The stance is the news's: a step of any commitment the item is accepted for is
        # progress for all of them ("the bridge is finished" is progress for the route too).
        accepted_steps = any(
            milestone is not None and _sigmoid(logit) >= threshold
            for _, _, _, logit, milestone, _ in scored
        )
        setback = _is_setback(ctx.found, self._setback, self._resume, sentence_of)
        out: list[Candidate] = []
        for f, feats, base, logit, milestone, reasons in scored:
            score = round(_sigmoid(logit), 3)
            accepted = score >= threshold
            reasons.append(f"score {score:.2f} {'≥' if accepted else '<'} {threshold:g} ({lang})")
            progress = milestone is not None or (accepted and accepted_steps)
            match = Match(
                slug=f.commitment.slug,
                terms=f.terms,
                score=score,
                rule=f.rule,
                milestone=milestone,
                stance="setback" if setback else "progress" if progress else "neutral",
                reasons=tuple(reasons),
            )
            out.append(Candidate(match, feats, base, logit, threshold, accepted, lang))
        out.sort(key=lambda cand: (-cand.match.score, cand.match.slug))
        return out

    def _context(self, tokens: list[str], sentence_of: list[int]) -> _Context:
        """The places, milestone, plan and stance words of a text that has candidates."""
        found = self._context_index.find(tokens)
        # Where each context term occurs: a place counts as context only where it is not one of
        # the words the rule itself stood on ("Tabriz" found by the rule is not extra support).
        starts: dict[int, list[int]] = {}
        for start, _, pid in found:
            starts.setdefault(pid, []).append(start)
        plans, forms = _plan_positions(found, self._plan, tokens)
        parts = [start for start, _, pid in found if pid in self._part]  # sorted, as `found` is
        return _Context(tokens, sentence_of, found, starts, plans, forms, parts)


class _Context(msgspec.Struct, frozen=True):
    tokens: list[str]
    sentence_of: list[int]
    found: list[tuple[int, int, int]]  # occurrences of context terms, sorted
    starts: dict[int, list[int]]  # where each context term occurs
    plans: list[int]  # positions of plan words
    forms: list[int]  # positions of future forms and shares of the work
    parts: list[int]  # positions of "side" and "part" words


def _commitment_hit(
    c: _CompiledCommitment,
    found: list[tuple[int, int, int]],
    present: set[int],
    tokens: list[str],
    title_len: int,
    sentences: list[list[int]],
) -> _Found | None:
    """What the commitment's rules find in the text: the strongest matching rule, the terms."""
    occs = [occ for occ in found if occ[2] in c.pids]
    # Stretch of text (start, end) -> the catalog-first term that supplied it.
    support: dict[_Span, int] = {}
    # (strength, one sentence, groups, stretches, -catalog order)
    best: tuple[float, bool, int, int, int] | None = None
    best_name = ""
    covered: frozenset[int] = frozenset()
    strengths: list[float] = []
    for order, (name, groups, veto, looked_for, strength) in enumerate(c.rules):
        hit = _rule_hit(groups, veto, looked_for, occs, present)
        if hit is None:
            continue
        spans_of, used, group_hits = hit
        strengths.append(strength)
        for pid in used:
            span = spans_of[pid][0]
            held = support.get(span)
            if held is None or c.order[pid] < c.order[held]:
                support[span] = pid
        if not sentences:
            sentences.append(_sentences(tokens))
        sentence_of = sentences[0]
        together: frozenset[int] | None = None  # sentences holding a term of every group
        for g_hit in group_hits:
            here = frozenset(sentence_of[s] for p in g_hit for s, _ in spans_of[p])
            together = here if together is None else together & here
        rank = (strength, bool(together), len(groups), len({spans_of[p][0] for p in used}), -order)
        if best is None or rank > best:
            best, best_name = rank, name
            covered = frozenset(i for p in used for s, e in spans_of[p] for i in range(s, e))
    if best is None:
        return None
    # Rules are read separately, so one may have taken "border crossing" where another took
    # "crossing"; the inner stretch adds nothing.
    spans = [
        sp
        for sp in sorted(support)
        if not any(o != sp and o[0] <= sp[0] and sp[1] <= o[1] for o in support)
    ]
    return _Found(
        commitment=c,
        rule=best_name,
        strength=best[0],
        sentence=best[1],
        rules=sum(strengths) - best[0],
        terms=tuple(dict.fromkeys(c.display[support[span]] for span in spans)),
        in_title=sum(1 for start, _ in spans if start < title_len),
        stretches=len(spans),
        covered=covered,
    )


def _rule_hit(
    groups: tuple[frozenset[int], ...],
    veto: frozenset[int],
    looked_for: frozenset[int],
    occs: list[tuple[int, int, int]],
    present: set[int],
) -> tuple[dict[int, list[_Span]], set[int], list[frozenset[int]]] | None:
    """The spans one rule sees, the terms it used and each group's terms; None if it fails."""
    # Most rules lack a whole group; skip them before resolving overlaps. (A plain loop: a
    # generator per rule costs more than the test itself.)
    for g in groups:
        if g.isdisjoint(present):
            return None
    spans_of = _leftmost_longest(occs, looked_for)
    if not veto.isdisjoint(spans_of):
        return None
    used: set[int] = set()
    group_hits: list[frozenset[int]] = []
    for g in groups:
        g_hit = g.intersection(spans_of)
        if not g_hit:
            return None
        used |= g_hit
        group_hits.append(g_hit)
    return spans_of, used, group_hits


def _features(
    f: _Found, ctx: _Context, raw: list[_Found], query_slug: str | None
) -> tuple[dict[str, float], int | None, list[str]]:
    """The scorer's features of one candidate, its suggested milestone, and the reasons."""
    c = f.commitment
    in_context = ctx.starts.keys()
    places = sorted(
        p for p in c.places & in_context if any(s not in f.covered for s in ctx.starts[p])
    )
    rivals = sorted(c.not_places & in_context)
    milestone, worded = _suggest_milestone(c, ctx)
    if len(raw) >= 4:
        # A list of agreements (a governor's names four or more) names each promise; it does
        # not report a step of any.
        milestone = None
    listed = len(raw) >= 3
    # A weak candidate beside another commitment's strong one is usually a side remark in a
    # story about the other ("flights … will boost tourism"); a list is not.
    shadowed = f.strength < 1 and not listed and any(o.strength >= 1 for o in raw)
    feats = {
        "strength": f.strength,
        "title": 1.0 if f.in_title else 0.0,
        "sentence": 1.0 if f.sentence else 0.0,
        "rules": min(f.rules, 1.0),
        "places": float(min(len(places), 2)),
        "not_places": float(min(len(rivals), 2)),
        "milestone": 1.0 if worded else 0.0,
        "overshadowed": 1.0 if shadowed else 0.0,
        "list": 1.0 if listed else 0.0,
        "query": 1.0 if query_slug == c.slug else 0.0,
    }
    reasons = [f"rule {f.rule!r}" + ("" if f.strength >= 1 else f" (weak, {f.strength:g})")]
    for on, reason in (
        (f.in_title, "in the headline"),
        (f.sentence, "in one sentence"),
        (places, "place: " + ", ".join(c.display[-1 - p] for p in places)),
        (rivals, "competing place: " + ", ".join(c.display[-1 - p] for p in rivals)),
        (worded, "milestone wording"),
        (shadowed, "weak beside a stronger commitment"),
        (listed, f"a list naming {len(raw)} commitments"),
        (feats["query"], "found by this commitment's search query"),
    ):
        if on:
            reasons.append(reason)
    return feats, milestone, reasons


def _sentences(tokens: list[str]) -> list[int]:
    """The sentence number of every token."""
    out: list[int] = []
    n = 0
    for tok in tokens:
        if tok in _BREAKS:
            n += 1
        out.append(n)
    return out


def _plan_positions(
    context: list[tuple[int, int, int]], plan: frozenset[int], tokens: list[str]
) -> tuple[list[int], list[int]]:
    """Where the text speaks of a plan: plan words; and words that make a plan of themselves
    or their neighbours, Azerbaijani future forms and shares of the work ("70 %")."""
    words = [start for start, _, pid in context if pid in plan]  # sorted, as `context` is
    forms = [i for i, tok in enumerate(tokens) if tok.endswith(_AZ_FUTURE) or tok in _PARTIAL]
    return words, forms


def _near(positions: list[int], low: int, high: int) -> list[int]:
    """The sorted `positions` from `low` up to, not including, `high`."""
    return positions[bisect_left(positions, low) : bisect_left(positions, high)]


def _suggest_milestone(c: _CompiledCommitment, ctx: _Context) -> tuple[int | None, bool]:
    """The highest milestone the text says was reached; failing that, the step before the
    lowest one it says is planned ("to be completed by the end of the year": under way). And
    whether any milestone's wording is there at all."""
    if not c.milestones:
        return None, False
    tokens, sentence_of, plans, forms, parts = (
        ctx.tokens,
        ctx.sentence_of,
        ctx.plans,
        ctx.forms,
        ctx.parts,
    )
    reached: list[int] = []
    planned: list[int] = []
    any_hit = False
    for n, (pids, need) in enumerate(c.milestones, start=1):
        if not pids:
            continue
        # sentence -> (distinct terms seen, any of them outside a plan)
        seen: dict[int, tuple[set[int], bool]] = {}
        for start, neg_end, pid in ctx.found:
            if pid not in pids:
                continue
            end = -neg_end
            sent = sentence_of[start]
            # A term with a plan word inside it ("will be launched") was written for a plan on
            # purpose: it is the milestone as it stands. A future form inside it
            # ("tamamlanacaq") is a plan; "%" inside it ("70 %") qualifies nothing.
            # (Positions are sorted: only the few inside the window are looked at, so a hostile
            # text repeating "will" and "completed" stays linear.)
            near = _near(plans, start - _PLAN_BEFORE, end + _PLAN_AFTER)
            own = any(start <= p < end for p in near)
            as_plan = not own and any(sentence_of[p] == sent for p in near)
            as_plan = as_plan or any(
                sentence_of[p] == sent and (tokens[p] != "%" or not start <= p < end)
                for p in _near(forms, start - _PLAN_BEFORE, end + _PLAN_AFTER)
            )
            # "The Iranian part of the bridge is completed": a part is work under way.
            as_plan = as_plan or any(
                sentence_of[p] == sent
                for p in _near(parts, start - _PLAN_BEFORE, start + _PLAN_BEFORE + 1)
            )
            terms, fact = seen.get(sent, (set(), False))
            terms.add(pid)
            seen[sent] = (terms, fact or not as_plan)
        hits = [fact for terms, fact in seen.values() if len(terms) >= need]
        any_hit = any_hit or bool(hits)
        if any(hits):
            reached.append(n)
        elif hits and n > 1:
            planned.append(n - 1)
    worded = bool(reached or planned or any_hit)
    if reached:
        return max(reached), worded
    return (min(planned) if planned else None), worded


def _is_setback(
    context: list[tuple[int, int, int]],
    setback: frozenset[int],
    resume: frozenset[int],
    sentence_of: list[int],
) -> bool:
    """Whether a sentence speaks of a suspension, cancellation or halt (and not of its end)."""
    resumed = {sentence_of[start] for start, _, pid in context if pid in resume}
    return any(pid in setback and sentence_of[start] not in resumed for start, _, pid in context)
