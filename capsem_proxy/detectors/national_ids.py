"""National identifiers with check digits: the ids of some 45 countries, each validated by its
own check digit or letter and structure (`id_checks`, written from the issuers' published rules).

Each kind has a candidate pattern (how the number is written: compact or with its usual
separators), its validator, and cue words (the number's name, in the country's languages and in
English). A candidate counts when its validator accepts it and either it is written in a form
that identifies itself (`123.456.789-09` for a Brazilian CPF, a Chinese resident id with its date
of birth and check character) or a cue word stands near it: an 11-digit number passing a mod-11
check alone is as likely an order number.

Cost: nothing runs on a text without a run of digits (the common prompt); the patterns run only
on texts that have one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from capsem_proxy.detectors import id_checks as checks
from capsem_proxy.detectors.base import Finding
from capsem_proxy.linear_regex import compile_linear

__all__ = ["NATIONAL_ID_KINDS", "NationalIdFinder", "named_as_id"]

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
    validator: Callable[[str], bool]
    pattern: str
    cues: tuple[str, ...]
    # A regex (over the match) for written forms that identify themselves without a cue word.
    self_identifying: str | None = None


_D = r"(?<![\w.+/-])"  # no digit, letter or separator just before
_E = r"(?![\w/-]|\.\w)"  # nor just after
# The same for scripts written without spaces (身份证号码11010…, マイナンバーは1234…): only an ASCII
# letter or digit glued to the number makes it part of a longer word.
_DA = r"(?<![A-Za-z0-9_.+/-])"
_EA = r"(?![A-Za-z0-9_/-]|\.[A-Za-z0-9])"

_KINDS: tuple[_Kind, ...] = (
    _Kind("br_cpf", checks.br_cpf, _D + r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}" + _E, ("cpf",), r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
    _Kind("br_cnpj", checks.br_cnpj, _D + r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}" + _E, ("cnpj",),
          r"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}"),
    _Kind("cn_resident_id", checks.cn_resident_id, _DA + r"\d{17}[\dXx]" + _EA,
          ("身份证", "居民身份证", "公民身份号码", "resident id", "ric"), r".+"),
    _Kind("kr_rrn", checks.kr_rrn, _DA + r"\d{6}-?\d{7}" + _EA,
          ("주민등록번호", "주민번호", "rrn", "resident registration"), r"\d{6}-\d{7}"),
    _Kind("mx_curp", checks.mx_curp, r"(?<![\w])[A-Z]{4}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d(?!\w)", ("curp",), r".+"),
    _Kind("mx_rfc", checks.mx_rfc, r"(?<![\w])[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{3}(?!\w)", ("rfc", "registro federal")),
    _Kind("tr_tckn", checks.tr_tckn, _D + r"[1-9]\d{10}" + _E, ("kimlik", "tckn", "tc no", "t.c.", "tc kimlik")),
    _Kind("ch_ahv", checks.ch_ahv, _D + r"756\.?\d{4}\.?\d{4}\.?\d{2}" + _E,
          ("ahv", "avs", "avs/ahv", "sozialversicherung", "ahv-nr", "ahv-nummer"), r"756\.\d{4}\.\d{4}\.\d{2}"),
    _Kind("no_fnr", checks.no_fnr, _D + r"\d{6} ?\d{5}" + _E,
          ("fødselsnummer", "fodselsnummer", "personnummer", "d-nummer")),
    _Kind("in_pan", checks.in_pan, r"(?<![\w])[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z](?!\w)",
          ("pan", "permanent account", "pan card")),
    _Kind("de_tax_id", checks.de_tax_id, _D + r"\d{2} ?\d{3} ?\d{3} ?\d{3}" + _E,
          ("steuer-id", "steuerid", "steuer id", "steueridentifikationsnummer", "identifikationsnummer", "idnr",
           "steuernummer")),
    _Kind("fr_nir", checks.fr_nir, _D + r"[1278] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}" + _E,
          ("sécurité sociale", "securite sociale", "nir", "insee", "carte vitale", "numéro de sécu")),
    _Kind("es_nie", checks.es_nie, r"(?<![\w])[XYZ]-?\d{7}-?[A-Z](?!\w)", ("nie", "extranjero"), r".+"),
    _Kind("nl_bsn", checks.nl_bsn, _D + r"\d{4}\.?\d{2}\.?\d{3}" + _E, ("bsn", "burgerservicenummer", "sofinummer")),
    _Kind("be_national_number", checks.be_national_number, _D + r"\d{2}\.?\d{2}\.?\d{2}-?\d{3}\.?\d{2}" + _E,
          ("rijksregisternummer", "rijksregister", "numéro national", "numero national", "registre national",
           "nationalregisternummer", "insz"), r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}"),
    _Kind("se_personnummer", checks.se_personnummer, _D + r"(?:\d{2})?\d{6}[-+]?\d{4}" + _E,
          ("personnummer", "samordningsnummer")),
    _Kind("fi_hetu", checks.fi_hetu, r"(?<![\w])\d{6}[-+ABCDEFUVWXY]\d{3}[0-9A-Y](?!\w)",
          ("henkilötunnus", "henkilotunnus", "hetu", "personbeteckning"), r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]"),
    _Kind("dk_cpr", checks.dk_cpr, _D + r"\d{6}-?\d{4}" + _E, ("cpr", "cpr-nummer", "cpr-nr", "personnummer")),
    _Kind("pt_nif", checks.pt_nif, _D + r"[1-35-9]\d{8}" + _E, ("nif", "contribuinte", "número fiscal")),
    _Kind("ro_cnp", checks.ro_cnp, _D + r"[1-9]\d{12}" + _E, ("cnp", "cod numeric personal", "cod numeric")),
    _Kind("bg_egn", checks.bg_egn, _D + r"\d{10}" + _E, ("егн", "egn", "единен граждански номер")),
    _Kind("cz_birth_number", checks.cz_birth_number, _D + r"\d{6}/?\d{3,4}" + _E,
          ("rodné číslo", "rodne cislo", "rodné čislo", "rodné", "birth number", "rč")),
    _Kind("ie_pps", checks.ie_pps, r"(?<![\w])\d{7}[A-W][ABHWTXZ]?(?!\w)", ("pps", "ppsn", "personal public service")),
    _Kind("at_ssn", checks.at_ssn, _D + r"\d{4} ?\d{6}" + _E,
          ("sozialversicherungsnummer", "versicherungsnummer", "sv-nummer", "svnr", "sv-nr")),
    _Kind("hr_oib", checks.hr_oib, _D + r"\d{11}" + _E, ("oib", "osobni identifikacijski")),
    _Kind("ee_isikukood", checks.ee_isikukood, _D + r"[1-6]\d{10}" + _E, ("isikukood", "personal code")),
    _Kind("za_id", checks.za_id, _D + r"\d{6} ?\d{4} ?\d{2} ?\d" + _E, ("south african id", "id number", "id no")),
    _Kind("il_id", checks.il_id, _D + r"(?:\d{7,9}|\d{6,8}-\d)" + _E,
          ("teudat zehut", "תעודת זהות", "מספר זהות", "מס' זהות", "ת.ז", 'ת"ז', "ת״ז", "זהות", "israeli id",
           "zehut")),
    _Kind("pl_nip", checks.pl_nip, _D + r"\d{3}-?\d{3}-?\d{2}-?\d{2}" + _E,
          ("nip", "numer identyfikacji podatkowej"), r"\d{3}-\d{3}-\d{2}-\d{2}"),
    _Kind("lt_asmens_kodas", checks.lt_asmens_kodas, _D + r"[1-6]\d{10}" + _E,
          ("asmens kodas", "asmens kodą", "asmens kodo")),
    _Kind("lv_personas_kods", checks.lv_personas_kods, _D + r"\d{6}-?\d{5}" + _E,
          ("personas kods", "personas kodu", "personas koda"), r"\d{6}-\d{5}"),
    _Kind("si_emso", checks.si_emso, _D + r"\d{13}" + _E,
          ("emšo", "emso", "jmbg", "матични број", "matična številka", "matični broj", "enotna matična")),  # noqa: RUF001 (the words are Cyrillic, Greek)
    _Kind("cl_rut", checks.cl_rut, _D + r"\d{1,2}\.?\d{3}\.?\d{3}-?[\dkK]" + _E,
          ("rut", "run", "rol único tributario", "rol unico tributario"), r"\d{1,2}\.\d{3}\.\d{3}-[\dkK]"),
    _Kind("co_nit", checks.co_nit, _D + r"\d{3}\.?\d{3}\.?\d{3,4}-?\d" + _E,
          ("nit", "número de identificación tributaria")),
    _Kind("ar_cuit", checks.ar_cuit, _D + r"\d{2}-?\d{8}-?\d" + _E, ("cuit", "cuil"), r"\d{2}-\d{8}-\d"),
    _Kind("ec_cedula", checks.ec_cedula, _D + r"\d{9}-?\d" + _E, ("cédula", "cedula")),
    _Kind("jp_my_number", checks.jp_my_number, _DA + r"\d{4}[ -]?\d{4}[ -]?\d{4}" + _EA,
          ("マイナンバー", "個人番号", "my number", "mynumber")),
    _Kind("tw_national_id", checks.tw_national_id, r"(?<![A-Za-z0-9_])[A-Z][1289]\d{8}(?![A-Za-z0-9_])",
          ("身分證", "身份證", "身分證字號", "國民身分證", "統一證號")),
    _Kind("th_id", checks.th_id, _DA + r"\d(?:[ -]?\d{4}[ -]?\d{5}[ -]?\d{2}[ -]?|\d{11})\d" + _EA,
          ("เลขประจำตัวประชาชน", "บัตรประชาชน", "thai id", "citizen id")),
    _Kind("nz_ird", checks.nz_ird, _D + r"\d{2,3}-?\d{3}-?\d{3}" + _E, ("ird", "inland revenue")),
    _Kind("au_medicare", checks.au_medicare, _D + r"[2-6]\d{3} ?\d{5} ?\d{1,2}" + _E, ("medicare",)),
    _Kind("au_abn", checks.au_abn, _D + r"\d{2} ?\d{3} ?\d{3} ?\d{3}" + _E, ("abn", "australian business number")),
    _Kind("is_kennitala", checks.is_kennitala, _D + r"\d{6}-?\d{4}" + _E, ("kennitala", "kt.")),
    _Kind("gr_amka", checks.gr_amka, _D + r"\d{11}" + _E, ("amka", "αμκα", "α.μ.κ.α.")),  # noqa: RUF001 (the words are Cyrillic, Greek)
    _Kind("hu_taj", checks.hu_taj, _D + r"\d{3} ?-?\d{3} ?-?\d{3}" + _E,
          ("taj", "taj szám", "tajszám", "társadalombiztosítási")),
    _Kind("ru_inn", checks.ru_inn, _D + r"\d{10}(?:\d{2})?" + _E, ("инн", "inn")),
)
NATIONAL_ID_KINDS: tuple[str, ...] = tuple(kind.kind for kind in _KINDS)
# Kinds a generic name ("tax id", "personal number") is not cue enough for: their only check is
# one mod-10/11 digit over free digits (or a date), which one number in ten passes.
_OWN_CUES_ONLY = frozenset({
    "pl_nip", "lt_asmens_kodas", "lv_personas_kods", "si_emso", "cl_rut", "co_nit", "ar_cuit", "ec_cedula",
    "jp_my_number", "tw_national_id", "th_id", "nz_ird", "au_medicare", "au_abn", "is_kennitala", "gr_amka",
    "hu_taj", "ru_inn",
})
# Texts without such a run (the usual prompt) are not read any further.
_GATE = re.compile(r"\d[\d .\-/]{6,}\d|\d{7}[A-Z]|[A-Z]{3,5}\d{4}|[XYZ]-?\d{7}|\d{6}[-+A-Y]\d{3}")
# The gate as RE2 runs it, asked first: `re` tries its five branches at every position (some
# 120 µs on a 2 KB text). `\d` also takes any non-ASCII character (what `re` reads as a digit
# is one here too), so it matches wherever the gate does.
_ANY_DIGIT = r"[0-9\x{80}-\x{10FFFF}]"
_LOOSE_GATE = compile_linear(
    _GATE.pattern.replace("[\\d", "[0-9\\x{80}-\\x{10FFFF}").replace("\\d", _ANY_DIGIT)
)


@functools.cache
def _named_before() -> re.Pattern[str]:
    words = {word.lower() for spec in _KINDS for word in spec.cues} | set(_GENERIC_CUES)
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(word) for word in ordered) + r")[\s:#.№-]{0,4}$")


def named_as_id(text: str, start: int) -> bool:
    """True when the number at `start` directly follows the name of an identity number (`NIP:`,
    `CPF`, `national id`): it is that id (maybe mistyped), whatever else its digits could be."""
    return _named_before().search(text[max(0, start - 48) : start].lower()) is not None


def _cue_pattern(words: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted({word.lower() for word in words}, key=len, reverse=True)
    # Words of scripts written without spaces (マイナンバー, 身份证) are matched inside longer words.
    bounded = [re.escape(word) for word in ordered if not _unspaced(word)]
    unbounded = [re.escape(word) for word in ordered if _unspaced(word)]
    parts = [r"(?<!\w)(?:" + "|".join(bounded) + r")(?!\w)"] if bounded else []
    if unbounded:
        parts.append("(?:" + "|".join(unbounded) + ")")
    return re.compile("|".join(parts))


def _unspaced(word: str) -> bool:
    """True for words of scripts written without spaces between words (Chinese, Japanese, Korean, Thai)."""
    return any("\u3040" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\u0e00" <= char <= "\u0e7f"
               for char in word)


@dataclass(slots=True)
class _Active:
    spec: _Kind
    pattern: re.Pattern[str]
    validator: Callable[[str], bool]
    cues: re.Pattern[str]
    own_cues: re.Pattern[str]
    self_identifying: re.Pattern[str] | None


class NationalIdFinder:
    """Finds the national identifiers of `kinds` in a text (see the module docstring)."""

    def __init__(self, kinds: Iterable[str]) -> None:
        wanted = set(kinds)
        self._active = [
            _Active(
                spec, re.compile(spec.pattern), spec.validator,
                _cue_pattern((*spec.cues, *(() if spec.kind in _OWN_CUES_ONLY else _GENERIC_CUES))),
                _cue_pattern(spec.cues),
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
                    valid = active.validator(value)
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
