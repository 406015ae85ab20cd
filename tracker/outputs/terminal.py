"""Terminal views (rich). Untrusted text always enters as `Text` through `escape.terminal`,
never as markup."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import IO, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from tracker.dates import days_ago, shown, with_jalali
from tracker.outputs.escape import terminal, without_userinfo
from tracker.store.records import Card, EvidenceRecord, HistoryRecord, MentionRecord, Row
from tracker.vocab import SYMBOLS

STATUS_STYLE = {
    "announced": "cyan",
    "in_progress": "yellow",
    "stalled": "magenta",
    "partially_delivered": "bright_yellow",
    "delivered": "green",
    "broken": "red",
}


def console(file: IO[str] | None = None) -> Console:
    """On a terminal: colour and its width. Elsewhere: plain text, wide enough that nothing is cut."""
    out = file or sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        width=None if tty else 240,
        no_color=not tty,
        color_system="auto" if tty else None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )


def t(value: str | None, style: str = "") -> Text:
    return Text(terminal(value), style=style)


def status_text(status: str) -> Text:
    return Text(f"{SYMBOLS[status]} {status}", style=STATUS_STYLE[status])


def progress_text(row: Row) -> str:
    total = len(row.milestones)
    n = row.verdict.progress
    if not n:
        return f"0/{total}"
    return f"{n}/{total} {row.milestones[n - 1]}"


# From this many rows on, `tracker status` draws its table with `LongTable` (the lines rich's
# Table draws, several times cheaper a row); a shorter register keeps rich's own Table.
LONG_TABLE_ROWS = 100


def _status_frame(today: date, pending_total: int) -> Table:
    """The status table's title and columns, without rows."""
    table = Table(
        title=f"Commitments on {today.isoformat()} — {pending_total} evidence waiting for review",
        box=box.SIMPLE_HEAVY,
        title_justify="left",
    )
    table.add_column("commitment", overflow="fold", max_width=48)
    table.add_column("status", no_wrap=True)
    table.add_column("milestones", overflow="fold", max_width=40)
    table.add_column("last evidence", overflow="fold", max_width=28)
    table.add_column("review", justify="right")
    table.add_column("announced", justify="right")
    table.add_column("flags", overflow="fold")
    return table


def status_cells(row: Row, today: date) -> list[Text]:
    """One commitment's cells in the status table. Its slug and title (catalog text, perhaps
    another team's) enter escaped, as `Text`, never as markup."""
    last = row.digest.last_evidence
    return [
        Text.assemble(t(row.commitment.slug, "bold"), "\n", t(row.commitment.title, "dim")),
        status_text(row.verdict.status),
        Text(progress_text(row)),
        Text(f"{last.isoformat()} ({days_ago(last, today)})" if last else "—"),
        Text(str(row.digest.pending) if row.digest.pending else "—"),
        Text(f"{(today - row.commitment.announced_on).days} d"),
        Text(", ".join(row.verdict.flags) or "—"),
    ]


def status_table(
    rows: list[Row], today: date, pending_total: int, *, long_from: int = LONG_TABLE_ROWS
) -> Table | LongTable:
    """Every row listed; from `long_from` rows on, drawn by `LongTable`."""
    cells = [status_cells(row, today) for row in rows]
    if len(cells) >= long_from:
        return LongTable(lambda: _status_frame(today, pending_total), cells)
    table = _status_frame(today, pending_total)
    for row_cells in cells:
        table.add_row(*row_cells)
    return table


