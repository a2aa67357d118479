"""Finds URLs in text and reports those that could carry data out: images that a renderer fetches
on its own from a host nobody allowed (`![](https://attacker/?q=<secret>)`), links whose query,
path or subdomain carries an encoded blob, IP-literal hosts, look-alike (homograph) hosts,
`data:` and `javascript:` URLs.

Hosts are judged the way a browser reads them (WHATWG URL rules, the ones an attacker aims at):
backslashes count as slashes, `user@` is dropped, the host is percent-decoded, NFKC-folded and
lower-cased, punycode labels are decoded, and `2130706433` or `0x7f.1` are IPv4 addresses.
An allow-listed domain covers itself and its subdomains (`example.com` allows
`docs.example.com`, never `badexample.com`); a public suffix (`github.io`, `co.uk`) cannot be
allow-listed, since that would allow every site under it. The public suffix list is the snapshot
shipped inside `tldextract`, read offline.

Why hand-written finding rather than a URL-extraction library: the detector needs each URL's
exact span (to redact it) and its markdown/HTML context (image or link), and must treat the end
of a growing streamed answer as possibly incomplete; the usual extractors give neither.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Literal
from urllib.parse import unquote

import tldextract

from capsem_proxy.detectors.base import Finding

__all__ = [
    "URL_KINDS",
    "BlobLimits",
    "FoundUrl",
    "HostAllowList",
    "ParsedUrl",
    "UrlDetector",
    "carries_data",
    "find_urls",
    "is_homograph",
    "is_public_suffix",
    "parse_url",
    "registrable_domain",
]

URL_KINDS = ("markdown_image", "link", "data_url", "script_url", "encoded_query", "ip_host", "homograph")

UrlContext = Literal["image", "link", "text"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Offline: no suffix-list download, no cache directory; the snapshot inside the package is used.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)

# ----------------------------------------------------------------------------- finding URLs

# A scheme URL or a `www.` host; `\` counts as `/` (browsers accept `https:\\host`).
_SCHEME_URL = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?:(?:https?|ftps?|wss?):[/\\]{2,3}|(?<![/\\@\w.-])www\d{0,3}\.(?=\w))[^\s<>\"'`]*",
    re.IGNORECASE,
)
# Protocol-relative targets (`](//host/x.png)`, `src="//host"`): a renderer adds the page's scheme.
_RELATIVE_URL = re.compile(r"//[^\s<>\"'`/\\][^\s<>\"'`]*")
_RELATIVE_PREFIX = re.compile(
    r"(?:\]\(\s*<?|\b(?:src|href|srcset|poster|background|action)\s*=\s*[\"']?|url\(\s*[\"']?)$", re.IGNORECASE
)
_DATA_URL = re.compile(
    r"(?<![\w-])data:[a-z]+/[a-z0-9.+\-]+(?:;[a-z0-9.+\-]+(?:=[a-z0-9.+\-]+)?)*,[^\s<>\"'`)]*", re.IGNORECASE
)
# Script URLs as a markdown target (ending at the `)` that closes it) or as an HTML attribute.
_SCRIPT_TARGET = re.compile(r"\]\(\s*<?((?:javascript|vbscript):[^\n]*)", re.IGNORECASE)
_SCRIPT_ATTRIBUTE = re.compile(r"\b(?:src|href|action)\s*=\s*[\"']?((?:javascript|vbscript):[^\n\"'>]*)", re.IGNORECASE)
_TRAILING = ".,;:!?*_~'\""
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# A markdown reference definition (`[ref]: https://…`) and the images that use one.
_REFERENCE_DEFINITION = re.compile(r"[ ]{0,3}\[([^\]\n]{1,200})\]:[ \t]*<?$")
_IMAGE_REFERENCE = re.compile(r"!\[([^\]\n]*)\]\[([^\]\n]*)\]|!\[([^\]\n]+)\](?![\[(])")
_HTML_IMAGE_ATTRIBUTE = re.compile(r"\b(?:src|srcset|poster|background)\s*=\s*[\"']?$|url\(\s*[\"']?$", re.IGNORECASE)
_HTML_LINK_ATTRIBUTE = re.compile(r"\b(?:href|action)\s*=\s*[\"']?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundUrl:
    """One URL in a text: its span, and whether it is an image a renderer fetches, a link, or plain text."""

    start: int
    end: int
    text: str
    context: UrlContext
    # False when the URL runs to the end of a text that may still grow (a streamed answer).
    complete: bool = True


def _trim(url: str) -> str:
    """`url` without the bracket that closes the markdown target or sentence it sits in (and what
    follows it), nor the punctuation ending the sentence."""
    depth = {")": 0, "]": 0}
    for index, char in enumerate(url):
        if char in "([":
            depth[")" if char == "(" else "]"] += 1
        elif char in depth:
            if depth[char] == 0:
                url = url[:index]
                break
            depth[char] -= 1
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])):
            url = url[:-1]
        else:
            break
    return url


def _script_end(text: str, start: int, end: int) -> int:
    """Where a `javascript:` target ends: at the `)` closing the markdown target, else at `end`."""
    depth = 0
    for index in range(start, end):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return index
            depth -= 1
    return end


def _label_start(text: str, close: int) -> int:
    """Index of the `[` opening the markdown label that ends with the `]` at `close`, or -1."""
    depth = 0
    for index in range(close, max(-1, close - 2000), -1):
        char = text[index]
        if char == "]":
            depth += 1
        elif char == "[":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _image_references(text: str) -> frozenset[str]:
    """Labels of the reference definitions that images use (`![alt][ref]`, `![ref]`)."""
    if "![" not in text:
        return frozenset()
    labels = set()
    for match in _IMAGE_REFERENCE.finditer(text):
        label = match.group(2) or match.group(1) if match.group(3) is None else match.group(3)
        labels.add((label or "").strip().lower())
    return frozenset(labels)


def _context_of(text: str, start: int, image_references: frozenset[str]) -> UrlContext:
    """How the URL starting at `start` is used: a markdown/HTML image, a link, or plain text."""
    index = start
    while index > 0 and text[index - 1] in " \t\n<":
        index -= 1
    if text[index - 2 : index] == "](":
        opening = _label_start(text, index - 2)
        return "image" if opening > 0 and text[opening - 1] == "!" else "link"
    if text[index - 2 : index] == "]:":
        line_start = text.rfind("\n", 0, start) + 1
        reference = _REFERENCE_DEFINITION.match(text, line_start, start)
        if reference is not None:
            return "image" if reference.group(1).strip().lower() in image_references else "link"
    if start > 0 and text[start - 1] == "<":
        return "link"
    head = text[max(0, start - 40) : start]
    if "=" in head or "(" in head:
        if _HTML_IMAGE_ATTRIBUTE.search(head):
            return "image"
        if _HTML_LINK_ATTRIBUTE.search(head):
            return "link"
    return "text"


def find_urls(text: str, *, complete: bool = True) -> list[FoundUrl]:
    """Every network, `data:` and `javascript:` URL in `text`, in order, none inside another.

    With `complete=False` a URL running to the end of `text` is marked incomplete: more of it
    may still arrive.
    """
    lowered = text.lower()
    spans: list[tuple[int, int]] = []
    # Each pattern runs only when its literal occurs: substring search is far cheaper than a regex scan.
    if "script:" in lowered:
        for match in _SCRIPT_TARGET.finditer(text):
            spans.append((match.start(1), _script_end(text, match.start(1), match.end(1))))
        for match in _SCRIPT_ATTRIBUTE.finditer(text):
            spans.append((match.start(1), match.end(1)))
    if "data:" in lowered:
        for match in _DATA_URL.finditer(text):
            spans.append((match.start(), match.end()))
    if "//" in text or "\\" in text:
        for match in _SCHEME_URL.finditer(text):
            spans.append((match.start(), match.start() + len(_trim(match.group()))))
        for match in _RELATIVE_URL.finditer(text):
            start = match.start()
            # `https://` puts a colon before the slashes; a renderer's relative URL follows `(`, `=` or a quote.
            if start and text[start - 1] in "(<=\"' \t\n" and _RELATIVE_PREFIX.search(text, max(0, start - 40), start):
                spans.append((start, start + len(_trim(match.group()))))
    elif "www" in lowered:
        for match in _SCHEME_URL.finditer(text):
            spans.append((match.start(), match.start() + len(_trim(match.group()))))
    if not spans:
        return []
    spans.sort(key=lambda span: (span[0], -span[1]))
    image_references = _image_references(text)
    found: list[FoundUrl] = []
    covered = -1
    for start, end in spans:
        if end <= covered or end <= start:
            continue  # inside a URL already found (an `https://` within a `javascript:` target)
        covered = end
        at_end = end >= len(text) or (not complete and not text[end:].strip(_TRAILING + ")]}"))
        found.append(
            FoundUrl(start, end, text[start:end], _context_of(text, start, image_references), complete or not at_end)
        )
    return found


# ----------------------------------------------------------------------------- parsing URLs

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


def _normalised_host(raw: str) -> tuple[str, bool]:
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
    host_port = authority.rpartition("@")[2]
    host_complete = cut < len(rest)
    if host_port.startswith("["):
        closing = host_port.find("]")
        raw_host = host_port[1:closing] if closing != -1 else host_port[1:]
        host_complete = host_complete or closing != -1
    else:
        raw_host, colon, _ = host_port.partition(":")
        host_complete = host_complete or bool(colon)
    host, bad_punycode = _normalised_host(raw_host)
    if not host:
        return None
    fragment = ""
    if "#" in after:
        after, fragment = after.split("#", 1)
    path, _, query = after.partition("?")
    ip = _ip_of(host)
    if ip is None and (host == "localhost" or host.endswith(".localhost")):
        ip = ipaddress.IPv4Address("127.0.0.1")
    return ParsedUrl(scheme, host, ip, path, query, fragment, host_complete, bad_punycode)


@lru_cache(maxsize=4096)
def _suffix_parts(host: str) -> tuple[str, str]:
    """(registrable domain, subdomain) of `host`; the domain is the last two labels when the
    suffix is unknown (an intranet name)."""
    extracted = _EXTRACT(host)
    if extracted.domain and extracted.suffix:
        return f"{extracted.domain}.{extracted.suffix}", extracted.subdomain
    labels = host.split(".")
    return ".".join(labels[-2:]), ".".join(labels[:-2])


def registrable_domain(host: str) -> str:
    """The part of `host` one owner registers (`attacker.co.uk` for `a.b.attacker.co.uk`)."""
    return _suffix_parts(host)[0]


def is_public_suffix(domain: str) -> bool:
    """True when `domain` is a public suffix (`com`, `co.uk`, `github.io`): anyone registers under it."""
    extracted = _EXTRACT(domain)
    return bool(extracted.suffix) and not extracted.domain


# ----------------------------------------------------------------------------- allow-list

_HOST_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")


class HostAllowList:
    """Domains (with their subdomains), IP addresses and networks that URLs may lead to.

    Entries: `example.com` (itself and every subdomain), `*.example.com` (subdomains only),
    `10.0.0.0/8` or `192.0.2.7`. Built once at start-up; a bad entry raises ValueError naming it.
    """

    def __init__(self, entries: Iterable[str] = (), *, allow_loopback: bool = False) -> None:
        self._domains: set[str] = set()
        self._subdomains_only: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if allow_loopback:
            self._networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        for entry in entries:
            self._add(entry)

    def _add(self, entry: str) -> None:
        value = entry.strip()
        try:
            self._networks.append(ipaddress.ip_network(value.strip("[]"), strict=False))
            return
        except ValueError:
            pass
        wildcard = value.startswith("*.")
        domain, bad_punycode = _normalised_host(value[2:] if wildcard else value)
        if bad_punycode or not domain or len(domain) > 253 or not all(map(_HOST_LABEL.match, domain.split("."))):
            raise ValueError(f"'{entry}' is not a domain name, IP address or network")
        if is_public_suffix(domain):
            raise ValueError(
                f"'{entry}' is a public suffix: allowing it would allow every site registered under it; "
                "list the sites instead"
            )
        (self._subdomains_only if wildcard else self._domains).add(domain)

    def __bool__(self) -> bool:
        return bool(self._domains or self._subdomains_only or self._networks)

    def allows_host(self, host: str) -> bool:
        """True when the (normalised) domain name `host` is allow-listed."""
        labels = host.split(".")
        for index in range(len(labels)):
            suffix = ".".join(labels[index:])
            if suffix in self._domains or (index > 0 and suffix in self._subdomains_only):
                return True
        return False

    def allows_ip(self, ip: IpAddress) -> bool:
        """True when `ip` lies in an allow-listed network."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def allows(self, url: ParsedUrl) -> bool:
        """True when `url` leads to an allow-listed host."""
        if url.ip is not None:
            return self.allows_ip(url.ip)
        return self.allows_host(url.host)


