"""Finds personal data in text with Presidio's pattern recognizers: emails, phone numbers, credit
cards (Luhn), IBANs (checksum), IP addresses, US SSN/ITIN and a few other national ids; names and
places only through an optional spaCy NER model.

Presidio's `AnalyzerEngine` needs an NLP engine (a spaCy model) even for pattern recognizers, and
importing `presidio_analyzer` loads spaCy, so the recognizers' patterns, scores and validators are
held in `pii_recognizers` and called directly; this module adds back the two things the engine
would have done, kept deliberately small:

- context: a recognizer's cue words (`ssn`, `iban`, `nhs`…) within a few words of a match raise
  its score as Presidio's context enhancer does (+0.35, at least 0.4). Presidio's validators
  score any checksum-valid digit run 1.0, so ids made only of digits (NHS, Aadhaar, TFN, PESEL,
  SIN) and bare digit runs read as phone numbers are kept only with a cue word: without one they
  are indistinguishable from order numbers and timestamps.
- cost: each recognizer runs only when a cheap prefilter (stdlib `re`) finds a candidate; the
  email and fiscal-code recognizers read the candidate snippets only, and phone candidates are
  parsed one by one with python-phonenumbers (what Presidio's phone recognizer runs, minus its
  whole-text matcher pass per region).

Not findings: emails at reserved documentation domains (RFC 2606: example.com, .test…) and IP
addresses that are not globally routable (private, loopback, documentation ranges) or that read
as version numbers.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from capsem_proxy.detectors.base import Finding, Reach, best_without_overlaps
from capsem_proxy.detectors.holds import digit_run_hold, word_hold
from capsem_proxy.detectors.holds import has_digit as _has_digit
from capsem_proxy.detectors.national_ids import NATIONAL_ID_KINDS, NationalIdFinder, named_as_id
from capsem_proxy.detectors.phone_regions import (
    CUED_PHONE_REGIONS,
    inferred_regions,
    looks_like_version_or_id,
    phone_named_before,
)
from capsem_proxy.detectors.pii_recognizers import RECOGNIZERS, PhoneSettings
from capsem_proxy.linear_regex import LinearPatternSet, compile_linear

__all__ = ["DEFAULT_PII_KINDS", "NER_KINDS", "PII_KINDS", "PIIDetector"]

# Presidio's context enhancer defaults (LemmaContextAwareEnhancer).
_CONTEXT_BOOST = 0.35
_MIN_SCORE_WITH_CONTEXT = 0.4
_CONTEXT_BEFORE_CHARS = 64
_CONTEXT_AFTER_CHARS = 32
# A cue word read after a number may end this far past the context it starts in.
_LONGEST_CUE_CHARS = 24
_NER_SCORE = 0.85
_MIN_PHONE_DIGITS = 7
# Phone regions searched when none are configured (Presidio's default).
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
_RESERVED_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_EMAIL_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
_VERSION_CUE = re.compile(r"\b(?:v|version|release|ver\.?|build)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Entity:
    """One PII kind: how to build its Presidio recognizer and when running it is worth it.

    The recognizer runs only when one of `prefilters` matches somewhere in the text; each is
    (literals, regex), the regex tried only when one of the literals occurs (or always, with
    no literals). With `snippets` the recognizer reads only the regex's matches. `needs_context`
    keeps a finding only with a cue word nearby (the cue word is then the prefilter);
    `bare_digits_need_context` does so for findings that are digits only.
    """

    kind: str
    recognizer: str
    prefilters: tuple[tuple[tuple[str, ...], str], ...] = ()
    needs_context: bool = False
    bare_digits_need_context: bool = False
    snippets: bool = False
    # Cue words that make up for a missing format (bare digits), when stricter than the recognizer's.
    strict_cues: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    # Every match of the prefilters is this many characters without a blank at least: a text whose
    # longest blank-free run is shorter (most prose) skips the regex.
    min_run_chars: int = 0


# A 13-19 digit card number whose first digits are a known issuer range, written plain or in
# the usual groups (4-4-4-4[-3], Amex 4-6-5, Diners 4-6-4). Presidio's own pattern misses the
# Mastercard 2-series and the Amex grouping.
_CARD_ISSUER = (
    r"(?:4\d{3}|5[1-5]\d{2}|2(?:2[2-9]\d|[3-6]\d{2}|7[01]\d|720)|3[47]\d{2}|3(?:0[0-5]|[68]\d)\d"
    r"|6(?:011|5\d{2}|4[4-9]\d|2\d{2})|35(?:2[89]|[3-8]\d))"
)
_CARD_PATTERN = (
    rf"\b(?:{_CARD_ISSUER}\d{{9,15}}|{_CARD_ISSUER}([ -])\d{{4}}\1\d{{4}}\1\d{{4}}(?:\1\d{{3}})?"
    rf"|{_CARD_ISSUER}([ -])\d{{6}}\2\d{{4,5}})\b"
)

def _any(pattern: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    """A prefilter of one regex, tried on every text."""
    return (((), pattern),)


# Something a phone number could be: 7+ characters of digits and separators, maybe an extension.
_PHONE_CANDIDATE = (
    r"(?<![\w.+-])(?:\+|\(\+?)?\d[\d ().-]{5,20}\d(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,6})?(?!\w)"
)
# The local part in the characters addresses really use: `KEY=user@host` is `user@host`, although
# RFC 5322 (and Presidio's pattern) would allow `=` and `/` in it.
# Tried only where a run of local-part characters starts: started inside a long run that no "@"
# ends, every position re-read the run to its end (quadratic); a match can only start there anyway.
_EMAIL_CANDIDATE = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[^\s@<>()\[\]{},;:\"'=/\\]+"
_FISCAL_CODE_CANDIDATE = r"(?i)\b[a-z]{6}[\dlmnp-v]{2}[a-ehlmpr-t][\dlmnp-v]{2}[a-z][\dlmnp-v]{3}[a-z]\b"
# Candidates that are dates or times, not phone numbers (checked before the costly phone parser).
_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2}:\d{2}")
# A date or a time inside a candidate (`2024-05-14 10:30`, `14.05.2024`): never part of a phone number.
_DATE_TIME = re.compile(r"(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])|\d{1,2}:\d{2}"
                        r"|(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])[./](?:19|20)\d{2}")
# Dotted quads are IPv4 addresses or netmasks, which the phone parser would otherwise accept.
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

_ENTITIES: dict[str, _Entity] = {
    entity.kind: entity
    for entity in (
        _Entity("email", "EmailRecognizer", ((("@",), _EMAIL_CANDIDATE),), snippets=True),
        _Entity(
            "phone_number", "PhoneRecognizer", _any(_PHONE_CANDIDATE), bare_digits_need_context=True, snippets=True,
            # Presidio's phone cues include `number`, too weak to make a bare digit run a phone number.
            strict_cues=(
                "phone", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax", "sms", "whatsapp",
                "telefon", "telefono", "teléfono", "telefone", "téléphone", "tél", "móvil", "movil", "celular",
                "cellulare", "handy", "mobil", "rückruf", "anrufen", "appeler", "llamar", "ligar", "chiamare",
                "telefoon", "puhelin", "телефон", "тел", "電話", "电话", "手机", "携帯", "전화", "휴대폰", "هاتف",
                "טלפון", "τηλέφωνο", "número", "numer",
            ),
        ),
        _Entity("credit_card", "CreditCardRecognizer", _any(r"\d{4}[ -]?\d{4}"), options={"pattern": _CARD_PATTERN}),
        _Entity("iban", "IbanRecognizer", _any(r"[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}")),
        _Entity("us_ssn", "UsSsnRecognizer", _any(r"\d{3}(?:[- .]?\d{2}[- .]?\d{4}|\d{2}-\d{4}|-\d{6})")),
        _Entity("us_itin", "UsItinRecognizer", _any(r"9\d{2}[- ]?[5-9]\d")),
        _Entity(
            "ip_address", "IpRecognizer",
            (((), r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"), ((":",), r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f]{0,4}:")),
        ),
        _Entity("uk_nino", "UkNinoRecognizer", _any(r"\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b")),
        _Entity("uk_nhs", "NhsRecognizer", needs_context=True),
        _Entity("es_nif", "EsNifRecognizer", _any(r"\d{7}-?[A-Za-z]")),
        _Entity("it_fiscal_code", "ItFiscalCodeRecognizer", _any(_FISCAL_CODE_CANDIDATE), snippets=True,
                min_run_chars=16),
        _Entity("in_aadhaar", "InAadhaarRecognizer", needs_context=True),
        _Entity("au_tfn", "AuTfnRecognizer", needs_context=True),
        _Entity("pl_pesel", "PlPeselRecognizer", needs_context=True),
        _Entity("ca_sin", "CaSinRecognizer", needs_context=True),
        # Off by default: weak patterns (letters and digits that many product codes share).
        _Entity("sg_nric_fin", "SgFinRecognizer", _any(r"[A-Za-z]\d{7}[A-Za-z]")),
        _Entity("us_passport", "UsPassportRecognizer", needs_context=True),
        _Entity("us_driver_license", "UsLicenseRecognizer", needs_context=True),
        _Entity("us_bank_number", "UsBankRecognizer", needs_context=True),
    )
}
# Prefilters every match of which holds a digit (`\d`, any Unicode digit, as `re` reads it): a
# text without one skips them all at the cost of one search.
_PREFILTERS_WITH_A_DIGIT = frozenset({
    _PHONE_CANDIDATE, r"\d{4}[ -]?\d{4}", r"[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}",
    r"\d{3}(?:[- .]?\d{2}[- .]?\d{4}|\d{2}-\d{4}|-\d{6})", r"9\d{2}[- ]?[5-9]\d",
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", r"\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b", r"\d{7}-?[A-Za-z]",
    r"[A-Za-z]\d{7}[A-Za-z]",
})
# An ASCII text's bytes as `str.split` reads them: whitespace (what `str.isspace` says) a blank,
# any other character `x` (see `_has_run`).
_RUN_SHAPES = bytes(32 if chr(code).isspace() else 120 for code in range(256))
# Kinds found only with a cue word whose recognizer patterns all need a digit in every match (ids
# of digits only): a text without a digit skips them, and their cue words are not looked for.
_CONTEXT_KINDS_WITH_A_DIGIT = frozenset({"uk_nhs", "in_aadhaar", "au_tfn", "pl_pesel", "ca_sin"})
# Each prefilter loosened into a pattern RE2 runs (no look-around, no `\b`; `\d` and the letters
# of a case-insensitive class also take any non-ASCII character, so what `re` reads as a digit
# or a letter is one here too): whatever the prefilter matches, its loosened form matches. One
# RE2 pass over a long text says which prefilters may match; only those are searched with `re`,
# whose per-position cost on a 2 KB text is some 20 µs per pattern.
_D = r"[0-9\x{80}-\x{10FFFF}]"
_LOOSENED = {
    _PHONE_CANDIDATE: rf"(?:\+|\(\+?)?{_D}[0-9\x{{80}}-\x{{10FFFF}} ().-]{{5,20}}{_D}",
    r"\d{4}[ -]?\d{4}": rf"{_D}{{4}}[ -]?{_D}{{4}}",
    r"[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}": rf"[A-Z]{{2}}{_D}{{2}}[ -]?[A-Z0-9]{{4}}",
    r"\d{3}(?:[- .]?\d{2}[- .]?\d{4}|\d{2}-\d{4}|-\d{6})":
        rf"{_D}{{3}}(?:[- .]?{_D}{{2}}[- .]?{_D}{{4}}|{_D}{{2}}-{_D}{{4}}|-{_D}{{6}})",
    r"9\d{2}[- ]?[5-9]\d": rf"9{_D}{{2}}[- ]?[5-9]{_D}",
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}": rf"{_D}{{1,3}}\.{_D}{{1,3}}\.{_D}{{1,3}}\.{_D}{{1,3}}",
    r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f]{0,4}:": r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f]{0,4}:",
    r"\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b": rf"{_D}{{2}} ?{_D}{{2}} ?{_D}{{2}} ?[A-Da-d]",
    r"\d{7}-?[A-Za-z]": rf"{_D}{{7}}-?[A-Za-z]",
    r"[A-Za-z]\d{7}[A-Za-z]": rf"[A-Za-z]{_D}{{7}}[A-Za-z]",
    _EMAIL_CANDIDATE: r"[A-Za-z0-9._%+-]+@[^\s@<>()\[\]{},;:\"'=/\\]+",
    _FISCAL_CODE_CANDIDATE: (
        r"[a-zA-Z\x{80}-\x{10FFFF}]{6}[0-9lmnp-vLMNP-V\x{80}-\x{10FFFF}]{2}[a-ehlmpr-tA-EHLMPR-T\x{80}-\x{10FFFF}]"
        r"[0-9lmnp-vLMNP-V\x{80}-\x{10FFFF}]{2}[a-zA-Z\x{80}-\x{10FFFF}][0-9lmnp-vLMNP-V\x{80}-\x{10FFFF}]{3}"
        r"[a-zA-Z\x{80}-\x{10FFFF}]"
    ),
}
# Below this length `re` alone is cheaper than the extra RE2 pass.
_LOOSENED_FROM_CHARS = 256
NER_KINDS = ("person", "location")
PII_KINDS: tuple[str, ...] = (*_ENTITIES, *NATIONAL_ID_KINDS, *NER_KINDS)
DEFAULT_PII_KINDS: tuple[str, ...] = (
    "email", "phone_number", "credit_card", "iban", "us_ssn", "us_itin", "ip_address", "uk_nino", "uk_nhs",
    "es_nif", "it_fiscal_code", "in_aadhaar", "au_tfn", "pl_pesel", "ca_sin", *NATIONAL_ID_KINDS,
)
# spaCy labels -> kinds (as Presidio's SpacyRecognizer maps them).
_NER_LABELS = {"PERSON": "person", "PER": "person", "GPE": "location", "LOC": "location", "FAC": "location"}


def _build_recognizer(entity: _Entity, phone_regions: Sequence[str]) -> Any:
    if entity.kind == "phone_number":
        return PhoneSettings(supported_regions=tuple(phone_regions))
    recognizer = RECOGNIZERS[entity.kind]
    if entity.kind == "credit_card":
        return recognizer.with_patterns([("Credit card (issuer ranges)", entity.options["pattern"], 0.3)])
    return recognizer


def _context_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = sorted({word.strip().lower() for word in words if word.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    # Words of scripts written without spaces (電話番号) are matched inside longer words.
    bounded = [re.escape(word) for word in cleaned if not _unspaced(word)]
    unbounded = [re.escape(word) for word in cleaned if _unspaced(word)]
    parts = []
    if bounded:
        parts.append(r"(?<!\w)(?:" + "|".join(bounded) + r")(?!\w)")
    if unbounded:
        parts.append("(?:" + "|".join(unbounded) + ")")
    return re.compile("|".join(parts))


def _unspaced(word: str) -> bool:
    """True for words of scripts written without spaces between words (Chinese, Japanese, Korean)."""
    return any("\u3040" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" for char in word)


@dataclass(slots=True)
class _Active:
    entity: _Entity
    recognizer: Any
    prefilters: list[tuple[tuple[str, ...], re.Pattern[str]]]
    context: re.Pattern[str] | None
    strict_context: re.Pattern[str] | None
    # Every prefilter needs a digit: a text without one skips this kind at once.
    needs_a_digit: bool = False

    def worth_running(self, text: str, has_digit: bool = True, possible: set[str] | None = None) -> bool:
        """True when one of the prefilters matches (those needing a digit only when `has_digit`;
        with `possible`, only those whose loosened form matched)."""
        for literals, pattern in self.prefilters:
            if not has_digit and pattern.pattern in _PREFILTERS_WITH_A_DIGIT:
                continue
            if literals:
                for literal in literals:  # a loop, not any(): most prefilters have one literal
                    if literal in text:
                        break
                else:
                    continue
            if possible is not None and pattern.pattern not in possible:
                continue
            if pattern.search(text) is not None:
                return True
        return False


def _phone_candidate(candidate: str) -> bool:
    """Worth the phone parser: 7 to 15 digits (E.164 allows 15, plus an extension), not a date, a
    time or an IPv4 address."""
    digits = sum(char.isdigit() for char in candidate)
    stripped = candidate.strip()
    if not _MIN_PHONE_DIGITS <= digits <= 15 + 6:
        return False
    return (
        _DATE_LIKE.fullmatch(stripped) is None
        and _DOTTED_QUAD.fullmatch(stripped) is None
        and _DATE_TIME.search(stripped) is None
    )


def _phone_results(
    recognizer: Any, candidates: re.Pattern[str], text: str, cued: Callable[[int, int], bool]
) -> list[tuple[int, int, float]]:
    """Phone numbers among the candidates, as Presidio's PhoneRecognizer finds them (its regions,
    leniency and score), at a fraction of its cost.

    Presidio runs python-phonenumbers' matcher over the whole text once per region (about 0.5 ms
    per candidate with 8 regions). Here each candidate is first parsed region by region (cheap);
    the matcher, with its extra leniency checks, then runs on that candidate alone and only for
    the regions where the candidate parsed as a valid number.
    """
    import phonenumbers

    results = []
    regions: tuple[str, ...] | None = None
    for match in candidates.finditer(text):
        candidate = match.group()
        if not _phone_candidate(candidate) or looks_like_version_or_id(text, *match.span()):
            continue
        has_cue = cued(*match.span())
        if candidate.isdigit() and not has_cue:
            continue
        if named_as_id(text, match.start()) and not phone_named_before(text, match.start()):
            continue
        if regions is None:
            # The configured regions, then those the text points to (its script, its words, the
            # country codes of its e-mail and web addresses).
            regions = tuple(dict.fromkeys((*recognizer.supported_regions, *inferred_regions(text))))
        tried = regions
        if has_cue:
            # A phone cue word makes the candidate a phone number wherever it is valid: try the
            # regions most numbers come from too.
            tried = tuple(dict.fromkeys((*regions, *CUED_PHONE_REGIONS)))
        for region in _valid_phone_regions(phonenumbers, candidate, tried):
            found = next(iter(phonenumbers.PhoneNumberMatcher(candidate, region, leniency=recognizer.leniency)), None)
            if found is not None:
                results.append((match.start() + found.start, match.start() + found.end, recognizer.SCORE))
                break
        else:
            if _possible_phone(phonenumbers, candidate, tried if has_cue else ()):
                start = match.start() + len(candidate) - len(candidate.lstrip())
                results.append((start, match.start() + len(candidate.rstrip()), recognizer.SCORE))
    return results


def _warm_phone_matching(recognizer: Any) -> None:
    """Load python-phonenumbers' metadata of the configured regions and compile its matcher, as
    the first phone candidate would (some 35 ms): done when the detector is built, not on a request."""
    import phonenumbers

    for region in recognizer.supported_regions:
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        written = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        for _ in phonenumbers.PhoneNumberMatcher(written, region, leniency=recognizer.leniency):
            break


# Phone-style grouping: at least three groups of digits (`+7 (914) 343-63-31`, `(555) 555-0100`).
_GROUPED = re.compile(r"\d[ ().-]+\d+[ ().-]+\d")


def _possible_phone(phonenumbers: Any, candidate: str, cued_regions: Sequence[str]) -> bool:
    """A number no region's plan lists as valid, but written as phone numbers are: with its
    country code (`+44 …`) or, next to a phone cue word, in phone-style groups; and of a length
    some number of that country (or a cued region) can have. Numbering plans change faster than
    libphonenumber's metadata (new ranges, new operators), so validity alone misses real numbers.
    """
    stripped = candidate.strip()
    international = stripped.lstrip("(").startswith("+")
    if not international and (not cued_regions or _GROUPED.search(stripped) is None):
        return False
    # A number with its country code parses the same in every region.
    for region in (None,) if international else cued_regions:
        try:
            number = phonenumbers.parse(stripped, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number) and len(str(number.national_number)) >= _MIN_PHONE_DIGITS:
            return True
    return False


def _valid_phone_regions(phonenumbers: Any, candidate: str, regions: Sequence[str]) -> Iterator[str]:
    """The regions in which `candidate` parses as a valid number, lazily (an international number
    is valid everywhere or nowhere: the first region stands for all)."""
    international = candidate.lstrip("(").startswith("+")
    for region in regions[:1] if international else regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            yield region


def _has_run(text: str, chars: int) -> bool:
    """Whether `text` holds `chars` characters in a row without whitespace (a word of `str.split`
    that long). An ASCII text is read as its shape (`_RUN_SHAPES`), searched for that many `x`s,
    rather than split into words."""
    if len(text) < chars:
        return False
    if text.isascii():
        return b"x" * chars in text.encode().translate(_RUN_SHAPES)
    return max(map(len, text.split()), default=0) >= chars


def _card_length_ok(digits: str) -> bool:
    """Whether the issuer the first digits name issues cards of this length: a 15-digit run
    starting `35` is a phone's IMEI (Luhn-checked too), not a JCB card, which has 16 to 19."""
    length = len(digits)
    if digits.startswith("4"):
        return length in (13, 16, 19)
    if digits.startswith(("34", "37")):
        return length == 15
    if digits.startswith(("30", "36", "38", "39")):
        return 14 <= length <= 19
    if digits.startswith("5") or digits[:2] in ("22", "23", "24", "25", "26", "27"):
        return length == 16
    return 16 <= length <= 19  # JCB, Discover, UnionPay


