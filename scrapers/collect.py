"""Fetch many sources at once; every source ends as an Outcome, whatever it does."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote, quote_plus

from scrapers.errors import SourceError, one_line

if TYPE_CHECKING:
    from scrapers.base import Outcome, SourceSpec, Validators
    from scrapers.http import HttpSession, Network
    from scrapers.limits import HttpSettings
    from scrapers.worker import WorkerPool

# The HTTP client, the kinds and the records (msgspec) are imported when a run starts, not with
# this module: the package binds `collect` at import, and a parser worker imports the package,
# as does `tracker refresh` before it starts the parser processes' server (scrapers/serve.py).

__all__ = ["Postprocess", "collect", "collect_async", "scrub_secrets"]

# A step run on each successful outcome in a parser process (e.g. matching), so that it overlaps
# the downloads of other sources and is bounded by the same limits as parsing. It must be
# picklable (a top-level function, or a functools.partial / instance of a top-level class whose
# state pickles) and may return a subclass of Outcome carrying its results. It is unpickled once
# per worker, so state it builds lazily (a compiled matcher) is reused across sources. Kinds that
# build their whole Outcome in the parser (rss) run it in the same call as the parse, so the
# items cross between the processes once; for the others it is a call of its own.
Postprocess: TypeAlias = "Callable[[Outcome], Outcome]"

# Parses that justify starting one more parser process before the first answer (~0.1 s of CPU
# each, about the time of parsing 40 feeds).
PARSES_PER_PARSER = 40
# Options holding credentials: their values never appear in a reason (health, report, terminal).
_SECRET_OPTION = re.compile(r"secret|password|passwd|api_?key|access_token|credential", re.I)


def scrub_secrets(text: str, spec: SourceSpec) -> str:
    """`text` without the source's credentials, raw or in the forms a server may echo them in
    (URL-encoded as in a form body, JSON-escaped, whitespace-collapsed)."""
    for name, value in spec.options.items():
        if not isinstance(value, str) or not value or not _SECRET_OPTION.search(name):
            continue
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        forms.add(one_line(value, len(value) + 1))
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
            # A reason cut at its length limit may end in the first part of a secret.
            if text.endswith("…"):
                for cut in range(len(form) - 1, 3, -1):
                    if text.endswith(form[:cut] + "…"):
                        text = text[: -cut - 1] + "***…"
                        break
    return text


def _check(spec: SourceSpec) -> None:
    from scrapers.kinds import KINDS

    info = KINDS.get(spec.kind)
    if info is None:
        known = ", ".join(sorted(KINDS))
        raise SourceError(f"unknown kind '{spec.kind}' (known kinds: {known})")
    unknown = sorted(set(spec.options) - set(info.options))
    if unknown:
        allowed = ", ".join(sorted(info.options)) or "none"
        raise SourceError(
            f"unknown option(s) {', '.join(unknown)} for kind {spec.kind} (allowed: {allowed})"
        )
    if info.needs_url and not spec.url:
        raise SourceError(f"kind {spec.kind} needs a url")


async def _run_one(
    spec: SourceSpec,
    validators: Validators,
    session: HttpSession,
    postprocess: Postprocess | None = None,
) -> Outcome:
    import asyncio

    from scrapers.base import Outcome
    from scrapers.kinds import RUNNERS

    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = session.settings.source_deadline
    try:
        _check(spec)
        async with asyncio.timeout(deadline):
            outcome = await RUNNERS[spec.kind](spec, validators, session)
            if postprocess is not None and outcome.state == "ok" and not outcome.postprocessed:
                outcome = await session.postprocess_alone(outcome)
    except SourceError as exc:
        outcome = Outcome(
            source=spec.name,
            state="failed",
            reason=exc.reason,
            validators=validators,
            http_status=exc.http_status,
            retry_after=exc.retry_after,
        )
    except TimeoutError:
        outcome = Outcome(
            source=spec.name,
            state="failed",
            reason=f"source took longer than {deadline:g} s in all",
            validators=validators,
        )
    except Exception as exc:  # a bug of ours must not cost the other sources their run
        outcome = Outcome(
            source=spec.name,
            state="failed",
            reason=one_line(f"internal error: {type(exc).__name__}: {exc}"),
            validators=validators,
        )
    if outcome.reason:
        outcome.reason = scrub_secrets(outcome.reason, spec)
    outcome.elapsed = loop.time() - started
    return outcome


async def collect_async(
    specs: list[SourceSpec],
    validators: dict[str, Validators],
    settings: HttpSettings | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    *,
    postprocess: Postprocess | None = None,
    network: Network | None = None,
) -> list[Outcome]:
    """`collect` for callers that already run an event loop."""
    import asyncio

    from scrapers.base import Validators
    from scrapers.limits import HttpSettings

    settings = settings or HttpSettings()
    # Sources with no validators to send will be parsed (nothing can answer them "unchanged"):
    # parser processes start with the first requests, not after the first answers, one for
    # every PARSES_PER_PARSER such sources (a run where every source can be answered 304
    # starts none until one is needed).
    fresh = sum(
        1
        for known in (validators.get(spec.name, Validators()) for spec in specs)
        if not (known.etag or known.last_modified)
    )
    # Before the HTTP client is imported (httpx and what it brings, ~50 ms): the parser
    # processes start up meanwhile, on the other core, and build the step before any answer.
    workers = step_pool(settings, postprocess)
    workers.prestart(-(-fresh // PARSES_PER_PARSER))
    try:
        await asyncio.sleep(0)  # the start tasks run to their first wait: the processes exist
        from scrapers.http import open_session
    except BaseException:
        await workers.aclose()
        raise
    async with open_session(settings, network, postprocess=postprocess, workers=workers) as session:
        tasks = [
            asyncio.create_task(
                _run_one(spec, validators.get(spec.name, Validators()), session, postprocess)
            )
            for spec in specs
        ]
        if on_outcome is not None:
            for finished in asyncio.as_completed(tasks):
                on_outcome(await finished)
        return list(await asyncio.gather(*tasks))


def collect(
    specs: list[SourceSpec],
    validators: dict[str, Validators],
    settings: HttpSettings | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    *,
    postprocess: Postprocess | None = None,
    network: Network | None = None,
) -> list[Outcome]:
    """Fetch all sources concurrently; outcomes come back in the order of `specs`.

    `validators` maps a source name to what was stored after its last fetch (missing = none).
    `on_outcome` is called as each source finishes (for a progress display). A source's failure
    never raises: it becomes `Outcome(state="failed", reason=...)`. `postprocess`, if given,
    runs on each "ok" outcome in a parser process (see `Postprocess`); what it returns replaces
    the outcome, and if it fails or overruns, the source fails alone. `network` replaces name
    resolution and connecting (for tests; see scrapers/network.py).
    """
    import asyncio
    import concurrent.futures

    coroutine = collect_async(
        specs, validators, settings, on_outcome, postprocess=postprocess, network=network
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    if not running:
        # Outside the `except` block, so that errors inside the run are not chained to it.
        return asyncio.run(coroutine)
    # Called from inside an event loop (e.g. a notebook): run ours on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def postprocessed(step: Postprocess, outcome: Outcome) -> Outcome:
    """`step(outcome)`, checked and marked as done; runs in a parser process."""
    from scrapers.base import Outcome

    if outcome.state != "ok" or outcome.postprocessed:
        return outcome
    processed = step(outcome)
    if not isinstance(processed, Outcome):
        kind = type(processed).__name__
        raise SourceError(f"internal error: post-processing returned a {kind}")
    processed.postprocessed = True
    return processed


def parsed_then(
    step: Postprocess, parser: Callable[..., Outcome], *args: object, **kwargs: object
) -> Outcome:
    """`parser(*args, **kwargs)`, then the post-processing step on what it built, in one call
    to a parser process."""
    return postprocessed(step, parser(*args, **kwargs))


class Stepped:
    """The post-processing step as a parser process runs it: `stepped(True, parser, …)` is
    `parsed_then(step, parser, …)`, `stepped(False, outcome)` is `postprocessed(step, outcome)`.
    One object serves both, so a run that parses some kinds' answers and post-processes others'
    sends the step (the catalog's rules) to each process once and compiles it there once. Its
    `prepare` runs the step's own (building a matcher) when the process first receives it,
    before the memory limit on parsing is measured (scrapers/serve.py): the step is the caller's
    code and data, not a stranger's bytes, and may need more room than one parse is allowed."""

    def __init__(self, step: Postprocess) -> None:
        self.step = step

    def prepare(self) -> None:
        ready = getattr(self.step, "prepare", None)
        if callable(ready):
            ready()

    def __call__(self, fused: bool, *args: Any, **kwargs: Any) -> Outcome:
        if fused:
            return parsed_then(self.step, *args, **kwargs)
        return postprocessed(self.step, *args, **kwargs)


def step_pool(settings: HttpSettings, postprocess: Postprocess | None) -> WorkerPool:
    """The run's parser pool, its fork server to build `postprocess` (wrapped as the workers
    call it) before the first worker: every worker then starts with the step built."""
    from scrapers.worker import parser_pool

    return parser_pool(settings, warm=None if postprocess is None else Stepped(postprocess))
