"""Data carried inside a URL: an encoded blob (base64, hex, needless %-escapes) or an overlong
query in its query, fragment, path or subdomain.

A blob counts when it looks random (mixed case and high entropy for base64, long hex), or when it
decodes to text: base64 or hex of readable characters is data someone encoded, whatever its letters
look like (base64 of upper-case text is mostly upper case; hex of a short secret is short), while the
random ids and hashes links carry decode to bytes that are almost never all printable."""

from __future__ import annotations

import binascii
import math
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote

from capsem_proxy.detectors.urls.domains import domain_parts
from capsem_proxy.detectors.urls.parse import ParsedUrl

__all__ = ["BlobLimits", "carries_data"]

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,}")
# An escape of a character that never needs one (a letter, a digit, `-._~`): deliberate encoding.
_NEEDLESS_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])")


@dataclass(frozen=True, slots=True)
class BlobLimits:
    """How much encoded data a URL component may hold before it counts as carrying data."""

    min_base64_chars: int = 24
    min_hex_chars: int = 32
    max_query_chars: int = 256
    min_escaped_chars: int = 8
    min_encoded_text_bytes: int = 10  # base64 or hex that decodes to readable text this long


def _entropy(value: str) -> float:
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in Counter(value).values())


def _looks_base64(run: str) -> bool:
    """Random-looking mixed-case text (base64 of anything), not a CamelCase or snake_case word."""
    body = run.rstrip("=")
    upper = sum(1 for char in body if char.isupper())
    lower = sum(1 for char in body if char.islower())
    length = len(body)
    return upper >= 0.2 * length and lower >= 0.2 * length and _entropy(body) >= 3.8


def _readable(data: bytes, least: int) -> bool:
    """`data` is text of at least `least` characters: UTF-8, every character printable, some letters."""
    if len(data) < least:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable() and sum(char.isalpha() for char in text) * 4 >= len(text)


def _base64_text(run: str, least: int) -> bool:
    """`run` is base64 (standard or URL-safe, padding optional) of readable text."""
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return False
    try:
        data = binascii.a2b_base64(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4))
    except binascii.Error:
        return False
    return _readable(data, least)


def _hex_text(run: str, least: int) -> bool:
    """`run` is hex of readable text (an odd last digit is left out)."""
    return _readable(bytes.fromhex(run[: len(run) // 2 * 2]), least)


def _has_blob(value: str, limits: BlobLimits, factor: int) -> bool:
    if len(_NEEDLESS_ESCAPE.findall(value)) >= limits.min_escaped_chars:
        return True
    decoded = unquote(value) if "%" in value else value
    hex_chars = limits.min_hex_chars * factor
    text_bytes = limits.min_encoded_text_bytes * factor
    for run in _HEX_RUN.findall(decoded):
        if (len(run) >= hex_chars and not run.isdigit() and not run.isalpha()) or _hex_text(run, text_bytes):
            return True
    base64_chars = limits.min_base64_chars * factor
    return any(
        (len(run) >= base64_chars and _looks_base64(run)) or _base64_text(run, text_bytes)
        for run in _BASE64_RUN.findall(decoded)
    )


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
        subdomain = domain_parts(url.host)[1]
        for label in subdomain.split(".") if subdomain else ():
            if len(label) >= 32 or _has_blob(label, limits, 1):
                return True
    return False
