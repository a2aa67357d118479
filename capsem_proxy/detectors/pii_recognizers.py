"""Presidio's pattern recognizers for the PII kinds `pii` finds, without Presidio's NLP engine.

Importing `presidio_analyzer` at all loads spaCy (about 110 MiB of memory in every worker) although
none of these recognizers uses it: they are regexes, checksums and cue words. This module holds
the same patterns, scores, cue words and validation as presidio-analyzer 2.2 (MIT licence,
Microsoft), and runs them as Presidio's `PatternRecognizer.analyze` does: the `regex` module with
DOTALL | MULTILINE | IGNORECASE (DOTALL | MULTILINE for IBANs), a validator's True scores 1.0 and
its False drops the match, an invalidator's True drops it, and a match contained in another of at
least its score is dropped. An IBAN's length must be its country's (the SWIFT IBAN registry).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex

from capsem_proxy.detectors.id_checks import luhn
from capsem_proxy.detectors.urls.domains import has_registrable_domain

__all__ = ["PHONE", "RECOGNIZERS", "PatternRecognizer", "PhoneSettings"]

Result = tuple[int, int, float]
_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    """What Presidio's PhoneRecognizer contributes: its regions, leniency, score and cue words."""

    supported_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
    leniency: int = 1
    SCORE: float = 0.4
    context: tuple[str, ...] = ("phone", "number", "telephone", "cell", "cellphone", "mobile", "call")


PHONE = PhoneSettings()


class PatternRecognizer:
    """Regex patterns (name, regex, score) with an optional validator and invalidator of a match."""

    def __init__(
        self,
        patterns: list[tuple[str, str, float]],
        context: tuple[str, ...],
        validate: Callable[[str], bool | None] | None = None,
        invalidate: Callable[[str], bool] | None = None,
        flags: int = _FLAGS,
    ) -> None:
        self.patterns = [(name, regex.compile(pattern, flags), score) for name, pattern, score in patterns]
        self.context = context
        self._validate = validate
        self._invalidate = invalidate
        self._flags = flags

    def with_patterns(self, patterns: list[tuple[str, str, float]]) -> PatternRecognizer:
        """The same recognizer with other patterns (as Presidio's `patterns=` argument)."""
        return PatternRecognizer(patterns, self.context, self._validate, self._invalidate, self._flags)

    def analyze(self, text: str) -> list[Result]:
        """(start, end, score) of every match kept, best score first."""
        results: set[Result] = set()
        for _, pattern, base in self.patterns:
            for match in pattern.finditer(text):
                start, end = match.span()
                if start == end:
                    continue
                value = text[start:end]
                score = base
                if self._validate is not None:
                    valid = self._validate(value)
                    if valid is not None:
                        score = 1.0 if valid else 0.0
                if self._invalidate is not None and self._invalidate(value):
                    score = 0.0
                if score > 0:
                    results.add((start, end, score))
        return _without_contained(results)


def _without_contained(results: set[Result]) -> list[Result]:
    """Presidio's `remove_duplicates` for one entity: a result inside another of at least its score goes."""
    kept: list[Result] = []
    active: list[Result] = []
    for result in sorted(results, key=lambda r: (r[0], -(r[1] - r[0]), -r[2])):
        start, end, score = result
        active = [other for other in active if other[1] >= start]
        if not any(start >= other[0] and end <= other[1] and score <= other[2] for other in active):
            kept.append(result)
            active.append(result)
    return sorted(kept, key=lambda r: (-r[2], r[0], -(r[1] - r[0])))


def _digits(value: str, drop: str = "- ") -> str:
    for char in drop:
        value = value.replace(char, "")
    return value


def _email_valid(value: str) -> bool:
    return has_registrable_domain(value)


def _ip_invalid(value: str) -> bool:
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return True
    return False


def _ssn_invalid(value: str) -> bool:
    if len({char for char in value if char in ".- "}) > 1:
        return True
    digits = "".join(char for char in value if char.isdigit())
    return (
        all(char == digits[0] for char in digits)
        or digits[3:5] == "00" or digits[5:] == "0000"
        or digits[:3] in ("000", "666")
        or digits in ("123456789", "987654320", "078051120")
    )


def _nhs_valid(value: str) -> bool:
    digits = _digits(value)
    return sum(int(char) * weight for char, weight in zip(digits, range(10, -1, -1), strict=False)) % 11 == 0