class LongTable:
    """A long rich Table drawn line for line as rich draws it, without rich's per-cell layout
    (about 0.8 ms a row of seven cells). `frame` makes the table's title and columns without
    rows; `rows` are its cells, all `Text`.

    The column widths are rich's own, from a stand-in table holding only each column's widest
    cells (rich sizes a column by its widest line and its longest word, nothing else); the
    title, header and edges are rich's drawing of the frame at those widths; each cell is laid
    out by `Text.wrap` as rich's Table does it, and a cell without spans drawn once (a status,
    a "—", a date) is reused. It assumes what the status table uses: a box, an edge, padding
    left and right, no row styles. tests/test_status_large.py compares it with rich's Table line
    for line, plain and in colour, wide and narrow."""

    def __init__(self, frame: Callable[[], Table], rows: Sequence[Sequence[Text]]) -> None:
        self.frame = frame
        self.rows = rows

    @staticmethod
    def _plain_shape(table: Table) -> bool:
        """The shape drawn here: edges, a header, no footer, no lines or styles between rows,
        the same padding on every cell, widths from the console (others are left to rich)."""
        return (
            table.show_edge
            and table.show_header
            and not table.show_footer
            and not table.show_lines
            and not table.leading
            and not table.row_styles
            and table.style in (None, "", "none")
            and not table.border_style
            and table.pad_edge
            and not table.collapse_padding
            and table.width is None
            and not any(c.style for c in table.columns)
            and not any(c.vertical != "top" for c in table.columns)
        )

    def _widths(self, console: Console, options: ConsoleOptions) -> tuple[Table, list[int]]:
        stand_in = self.frame()
        n = len(stand_in.columns)
        for index in range(n):
            column = list({r[index].plain: r[index] for r in self.rows}.values())
            for key in (_widest_line, _longest_word):
                widest = max(column, key=key, default=None)
                if widest is not None:
                    stand_in.add_row(*(widest if i == index else Text() for i in range(n)))
        widths = stand_in._calculate_column_widths(
            console, options.update_width(options.max_width - stand_in._extra_width)
        )
        return stand_in, widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        head = self.frame()  # title, top edge, header, header rule, bottom edge
        frame_box, widths = head.box, None
        if frame_box is not None and self._plain_shape(head):
            try:
                stand_in, widths = self._widths(console, options)
                for index, (column, width) in enumerate(zip(head.columns, widths, strict=True)):
                    column.width = width - stand_in._get_padding_width(index)
                # On a terminal too narrow for every column, rich gives some none: left to rich.
                if widths != head._calculate_column_widths(
                    console, options.update_width(options.max_width - head._extra_width)
                ):
                    widths = None
            except (AttributeError, TypeError, ValueError):
                # rich's layout methods used here are not public: should a rich release change
                # them, the table is left to rich (slower, the same lines) instead of failing.
                head, widths = self.frame(), None
        if frame_box is None or widths is None:
            table = self.frame()
            for row in self.rows:
                table.add_row(*row)
            yield table
            return
        head_lines = list(Segment.split_lines(console.render(head, options)))
        newline = Segment.line()
        for line in head_lines[:-1]:
            yield from line
            yield newline
        safe = head.safe_box if head.safe_box is not None else console.safe_box
        _box = frame_box.substitute(options, safe=safe)
        _, pad_right, _, pad_left = head.padding
        mid = (Segment(_box.mid_left), Segment(_box.mid_vertical), Segment(_box.mid_right))
        foot = (Segment(_box.foot_left), Segment(_box.foot_vertical), Segment(_box.foot_right))
        cache: dict[tuple[int, str, Any], list[list[Segment]]] = {}
        blanks = [[Segment(" " * w)] for w in widths]
        columns = head.columns
        last = len(self.rows) - 1
        for row_no, row in enumerate(self.rows):
            left, divider, right = foot if row_no == last else mid
            cells = []
            for index, (cell, column, width) in enumerate(zip(row, columns, widths, strict=True)):
                key = (index, cell.plain, cell.style)
                lines = None if cell.spans else cache.get(key)
                if lines is None:
                    lines = _cell_lines(console, cell, column, width, pad_left, pad_right)
                    if not cell.spans:
                        cache[key] = lines
                cells.append(lines)
            for line_no in range(max(1, *(len(lines) for lines in cells))):
                line = [left]
                for index, lines in enumerate(cells):
                    if index:
                        line.append(divider)
                    line += lines[line_no] if line_no < len(lines) else blanks[index]
                line.append(right)
                yield from _merged(line)
                yield newline
        yield from head_lines[-1]
        yield newline


def _merged(line: list[Segment]) -> list[Segment]:
    """Neighbouring unstyled segments as one (the same characters, fewer pieces to draw)."""
    out: list[Segment] = []
    plain: list[str] = []
    for segment in line:
        if segment[1] is None and segment[2] is None:  # no style, not a control code
            plain.append(segment[0])
            continue
        if plain:
            out.append(Segment("".join(plain)))
            plain = []
        out.append(segment)
    if plain:
        out.append(Segment("".join(plain)))
    return out


