"""Flights observed by the OpenSky Network between two airports (default Tabriz OITT ↔ Baku UBBB).

For each of the last `days` UTC days (default 2: yesterday and the day before; OpenSky publishes
flights the day after), asks for departures from each airport and keeps those that arrived at the
other one. Each observed flight becomes a trusted, structured item ("Flight AHY091 OITT→UBBB
observed 2026-01-01 (icao24 600a1b)") that counts for the commitment in `commitment` (default
tabriz-baku-flight) and, if set, the milestone in `milestone`, without waiting for review.
Needs free OpenSky API client credentials (account page → API client): set OPENSKY_CLIENT_ID and
OPENSKY_CLIENT_SECRET; without them the source is disabled rather than failed.
Credits: each request for a past day costs 30 credits (two per day, one per direction), out of
4,000 a day for a standard account. The source spends at most `daily_credits` per UTC day
(default 4000; lower it when several sources share an account), remembers the days it has read
for good (the day before yesterday and older: OpenSky's nightly batch no longer changes them)
so that a past day costs its credits once, fetches the newest days first, and stops when
OpenSky's X-Rate-Limit-Remaining says the account cannot pay for the next request. Requests
left out for credits are counted as skipped ("credit budget"); the credits left are reported.
ADS-B coverage over north-west Iran is thin: an observed flight is evidence, a missing one is not.

Example:
    [[source]]
    name = "opensky-tabriz-baku"
    kind = "opensky"
    language = "en"
    commitment = "tabriz-baku-flight"
    days = 2
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from urllib.parse import urlencode

from msgspec.structs import replace

from scrapers.base import (
    SKIP_BAD_RECORD,
    SKIP_CREDIT_BUDGET,
    Item,
    Outcome,
    SourceSpec,
    Validators,
    count_skipped,
)
from scrapers.errors import SourceError
from scrapers.http import HttpSession, Response, raise_for_status
from scrapers.options import Options
from scrapers.text import collapse

__all__ = [
    "CREDENTIALS",
    "DEFAULT_API_ROOT",
    "DEFAULT_TOKEN_URL",
    "NEEDS_COMMITMENT",
    "NEEDS_URL",
    "OPTIONS",
    "QUERY_KEY",
    "TRUSTED",
    "check_options",
    "day_windows",
    "fetch",
]

NEEDS_URL = False
# The commitment defaults to tabriz-baku-flight, so the source need not name one.
NEEDS_COMMITMENT = False
QUERY_KEY: str | None = None
CREDENTIALS: dict[str, str] = {
    "client_id": "OPENSKY_CLIENT_ID",
    "client_secret": "OPENSKY_CLIENT_SECRET",
}
# An observed flight is a fact, not a claim: it confirms itself without review.
TRUSTED = True
DEFAULT_API_ROOT = "https://opensky-network.org/api"
DEFAULT_TOKEN_URL = (
    "https://auth.opensky-network.org/auth/realms/opensky-network/protocol/openid-connect/token"
)
DISABLED_REASON = "disabled: set OPENSKY_CLIENT_ID and OPENSKY_CLIENT_SECRET"
OPTIONS: dict[str, str] = {
    "client_id": "OAuth2 client id (the tracker fills it from OPENSKY_CLIENT_ID)",
    "client_secret": "OAuth2 client secret (filled from OPENSKY_CLIENT_SECRET; never shown)",
    "token_url": "OAuth2 token endpoint (default: OpenSky's)",
    "api_root": f"REST API root (default {DEFAULT_API_ROOT})",
    "days": "how many past UTC days to check, ending yesterday (default 2, at most 30)",
    "from_airport": "ICAO code of one end (default OITT, Tabriz)",
    "to_airport": "ICAO code of the other end (default UBBB, Baku)",
    "commitment": "commitment slug that each observed flight counts for (default "
    "tabriz-baku-flight)",
    "milestone": "milestone number an observed flight confirms (default: none)",
    "daily_credits": "credits this source may spend per UTC day (default 4000)",
}
_CREDITS_PER_REQUEST = 30  # /flights/* for a past day: one partition, 30 credits
_DEFAULT_DAILY_CREDITS = 4000
_MAX_DAYS = 30
_DAY = 86_400


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse bad option values (the same checks run again at fetch time); credentials may be
    missing here, the environment fills them when the source runs."""
    o = Options(options)
    o.optional_text("client_id")
    o.optional_text("client_secret")
    o.url("token_url", DEFAULT_TOKEN_URL)
    o.url("api_root", DEFAULT_API_ROOT)
    o.integer("days", 2, minimum=1, maximum=30)
    for name, default in (("from_airport", "OITT"), ("to_airport", "UBBB")):
        o.matching(name, default, r"[A-Za-z0-9]{4}", "a 4-character ICAO code such as OITT")
    o.text("commitment", "tabriz-baku-flight")
    o.optional_positive("milestone")
    o.integer("daily_credits", _DEFAULT_DAILY_CREDITS, minimum=0, maximum=1_000_000)


