"""Data carried inside a URL: an encoded blob (base64, base32, hex, needless %-escapes,
quoted-printable), data written out (see `plain_data`), a value under a name that says what it
holds (see `named_fields`), or an overlong query, in its query, fragment, path or subdomain,
whole or cut into several parameters, path segments or host labels; values encoded twice are
decoded twice.

A blob counts when it looks random (mixed case and high entropy for base64, long hex), or when it
decodes to text: base64, base32 or hex of readable characters is data someone encoded, whatever its
letters look like (base64 of upper-case text is mostly upper case; hex of a short secret is short),
while the random ids and hashes links carry decode to bytes that are almost never all printable.
The signatures of pre-signed cloud-storage URLs (S3, GCS, Azure SAS, CloudFront) are random by
design and are left out when the URL carries its signing scheme's other parameters."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from capsem_proxy.detectors.urls.domains import domain_parts
from capsem_proxy.detectors.urls.named_fields import field_name, json_fields, named_field, person_record
from capsem_proxy.detectors.urls.parse import ParsedUrl
from capsem_proxy.detectors.urls.plain_data import path_data, plain_data

__all__ = ["BlobLimits", "carries_data"]

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{6,}={0,2}")
# Base32 is a run in one case of letters and the digits 2-7 (checked on each run found: an
# expression asking for one case would try every start of a long mixed run again).
_BASE32_RUN = re.compile(r"[A-Za-z0-9]{13,}={0,6}")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{12,}")
# An escape of a character that never needs one (a letter, a digit, `-._~`): deliberate encoding.
_NEEDLESS_ESCAPE = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])")
# Of those, the escapes of letters and digits: no URL encoder writes them, so half as many count
# (`%4d%61%72%69%61`, a name escaped byte by byte); `-._~` escapes come from over-eager encoders.
_ESCAPED_ALNUM = re.compile(r"%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9])")
# A whole value in base64 (mixed case: a word in one case is no base64) or in hex, too short for
# the runs above: read when it decodes to a few letters, digits and spaces (`TWFyaWE` is "Maria";
# a random id of this length decodes to such bytes about once in a thousand).
_SHORT_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]{7,23}={0,2}")
_SHORT_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}){5,11}")
_SHORT_BASE32 = re.compile(r"[A-Z2-7]{8,20}")
_SHORT_TEXT = re.compile(r"[A-Za-z0-9 .,:@'!_-]{5,16}")
_LETTERS = re.compile(r"[A-Za-z]+")
# Text escaped character by character in a way URLs never need: quoted-printable (`=48=65`) and
# MIME encoded words (`=?utf-8?q?...`), HTML
# entities (`&#104;&#x65;`), `\x68`, `%u0068` and `\u0068` escapes, four or more in a row.
_CHARACTER_ESCAPES = re.compile(
    r"(?:=[0-9A-Fa-f]{2}){4}|=\?[\w-]{1,40}\?[BbQq]\?|(?:&#(?:x[0-9A-Fa-f]{2,4}|\d{2,5});){4}|(?:\\x[0-9A-Fa-f]{2}){4}|(?:[%\\]u[0-9A-Fa-f]{4}){4}"
)
# Bytes written in binary (`01101000 01100101 ...`), in hex with separators (`54 68 65 ...`), or
# letters in Morse code.
_BINARY = re.compile(r"(?:[01]{8}[ ,.;:|+_-]?){4}")
_SPACED_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}[ :,._+-]){7,}[0-9A-Fa-f]{2}")
_MORSE = re.compile(r"(?:[.-]{1,6}[ /+]+){8,}[.-]{1,6}")
# Ascii85 / base85 use most of the printable range; these symbols, rare in ids and words, mark them.
_BASE85_SYMBOL = re.compile(r"[!#$%&()*+;<=>?@^`{|}~\"',\[\]\\]")
_DIGIT = re.compile(r"\d")
# A piece of a blob cut into several parameters, path segments or host labels.
_CHUNK = re.compile(r"[A-Za-z0-9+/_\-]{2,}={0,2}")
# Pre-signed URL schemes: (a parameter only that scheme sends, the parameters it signs with).
_SIGNING_SCHEMES = (
    ("x-amz-algorithm", frozenset({"x-amz-signature", "x-amz-credential", "x-amz-security-token"})),
    ("x-goog-algorithm", frozenset({"x-goog-signature", "x-goog-credential"})),
    ("awsaccesskeyid", frozenset({"awsaccesskeyid", "signature", "x-amz-security-token"})),
    ("googleaccessid", frozenset({"googleaccessid", "signature"})),
    ("key-pair-id", frozenset({"key-pair-id", "signature", "policy"})),
    ("sv", frozenset({"sig"})),
)
_MAX_SCANNED = 8192
# Click and share ids that ad networks, social sites and newsletters add to the links they hand
# out (`?gclid=Cj0KCQjw...`): random tokens of up to a few hundred characters, read only for text
# encoded in them, like the signatures of pre-signed URLs.
_CLICK_IDS = frozenset({
    "gclid", "gbraid", "wbraid", "dclid", "gclsrc", "fbclid", "msclkid", "yclid", "ttclid", "twclid", "igshid",
    "li_fat_id", "epik", "rdt_cid", "srsltid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "oly_enc_id",
})
_ID_VALUE = re.compile(r"[A-Za-z0-9_\-.~*]{1,512}")
# Longer keys are not names (a bare item of data): their values are not read by name.
_MAX_NAME_CHARS = 40
# The shortest encoded text counted: padded base64 of five characters (`aGVsbG8=`).
_SHORTEST_ENCODED = 8
# Path segments read (a path of more is read from its start only; each segment costs a few scans).
_MAX_SEGMENTS = 128
# Subdomain labels joined to read data cut across them (a DNS name has at most 127 labels; data
# sent this way uses a few).
_MAX_LABELS = 8


@dataclass(frozen=True, slots=True)
class BlobLimits:
    """How much encoded data a URL component may hold before it counts as carrying data."""

    min_base64_chars: int = 24
    min_hex_chars: int = 32
    max_query_chars: int = 256
    min_escaped_chars: int = 8
    min_encoded_text_bytes: int = 8  # base64, base32 or hex that decodes to readable text this long


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
    """`data` is text of at least `least` characters: UTF-8, every character printable or a line
    break or tab (an address), half of them letters or digits (`ssn 219-09-9999` is data; random
    bytes are almost never all printable)."""
    if len(data) < least:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = text.replace("\n", " ").replace("\r", " ").replace("\t", " ").isprintable()
    return printable and sum(char.isalnum() for char in text) * 2 >= len(text)


def _base64_text(run: str, least: int) -> bool:
    """`run` is base64 (standard or URL-safe, padding optional) of readable text; explicit padding
    lets a shorter text count."""
    body = run.rstrip("=")
    padded = run.endswith("=") and len(run) % 4 == 0
    # Base64 of text mixes cases; a short run in one case is a word with digits (`dynamics365`)
    # unless its padding shows it is base64 (of upper-case text: `QUJMLTU1OQ==`).
    if len(body) % 4 == 1 or (len(body) < 24 and not padded and (body.islower() or body.isupper())):
        return False
    if padded:
        least = min(least, 5)
    try:
        data = binascii.a2b_base64(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4))
    except binascii.Error:
        return False
    return _readable(data, least)


def _base32_text(run: str, least: int) -> bool:
    """`run` is base32 (RFC 4648, either case, padding optional) of readable text: DNS labels lose
    their case, so data sent through host names is written in base32 or hex."""
    body = run.rstrip("=")
    if not (body.isupper() or body.islower()) or "0" in body or "1" in body or "8" in body or "9" in body:
        return False
    body = body.upper()
    # Base32 of text holds digits among its letters; a run of letters alone is a word.
    if len(body) % 8 in (1, 3, 6) or body.isalpha():
        return False
    try:
        data = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return False
    return _readable(data, least)


def _hex_text(run: str, least: int) -> bool:
    """`run` is hex of readable text (an odd last digit is left out)."""
    return _readable(bytes.fromhex(run[: len(run) // 2 * 2]), least)


def _base85_text(value: str, least: int) -> bool:
    """`value` (no blanks) is base85 or Ascii85 (`<~...~>`) of readable text."""
    body = value[2:-2] if value.startswith("<~") and value.endswith("~>") else value
    for decode in (base64.b85decode, base64.a85decode):
        try:
            if _readable(decode(body), least):
                return True
        except ValueError:
            continue
    return False


def _encoded_text(
    value: str, least: int, hex_runs: list[str] | None = None, base64_runs: list[str] | None = None
) -> bool:
    """`value` holds base64, base32, base85 or hex of readable text. `hex_runs` and `base64_runs`:
    the runs of `_HEX_RUN` and `_BASE64_RUN` in `value`, when the caller has found them already."""
    if len(value) < _SHORTEST_ENCODED:
        return False
    if any(_hex_text(run, least) for run in (_HEX_RUN.findall(value) if hex_runs is None else hex_runs)):
        return True
    if any(_base64_text(run, least) for run in (_BASE64_RUN.findall(value) if base64_runs is None else base64_runs)):
        return True
    if any(_base32_text(run, least) for run in _BASE32_RUN.findall(value)):
        return True
    for run in _SPACED_HEX.findall(value):
        if _hex_text("".join(char for char in run if char not in " :,._+-"), least):
            return True
    # Base85 mixes letters and digits with symbols: a run of letters and digits alone was read above.
    return (10 <= len(value) <= 4096 and " " not in value and not value.isalnum()
            and len(_BASE85_SYMBOL.findall(value)) >= 2 and _base85_text(value, least))


def _short_text(data: bytes) -> bool:
    """`data` is a few characters of text: letters, digits, spaces and the punctuation of names,
    addresses and passwords, half of them letters at least, a word of three letters among them and
    each word in one case or capitalised (random bytes that happen to be printable mix cases and
    cut words short: `sXWwU`, `IO.W5`)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return False
    if _SHORT_TEXT.fullmatch(text) is None or sum(char.isalpha() for char in text) * 2 < len(text):
        return False
    words = _LETTERS.findall(text)
    return max(map(len, words)) >= 3 and all(word.islower() or word.isupper() or word[1:].islower() for word in words)


