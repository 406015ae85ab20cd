"""Flights observed by the OpenSky Network between two airports (default Tabriz OITT ↔ Baku UBBB).

For each of the last `days` UTC days (default 2: yesterday and the day before; OpenSky publishes
flights the day after), asks for departures from each airport and keeps those that arrived at the
other one. Each observed flight becomes a trusted, structured item ("Flight AHY091 OITT→UBBB
observed 2026-01-01 (icao24 600a1b)") that counts for the commitment in `commitment` (default
tabriz-baku-flight) and, if set, the milestone in `milestone`, without waiting for review.
Needs free OpenSky API client credentials (account page → API client): set OPENSKY_CLIENT_ID and
OPENSKY_CLIENT_SECRET; without them the source is disabled rather than failed.
Each request costs 4 of the 4,000 daily credits of a standard account (2 × days per run).
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
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any
from urllib.parse import urlencode

from scrapers.base import Item, Outcome, SourceSpec, Validators
from scrapers.errors import SourceError
from scrapers.http import HttpSession, Response, raise_for_status
from scrapers.options import Options

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
}
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
            response = await self._session.fetch(
                self._url, method="POST", data=self._form, accept="application/json"
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
        usable = isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool)
        return payload["access_token"], float(lifetime) if usable else 1800.0


async def _departures(session: HttpSession, url: str, tokens: _Tokens) -> list[dict[str, Any]]:
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
    if response.status == 404:
        return []  # OpenSky's way of saying "no flights in this window"
    raise_for_status(response)
    try:
        flights = json.loads(response.body)
    except ValueError as exc:
        raise SourceError(f"OpenSky sent malformed JSON: {exc}") from None
    if not isinstance(flights, list):
        raise SourceError("OpenSky sent something other than a list of flights")
    return [flight for flight in flights if isinstance(flight, dict)]


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(
    flight: dict[str, Any], departure: str, arrival: str, commitment: str, milestone: int | None
) -> Item | None:
    icao24 = str(flight.get("icao24") or "").strip().lower()
    first = flight.get("firstSeen")
    if not icao24 or not isinstance(first, int):
        return None
    last = flight.get("lastSeen") if isinstance(flight.get("lastSeen"), int) else None
    callsign = str(flight.get("callsign") or "").strip() or None
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
        return await _collect(spec, options, session, client_id, client_secret)
    except SourceError as exc:
        # A server may echo what it was sent; the secret must never reach a log or a report.
        if client_secret in exc.reason:
            exc.reason = exc.reason.replace(client_secret, "***")
        raise


async def _collect(
    spec: SourceSpec, options: Options, session: HttpSession, client_id: str, client_secret: str
) -> Outcome:
    api_root = options.text("api_root", DEFAULT_API_ROOT).rstrip("/")
    tokens = _Tokens(
        session, options.text("token_url", DEFAULT_TOKEN_URL), client_id, client_secret
    )
    days = options.integer("days", 2, minimum=1, maximum=30)
    one_end = options.text("from_airport", "OITT").upper()
    other_end = options.text("to_airport", "UBBB").upper()
    commitment = options.text("commitment", "tabriz-baku-flight")
    milestone = options.optional_integer("milestone")
    items: list[Item] = []
    seen: set[str] = set()
    for begin, end in day_windows(days):
        for departure, arrival in ((one_end, other_end), (other_end, one_end)):
            query = urlencode({"airport": departure, "begin": begin, "end": end})
            url = f"{api_root}/flights/departure?{query}"
            for flight in await _departures(session, url, tokens):
                if str(flight.get("estArrivalAirport") or "").upper() != arrival:
                    continue
                item = _item(flight, departure, arrival, commitment, milestone)
                if item is not None and item.url not in seen:
                    seen.add(item.url)
                    items.append(item)
    return Outcome(source=spec.name, state="ok", items=items)
