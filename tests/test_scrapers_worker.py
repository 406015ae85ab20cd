"""Parsing in worker processes: bounded in time and memory whatever the input, one line per failure.

The work is real (top-level functions in tests/worker_jobs.py run in real worker processes) and
the sources are real loopback feeds; nothing of ours is replaced. Time checks are generous
deadline checks only: a bomb must end near its limit, never hours later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scrapers import HttpSettings, SourceSpec, Validators, collect
from scrapers.errors import SourceError
from scrapers.http import open_session

from . import worker_jobs as jobs
from .loopback import LoopbackServer, Reply, fast_settings, fixture, serve

FEED = fixture("rss_en.xml")
RSS = "application/rss+xml; charset=utf-8"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve() as s:
        yield s


def parse(settings: HttpSettings, *calls: tuple[Any, ...]) -> list[Any]:
    """Run `calls` ((func, *args), ...) concurrently in one session; errors come back as values."""

    async def main() -> list[Any]:
        async with open_session(settings) as session:
            return await asyncio.gather(
                *(session.parse(call[0], *call[1:]) for call in calls), return_exceptions=True
            )

    return asyncio.run(main())


def reason(value: Any) -> str:
    assert isinstance(value, SourceError), value
    assert "\n" not in value.reason and "Traceback" not in value.reason
    return value.reason


def test_results_come_back_and_errors_are_one_line() -> None:
    settings = fast_settings()
    ok, source_error, bug, deep = parse(
        settings,
        (jobs.add, 2, 3),
        (jobs.fail_like_a_source,),
        (jobs.crash,),
        (jobs.nest, 100_000),
    )
    assert ok == 5
    assert reason(source_error) == "malformed JSON from the server"
    assert source_error.http_status == 200
    assert reason(bug) == "internal error while parsing: ValueError: line one line two"
    assert reason(deep) == "parsing failed: the document is nested too deeply"


def test_a_free_worker_goes_to_the_call_that_waited_longest() -> None:
    """First come, first served, also once a call has waited past `grow_after` with the pool at
    full size (such a call used to rejoin the queue behind every call that came after it: the
    refresh stores sources in file order, so one early source kept waiting held back every
    source after it)."""
    from scrapers.worker import WorkerPool

    async def main() -> list[str]:
        pool = WorkerPool(1, memory=256 * 1024 * 1024, answer_limit=1 << 20, grow_after=0.05)
        done: list[str] = []

        async def call(tag: str, seconds: float) -> None:
            await pool.run(jobs.nap, (seconds, tag), {}, time_limit=60, too_slow="slow")
            done.append(tag)

        try:
            await call("started", 0.0)  # the worker is up and idle
            first = asyncio.create_task(call("first", 1.0))  # takes it at once, for 1 s
            await asyncio.sleep(0.01)
            early = asyncio.create_task(call("early", 0.0))
            await asyncio.sleep(0.5)  # "early" has waited ten times grow_after by now
            late = asyncio.create_task(call("late", 0.0))
            await asyncio.gather(first, early, late)
        finally:
            await pool.aclose()
        return done

    assert asyncio.run(main()) == ["started", "first", "early", "late"]


def one_worker() -> Any:
    """A pool of one worker that starts no second one: calls wait their turn."""
    from scrapers.worker import WorkerPool

    return WorkerPool(1, memory=256 * 1024 * 1024, answer_limit=1 << 20, grow_after=60)


def call(pool: Any, func: Any, *args: Any, time_limit: float = 60, too_slow: str = "slow") -> Any:
    """`pool.run(func, args)` as a task."""
    return asyncio.create_task(pool.run(func, args, {}, time_limit=time_limit, too_slow=too_slow))


def test_a_free_worker_starts_the_waiting_call_while_the_event_loop_is_busy() -> None:
    """The call is written to the worker as the worker comes free, not when the waiting call's
    task next runs: in a refresh the event loop may first run other downloads and store a
    batch, and the worker would sit idle meanwhile."""

    async def main() -> float:
        pool = one_worker()
        try:
            await call(pool, jobs.nap, 0.0, "up")
            first = call(pool, jobs.nap, 0.3, "first")
            await asyncio.sleep(0.05)
            waiting = call(pool, jobs.clock, "waiting")
            await asyncio.sleep(0.05)
            assert await first == "first"
            busy_from = time.time()
            time.sleep(0.6)  # the loop is busy: the waiting call's task cannot run meanwhile
            tag, started = await waiting
            assert tag == "waiting"
            return started - busy_from
        finally:
            await pool.aclose()

    # Started at once (a few ms), not once the loop was free again (0.6 s later).
    assert asyncio.run(main()) < 0.3


def test_an_answer_that_comes_as_the_time_limit_strikes_counts_and_keeps_its_worker() -> None:
    """The answer and the time limit fall due in one turn of the event loop (held here by a
    blocking sleep): the answer is taken, and the worker, which has gone on to the waiting call
    already, is not killed under that call."""

    async def main() -> list[str]:
        pool = one_worker()
        try:
            await call(pool, jobs.nap, 0.0, "up")
            racing = call(pool, jobs.nap, 0.2, "in time", time_limit=0.4, too_slow="too slow")
            await asyncio.sleep(0.05)
            waiting = call(pool, jobs.nap, 0.0, "next")
            await asyncio.sleep(0.05)
            time.sleep(0.6)  # the answer (at 0.2 s) and the limit (at 0.4 s) are both due now
            got = []
            for task in (racing, waiting):
                try:
                    got.append(await task)
                except SourceError as exc:
                    got.append(exc.reason)
            return got
        finally:
            await pool.aclose()

    assert asyncio.run(main()) == ["in time", "next"]


def test_a_call_cancelled_once_handed_a_worker_costs_that_worker_not_the_next_call() -> None:
    """Its work is already on the way to the worker, whose answer would then reach the next
    call: the worker is killed instead, and the next call gets a new one."""

    async def main() -> tuple[str, bool, int, int]:
        pool = one_worker()
        try:
            before = await call(pool, jobs.pid)
            first = call(pool, jobs.nap, 0.3, "first")
            await asyncio.sleep(0.05)
            handed = call(pool, jobs.nap, 0.2, "handed")
            await asyncio.sleep(0.05)
            await first  # `handed` has the worker now, but its task has not run since
            handed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handed
            after = await call(pool, jobs.nap, 0.0, "after", too_slow="x")
            again = await call(pool, jobs.pid)
            return after, handed.cancelled(), before, again
        finally:
            await pool.aclose()

    after, cancelled, before, again = asyncio.run(main())
    assert cancelled
    assert after == "after"  # not the answer meant for the cancelled call
    assert again != before  # that worker was killed; this is a new one


def test_a_call_cancelled_after_its_answer_came_leaves_its_worker_to_the_pool() -> None:
    """The worker answered and went on before the call's task ran again: cancelling the call
    then must not kill the worker, which is the pool's again (here idle: the next call gets
    it). The event loop is held so that the hand-over and the answer fall in two turns of the
    loop that come before the call's task runs again."""

    async def main() -> tuple[int, int, bool]:
        pool = one_worker()
        loop = asyncio.get_running_loop()
        try:
            before = await call(pool, jobs.pid)
            first = call(pool, jobs.nap, 0.2, "first")
            await asyncio.sleep(0.05)
            quick = call(pool, jobs.pid, too_slow="x")
            await asyncio.sleep(0.02)
            # Due with the first answer in one turn, and run after it (timers come after I/O):
            # the quick call is handed the worker, then the loop is held while it answers.
            loop.call_later(0.1, time.sleep, 0.1)
            time.sleep(0.25)
            await first
            quick.cancel()  # its answer has come; its task has not run since it was handed over
            with contextlib.suppress(asyncio.CancelledError):
                await quick
            after = await call(pool, jobs.pid)
            return before, after, quick.cancelled()
        finally:
            await pool.aclose()

    before, after, cancelled = asyncio.run(main())
    assert cancelled
    assert after == before  # the same worker, alive


