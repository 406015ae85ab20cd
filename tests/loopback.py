"""A small threaded HTTP/1.1 server on 127.0.0.1 for tests, able to misbehave on purpose.

Routes map a path to a `Reply`, a list of replies (served in turn, the last one repeating) or a
function of the `Request`. A reply can be delayed, drip-fed byte by byte, sent chunked, cut off
with a TCP reset, or never sent at all. Every request is recorded, and the server counts how
many requests it was answering at the same time.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from scrapers.http import HttpSettings

__all__ = [
    "FAST",
    "FIXTURES",
    "LoopbackServer",
    "Reply",
    "Request",
    "fast_settings",
    "fixture",
    "free_port",
    "serve",
]

FIXTURES = Path(__file__).parent / "scrapers_fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    content_type: str | None = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float | None = None  # send the body one byte at a time, this many seconds apart
    chunked: bool = False  # Transfer-Encoding: chunked, so no Content-Length to check up front
    hang: bool = False  # read the request, then never answer
    reset: bool = False  # drop the connection with a TCP RST instead of answering


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Route = Reply | list[Reply] | Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    def _serve(self) -> None:
        self.server.owner.handle(self)

    do_GET = do_POST = do_HEAD = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that give up mid-response (the point of several tests) are not server bugs.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, reply: Route) -> str:
        """Serve `reply` at `path` and return the full URL."""
        self.routes[path] = list(reply) if isinstance(reply, list) else reply
        return self.url(path)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _reply_for(self, request: Request) -> Reply:
        route = self.routes.get(request.path)
        if route is None:
            return Reply(404, "no route")
        if isinstance(route, list):
            with self._lock:
                return route.pop(0) if len(route) > 1 else route[0]
        if isinstance(route, Reply):
            return route
        return route(request)

    def handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        with self._lock:
            self.requests.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self._send(handler, self._reply_for(request))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        finally:
            with self._lock:
                self.active -= 1

    def _send(self, handler: _Handler, reply: Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            return
        if reply.hang:
            self._stopping.wait(30)
            handler.close_connection = True
            return
        if reply.reset:
            # SO_LINGER with a zero timeout turns close() into a TCP reset.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.close_connection = True
            return
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        handler.send_response(reply.status)
        if reply.content_type is not None:
            handler.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "HEAD" or reply.status == 304:
            return
        if reply.drip is not None:
            for i in range(len(body)):
                handler.wfile.write(body[i : i + 1])
                handler.wfile.flush()
                if self._stopping.wait(reply.drip):
                    return
        elif reply.chunked:
            step = 64 * 1024
            for i in range(0, len(body), step):
                piece = body[i : i + step]
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.write(b"0\r\n\r\n")
        else:
            handler.wfile.write(body)
        handler.wfile.flush()


@contextmanager
def serve() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for "connection refused")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Production behaviour with test-sized waits, so that fault tests finish in about a second.
FAST = HttpSettings(
    connect_timeout=1.0,
    read_timeout=1.0,
    deadline=2.0,
    source_deadline=10.0,
    max_retries=2,
    backoff_base=0.01,
    backoff_max=0.05,
    retry_after_cap=5.0,
)


def fast_settings(**overrides: Any) -> HttpSettings:
    return msgspec.structs.replace(FAST, **overrides)
