"""Reads a URL the way a browser does (WHATWG URL rules, the ones an attacker aims at): backslashes
count as slashes, `user@` is dropped, the host is percent-decoded, NFKC-folded and lower-cased,
punycode labels are decoded, and `2130706433` or `0x7f.1` are IPv4 addresses.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

__all__ = ["IpAddress", "ParsedUrl", "normalised_host", "parse_url"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IDEOGRAPHIC_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):/{0,3}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """A URL as a browser reads it. `host` is normalised (lower case, NFKC, punycode decoded)."""

    scheme: str
    host: str
    ip: IpAddress | None
    path: str
    query: str
    fragment: str
    # True once something follows the host (`/`, `?`, `#`, `:port`): the host cannot grow any more.
    host_complete: bool
    # A punycode label that does not decode: browsers refuse it, attackers probe with it.
    bad_punycode: bool = False
    # What stands before `@` in the authority (`user:password@`): sent to the host too.
    userinfo: str = ""


def _ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 address: decimal, `0x` hex or `0`-prefixed octal."""
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part[0] == "0":
            return int(part, 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def _ip_of(host: str) -> IpAddress | None:
    """The IP address `host` names (dotted, IPv6, or the integer/hex/octal IPv4 forms), or None."""
    if not host:
        return None
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not 1 <= len(parts) <= 4 or _ipv4_number(parts[-1]) is None:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for position, value in enumerate(values[:-1]):
        address += value << (8 * (3 - position))
    return ipaddress.IPv4Address(address)


def normalised_host(raw: str) -> tuple[str, bool]:
    """(host as a browser compares it, True if a punycode label failed to decode)."""
    host = unicodedata.normalize("NFKC", unquote(raw)).translate(_IDEOGRAPHIC_DOTS).lower().rstrip(".")
    if "xn--" not in host:
        return host, False
    labels = []
    bad = False
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode").lower()
            except (UnicodeError, ValueError):
                bad = True
        labels.append(label)
    return ".".join(labels), bad


@lru_cache(maxsize=2048)
def parse_url(url: str) -> ParsedUrl | None:
    """Read `url` (`https://…`, `//host/…`, `www.host…`) as a browser would; None without a host."""
    text = url.replace("\\", "/")
    if text.startswith("//"):
        text = "https:" + text
    elif text[:3].lower() == "www":
        text = "http://" + text
    match = _SCHEME.match(text)
    if match is None:
        return None
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    cut = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position != -1 and position < cut:
            cut = position
    authority, after = rest[:cut], rest[cut:]
    userinfo, _, host_port = authority.rpartition("@")
    host_complete = cut < len(rest)
    if host_port.startswith("["):
        closing = host_port.find("]")
        raw_host = host_port[1:closing] if closing != -1 else host_port[1:]
        host_complete = host_complete or closing != -1
    else:
        raw_host, colon, _ = host_port.partition(":")
        host_complete = host_complete or bool(colon)
    host, bad_punycode = normalised_host(raw_host)
    if not host:
        return None
    fragment = ""
    if "#" in after:
        after, fragment = after.split("#", 1)
    path, _, query = after.partition("?")
    ip = _ip_of(host)
    if ip is None and (host == "localhost" or host.endswith(".localhost")):
        ip = ipaddress.IPv4Address("127.0.0.1")
    return ParsedUrl(scheme, host, ip, path, query, fragment, host_complete, bad_punycode, userinfo)
