"""The one place that builds the HTTP client and talks to servers.

Every limit lives in `HttpSettings`; every failure leaves here as a `SourceError` with a reason a
person can read. Kinds never touch httpx directly.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, ParamSpec, TypeVar

import httpx

from scrapers.base import Validators
from scrapers.errors import SourceError, one_line
from scrapers.text import decode_body
from scrapers.worker import WorkerPool

__all__ = [
    "DEFAULT_USER_AGENT",
    "HttpSession",
    "HttpSettings",
    "Response",
    "build_client",
    "describe_size",
    "open_session",
    "parse_retry_after",
    "raise_for_status",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

DEFAULT_USER_AGENT = "tracker/0.1 (+https://github.com/tracker-monitor/tracker)"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# OpenSky announces its wait in its own header; treating it like Retry-After keeps one policy.
_RETRY_AFTER_HEADERS = ("retry-after", "x-rate-limit-retry-after-seconds")
_DECODE_STEP = 64 * 1024


@dataclass(frozen=True)
class HttpSettings:
    """Every limit the scrapers obey. Defaults are for production; tests shrink them."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # longest silence between two chunks of a response
    write_timeout: float = 10.0
    pool_timeout: float = 30.0
    # Longest one HTTP exchange may take, connect to last body byte; stops drip-feeding servers.
    deadline: float = 60.0
    # Longest one source may take in all, retries and polite pauses included.
    source_deadline: float = 600.0
    # Extra attempts after connection errors and 502/503/504. Timeouts are not retried: a server
    # too slow once is slow again, and retrying would multiply the wait.
    max_retries: int = 3
    backoff_base: float = 1.0  # first retry waits about this long, doubling each time
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0  # longer Retry-After values fail the source instead of waiting
    max_body_bytes: int = 10 * 1024 * 1024  # both on the wire and after decompression
    max_redirects: int = 5
    per_host_limit: int = 2
    global_limit: int = 10
    max_items_per_feed: int = 500
    max_title_chars: int = 1_000
    max_summary_chars: int = 5_000
    # Dates further ahead than this are feed bugs and become "unknown".
    max_future_seconds: float = 86_400.0
    page_summary_chars: int = 500
    # Text of a watched page kept in Validators.snapshot so the next change can be summarised.
    max_snapshot_chars: int = 100_000
    # Parsing runs in worker processes (scrapers/worker.py) so that these limits hold whatever
    # the input: longest one parse may take (lxml reads 10 MB in 0.1 s, feedparser in ~6 s) ...
    parse_timeout: float = 60.0
    # ... the address space a worker may add to what it uses at start (~55 MB); a 10 MB feed
    # that only feedparser can read needs ~100 MB ...
    parse_memory: int = 256 * 1024 * 1024
    # ... and how many workers parse at once (one keeps up with the network on two cores; a
    # second keeps parsing going while the first works through a hostile input).
    parse_workers: int = 2

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout",
            "read_timeout",
            "write_timeout",
            "pool_timeout",
            "deadline",
            "source_deadline",
            "parse_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"HttpSettings.{name} must be positive")
        for name in (
            "per_host_limit",
            "global_limit",
            "max_body_bytes",
            "max_items_per_feed",
            "parse_memory",
            "parse_workers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpSettings.{name} must be at least 1")
        if self.max_retries < 0 or self.max_redirects < 0:
            raise ValueError("HttpSettings.max_retries and max_redirects cannot be negative")


