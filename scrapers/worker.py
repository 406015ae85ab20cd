"""Parsing in worker processes, so that no input can hold a refresh beyond its deadlines.

A thread cannot be stopped, and a pattern that backtracks for hours or a document that expands
to gigabytes holds the event loop (or the GIL) for as long as it likes. A process can be killed.
So every parse of untrusted bytes runs in a small pool of persistent worker processes, started
once per run and reused across sources (a fresh interpreter costs ~0.3 s of CPU, far more than
parsing one feed):

- a call that outlives its time limit, or whose caller is cancelled (the source deadline), kills
  its worker; a fresh one serves the next call, so one source fails alone;
- a worker's address space is capped (RLIMIT_AS): a memory bomb ends as MemoryError (or the
  worker's death) inside the worker, never in the refresh process;
- every failure comes back as a SourceError with a one-line reason, never a traceback;
- parsing overlaps network I/O: the event loop keeps downloading while workers parse.

Workers are plain `python -I` subprocesses speaking length-prefixed pickles over stdin/stdout:
no fork of a process that may run threads (the daemon), no re-import of the caller's `__main__`.
They get the parent's `sys.path`, so they see the same code the parent runs. Their side of the
channel is scrapers/serve.py, which imports only what parsing needs. A callable is pickled once
per pool and sent once per worker (later calls name it by digest), so changes made to it after
its first call are not seen by the workers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from scrapers.errors import SourceError, one_line
from scrapers.serve import FUNC_CACHE_SIZE, HEADER, KNOWN, NEW, READY, describe_mb, serve

if TYPE_CHECKING:
    from scrapers.limits import HttpSettings

__all__ = ["WorkerPool", "parser_pool", "serve"]

_HEADER = HEADER
_READY = READY
_describe_mb = describe_mb
_START_TIMEOUT = 60.0  # a cold interpreter on a busy machine; never reached in practice
_REAP_TIMEOUT = 5.0  # a SIGKILLed process is gone at once; never wait on it longer than this
# Callables pickled once per pool (a step carrying the catalog's rules is not re-pickled for every
# source); kept by identity, with the callable itself so that the identity stays its own.
_PICKLED_KEPT = 16
# Bootstrap run with -I (no cwd, no user site, no PYTHON* variables on sys.path): a file such as
# json.py in the user's directory must not be imported. The parent's sys.path follows.
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); import scrapers.serve as w; "
    "w.serve(int(sys.argv[2]), int(sys.argv[3]))"
)


# ----------------------------------------------------------------------------- the parent side


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        # Digests of the callables this process holds, oldest first (scrapers/serve.py keeps
        # the same list by the same rule).
        self.known: dict[bytes, None] = {}

    def func_frame(self, digest: bytes, blob: bytes) -> bytes:
        if digest in self.known:
            return KNOWN + digest
        if len(self.known) >= FUNC_CACHE_SIZE:
            del self.known[next(iter(self.known))]
        self.known[digest] = None
        return NEW + digest + blob

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.process.stdin is not None
        return self.process.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.process.stdout is not None
        return self.process.stdout

    @classmethod
    async def start(cls, memory: int) -> _Worker:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                _BOOT,
                json.dumps(sys.path),
                str(memory),
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise SourceError(f"could not start a parser process: {exc}") from None
        worker = cls(process)
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                ready = await worker._receive(len(_READY))
        except BaseException:
            await worker.kill()
            raise
        if ready != _READY:
            await worker.kill()
            raise SourceError("could not start a parser process")
        return worker

    async def _receive(self, limit: int) -> bytes:
        try:
            header = await self.stdout.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > limit:
                raise SourceError(f"parser answer larger than {_describe_mb(limit)}")
            return await self.stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The worker is gone (killed by the kernel, crashed in C): wait for its signal.
            await self.kill()
            raise SourceError(self._death_reason()) from None

    def _death_reason(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"parser process died ({name})"
        return "parser process died"

    async def call(
        self, pickled: tuple[bytes, bytes], args_blob: bytes, answer_limit: int
    ) -> tuple[Any, ...]:
        func_frame = self.func_frame(*pickled)
        try:
            # One write (one system call, one wake-up of the worker) for the whole call.
            self.stdin.writelines(
                (_HEADER.pack(len(func_frame)), func_frame, _HEADER.pack(len(args_blob)), args_blob)
            )
            await self.stdin.drain()
        except ConnectionError:
            await self.kill()
            raise SourceError(self._death_reason()) from None
        payload = await self._receive(answer_limit)
        import pickle

        answer = pickle.loads(payload)
        assert isinstance(answer, tuple)
        return answer

    def _send_kill(self) -> None:
        # Not Process.kill(): it polls the process first (subprocess.Popen.send_signal), which
        # may reap a worker that has just died before asyncio's child watcher does; asyncio then
        # reports exit code 255 and logs a warning on stderr. Until the watcher has reaped it,
        # the pid cannot belong to anyone else, so a plain kill(2) is safe.
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    async def kill(self) -> None:
        self._send_kill()
        # Closing our end of the pipe before waiting keeps asyncio from warning about an
        # unclosed transport when the loop ends.
        with contextlib.suppress(Exception):
            self.stdin.close()
        # asyncio reports the exit only once the output pipe is closed, and it stops reading a
        # pipe whose unread data exceeds its buffer (an answer we refused as too large): read
        # what the dead worker left (at most a pipe's worth) so the pipe can reach its end.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_REAP_TIMEOUT):
                while await self.stdout.read(1 << 16):
                    pass
                await self.process.wait()


class _StartFailed(msgspec.Struct, frozen=True):
    reason: str


class WorkerPool:
    """Up to `size` persistent worker processes; `run` sends one call to an idle one.

    Workers start when work arrives (a run where every source answers 304 starts none), or at
    once with `prestart` when the caller knows there will be work. A second one starts only when a call has waited `grow_after` seconds for the first: parsing a
    feed takes milliseconds, so one worker keeps up with the network, and a fresh interpreter
    (~0.3 s of CPU) would cost more than it saves; but a hostile input that holds a worker until
    its time limit must not hold up every other source.

    Create it inside the event loop that will use it; `aclose` ends every worker.
    """

    def __init__(
        self, size: int, *, memory: int, answer_limit: int, grow_after: float = 0.5
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
        self._waiting: collections.deque[asyncio.Future[_Worker | _StartFailed]] = (
            collections.deque()
        )
        self._count = 0  # workers alive or starting
        self._busy: set[_Worker] = set()
        self._starting: set[asyncio.Task[_Worker]] = set()
        self._closed = False
        self._pickles: dict[int, tuple[Callable[..., Any], tuple[bytes, bytes]]] = {}

    def prestart(self, workers: int = 1) -> None:
        """Start up to `workers` workers now (the run will parse), without waiting for them."""
        while self._count < min(workers, self._size) and not self._closed:
            self._grow()

    def _grow(self) -> None:
        self._count += 1
        task = asyncio.get_running_loop().create_task(_Worker.start(self._memory))
        self._starting.add(task)
        task.add_done_callback(self._started)

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
        """Hand a free worker (or a start failure) to the longest waiting call, else keep it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(got)
                return
        self._idle.append(got)

    async def _take(self) -> _Worker:
        if self._idle and not self._waiting:
            got = self._idle.popleft()
        else:
            if not self._idle and self._count == 0:
                self._grow()
            # Queued behind the calls that came first (asyncio.Queue would let a call that
            # arrives as a worker comes free take it, and send the waiting one to the back:
            # with the pool busy, the first source to wait could wait until every other was
            # parsed, and the sources stored after it in the file's order with it). A call
            # that has waited `grow_after` starts another worker and keeps its place.
            waiter: asyncio.Future[_Worker | _StartFailed] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting.append(waiter)
            try:
                while not (await asyncio.wait({waiter}, timeout=self._grow_after))[0]:
                    if self._count < self._size:
                        self._grow()
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release(waiter.result())  # given to us as we were cancelled
                else:
                    waiter.cancel()
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
        worker = await self._take()
        self._busy.add(worker)
        try:
            async with asyncio.timeout(time_limit):
                answer = await worker.call(pickled, args_blob, self._answer_limit)
        except TimeoutError:
            await self._retire(worker)
            raise SourceError(too_slow) from None
        except BaseException:
            # Cancelled mid-call (the source deadline) or the channel broke: the worker may
            # still be busy with our call, and its late answer would desynchronise the channel.
            # Only killing it is safe.
            await self._retire(worker)
            raise
        finally:
            self._busy.discard(worker)
        if answer[0] == "retire":
            await self._retire(worker)  # it is exiting anyway; reap it now
        else:
            self._release(worker)
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
            await worker.kill()


def _unpack(answer: tuple[Any, ...]) -> Any:
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "source_error":
        _, reason, http_status, retry_after = answer
        raise SourceError(reason, http_status=http_status, retry_after=retry_after)
    raise SourceError(str(answer[1]))


def parser_pool(settings: HttpSettings) -> WorkerPool:
    """The parser processes of one run, as `settings` asks."""
    # A parse turns at most one capped body into items; four times the cap leaves room for
    # text that grows when decoded, and stops a runaway answer from filling our memory.
    return WorkerPool(
        settings.parse_workers,
        memory=settings.parse_memory,
        answer_limit=4 * settings.max_body_bytes + 1024 * 1024,
    )
