"""Decide which commitments a news item is evidence for.

Pure and fast: no database, no I/O, nothing from the rest of `tracker`. The catalog's match rules
are compiled once into a token index; matching one item is a normalisation pass, one tokenisation,
one dictionary probe per token and a few set operations.

How a commitment's rules are read (this is the contract the catalog is written against):

* A commitment matches when ANY of its rules matches. A rule matches when EVERY one of its groups
  has at least one term in the text and none of its veto terms (nor the commitment's) is there.
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
* `Match.score` counts the stretches of text that supplied a group term to a matching rule, each
  once, plus a half for each one in the headline (the text before the first newline).

The ``language`` argument of `Matcher.match` is accepted but does not restrict the terms: feeds
mislabel languages and texts mix scripts (Persian articles quote "AZAL"), and the terms of one
language rarely collide with words of another. Veto terms are therefore chosen so that they are
not ordinary words in the other languages (e.g. no bare "bend" for Azerbaijani "bənd", dam).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any

__all__ = [
    "CommitmentRules",
    "Match",
    "Matcher",
    "Rule",
    "normalize",
    "normalize_title_key",
    "rules_from_mapping",
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
_ASCII_FOLD = _FOLD_LIST[:128]
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
        return text.translate(_ASCII_FOLD).lower().split()
    # NFKC first so that decomposed input (е + U+0308, ا + U+0653) and Arabic presentation forms
    # reach the fold table as the single code points it knows.
    text = unicodedata.normalize("NFKC", text.casefold()).translate(_FOLD_LIST)
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


@dataclass(frozen=True)
class Rule:
    """Matches when every group has a term in the text and no veto term is there."""

    name: str
    groups: tuple[tuple[str, ...], ...]
    veto: tuple[str, ...]
    # Optional, so that the three-field form of the published API keeps working.
    mask: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommitmentRules:
    """A commitment's rules (any one may match) and the veto terms that apply to all of them."""

    slug: str
    rules: tuple[Rule, ...]
    veto: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """One commitment a text is evidence for, and why."""

    slug: str
    terms: tuple[str, ...]  # catalog spellings of the terms that made the match, in text order
    score: float
    rule: str  # name of the strongest rule that matched
    milestone: int | None = None  # the milestone the text suggests was reached (1-based)
    stance: str | None = None  # progress | setback | neutral, as the text suggests
    reasons: tuple[str, ...] = ()  # why the score is what it is, one short phrase each


_LANG_KEY = re.compile(r"^[a-z]{2,3}$")
_RULE_KEYS = frozenset({"name", "group", "veto", "mask"})


