"""Which addresses a request may reach, decided on the address we actually connect to.

A source URL that the user configured may point anywhere (an intranet feed is a fine source), but
what a server answers may not lead us inside the network we run in:

- a redirect never leads from a public address to a loopback, private, link-local or otherwise
  non-public one (`HttpSession.fetch` sends such hops through the *outward* connection pool);
- a link-local address (169.254.0.0/16, fe80::/10: cloud metadata services live there) is never
  contacted, configured or not.

Names are resolved here, once per connection, and the connection is made to the address that was
checked, so a name that answers differently the second time (DNS rebinding) gains nothing. TLS
still names the host (SNI and certificate checks use the URL's host, not the address) and so does
the Host header: only the choice of address moves here.

A name that cannot be resolved fails at once and is remembered for the rest of the run, so every
source on that host fails fast instead of waiting out retries: offline, a refresh ends in about
the time of one failed lookup.

Tests replace the outside world, not this code: `Network(resolver=..., dial=...)` takes a stub
resolver (names to addresses) and, to reach a pretend public address without leaving loopback,
a dialer that routes it to a local server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import select
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import msgspec

from scrapers.errors import SourceError

__all__ = [
    "PEER_ADDRESS",
    "AsyncioBackend",
    "GuardedBackend",
    "Lookups",
    "Network",
    "Resolver",
    "address_kind",
    "backends",
    "is_public",
    "system_resolver",
]

# Resolves a host name (and port) to IP address strings, in order of preference.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# The key under which a connection tells which address it was made to (see `get_extra_info`).
PEER_ADDRESS = "tracker_peer_address"

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Network(msgspec.Struct, frozen=True):
    """How names are found and addresses reached; the default is the real network."""

    resolver: Resolver = system_resolver
    # Connects to an IP address; None means `AsyncioBackend` (real sockets).
    dial: httpcore.AsyncNetworkBackend | None = None


def address_kind(address: str) -> str:
    """ "public", or what keeps an address from being public: "loopback", "private",
    "link-local", "unspecified", "multicast" or "reserved"."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge the IPv4 one.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.is_link_local:
        return "link-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    return "public" if ip.is_global else "reserved"


def is_public(address: str | None) -> bool:
    """True for a public address; an unknown one (None) counts as public, the stricter case."""
    return address is None or address_kind(address) == "public"


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class Lookups:
    """Name resolution for one run: one lookup at a time per name, failures remembered."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self._failed: dict[str, str] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[str]]] = {}
        self._failures: dict[str, asyncio.Event] = {}

    def failure(self, host: str) -> str | None:
        """Why `host` could not be resolved earlier in this run (None: it has not failed)."""
        return self._failed.get(host.lower().rstrip("."))

    async def failed_within(self, host: str, seconds: float) -> str | None:
        """Wait up to `seconds`; return early with the reason if `host` fails to resolve."""
        name = host.lower().rstrip(".")
        if name not in self._failed and not _literal(name):
            event = self._failures.setdefault(name, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await event.wait()
        elif name not in self._failed:
            await asyncio.sleep(seconds)
        return self._failed.get(name)

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        if _literal(host):
            return [host]
        name = host.lower().rstrip(".")
        if name in self._failed:
            raise SourceError(self._failed[name])
        key = (name, port)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(name, port, timeout))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        # Shielded: a source that gives up waiting must not cancel the lookup others share.
        return await asyncio.shield(pending)

    def _settled(self, key: tuple[str, int], done: asyncio.Future[list[str]]) -> None:
        self._pending.pop(key, None)
        # Retrieved here, so that a failure whose every waiter has given up is not reported as
        # "exception never retrieved" on stderr; the reason is in self._failed.
        if not done.cancelled():
            done.exception()

    async def _lookup(self, name: str, port: int, timeout: float | None) -> list[str]:
        reason = f"could not resolve host {name}"
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver(name, port)
        except TimeoutError:
            reason = f"{reason} (no answer from DNS within {timeout:g} s)"
            addresses = []
        except (OSError, UnicodeError):
            # socket.gaierror and friends. Not retried within a run: offline, a retry only
            # waits longer for the same answer.
            addresses = []
        if not addresses:
            self._failed[name] = reason
            if name in self._failures:
                self._failures[name].set()
            raise SourceError(reason)
        return addresses


class _Stream(httpcore.AsyncNetworkStream):
    """A connection on asyncio's own streams (see `AsyncioBackend`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Not waiting for the close to complete: over TLS that waits for the server's
        # close_notify, which a server need not send.
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle connection the server closed or wrote to: asyncio has read the end (or
            # the bytes) already, or the socket has them waiting.
            reader = self._reader
            if reader.at_eof() or reader.exception() is not None or self._writer.is_closing():
                return True
            sock = self._writer.get_extra_info("socket")
            return sock is None or _socket_readable(sock.fileno())
        return None


def _socket_readable(fileno: int) -> bool:
    if fileno < 0:
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network seam on asyncio's own streams, the loop every refresh runs on.

    httpcore's default (AnyIO) backend runs each connect in a task group and each read and
    write in a cancel scope: about a sixth of the CPU that 200 conditional requests take.
    Only the transport is ours: HTTP is still httpx, httpcore and h11's. TLS is asyncio's, with
    the context httpx made (see scrapers/http.py); a server that closes without TLS's
    close_notify ends the body, as AnyIO's backend treats it.
    """

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("sources are never read from a local socket")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Connected(httpcore.AsyncNetworkStream):
    """A connection that remembers the address it was made to."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, address: str) -> None:
        self._stream = stream
        self._address = address

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        secured = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _Connected(secured, self._address)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == PEER_ADDRESS:
            return self._address
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network seam: resolve, check every address, connect to a checked one.

    `inward=True` serves configured URLs (anything but link-local); `inward=False` serves
    redirects that came from a public address (public addresses only).
    """

    def __init__(
        self, lookups: Lookups, dial: httpcore.AsyncNetworkBackend, *, inward: bool
    ) -> None:
        self._lookups = lookups
        self._dial = dial
        self._inward = inward

    def _refusal(self, host: str, address: str, kind: str) -> str:
        who = address if host == address else f"{host} ({address})"
        if kind == "link-local":
            return f"refused: {who} is a link-local address, which is never contacted"
        return (
            f"redirect refused: {who} is a {kind} address and the redirect came from a public one"
        )

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._lookups.resolve(host, port, timeout)
        allowed: list[str] = []
        refusal = ""
        for address in addresses:
            kind = address_kind(address)
            if kind == "link-local" or (kind != "public" and not self._inward):
                refusal = refusal or self._refusal(host, address, kind)
            else:
                allowed.append(address)
        if not allowed:
            raise SourceError(refusal)
        for n, address in enumerate(allowed, start=1):
            try:
                stream = await self._dial.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if n == len(allowed):
                    raise  # here, so that the cause (refused, unreachable) stays attached
                continue  # try the next address, as a browser would
            return _Connected(stream, address)
        raise AssertionError("unreachable: `allowed` is not empty")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise SourceError("internal error: sources are never read from a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._dial.sleep(seconds)


def backends(network: Network | None, lookups: Lookups) -> tuple[GuardedBackend, GuardedBackend]:
    """(inward, outward) backends sharing one run's name lookups."""
    network = network or Network()
    dial = network.dial or AsyncioBackend()
    return (
        GuardedBackend(lookups, dial, inward=True),
        GuardedBackend(lookups, dial, inward=False),
    )