def _widest_line(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _longest_word(text: Text) -> int:
    return max((cell_len(word) for word in text.plain.split()), default=0)


def _cell_lines(
    console: Console, cell: Text, column: Column, width: int, pad_left: int, pad_right: int
) -> list[list[Segment]]:
    """A cell's lines as rich's Table lays them out: wrapped to the column, padded."""
    inner = width - pad_left - pad_right
    if inner < 1:
        return []  # rich draws nothing in a column without room, only its padding's blanks
    justify = cell.justify or column.justify or "default"
    plain = cell.plain
    before, after = Segment(" " * pad_left), Segment(" " * pad_right)
    pieces = plain.split("\n")
    if (
        justify in ("left", "default")
        and not cell.style
        and "\t" not in plain
        and all(len(p) <= inner and cell_len(p) <= inner for p in pieces)
    ):
        # Every line fits: rich's wrap would only pad it, so the text is drawn as it is.
        drawn: list[list[Segment]] = [[]]
        for segment in cell.render(console):
            text, style, _ = segment
            if "\n" not in text:
                drawn[-1].append(segment)
                continue
            first, *more = text.split("\n")
            if first:
                drawn[-1].append(Segment(first, style))
            for text in more:
                drawn.append([Segment(text, style)] if text else [])
        return [
            _merged([before, *line, Segment(" " * (inner - cell_len(piece))), after])
            for line, piece in zip(drawn, pieces, strict=True)
        ]
    lines = cell.wrap(
        console,
        inner,
        justify=justify,
        overflow=cell.overflow or column.overflow or "fold",
        tab_size=(cell.tab_size if cell.tab_size is not None else console.tab_size) or 8,
        no_wrap=cell.no_wrap if cell.no_wrap is not None else column.no_wrap,
    )
    rendered = Text("\n").join(lines).render(console, end="\n")
    return [
        _merged([before, *line, after])
        for line in Segment.split_and_crop_lines(rendered, inner, include_new_lines=False)
    ]


def side(country: str | None) -> str:
    """The side a country code stands for in the views: IR, AZ or other."""
    return {"IR": "IR", "AZ": "AZ"}.get((country or "").upper(), "other")


def both_sides(e: EvidenceRecord, mentions: Sequence[MentionRecord]) -> bool:
    """Reported by Iranian and Azerbaijani outlets alike (the row's own and its mentions')."""
    sides = {(c or "").upper() for c in [e.country, *(m.country for m in mentions)]}
    return {"IR", "AZ"} <= sides


def source_label(e: EvidenceRecord) -> Text:
    """The configured source name and its side; the outlet's own name (which the feed controls)
    only beside it."""
    label = f"{e.source} ({side(e.country)})" if e.country else e.source
    if e.publisher and e.publisher != e.source:
        label += f"\n{e.publisher}"
    return t(label)


def _link(e: EvidenceRecord) -> Text:
    if e.url:
        return t(without_userinfo(e.url), "dim")
    return t(f"no link: {e.cite}" if e.cite else "no link", "dim")


def _review(e: EvidenceRecord) -> Text:
    if e.review == "rejected":
        by = f" by {e.reviewed_by}" if e.reviewed_by else ""
        return t(f"rejected{by}" + (f": {e.review_reason}" if e.review_reason else ""))
    if e.review == "pending" and (e.suggested_milestone or e.suggested_stance):
        ms = f"milestone {e.suggested_milestone}, " if e.suggested_milestone else ""
        return t(f"pending (suggests {ms}{e.suggested_stance or 'neutral'})")
    by = f" by {e.reviewed_by}" if e.reviewed_by and e.review == "confirmed" else ""
    return t(f"{e.review}{by}")


def _milestones(row: Row) -> Table:
    ms = Table(title="Milestones", title_justify="left", box=box.SIMPLE)
    ms.add_column("#", justify="right")
    ms.add_column("milestone", overflow="fold")
    ms.add_column("reached", overflow="fold")
    for m in row.verdict.milestones:
        if m.on is not None:
            reached = f"{with_jalali(m.on)} (evidence #{m.evidence_id})"
        else:
            reached = "implied by a later milestone" if m.implied else "—"
        ms.add_row(str(m.position), t(m.title), Text(reached))
    return ms


def _history(history: Sequence[HistoryRecord]) -> Table:
    hist = Table(title="History", title_justify="left", box=box.SIMPLE)
    for col in ("when", "change", "by", "reason"):
        hist.add_column(col, overflow="fold")
    for h in history:
        hist.add_row(
            Text(h.at.strftime("%Y-%m-%d %H:%M")),
            Text(f"{h.old_status or '—'} → {h.new_status} ({h.kind})"),
            t(h.actor),
            t(h.reason),
        )
    return hist


def _evidence(found: Card) -> Table:
    shown_n, total = len(found.evidence), found.total
    ev = Table(
        title=f"Evidence ({total}), newest first"
        + (f"; showing {shown_n} (--limit)" if shown_n < total else ""),
        title_justify="left",
        box=box.SIMPLE,
    )
    for col in ("id", "date", "source", "title / link", "stance", "ms", "review"):
        ev.add_column(col, overflow="fold")
    for e in found.evidence:
        others = found.mentions.get(e.id, [])
        title = Text.assemble(t(e.title), "\n", _link(e))
        if e.note:
            title.append_text(Text.assemble("\n", t(f"note: {e.note}", "italic")))
        if others:
            outlets = ", ".join(m.publisher or m.source for m in others)
            title.append_text(Text.assemble("\n", t(f"also reported by: {outlets}", "dim")))
        if both_sides(e, others):
            title.append_text(Text("\nreported by both Iranian and Azerbaijani outlets"))
        ev.add_row(
            str(e.id),
            Text(shown(e.published_at.date(), e.date_precision)),
            source_label(e),
            title,
            Text(e.stance),
            Text(str(e.milestone) if e.milestone else "—"),
            _review(e),
        )
    return ev


def card(found: Card, today: date) -> Group:
    row = found.row
    c = row.commitment
    head = Text.assemble(
        t(c.slug, "bold"),
        "  ",
        status_text(row.verdict.status),
        ("  [" + ", ".join(row.verdict.flags) + "]") if row.verdict.flags else "",
        "\n",
        t(c.title),
        "\n",
        Text(terminal(c.quote), style="italic"),
    )
    parts: list[Any] = [Panel(head, box=box.ROUNDED)]
    if c.description:
        parts.append(t(c.description))
    facts = Table.grid(padding=(0, 2))
    facts.add_row("agreement", t(row.agreement_slug))
    facts.add_row("parties", t("; ".join(c.parties)))
    facts.add_row("announced", Text(with_jalali(c.announced_on)))
    if c.deadline:
        facts.add_row("deadline", Text(with_jalali(c.deadline)))
    facts.add_row("why", t(row.verdict.explanation))
    parts += [facts, _milestones(row), _history(found.history), _evidence(found)]
    return Group(*parts)


def pending_table(items: Sequence[EvidenceRecord], total: int) -> Table:
    table = Table(
        title=f"{total} evidence waiting for review"
        + (f" (showing {len(items)})" if len(items) < total else ""),
        title_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    for col in ("id", "commitment", "date", "source", "title / link", "matched", "suggests"):
        table.add_column(col, overflow="fold")
    for e in items:
        suggests = "—"
        if e.suggested_milestone or e.suggested_stance:
            ms = f"milestone {e.suggested_milestone}, " if e.suggested_milestone else ""
            suggests = f"{ms}{e.suggested_stance or 'neutral'}"
        table.add_row(
            str(e.id),
            t(e.commitment_slug),
            Text(e.published_at.date().isoformat()),
            source_label(e),
            Text.assemble(t(e.title), "\n", _link(e)),
            t(", ".join(e.matched_terms)) + t(f" (score {e.score:g})"),
            t(suggests),
        )
    return table


def sources_table(origin: str, rows: Sequence[Mapping[str, Any]]) -> Table:
    """`tracker sources`: each configured source with its recorded health."""
    table = Table(title=f"Sources from {terminal(origin)}", title_justify="left")
    for col in (
        "name",
        "kind",
        "lang",
        "side",
        "last success",
        "failures",
        "last error",
        "items",
        "new",
        "not stored",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(r.get("skipped", {}).items()))
        quota = r.get("rate_limit_remaining")
        if quota is not None:
            skipped = (skipped + "; " if skipped else "") + f"API quota left: {quota}"
        table.add_row(
            t(r["name"] + ("" if r["enabled"] else " (off)")),
            r["kind"],
            r["language"],
            r["country"] or "—",
            r["last_success"] or "never",
            str(r["consecutive_failures"]),
            t(r["last_error"] or "—"),
            str(r["items_seen"]),
            str(r["new_evidence"]),
            t(skipped or "—"),
        )
    return table


def kinds_help(kinds: Mapping[str, Any]) -> str:
    """`tracker sources --kinds`: each kind's help (its module docstring) and options."""
    out: list[str] = []
    for name in sorted(kinds):
        info = kinds[name]
        out.append(f"{name}: {info.summary}\n")
        out.append(
            "\n".join("    " + line if line else "" for line in info.doc.strip().splitlines())
        )
        if info.options:
            out.append("\n    options:")
            for opt, help_text in sorted(info.options.items()):
                out.append(f"      {opt}: {help_text}")
        out.append("")
    return "\n".join(out) + "\n"