@dataclass(frozen=True)
class Response:
    """A fully read response; the body is already decompressed and within the size cap."""

    url: str
    status: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    attempts: int = 1

    @property
    def content_type(self) -> str:
        """The media type alone, lower case ("" when the server sent none)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(
        self, markup: Literal["xml", "html", "text"] = "text", language: str | None = None
    ) -> str:
        return decode_body(
            self.body, self.headers.get("content-type"), markup=markup, language=language
        )

    def validators(self, previous: Validators | None = None) -> Validators:
        """ETag/Last-Modified to store next time.

        A 304 that omits them keeps the ones we sent; a full response without them clears them,
        since they described an older version. Page fingerprints are the caller's business.
        """
        prev = previous or Validators()
        keep = self.status == 304
        return Validators(
            etag=self.headers.get("etag") or (prev.etag if keep else None),
            last_modified=self.headers.get("last-modified")
            or (prev.last_modified if keep else None),
            fingerprint=prev.fingerprint,
            snapshot=prev.snapshot,
        )


def describe_size(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _describe_seconds(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.0f}"
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:g}"


def _plain_snippet(response: Response) -> str:
    """A short plain-text error body is often the only explanation a server gives."""
    if response.content_type not in ("text/plain", "") or not response.body:
        return ""
    text = one_line(response.text(), 200)
    return "" if "<" in text else text


def raise_for_status(response: Response) -> None:
    """Turn any non-2xx status left after retries into a readable SourceError."""
    status = response.status
    if 200 <= status < 300 or status == 304:
        return
    if status in _REDIRECTS:
        raise SourceError(f"HTTP {status} redirect without a Location header", http_status=status)
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status == 429:
        reason = f"rate limited: {reason}"
    snippet = _plain_snippet(response)
    if snippet:
        reason = f"{reason}: {snippet}"
    if response.attempts > 1:
        reason = f"{reason} (after {response.attempts} attempts)"
    raise SourceError(reason, http_status=status)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Transient(Exception):
    """A failure worth retrying (the connection broke before we got an answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _BoundedDecoder:
    """Content-Encoding decoder that refuses to produce more than `limit` bytes.

    Output is pulled in small steps (`max_length`), so a gzip bomb is stopped after `limit`
    bytes of output instead of being inflated into memory first.
    """

    def __init__(self, encoding: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1:
            raise SourceError(f"unsupported content encoding '{encoding}'")
        self._coding = codings[0] if codings else None
        if self._coding not in (None, "gzip", "x-gzip", "deflate"):
            raise SourceError(f"unsupported content encoding '{self._coding}'")
        # 32 + MAX_WBITS lets zlib accept either a gzip or a zlib header.
        wbits = zlib.MAX_WBITS | 32 if self._coding == "deflate" else zlib.MAX_WBITS | 16
        self._obj = zlib.decompressobj(wbits) if self._coding else None
        self._raw_deflate_tried = False
        self._limit = limit
        self._total = 0

    def _count(self, chunk: bytes) -> bytes:
        self._total += len(chunk)
        if self._total > self._limit:
            raise SourceError(
                f"response larger than {describe_size(self._limit)} after decompression"
            )
        return chunk

    def feed(self, data: bytes) -> bytes:
        if self._obj is None:
            return data
        out: list[bytes] = []
        while data:
            try:
                chunk = self._obj.decompress(data, _DECODE_STEP)
            except zlib.error as exc:
                # Some servers send raw deflate without the zlib header that RFC 9110 asks for.
                if self._coding == "deflate" and not self._raw_deflate_tried and not self._total:
                    self._raw_deflate_tried = True
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise SourceError(f"corrupt {self._coding} response: {exc}") from None
            out.append(self._count(chunk))
            data = self._obj.unconsumed_tail
            if self._obj.eof and self._obj.unused_data:
                # Concatenated gzip members are legal; start a fresh decoder for the next one.
                data = self._obj.unused_data
                self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
        return b"".join(out)

    def flush(self) -> bytes:
        if self._obj is None:
            return b""
        return self._count(self._obj.flush())


def _connect_reason(exc: BaseException, host: str) -> str:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return f"connection refused ({host})"
        if isinstance(current, socket.gaierror):
            return f"could not resolve host {host}"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"TLS certificate problem ({host}): {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({host}): {current.reason or current}"
        current = current.__cause__ or current.__context__
    message = str(exc)
    if "refused" in message.lower() or "Errno 111" in message:
        return f"connection refused ({host})"
    if "name resolution" in message or "not known" in message or "getaddrinfo" in message:
        return f"could not resolve host {host}"
    return f"could not connect to {host}: {one_line(message) or type(exc).__name__}"


def build_client(settings: HttpSettings) -> httpx.AsyncClient:
    """The only httpx client in `scrapers/`: explicit timeouts, pool size and user agent."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=settings.global_limit,
            max_keepalive_connections=settings.global_limit,
        ),
        headers={
            "User-Agent": settings.user_agent,
            # Only what _BoundedDecoder can inflate under the size cap.
            "Accept-Encoding": "gzip, deflate",
        },
        # Redirects are followed by HttpSession so that loops, hop counts and per-host limits
        # are ours to enforce.
        follow_redirects=False,
    )


@dataclass
class HttpSession:
    """Shared by all sources of one run: the client, the limits and per-host bookkeeping."""

    client: httpx.AsyncClient
    settings: HttpSettings
    # Where `parse` runs its calls; open_session makes one per run.
    workers: WorkerPool | None = None
    # Per-run scratch space for kinds (e.g. an OAuth token reused by several sources).
    state: dict[str, Any] = field(default_factory=dict)
    _host_limits: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False)
    _global_limit: asyncio.Semaphore | None = field(default=None, init=False)
    _pace_locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)
    _last_start: dict[str, float] = field(default_factory=dict, init=False)

    def _host_limit(self, host: str) -> asyncio.Semaphore:
        if host not in self._host_limits:
            self._host_limits[host] = asyncio.Semaphore(self.settings.per_host_limit)
        return self._host_limits[host]

    def _global(self) -> asyncio.Semaphore:
        if self._global_limit is None:
            self._global_limit = asyncio.Semaphore(self.settings.global_limit)
        return self._global_limit

    async def _pace(self, host: str, interval: float) -> None:
        """Space request starts to one host, across all sources that ask for the same pace."""
        if interval <= 0:
            return
        lock = self._pace_locks.setdefault(host, asyncio.Lock())
        loop = asyncio.get_running_loop()
        async with lock:
            last = self._last_start.get(host)
            if last is not None:
                wait = last + interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._last_start[host] = loop.time()

    async def parse(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run CPU work on untrusted bytes (parsing) and return its result.

        Kinds call this for every parse: `await session.parse(parse_feed, body, ...)`. `func` must
        be a top-level function and its arguments and result picklable, because the work is
        moved into a worker process where the source deadline can stop it. It may raise
        SourceError like any other step of a source.

        A call that takes longer than `parse_timeout` ends with SourceError("parsing took longer
        than N s"); the source deadline, if it comes first, cancels the call. Either way the
        worker is killed and the other sources carry on with a fresh one.
        """
        if self.workers is None:
            raise SourceError("internal error: this session has no parser processes")
        limit = self.settings.parse_timeout
        result: _T = await self.workers.run(
            func,
            args,
            kwargs,
            time_limit=limit,
            too_slow=f"parsing took longer than {_describe_seconds(limit)} s",
        )
        return result

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt)
        return base * random.uniform(0.5, 1.0)

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        validators: Validators | None = None,
        accept: str | None = None,
        min_interval: float = 0.0,
    ) -> Response:
        """One logical request: redirects, retries, pacing and every cap applied.

        Returns the final response whatever its status (callers decide what a 404 means);
        raises SourceError for transport failures, caps, loops and over-long Retry-After.
        """
        sent: dict[str, str] = dict(headers or {})
        if accept:
            sent["Accept"] = accept
        if validators is not None:
            if validators.etag:
                sent["If-None-Match"] = validators.etag
            if validators.last_modified:
                sent["If-Modified-Since"] = validators.last_modified
        visited = [url]
        current = url
        body = data
        for hop in range(self.settings.max_redirects + 1):
            response = await self._with_retries(method, current, sent, body, min_interval)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return response
            try:
                target = httpx.URL(current).join(location)
            except httpx.InvalidURL as exc:
                raise SourceError(f"bad redirect to {location!r}: {exc}") from None
            if target.scheme not in ("http", "https"):
                raise SourceError(f"redirect to unsupported URL scheme '{target.scheme}'")
            if str(target) in visited:
                raise SourceError(f"redirect loop: {current} redirects back to {target}")
            if hop == self.settings.max_redirects:
                break
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            if target.netloc != httpx.URL(current).netloc:
                # Credentials are for the host they were meant for, never for where it sends us.
                sent.pop("Authorization", None)
            current = str(target)
            visited.append(current)
        raise SourceError(f"too many redirects (more than {self.settings.max_redirects})")

    async def _with_retries(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        min_interval: float,
    ) -> Response:
        host = httpx.URL(url).netloc.decode("ascii", "replace")
        attempt = 0
        while True:
            await self._pace(host, min_interval)
            try:
                response = await self._exchange(method, url, headers, data, host, attempt + 1)
            except _Transient as exc:
                if attempt >= self.settings.max_retries:
                    suffix = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise SourceError(exc.reason + suffix) from None
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            wait = self._retry_after(response)
            if wait is not None:
                if wait > self.settings.retry_after_cap:
                    raise SourceError(
                        f"rate limited: server asks to retry after {_describe_seconds(wait)} s",
                        http_status=response.status,
                        retry_after=wait,
                    )
                if attempt < self.settings.max_retries:
                    await asyncio.sleep(wait)
                    attempt += 1
                    continue
                return response
            if response.status in _RETRY_STATUSES and attempt < self.settings.max_retries:
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return response

    @staticmethod
    def _retry_after(response: Response) -> float | None:
        if response.status not in _RETRY_AFTER_STATUSES:
            return None
        for name in _RETRY_AFTER_HEADERS:
            wait = parse_retry_after(response.headers.get(name))
            if wait is not None:
                return wait
        return None

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        host: str,
        attempt: int,
    ) -> Response:
        settings = self.settings
        # The deadline starts once we hold a slot: waiting our turn is not the server's fault.
        async with self._host_limit(host), self._global():
            try:
                async with asyncio.timeout(settings.deadline):
                    request = self.client.build_request(method, url, headers=headers, data=data)
                    raw = await self.client.send(request, stream=True)
                    try:
                        if raw.status_code in _REDIRECTS or raw.status_code == 304:
                            body = b""
                        else:
                            body = await self._read_body(raw)
                    finally:
                        await raw.aclose()
            except TimeoutError:
                raise SourceError(
                    f"timed out after {_describe_seconds(settings.deadline)} s"
                ) from None
            except httpx.ConnectTimeout:
                raise _Transient(
                    f"connection to {host} timed out after "
                    f"{_describe_seconds(settings.connect_timeout)} s"
                ) from None
            except httpx.ReadTimeout:
                raise SourceError(
                    f"timed out after {_describe_seconds(settings.read_timeout)} s "
                    "waiting for the server"
                ) from None
            except httpx.WriteTimeout:
                raise SourceError(
                    f"timed out after {_describe_seconds(settings.write_timeout)} s sending"
                ) from None
            except httpx.PoolTimeout:
                raise SourceError(
                    f"timed out after {_describe_seconds(settings.pool_timeout)} s "
                    "waiting for a free connection"
                ) from None
            except httpx.ConnectError as exc:
                raise _Transient(_connect_reason(exc, host)) from None
            except httpx.RemoteProtocolError as exc:
                if "without sending" in str(exc) or "closed" in str(exc).lower():
                    raise _Transient(
                        f"{host} closed the connection without a complete response"
                    ) from None
                raise SourceError(f"bad HTTP from {host}: {one_line(str(exc))}") from None
            except httpx.ReadError:
                raise _Transient(f"connection reset by {host}") from None
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise SourceError(f"invalid URL {url!r}: {exc}") from None
            except httpx.HTTPError as exc:
                detail = one_line(str(exc)) or type(exc).__name__
                raise SourceError(f"HTTP error from {host}: {detail}") from None
        return Response(
            url=str(raw.url),
            status=raw.status_code,
            reason_phrase=raw.reason_phrase,
            headers=raw.headers,
            body=body,
            attempts=attempt,
        )

    async def _read_body(self, raw: httpx.Response) -> bytes:
        limit = self.settings.max_body_bytes
        too_big = f"response larger than {describe_size(limit)}"
        declared = raw.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceError(too_big)
        decoder = _BoundedDecoder(raw.headers.get("content-encoding"), limit)
        wire = 0
        parts: list[bytes] = []
        async for chunk in raw.aiter_raw():
            wire += len(chunk)
            if wire > limit:
                raise SourceError(too_big)
            parts.append(decoder.feed(chunk))
        parts.append(decoder.flush())
        return b"".join(parts)


def _worker_pool(settings: HttpSettings) -> WorkerPool:
    # A parse turns at most one capped body into items; four times the cap leaves room for
    # text that grows when decoded, and stops a runaway answer from filling our memory.
    return WorkerPool(
        settings.parse_workers,
        memory=settings.parse_memory,
        answer_limit=4 * settings.max_body_bytes + 1024 * 1024,
    )


@asynccontextmanager
async def open_session(settings: HttpSettings) -> AsyncIterator[HttpSession]:
    """The client and the parser processes of one run; both are closed when the run ends."""
    workers = _worker_pool(settings)
    try:
        async with build_client(settings) as client:
            yield HttpSession(client=client, settings=settings, workers=workers)
    finally:
        await workers.aclose()