def _short_encoded(value: str) -> bool:
    """`value` (a whole component) is short base64, base32 (in one case: a DNS label's) or hex of
    a few characters of text."""
    if _SHORT_HEX.fullmatch(value):
        return not value.isdigit() and _short_text(bytes.fromhex(value))
    if not _SHORT_BASE64.fullmatch(value):
        return False
    if value.islower() or value.isupper():
        body = value.rstrip("=").upper()
        if not _SHORT_BASE32.fullmatch(body) or len(body) % 8 in (1, 3, 6) or body.isalpha():
            return False
        try:
            return _short_text(base64.b32decode(body + "=" * (-len(body) % 8)))
        except (binascii.Error, ValueError):
            return False
    body = value.rstrip("=")
    if len(body) % 4 == 1:
        return False
    try:
        data = binascii.a2b_base64(body.replace("-", "+").replace("_", "/") + "=" * (-len(body) % 4))
    except binascii.Error:
        return False
    return _short_text(data)


def _has_blob(value: str, limits: BlobLimits, factor: int) -> bool:
    """`value` (one raw URL component) holds encoded data; random-looking runs must be `factor`
    times the limits (paths hold content hashes and document ids), and short encoded text counts
    only outside the path (whose short ids are many)."""
    if len(value) < _SHORTEST_ENCODED - 1:
        return False  # most keys and values of a query (`page=2`): nothing below can match
    if "%" in value and (len(_NEEDLESS_ESCAPE.findall(value)) >= limits.min_escaped_chars or len(
            _ESCAPED_ALNUM.findall(value)) >= max(2, limits.min_escaped_chars // 2)):
        return True
    if factor == 1 and len(value) <= 30 and _short_encoded(unquote(value) if "%" in value else value):
        return True
    if len(value) < _SHORTEST_ENCODED:
        return False
    decoded = unquote(value) if "%" in value else value
    if ("0" in decoded and "1" in decoded and _BINARY.search(decoded)) or (
            decoded.count(".") + decoded.count("-") >= 16 and _MORSE.search(decoded)) or (
            ("\\" in decoded or "&#" in decoded) and _CHARACTER_ESCAPES.search(decoded)):
        return True
    # A path may hold a SHA-256 in hex (64 digits): random hex there must be longer still.
    hex_chars = limits.min_hex_chars * factor + (32 if factor > 1 else 0)
    hex_runs = _HEX_RUN.findall(decoded)
    for run in hex_runs:
        if len(run) >= hex_chars and not run.isdigit() and not run.isalpha():
            return True
    base64_chars = limits.min_base64_chars * factor
    base64_runs = _BASE64_RUN.findall(decoded)
    if any(len(run) >= base64_chars and _looks_base64(run) for run in base64_runs):
        return True
    return _encoded_text(decoded, limits.min_encoded_text_bytes, hex_runs, base64_runs)


def _not_a_word(piece: str) -> bool:
    """A piece of a blob holds a digit or mixes cases; path and host words (`fin-ops-core`) do not."""
    return _DIGIT.search(piece) is not None or (not piece.islower() and not piece.isupper())


def _chunked(pieces: list[str], limits: BlobLimits) -> bool:
    """Encoded text cut into `pieces` (parameter values, path segments, host labels), joined again."""
    chunks = [piece for piece in pieces if _CHUNK.fullmatch(piece) and _not_a_word(piece)]
    if len(chunks) < 2:
        return False
    joined = "".join(chunk.rstrip("=") for chunk in chunks[:-1]) + chunks[-1]
    return _encoded_text(joined, limits.min_encoded_text_bytes)


def _signed_parameters(names: set[str]) -> frozenset[str]:
    """The parameters of a pre-signed URL's signature, when `names` holds its scheme's marker."""
    signed: frozenset[str] = frozenset()
    for marker, parameters in _SIGNING_SCHEMES:
        if marker in names and parameters & names:
            signed |= parameters | {marker}
    return signed


def _parameters_carry(part: str, limits: BlobLimits, *, query: bool) -> bool:
    """A query (or a fragment written as one) holds data: in a key or value, cut across values,
    or longer than a query needs."""
    if _CHARACTER_ESCAPES.search(part):
        return True
    if query and len(part) > limits.max_query_chars and not any(
            marker in part.lower() for marker in ("signature", "sig=", "key-pair-id")):
        return True
    pairs = [item.partition("=") for item in re.split(r"[&;]", part[:_MAX_SCANNED]) if item]
    signed = _signed_parameters({key.lower() for key, _, _ in pairs}) if query else frozenset()
    if query:
        length = len(part) - sum(len(key) + len(value) + 2 for key, _, value in pairs if key.lower() in signed)
        if length > limits.max_query_chars:
            return True
    values = []
    fields: list[tuple[str, str]] = []
    for key, equals, value in pairs:
        if key.lower() in signed:
            continue
        if key.lower() in _CLICK_IDS and _ID_VALUE.fullmatch(value):
            # Random by design: only a value that decodes to text is data.
            if _encoded_text(value, limits.min_encoded_text_bytes):
                return True
            continue
        # A bare item ending in `=` (`?aGVsbG8=`) is base64 with its padding more likely than a key.
        for item in (key, value) if value or not equals else (key, key + equals):
            if item and (_has_blob(item, limits, 1) or plain_data(_decoded(item), joined=True, query_value=query)):
                return True
            # A `+` may be a space or itself (`+14155552671`, a phone number left unescaped).
            if "+" in item and plain_data(unquote(item), sentences=False):
                return True
        if value:
            values.append(unquote(value) if "%" in value else value)
            if len(key) <= _MAX_NAME_CHARS:
                name, text = field_name(unquote(key)), _decoded(value)
                if named_field(name, text) or (text[:1] in "{[" and _json_carries(text)):
                    return True
                fields.append((name, text))
    return person_record(fields) or _chunked(values, limits)


def _decoded(item: str) -> str:
    """`item` (a raw key or value) decoded, `+` as a space; encoded twice or three times
    (`%2540`), decoded as often."""
    text = unquote_plus(item) if "%" in item or "+" in item else item
    for _ in range(2):
        if "%" not in text:
            break
        again = unquote(text)
        if again == text:
            break
        text = again
    return text


def _json_carries(text: str) -> bool:
    """`text` (a decoded query value) is JSON holding data: a field its name says is data (see
    `named_fields`), a value that is data written out, or two fields of a person's record."""
    fields = json_fields(text)
    return any(named_field(name, value) or plain_data(value, joined=True, query_value=True)
               for name, value in fields) or person_record(fields)


def carries_data(url: ParsedUrl, limits: BlobLimits) -> bool:
    """True when the URL's query, fragment, path, subdomain or user information (`user:pass@`)
    holds data (see the module docstring).

    Paths often hold content hashes and document ids, so random-looking runs there must be twice
    as long; text encoded or written out counts anywhere.
    """
    if url.query and _parameters_carry(url.query, limits, query=True):
        return True
    if url.userinfo and any(_has_blob(part, limits, 1) or plain_data(unquote(part), query_value=True)
                            for part in url.userinfo[:_MAX_SCANNED].split(":")):
        return True
    if url.fragment and (_parameters_carry(url.fragment, limits, query=False)
                         or plain_data(unquote(url.fragment[:_MAX_SCANNED]))):
        return True
    if url.path:
        raw = url.path[:_MAX_SCANNED].split("/", _MAX_SEGMENTS)[:_MAX_SEGMENTS]
        segments = [unquote(segment) if "%" in segment else segment for segment in raw if segment]
        if any(_has_blob(segment, limits, 2) for segment in raw):
            return True
        if any(path_data(segment) for segment in segments) or _chunked(segments, limits):
            return True
    if url.ip is None:
        subdomain = domain_parts(url.host)[1]
        labels = subdomain.split(".") if subdomain else []
        for label in labels:
            if len(label) >= 32 or _has_blob(label, limits, 1):
                return True
        # Data cut across labels comes first, the collector's own labels after it: each run of
        # labels from the first is read joined (`6d79207061.7373776f7264.x.collector.net`).
        for end in range(2, min(len(labels), _MAX_LABELS) + 1):
            if _encoded_text("".join(labels[:end]).replace("-", ""), limits.min_encoded_text_bytes):
                return True
    return False
