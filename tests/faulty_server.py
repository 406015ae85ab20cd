"""A deliberately misbehaving HTTP/1.1 server on 127.0.0.1, and a measured run of the real CLI.

`FaultyServer` speaks HTTP over raw sockets so that it can do what a polite server never does:
hang after reading the request, drip a body a byte at a time, reset the connection halfway through
a body, stream 200 MB generated on the fly, send a gzip bomb. Each path maps to a `Behaviour`,
a function that receives the connection once the request has been read. One request per
connection (`Connection: close`), so every misbehaviour starts from a clean slate.

`run_tracker` runs `python -m tracker …` as a subprocess and reports its exit code, output, wall
time and peak resident memory (ru_maxrss of exactly that process, from os.wait4 in a launcher).
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

__all__ = [
    "Behaviour",
    "Conn",
    "FaultyServer",
    "Measured",
    "drip",
    "endless",
    "free_port",
    "gzip_bomb",
    "hang",
    "in_process",
    "redirect",
    "reply",
    "reset_mid_body",
    "run_tracker",
    "serving",
    "slow",
    "start_tracker",
]

_STEP = 64 * 1024


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Conn:
    """The server side of one exchange; behaviours write through it."""

    def __init__(self, sock: socket.socket, request: Req, stopping: threading.Event) -> None:
        self.sock = sock
        self.request = request
        self.stopping = stopping
        self.sent = 0

    def head(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> bool:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers]
        return self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def write(self, data: bytes) -> bool:
        """False once the client has gone away (which is what the client should do)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep; True if the server is shutting down meanwhile."""
        return self.stopping.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Behaviour = Callable[[Conn], None]


class FaultyServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[Req] = []
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, behaviour: Behaviour) -> str:
        self.routes[path] = behaviour
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(2)
        self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with suppress(OSError):
                    sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
        try:
            request = self._read_request(sock)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            behaviour = self.routes.get(request.path.split("?")[0], reply(404, b"no route"))
            conn = Conn(sock, request, self._stopping)
            try:
                behaviour(conn)
            finally:
                with self._lock:
                    key = request.path.split("?")[0]
                    self.bytes_sent[key] = self.bytes_sent.get(key, 0) + conn.sent
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(sock)
            with suppress(OSError):
                sock.close()

    @staticmethod
    def _read_request(sock: socket.socket) -> Req | None:
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk or len(data) > 1 << 20:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        first, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = first.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Req(method, path, headers, rest[:length])


@contextmanager
def serving() -> Iterator[FaultyServer]:
    server = FaultyServer()
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------- behaviours


def reply(
    status: int = 200,
    body: bytes | str = b"",
    content_type: str | None = "text/plain; charset=utf-8",
    headers: Sequence[tuple[str, str]] = (),
) -> Behaviour:
    data = body.encode("utf-8") if isinstance(body, str) else body

    def behave(conn: Conn) -> None:
        extra = [("Content-Type", content_type)] if content_type else []
        if conn.head(status, [*extra, *headers, ("Content-Length", str(len(data)))]):
            conn.write(data)

    return behave


def hang(seconds: float = 60.0) -> Behaviour:
    """Read the request, then say nothing at all."""

    def behave(conn: Conn) -> None:
        conn.wait(seconds)

    return behave


def drip(body: bytes, every: float, content_type: str = "application/rss+xml") -> Behaviour:
    """Status line and headers at once, then the body one byte every `every` seconds."""

    def behave(conn: Conn) -> None:
        if not conn.head(200, [("Content-Type", content_type), ("Content-Length", str(len(body)))]):
            return
        for i in range(len(body)):
            if not conn.write(body[i : i + 1]) or conn.wait(every):
                return

    return behave


def reset_mid_body(body: bytes, content_type: str = "application/rss+xml") -> Behaviour:
    """Announce the whole body, send half of it, then reset the connection."""

    def behave(conn: Conn) -> None:
        if conn.head(200, [("Content-Type", content_type), ("Content-Length", str(len(body)))]):
            conn.write(body[: len(body) // 2])
            time.sleep(0.05)
            conn.reset()

    return behave


def endless(
    total: int, *, declare_length: bool, content_type: str = "application/rss+xml"
) -> Behaviour:
    """`total` bytes generated on the fly (never held in memory), chunked or with a length."""
    piece = (b"<item><title>filler</title></item>" * (_STEP // 34 + 1))[:_STEP]

    def behave(conn: Conn) -> None:
        headers = [("Content-Type", content_type)]
        headers.append(
            ("Content-Length", str(total)) if declare_length else ("Transfer-Encoding", "chunked")
        )
        if not conn.head(200, headers):
            return
        left = total
        while left > 0:
            part = piece[: min(left, _STEP)]
            framed = part if declare_length else f"{len(part):x}\r\n".encode() + part + b"\r\n"
            if not conn.write(framed):
                return
            left -= len(part)
        if not declare_length:
            conn.write(b"0\r\n\r\n")

    return behave


@functools.cache
def _bomb(megabytes: int) -> bytes:
    """A valid one-member gzip of `megabytes` MB of zeros, built in well under a second.

    After a full flush deflate forgets its history, so every further megabyte of zeros compresses
    to the same bytes: compress one, repeat it, and write the CRC and size trailer by hand.
    """
    zeros = b"\0" * (1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    repeat = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.flush()
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (megabytes << 20) & 0xFFFFFFFF)
    return header + first + repeat * (megabytes - 1) + last + trailer


def gzip_bomb(megabytes: int = 1024) -> Behaviour:
    """About 1 KB per inflated megabyte on the wire: 1 MB that inflates to 1 GB of zeros."""
    return reply(
        200,
        _bomb(megabytes),
        content_type="application/rss+xml",
        headers=[("Content-Encoding", "gzip")],
    )


def redirect(location: str, status: int = 302) -> Behaviour:
    return reply(status, b"", content_type=None, headers=[("Location", location)])


def slow(seconds: float, then: Behaviour) -> Behaviour:
    def behave(conn: Conn) -> None:
        if not conn.wait(seconds):
            then(conn)

    return behave


# ------------------------------------------------------------------------------- running the CLI


@dataclass
class Measured:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float
    extra: dict[str, object] = field(default_factory=dict)


def _command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "tracker", *args]


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    full = dict(os.environ)
    full.update(env or {})
    return full


def start_tracker(
    *args: str, env: dict[str, str] | None = None, stdout: object = None, stderr: object = None
) -> subprocess.Popen[bytes]:
    """Start `python -m tracker ARGS` without waiting (for kill and concurrency tests)."""
    return subprocess.Popen(
        _command(args),
        env=_environment(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,  # type: ignore[arg-type]
        stderr=stderr if stderr is not None else subprocess.DEVNULL,  # type: ignore[arg-type]
    )


# Peak RSS is measured through a small launcher: a child forked (or vforked) straight from the
# test process carries the test process's high-water mark through exec in its ru_maxrss, so the
# CLI would be charged for pytest's memory. A grandchild forked from a fresh, small launcher
# starts from the launcher's few megabytes instead.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_tracker(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Measured:
    """Run the CLI to the end; wall time, and peak RSS of exactly the CLI process."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        report = Path(scratch) / "rusage"
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *_command(args)],
            env=_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            raise AssertionError(
                f"tracker {' '.join(args)} still running after {timeout} s"
            ) from None
        seconds = time.monotonic() - started
        maxrss, code = (int(v) for v in report.read_text().split())
        out.seek(0)
        err.seek(0)
        return Measured(
            code=code,
            out=out.read().decode("utf-8", "replace"),
            err=err.read().decode("utf-8", "replace"),
            seconds=seconds,
            peak_mb=maxrss / 1024,  # Linux reports kilobytes
        )


def in_process(*args: str, db: Path | str) -> tuple[int, str, str]:
    """The CLI called in this process (fast, for reading state); returns (code, out, err)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from tracker.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(["--db", str(db), *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()