def _keep_email(value: str) -> bool:
    domain = value.rpartition("@")[2].lower()
    reserved = any(domain == name or domain.endswith("." + name) for name in _RESERVED_EMAIL_DOMAINS)
    return not reserved and not domain.endswith(_RESERVED_EMAIL_SUFFIXES)


def _keep_ip(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    try:
        address = ipaddress.ip_interface(value.split("%", 1)[0]).ip
    except ValueError:
        return False
    if not address.is_global:
        return False
    if address.version == 4:
        # `1.2.3.4.5`, `v1.2.3.4`, `version 10.1.0.2`: a version number, not an address.
        if text[end : end + 2][:1] == "." and text[end + 1 : end + 2].isdigit():
            return False
        if start >= 2 and text[start - 1] == "." and text[start - 2].isdigit():
            return False
        if _VERSION_CUE.search(text[max(0, start - 12) : start]):
            return False
    return True


class PIIDetector:
    """Finds personal data; `kinds` chooses which, findings under `min_score` are dropped.

    `ner` is an optional callable (a loaded spaCy pipeline) returning a doc with `.ents`;
    without it `person` and `location` cannot be requested.
    """

    name = "pii"
    # Cue words are read up to 64 characters before a finding and 32 after it; findings are short
    # (an e-mail address is at most 254 characters), but an e-mail candidate can run on.
    reach = Reach(before=256, after=1024, longest=4096)

    def __init__(
        self,
        kinds: Iterable[str] = DEFAULT_PII_KINDS,
        *,
        min_score: float = 0.4,
        phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
        allow: Iterable[str] = (),
        ner: Callable[[str], Any] | None = None,
    ) -> None:
        wanted = list(dict.fromkeys(kinds))
        unknown = [kind for kind in wanted if kind not in PII_KINDS]
        if unknown:
            raise ValueError(f"unknown PII kind(s): {', '.join(unknown)}; known: {', '.join(PII_KINDS)}")
        self._ner_kinds = frozenset(kind for kind in wanted if kind in NER_KINDS)
        if self._ner_kinds and ner is None:
            raise ValueError(f"{', '.join(sorted(self._ner_kinds))} can only be found with a NER model (ner: true)")
        self._ner = ner if self._ner_kinds else None
        self._min_score = min_score
        self._allow = frozenset(allow)
        self._national = NationalIdFinder(kind for kind in wanted if kind in NATIONAL_ID_KINDS)
        self._active: list[_Active] = []
        for kind in wanted:
            entity = _ENTITIES.get(kind)
            if entity is None:
                continue
            recognizer = _build_recognizer(entity, phone_regions)
            if kind == "phone_number":
                _warm_phone_matching(recognizer)
            context = _context_pattern(recognizer.context or ())
            prefilters = [(literals, re.compile(pattern)) for literals, pattern in entity.prefilters]
            strict_context = _context_pattern(entity.strict_cues) if entity.strict_cues else context
            self._active.append(
                _Active(entity, recognizer, prefilters, context, strict_context,
                        bool(prefilters) and all(p.pattern in _PREFILTERS_WITH_A_DIGIT for _, p in prefilters))
            )
        self._loosened_patterns = sorted({
            pattern.pattern for active in self._active for _, pattern in active.prefilters
        })
        self._loosened = LinearPatternSet([compile_linear(_LOOSENED[pattern]) for pattern in self._loosened_patterns])
        # The kinds that need a cue word run their cue pattern only when one of their cue words
        # occurs in the lower-cased text at all: one Aho-Corasick pass for all of them.
        cues: dict[str, set[int]] = {}
        for index, active in enumerate(self._active):
            if active.entity.needs_context:
                for word in active.recognizer.context or ():
                    if word.strip():
                        cues.setdefault(word.strip().lower(), set()).add(index)
        self._cues: ahocorasick.Automaton | None = None
        # The kinds `scan` may run on a text without a digit, with their places in `_active` (the
        # others are skipped at once there: a cue kind that needs a digit, a digit prefilter).
        self._without_digits = [
            (index, active) for index, active in enumerate(self._active)
            if not (active.entity.kind in _CONTEXT_KINDS_WITH_A_DIGIT if active.entity.needs_context
                    else active.needs_a_digit)
        ]
        # Whether a kind needing a cue word may match a text without a digit (else such a text
        # skips the cue words).
        self._cues_without_digits = any(
            active.entity.needs_context and active.entity.kind not in _CONTEXT_KINDS_WITH_A_DIGIT
            for active in self._active
        )
        if cues:
            self._cues = ahocorasick.Automaton()
            for word, indexes in cues.items():
                self._cues.add_word(word, tuple(indexes))
            self._cues.make_automaton()

    @property
    def can_hold(self) -> bool:
        """False with a NER model: a name spans words, and no word says where one starts."""
        return self._ner is None

    def hold_from(self, text: str) -> int:
        """Where personal data may still be in progress at the end of `text` (see
        `detectors.holds`): the last word (an e-mail address, an IP address), or a run of digit
        groups that more digits, or a cue word after it, could still make a number."""
        word, digits = word_hold(text), digit_run_hold(text, _CONTEXT_AFTER_CHARS + _LONGEST_CUE_CHARS)
        return word if word <= digits else digits  # not min(): it parses its arguments at every call

    def scan(self, text: str) -> list[Finding]:
        """Every piece of personal data in `text`, in order of `start`; overlaps keep the best score."""
        lowered: str | None = None
        findings: list[Finding] = []
        cued: set[int] = set()
        has_digit = _has_digit(text)
        if self._cues is not None and (has_digit or self._cues_without_digits):
            lowered = text.lower()
            for _, indexes in self._cues.iter(lowered):
                cued.update(indexes)
        possible: set[str] | None = None
        if len(text) >= _LOOSENED_FROM_CHARS:
            possible = {self._loosened_patterns[index] for index in self._loosened.matching(text)}
        for index, active in enumerate(self._active) if has_digit else self._without_digits:
            entity = active.entity
            if entity.needs_context:
                if not has_digit and entity.kind in _CONTEXT_KINDS_WITH_A_DIGIT:
                    continue
                # The cue word is required anyway: look for it before running the recognizer.
                if lowered is None:
                    lowered = text.lower()
                if index not in cued or active.context is None or not active.context.search(lowered):
                    continue
            elif active.needs_a_digit and not has_digit:
                continue
            else:
                if entity.min_run_chars and possible is None and not _has_run(text, entity.min_run_chars):
                    continue
                if not active.worth_running(text, has_digit, possible):
                    continue
            if lowered is None:
                lowered = text.lower()
            for start, end, score in self._results(active, text, lowered):
                value = text[start:end]
                if value in self._allow or not self._keep(entity.kind, text, start, end):
                    continue
                has_context = active.context is not None and self._near(active.context, lowered, start, end)
                if entity.needs_context and not has_context:
                    continue
                if entity.bare_digits_need_context and value.isdigit() and not (
                    active.strict_context is not None and self._near(active.strict_context, lowered, start, end)
                ):
                    continue
                if has_context:
                    score = max(min(score + _CONTEXT_BOOST, 1.0), _MIN_SCORE_WITH_CONTEXT)
                if score >= self._min_score:
                    findings.append(Finding(entity.kind, start, end, value, round(score, 3)))
        if has_digit and self._national:  # every national id holds digits (see national_ids._GATE)
            if lowered is None:
                lowered = text.lower()
            # First, so that an id named by its own cue word wins a tie with another kind's match.
            findings[:0] = [
                finding for finding in self._national.scan(text, lowered)
                if finding.text not in self._allow and finding.score >= self._min_score
            ]
        if self._ner is not None:
            findings.extend(self._ner_findings(text))
        return findings if len(findings) < 2 else _without_overlaps(findings)

    def _results(self, active: _Active, text: str, lowered: str) -> list[tuple[int, int, float]]:
        """(start, end, score) of the recognizer's results, as offsets into `text`."""
        if not active.entity.snippets:
            return active.recognizer.analyze(text)  # type: ignore[no-any-return]
        if active.entity.kind == "phone_number":
            strict = active.strict_context

            def cued(start: int, end: int) -> bool:
                # Bare digit runs are kept only with a cue word: skip parsing the others at all.
                return strict is not None and self._near(strict, lowered, start, end)

            return _phone_results(active.recognizer, active.prefilters[0][1], text, cued)
        # Run the recognizer once over the candidate snippets, joined by blank lines, and map back.
        spans = [match.span() for _, pattern in active.prefilters for match in pattern.finditer(text)]
        if not spans:
            return []
        pieces: list[str] = []
        offsets: list[tuple[int, int, int]] = []  # (joined start, joined end, text start)
        position = 0
        for start, end in spans:
            pieces.append(text[start:end])
            offsets.append((position, position + end - start, start))
            position += end - start + 2
        joined = "\n\n".join(pieces)
        joined_starts = [joined_start for joined_start, _, _ in offsets]
        results = []
        for start, end, score in active.recognizer.analyze(joined):
            index = bisect.bisect_right(joined_starts, start) - 1
            if index < 0:
                continue
            joined_start, joined_end, text_start = offsets[index]
            if end <= joined_end:
                shift = text_start - joined_start
                results.append((start + shift, end + shift, score))
        return results

    @staticmethod
    def _keep(kind: str, text: str, start: int, end: int) -> bool:
        if kind == "email":
            return _keep_email(text[start:end])
        if kind == "ip_address":
            return _keep_ip(text, start, end)
        if kind == "credit_card":
            return _card_length_ok("".join(char for char in text[start:end] if char.isdigit()))
        if kind == "phone_number":
            # The phone parser can match a short run inside a longer number (`1691` in a card).
            return sum(char.isdigit() for char in text[start:end]) >= _MIN_PHONE_DIGITS
        return True

    @staticmethod
    def _near(context: re.Pattern[str], lowered: str, start: int, end: int) -> bool:
        window_start = max(0, start - _CONTEXT_BEFORE_CHARS)
        return context.search(lowered, window_start, min(len(lowered), end + _CONTEXT_AFTER_CHARS)) is not None

    def _ner_findings(self, text: str) -> list[Finding]:
        assert self._ner is not None
        findings = []
        for entity in self._ner(text).ents:
            kind = _NER_LABELS.get(entity.label_)
            if kind in self._ner_kinds and entity.text not in self._allow:
                findings.append(Finding(kind, entity.start_char, entity.end_char, entity.text, _NER_SCORE))
        return findings


def _without_overlaps(findings: list[Finding]) -> list[Finding]:
    """Where findings overlap keep the highest score, then the longest."""
    if len(findings) < 2:
        return findings
    return best_without_overlaps(
        findings, lambda f: (f.start, f.end), lambda f: (-f.score, -(f.end - f.start), f.start)
    )
