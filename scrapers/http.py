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
from datetime import UTC, datetime
from typing import Any, Literal, ParamSpec, TypeVar

import httpcore
import httpx
import msgspec

from scrapers.base import Outcome, Validators
from scrapers.errors import SourceError, one_line, redact_url
from scrapers.limits import DEFAULT_USER_AGENT, HttpSettings
from scrapers.network import PEER_ADDRESS, Lookups, Network, backends, is_public
from scrapers.worker import WorkerPool

__all__ = [
    "DEFAULT_USER_AGENT",
    "HttpSession",
    "HttpSettings",
    "Network",
    "Response",
    "build_client",
    "describe_size",
    "open_session",
    "parse_retry_after",
    "raise_for_status",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# OpenSky announces its wait in its own header; treating it like Retry-After keeps one policy.
_RETRY_AFTER_HEADERS = ("retry-after", "x-rate-limit-retry-after-seconds")
_DECODE_STEP = 64 * 1024
# Request headers that carry credentials: never sent on to another scheme, host or port.
_CREDENTIAL_HEADER = re.compile(r"auth|cookie|token|key|secret|session|password", re.I)
# Marks a request that may only reach public addresses (see scrapers/network.py).
_OUTWARD_ONLY = "tracker_outward_only"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Response(msgspec.Struct, frozen=True):
    """A fully read response; the body is already decompressed and within the size cap."""

    url: str
    status: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    attempts: int = 1
    # The IP address the answer came from (None if unknown).
    peer: str | None = None

    @property
    def content_type(self) -> str:
        """The media type alone, lower case ("" when the server sent none)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(
        self, markup: Literal["xml", "html", "text"] = "text", language: str | None = None
    ) -> str:
        from scrapers.text import decode_body  # not needed by a run of 304s

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
    from email.utils import parsedate_to_datetime  # rare: most servers send seconds

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


class _TrustTransport(httpx.AsyncBaseTransport):
    """Two connection pools: one for configured URLs, one for hops that must stay public.

    Separate pools, so that a redirect can never reuse a connection opened to an inward address
    for a configured source: every connection in the outward pool was checked as public.
    """

    def __init__(self, inward: httpx.AsyncHTTPTransport, outward: httpx.AsyncHTTPTransport):
        self._inward = inward
        self._outward = outward

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._outward if request.extensions.get(_OUTWARD_ONLY) else self._inward
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self._inward.aclose()
        finally:
            await self._outward.aclose()


class _TLS:
    """The run's TLS context, made when the first https connection needs it: loading the CA
    bundle costs some 40 ms, which a run over plain-http sources (an intranet feed) need not pay.
    Both pools share it."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            context = httpx.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
            # Many servers end a connection without TLS's close_notify: that is the end of the
            # body (as httpx's AnyIO backend treats it), not an error.
            context.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
            self._context = context
        return self._context


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, with the TLS context taken from `_TLS` when an https origin first
    needs one (httpcore would otherwise fall back to its own default context)."""

    def __init__(self, tls: _TLS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tls = tls

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if origin.scheme == b"https" and self._ssl_context is None:
            self._ssl_context = self._tls.context()
        return super().create_connection(origin)


def _transport(
    limits: httpx.Limits, tls: _TLS, backend: httpcore.AsyncNetworkBackend
) -> httpx.AsyncHTTPTransport:
    # The transport's own context is never used (its pool is replaced below); one with no CA
    # loaded costs nothing, and would refuse every certificate if it ever were used.
    unused = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    transport = httpx.AsyncHTTPTransport(verify=unused, limits=limits)
    # httpx takes no network backend, so the pool it built is replaced by one that uses ours
    # (httpx's transport only maps requests and errors around `_pool`).
    transport._pool = _Pool(
        tls,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport


def build_client(
    settings: HttpSettings, network: Network | None = None, lookups: Lookups | None = None
) -> httpx.AsyncClient:
    """The only httpx client in `scrapers/`: explicit timeouts, pool size and user agent, and
    every connection made through the address checks of scrapers/network.py."""
    limits = httpx.Limits(
        max_connections=settings.global_limit,
        max_keepalive_connections=settings.global_limit,
    )
    tls = _TLS()
    inward, outward = backends(network, lookups or Lookups((network or Network()).resolver))
    return httpx.AsyncClient(
        transport=_TrustTransport(
            _transport(limits, tls, inward), _transport(limits, tls, outward)
        ),
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        headers={
            "User-Agent": settings.user_agent,
            # Only what _BoundedDecoder can inflate under the size cap.
            "Accept-Encoding": "gzip, deflate",
        },
        # Redirects are followed by HttpSession so that loops, hop counts, per-host limits and
        # where a redirect may lead are ours to enforce.
        follow_redirects=False,
        # No proxy from the environment: through a proxy we could not see, or check, the
        # address a request reaches.
        trust_env=False,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _exchange_error(
    exc: httpx.HTTPError, settings: HttpSettings, host: str, url: str
) -> SourceError | _Transient:
    """What went wrong in one exchange, as one line; `_Transient` when trying again may help."""
    if isinstance(exc, httpx.ConnectTimeout):
        return _Transient(
            f"connection to {host} timed out after {_describe_seconds(settings.connect_timeout)} s"
        )
    if isinstance(exc, httpx.ReadTimeout):
        return SourceError(
            f"timed out after {_describe_seconds(settings.read_timeout)} s waiting for the server"
        )
    if isinstance(exc, httpx.WriteTimeout):
        return SourceError(f"timed out after {_describe_seconds(settings.write_timeout)} s sending")
    if isinstance(exc, httpx.PoolTimeout):
        return SourceError(
            f"timed out after {_describe_seconds(settings.pool_timeout)} s "
            "waiting for a free connection"
        )
    if isinstance(exc, httpx.ConnectError):
        return _Transient(_connect_reason(exc, host))
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in str(exc) or "closed" in str(exc).lower():
            return _Transient(f"{host} closed the connection without a complete response")
        return SourceError(f"bad HTTP from {host}: {one_line(str(exc))}")
    if isinstance(exc, httpx.ReadError):
        return _Transient(f"connection reset by {host}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return SourceError(f"invalid URL {redact_url(url)!r}: {exc}")
    return SourceError(f"HTTP error from {host}: {one_line(str(exc)) or type(exc).__name__}")


class HttpSession(msgspec.Struct):
    """Shared by all sources of one run: the client, the limits and per-host bookkeeping."""

    client: httpx.AsyncClient
    settings: HttpSettings
    # Where `parse` runs its calls; open_session makes one per run.
    workers: WorkerPool | None = None
    # The run's post-processing step (see scrapers.collect.Postprocess), or None.
    postprocess: Callable[[Outcome], Outcome] | None = None
    # The run's name lookups, shared with the client: a host that failed fails again at once.
    lookups: Lookups | None = None
    # Per-run scratch space for kinds (e.g. an OAuth token reused by several sources).
    state: dict[str, Any] = msgspec.field(default_factory=dict)
    # Per-host bookkeeping of the run (not arguments).
    _host_limits: dict[str, asyncio.Semaphore] = msgspec.field(default_factory=dict)
    _global_limit: asyncio.Semaphore | None = None
    _pace_locks: dict[str, asyncio.Lock] = msgspec.field(default_factory=dict)
    _last_start: dict[str, float] = msgspec.field(default_factory=dict)
    # The post-processing step wrapped for a worker, made once: a worker unpickles each distinct
    # callable once, so the step's state (a compiled matcher) lives on from source to source.
    _stepped: Callable[..., Any] | None = None

    def _host_limit(self, host: str) -> asyncio.Semaphore:
        if host not in self._host_limits:
            self._host_limits[host] = asyncio.Semaphore(self.settings.per_host_limit)
        return self._host_limits[host]

    def _global(self) -> asyncio.Semaphore:
        if self._global_limit is None:
            self._global_limit = asyncio.Semaphore(self.settings.global_limit)
        return self._global_limit

    async def _pace(self, host: str, name: str, interval: float) -> None:
        """Space request starts to one host, across all sources that ask for the same pace.

        A pause ends early, with the lookup's SourceError, when the host's name turns out not to
        resolve: offline, four sources on one paced host must not wait 2 s each for nothing.
        """
        if interval <= 0:
            return
        lock = self._pace_locks.setdefault(host, asyncio.Lock())
        loop = asyncio.get_running_loop()
        async with lock:
            last = self._last_start.get(host)
            if last is not None:
                wait = last + interval - loop.time()
                if wait > 0 and self.lookups is not None:
                    failure = await self.lookups.failed_within(name, wait)
                    if failure is not None:
                        raise SourceError(failure)
                elif wait > 0:
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

    async def parse_outcome(
        self, func: Callable[_P, Outcome], *args: _P.args, **kwargs: _P.kwargs
    ) -> Outcome:
        """`parse` for a parser that builds the source's whole Outcome: the run's
        post-processing step, if any, runs on it in the same worker call, so the items cross
        between the processes once (and the step is bounded by the same limits)."""
        if self.postprocess is None:
            return await self.parse(func, *args, **kwargs)
        result: Outcome = await self.parse(self._step(), True, func, *args, **kwargs)
        return result

    async def postprocess_alone(self, outcome: Outcome) -> Outcome:
        """The post-processing step on an outcome a kind built in this process."""
        result: Outcome = await self.parse(self._step(), False, outcome)
        return result

    def _step(self) -> Callable[..., Any]:
        if self._stepped is None:
            from scrapers.collect import Stepped

            assert self.postprocess is not None
            warm = self.workers.warm if self.workers is not None else None
            # The very object the pool's fork server has built, so that workers find it built.
            if isinstance(warm, Stepped) and warm.step is self.postprocess:
                self._stepped = warm
            else:
                self._stepped = Stepped(self.postprocess)
        return self._stepped

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
        follow_redirects: bool = True,
    ) -> Response:
        """One logical request: redirects, retries, pacing and every cap applied.

        Returns the final response whatever its status (callers decide what a 404 means);
        raises SourceError for transport failures, caps, loops, over-long Retry-After and
        redirects that would lead inward. With `follow_redirects=False` (credential requests
        such as an OAuth token) a redirect is returned as it is, never followed.
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
        # The configured URL may point anywhere; once an answer has come from a public address,
        # every later hop must reach a public address too (checked when connecting).
        outward_only = False
        for hop in range(self.settings.max_redirects + 1):
            response = await self._with_retries(
                method, current, sent, body, min_interval, outward_only
            )
            outward_only = outward_only or is_public(response.peer)
            location = response.headers.get("location")
            if not follow_redirects or response.status not in _REDIRECTS or not location:
                return response
            try:
                target = httpx.URL(current).join(location)
            except httpx.InvalidURL as exc:
                raise SourceError(f"bad redirect to {redact_url(location)!r}: {exc}") from None
            if target.scheme not in ("http", "https"):
                raise SourceError(f"redirect to unsupported URL scheme '{target.scheme}'")
            if str(target) in visited:
                raise SourceError(
                    f"redirect loop: {redact_url(current)} redirects back to "
                    f"{redact_url(str(target))}"
                )
            if hop == self.settings.max_redirects:
                break
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            if _origin(target) != _origin(httpx.URL(current)):
                # Credentials are for the scheme, host and port they were meant for, never for
                # wherever a server sends us (https → http on the same host included).
                for name in [n for n in sent if _CREDENTIAL_HEADER.search(n)]:
                    del sent[name]
                target = target.copy_with(userinfo=b"")
                if body is not None:
                    # A 307/308 would re-send the form (a client secret, say) to the new host.
                    raise SourceError(
                        f"redirect to {redact_url(str(target))} not followed: it would send "
                        "the request body to another host"
                    )
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
        outward_only: bool,
    ) -> Response:
        parsed = httpx.URL(url)
        host = parsed.netloc.decode("ascii", "replace")
        failure = self.lookups.failure(parsed.host) if self.lookups is not None else None
        if failure is not None:
            # Before any polite pause: offline, waiting our turn for a dead name only wastes time.
            raise SourceError(failure)
        attempt = 0
        while True:
            await self._pace(host, parsed.host, min_interval)
            try:
                response = await self._exchange(
                    method, parsed, headers, data, host, attempt + 1, outward_only
                )
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
        url: httpx.URL,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        host: str,
        attempt: int,
        outward_only: bool,
    ) -> Response:
        settings = self.settings
        # The deadline starts once we hold a slot: waiting our turn is not the server's fault.
        async with self._host_limit(host), self._global():
            try:
                async with asyncio.timeout(settings.deadline):
                    request = self.client.build_request(
                        method,
                        url,
                        headers=headers,
                        data=data,
                        extensions={_OUTWARD_ONLY: outward_only},
                    )
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
            except httpx.HTTPError as exc:
                raise _exchange_error(exc, settings, host, str(url)) from None
        stream = raw.extensions.get("network_stream")
        peer = stream.get_extra_info(PEER_ADDRESS) if stream is not None else None
        # Without user information: the URL is the base of the links in a feed, and they must
        # not carry the feed's password into stored evidence. (Most URLs have none, and
        # copy_with parses the URL again.)
        final = raw.url.copy_with(userinfo=b"") if raw.url.userinfo else raw.url
        return Response(
            url=str(final),
            status=raw.status_code,
            reason_phrase=raw.reason_phrase,
            headers=raw.headers,
            body=body,
            attempts=attempt,
            peer=peer if isinstance(peer, str) else None,
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


@asynccontextmanager
async def open_session(
    settings: HttpSettings,
    network: Network | None = None,
    *,
    postprocess: Callable[[Outcome], Outcome] | None = None,
    workers: WorkerPool | None = None,
) -> AsyncIterator[HttpSession]:
    """The client and the parser processes of one run; both are closed when the run ends.

    `network` replaces name resolution and connecting (tests: a stub resolver and dialer).
    `workers`: the run's parser pool, if the caller made (and perhaps started) it already, as
    `collect` does; else one whose processes start when answers arrive. The session closes it.
    """
    if workers is None:
        from scrapers.collect import step_pool

        workers = step_pool(settings, postprocess)
    lookups = Lookups((network or Network()).resolver)
    try:
        async with build_client(settings, network, lookups) as client:
            yield HttpSession(
                client=client,
                settings=settings,
                workers=workers,
                lookups=lookups,
                postprocess=postprocess,
            )
    finally:
        await workers.aclose()