def test_a_waiting_call_that_is_cancelled_gives_up_its_place_only() -> None:
    from scrapers.worker import WorkerPool

    async def main() -> list[str]:
        pool = WorkerPool(1, memory=256 * 1024 * 1024, answer_limit=1 << 20, grow_after=0.05)
        try:
            await pool.run(jobs.nap, (0.0, "started"), {}, time_limit=60, too_slow="slow")
            first = asyncio.create_task(
                pool.run(jobs.nap, (0.5, "first"), {}, time_limit=60, too_slow="slow")
            )
            await asyncio.sleep(0.01)
            given_up = asyncio.create_task(
                pool.run(jobs.nap, (0.0, "given up"), {}, time_limit=60, too_slow="slow")
            )
            after = asyncio.create_task(
                pool.run(jobs.nap, (0.0, "after"), {}, time_limit=60, too_slow="slow")
            )
            await asyncio.sleep(0.2)
            given_up.cancel()
            got = [await first, await after]
            assert given_up.cancelled()
            got.append(await pool.run(jobs.nap, (0.0, "again"), {}, time_limit=60, too_slow="x"))
            return got
        finally:
            await pool.aclose()

    assert asyncio.run(main()) == ["first", "after", "again"]


def test_cpu_bomb_is_killed_at_the_parse_limit_while_other_calls_complete() -> None:
    settings = fast_settings(parse_timeout=1.0, parse_workers=2)
    started = time.monotonic()
    results = parse(settings, (jobs.spin,), *((jobs.add, i, 1) for i in range(20)), (jobs.spin,))
    elapsed = time.monotonic() - started
    assert reason(results[0]) == "parsing took longer than 1.0 s"
    assert reason(results[-1]) == "parsing took longer than 1.0 s"
    assert results[1:-1] == [i + 1 for i in range(20)]
    # Two bombs killed at their 1 s limit, worker start-ups on a busy machine on top; a bomb
    # that was not killed would never end.
    assert elapsed < 15