# ----------------------------------------------------------------------------- look-alike hosts

_CONFUSABLES_FILE = files("capsem_proxy.detectors") / "data" / "confusables.tsv"


def _load_confusables() -> dict[str, str]:
    """Look-alikes of Latin letters (the table the text normaliser uses): character -> letter."""
    table: dict[str, str] = {}
    for line in _CONFUSABLES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, latin, _name = line.split("\t", 2)
            table[chr(int(code[2:], 16))] = latin
    return table


_CONFUSABLES = _load_confusables()
# Script mixes that UTS #39 ("highly restrictive") accepts in one label: Japanese, Chinese, Korean.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def _script(char: str) -> str:
    if char.isascii():
        return "LATIN" if char.isalpha() else "COMMON"
    if not char.isalpha():
        return "COMMON"
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def _label_is_homograph(label: str) -> bool:
    """True for a label mixing scripts (`paypal` with a Cyrillic `a`) or made only of Latin
    look-alikes (`apple` spelled in Cyrillic)."""
    scripts = {_script(char) for char in label} - {"COMMON"}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        return True
    letters = [char for char in label if char.isalpha()]
    return bool(letters) and all(char in _CONFUSABLES for char in letters)


def is_homograph(host: str, allowed: HostAllowList) -> bool:
    """True when the non-ASCII `host` imitates a Latin name: mixed scripts, only look-alike
    letters, or a skeleton equal to an allow-listed domain."""
    if host.isascii():
        return False
    if any(_label_is_homograph(label) for label in host.split(".") if not label.isascii()):
        return True
    skeleton = "".join(_CONFUSABLES.get(char, char) for char in host)
    return skeleton != host and allowed.allows_host(skeleton)


