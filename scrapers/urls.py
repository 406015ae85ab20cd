"""URLs as the HTTP client reads them: parsed, checked and normalised, the way httpx does it.

The rules are httpx's (`httpx._urlparse`, BSD licence, which follows RFC 3986 and the WHATWG URL
standard): the scheme and host lower-cased, an IDNA host encoded, a default port dropped, "." and
".." removed from the path, and what may not stand in a path, query or fragment percent-encoded
(an existing `%xx` left alone). They are kept here, in a module that imports nothing heavy, so
that a refresh does not load httpx; tests/test_scrapers_urls.py checks that both agree.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from urllib.parse import urljoin

__all__ = ["URL", "InvalidURL"]

MAX_URL_LENGTH = 65536
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_SUB_DELIMS = "!$&'()*+,;="
_PERCENT_ENCODED = re.compile("%[A-Fa-f0-9]{2}")


def _printable_except(*excluded: int) -> str:
    return "".join(chr(i) for i in range(0x20, 0x7F) if i not in excluded)


_FRAG_SAFE = _printable_except(0x20, 0x22, 0x3C, 0x3E, 0x60)
_QUERY_SAFE = _printable_except(0x20, 0x22, 0x23, 0x3C, 0x3E)
_PATH_SAFE = _printable_except(0x20, 0x22, 0x23, 0x3C, 0x3E, 0x3F, 0x60, 0x7B, 0x7D)
_USERINFO_SAFE = _printable_except(
    *(0x20, 0x22, 0x23, 0x3C, 0x3E, 0x3F, 0x60, 0x7B, 0x7D),
    *(0x2F, 0x3B, 0x3D, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x7C),
)
_URL = re.compile(
    r"(?:(?P<scheme>([a-zA-Z][a-zA-Z0-9+.-]*)?):)?"
    r"(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?:#(?P<fragment>.*))?"
)
_AUTHORITY = re.compile(r"(?:(?P<userinfo>.*)@)?(?P<host>(\[.*\]|[^:@]*)):?(?P<port>.*)?")
_IPV4_STYLE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
_IPV6_STYLE = re.compile(r"^\[.*\]$")
_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}


class InvalidURL(ValueError):
    """A URL that cannot be parsed or does not follow the rules (the message says which)."""


def _percent(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def _encoded(text: str, safe: str) -> str:
    keep = _UNRESERVED + safe
    if not text.rstrip(keep):
        return text
    return "".join(char if char in keep else _percent(char) for char in text)


def _quote(text: str, safe: str) -> str:
    """Percent-encode what is not `safe`, leaving existing `%xx` escapes as they are."""
    if "%" not in text:
        return _encoded(text, safe)
    parts = []
    at = 0
    for match in _PERCENT_ENCODED.finditer(text):
        if match.start() != at:
            parts.append(_encoded(text[at : match.start()], safe))
        parts.append(match.group(0))
        at = match.end()
    if at != len(text):
        parts.append(_encoded(text[at:], safe))
    return "".join(parts)


def _host(host: str) -> str:
    if not host:
        return ""
    if _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if _IPV6_STYLE.match(host):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    if host.isascii():
        return _quote(host.lower(), _SUB_DELIMS + '"`{}%|\\')
    import idna  # only for hosts written in another script

    try:
        return idna.encode(host.lower()).decode("ascii")
    except idna.IDNAError:
        raise InvalidURL(f"Invalid IDNA hostname: {host!r}") from None


def _port(port: str | None, scheme: str) -> int | None:
    if port is None or port == "":
        return None
    try:
        number = int(port)
    except ValueError:
        raise InvalidURL(f"Invalid port: {port!r}") from None
    return None if number == _DEFAULT_PORTS.get(scheme) else number


def _check_path(path: str, has_scheme: bool, has_authority: bool) -> None:
    if has_authority and path and not path.startswith("/"):
        raise InvalidURL("For absolute URLs, path must be empty or begin with '/'")
    if not has_scheme and not has_authority:
        if path.startswith("//"):
            raise InvalidURL("Relative URLs cannot have a path starting with '//'")
        if path.startswith(":"):
            raise InvalidURL("Relative URLs cannot have a path starting with ':'")


def _dot_segments(path: str) -> str:
    if "." not in path:
        return path
    parts = path.split("/")
    if "." not in parts and ".." not in parts:
        return path
    out: list[str] = []
    for part in parts:
        if part == ".":
            continue
        if part == "..":
            if out and out != [""]:
                out.pop()
        else:
            out.append(part)
    return "/".join(out)


@dataclass(frozen=True)
class URL:
    """A parsed, normalised URL (all components ASCII)."""

    scheme: str
    userinfo: str
    host: str  # IDNA-encoded; an IPv6 address without brackets
    port: int | None  # None for the scheme's default port
    path: str
    query: str | None  # None: no "?"
    fragment: str | None  # None: no "#"

    @classmethod
    def parse(cls, url: str) -> URL:
        if len(url) > MAX_URL_LENGTH:
            raise InvalidURL("URL too long")
        for at, char in enumerate(url):
            if char.isascii() and not char.isprintable():
                raise InvalidURL(
                    f"Invalid non-printable ASCII character in URL, {char!r} at position {at}."
                )
        parts = _URL.match(url)
        assert parts is not None  # every group is optional
        scheme = (parts["scheme"] or "").lower()
        authority = _AUTHORITY.match(parts["authority"] or "")
        assert authority is not None
        userinfo = _quote(authority["userinfo"] or "", _USERINFO_SAFE)
        host = _host(authority["host"] or "")
        port = _port(authority["port"], parts["scheme"] or "")  # as written: "HTTP" keeps :80
        path = parts["path"] or ""
        has_authority = userinfo != "" or host != "" or port is not None
        _check_path(path, scheme != "", has_authority)
        if scheme or has_authority:
            path = _dot_segments(path)
        query, fragment = parts["query"], parts["fragment"]
        return cls(
            scheme,
            userinfo,
            host,
            port,
            _quote(path, _PATH_SAFE),
            None if query is None else _quote(query, _QUERY_SAFE),
            None if fragment is None else _quote(fragment, _FRAG_SAFE),
        )

    @property
    def netloc(self) -> str:
        """`host` or `host:port`, as the Host header names it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def target(self) -> str:
        """Path and query: what the request line asks for."""
        path = self.path or "/"
        return path if self.query is None else f"{path}?{self.query}"

    @property
    def effective_port(self) -> int | None:
        return self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)

    def without_userinfo(self) -> URL:
        """The URL without user information (as httpx's `copy_with(userinfo=b"")`, which also
        drops a default port that an upper-case scheme had kept)."""
        default = _DEFAULT_PORTS.get(self.scheme)
        return replace(self, userinfo="", port=None if self.port == default else self.port)

    def join(self, other: str) -> URL:
        """`other` resolved against this URL (RFC 3986)."""
        return URL.parse(urljoin(str(self), str(URL.parse(other))))

    def __str__(self) -> str:
        authority = (f"{self.userinfo}@" if self.userinfo else "") + self.netloc
        return "".join(
            [
                f"{self.scheme}:" if self.scheme else "",
                f"//{authority}" if authority else "",
                self.path,
                f"?{self.query}" if self.query is not None else "",
                f"#{self.fragment}" if self.fragment is not None else "",
            ]
        )