# Renew a little early so that a token never expires between our check and OpenSky's.
_TOKEN_MARGIN = 30.0


def day_windows(days: int, today: datetime | None = None) -> list[tuple[int, int]]:
    """(begin, end) Unix seconds, each inside one UTC day: the API refuses longer windows."""
    current = (today or datetime.now(UTC)).date()
    windows = []
    for back in range(days, 0, -1):
        start = datetime.combine(current - timedelta(days=back), clock(0, 0), tzinfo=UTC)
        begin = int(start.timestamp())
        windows.append((begin, begin + _DAY - 1))
    return windows


class _Tokens:
    """One bearer token per (token URL, client) for the whole run, shared by all sources."""

    def __init__(
        self, session: HttpSession, token_url: str, client_id: str, client_secret: str
    ) -> None:
        self._session = session
        self._url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        key = f"opensky-token {token_url} {client_id}"
        self._cache: dict[str, Any] = session.state.setdefault(key, {"lock": asyncio.Lock()})

    async def get(self, stale: str | None = None) -> str:
        async with self._cache["lock"]:
            token = self._cache.get("token")
            if (
                isinstance(token, str)
                and token != stale
                and self._cache["expires"] > time.monotonic()
            ):
                return token
            # A redirect would carry the client secret elsewhere: token requests follow none.
            response = await self._session.fetch(
                self._url,
                method="POST",
                data=self._form,
                accept="application/json",
                follow_redirects=False,
            )
            token, lifetime = self._read(response)
            self._cache["token"] = token
            self._cache["expires"] = time.monotonic() + max(0.0, lifetime - _TOKEN_MARGIN)
            return token

    @staticmethod
    def _read(response: Response) -> tuple[str, float]:
        try:
            payload = json.loads(response.body or b"null")
        except ValueError:
            payload = None
        if response.status != 200:
            error = payload.get("error") if isinstance(payload, dict) else None
            detail = f" ({error})" if isinstance(error, str) else ""
            raise SourceError(
                f"OpenSky token request failed: HTTP {response.status} "
                f"{response.reason_phrase}{detail}",
                http_status=response.status,
            )
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            raise SourceError("OpenSky token request failed: no access_token in the answer")
        lifetime = payload.get("expires_in")
        if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool):
            return payload["access_token"], float(lifetime)
        return payload["access_token"], 1800.0


def parse_flights(body: bytes) -> list[dict[str, Any]]:
    """OpenSky's JSON array of flights (pure, picklable); non-objects are left out."""
    try:
        flights = json.loads(body)
    except ValueError as exc:
        raise SourceError(f"OpenSky sent malformed JSON: {exc}") from None
    if not isinstance(flights, list):
        raise SourceError("OpenSky sent something other than a list of flights")
    return [flight for flight in flights if isinstance(flight, dict)]


