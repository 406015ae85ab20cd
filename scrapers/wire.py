"""HTTP/1.1 on the wire: the transport under scrapers/http.py's httpx client.

httpx's own transport goes through httpcore's connection pool, h11 and anyio: about 2 ms of CPU
per request, which for 200 feeds is more than parsing them. This one writes the request and reads
the response itself, on the run's network backend (scrapers/network.py: the address checks, the
peer address, a test's dialler), for about a tenth of that. What it does:

- one request at a time per connection; a connection whose response was read to its end, over
  HTTP/1.1 and without `Connection: close`, is kept for the next request to the same origin (and
  dropped after `KEEPALIVE_EXPIRY` seconds, or when the server has closed it meanwhile);
- bodies framed by Content-Length, chunked transfer coding, or the end of the connection; none for
  HEAD, 1xx, 204 and 304; informational 1xx answers before the real one are skipped;
- the timeouts of the request (`connect`, `read` per read, `write`) and httpx's exception types,
  with the messages httpcore gives where scrapers/http.py reads them ("… without sending …");
- a response head is at most `MAX_HEAD` bytes; anything that is not HTTP/1.x is a protocol error.

The body is not decoded here: `HttpSession` reads it raw and inflates it under its size cap.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import httpcore
import httpx

__all__ = ["KEEPALIVE_EXPIRY", "MAX_HEAD", "Wire"]

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
MAX_HEAD = 64 * 1024  # status line and headers together
_READ_SIZE = 64 * 1024
_NO_BODY = frozenset({204, 304})
_EXCEPTIONS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
}
Origin = tuple[str, str, int]


def _reraise(exc: Exception) -> NoReturn:
    """Raise httpcore's exception as httpx's, the original kept as the cause (scrapers/http.py
    reads the cause chain: refused, unresolvable, TLS); anything else as it is."""
    for kind, to in _EXCEPTIONS.items():
        if isinstance(exc, kind):
            raise to(str(exc)) from exc
    raise exc


def _protocol(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(message)


class _Connection:
    """One connection and what has been read from it beyond the last response."""

    def __init__(self, stream: Any, origin: Origin) -> None:
        self.stream = stream
        self.origin = origin
        self.buffer = bytearray()
        self.idle_since = 0.0

    async def fill(self, timeout: float | None) -> bool:
        """Read more into the buffer; False at the end of the connection."""
        try:
            data = await self.stream.read(_READ_SIZE, timeout)
        except Exception as exc:
            _reraise(exc)
        if not data:
            return False
        self.buffer += data
        return True

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def line(self, timeout: float | None, limit: int, eof: str) -> bytes:
        """The next line without its CRLF (chunked framing)."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                return self.take(end + 2)[:-2]
            if len(self.buffer) > limit:
                raise _protocol("chunk header too long")
            if not await self.fill(timeout):
                raise _protocol(eof)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken one has nothing left to say
            await self.stream.aclose()

    def usable(self, now: float) -> bool:
        if now - self.idle_since > KEEPALIVE_EXPIRY or self.buffer:
            return False
        try:
            readable = self.stream.get_extra_info("is_readable")
        except Exception:
            return False
        return not readable  # readable while idle: the server closed it (or sent garbage)


