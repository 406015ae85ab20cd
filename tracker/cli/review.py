"""`tracker review`: the list of evidence waiting for a person, and confirm / reject."""

from __future__ import annotations

from typing import Annotated

import typer

from tracker.cli.common import STATE, echo_changes, review_app


@review_app.callback(invoke_without_command=True)
def review_list(
    ctx: typer.Context,
    slug: Annotated[str | None, typer.Option("--commitment", help="Only this commitment.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 50,
) -> None:
    """List evidence waiting for review, newest first; then confirm or reject it.

    Example: tracker review --commitment khodaafarin-crossing
    """
    if ctx.invoked_subcommand is not None:
        return
    from tracker import register
    from tracker.outputs.terminal import console, pending_table

    items, total = register.pending(STATE.db(), slug, limit)
    if not items:
        typer.echo("nothing waiting for review")
        return
    console().print(pending_table(items, total))


@review_app.command("confirm")
def review_confirm(
    evidence_id: Annotated[int, typer.Argument(help="Evidence id (see 'tracker review').")],
    milestone: Annotated[
        int | None, typer.Option("--milestone", help="Milestone it reaches.")
    ] = None,
    stance: Annotated[
        str | None, typer.Option("--stance", help="progress, setback or neutral.")
    ] = None,
) -> None:
    """Confirm evidence: it now counts for the status.

    Example: tracker review confirm 42 --milestone 3
    """
    _review(evidence_id, "confirmed", milestone=milestone, stance=stance)


@review_app.command("reject")
def review_reject(
    evidence_id: Annotated[int, typer.Argument(help="Evidence id (see 'tracker review').")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is not evidence.")] = None,
) -> None:
    """Reject evidence; it is remembered so that a later refresh does not bring it back.

    Example: tracker review reject 42 --reason "about the dam, not the crossing"
    """
    _review(evidence_id, "rejected", reason=reason)


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
