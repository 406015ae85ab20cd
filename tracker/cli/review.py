"""`tracker review`: on a terminal, a single-key loop over the stories waiting for review;
otherwise (`--list`, a pipe) the list. `confirm` / `reject` decide one item by id, or a batch
with `--all` and filters."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from tracker.cli.common import STATE, echo_changes, review_app
from tracker.errors import UsageError

if TYPE_CHECKING:
    from tracker.review import Screen

CommitmentOption = Annotated[
    str | None, typer.Option("--commitment", help="Only this commitment's evidence.")
]
AllOption = Annotated[
    bool, typer.Option("--all", help="Every pending item that the filters select.")
]
SourceOption = Annotated[
    str | None, typer.Option("--source", help="With --all: only evidence from this source.")
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="With --all: only evidence published on or after YYYY-MM-DD."),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="With --all: list the items instead of deciding.")
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", help="With --all and no filter: do not ask (needed off a terminal)."),
]


def _on_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@review_app.callback(invoke_without_command=True)
def review_list(
    ctx: typer.Context,
    slug: CommitmentOption = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="With --list: show at most this many.")
    ] = 50,
    as_list: Annotated[
        bool, typer.Option("--list", help="Print the list instead of reviewing with keys.")
    ] = False,
) -> None:
    """Review evidence waiting for a person, newest first. On a terminal: one story at a time,
    single keys (c confirm, r reject, R reject with a reason, m milestone, p/n/x stance, s skip,
    u undo, o open, q quit). With --list, or when piped: the list.

    Example: tracker review --commitment khodaafarin-crossing
    """
    if ctx.invoked_subcommand is not None:
        return
    if as_list or not _on_terminal():
        _print_list(slug, limit)
        return
    _keystroke_loop(slug)


def _print_list(slug: str | None, limit: int) -> None:
    from tracker import register
    from tracker.outputs.terminal import console, pending_table

    items, total = register.pending(STATE.db(), slug, limit)
    if not items:
        typer.echo("nothing waiting for review")
        return
    console().print(pending_table(items, total))


# ---------------------------------------------------------------- the loop on a terminal


@contextmanager
def _raw_terminal() -> Iterator[Callable[[], str]]:
    """Raw keys from standard input on the alternate screen; the terminal is given back as it
    was on every way out (q, an error, Ctrl-C, SIGINT, SIGTERM, SIGHUP). Yields a function that
    waits for what the terminal sends next ('' once it is closed)."""
    import codecs
    import os
    import select
    import signal
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read() -> str:
        # Never block in read() itself: a SIGTERM or SIGHUP that lands after Python last looked
        # for signals but before the read begins interrupts nothing, and the handler would wait
        # for the next key (seen under load in tests). Waking up every 0.2 s lets it run.
        while not select.select([fd], [], [], 0.2)[0]:
            pass
        data = os.read(fd, 1024)
        return decoder.decode(data) if data else ""

    try:
        tty.setraw(fd, termios.TCSADRAIN)
        mode = termios.tcgetattr(fd)
        mode[1] |= termios.OPOST | termios.ONLCR  # output as usual: '\n' starts a new line
        termios.tcsetattr(fd, termios.TCSADRAIN, mode)
        sys.stdout.write("\x1b[?1049h\x1b[?25l")  # the alternate screen, no cursor
        sys.stdout.flush()
        yield read
    finally:
        sys.stdout.write("\x1b[?25h\x1b[?1049l")
        sys.stdout.flush()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _draw(screen: Screen) -> None:
    from tracker.outputs.review import item
    from tracker.outputs.terminal import console

    out = console()
    with out.capture() as captured:
        out.print(item(screen))
    sys.stdout.write("\x1b[H\x1b[2J" + captured.get())
    sys.stdout.flush()


def _keystroke_loop(slug: str | None) -> None:
    from tracker import register
    from tracker.outputs.escape import terminal
    from tracker.outputs.review import summary
    from tracker.review import ReviewLoop, split_keys

    db = STATE.db()
    queue = register.review_queue(db, slug)
    if not queue.clusters:
        typer.echo("nothing waiting for review")
        return
    loop = ReviewLoop(queue.clusters, register.ReviewDesk(db, STATE.settings), queue.milestones)
    if queue.waiting > queue.evidence:
        loop.message = f"the newest {queue.evidence} of {queue.waiting} waiting items"
    try:
        with _raw_terminal() as read:
            while not loop.done:
                _draw(loop.screen())
                text = read()
                if not text:  # the terminal went away
                    break
                for key in split_keys(text):
                    loop.press(key)
    finally:
        decided = loop.tally["confirmed"] + loop.tally["rejected"]
        if loop.message:  # the last decision's outcome, which the closed screen no longer shows
            typer.echo(terminal(loop.message))
        typer.echo(summary(loop.tally, loop.left))
        if decided:
            learned = register.learn_from_reviews(db)
            if learned:
                typer.echo(f"learning: {learned}")


# ---------------------------------------------------------------- confirm and reject


@review_app.command("confirm")
def review_confirm(
    evidence_id: Annotated[
        int | None, typer.Argument(help="Evidence id (see 'tracker review --list').")
    ] = None,
    milestone: Annotated[
        int | None, typer.Option("--milestone", help="Milestone it reaches.")
    ] = None,
    stance: Annotated[
        str | None, typer.Option("--stance", help="progress, setback or neutral.")
    ] = None,
    every: AllOption = False,
    slug: CommitmentOption = None,
    source: SourceOption = None,
    since: SinceOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Confirm evidence: it now counts for the status. Without --milestone and --stance, the
    matcher's suggestion is applied. With --all, every pending item the filters select, each
    with its own suggestion.

    Example: tracker review confirm 42 --milestone 3
    Example: tracker review confirm --all --source irna-en --since 2026-11-01
    """
    if every:
        if evidence_id is not None or milestone is not None or stance is not None:
            raise UsageError(
                "confirm --all applies each item's own suggestion: give no ID, --milestone or "
                "--stance with it"
            )
        _batch(
            "confirmed",
            slug=slug,
            source=source,
            since=since,
            match=None,
            dry_run=dry_run,
            yes=yes,
            reason=None,
        )
        return
    _single(
        evidence_id, "confirmed", (slug, source, since, dry_run), milestone=milestone, stance=stance
    )