def _terms_by_language(where: str, value: Any) -> tuple[str, ...]:
    """Flatten a {language: [terms]} table, checking its shape."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a table of language = [terms], got {value!r}")
    terms: list[str] = []
    for lang, items in value.items():
        if not isinstance(lang, str) or not _LANG_KEY.match(lang):
            raise ValueError(f"{where}: {lang!r} is not a language code (like en, fa, az, ru)")
        if not isinstance(items, list):
            raise ValueError(f"{where}.{lang}: expected a list of strings, got {items!r}")
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"{where}.{lang}: every term must be a non-empty string")
            _compile_term(item, f"{where}.{lang}")  # fail at load time, not at match time
            terms.append(item)
    return tuple(terms)


def rules_from_mapping(slug: str, mapping: Mapping[str, Any]) -> CommitmentRules:
    """Build a commitment's rules from its catalog table (keys ``rule`` and ``veto``).

    Other keys of the table (title, milestones, queries …) are ignored. Raises ValueError naming
    the commitment, rule and group when the shape is wrong.
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
        rules.append(Rule(name=name, groups=tuple(groups), veto=veto, mask=mask))
    veto = _terms_by_language(f"{where} veto", mapping.get("veto", {}))
    result = CommitmentRules(slug=slug, rules=tuple(rules), veto=veto)
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
_RU_ENDINGS = frozenset(
    normalize(e)
    for e in (
        "", "а", "я", "у", "ю", "ом", "ем", "ой", "ей", "е", "и", "ы", "ов", "ев", "ам", "ям",
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


def _forms(word: str, star: bool) -> frozenset[str]:
    script = _script(word)
    if script == "arabic":
        endings = _FA_STAR if star else _FA_AUTO
    elif not star:
        return frozenset((word,))
    elif script == "cyrillic":
        endings = _RU_ENDINGS
    else:
        endings = _LATIN_ENDINGS
    return frozenset(word + e for e in endings)


# One spelling of a term: for each text token, the set of surface forms it may take.
_Variant = tuple[frozenset[str], ...]


def _compile_term(term: str, where: str = "term") -> tuple[str, tuple[_Variant, ...]]:
    """Return (pattern key, spellings) for a catalog term, or raise ValueError naming `where`."""
    try:
        return _expand_term(term)
    except ValueError as exc:
        raise ValueError(f"{where}: {term!r}: {exc}") from None


# Catalog loading validates every term and Matcher compiles it again; Latin stems expand to some
# three hundred forms each, so the expansion is worth keeping.
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
    if not any(_WORD.fullmatch(w) for w, _ in words):
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


# --- matcher -----------------------------------------------------------------------------------

_SEPARATOR = "\n"  # whitespace is never a token, so no phrase runs from title into summary
# Normalised term -> (pattern id, spellings); shared so a term used by several commitments is
# looked for once.
_Registry = dict[str, tuple[int, tuple[_Variant, ...]]]


class _CompiledCommitment:
    """One commitment's rules as sets of pattern ids."""

    __slots__ = ("display", "order", "pids", "rules", "slug")

    def __init__(self, commitment: CommitmentRules, registry: _Registry | None = None):
        self.slug = commitment.slug
        registry = {} if registry is None else registry
        self.display: dict[int, str] = {}
        self.order: dict[int, int] = {}  # catalog order, to pick one name for a stretch of text

        def pid_of(term: str) -> int:
            key, variants = _compile_term(term, f"commitment {commitment.slug!r}")
            if key not in registry:
                registry[key] = (len(registry), variants)
            pid = registry[key][0]
            self.display.setdefault(pid, term)
            self.order.setdefault(pid, len(self.order))
            return pid

        common_veto = {pid_of(t) for t in commitment.veto}
        # (name, groups, veto, every term the rule looks at)
        self.rules: list[
            tuple[str, tuple[frozenset[int], ...], frozenset[int], frozenset[int]]
        ] = []
        required: set[int] = set()
        for rule in commitment.rules:
            if not rule.groups or any(not g for g in rule.groups):
                raise ValueError(
                    f"commitment {commitment.slug!r} rule {rule.name!r}: every rule needs"
                    " at least one group and every group at least one term"
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
            required |= in_groups
            self.rules.append((rule.name, groups, veto, in_groups | veto | mask))
        if not self.rules:
            raise ValueError(f"commitment {commitment.slug!r} has no rules")
        self.pids = frozenset().union(*(r[3] for r in self.rules))


def _leftmost_longest(
    occurrences: list[tuple[int, int, int]], wanted: frozenset[int]
) -> dict[int, tuple[int, int]]:
    """Pick the non-overlapping occurrences a rule sees, leftmost first, then longest.

    `occurrences` are (start, -end, pattern id), sorted. Returns each located pattern id with
    the first (start, end) it matched.
    """
    located: dict[int, tuple[int, int]] = {}
    last = (-1, -1)
    for start, neg_stop, pid in occurrences:
        if pid not in wanted:
            continue
        span = (start, -neg_stop)
        # Terms matching exactly the same words (e.g. "Iran" and "İran*") all count.
        if start < last[1] and span != last:
            continue
        last = span
        located.setdefault(pid, span)
    return located


class Matcher:
    """Compiled match rules for a set of commitments; `match` is thread-safe."""

    def __init__(self, commitments: Iterable[CommitmentRules]) -> None:
        registry: _Registry = {}
        self._commitments: list[_CompiledCommitment] = []
        seen: set[str] = set()
        for c in commitments:
            if c.slug in seen:
                raise ValueError(f"commitment {c.slug!r} is given twice")
            seen.add(c.slug)
            self._commitments.append(_CompiledCommitment(c, registry))

        # First-token index: form -> [(pattern id, forms of the following tokens)].
        index: dict[str, list[tuple[int, _Variant]]] = {}
        for pid, variants in registry.values():
            for variant in variants:
                for form in variant[0]:
                    index.setdefault(form, []).append((pid, variant[1:]))
        self._index = {form: tuple(entries) for form, entries in index.items()}
        self._first_forms = frozenset(self._index)

    def match(self, text: str, language: str | None = None) -> list[Match]:
        """Return the commitments `text` (title, newline, summary) is evidence for, best first."""
        del language  # see the module docstring: matching is driven by script, not by label
        title, _, summary = text.partition("\n")
        tokens = _tokens(title)
        title_len = len(tokens)
        if summary:
            tokens.append(_SEPARATOR)
            tokens += _tokens(summary)
        first = self._first_forms
        if first.isdisjoint(tokens):
            return []

        # Every occurrence of every pattern, as (start, -end, pattern id) so that a plain sort
        # puts them leftmost first and, at one start, longest first.
        index = self._index
        n = len(tokens)
        found: list[tuple[int, int, int]] = []
        for i in [i for i, tok in enumerate(tokens) if tok in first]:
            for pid, rest in index[tokens[i]]:
                j = i + 1
                for forms in rest:
                    if j >= n or tokens[j] not in forms:
                        break
                    j += 1
                else:
                    found.append((i, -j, pid))
        if not found:
            return []
        found.sort()
        present = {occ[2] for occ in found}

        matches: list[Match] = []
        for c in self._commitments:
            if c.pids.isdisjoint(present):
                continue
            occs: list[tuple[int, int, int]] | None = None
            # Stretch of text (start, end) -> the catalog-first term that supplied it.
            support: dict[tuple[int, int], int] = {}
            best: tuple[int, int, int] | None = None  # (groups, stretches, -catalog order)
            best_name = ""
            for order, (name, groups, veto, looked_for) in enumerate(c.rules):
                # Most rules lack a whole group; skip them before resolving overlaps. (A plain
                # loop: a generator per rule costs more than the test itself.)
                lacking = False
                for g in groups:
                    if g.isdisjoint(present):
                        lacking = True
                        break
                if lacking:
                    continue
                if occs is None:
                    occs = [occ for occ in found if occ[2] in c.pids]
                span_of = _leftmost_longest(occs, looked_for)
                if not veto.isdisjoint(span_of):
                    continue
                used: set[int] = set()
                for g in groups:
                    g_hit = g.intersection(span_of)
                    if not g_hit:
                        break
                    used |= g_hit
                else:
                    for pid in used:
                        span = span_of[pid]
                        held = support.get(span)
                        if held is None or c.order[pid] < c.order[held]:
                            support[span] = pid
                    rank = (len(groups), len({span_of[p] for p in used}), -order)
                    if best is None or rank > best:
                        best, best_name = rank, name
            if best is None:
                continue
            # Rules are read separately, so one may have taken "border crossing" where another
            # took "crossing"; the inner stretch adds nothing.
            spans = [
                sp
                for sp in sorted(support)
                if not any(o != sp and o[0] <= sp[0] and sp[1] <= o[1] for o in support)
            ]
            terms = tuple(dict.fromkeys(c.display[support[span]] for span in spans))
            in_title = sum(1 for start, _ in spans if start < title_len)
            matches.append(
                Match(slug=c.slug, terms=terms, score=len(spans) + 0.5 * in_title, rule=best_name)
            )
        matches.sort(key=lambda m: (-m.score, m.slug))
        return matches