def test_a_killed_worker_is_replaced_for_the_next_call() -> None:
    async def main() -> tuple[Any, ...]:
        async with open_session(fast_settings(parse_timeout=0.5, parse_workers=1)) as session:
            first = await session.parse(jobs.pid)
            with pytest.raises(SourceError, match=r"parsing took longer than 0\.5 s"):
                await session.parse(jobs.spin)
            second = await session.parse(jobs.pid)
            third = await session.parse(jobs.pid)
            return first, second, third

    first, second, third = asyncio.run(main())
    assert first != second  # a fresh process after the kill ...
    assert second == third  # ... which then stays
    for gone in (first,):
        with pytest.raises(ProcessLookupError):
            os.kill(gone, 0)


def test_memory_bomb_is_contained_in_the_worker() -> None:
    settings = fast_settings(parse_memory=64 * 1024 * 1024, parse_workers=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bomb, after = parse(settings, (jobs.hog,), (jobs.add, 1, 1))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert reason(bomb) == "parsing needed more than 64 MB of memory"
    assert after == 2  # served by a fresh worker
    assert grown_mb < 32  # the test process never held the bomb


def test_a_worker_that_dies_fails_its_call_only() -> None:
    dead, alive = parse(fast_settings(parse_workers=1), (jobs.die,), (jobs.add, 1, 2))
    assert reason(dead) == "parser process died (SIGKILL)"
    assert alive == 3


def test_printing_does_not_corrupt_the_channel() -> None:
    assert parse(fast_settings(), (jobs.chatter, "é" * 10), (jobs.add, 1, 1)) == ["é" * 10, 2]


def test_unpicklable_work_and_oversized_answers_are_one_line_errors() -> None:
    settings = fast_settings(max_body_bytes=64 * 1024)  # answers are capped at 4 × + 1 MB
    unpicklable, oversized, fine = parse(
        settings, (jobs.add, lambda: 1, 1), (jobs.big, 30 * 1024 * 1024), (jobs.big, 10)
    )
    assert reason(unpicklable).startswith("internal error: cannot send work to a parser process")
    assert reason(oversized) == "parser answer larger than 1.2 MB"
    assert fine == b"x" * 10


def test_the_step_is_built_once_and_every_worker_starts_with_it(tmp_path: Path) -> None:
    """The fork server builds the run's step (the catalog's matcher) once; every worker, the
    first ones and a replacement for a killed one, is forked with it built."""
    from scrapers.worker import WorkerPool

    trace = tmp_path / "built"
    step = jobs.Prepared(str(trace))

    async def main() -> tuple[list[tuple[int, bool]], list[tuple[int, bool]], int]:
        pool = WorkerPool(
            2, memory=256 * 1024 * 1024, answer_limit=1 << 20, grow_after=0.05, warm=step
        )

        async def both() -> list[tuple[int, bool]]:
            calls = (pool.run(step, (0.5,), {}, time_limit=60, too_slow="slow") for _ in "ab")
            return list(await asyncio.gather(*calls))

        try:
            pool.prestart(2)
            first = await both()
            with pytest.raises(SourceError, match="slow"):
                await pool.run(jobs.spin, (), {}, time_limit=0.5, too_slow="slow")
            again = await both()
            frozen = await pool.run(jobs.frozen, (), {}, time_limit=60, too_slow="slow")
        finally:
            await pool.aclose()
        return first, again, frozen

    first, again, frozen = asyncio.run(main())
    builders = [int(pid) for pid in trace.read_text().split()]
    assert len(builders) == 1  # built once, by one process ...
    workers = {pid for pid, _ in first + again}
    assert builders[0] not in workers and os.getpid() not in workers  # ... that parses nothing
    assert all(built for _, built in first + again)  # and every worker had it built
    assert len({pid for pid, _ in first}) == 2
    assert len(workers) == 3  # the killed worker's replacement came built too
    # What the server built stays out of the workers' garbage collections (which would walk a
    # big catalog's millions of objects, and copy every page they touch).
    assert frozen > 10_000


def test_the_servers_answers_are_read_one_by_one_when_they_arrive_together() -> None:
    """The step goes to the fork server before it is ready; its READY and the step's answer
    may then arrive in one read, and neither may swallow the other."""
    from scrapers.worker import WorkerPool

    async def main() -> int:
        pool = WorkerPool(1, memory=256 * 1024 * 1024, answer_limit=1 << 20, warm=jobs.add)
        try:
            pool.prestart(1)
            await asyncio.sleep(0)  # the server is launched and the step sent to it
            time.sleep(1.0)  # the loop is held: both answers are waiting when it reads
            result: int = await pool.run(jobs.add, (1, 2), {}, time_limit=60, too_slow="slow")
            return result
        finally:
            await pool.aclose()

    assert asyncio.run(main()) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_a_killed_fork_server_is_replaced_and_its_workers_die_with_it() -> None:
    from scrapers.worker import WorkerPool

    async def main() -> tuple[int, int, Any, int, int]:
        pool = WorkerPool(1, memory=256 * 1024 * 1024, answer_limit=1 << 20)

        async def call(func: Any) -> Any:
            return await pool.run(func, (), {}, time_limit=60, too_slow="slow")

        try:
            server, worker = await call(jobs.parent_pid), await call(jobs.pid)
            os.kill(server, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _running(worker) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            try:
                lost: Any = await call(jobs.pid)  # the idle worker died with its server
            except SourceError as exc:
                lost = exc
            return server, worker, lost, await call(jobs.parent_pid), await call(jobs.pid)
        finally:
            await pool.aclose()

    server, worker, lost, new_server, new_worker = asyncio.run(main())
    assert reason(lost) == "parser process died"
    assert new_server != server and new_worker != worker
    assert not _running(worker) and not _running(server)


# ------------------------------------------------------------------ through collect()


def rss(url: str, name: str) -> SourceSpec:
    return SourceSpec(name=name, kind="rss", language="en", url=url)


def test_postprocess_runs_in_a_worker_and_keeps_its_state(server: LoopbackServer) -> None:
    specs = [
        rss(server.route(f"/f{i}", Reply(body=FEED, content_type=RSS)), f"s{i}") for i in range(5)
    ]
    specs.append(rss(server.route("/bad", Reply(500)), "bad"))
    outcomes = collect(specs, {}, fast_settings(parse_workers=1), postprocess=jobs.Counting())
    tagged = [o for o in outcomes if isinstance(o, jobs.Tagged)]
    assert [o.source for o in tagged] == [f"s{i}" for i in range(5)]
    assert {o.tag for o in tagged} == {"4 items"}
    # One worker, one unpickled step: its state carried from source to source.
    assert sorted(o.calls for o in tagged) == [1, 2, 3, 4, 5]
    assert outcomes[-1].state == "failed" and not isinstance(outcomes[-1], jobs.Tagged)


def test_one_step_per_worker_when_kinds_parse_differently(server: LoopbackServer) -> None:
    """An RSS answer is parsed and post-processed in one call; a page's outcome is built in the
    refresh process and post-processed alone. Both use one unpickled step per worker, so the
    step's state (a compiled matcher) is built once per worker, not once per way of calling."""
    specs = [
        rss(server.route(f"/f{i}", Reply(body=FEED, content_type=RSS)), f"s{i}") for i in range(3)
    ]
    page = "<html><body><p>Flights from Tabriz to Baku</p></body></html>"
    specs += [
        SourceSpec(
            name=f"p{i}",
            kind="page",
            language="en",
            url=server.route(f"/p{i}", Reply(body=page, content_type="text/html")),
            options={"commitment": "tabriz-baku-flight"},
        )
        for i in range(2)
    ]
    outcomes = collect(specs, {}, fast_settings(parse_workers=1), postprocess=jobs.Counting())
    tagged = [o for o in outcomes if isinstance(o, jobs.Tagged)]
    assert [o.source for o in tagged] == ["s0", "s1", "s2", "p0", "p1"]
    assert sorted(o.calls for o in tagged) == [1, 2, 3, 4, 5]


def test_workers_are_started_once_and_reused_across_sources(server: LoopbackServer) -> None:
    specs = [
        rss(server.route(f"/f{i}", Reply(body=FEED, content_type=RSS)), f"s{i}") for i in range(12)
    ]
    outcomes = collect(specs, {}, fast_settings(parse_workers=2), postprocess=jobs.with_pid)
    pids = {o.tag for o in outcomes if isinstance(o, jobs.Tagged)}
    assert len(outcomes) == 12 and all(isinstance(o, jobs.Tagged) for o in outcomes)
    assert 1 <= len(pids) <= 2  # never a process per source
    assert str(os.getpid()) not in pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_no_worker_starts_when_nothing_needs_parsing(server: LoopbackServer) -> None:
    url = server.route("/rss", Reply(304, content_type=None))
    children: list[list[int]] = []
    (outcome,) = collect(
        [rss(url, "same")],
        {"same": Validators(etag='"v"')},
        fast_settings(),
        on_outcome=lambda _: children.append(_children(os.getpid())),  # while the run is open
    )
    assert outcome.state == "unchanged"
    assert children == [[]]


def test_cpu_bomb_in_one_source_fails_it_alone_at_the_parse_limit(server: LoopbackServer) -> None:
    specs = [
        rss(server.route(f"/f{i}", Reply(body=FEED, content_type=RSS)), f"s{i}") for i in range(8)
    ]
    settings = fast_settings(parse_timeout=1.0, parse_workers=2, source_deadline=30.0)
    started = time.monotonic()
    outcomes = collect(specs, {}, settings, postprocess=functools.partial(jobs.bomb_for, "s3"))
    elapsed = time.monotonic() - started
    assert outcomes[3].state == "failed"
    assert outcomes[3].reason == "parsing took longer than 1.0 s"
    assert 1.0 <= outcomes[3].elapsed < 10
    assert [o.state for i, o in enumerate(outcomes) if i != 3] == ["ok"] * 7
    assert elapsed < 15


def test_cpu_bomb_is_stopped_by_the_source_deadline_too(server: LoopbackServer) -> None:
    specs = [
        rss(server.route(f"/f{i}", Reply(body=FEED, content_type=RSS)), f"s{i}") for i in range(3)
    ]
    settings = fast_settings(parse_timeout=60.0, source_deadline=2.0)
    outcomes = collect(specs, {}, settings, postprocess=functools.partial(jobs.bomb_for, "s0"))
    assert outcomes[0].reason == "source took longer than 2 s in all"
    assert 2.0 <= outcomes[0].elapsed < 10
    assert [o.state for o in outcomes[1:]] == ["ok", "ok"]


_QUIET = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from scrapers import HttpSettings, SourceSpec, collect
    from tests import worker_jobs

    names = ["dies", "spins", "hogs", "fine-1", "fine-2"]
    specs = [SourceSpec(name=n, kind="rss", language="en", url=sys.argv[2]) for n in names]
    settings = HttpSettings(parse_timeout=1.0, parse_memory=64 * 1024 * 1024)
    outcomes = collect(specs, {}, settings, postprocess=worker_jobs.misbehave)
    print(json.dumps({o.source: o.reason or o.state for o in outcomes}))
    """
)


def test_misbehaving_workers_print_nothing(server: LoopbackServer) -> None:
    """A run in its own process: worker deaths, kills and retirements leave stderr empty."""
    url = server.route("/rss", Reply(body=FEED, content_type=RSS))
    proc = subprocess.run(
        [sys.executable, "-c", _QUIET, str(ROOT), url], capture_output=True, text=True, timeout=60
    )
    assert proc.stderr == ""
    assert json.loads(proc.stdout) == {
        "dies": "parser process died (SIGKILL)",
        "spins": "parsing took longer than 1.0 s",
        "hogs": "parsing needed more than 64 MB of memory",
        "fine-1": "ok",
        "fine-2": "ok",
    }


# ------------------------------------------------------------------ the worker never outlives us

_ORPHAN = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[1])
    from scrapers.http import HttpSettings, open_session
    from tests import worker_jobs

    async def main():
        async with open_session(HttpSettings(parse_timeout=600)) as session:
            print("parsing", flush=True)
            await session.parse(worker_jobs.spin)

    asyncio.run(main())
    """
)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process has ended
        return found
    for task in tasks:
        try:
            text = (task / "children").read_text().split()
        except OSError:  # a thread that ended meanwhile
            continue
        found += [int(child) for child in text]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_worker_dies_with_a_killed_refresh() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(ROOT)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "parsing"
        deadline = time.monotonic() + 20
        workers: list[int] = []
        # The fork server and the worker it forked (its child, so the refresh's grandchild).
        while len(workers) < 2 and time.monotonic() < deadline:
            servers = _children(proc.pid)
            workers = servers + [w for s in servers for w in _children(s)]
            time.sleep(0.05)
        assert len(workers) == 2, "no worker process started"
        time.sleep(0.5)  # let the worker reach the endless loop
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    alive = list(workers)
    while alive and time.monotonic() < deadline:
        alive = [w for w in alive if _running(w)]
        time.sleep(0.05)
    assert not alive, f"worker(s) {alive} outlived the killed parent"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


HTTPX_ORDER = """
import json, os, sys
from pathlib import Path

children_at_httpx: list[int] = []


class WatchHttpx:
    # Called when httpx is first imported: how many processes has this one started by then?
    def find_spec(self, name, path=None, target=None):
        if name == "httpx" and not children_at_httpx:
            pid = os.getpid()
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            children_at_httpx.append(len(kids))
        return None


sys.meta_path.insert(0, WatchHttpx())
from scrapers import HttpSettings, SourceSpec, collect

spec = SourceSpec(name="fresh", kind="rss", language="en", url=sys.argv[1])
(outcome,) = collect([spec], {}, HttpSettings(max_retries=0))
print(json.dumps({"state": outcome.state, "children": children_at_httpx}))
"""


def test_parsers_start_before_the_http_client_is_imported(server: LoopbackServer) -> None:
    # A fresh source will be parsed: its parser process starts up while the refresh process
    # imports httpx (~50 ms), not after.
    url = server.route("/rss", Reply(body=FEED, content_type=RSS))
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", HTTPX_ORDER, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"state": "ok", "children": [1]}
