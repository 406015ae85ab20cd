"""The parser processes' side of scrapers/worker.py: a fork server, and the workers it forks.

Kept apart from the parent's side (asyncio) so that these processes import only what parsing
needs: every millisecond of their start-up is a millisecond before the first feed is parsed.
`launch` and `launch_early`, which start the fork server, are here too, so that a command can start
it before it has imported anything else.

The refresh starts one process, the fork server (`zygote`). It imports what parsing needs, and,
when told to, unpickles the run's post-processing step and compiles it (the catalog's matcher,
~0.1 s): once, however many workers follow. Each worker is then a fork of it, which starts in a
few milliseconds with the matcher already built, instead of a fresh interpreter (~0.1 s) that
builds the matcher again. The fork server never touches a stranger's bytes: only workers parse,
so killing a worker for a hostile input leaves the fork server, and every other worker, as it was.

The fork server's channel is a Unix socket on its stdin; requests and answers are length-prefixed
frames, one answer per request:
- `P` and a callable's frame (below): unpickle and prepare it; the workers forked after it have it;
- `F`, with one file descriptor passed along (SCM_RIGHTS): fork a worker whose channel is that
  socket; the answer is its pid;
- `R` and a pid: reap that worker (the refresh has killed it) and answer its wait status. Workers
  are reaped only when asked, so a worker's pid cannot go to another process before the refresh
  has sent its last signal to it.

A worker's channel: each call is two length-prefixed frames, the callable and its pickled
arguments; each answer one frame, a pickled tuple. A callable is sent whole once (`+` digest
pickle) and then named by its digest (`=` digest): a post-processing step that carries the
catalog's rules crosses the pipe once per process, not once per source. Both sides keep the last
`FUNC_CACHE_SIZE` callables and forget the oldest first, so they always agree on what is known.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from scrapers.errors import SourceError, one_line

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "BOOT",
    "DONE",
    "FAILED",
    "FORK",
    "FUNC_CACHE_SIZE",
    "HEADER",
    "KNOWN",
    "NEW",
    "PID",
    "PREPARE",
    "READY",
    "REAP",
    "Launched",
    "describe_mb",
    "launch",
    "launch_early",
    "take_early",
    "zygote",
]

HEADER = struct.Struct(">Q")
PID = struct.Struct(">q")
READY = b"ready"
# The fork server's requests (see the module's doc) and the first byte of its answers.
PREPARE = b"P"
FORK = b"F"
REAP = b"R"
DONE = b"+"
FAILED = b"!"
NEW = b"+"  # a callable's frame: NEW, its digest, its pickle
KNOWN = b"="  # KNOWN and the digest of a callable sent before
DIGEST_SIZE = 32
# Callables kept per process, keyed by digest: a post-processing step that carries compiled state
# (a matcher) is rebuilt once per process instead of once per source.
FUNC_CACHE_SIZE = 8
# What every parse needs, imported before the process says it is ready (so before the clock of
# its first call starts). Fallbacks (feedparser for broken XML) load when first needed.
_PRELOAD = ("lxml.etree", "scrapers.collect", "scrapers.feeds", "scrapers.dates")


# Run with -I (no cwd, no user site, no PYTHON* variables on sys.path): a file such as json.py
# in the user's directory must not be imported. The parent's sys.path follows.
BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); import scrapers.serve as w; "
    "w.zygote(int(sys.argv[2]))"
)
# A fork server launched ahead of need (`launch_early`), for the first pool that needs one.
_early: Launched | None = None


class Launched:
    """A fork server process and our end of its channel (scrapers/worker.py talks to it)."""

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket) -> None:
        self.process = process
        self.control = control


def launch() -> Launched:
    """Start a fork server; it says READY on its channel once it has imported what parsing
    needs. Raises OSError when no process can be started."""
    import json
    import subprocess

    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", BOOT, json.dumps(sys.path), str(os.getpid())],
            stdin=theirs.fileno(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Launched(process, ours)


def launch_early() -> None:
    """Start the fork server of this process's first parser pool now, so that it imports and
    starts up while this process still does (a command that will parse calls this first)."""
    global _early
    if _early is None:
        with contextlib.suppress(OSError):  # the pool will try again, and say what went wrong
            _early = launch()


def take_early() -> Launched | None:
    """The fork server `launch_early` started, once; None if there is none."""
    global _early
    early, _early = _early, None
    return early


def describe_mb(limit: int) -> str:
    megabytes = limit / (1024 * 1024)
    return f"{megabytes:.0f} MB" if megabytes == int(megabytes) else f"{megabytes:.1f} MB"


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    return _read_exactly(stream, size) if size else b""


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _die_with_parent(parent: int) -> None:
    """A worker must never outlive the refresh (a killed parent would leave a CPU bomb running).

    Linux delivers SIGKILL on the parent's death; a pattern match holding the GIL would starve a
    watchdog thread, so the kernel does it. Elsewhere, the end of its channel ends the loop.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _limit_memory(extra: int | None) -> None:
    """Cap the address space at what the worker uses now plus `extra` bytes (None: lift the
    cap, up to the hard limit the process was given)."""
    try:
        import resource
    except ImportError:  # not on this platform: the parent's own limits still apply
        return
    try:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 256 * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if extra is None:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        return
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class _Callables:
    """The callables this process was sent, by digest, unpickled on first use."""

    def __init__(self, memory: int | None) -> None:
        self.memory = memory  # None in the fork server, which parses nothing and has no cap
        self._blobs: dict[bytes, bytes] = {}
        self._loaded: dict[bytes, Callable[..., Any]] = {}

    def take(self, frame: bytes) -> Callable[..., Any]:
        """The callable a frame sends or names (raises what unpickling raises)."""
        digest = frame[1 : 1 + DIGEST_SIZE]
        if frame[:1] == NEW and digest not in self._blobs:
            if len(self._blobs) >= FUNC_CACHE_SIZE:  # as the parent's mirror (worker.py) does
                oldest = next(iter(self._blobs))
                del self._blobs[oldest]
                self._loaded.pop(oldest, None)
            self._blobs[digest] = frame[1 + DIGEST_SIZE :]
        func = self._loaded.get(digest)
        if func is None:
            import pickle

            blob = self._blobs.get(digest)
            if blob is None:
                raise RuntimeError("the parser process was sent an unknown callable")
            func = self._loaded[digest] = self._prepared(pickle.loads(blob))
        return func

    def _prepared(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """A callable with a `prepare` (a post-processing step building its matcher) gets it
        run outside the memory limit, which is then measured afresh from what the process
        holds: what it builds is the caller's data; the limit bounds what parsing adds."""
        prepare = getattr(func, "prepare", None)
        if callable(prepare):
            _limit_memory(None)
            try:
                prepare()
            finally:
                if self.memory is not None:
                    _limit_memory(self.memory)
            # What it built lives as long as the process: out of the cyclic collector's sight,
            # which would otherwise walk it (a big catalog's matcher holds millions of objects).
            gc.freeze()
        return func


def _run(
    callables: _Callables, func_frame: bytes, args_blob: bytes, memory: int
) -> tuple[Any, ...]:
    # pickle is imported where it is used: the parent imports this module for the channel's
    # constants, and a refresh where every feed answers 304 never needs pickle there.
    import pickle

    try:
        func = callables.take(func_frame)
        args, kwargs = pickle.loads(args_blob)
        return ("ok", func(*args, **kwargs))
    except SourceError as exc:
        return ("source_error", exc.reason, exc.http_status, exc.retry_after)
    except MemoryError:
        return ("retire", f"parsing needed more than {describe_mb(memory)} of memory")
    except RecursionError:
        return ("error", "parsing failed: the document is nested too deeply")
    except Exception as exc:  # a bug of ours or of a library: one line, the source fails alone
        return ("error", one_line(f"internal error while parsing: {type(exc).__name__}: {exc}"))


def _work(channel: socket.socket, callables: _Callables, memory: int) -> None:
    """A worker's loop: read a call, run it, write the answer, until its channel ends."""
    import pickle

    requests = channel.makefile("rb")
    answers = channel.makefile("wb")
    callables.memory = memory
    _limit_memory(memory)
    while True:
        func_frame = _read_frame(requests)
        args_blob = _read_frame(requests) if func_frame is not None else None
        if func_frame is None or args_blob is None:
            return
        answer = _run(callables, func_frame, args_blob, memory)
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(("retire", f"parsing needed more than {describe_mb(memory)}"))
        except Exception as exc:
            detail = one_line(f"{type(exc).__name__}: {exc}")
            payload = pickle.dumps(("error", f"internal error: unpicklable result: {detail}"))
        _write_frame(answers, payload)
        if answer[0] == "retire":
            return  # after a MemoryError the heap may be in any state: start afresh


def _receive(control: socket.socket) -> tuple[bytes, list[int]] | None:
    """One request and the descriptors passed with it; None once the refresh has hung up."""
    fds: list[int] = []
    header = b""
    while len(header) < HEADER.size:
        # The descriptors travel with a request's first bytes; every read of a header may
        # carry them, so every one asks for them (the kernel drops what a read cannot take).
        data, got, _, _ = socket.recv_fds(control, HEADER.size - len(header), 1)
        fds += got
        if not data:
            return None
        header += data
    (size,) = HEADER.unpack(header)
    body = bytearray()
    while len(body) < size:
        data = control.recv(min(size - len(body), 1 << 20))
        if not data:
            return None
        body += data
    return bytes(body), fds


def _send(control: socket.socket, payload: bytes) -> None:
    control.sendall(HEADER.pack(len(payload)) + payload)


def _fork(control: socket.socket, callables: _Callables, channel: int, memory: int) -> int:
    """Fork a worker serving `channel`; return its pid (in the fork server only)."""
    server = os.getpid()
    # Everything the fork server holds now (modules, the compiled step) is left out of the
    # cyclic collector's walks, so a worker's collections do not touch, and copy, its pages.
    gc.freeze()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        control.close()  # the fork server's channel is not the worker's to read
        _die_with_parent(server)  # cleared by fork: armed again, now for the fork server
        _work(socket.socket(fileno=channel), callables, memory)
        code = 0
    finally:
        # Never back into the fork server's loop, whatever happened: a worker ends here.
        os._exit(code)


def zygote(parent: int) -> None:
    """The fork server's loop (see the module's doc), until the refresh closes its channel."""
    _die_with_parent(parent)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=os.dup(0))
    # stdin becomes /dev/null: the channel is ours alone, and a worker reading stdin gets nothing.
    # stdout and stderr are the parent's /dev/null already, so a library that prints is harmless.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    import warnings

    warnings.simplefilter("ignore")
    for module in _PRELOAD:
        importlib.import_module(module)
    callables = _Callables(None)
    children: set[int] = set()
    _send(control, READY)
    try:
        while True:
            request = _receive(control)
            if request is None:
                return
            body, fds = request
            op = body[:1]
            if op == FORK and len(fds) == 1 and len(body) == 1 + PID.size:
                (memory,) = PID.unpack(body[1:])
                try:
                    pid = _fork(control, callables, fds[0], memory)
                except OSError as exc:
                    answer = FAILED + one_line(f"{exc}").encode()
                else:
                    children.add(pid)
                    answer = DONE + PID.pack(pid)
            elif op == REAP and len(body) == 1 + PID.size:
                (pid,) = PID.unpack(body[1:])
                answer = DONE + PID.pack(_reap(pid, children))
            elif op == PREPARE:
                answer = _prepare(callables, body[1:])
            else:
                answer = FAILED + b"unknown request"
            for fd in fds:  # a worker's channel is its own now: the server keeps no copy
                os.close(fd)
            _send(control, answer)
    finally:
        # The refresh is done (or gone): no worker outlives this process.
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        # No interpreter shutdown: freeing the compiled step object by object would keep the
        # refresh waiting for tens of milliseconds, for memory the kernel takes back at once.
        os._exit(0)


def _reap(pid: int, children: set[int]) -> int:
    """The wait status of a child the refresh has killed (-1: not one of ours)."""
    if pid not in children:
        return -1
    children.discard(pid)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return -1


def _prepare(callables: _Callables, frame: bytes) -> bytes:
    try:
        callables.take(frame)
    except Exception as exc:  # kept as sent: each call that uses it reports this in its worker
        return FAILED + one_line(f"{type(exc).__name__}: {exc}").encode()
    return DONE