def _remaining(response: Response) -> int | None:
    value = response.headers.get("x-rate-limit-remaining", "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


async def _departures(
    session: HttpSession, url: str, tokens: _Tokens
) -> tuple[list[dict[str, Any]], int | None]:
    """The flights in one window, and the credits OpenSky says are left."""
    token = await tokens.get()
    response = await session.fetch(
        url, headers={"Authorization": f"Bearer {token}"}, accept="application/json"
    )
    if response.status == 401:
        token = await tokens.get(stale=token)
        response = await session.fetch(
            url, headers={"Authorization": f"Bearer {token}"}, accept="application/json"
        )
        if response.status == 401:
            raise SourceError("OpenSky refused the access token (HTTP 401) even after renewing it")
    remaining = _remaining(response)
    if response.status == 404:
        return [], remaining  # OpenSky's way of saying "no flights in this window"
    raise_for_status(response)
    return await session.parse(parse_flights, response.body), remaining


_ICAO24 = re.compile(r"[0-9a-f]{6}")
# Unix seconds from 2000 to 2100: anything else is not a time OpenSky could have observed.
_EARLIEST, _LATEST = 946_684_800, 4_102_444_800


def _plausible_time(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _EARLIEST <= value < _LATEST


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(
    flight: dict[str, Any], departure: str, arrival: str, commitment: str, milestone: int | None
) -> Item | None:
    icao24 = str(flight.get("icao24") or "").strip().lower()
    first = flight.get("firstSeen")
    if not _ICAO24.fullmatch(icao24) or not _plausible_time(first):
        return None
    assert isinstance(first, int)
    last = flight.get("lastSeen") if _plausible_time(flight.get("lastSeen")) else None
    raw_callsign = flight.get("callsign")
    callsign = collapse(raw_callsign)[:16] or None if isinstance(raw_callsign, str) else None
    seen = datetime.fromtimestamp(first, UTC)
    who = callsign or "without callsign"
    landed = (
        f" and reach {arrival} at {datetime.fromtimestamp(last, UTC):%H:%M} UTC" if last else ""
    )
    return Item(
        title=f"Flight {who} {departure}→{arrival} observed {seen:%Y-%m-%d} (icao24 {icao24})",
        url=f"https://opensky-network.org/aircraft-profile?icao24={icao24}&time={first}",
        summary=(
            f"OpenSky saw {callsign or 'an aircraft'} (icao24 {icao24}) leave {departure} "
            f"at {seen:%H:%M} UTC{landed} on {seen:%Y-%m-%d}."
        ),
        published_at=seen,
        guid=f"opensky:{icao24}:{first}",
        language="en",
        structured={
            "commitment": commitment,
            "milestone": milestone,
            "trusted": True,
            "callsign": callsign,
            "icao24": icao24,
            "departure": departure,
            "arrival": arrival,
            "first_seen": _iso(first),
            "last_seen": _iso(last) if last else None,
        },
    )


async def fetch(spec: SourceSpec, validators: Validators, session: HttpSession) -> Outcome:
    options = Options(spec.options)
    client_id = options.optional_text("client_id")
    client_secret = options.optional_text("client_secret")
    if not client_id or not client_secret:
        return Outcome(
            source=spec.name, state="disabled", reason=DISABLED_REASON, validators=validators
        )
    try:
        return await _collect(spec, validators, options, session, (client_id, client_secret))
    except SourceError as exc:
        # A server may echo what it was sent; the secret must never reach a log or a report.
        if client_secret in exc.reason:
            exc.reason = exc.reason.replace(client_secret, "***")
        raise


class _Budget:
    """Credits spent today and days read for good, kept in Validators.snapshot between runs."""

    def __init__(self, snapshot: str | None, today: date, daily: int) -> None:
        self.today = today
        self.daily = daily
        self.spent = 0
        self.done: set[str] = set()
        self.remaining: int | None = None  # what OpenSky last said
        try:
            state = json.loads(snapshot or "{}")
        except ValueError:
            state = {}
        if not isinstance(state, dict):
            state = {}
        spent = state.get("spent")
        if state.get("day") == today.isoformat() and isinstance(spent, int) and spent >= 0:
            self.spent = spent
        oldest = (today - timedelta(days=_MAX_DAYS + 1)).isoformat()
        done = state.get("done")
        if isinstance(done, list):
            self.done = {d for d in done if isinstance(d, str) and oldest <= d < today.isoformat()}

    def affords(self, requests: int) -> bool:
        cost = requests * _CREDITS_PER_REQUEST
        if self.spent + cost > self.daily:
            return False
        return self.remaining is None or self.remaining >= cost

    def snapshot(self) -> str:
        state = {"day": self.today.isoformat(), "spent": self.spent, "done": sorted(self.done)}
        return json.dumps(state, separators=(",", ":"))


async def _collect(
    spec: SourceSpec,
    validators: Validators,
    options: Options,
    session: HttpSession,
    credentials: tuple[str, str],
) -> Outcome:
    api_root = options.url("api_root", DEFAULT_API_ROOT).rstrip("/")
    tokens = _Tokens(session, options.url("token_url", DEFAULT_TOKEN_URL), *credentials)
    days = options.integer("days", 2, minimum=1, maximum=_MAX_DAYS)
    one_end = options.text("from_airport", "OITT").upper()
    other_end = options.text("to_airport", "UBBB").upper()
    commitment = options.text("commitment", "tabriz-baku-flight")
    milestone = options.optional_positive("milestone")
    now = datetime.now(UTC)
    budget = _Budget(
        validators.snapshot,
        now.date(),
        options.integer("daily_credits", _DEFAULT_DAILY_CREDITS, minimum=0, maximum=1_000_000),
    )
    items: list[Item] = []
    skipped: dict[str, int] = {}
    seen: set[str] = set()
    legs = ((one_end, other_end), (other_end, one_end))
    requested = False
    # Newest first: when credits run short, yesterday matters more than last week.
    for begin, end in reversed(day_windows(days, now)):
        day = datetime.fromtimestamp(begin, UTC).date()
        if day.isoformat() in budget.done:
            continue
        if not budget.affords(len(legs)):
            count_skipped(skipped, SKIP_CREDIT_BUDGET, len(legs))
            continue
        for departure, arrival in legs:
            query = urlencode({"airport": departure, "begin": begin, "end": end})
            flights, remaining = await _departures(
                session, f"{api_root}/flights/departure?{query}", tokens
            )
            requested = True
            budget.spent += _CREDITS_PER_REQUEST
            budget.remaining = remaining if remaining is not None else budget.remaining
            for flight in flights:
                if str(flight.get("estArrivalAirport") or "").upper() != arrival:
                    continue
                item = _item(flight, departure, arrival, commitment, milestone)
                if item is None:
                    count_skipped(skipped, SKIP_BAD_RECORD)
                elif item.url not in seen:
                    seen.add(item.url)
                    items.append(item)
        if day <= now.date() - timedelta(days=2):
            budget.done.add(day.isoformat())
    return Outcome(
        source=spec.name,
        state="ok" if requested or skipped else "unchanged",
        items=items,
        validators=replace(validators, snapshot=budget.snapshot()),
        skipped=skipped,
        rate_limit_remaining=budget.remaining,
    )
