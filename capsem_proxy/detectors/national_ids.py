"""National identifiers with check digits, validated by python-stdnum.

Why python-stdnum: it implements the checksum and structure rules of several hundred national
numbers (dates of birth inside them, mod-11 and Luhn variants, check letters), maintained against
each country's specification; writing them by hand would repeat that work with more bugs.
Presidio has recognizers for a few of these countries only, without the others' checksums.

Each kind has a candidate pattern (how the number is written: compact or with its usual
separators), the stdnum module that validates it, and cue words (the number's name, in the
country's languages and in English). A candidate counts when stdnum accepts it and either it is
written in a form that identifies itself (`123.456.789-09` for a Brazilian CPF, a Chinese
resident id with its date of birth and check character) or a cue word stands near it: an
11-digit number passing a mod-11 check alone is as likely an order number.

Cost: nothing runs on a text without a run of digits (the common prompt); the patterns run only
on texts that have one.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from capsem_proxy.detectors.base import Finding
from capsem_proxy.linear_regex import compile_linear

__all__ = ["NATIONAL_ID_KINDS", "NationalIdFinder"]

_SCORE = 0.9
_CONTEXT_BEFORE = 64
_CONTEXT_AFTER = 32
# Words that name an identity number in general, in any country.
_GENERIC_CUES = (
    "national id", "national identity", "id number", "id no", "identity number", "identification number",
    "personal number", "personal id", "citizen id", "tax id", "tax number", "social security", "passport",
)


@dataclass(frozen=True, slots=True)
class _Kind:
    kind: str
    module: str
    pattern: str
    cues: tuple[str, ...]
    # A regex (over the match) for written forms that identify themselves without a cue word.
    self_identifying: str | None = None


_D = r"(?<![\w.+/-])"  # no digit, letter or separator just before
_E = r"(?![\w/-]|\.\w)"  # nor just after

_KINDS: tuple[_Kind, ...] = (
    _Kind("br_cpf", "br.cpf", _D + r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}" + _E, ("cpf",), r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
    _Kind("br_cnpj", "br.cnpj", _D + r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}" + _E, ("cnpj",),
          r"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}"),
    _Kind("cn_resident_id", "cn.ric", _D + r"\d{17}[\dXx]" + _E,
          ("身份证", "居民身份证", "公民身份号码", "resident id", "ric"), r".+"),
    _Kind("kr_rrn", "kr.rrn", _D + r"\d{6}-?\d{7}" + _E, ("주민등록번호", "주민번호", "rrn", "resident registration"),
          r"\d{6}-\d{7}"),
    _Kind("mx_curp", "mx.curp", r"(?<![\w])[A-Z]{4}\d{6}[HM][A-Z]{5}[0-9A-Z]\d(?!\w)", ("curp",), r".+"),
    _Kind("mx_rfc", "mx.rfc", r"(?<![\w])[A-ZÑ&]{4}\d{6}[A-Z0-9]{3}(?!\w)", ("rfc", "registro federal")),
    _Kind("tr_tckn", "tr.tckimlik", _D + r"[1-9]\d{10}" + _E, ("kimlik", "tckn", "tc no", "t.c.")),
    _Kind("ch_ahv", "ch.ssn", _D + r"756\.?\d{4}\.?\d{4}\.?\d{2}" + _E, ("ahv", "avs", "avs/ahv", "sozialversicherung"),
          r"756\.\d{4}\.\d{4}\.\d{2}"),
    _Kind("no_fnr", "no.fodselsnummer", _D + r"\d{6} ?\d{5}" + _E, ("fødselsnummer", "fodselsnummer", "personnummer")),
    _Kind("in_pan", "in_.pan", r"(?<![\w])[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z](?!\w)", ("pan", "permanent account")),
    _Kind("de_tax_id", "de.idnr", _D + r"\d{2} ?\d{3} ?\d{3} ?\d{3}" + _E,
          ("steuer-id", "steuerid", "steuer id", "steueridentifikationsnummer", "identifikationsnummer", "idnr")),
    _Kind("fr_nir", "fr.nir", _D + r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}" + _E,
          ("sécurité sociale", "securite sociale", "nir", "insee", "carte vitale")),
    _Kind("es_nie", "es.nie", r"(?<![\w])[XYZ]-?\d{7}-?[A-Z](?!\w)", ("nie", "extranjero"), r".+"),
    _Kind("nl_bsn", "nl.bsn", _D + r"\d{4}\.?\d{2}\.?\d{3}" + _E, ("bsn", "burgerservicenummer", "sofinummer")),
    _Kind("be_national_number", "be.nn", _D + r"\d{2}\.?\d{2}\.?\d{2}-?\d{3}\.?\d{2}" + _E,
          ("rijksregisternummer", "rijksregister", "numéro national", "numero national", "registre national",
           "nationalregisternummer"), r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}"),
    _Kind("se_personnummer", "se.personnummer", _D + r"(?:\d{2})?\d{6}[-+]?\d{4}" + _E, ("personnummer",)),
    _Kind("fi_hetu", "fi.hetu", r"(?<![\w])\d{6}[-+ABCDEFUVWXY]\d{3}[0-9A-Y](?!\w)",
          ("henkilötunnus", "henkilotunnus", "hetu", "personbeteckning"), r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"),
    _Kind("dk_cpr", "dk.cpr", _D + r"\d{6}-?\d{4}" + _E, ("cpr", "cpr-nummer", "cpr-nr", "personnummer")),
    _Kind("pt_nif", "pt.nif", _D + r"[1-35-9]\d{8}" + _E, ("nif", "contribuinte")),
    _Kind("ro_cnp", "ro.cnp", _D + r"[1-9]\d{12}" + _E, ("cnp", "cod numeric personal")),
    _Kind("bg_egn", "bg.egn", _D + r"\d{10}" + _E, ("егн", "egn")),
    _Kind("cz_birth_number", "cz.rc", _D + r"\d{6}/?\d{3,4}" + _E,
          ("rodné číslo", "rodne cislo", "rodné čislo", "rodné", "birth number")),
    _Kind("ie_pps", "ie.pps", r"(?<![\w])\d{7}[A-W][ABWTXZ]?(?!\w)", ("pps", "ppsn", "personal public service")),
    _Kind("at_ssn", "at.vnr", _D + r"\d{4} ?\d{6}" + _E,
          ("sozialversicherungsnummer", "versicherungsnummer", "sv-nummer", "svnr", "sv-nr")),
    _Kind("hr_oib", "hr.oib", _D + r"\d{11}" + _E, ("oib", "osobni identifikacijski")),
    _Kind("ee_isikukood", "ee.ik", _D + r"[1-6]\d{10}" + _E, ("isikukood", "personal code")),
    _Kind("za_id", "za.idnr", _D + r"\d{6} ?\d{4} ?\d{2} ?\d" + _E, ("south african id", "id number", "id no")),
    _Kind("il_id", "il.idnr", _D + r"\d{8,9}" + _E, ("teudat zehut", "תעודת זהות", "מספר זהות", "israeli id")),
)
NATIONAL_ID_KINDS: tuple[str, ...] = tuple(kind.kind for kind in _KINDS)
# Texts without such a run (the usual prompt) are not read any further.
_GATE = re.compile(r"\d[\d .\-/]{6,}\d|\d{7}[A-Z]|[A-Z]{3,5}\d{4}|[XYZ]-?\d{7}|\d{6}[-+A-Y]\d{3}")
# The gate as RE2 runs it, asked first: `re` tries its five branches at every position (some
# 120 µs on a 2 KB text). `\d` also takes any non-ASCII character (what `re` reads as a digit
# is one here too), so it matches wherever the gate does.
_ANY_DIGIT = r"[0-9\x{80}-\x{10FFFF}]"
_LOOSE_GATE = compile_linear(
    _GATE.pattern.replace("[\\d", "[0-9\\x{80}-\\x{10FFFF}").replace("\\d", _ANY_DIGIT)
)


def _cue_pattern(words: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted({word.lower() for word in words}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in ordered) + r")(?!\w)")


@dataclass(slots=True)
class _Active:
    spec: _Kind
    pattern: re.Pattern[str]
    validator: Any
    cues: re.Pattern[str]
    own_cues: re.Pattern[str]
    self_identifying: re.Pattern[str] | None


class NationalIdFinder:
    """Finds the national identifiers of `kinds` in a text (see the module docstring)."""

    def __init__(self, kinds: Iterable[str]) -> None:
        wanted = set(kinds)
        self._active = [
            _Active(
                spec, re.compile(spec.pattern), importlib.import_module(f"stdnum.{spec.module}"),
                _cue_pattern((*spec.cues, *_GENERIC_CUES)), _cue_pattern(spec.cues),
                re.compile(spec.self_identifying) if spec.self_identifying else None,
            )
            for spec in _KINDS
            if spec.kind in wanted
        ]

    def __bool__(self) -> bool:
        return bool(self._active)

    def scan(self, text: str, lowered: str) -> list[Finding]:
        """Every valid identifier of the active kinds (overlaps are resolved by the caller)."""
        if not self._active or not _LOOSE_GATE.found_in(text) or _GATE.search(text) is None:
            return []
        findings = []
        for active in self._active:
            for match in active.pattern.finditer(text):
                value = match.group()
                try:
                    valid = active.validator.is_valid(value)
                except Exception:  # a validator's own bug must not stop the scan
                    valid = False
                if not valid:
                    continue
                start, end = match.span()
                strong = active.self_identifying is not None and active.self_identifying.fullmatch(value)
                if not strong and not self._cued(active.cues, lowered, start, end):
                    continue
                # Named by its own cue word, it outranks a look-alike of another kind at the same place.
                score = 1.0 if self._cued(active.own_cues, lowered, start, end) else _SCORE
                findings.append(Finding(active.spec.kind, start, end, value, score))
        return findings

    @staticmethod
    def _cued(cues: re.Pattern[str], lowered: str, start: int, end: int) -> bool:
        window_end = min(len(lowered), end + _CONTEXT_AFTER)
        return cues.search(lowered, max(0, start - _CONTEXT_BEFORE), window_end) is not None