@review_app.command("reject")
def review_reject(
    evidence_id: Annotated[
        int | None, typer.Argument(help="Evidence id (see 'tracker review --list').")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is not evidence.")] = None,
    every: AllOption = False,
    match: Annotated[
        str | None,
        typer.Option("--match", help="With --all: only items whose title or text contains TEXT."),
    ] = None,
    slug: CommitmentOption = None,
    source: SourceOption = None,
    since: SinceOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Reject evidence; it is remembered so that a later refresh does not bring it back. With
    --all, every pending item the filters select.

    Example: tracker review reject 42 --reason "about the dam, not the crossing"
    Example: tracker review reject --all --match "football" --commitment tabriz-baku-flight
    """
    if every:
        if evidence_id is not None:
            raise UsageError("give either an evidence ID or --all, not both")
        _batch(
            "rejected",
            slug=slug,
            source=source,
            since=since,
            match=match,
            dry_run=dry_run,
            yes=yes,
            reason=reason,
        )
        return
    _single(evidence_id, "rejected", (slug, source, since, match, dry_run), reason=reason)


def _single(
    evidence_id: int | None,
    decision: str,
    batch_only: tuple[object, ...],
    *,
    milestone: int | None = None,
    stance: str | None = None,
    reason: str | None = None,
) -> None:
    verb = "confirm" if decision == "confirmed" else "reject"
    if any(v not in (None, False) for v in batch_only):
        raise UsageError(
            "--commitment, --source, --since, --match and --dry-run go with --all "
            f"(tracker review {verb} --all …)"
        )
    if evidence_id is None:
        raise UsageError(f"give an evidence ID, or --all (see 'tracker review {verb} --help')")
    _review(evidence_id, decision, milestone=milestone, stance=stance, reason=reason)


def _review(
    evidence_id: int,
    decision: str,
    *,
    milestone: int | None = None,
    stance: str | None = None,
    reason: str | None = None,
) -> None:
    from tracker import register

    outcome = register.review(
        STATE.db(),
        STATE.settings,
        evidence_id,
        decision,
        milestone=milestone,
        stance=stance,
        reason=reason,
    )
    if outcome.note:
        typer.echo(f"note: {outcome.note}")
    applied = ""
    if decision == "confirmed" and milestone is None and stance is None:
        e = outcome.evidence
        applied = f" with milestone {e.milestone or '—'}, stance {e.stance}"
    typer.echo(f"evidence #{evidence_id} {decision} ({outcome.slug}){applied}")
    echo_changes(outcome.changes)
    learned = register.learn_from_reviews(STATE.db())
    if learned:
        typer.echo(f"learning: {learned}")


def _batch(
    decision: str,
    *,
    slug: str | None,
    source: str | None,
    since: str | None,
    match: str | None,
    dry_run: bool,
    yes: bool,
    reason: str | None,
) -> None:
    from tracker import register
    from tracker.dates import parse_date

    verb = "confirm" if decision == "confirmed" else "reject"
    day = parse_date(since, "--since") if since is not None else None
    db = STATE.db()
    items = register.batch_select(db, slug=slug, source=source, since=day, match=match)
    noun = "evidence item" if len(items) == 1 else "evidence items"
    if dry_run:
        if items:
            from tracker.outputs.terminal import console, pending_table

            console().print(pending_table(items, len(items)))
        typer.echo(f"would {verb} {len(items)} {noun}")
        return
    if not items:
        typer.echo(f"nothing to {verb}: no pending evidence matches")
        return
    if all(v is None for v in (slug, source, since, match)) and not yes:
        if not _on_terminal():
            raise UsageError(
                f"--all with no filter would {verb} every pending item ({len(items)}); "
                "add --yes to do that without a terminal"
            )
        if not typer.confirm(f"{verb} all {len(items)} pending {noun}?", default=False):
            typer.echo("nothing decided")
            return
    result = register.batch_decide(db, STATE.settings, items, decision, reason=reason)
    done_noun = "evidence item" if result.decided == 1 else "evidence items"
    typer.echo(f"{decision} {result.decided} {done_noun}")
    for ev_id, state, by in result.already:
        typer.echo(f"evidence #{ev_id} had already been {state}" + (f" by {by}" if by else ""))
    echo_changes(result.changes)
    learned = register.learn_from_reviews(db) if result.decided else None
    if learned:
        typer.echo(f"learning: {learned}")