def _nif_valid(value: str) -> bool:
    value = _digits(value).upper()
    number = int("".join(filter(str.isdigit, value)))
    return value[-1] == "TRWAGMYFPDXBNJZSQVHLCKE"[number % 23]


_FISCAL_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                       (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6,
                        8, 12, 14, 16, 10, 22, 25, 24, 23), strict=True))
_FISCAL_EVEN = {char: (index % 10 if index < 10 else index - 10) for index, char in
                enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def _fiscal_code_valid(value: str) -> bool | None:
    value = value.upper()
    body = value[:-1]
    total = sum(_FISCAL_ODD[char] for char in body[0::2]) + sum(_FISCAL_EVEN[char] for char in body[1::2])
    return True if chr(ord("A") + total % 26) == value[-1] else None


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _aadhaar_valid(value: str) -> bool:
    digits = _digits(value, "- :")
    if len(digits) != 12 or not digits.isnumeric() or int(digits[0]) < 2 or digits == digits[::-1]:
        return False
    check = 0
    for index, char in enumerate(reversed(str(int(digits)))):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][int(char)]]
    return check == 0


def _tfn_valid(value: str) -> bool:
    digits = [int(char) for char in _digits(value) if not char.isspace()]
    return sum(digit * weight for digit, weight in zip(digits, (1, 4, 3, 7, 5, 8, 6, 9, 10), strict=False)) % 11 == 0


def _pesel_valid(value: str) -> bool:
    if len(value) != 11 or not value.isdigit():
        return False
    digits = [int(char) for char in value]
    weighted = sum(digit * weight for digit, weight in zip(digits[:10], (1, 3, 7, 9, 1, 3, 7, 9, 1, 3), strict=True))
    return (10 - weighted % 10) % 10 == digits[10]


def _sin_invalid(value: str) -> bool:
    return not luhn("".join(char for char in value if char.isdigit()))


def _card_valid(value: str) -> bool:
    return luhn(_digits(value))


class IbanRecognizer(PatternRecognizer):
    """Presidio's IBAN recognizer: the longest of the match's optional tails that validates wins."""

    def __init__(self) -> None:
        super().__init__(
            [("IBAN Generic", r"(?<![A-Z0-9])([A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,6})"
              r"((?:[ -]?[A-Z0-9]{4})?)((?:[ -]?[A-Z0-9]{1,3})?)(?![A-Z0-9])", 0.5)],
            ("iban", "bank", "transaction"), flags=regex.DOTALL | regex.MULTILINE,
        )

    def analyze(self, text: str) -> list[Result]:
        results = []
        for _, pattern, _ in self.patterns:
            for match in pattern.finditer(text):
                for group in range(len(match.groups()), 0, -1):
                    start = match.start()
                    end = match.end(group) if match.end(group) > 0 else match.end()
                    if start == end:
                        continue
                    if _iban_valid(text[start:end]):
                        results.append((start, end, 1.0))
                        break
        return results


def _iban_valid(value: str) -> bool:
    """A valid checksum (Presidio's own arithmetic) at the country's length (the SWIFT registry)."""
    compact = _digits(value)
    try:
        moved = (compact[4:] + compact[:2] + "00").upper().translate(_IBAN_LETTERS)
        if f"{98 - int(moved) % 97:0>2}" != compact[2:4]:
            return False
    except ValueError:
        return False
    return _IBAN_LENGTHS.get(compact[:2].upper()) == len(compact) and compact[4:].isalnum()