# ----------------------------------------------------------------------------- data in URLs

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")
# An escape of a character that never needs one (a letter, a digit, `-._~`): deliberate encoding.
_NEEDLESS_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])")


def _entropy(value: str) -> float:
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in Counter(value).values())


@dataclass(frozen=True, slots=True)
class BlobLimits:
    """How much encoded data a URL component may hold before it counts as carrying data."""

    min_base64_chars: int = 24
    min_hex_chars: int = 32
    max_query_chars: int = 256
    min_escaped_chars: int = 8


def _looks_base64(run: str) -> bool:
    """Random-looking mixed-case text (base64 of anything), not a CamelCase or snake_case word."""
    body = run.rstrip("=")
    upper = sum(1 for char in body if char.isupper())
    lower = sum(1 for char in body if char.islower())
    length = len(body)
    return upper >= 0.2 * length and lower >= 0.2 * length and _entropy(body) >= 3.8


def _has_blob(value: str, limits: BlobLimits, factor: int) -> bool:
    if len(_NEEDLESS_ESCAPE.findall(value)) >= limits.min_escaped_chars:
        return True
    decoded = unquote(value) if "%" in value else value
    hex_chars = limits.min_hex_chars * factor
    for run in _HEX_RUN.findall(decoded):
        if len(run) >= hex_chars and not run.isdigit() and not run.isalpha():
            return True
    base64_chars = limits.min_base64_chars * factor
    return any(len(run) >= base64_chars and _looks_base64(run) for run in _BASE64_RUN.findall(decoded))


