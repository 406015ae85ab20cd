"""Every limit the scrapers obey, in one frozen record (`HttpSettings`).

Its own module, free of httpx, so that a parser worker (which receives the settings with every
call) and the settings reader do not load the HTTP client. `scrapers.http` re-exports it.
"""

from __future__ import annotations

import msgspec

__all__ = ["DEFAULT_USER_AGENT", "HttpSettings"]

DEFAULT_USER_AGENT = "tracker/0.1 (+https://github.com/tracker-monitor/tracker)"


class HttpSettings(msgspec.Struct, frozen=True):
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
    # ... the address space a worker may add to what it has at start (~45 MB); a 10 MB feed
    # that only feedparser can read needs ~100 MB ...
    parse_memory: int = 256 * 1024 * 1024
    # ... and how many workers may parse at once. One starts with the first parse; a second
    # only when a call has waited 0.5 s (a backlog, or a hostile input holding the first).
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
