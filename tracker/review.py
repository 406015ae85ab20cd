"""Reviewing at the speed of news: story clusters, and the keystroke loop as a state machine.

- `group_stories` turns the pending evidence into story clusters: per commitment, rows whose
  normalised titles are the same within `TITLE_WINDOW`, near-identical within `NEAR_WINDOW`, or
  that the recorded also-reported-by links tie together. A cluster is reviewed once; the decision
  applies to all its rows.
- `ReviewLoop` is what `tracker review` does on a terminal, without the terminal: keys in (one
  character each, see `split_keys`), decisions out through a `Desk` (the register), and a `Screen`
  to draw. Every decision is written when its key is pressed; `u` undoes the last one.

Nothing here reads or writes the terminal or speaks SQL.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Protocol

from tracker.errors import TrackerError
from tracker.store.clusters import Decided, Done
from tracker.store.records import Change, EvidenceRecord, MentionRecord
from tracker.vocab import Review, Stance

__all__ = [
    "KEYS",
    "Cluster",
    "Desk",
    "ReviewLoop",
    "Screen",
    "group_stories",
    "split_keys",
]

TITLE_WINDOW = timedelta(days=7)  # the same normalised title, this close in time: one story
NEAR_WINDOW = timedelta(days=3)  # near-identical titles (a word changed), this close: one story
NEAR_SIMILARITY = 0.8  # share of character trigrams two titles have in common
NEAR_MIN_LENGTH = 16  # shorter titles ("Flights resume") only cluster when they are the same
NEAR_NEIGHBOURS = 200  # a burst of items is compared with this many neighbours, not all

# The keys of the loop, in the footer's order (the README's table says the same).
KEYS: tuple[tuple[str, str], ...] = (
    ("c", "confirm"),
    ("r", "reject"),
    ("R", "reject, why"),
    ("m", "milestone"),
    ("p/n/x", "progress/neutral/setback"),
    ("s", "skip"),
    ("u", "undo"),
    ("o", "open"),
    ("q", "quit"),
)
ESC, ENTER, BACKSPACE = "\x1b", ("\r", "\n"), ("\x7f", "\x08")
QUIT_KEYS = ("q", "\x03", "\x04")  # q, Ctrl-C, Ctrl-D
STANCE_KEYS = {"p": Stance.PROGRESS, "n": Stance.NEUTRAL, "x": Stance.SETBACK}
REASON_LIMIT = 300


# ---------------------------------------------------------------- story clusters


@dataclass(frozen=True)
class Cluster:
    """One story waiting for review: its newest row (`lead`), the other rows of the same story
    (`members`, newest first) and the other outlets that carried it (`mentions`)."""

    lead: EvidenceRecord
    members: tuple[EvidenceRecord, ...] = ()
    mentions: tuple[MentionRecord, ...] = ()

    @property
    def rows(self) -> tuple[EvidenceRecord, ...]:
        return (self.lead, *self.members)

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.rows]

    def keeping(self, ids: Iterable[int]) -> Cluster | None:
        """The cluster with only the rows in `ids` (None when none is left)."""
        wanted = set(ids)
        rows = [e for e in self.rows if e.id in wanted]
        if not rows:
            return None
        kept = {e.id for e in rows}
        return Cluster(
            rows[0], tuple(rows[1:]), tuple(m for m in self.mentions if m.evidence_id in kept)
        )


_NUMBER = re.compile(r"\d+")
_EPOCH = datetime(1970, 1, 1)
_NEAR_SECONDS = NEAR_WINDOW.total_seconds()


@dataclass(frozen=True)
class _Title:
    """What comparing two titles needs, worked out once per row."""

    id: int
    at: float  # publication, in seconds
    outlet: str
    numbers: tuple[str, ...]
    grams: frozenset[str]


def _title(e: EvidenceRecord) -> _Title:
    key = e.title_key
    return _Title(
        id=e.id,
        at=(e.published_at - _EPOCH).total_seconds(),
        outlet=(e.publisher or e.source).casefold(),
        numbers=tuple(_NUMBER.findall(key)),
        grams=frozenset(key[i : i + 3] for i in range(max(len(key) - 2, 0))),
    )


def _near(a: _Title, b: _Title) -> bool:
    """Near-identical titles of one story: from two different outlets within three days, titles
    that differ by a word or two but name the same numbers (one outlet's near-identical titles
    are its daily updates, and "3 flights" is not "4 flights")."""
    if abs(a.at - b.at) > _NEAR_SECONDS or a.outlet == b.outlet:
        return False
    if a.numbers != b.numbers:
        return False
    return len(a.grams & b.grams) >= NEAR_SIMILARITY * len(a.grams | b.grams)


def _sketch(grams: frozenset[str]) -> list[int]:
    """The two smallest hashes of a title's trigrams: titles that share most trigrams almost
    always share one of them, so only rows in a common bucket are compared (min-hash)."""
    return sorted(zlib.crc32(g.encode()) for g in grams)[:2]


def _same_titles(rows: Sequence[EvidenceRecord], union: _Union) -> None:
    """Join the rows of one commitment with the same normalised title within a week."""
    by_key: dict[str, list[EvidenceRecord]] = {}
    for e in rows:
        if e.title_key:
            by_key.setdefault(e.title_key, []).append(e)
    for same in by_key.values():
        same.sort(key=lambda e: e.published_at)
        for a, b in pairwise(same):
            if b.published_at - a.published_at <= TITLE_WINDOW:
                union.join(a.id, b.id)


def _near_titles(rows: Sequence[EvidenceRecord], union: _Union) -> None:
    """Join the rows of one commitment whose titles are near-identical (see `_near`)."""
    buckets: dict[int, list[_Title]] = {}
    for e in rows:
        if len(e.title_key) >= NEAR_MIN_LENGTH:
            title = _title(e)
            for h in _sketch(title.grams):
                buckets.setdefault(h, []).append(title)
    for bucket in buckets.values():
        bucket.sort(key=lambda x: x.at)
        for i, a in enumerate(bucket):
            for b in bucket[i + 1 : i + 1 + NEAR_NEIGHBOURS]:
                if b.at - a.at > _NEAR_SECONDS:
                    break
                if union.find(a.id) != union.find(b.id) and _near(a, b):
                    union.join(a.id, b.id)


class _Union:
    def __init__(self, ids: Iterable[int]) -> None:
        self.parent = {i: i for i in ids}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def group_stories(
    pending: Sequence[EvidenceRecord],
    links: Iterable[tuple[int, int]] = (),
    mentions: Mapping[int, Sequence[MentionRecord]] | None = None,
) -> list[Cluster]:
    """Pending evidence as story clusters, newest story first. Rows of different commitments are
    never one cluster (the same link can be evidence for two commitments, decided apart)."""
    by_id = {e.id: e for e in pending}
    union = _Union(by_id)
    per_commitment: dict[int, list[EvidenceRecord]] = {}
    for e in pending:
        per_commitment.setdefault(e.commitment_id, []).append(e)
    for rows in per_commitment.values():
        _same_titles(rows, union)
        _near_titles(rows, union)
    for x, y in links:
        if x in by_id and y in by_id and by_id[x].commitment_id == by_id[y].commitment_id:
            union.join(x, y)
    groups: dict[int, list[EvidenceRecord]] = {}
    for e in pending:
        groups.setdefault(union.find(e.id), []).append(e)
    said = mentions or {}
    clusters = []
    for rows in groups.values():
        rows.sort(key=lambda e: (e.published_at, e.id), reverse=True)
        own = {e.canonical_url for e in rows}
        seen: set[str] = set()
        outlets = []
        for e in rows:
            for m in said.get(e.id, ()):
                if m.url not in own and m.url not in seen:
                    seen.add(m.url)
                    outlets.append(m)
        clusters.append(Cluster(rows[0], tuple(rows[1:]), tuple(outlets)))
    clusters.sort(key=lambda c: (c.lead.published_at, c.lead.id), reverse=True)
    return clusters


# ---------------------------------------------------------------- keys


def split_keys(text: str) -> list[str]:
    """What a terminal sent, one key each: a character, or a whole escape sequence (an arrow
    key is one key, not Esc followed by letters). A lone Esc is Esc."""
    keys: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ESC and i + 1 < len(text) and text[i + 1] in "[O":
            j = i + 2
            while j < len(text) and not ("@" <= text[j] <= "~"):
                j += 1
            keys.append(text[i : j + 1])
            i = j + 1
            continue
        keys.append(ch)
        i += 1
    return keys


# ---------------------------------------------------------------- the loop


class Desk(Protocol):
    """Where decisions go (the register): each call is its own transaction."""

    def decide(
        self,
        evidence_ids: list[int],
        decision: str,
        *,
        milestone: int | None,
        stance: str | None,
        reason: str | None,
    ) -> Decided: ...

    def undo(self, done: Sequence[Done]) -> list[Change]: ...

    def states(self, evidence_ids: list[int]) -> dict[int, tuple[str, str | None, int]]: ...


@dataclass(frozen=True)
class Screen:
    """What to draw: the current story, what the person chose for it, and where the loop is."""

    cluster: Cluster | None
    position: int  # 1-based place of the current story in the queue
    total: int  # stories in the queue
    left: int  # stories not yet decided or skipped, the current one included
    mode: str  # item | reason | milestone
    buffer: str  # the reason or milestone number being typed
    stance: str | None  # chosen with p/n/x (None: the suggestion)
    milestones: tuple[str, ...]  # the current commitment's milestones
    expanded: bool  # o: the full text
    message: str
    tally: Mapping[str, int]


@dataclass
class _Step:
    """One entry of the undo stack: a decision (with what the database did) or a skip."""

    index: int
    kind: str  # confirmed | rejected | skipped
    decided: Decided | None = None


@dataclass
class ReviewLoop:
    """The keystroke review loop. Feed it keys with `press`; draw `screen()`; stop at `done`."""

    queue: list[Cluster]
    desk: Desk
    milestones: Mapping[int, Sequence[str]]  # commitment id → milestone titles
    index: int = 0
    mode: str = "item"
    buffer: str = ""
    stance: str | None = None
    expanded: bool = False
    message: str = ""
    quit: bool = False
    handled: dict[int, str] = field(default_factory=dict)  # queue index → what happened to it
    steps: list[_Step] = field(default_factory=list)
    tally: dict[str, int] = field(
        default_factory=lambda: {"confirmed": 0, "rejected": 0, "skipped": 0, "already": 0}
    )

    def __post_init__(self) -> None:
        self._arrive()

    # ------------------------------------------------------------ reading the state

    @property
    def done(self) -> bool:
        return self.quit or self.current is None

    @property
    def current(self) -> Cluster | None:
        return self.queue[self.index] if self.index < len(self.queue) else None

    @property
    def left(self) -> int:
        return sum(1 for i in range(len(self.queue)) if i not in self.handled)

    def screen(self) -> Screen:
        c = self.current
        return Screen(
            cluster=c,
            position=self.index + 1,
            total=len(self.queue),
            left=self.left,
            mode=self.mode,
            buffer=self.buffer,
            stance=self.stance,
            milestones=tuple(self.milestones.get(c.lead.commitment_id, ())) if c else (),
            expanded=self.expanded,
            message=self.message,
            tally=dict(self.tally),
        )

    # ------------------------------------------------------------ keys

    def press(self, key: str) -> None:
        """One key: what it does depends on the mode (an item, typing a reason, a milestone)."""
        if self.done:
            return
        if key in ("\x03", "\x04"):  # Ctrl-C and Ctrl-D leave from any mode
            self.quit = True
            return
        if self.mode == "reason":
            self._reason_key(key)
        elif self.mode == "milestone":
            self._milestone_key(key)
        else:
            self._item_key(key)

    def _item_key(self, key: str) -> None:
        self.message = ""
        if key == "c":
            self._confirm(None, chosen=False)
        elif key == "r":
            self._decide(Review.REJECTED, None, None, None)
        elif key == "R":
            self.mode, self.buffer = "reason", ""
        elif key == "m":
            if self.screen().milestones:
                self.mode, self.buffer = "milestone", ""
            else:
                self.message = "this commitment has no milestones"
        elif key in STANCE_KEYS:
            self.stance = STANCE_KEYS[key]
            self.message = f"stance {self.stance}: c confirms with it"
        elif key == "s":
            self.steps.append(_Step(self.index, "skipped"))
            self._leave("skipped")
        elif key == "u":
            self._undo()
        elif key == "o":
            self.expanded = not self.expanded
        elif key in QUIT_KEYS:
            self.quit = True
        elif key not in ENTER and key != ESC:
            shown = key if key.isprintable() else repr(key)
            self.message = f"unknown key {shown}; the keys are below"

    def _reason_key(self, key: str) -> None:
        if key == ESC:
            self.mode, self.buffer, self.message = "item", "", "not rejected"
        elif key in ENTER:
            reason = self.buffer.strip()
            if not reason:
                self.message = "type a reason, or Esc to go back"
                return
            self.mode, self.buffer = "item", ""
            self._decide(Review.REJECTED, None, None, reason)
        elif key in BACKSPACE:
            self.buffer = self.buffer[:-1]
        elif key == "\x15":  # Ctrl-U: clear the line
            self.buffer = ""
        elif len(key) == 1 and key.isprintable() and len(self.buffer) < REASON_LIMIT:
            self.buffer += key

    def _milestone_key(self, key: str) -> None:
        count = len(self.screen().milestones)
        if key == ESC:
            self.mode, self.buffer, self.message = "item", "", "no milestone chosen"
        elif key in BACKSPACE:
            self.buffer = self.buffer[:-1]
        elif key == "0" and not self.buffer:
            self.mode = "item"
            self._confirm(None, chosen=True)  # confirmed without a milestone
        elif key.isdigit() and len(key) == 1:
            number = int(self.buffer + key)
            if not 1 <= number <= count:
                self.message = f"choose 1 to {count} (0: none)"
                return
            self.buffer += key
            if number * 10 > count:  # no further digit could name a milestone: done
                self._pick_milestone()
        elif key in ENTER and self.buffer:
            self._pick_milestone()

    def _pick_milestone(self) -> None:
        number = int(self.buffer)
        self.mode, self.buffer = "item", ""
        self._confirm(number, chosen=True)

    # ------------------------------------------------------------ decisions

    def _confirm(self, milestone: int | None, *, chosen: bool) -> None:
        """c: the suggestion (or the stance chosen with p/n/x); m: the milestone chosen, with the
        chosen or suggested stance, else progress."""
        c = self.current
        assert c is not None
        if not chosen:
            milestone = c.lead.suggested_milestone
        stance = self.stance or c.lead.suggested_stance
        if chosen and milestone is not None and stance is None:
            stance = Stance.PROGRESS
        self._decide(Review.CONFIRMED, milestone, stance, None)

    def _decide(
        self, decision: str, milestone: int | None, stance: str | None, reason: str | None
    ) -> None:
        c = self.current
        assert c is not None
        try:
            result = self.desk.decide(
                c.ids, decision, milestone=milestone, stance=stance, reason=reason
            )
        except TrackerError as exc:
            self.message = f"not recorded: {exc}"
            return
        if not result.done:
            self.message = _already(result)
            self._leave("already")
            return
        self.steps.append(_Step(self.index, decision, result))
        self.message = _decided(c, result, milestone, stance)
        self._leave(decision)

    def _undo(self) -> None:
        if not self.steps:
            self.message = "nothing to undo"
            return
        step = self.steps.pop()
        lead = self.queue[step.index].lead.id
        if step.decided is not None:
            try:
                changes = self.desk.undo(step.decided.done)
            except TrackerError as exc:
                self.message = f"cannot undo: {exc}"
                return
            self.message = f"undone: #{lead} waits for review again" + _changes(changes)
        else:
            self.message = f"back to #{lead} (skipped)"
        self.tally[step.kind] -= 1
        self.handled.pop(step.index, None)
        self.index = step.index
        self._reset()

    # ------------------------------------------------------------ moving on

    def _reset(self) -> None:
        self.mode, self.buffer, self.stance, self.expanded = "item", "", None, False

    def _leave(self, what: str) -> None:
        """Mark the current story and go to the next one nobody has handled."""
        self.handled[self.index] = what
        self.tally[what] += 1
        self._reset()
        self._arrive()

    def _arrive(self) -> None:
        """Stand on the next unhandled story that still waits: a story another reviewer decided
        meanwhile says so and is passed over."""
        while self.index < len(self.queue) and self.index in self.handled:
            self.index += 1
        while (c := self.current) is not None:
            try:
                states = self.desk.states(c.ids)
            except TrackerError:
                return  # shown as it was loaded; a decision will tell
            still = [i for i in c.ids if states.get(i, (Review.PENDING,))[0] == Review.PENDING]
            if still:
                kept = c.keeping(still)
                assert kept is not None
                self.queue[self.index] = kept
                return
            state, by, _ = states.get(c.lead.id, ("reviewed", None, 0))
            note = f"#{c.lead.id} already {state}" + (f" by {by}" if by else "")
            self.message = (self.message + "; " if self.message else "") + note
            self.handled[self.index] = "already"
            self.tally["already"] += 1
            while self.index < len(self.queue) and self.index in self.handled:
                self.index += 1


def _changes(changes: Sequence[Change]) -> str:
    return "".join(f"; {ch.slug}: {ch.old or '—'} → {ch.new}" for ch in changes)


def _already(result: Decided) -> str:
    a = result.already[0]
    by = f" by {a.by}" if a.by else ""
    return f"#{a.evidence_id} already reviewed{by} ({a.review}); moving on"


def _decided(c: Cluster, result: Decided, milestone: int | None, stance: str | None) -> str:
    d = result.done[0].decision
    text = f"{d} #{c.lead.id}"
    if len(result.done) > 1:
        text += f" and {len(result.done) - 1} more of the same story"
    if d == Review.CONFIRMED:
        text += f" (milestone {milestone or '—'}, {stance or 'stance as stored'})"
    if result.already:
        text += f"; {len(result.already)} already reviewed by someone else"
    return text + _changes(result.changes)