def carries_data(url: ParsedUrl, limits: BlobLimits) -> bool:
    """True when the URL's query, fragment, path or subdomain holds an encoded blob or a long query.

    Paths often hold content hashes and document ids, so they need blobs twice as long.
    """
    if len(url.query) > limits.max_query_chars:
        return True
    for part in (url.query, url.fragment):
        if part and any(_has_blob(item, limits, 1) for item in re.split(r"[&=;]", part) if item):
            return True
    if url.path and any(_has_blob(segment, limits, 2) for segment in url.path.split("/") if len(segment) >= 16):
        return True
    if url.ip is None:
        subdomain = _suffix_parts(url.host)[1]
        for label in subdomain.split(".") if subdomain else ():
            if len(label) >= 32 or _has_blob(label, limits, 1):
                return True
    return False


# ----------------------------------------------------------------------------- the detector


class UrlDetector:
    """Reports URLs that could carry data out (see the module docstring).

    Kinds: `markdown_image` (an image to a host not allow-listed), `link` (any other URL to such
    a host, when no more specific kind applies), `encoded_query` (an encoded blob or a long query
    in the URL), `ip_host`, `homograph`, `data_url`, `script_url`. URLs to allow-listed hosts
    are never reported. One URL may give several findings, all with the URL as their span.
    """

    name = "urls"

    def __init__(self, allowed: HostAllowList, limits: BlobLimits | None = None) -> None:
        self.allowed = allowed
        self.limits = limits or BlobLimits()
        # A guarded stream rescans its growing answer at every checkpoint: each URL is judged once.
        self._judged = lru_cache(maxsize=2048)(self._judge)

    def scan(self, text: str, *, complete: bool = True) -> list[Finding]:
        """Findings for the URLs of `text`; with `complete=False` (a growing stream), a URL at the
        end is judged only once its host is complete."""
        findings: list[Finding] = []
        for found in find_urls(text, complete=complete):
            for kind in self.kinds_of(found):
                findings.append(Finding(kind, found.start, found.end, found.text))
        return findings

    def kinds_of(self, found: FoundUrl) -> tuple[str, ...]:
        """The finding kinds of one URL (none when it is harmless)."""
        return self._judged(found.text, found.context, found.complete)

    def _judge(self, text: str, context: UrlContext, complete: bool) -> tuple[str, ...]:
        lowered = text[:11].lower()
        if lowered.startswith("data:"):
            return ("data_url",)
        if lowered.startswith(("javascript:", "vbscript:")):
            return ("script_url",)
        url = parse_url(text)
        if url is None or (not complete and not url.host_complete) or self.allowed.allows(url):
            return ()
        kinds = []
        if url.ip is not None:
            kinds.append("ip_host")
        elif url.bad_punycode or is_homograph(url.host, self.allowed):
            kinds.append("homograph")
        if carries_data(url, self.limits):
            kinds.append("encoded_query")
        if context == "image":
            kinds.insert(0, "markdown_image")
        elif not kinds:
            kinds.append("link")
        return tuple(kinds)