# Length of the IBAN of each country in the SWIFT IBAN registry (the country code and check digits included).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}
_IBAN_LETTERS = {ord(char): str(index) for index, char in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def _recognizers() -> dict[str, PatternRecognizer]:
    weak, medium = 0.05, 0.5
    return {
        "email": PatternRecognizer(
            [("Email (Medium)", r"\b((([!#$%&'*+\-/=?^_`{|}~\w])|([!#$%&'*+\-/=?^_`{|}~\w]"
              r"[!#$%&'*+\-/=?^_`{|}~\.\w]{0,}[!#$%&'*+\-/=?^_`{|}~\w]))[@]\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+)\b", 0.5)],
            ("email",), validate=_email_valid,
        ),
        "credit_card": PatternRecognizer(
            [("All Credit Cards (weak)", r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))[- ]?"
              r"(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b", 0.3)],
            ("credit", "card", "visa", "mastercard", "cc ", "amex", "discover", "jcb", "diners", "maestro",
             "instapayment"),
            validate=_card_valid,
        ),
        "iban": IbanRecognizer(),
        "us_ssn": PatternRecognizer(
            [("SSN1 (very weak)", r"\b([0-9]{5})-([0-9]{4})\b", weak),
             ("SSN2 (very weak)", r"\b([0-9]{3})-([0-9]{6})\b", weak),
             ("SSN3 (very weak)", r"\b(([0-9]{3})-([0-9]{2})-([0-9]{4}))\b", weak),
             ("SSN4 (very weak)", r"\b[0-9]{9}\b", weak),
             ("SSN5 (medium)", r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b", medium)],
            ("social", "security", "ssn", "ssns", "ssid"), invalidate=_ssn_invalid,
        ),
        "us_itin": PatternRecognizer(
            [("Itin (very weak)", r"\b9\d{2}[- ](5\d|6[0-5]|7\d|8[0-8]|9([0-2]|[4-9]))\d{4}\b"
              r"|\b9\d{2}(5\d|6[0-5]|7\d|8[0-8]|9([0-2]|[4-9]))[- ]\d{4}\b", weak),
             ("Itin (weak)", r"\b9\d{2}(5\d|6[0-5]|7\d|8[0-8]|9([0-2]|[4-9]))\d{4}\b", 0.3),
             ("Itin (medium)", r"\b9\d{2}[- ](5\d|6[0-5]|7\d|8[0-8]|9([0-2]|[4-9]))[- ]\d{4}\b", medium)],
            ("individual", "taxpayer", "itin", "tax", "payer", "taxid", "tin"),
        ),
        "ip_address": PatternRecognizer(
            [("IPv4_mapped", r"(?<![\w:])::(?:ffff(?::0{1,4})?:)?(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}"
              r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b", 0.6),
             ("IPv4_embedded", r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){1,5}:(?:[0-9A-Fa-f]{1,4}:){0,4}|"
              r"(?:[0-9A-Fa-f]{1,4}:){6})(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}"
              r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b", 0.6),
             ("IPv4", r"\b(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\."
              r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
              r"(?:/(?:[0-2]?\d|3[0-2]))?\b", 0.6),
             ("IPv6", r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:|"
              r":(?::[0-9A-Fa-f]{1,4}){1,7}|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|"
              r"(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}|"
              r"(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}|"
              r"[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}|:(?::[0-9A-Fa-f]{1,4}){1,6})(?:%[0-9a-zA-Z]+)?"
              r"(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?(?![\w:]|\.\d)", 0.6),
             ("IPv6_unspecified", r"(?<![\w:])::(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?(?![\w:])", 0.1)],
            ("ip", "ipv4", "ipv6"), invalidate=_ip_invalid,
        ),
        "uk_nino": PatternRecognizer(
            [("NINO (medium)", r"\b(?!bg|gb|nk|kn|nt|tn|zz|BG|GB|NK|KN|NT|TN|ZZ)([a-ceghj-pr-tw-zA-CEGHJ-PR-TW-Z]{1}"
              r"[a-ceghj-npr-tw-zA-CEGHJ-NPR-TW-Z]{1}) ?([0-9]{2}) ?([0-9]{2}) ?([0-9]{2}) ?([a-dA-D]{1})\b", medium)],
            ("national insurance", "ni number", "nino"),
        ),
        "uk_nhs": PatternRecognizer(
            [("NHS (medium)", r"\b([0-9]{3})[- ]?([0-9]{3})[- ]?([0-9]{4})\b", medium)],
            ("national health service", "nhs", "health services authority", "health authority"), validate=_nhs_valid,
        ),
        "es_nif": PatternRecognizer(
            [("NIF", r"\b[0-9]?[0-9]{7}[-]?[A-Z]\b", medium)],
            ("documento nacional de identidad", "DNI", "NIF", "identificación"), validate=_nif_valid,
        ),
        "it_fiscal_code": PatternRecognizer(
            [("Fiscal Code", r"(?i)((?:[A-Z][AEIOU][AEIOUX]|[AEIOU]X{2}|[B-DF-HJ-NP-TV-Z]{2}[A-Z]){2}"
              r"(?:[\dLMNP-V]{2}(?:[A-EHLMPR-T](?:[04LQ][1-9MNP-V]|[15MR][\dLMNP-V]|[26NS][0-8LMNP-U])|[DHPS][37PT][0L]"
              r"|[ACELMRT][37PT][01LM]|[AC-EHLMPR-T][26NS][9V])|(?:[02468LNQSU][048LQU]|[13579MPRTV][26NS])B[26NS][9V])"
              r"(?:[A-MZ][1-9MNP-V][\dLMNP-V]{2}|[A-M][0L](?:[1-9MNP-V][\dLMNP-V]|[0L][1-9MNP-V]))[A-Z])", 0.3)],
            ("codice fiscale", "cf"), validate=_fiscal_code_valid,
        ),
        "in_aadhaar": PatternRecognizer(
            [("AADHAAR (Very Weak)", r"\b[0-9]{12}\b", 0.01),
             ("AADHAR (Very Weak)", r"\b[0-9]{4}[- :][0-9]{4}[- :][0-9]{4}\b", 0.01)],
            ("aadhaar", "uidai"), validate=_aadhaar_valid,
        ),
        "au_tfn": PatternRecognizer(
            [("TFN (Medium)", r"\b\d{3}\s\d{3}\s\d{3}\b", 0.1), ("TFN (Low)", r"\b\d{9}\b", 0.01)],
            ("tax file number", "tfn"), validate=_tfn_valid,
        ),
        "pl_pesel": PatternRecognizer(
            [("PESEL", r"[0-9]{2}([02468][1-9]|[13579][012])(0[1-9]|1[0-9]|2[0-9]|3[01])[0-9]{5}", 0.4)],
            ("PESEL",), validate=_pesel_valid,
        ),
        "ca_sin": PatternRecognizer(
            [("SIN (weak)", r"\b[1-79]\d{8}\b", weak), ("SIN (medium)", r"\b[1-79]\d{2}([- ])\d{3}\1\d{3}\b", medium)],
            ("sin", "sin number", "social insurance", "social insurance number", "canada", "nas", "numéro nas",
             "numéro d'assurance sociale", "assurance sociale"),
            invalidate=_sin_invalid,
        ),
        "sg_nric_fin": PatternRecognizer(
            [("Nric (weak)", r"(?i)(\b[A-Z][0-9]{7}[A-Z]\b)", 0.3),
             ("Nric (medium)", r"(?i)(\b[STFGM][0-9]{7}[A-Z]\b)", medium)],
            ("fin", "fin#", "nric", "nric#"),
        ),
        "us_passport": PatternRecognizer(
            [("Passport (very weak)", r"(\b[0-9]{9}\b)", weak),
             ("Passport Next Generation (very weak)", r"(\b[A-Z][0-9]{8}\b)", 0.1)],
            ("us", "united", "states", "passport", "passport#", "travel", "document"),
        ),
        "us_driver_license": PatternRecognizer(
            [("Driver License - Alphanumeric (weak)",
              r"\b([A-Z][0-9]{3,6}|[A-Z][0-9]{5,9}|[A-Z][0-9]{6,8}|[A-Z][0-9]{4,8}|[A-Z][0-9]{9,11}|[A-Z]{1,2}[0-9]{5,6}"
              r"|H[0-9]{8}|V[0-9]{6}|X[0-9]{8}|A-Z]{2}[0-9]{2,5}|[A-Z]{2}[0-9]{3,7}|[0-9]{2}[A-Z]{3}[0-9]{5,6}"
              r"|[A-Z][0-9]{13,14}|[A-Z][0-9]{18}|[A-Z][0-9]{6}R|[A-Z][0-9]{9}|[A-Z][0-9]{1,12}|[0-9]{9}[A-Z]"
              r"|[A-Z]{2}[0-9]{6}[A-Z]|[0-9]{8}[A-Z]{2}|[0-9]{3}[A-Z]{2}[0-9]{4}|[A-Z][0-9][A-Z][0-9][A-Z]|[0-9]{7,8}[A-Z])\b",
              0.3),
             ("Driver License - Digits (very weak)", r"\b([0-9]{6,14}|[0-9]{16})\b", 0.01)],
            ("driver", "license", "permit", "lic", "identification", "dls", "cdls", "lic#", "driving"),
        ),
        "us_bank_number": PatternRecognizer(
            [("Bank Account (weak)", r"\b[0-9]{8,17}\b", weak)],
            ("check", "account", "account#", "acct", "bank", "save", "debit"),
        ),
    }


RECOGNIZERS: dict[str, Any] = _recognizers()