def _head(raw: bytes) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    """(HTTP version, status, reason, headers) of a response head (without its blank line)."""
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[0]) != 8:
        raise _protocol(f"illegal status line: {lines[0][:100]!r}")
    if len(parts[1]) != 3 or not parts[1].isdigit():
        raise _protocol(f"illegal status line: {lines[0][:100]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise _protocol(f"illegal header line: {line[:100]!r}")
        headers.append((name, value.strip(b" \t")))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    """("none" | "chunked" | "length" | "close", declared length)."""
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        return "none", 0
    codings = b",".join(_values(headers, b"transfer-encoding")).lower()
    if codings:
        if codings.replace(b" ", b"").split(b",")[-1] != b"chunked":
            raise _protocol("unsupported transfer encoding")
        return "chunked", 0
    lengths = {
        value.strip() for value in b",".join(_values(headers, b"content-length")).split(b",")
    }
    lengths.discard(b"")
    if not lengths:
        return "close", 0
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise _protocol("bad Content-Length")
    return "length", int(next(iter(lengths)))


class _Body(httpx.AsyncByteStream):
    """A response body read straight from its connection; the connection goes back to its
    transport once the body was read to its end (or is closed when it was not)."""

    def __init__(
        self, wire: Wire, connection: _Connection, framing: tuple[str, int], reusable: bool
    ) -> None:
        self._wire = wire
        self._connection = connection
        self._mode, self._left = framing
        self._reusable = reusable
        self._timeout: float | None = None
        self._done = self._mode == "none" or (self._mode == "length" and self._left == 0)

    def read_timeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        if self._mode == "length":
            async for chunk in self._by_length():
                yield chunk
        elif self._mode == "chunked":
            async for chunk in self._chunked():
                yield chunk
        else:
            async for chunk in self._to_close():
                yield chunk
        self._done = True

    async def _by_length(self) -> AsyncIterator[bytes]:
        conn = self._connection
        while self._left > 0:
            if not conn.buffer and not await conn.fill(self._timeout):
                raise _protocol(
                    "peer closed connection without sending complete message body: "
                    f"{self._left} bytes missing"
                )
            chunk = conn.take(min(self._left, len(conn.buffer)))
            self._left -= len(chunk)
            yield chunk

    async def _chunked(self) -> AsyncIterator[bytes]:
        conn = self._connection
        eof = (
            "peer closed connection without sending complete message body: incomplete chunked read"
        )
        while True:
            size_line = (await conn.line(self._timeout, 1024, eof)).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _protocol(f"illegal chunk size: {size_line[:40]!r}") from None
            if size < 0:
                raise _protocol("illegal chunk size")
            if size == 0:
                while await conn.line(self._timeout, MAX_HEAD, eof):
                    pass  # trailers, not used
                return
            left = size
            while left > 0:
                if not conn.buffer and not await conn.fill(self._timeout):
                    raise _protocol(eof)
                chunk = conn.take(min(left, len(conn.buffer)))
                left -= len(chunk)
                yield chunk
            if await conn.line(self._timeout, 2, eof):
                raise _protocol("chunk not followed by CRLF")

    async def _to_close(self) -> AsyncIterator[bytes]:
        conn = self._connection
        self._reusable = False
        if conn.buffer:
            yield conn.take(len(conn.buffer))
        while await conn.fill(self._timeout):
            yield conn.take(len(conn.buffer))

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None  # type: ignore[assignment]
        if connection is None:
            return
        if self._done and self._reusable:
            self._wire.release(connection)
        else:
            await self._wire.drop(connection)


class Wire(httpx.AsyncBaseTransport):
    """An httpx transport speaking HTTP/1.1 over `backend` (an httpcore network backend)."""

    def __init__(self, backend: Any, ssl_context: Callable[[], ssl.SSLContext]) -> None:
        self._backend = backend
        self._ssl = ssl_context  # made on the first https connection (loading roots takes time)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose response was read to its end, for the next request."""
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)

    async def drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        await connection.close()

    async def _connection(self, origin: Origin, timeouts: dict[str, Any]) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            await self.drop(connection)
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        try:
            stream = await self._backend.connect_tcp(host, port, timeout=timeout)
            if scheme == "https":
                tls = self._ssl()
                stream = await stream.start_tls(tls, server_hostname=host, timeout=timeout)
        except Exception as exc:
            _reraise(exc)
        connection = _Connection(stream, origin)
        self._open.add(connection)
        return connection

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{url.scheme}://'."
            )
        host = url.raw_host.decode("ascii")  # IDNA-encoded: what DNS, TLS and Host name
        origin = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        message = _request_bytes(request)
        connection = await self._connection(origin, timeouts)
        try:
            try:
                await connection.stream.write(message, timeouts.get("write"))
            except Exception as exc:
                _reraise(exc)
            version, status, reason, headers = await self._response_head(connection, timeouts)
            framing = _framing(request.method, status, headers)
        except BaseException:
            await self.drop(connection)
            raise
        asked = ",".join(request.headers.get_list("connection")).lower()
        closing = "close" in asked or b"close" in b",".join(_values(headers, b"connection")).lower()
        body = _Body(self, connection, framing, reusable=version == b"HTTP/1.1" and not closing)
        body.read_timeout(timeouts.get("read"))
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={
                "http_version": version,
                "reason_phrase": reason,
                "network_stream": connection.stream,
            },
        )

    async def _response_head(
        self, connection: _Connection, timeouts: dict[str, Any]
    ) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
        read = timeouts.get("read")
        while True:
            at = 0
            while True:
                end = connection.buffer.find(b"\r\n\r\n", at)
                if end >= 0:
                    break
                if len(connection.buffer) > MAX_HEAD:
                    raise _protocol(f"response head larger than {MAX_HEAD // 1024} KB")
                at = max(0, len(connection.buffer) - 3)
                if not await connection.fill(read):
                    raise _protocol("Server disconnected without sending a response.")
            head = _head(connection.take(end + 4)[:-4])
            if not 100 <= head[1] < 200 or head[1] == 101:
                return head

    async def aclose(self) -> None:
        connections, self._open = self._open, set()
        self._idle.clear()
        for connection in connections:
            await connection.close()


def _request_bytes(request: httpx.Request) -> bytes:
    """The request line, headers and body, checked for characters that would split them."""
    target = request.url.raw_path
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if any(ch in name or ch in value for ch in (b"\r", b"\n", b"\0")):
            raise httpx.LocalProtocolError("Illegal header value")
        lines.append(name + b": " + value)
    body = request.content
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
