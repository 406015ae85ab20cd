"""HTTP/1.1 on the wire: the client under scrapers/http.py.

httpx and httpcore cost a refresh about 2 ms of CPU per request (their pool, h11, anyio, the
client's cookie jar and URL merging) and a sixth of its start-up to import; for 200 feeds that
is more than parsing them. This client writes the request and reads the response itself, on the
run's network backend (scrapers/network.py: the address checks, the peer address, a test's
dialler), for about a tenth of that. It keeps httpx's behaviour where HttpSession relies on it:
the same request headers in the same order, URLs read by scrapers/urls.py (httpx's rules),
response headers decoded as httpx decodes them, and exceptions of the same names and meanings
(`ConnectError` carrying the OS error as its cause, "… without sending …" when a server hangs
up early).

- One request at a time per connection; a connection whose response was read to its end, over
  HTTP/1.1 and without `Connection: close`, is kept for the next request to the same origin
  (dropped after `KEEPALIVE_EXPIRY` seconds, or when the server has closed it meanwhile).
- Bodies framed by Content-Length, chunked transfer coding, or the end of the connection; none
  for HEAD, 1xx, 204 and 304; informational 1xx answers before the real one are skipped.
- The timeouts `connect`, `read` (per read) and `write`; a response head is at most `MAX_HEAD`
  bytes; anything that is not HTTP/1.x is a protocol error.

The body is not decoded here: HttpSession reads it raw and inflates it under its size cap.
"""

from __future__ import annotations

import contextlib
import ssl
import sys
import time
from base64 import b64encode
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote, urlencode

from scrapers.urls import URL, InvalidURL

__all__ = [
    "KEEPALIVE_EXPIRY",
    "MAX_HEAD",
    "Body",
    "ConnectError",
    "ConnectTimeout",
    "HTTPError",
    "Headers",
    "InvalidURL",
    "LocalProtocolError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TimeoutException",
    "Timeouts",
    "TransportError",
    "UnsupportedProtocol",
    "Wire",
    "WireResponse",
    "WriteError",
    "WriteTimeout",
]

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
MAX_HEAD = 64 * 1024  # status line and headers together
_READ_SIZE = 64 * 1024
_NO_BODY = frozenset({204, 304})
_DEFAULT_PORTS = {"http": 80, "https": 443}


# ----------------------------------------------------------------------------- exceptions


class HTTPError(Exception):
    """Anything that went wrong in an exchange (httpx's names, for the same cases)."""


class TransportError(HTTPError):
    pass


