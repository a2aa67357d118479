"""Where a phone number written without its country code is from, and what only looks like one.

A national number (`030 1234567`, `(08) 7636-6514`) is valid in one region and not another, so
the phone parser is told which regions to try. Besides the configured ones, the text says which:
its script (Hangul: Korea; kana: Japan), its words for "phone" (`Telefon`, `teléfono`,
`téléphone`...) and the country-code top-level domains of its e-mail and web addresses.

Numbers that read as phone numbers but are not: version strings (`v10.2.3.4567`, `build
22621.2715`), numbers named as order, invoice, ticket or other ids, numbers glued to letters or
hex (UUIDs, hashes). These are never reported as phones.
"""

from __future__ import annotations

import re

__all__ = ["CUED_PHONE_REGIONS", "inferred_regions", "looks_like_version_or_id", "phone_named_before"]

# Tried for a candidate with a phone cue word next to it: most of the world's numbers.
CUED_PHONE_REGIONS = (
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "PL", "PT", "SE", "NO", "DK", "FI", "IE", "CZ",
    "GR", "RO", "HU", "TR", "RU", "UA", "BR", "MX", "AR", "CO", "CL", "IN", "CN", "JP", "KR", "TW", "HK", "SG",
    "AU", "NZ", "ZA", "NG", "EG", "SA", "AE", "IL", "ID", "PH", "VN", "TH", "MY", "CA",
)
_SCRIPTS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile("[\uac00-\ud7af]"), ("KR",)),
    (re.compile("[\u3040-\u30ff]"), ("JP",)),
    (re.compile("[\u4e00-\u9fff]"), ("CN", "TW", "HK")),
    (re.compile("[\u0400-\u04ff]"), ("RU", "UA", "BG")),
    (re.compile("[\u0600-\u06ff]"), ("SA", "AE", "EG")),
    (re.compile("[\u0590-\u05ff]"), ("IL",)),
    (re.compile("[\u0e00-\u0e7f]"), ("TH",)),
    (re.compile("[\u0370-\u03ff]"), ("GR",)),
    (re.compile("[\u0900-\u097f]"), ("IN",)),
    (re.compile("[ğış]"), ("TR",)),
    (re.compile("[ąęłńśźż]"), ("PL",)),
)
_WORDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\b(?:telefon|handy|rückruf|mobil)", re.IGNORECASE), ("DE", "AT", "CH", "PL", "SE", "DK", "NO", "TR")),
    (re.compile(r"\b(?:teléfono|telefono|móvil|llamar|número)", re.IGNORECASE), ("ES", "MX", "AR", "CO", "IT")),
    (re.compile(r"\b(?:telefone|celular|ligar)", re.IGNORECASE), ("BR", "PT")),
    (re.compile(r"(?:téléphone|\btél\b|appeler|portable)", re.IGNORECASE), ("FR", "BE", "CH")),
    (re.compile(r"\b(?:cellulare|chiamare)", re.IGNORECASE), ("IT",)),
    (re.compile(r"\b(?:telefoon|bellen)", re.IGNORECASE), ("NL", "BE")),
    (re.compile(r"\bnumer\b", re.IGNORECASE), ("PL",)),
    (re.compile(r"\bpuhelin", re.IGNORECASE), ("FI",)),
)
# A country-code top-level domain at the end of a host name or e-mail address.
_CCTLD = re.compile(r"[\w-]\.([a-z]{2})\b(?![.@\w-])")
_TLD_REGIONS = {"uk": "GB"}
_NOT_REGIONS = frozenset({"io", "ai", "co", "me", "tv", "ly", "gg", "to", "cc", "fm", "sh", "so", "ws", "md"})
_MAX_INFERRED = 12

_VERSION_BEFORE = re.compile(
    r"(?:\bv|\bversion|\brelease|\bver\.?|\bbuild|\brev\.?|\bpatch|\bkernel|\bfirmware|\bsdk|\bapi)\s*[:#]?\s*$",
    re.IGNORECASE,
)
_ID_BEFORE = re.compile(
    r"(?:#|\border|\binvoice|\bticket|\bcase|\bref\.?|\breference|\bid|\bno\.|\bsku|\bserial|\bimei|\biccid"
    r"|\bisbn|\bean|\btracking|\bpo|\baccount|\bcustomer|\bbooking|\bconfirmation)\s*(?:number|no\.?|#|nr\.?)?\s*[:#]?\s*$",
    re.IGNORECASE,
)
_PHONE_CUE_BEFORE = re.compile(r"(?:phone|tel|mobile|cell|fax|call|whatsapp|sms)\b[^\n]{0,24}$", re.IGNORECASE)


def inferred_regions(text: str) -> tuple[str, ...]:
    """Regions the text's script, words and top-level domains point to (at most a dozen)."""
    regions: list[str] = []
    if not text.isascii():
        for pattern, found in _SCRIPTS:
            if pattern.search(text):
                regions.extend(found)
    for pattern, found in _WORDS:
        if pattern.search(text):
            regions.extend(found)
    if "." in text:
        for match in _CCTLD.finditer(text.lower()):
            tld = match.group(1)
            if tld not in _NOT_REGIONS:
                regions.append(_TLD_REGIONS.get(tld, tld.upper()))
    return tuple(dict.fromkeys(regions))[:_MAX_INFERRED]


def looks_like_version_or_id(text: str, start: int, end: int) -> bool:
    """True when text[start:end] reads as a version number, a dotted build number or a number named
    as an id (order, invoice, ticket...), or is glued to letters or hex digits."""
    candidate = text[start:end]
    before = text[max(0, start - 24) : start]
    after = text[end : end + 2]
    if _VERSION_BEFORE.search(before):
        return True
    if candidate.count(".") >= 2 and "+" not in candidate and " " not in candidate.strip():
        # `10.0.19045.3803`, `2.14.3`: a one-digit part, or a long part before the last, is a version;
        # `629.996.7600` is a phone number.
        groups = candidate.strip().split(".")
        versionish = any(len(group) <= 1 for group in groups) or any(len(group) >= 5 for group in groups[:-1])
        if versionish and not _PHONE_CUE_BEFORE.search(before):
            return True
    if _ID_BEFORE.search(before) and not _PHONE_CUE_BEFORE.search(before):
        return True
    # Part of a longer token: `a1b2-555-123-4567`, `…-4567abcd` (UUIDs, hashes, SKUs).
    glued_before = start > 0 and (text[start - 1].isalpha() or text[start - 1] in "_/\\")
    glued_after = bool(after) and (after[0].isalpha() or after[0] in "_/\\")
    return glued_before or glued_after


def phone_named_before(text: str, start: int) -> bool:
    """True when a word for a phone (`phone`, `tel`, `mobile`…) stands just before `start`."""
    return _PHONE_CUE_BEFORE.search(text[max(0, start - 24) : start]) is not None
