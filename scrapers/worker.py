"""Parsing in worker processes, so that no input can hold a refresh beyond its deadlines.

A thread cannot be stopped, and a pattern that backtracks for hours or a document that expands
to gigabytes holds the event loop (or the GIL) for as long as it likes. A process can be killed.
So every parse of untrusted bytes runs in a small pool of persistent worker processes, started
once per run and reused across sources:

- a call that outlives its time limit, or whose caller is cancelled (the source deadline), kills
  its worker; a fresh one serves the next call, so one source fails alone;
- a worker's address space is capped (RLIMIT_AS): a memory bomb ends as MemoryError (or the
  worker's death) inside the worker, never in the refresh process;
- every failure comes back as a SourceError with a one-line reason, never a traceback;
- parsing overlaps network I/O: the event loop keeps downloading while workers parse.

Workers are forks of one fork server per pool (scrapers/serve.py), a plain `python -I` subprocess:
no fork of the refresh process, which may run threads (the daemon), and no re-import of the
caller's `__main__`. It gets the parent's `sys.path`, so it sees the same code the parent runs,
and it compiles the run's post-processing step (the catalog's matcher) once for every worker, so
a worker, first or replacement, starts in milliseconds with the matcher built. A callable is
pickled once per pool and sent once per process (later calls name it by digest), so changes made
to it after its first call are not seen by the workers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import signal
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import msgspec

from scrapers.errors import SourceError, one_line
from scrapers.serve import (
    DONE,
    FORK,
    FUNC_CACHE_SIZE,
    HEADER,
    KNOWN,
    NEW,
    PID,
    PREPARE,
    READY,
    REAP,
    Launched,
    describe_mb,
    launch,
    take_early,
)

if TYPE_CHECKING:
    from scrapers.limits import HttpSettings

__all__ = ["WorkerPool", "parser_pool"]

_START_TIMEOUT = 60.0  # a cold interpreter on a busy machine; never reached in practice
_REAP_TIMEOUT = 5.0  # a SIGKILLed process is gone at once; never wait on it longer than this
# Callables pickled once per pool (a step carrying the catalog's rules is not re-pickled for every
# source); kept by identity, with the callable itself so that the identity stays its own.
_PICKLED_KEPT = 16


# ----------------------------------------------------------------------------- the parent side


class _Known:
    """The digests of the callables a process holds, oldest first: scrapers/serve.py keeps the
    same list by the same rule, so a callable is sent whole exactly when the process lacks it."""

    def __init__(self, digests: dict[bytes, None] | None = None) -> None:
        self.digests: dict[bytes, None] = dict(digests or {})

    def func_frame(self, digest: bytes, blob: bytes) -> bytes:
        if digest in self.digests:
            return KNOWN + digest
        if len(self.digests) >= FUNC_CACHE_SIZE:
            del self.digests[next(iter(self.digests))]
        self.digests[digest] = None
        return NEW + digest + blob


def _death_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"parser process died ({name})"
    return "parser process died"


class _Zygote:
    """The pool's fork server (scrapers/serve.py): one process, one request at a time."""

    def __init__(self, launched: Launched) -> None:
        self.process = launched.process
        self.control = launched.control
        self.control.setblocking(False)
        self.known = _Known()
        self.dead = False
        self._lock = asyncio.Lock()
        self._unread = bytearray()

    @classmethod
    async def start(cls, warm: tuple[bytes, bytes] | None) -> _Zygote:
        """The server `launch_early` started if it is still there, else a new one; built with
        `warm` (digest, pickle), if given, before it forks any worker."""
        early = take_early()
        if early is not None:
            with contextlib.suppress(SourceError):
                return await cls._ready(early, warm)
        try:
            launched = launch()
        except OSError as exc:
            raise SourceError(f"could not start a parser process: {exc}") from None
        return await cls._ready(launched, warm)

    @classmethod
    async def _ready(cls, launched: Launched, warm: tuple[bytes, bytes] | None) -> _Zygote:
        zygote = cls(launched)
        try:
            async with zygote._lock, asyncio.timeout(_START_TIMEOUT):
                if warm is not None:
                    # Sent before the server is ready: it finds the step waiting as soon as it
                    # has imported what parsing needs, and builds it while we go on.
                    frame = zygote.known.func_frame(*warm)
                    await zygote._send(PREPARE + frame)
                if await zygote._answer() != READY:
                    raise SourceError("could not start a parser process")
                if warm is not None:
                    # Whether it built or failed, the server keeps it as sent (a worker that is
                    # called with it reports the failure), as our mirror does.
                    await zygote._answer()
        except BaseException:
            await zygote.close()
            raise
        return zygote

    async def _send(self, body: bytes, fd: int | None = None) -> None:
        frame = HEADER.pack(len(body)) + body
        try:
            if fd is None:
                await asyncio.get_running_loop().sock_sendall(self.control, frame)
            else:
                # A few bytes into a socket that holds nothing (one request at a time, and the
                # server has answered the last): sent at once, never blocking.
                socket.send_fds(self.control, [frame], [fd])
        except OSError:
            self.dead = True
            raise SourceError("parser processes ended unexpectedly") from None

    async def _answer(self) -> bytes:
        """The next answer; what arrived after it (the server answers a request sent before it
        was ready right after its READY) stays for the next call."""
        loop = asyncio.get_running_loop()
        while (frame := _take_frame(self._unread)) is None:
            try:
                chunk = await loop.sock_recv(self.control, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.dead = True
                raise SourceError("parser processes ended unexpectedly")
            self._unread += chunk
        return frame

    async def _request(self, body: bytes, fd: int | None = None) -> bytes:
        """Send one request and return its answer (shielded by the callers: a request broken
        off halfway would leave the channel out of step)."""
        if self.dead:
            raise SourceError("parser processes ended unexpectedly")
        async with self._lock:
            await self._send(body, fd)
            return await self._answer()

    async def fork(self, memory: int) -> _Worker:
        """A new worker, forked from the server with what it has prepared; its address space
        is capped at `memory` bytes above what it holds when forked."""
        forking = asyncio.ensure_future(self._fork(memory))
        try:
            # Shielded: a request broken off halfway would leave the channel out of step.
            pid, ours = await asyncio.shield(forking)
        except asyncio.CancelledError:
            forking.add_done_callback(_hang_up)
            raise
        try:
            _, channel = await asyncio.get_running_loop().create_unix_connection(
                _Channel, sock=ours
            )
        except BaseException:
            ours.close()  # the worker reads the end of its channel and exits
            raise
        return _Worker(pid, channel, self)

    async def _fork(self, memory: int) -> tuple[int, socket.socket]:
        ours, theirs = socket.socketpair()
        try:
            try:
                answer = await self._request(FORK + PID.pack(memory), theirs.fileno())
            finally:
                theirs.close()  # the server holds its own copy now; the worker, after it
            if answer[:1] != DONE:
                raise SourceError(f"could not start a parser process: {answer[1:].decode()}")
        except BaseException:
            ours.close()
            raise
        (pid,) = PID.unpack(answer[1:])
        return pid, ours

    async def reap(self, pid: int) -> int | None:
        """The exit code (negative: the signal) of a worker we killed; None if unknown."""
        if self.dead:
            return None
        try:
            async with asyncio.timeout(_REAP_TIMEOUT):
                answer = await asyncio.shield(self._request(REAP + PID.pack(pid)))
        except TimeoutError:
            await self.close()  # a server stuck in a wait serves no one: end it and its workers
            return None
        except SourceError:
            return None
        (status,) = PID.unpack(answer[1:])
        return None if status < 0 else os.waitstatus_to_exitcode(status)

    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None

    async def close(self) -> None:
        """End the server: it kills and reaps the workers it still has, then exits."""
        self.dead = True
        with contextlib.suppress(OSError):
            self.control.close()
        # It exits within milliseconds of its channel's end; a child watcher thread for so
        # short a wait would cost more than looking now and then.
        deadline = asyncio.get_running_loop().time() + _REAP_TIMEOUT
        while self.process.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                self.process.kill()
                self.process.wait()
                break
            await asyncio.sleep(0.002)


def _take_frame(data: bytearray) -> bytes | None:
    """The first whole length-prefixed frame in `data`, taken off it; None until it has all
    arrived (what follows it stays in `data`)."""
    if len(data) < HEADER.size:
        return None
    (size,) = HEADER.unpack_from(data)
    if len(data) < HEADER.size + size:
        return None
    frame = bytes(data[HEADER.size : HEADER.size + size])
    del data[: HEADER.size + size]
    return frame


def _hang_up(forking: asyncio.Future[tuple[int, socket.socket]]) -> None:
    """A worker forked for a caller that has gone: closing its channel ends it."""
    if not forking.cancelled() and forking.exception() is None:
        forking.result()[1].close()


class _Channel(asyncio.Protocol):
    """The refresh's end of a worker's channel. An answer is taken from the socket and handed
    over in the event loop's own I/O callback (`data_received`): the pool can give the worker
    its next call at once, instead of after the waiting task's next turn, which comes only after
    every other callback due (downloads, a batch being stored) has run."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._data = bytearray()
        self._limit = 0
        # The call in progress: its answer (the unpickled tuple), and what to run with it first.
        self._waiter: asyncio.Future[tuple[Any, ...]] | None = None
        self._then: Callable[[tuple[Any, ...]], None] | None = None
        self._broken = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def expect(
        self, limit: int, then: Callable[[tuple[Any, ...]], None]
    ) -> asyncio.Future[tuple[Any, ...]]:
        """The answer to the call about to be sent (at most `limit` bytes); `then` runs with it
        as it arrives, before the caller's task sees it."""
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self._limit = limit
        self._then = then
        if self._broken:  # the worker is gone already
            self._fail(ConnectionResetError())
        return waiter

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        self._data += data
        if len(self._data) >= HEADER.size and HEADER.unpack_from(self._data)[0] > self._limit:
            self._broken = True  # the caller kills the worker; nothing more is read
            self._fail(SourceError(f"parser answer larger than {describe_mb(self._limit)}"))
            return
        payload = _take_frame(self._data)
        if payload is None:
            return
        waiter, then = self._waiter, self._then
        self._waiter = self._then = None
        if waiter is None or waiter.done():
            return  # its caller has gone: the pool kills this worker (see WorkerPool.run)
        import pickle

        try:
            answer = pickle.loads(payload)
        except Exception as exc:
            detail = one_line(f"{type(exc).__name__}: {exc}")
            waiter.set_exception(SourceError(f"internal error: unreadable parser answer: {detail}"))
            return
        if not isinstance(answer, tuple) or not answer:
            waiter.set_exception(SourceError("internal error: unreadable parser answer"))
            return
        waiter.set_result(answer)
        if then is not None:
            then(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._broken = True
        self._fail(ConnectionResetError())

    def _fail(self, error: BaseException) -> None:
        waiter, self._waiter, self._then = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class _Worker:
    def __init__(self, pid: int, channel: _Channel, zygote: _Zygote) -> None:
        self.pid = pid
        self.channel = channel
        assert channel.transport is not None
        self.transport = channel.transport
        self.zygote = zygote
        # What the server held when it forked this worker, the worker holds too.
        self.known = _Known(zygote.known.digests)
        self.returncode: int | None = None
        self._killed = False
        # A handle on this very process where the system has them (Linux): a signal sent
        # through it can never reach another process, whatever happens to the server.
        self._pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(pid)

    def send(self, work: _Work) -> None:
        """Write a call to the worker (its answer comes through `channel`)."""
        pickled, args_blob = work
        func_frame = self.known.func_frame(*pickled)
        # One write (one system call, one wake-up of the worker) for the whole call.
        self.transport.writelines(
            (HEADER.pack(len(func_frame)), func_frame, HEADER.pack(len(args_blob)), args_blob)
        )

    async def answer(self, waiter: asyncio.Future[tuple[Any, ...]]) -> tuple[Any, ...]:
        """The answer `waiter` brings; SourceError saying how the worker ended if it died."""
        try:
            return await waiter
        except ConnectionError:
            # The worker is gone (killed by the kernel, crashed in C): learn how it ended.
            await self.kill()
            raise SourceError(_death_reason(self.returncode)) from None

    def _send_kill(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        elif self.zygote.alive():
            # The server reaps a worker only when we ask (after this), so until then its pid
            # cannot belong to anyone else.
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """Kill the worker and learn how it ended (`returncode`)."""
        if self.abandon():
            self.returncode = await self.zygote.reap(self.pid)

    def abandon(self) -> bool:
        """Kill the worker, leaving it for the server to reap; False if done before."""
        if self._killed:
            return False
        self._killed = True
        self._send_kill()
        self.transport.abort()  # what was unread or unsent is of no use now
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return True


class _StartFailed(msgspec.Struct, frozen=True):
    reason: str


# A call as it goes to a worker: the callable's (digest, pickle) and the pickled arguments.
_Work: TypeAlias = tuple[tuple[bytes, bytes], bytes]
# A call's answer, as the worker's channel delivers it.
_Answer: TypeAlias = asyncio.Future[tuple[Any, ...]]
# What a waiting call is handed: a worker with its call already written to it, or the reason no
# worker could start.
_Given: TypeAlias = tuple[_Worker, _Answer] | _StartFailed


class WorkerPool:
    """Up to `size` persistent worker processes; `run` sends one call to an idle one.

    Workers start when work arrives (a run where every source answers 304 starts none), or at
    once with `prestart` when the caller knows there will be work. A second one starts only
    when a call has waited `grow_after` seconds for the first: parsing a feed takes
    milliseconds, so one worker keeps up with the network, and a second one competes with the
    refresh for the CPU; but a hostile input that holds a worker until its time limit must not
    hold up every other source. `warm`, if given, is the callable most calls will send (the
    run's post-processing step): the fork server builds it once, before the first worker.

    Create it inside the event loop that will use it; `aclose` ends every worker.
    """

    def __init__(
        self,
        size: int,
        *,
        memory: int,
        answer_limit: int,
        grow_after: float = 0.5,
        warm: Callable[..., Any] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("WorkerPool needs at least one worker")
        self._size = size
        self._memory = memory
        self._answer_limit = answer_limit
        self._grow_after = grow_after
        # Idle workers (and start failures to report), and the calls waiting for one, first
        # come first served: a worker that comes free goes to the longest waiting call, never
        # to a call that arrived later (see `_take`).
        self._idle: collections.deque[_Worker | _StartFailed] = collections.deque()
        self._waiting: collections.deque[tuple[asyncio.Future[_Given], _Work]] = collections.deque()
        self._count = 0  # workers alive or starting
        self._busy: set[_Worker] = set()
        self._starting: set[asyncio.Task[_Worker]] = set()
        self._closed = False
        self._pickles: dict[int, tuple[Callable[..., Any], tuple[bytes, bytes]]] = {}
        # The callable the run's calls will send (the post-processing step): the fork server
        # builds it before it forks the first worker, so that no worker builds it again.
        self.warm = warm
        self._zygote: _Zygote | None = None
        self._zygote_lock = asyncio.Lock()

    def prestart(self, workers: int = 1) -> None:
        """Start up to `workers` workers now (the run will parse), without waiting for them."""
        while self._count < min(workers, self._size) and not self._closed:
            self._grow()

    def _grow(self) -> None:
        self._count += 1
        task = asyncio.get_running_loop().create_task(self._start())
        self._starting.add(task)
        task.add_done_callback(self._started)

    async def _start(self) -> _Worker:
        async with self._zygote_lock:
            zygote = self._zygote
            if zygote is None or not zygote.alive():
                if zygote is not None:  # killed from outside: its workers died with it
                    await zygote.close()
                warm = None
                if self.warm is not None:
                    with contextlib.suppress(Exception):  # unpicklable: each call reports it
                        warm = self._pickled(self.warm)
                zygote = self._zygote = await _Zygote.start(warm)
        return await zygote.fork(self._memory)

    def _started(self, task: asyncio.Task[_Worker]) -> None:
        self._starting.discard(task)
        if task.cancelled():
            self._count -= 1
            return
        error = task.exception()
        if error is None:
            self._release(task.result())
            return
        self._count -= 1
        reason = error.reason if isinstance(error, SourceError) else "could not start a parser"
        self._release(_StartFailed(reason))

    def _release(self, got: _Worker | _StartFailed) -> None:
        """Hand a free worker (or a start failure) to the longest waiting call, else keep it.

        The call's work is written to the worker here and now: the waiting task resumes only
        after every callback already due in this turn of the event loop (other downloads, a
        batch being stored), and a worker left without work meanwhile is a core left idle."""
        while self._waiting:
            waiter, work = self._waiting.popleft()
            if waiter.done():
                continue
            if isinstance(got, _StartFailed):
                waiter.set_result(got)
            else:
                waiter.set_result((got, self._hand(got, work)))
            return
        self._idle.append(got)

    def _hand(self, worker: _Worker, work: _Work) -> _Answer:
        """Write `work` to `worker`; its answer will come in the returned future, and the worker,
        unless it retires, goes straight on to the next call (see _Channel)."""

        def answered(answer: tuple[Any, ...]) -> None:
            if answer[0] != "retire":
                self._release(worker)

        waiter = worker.channel.expect(self._answer_limit, answered)
        worker.send(work)
        return waiter

    async def _take(self, work: _Work) -> tuple[_Worker, _Answer]:
        """A worker with `work` written to it, and where its answer will come."""
        got: _Given
        if self._idle and not self._waiting:
            idle = self._idle.popleft()
            got = idle if isinstance(idle, _StartFailed) else (idle, self._hand(idle, work))
        else:
            if not self._idle and self._count == 0:
                self._grow()
            # Queued behind the calls that came first (asyncio.Queue would let a call that
            # arrives as a worker comes free take it, and send the waiting one to the back:
            # with the pool busy, the first source to wait could wait until every other was
            # parsed, and the sources stored after it in the file's order with it). A call
            # that has waited `grow_after` starts another worker and keeps its place.
            waiter: asyncio.Future[_Given] = asyncio.get_running_loop().create_future()
            self._waiting.append((waiter, work))
            try:
                while not (await asyncio.wait({waiter}, timeout=self._grow_after))[0]:
                    if self._count < self._size:
                        self._grow()
            except BaseException:
                if not waiter.done():
                    waiter.cancel()
                elif not waiter.cancelled():  # given to us as we were cancelled
                    given = waiter.result()
                    if isinstance(given, _StartFailed):
                        self._release(given)
                    else:
                        # Our call is on its way to the worker, and nobody will take its
                        # answer: the worker would go idle only once it came. Only killing it
                        # is safe (and frees its place at once), unless it has answered
                        # already and gone on to another call.
                        worker, answer = given
                        answer.cancel()
                        if not _went_on(answer):
                            self._count -= 1
                            worker.abandon()
                raise
            got = waiter.result()
        if isinstance(got, _StartFailed):
            raise SourceError(got.reason)
        return got

    async def _retire(self, worker: _Worker) -> None:
        self._count -= 1
        await asyncio.shield(worker.kill())

    async def run(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        time_limit: float,
        too_slow: str,
    ) -> Any:
        """`func(*args, **kwargs)` in a worker; SourceError(`too_slow`) after `time_limit` s."""
        if self._closed:
            raise SourceError("internal error: the parser pool is closed")
        import pickle  # here, not at the top: a run where every feed answers 304 never loads it

        try:
            pickled = self._pickled(func)
            args_blob = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            detail = one_line(f"{type(exc).__name__}: {exc}")
            raise SourceError(
                f"internal error: cannot send work to a parser process: {detail}"
            ) from None
        # Waiting for a free worker and starting one are not the input's fault: the limit
        # starts once the call is handed over (the source deadline still covers it all).
        worker, answered = await self._take((pickled, args_blob))
        self._busy.add(worker)
        try:
            async with asyncio.timeout(time_limit):
                answer = await worker.answer(answered)
        except TimeoutError:
            if not _arrived(answered):
                await self._retire(worker)
                raise SourceError(too_slow) from None
            answer = answered.result()  # it came as the limit struck (and the worker went on)
        except BaseException:
            # Cancelled mid-call (the source deadline) or the channel broke: the worker may
            # still be busy with our call, and nobody would take its answer. Only killing it is
            # safe. (An answer that came as we were cancelled has let the worker go on.)
            if not _went_on(answered):
                await self._retire(worker)
            raise
        finally:
            self._busy.discard(worker)
        if answer[0] == "retire":
            await self._retire(worker)  # it is exiting anyway; reap it now
        return _unpack(answer)

    def _pickled(self, func: Callable[..., Any]) -> tuple[bytes, bytes]:
        """(digest, pickle) of `func`, made once while the pool keeps it."""
        kept = self._pickles.get(id(func))
        if kept is not None and kept[0] is func:
            return kept[1]
        import pickle

        blob = pickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
        made = (hashlib.sha256(blob).digest(), blob)
        if len(self._pickles) >= _PICKLED_KEPT:
            del self._pickles[next(iter(self._pickles))]
        self._pickles[id(func)] = (func, made)
        return made

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._starting):
            task.cancel()
        workers = list(self._busy)
        while self._idle:
            got = self._idle.popleft()
            if isinstance(got, _Worker):
                workers.append(got)
        for task in list(self._starting):
            with contextlib.suppress(BaseException):
                workers.append(await task)
        for worker in workers:
            worker.abandon()
        if self._zygote is not None:
            await self._zygote.close()  # it kills and reaps the workers it still has


def _arrived(answered: _Answer) -> bool:
    """Whether the answer came (rather than the worker's end); reading its outcome also tells
    asyncio that an error in it was seen."""
    return answered.done() and not answered.cancelled() and answered.exception() is None


def _went_on(answered: _Answer) -> bool:
    """Whether the answer came and the worker went on to serve the pool (it retires instead
    after a "retire" answer: its memory ran out)."""
    return _arrived(answered) and answered.result()[0] != "retire"


def _unpack(answer: tuple[Any, ...]) -> Any:
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "source_error":
        _, reason, http_status, retry_after = answer
        raise SourceError(reason, http_status=http_status, retry_after=retry_after)
    raise SourceError(str(answer[1]))


def parser_pool(settings: HttpSettings, warm: Callable[..., Any] | None = None) -> WorkerPool:
    """The parser processes of one run, as `settings` asks; `warm`: see WorkerPool."""
    # A parse turns at most one capped body into items; four times the cap leaves room for
    # text that grows when decoded, and stops a runaway answer from filling our memory.
    return WorkerPool(
        settings.parse_workers,
        memory=settings.parse_memory,
        answer_limit=4 * settings.max_body_bytes + 1024 * 1024,
        warm=warm,
    )
