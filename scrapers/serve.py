"""The parser process's side of scrapers/worker.py: read a call, run it, write the answer.

Kept apart from the parent's side (asyncio, subprocesses) so that a parser process imports only
what parsing needs: it starts while the refresh makes its first requests, and every millisecond
of its start-up is a millisecond before the first feed is parsed.

The channel: each call is two length-prefixed frames, the callable and its pickled arguments;
each answer one frame, a pickled tuple. A callable is sent whole once (`+` digest pickle) and
then named by its digest (`=` digest): a post-processing step that carries the catalog's rules
crosses the pipe once per process, not once per source. Both sides keep the last
`FUNC_CACHE_SIZE` callables and forget the oldest first, so they always agree on what is known.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import struct
import sys
from collections.abc import Callable
from typing import IO, Any

from scrapers.errors import SourceError, one_line

__all__ = ["FUNC_CACHE_SIZE", "HEADER", "KNOWN", "NEW", "READY", "describe_mb", "serve"]

HEADER = struct.Struct(">Q")
READY = b"ready"
NEW = b"+"  # a callable's frame: NEW, its digest, its pickle
KNOWN = b"="  # KNOWN and the digest of a callable sent before
DIGEST_SIZE = 32
# Callables kept per process, keyed by digest: a post-processing step that carries compiled state
# (a matcher) is rebuilt once per process instead of once per source.
FUNC_CACHE_SIZE = 8
# What every parse needs, imported before the process says it is ready (so before the clock of
# its first call starts). Fallbacks (feedparser for broken XML) load when first needed.
_PRELOAD = ("lxml.etree", "scrapers.collect", "scrapers.feeds", "scrapers.dates")


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
    watchdog thread, so the kernel does it. Elsewhere, end-of-input on stdin ends the loop.
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

    def __init__(self, memory: int) -> None:
        self.memory = memory
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


def serve(memory: int, parent: int) -> None:
    """The worker's loop: read a call, run it, write the answer, until stdin ends."""
    _die_with_parent(parent)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The channel is a private copy of fd 1; fd 1 itself goes to stderr (which the parent
    # discards), so a library that prints cannot corrupt the stream of answers.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    import pickle
    import warnings

    warnings.simplefilter("ignore")
    for module in _PRELOAD:
        importlib.import_module(module)
    _limit_memory(memory)
    _write_frame(channel, READY)
    callables = _Callables(memory)
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
        _write_frame(channel, payload)
        if answer[0] == "retire":
            return  # after a MemoryError the heap may be in any state: start afresh