class TimeoutException(TransportError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    pass


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class ProtocolError(TransportError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class UnsupportedProtocol(TransportError):
    pass


def _httpcore_exceptions() -> dict[type[Exception], type[HTTPError]]:
    """httpcore's exceptions, which a dialler written against httpcore (a test's) raises."""
    httpcore = sys.modules.get("httpcore")
    if httpcore is None:
        return {}
    return {
        httpcore.ConnectTimeout: ConnectTimeout,
        httpcore.ReadTimeout: ReadTimeout,
        httpcore.WriteTimeout: WriteTimeout,
        httpcore.ConnectError: ConnectError,
        httpcore.ReadError: ReadError,
        httpcore.WriteError: WriteError,
        httpcore.RemoteProtocolError: RemoteProtocolError,
    }


def reraise(exc: Exception) -> NoReturn:
    """Raise an httpcore exception as ours (the original kept as the cause, where HttpSession
    looks for what refused or failed); anything else as it is."""
    for kind, to in _httpcore_exceptions().items():
        if isinstance(exc, kind):
            raise to(str(exc)) from exc
    raise exc


def _protocol(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message)


# ----------------------------------------------------------------------------- messages


class Headers:
    """Response headers: case-insensitive, repeated ones joined by ", " (as httpx does), text
    decoded as ASCII, else UTF-8, else ISO-8859-1 for the whole set (as httpx does)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        encoding = "iso-8859-1"
        for candidate in ("ascii", "utf-8"):
            try:
                for name, value in raw:
                    name.decode(candidate)
                    value.decode(candidate)
            except UnicodeDecodeError:
                continue
            encoding = candidate
            break
        self._items = [(n.decode(encoding).lower(), v.decode(encoding)) for n, v in raw]

    def get(self, name: str, default: Any = None) -> Any:
        key = name.lower()
        values = [value for n, value in self._items if n == key]
        return ", ".join(values) if values else default

    def get_list(self, name: str) -> list[str]:
        key = name.lower()
        return [value for n, value in self._items if n == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == name.lower() for n, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclass(frozen=True)
class Timeouts:
    connect: float | None = None
    read: float | None = None
    write: float | None = None


def request_bytes(
    method: str,
    url: URL,
    defaults: Mapping[str, str],
    headers: Mapping[str, str],
    data: Mapping[str, str] | None,
) -> bytes:
    """The request as httpx would send it: Host first, then the client's default headers, then
    the request's (a request header replaces a default of the same name), then the length and
    type of a form body, then Basic authentication from the URL's user information."""
    merged: dict[str, tuple[str, str]] = {}
    for name, value in [*defaults.items(), *headers.items()]:
        merged.pop(name.lower(), None)
        merged[name.lower()] = (name, value)
    body = b""
    if data is not None:
        body = urlencode(list(data.items()), doseq=True).encode("utf-8")
        for name, value in (
            ("Content-Length", str(len(body))),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ):
            merged.setdefault(name.lower(), (name, value))
    if url.userinfo:
        # User information in the URL is sent as Basic authentication (httpx does the same).
        user, _, password = url.userinfo.partition(":")
        pair = unquote(user).encode("utf-8") + b":" + unquote(password).encode("utf-8")
        if pair != b":":
            merged["authorization"] = ("Authorization", "Basic " + b64encode(pair).decode())
    lines = [f"{method} {url.target} HTTP/1.1", f"Host: {url.netloc}"]
    lines += [f"{name}: {value}" for name, value in merged.values()]
    message = "\r\n".join(lines)
    if any(ch in message for ch in ("\0",)) or any(
        "\r" in f"{n}{v}" or "\n" in f"{n}{v}" for n, v in merged.values()
    ):
        raise LocalProtocolError("Illegal header value")
    return message.encode("ascii") + b"\r\n\r\n" + body


# ----------------------------------------------------------------------------- the wire


class _Connection:
    """One connection and what has been read from it beyond the last response."""

    def __init__(self, stream: Any, origin: tuple[str, str, int]) -> None:
        self.stream = stream
        self.origin = origin
        self.buffer = bytearray()
        self.idle_since = 0.0

    async def fill(self, timeout: float | None) -> bool:
        """Read more into the buffer; False at the end of the connection."""
        try:
            data = await self.stream.read(_READ_SIZE, timeout)
        except Exception as exc:
            reraise(exc)
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


def _values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
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
    declared = b",".join(_values(headers, b"content-length")).split(b",")
    lengths = {value.strip() for value in declared} - {b""}
    if not lengths:
        return "close", 0
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise _protocol("bad Content-Length")
    return "length", int(next(iter(lengths)))


class Body:
    """A response body read straight from its connection; the connection goes back to its
    wire once the body was read to its end, or is closed when it was not."""

    def __init__(
        self,
        wire: Wire,
        connection: _Connection,
        framing: tuple[str, int],
        reusable: bool,
        timeout: float | None,
    ) -> None:
        self._wire = wire
        self._connection: _Connection | None = connection
        self._mode, self._left = framing
        self._reusable = reusable
        self._timeout = timeout
        self._done = self._mode == "none" or (self._mode == "length" and self._left == 0)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._done or self._connection is None:
            return
        if self._mode == "length":
            chunks = self._by_length(self._connection)
        elif self._mode == "chunked":
            chunks = self._chunked(self._connection)
        else:
            chunks = self._to_close(self._connection)
        async for chunk in chunks:
            yield chunk
        self._done = True

    async def _by_length(self, conn: _Connection) -> AsyncIterator[bytes]:
        while self._left > 0:
            if not conn.buffer and not await conn.fill(self._timeout):
                raise _protocol(
                    "peer closed connection without sending complete message body: "
                    f"{self._left} bytes missing"
                )
            chunk = conn.take(min(self._left, len(conn.buffer)))
            self._left -= len(chunk)
            yield chunk

    async def _chunked(self, conn: _Connection) -> AsyncIterator[bytes]:
        eof = "peer closed connection without sending complete message body: incomplete chunks"
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

    async def _to_close(self, conn: _Connection) -> AsyncIterator[bytes]:
        self._reusable = False
        if conn.buffer:
            yield conn.take(len(conn.buffer))
        while await conn.fill(self._timeout):
            yield conn.take(len(conn.buffer))

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._done and self._reusable:
            self._wire.release(connection)
        else:
            await self._wire.drop(connection)


@dataclass
class WireResponse:
    url: URL
    status: int
    reason_phrase: str
    headers: Headers
    body: Body
    peer_stream: Any  # the connection's stream (get_extra_info)


class Wire:
    """HTTP/1.1 over `backend` (scrapers/network.py's GuardedBackend, or any object with its
    `connect_tcp`), with `defaults` as the default request headers."""

    def __init__(
        self,
        backend: Any,
        ssl_context: Callable[[], ssl.SSLContext],
        defaults: Mapping[str, str],
    ) -> None:
        self._backend = backend
        self._ssl = ssl_context  # made on the first https connection (loading roots takes time)
        self._defaults = dict(defaults)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose response was read to its end, for the next request."""
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)

    async def drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        await connection.close()

    async def _connection(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            await self.drop(connection)
        scheme, host, port = origin
        try:
            stream = await self._backend.connect_tcp(host, port, timeout=timeout)
            if scheme == "https":
                tls = self._ssl()
                stream = await stream.start_tls(tls, server_hostname=host, timeout=timeout)
        except Exception as exc:
            reraise(exc)
        connection = _Connection(stream, origin)
        self._open.add(connection)
        return connection

    async def request(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None,
        timeouts: Timeouts,
    ) -> WireResponse:
        """Send one request and read the response head; the body is read from `.body`."""
        if url.scheme not in _DEFAULT_PORTS:
            raise UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.")
        if not url.host:
            raise UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' host.")
        message = request_bytes(method, url, self._defaults, headers, data)
        origin = (url.scheme, url.host, url.port or _DEFAULT_PORTS[url.scheme])
        connection = await self._connection(origin, timeouts.connect)
        try:
            try:
                await connection.stream.write(message, timeouts.write)
            except Exception as exc:
                reraise(exc)
            version, status, reason, raw = await self._response_head(connection, timeouts.read)
            framing = _framing(method, status, raw)
        except BaseException:
            await self.drop(connection)
            raise
        closing = b"close" in b",".join(_values(raw, b"connection")).lower()
        body = Body(
            self, connection, framing, version == b"HTTP/1.1" and not closing, timeouts.read
        )
        return WireResponse(
            url=url,
            status=status,
            reason_phrase=reason.decode("ascii", errors="ignore"),
            headers=Headers(raw),
            body=body,
            peer_stream=connection.stream,
        )

    async def _response_head(
        self, connection: _Connection, timeout: float | None
    ) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
        while True:
            at = 0
            while True:
                end = connection.buffer.find(b"\r\n\r\n", at)
                if end >= 0:
                    break
                if len(connection.buffer) > MAX_HEAD:
                    raise _protocol(f"response head larger than {MAX_HEAD // 1024} KB")
                at = max(0, len(connection.buffer) - 3)
                if not await connection.fill(timeout):
                    raise _protocol("Server disconnected without sending a response.")
            head = _head(connection.take(end + 4)[:-4])
            if not 100 <= head[1] < 200 or head[1] == 101:
                return head

    async def aclose(self) -> None:
        connections, self._open = self._open, set()
        self._idle.clear()
        for connection in connections:
            await connection.close()
