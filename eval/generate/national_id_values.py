"""National identifiers made from random digits with their check digit computed by the issuer's
published rule (written here on their own, not taken from the detector), each with a twin whose
check digit is wrong (a look-alike the detector must not report).

`ID_MAKERS[kind](rng)` returns (valid, wrong check) as written (with its usual separators or
compact), and `ID_CUES[kind]` the words that name it in its country's language.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

__all__ = ["ID_CUES", "ID_MAKERS"]

Pair = tuple[str, str]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _birth(rng: random.Random, first: int = 1940, last: int = 2005) -> date:
    return date(first, 1, 1) + timedelta(days=rng.randrange((date(last, 12, 31) - date(first, 1, 1)).days))


def _other_digit(rng: random.Random, digit: str) -> str:
    return rng.choice([d for d in "0123456789" if d != digit])


def _swap_last(rng: random.Random, value: str) -> str:
    """`value` with its last digit changed."""
    return value[:-1] + _other_digit(rng, value[-1])


def _dot(weights: list[int] | range, digits: str) -> int:
    return sum(w * int(d) for w, d in zip(weights, digits, strict=False))


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def _mod11_10(body: str) -> str:
    product = 10
    for char in body:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    return str((11 - product) % 10)


def _until(rng: random.Random, make: Callable[[random.Random], str | None]) -> str:
    while True:
        value = make(rng)
        if value is not None:
            return value


def br_cpf(rng: random.Random) -> Pair:
    body = _digits(rng, 9)
    first = _dot(range(10, 1, -1), body) * 10 % 11 % 10
    second = _dot(range(11, 1, -1), body + str(first)) * 10 % 11 % 10
    value = f"{body}{first}{second}"
    form = f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"
    return form, _swap_last(rng, form)


def br_cnpj(rng: random.Random) -> Pair:
    body = _digits(rng, 8) + "0001"
    weights = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for size in (12, 13):
        remainder = _dot(weights[13 - size :], body) % 11
        body += str(0 if remainder < 2 else 11 - remainder)
    form = f"{body[:2]}.{body[2:5]}.{body[5:8]}/{body[8:12]}-{body[12:]}"
    return form, _swap_last(rng, form)


def cn_resident_id(rng: random.Random) -> Pair:
    region = rng.choice(["110101", "310104", "440305", "510107", "330106"])
    body = region + _birth(rng).strftime("%Y%m%d") + _digits(rng, 3)
    check = (12 - sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body)) % 11) % 11
    mark = "X" if check == 10 else str(check)
    wrong = rng.choice([c for c in "0123456789X" if c != mark])
    return body + mark, body + wrong


def kr_rrn(rng: random.Random) -> Pair:
    born = _birth(rng, 1950, 1999)
    body = born.strftime("%y%m%d") + rng.choice("12") + _digits(rng, 5)
    check = (11 - _dot([2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5], body) % 11) % 10
    form = f"{body[:6]}-{body[6:]}{check}"
    return form, _swap_last(rng, form)


def tr_tckn(rng: random.Random) -> Pair:
    body = str(rng.randrange(1, 10)) + _digits(rng, 8)
    numbers = [int(d) for d in body]
    tenth = (sum(numbers[0::2]) * 7 - sum(numbers[1::2])) % 10
    eleventh = (sum(numbers) + tenth) % 10
    value = f"{body}{tenth}{eleventh}"
    return value, _swap_last(rng, value)


def ch_ahv(rng: random.Random) -> Pair:
    body = "756" + _digits(rng, 9)
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    value = body + str(check)
    form = f"{value[:3]}.{value[3:7]}.{value[7:11]}.{value[11:]}"
    return form, _swap_last(rng, form)


def no_fnr(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = _birth(rng).strftime("%d%m%y") + _digits(rng, 3)
        first = (11 - _dot([3, 7, 6, 1, 8, 9, 4, 5, 2], body) % 11) % 11
        if first == 10:
            return None
        second = (11 - _dot([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], body + str(first)) % 11) % 11
        return None if second == 10 else f"{body}{first}{second}"

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def de_tax_id(rng: random.Random) -> Pair:
    digits = rng.sample("123456789", 1) + rng.sample("0123456789", 10)
    digits = [d for i, d in enumerate(digits) if d not in digits[:i]][:9]
    digits.insert(rng.randrange(1, 9), rng.choice(digits))
    body = "".join(digits)
    value = body + _mod11_10(body)
    return f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}", _swap_last(rng, value)


def fr_nir(rng: random.Random) -> Pair:
    born = _birth(rng)
    body = rng.choice("12") + born.strftime("%y%m") + f"{rng.randrange(1, 96):02d}" + _digits(rng, 6)
    key = 97 - int(body) % 97
    form = f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"
    return form, form[:-2] + f"{(key + rng.randrange(1, 96)) % 97 + 1:02d}"


_DNI = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_nie(rng: random.Random) -> Pair:
    prefix = rng.choice("XYZ")
    body = _digits(rng, 7)
    letter = _DNI[int(str("XYZ".index(prefix)) + body) % 23]
    wrong = rng.choice([c for c in _DNI if c != letter])
    return f"{prefix}{body}{letter}", f"{prefix}{body}{wrong}"


def nl_bsn(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = str(rng.randrange(1, 10)) + _digits(rng, 7)
        check = _dot(range(9, 1, -1), body) % 11
        return None if check == 10 else body + str(check)

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def be_national_number(rng: random.Random) -> Pair:
    born = _birth(rng, 1940, 1999)
    body = born.strftime("%y%m%d") + f"{rng.randrange(1, 998):03d}"
    check = 97 - int(body) % 97
    form = f"{body[:2]}.{body[2:4]}.{body[4:6]}-{body[6:9]}.{check:02d}"
    # Not the key of a birth in the 2000s either (computed over "2" + the digits).
    wrong = rng.choice([key for key in range(1, 98) if key not in (check, 97 - int("2" + body) % 97)])
    return form, form[:-2] + f"{wrong:02d}"


def se_personnummer(rng: random.Random) -> Pair:
    # Written with the century (YYYYMMDD-NNNC), as the tax agency's forms ask; the check digit is
    # the Luhn digit of the ten digits without it.
    born = _birth(rng)
    body = born.strftime("%y%m%d") + _digits(rng, 3)
    value = f"{born.year // 100}{body}{_luhn_digit(body)}"
    form = f"{value[:8]}-{value[8:]}"
    return form, _swap_last(rng, form)


def fi_hetu(rng: random.Random) -> Pair:
    born = _birth(rng)
    sign = "-" if born.year < 2000 else "A"
    number = f"{rng.randrange(2, 900):03d}"
    check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(born.strftime("%d%m%y") + number) % 31]
    wrong = rng.choice([c for c in "0123456789ABCDEFHJKLMNPRSTUVWXY" if c != check])
    return f"{born:%d%m%y}{sign}{number}{check}", f"{born:%d%m%y}{sign}{number}{wrong}"


def pt_nif(rng: random.Random) -> Pair:
    body = rng.choice("12356789") + _digits(rng, 7)
    check = 11 - _dot(range(9, 1, -1), body) % 11
    value = body + str(0 if check >= 10 else check)
    return value, _swap_last(rng, value)


def ro_cnp(rng: random.Random) -> Pair:
    born = _birth(rng, 1950, 1999)
    body = rng.choice("12") + born.strftime("%y%m%d") + f"{rng.randrange(1, 47):02d}" + _digits(rng, 3)
    check = _dot([2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9], body) % 11
    value = body + str(1 if check == 10 else check)
    return value, _swap_last(rng, value)


def bg_egn(rng: random.Random) -> Pair:
    body = _birth(rng, 1940, 1999).strftime("%y%m%d") + _digits(rng, 3)
    value = body + str(_dot([2, 4, 8, 5, 10, 9, 7, 3, 6], body) % 11 % 10)
    return value, _swap_last(rng, value)


def cz_birth_number(rng: random.Random) -> Pair:
    born = _birth(rng, 1960, 1999)
    month = born.month + rng.choice([0, 50])
    body = f"{born:%y}{month:02d}{born:%d}" + _digits(rng, 3)
    check = int(body) % 11 % 10
    value = body + str(check)
    form = f"{value[:6]}/{value[6:]}"
    return form, _swap_last(rng, form)


def ie_pps(rng: random.Random) -> Pair:
    body = _digits(rng, 7)
    letters = "WABCDEFGHIJKLMNOPQRSTUV"
    check = letters[_dot(range(8, 1, -1), body) % 23]
    return body + check, body + rng.choice([c for c in letters if c != check])


def at_ssn(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        serial = str(rng.randrange(1, 10)) + _digits(rng, 2)
        born = _birth(rng).strftime("%d%m%y")
        check = _dot([3, 7, 9, 5, 8, 4, 2, 1, 6], serial + born) % 11
        return None if check == 10 else f"{serial}{check} {born}"

    value = _until(rng, make)
    wrong = value[:3] + _other_digit(rng, value[3]) + value[4:]
    return value, wrong


def hr_oib(rng: random.Random) -> Pair:
    body = _digits(rng, 10)
    value = body + _mod11_10(body)
    return value, _swap_last(rng, value)


def _baltic(rng: random.Random) -> Pair:
    born = _birth(rng, 1950, 1999)
    body = rng.choice("34") + born.strftime("%y%m%d") + _digits(rng, 3)
    check = _dot([1, 2, 3, 4, 5, 6, 7, 8, 9, 1], body) % 11
    if check == 10:
        check = _dot([3, 4, 5, 6, 7, 8, 9, 1, 2, 3], body) % 11 % 10
    value = body + str(check)
    return value, _swap_last(rng, value)


def za_id(rng: random.Random) -> Pair:
    body = _birth(rng, 1950, 1999).strftime("%y%m%d") + _digits(rng, 4) + "08"
    value = body + _luhn_digit(body)
    return value, _swap_last(rng, value)


def il_id(rng: random.Random) -> Pair:
    body = _digits(rng, 8)
    value = body + _luhn_digit(body)
    return value, _swap_last(rng, value)


def pl_nip(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = str(rng.randrange(1, 10)) + _digits(rng, 8)
        check = _dot([6, 5, 7, 2, 3, 4, 5, 6, 7], body) % 11
        return None if check == 10 else body + str(check)

    value = _until(rng, make)
    form = f"{value[:3]}-{value[3:6]}-{value[6:8]}-{value[8:]}"
    return form, _swap_last(rng, form)


def lv_personas_kods(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        born = _birth(rng, 1950, 1999)
        body = born.strftime("%d%m%y") + "1" + _digits(rng, 3)
        check = (1101 - _dot([1, 6, 3, 7, 9, 10, 5, 8, 4, 2], body)) % 11
        return None if check == 10 else f"{body[:6]}-{body[6:]}{check}"

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def si_emso(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        born = _birth(rng, 1950, 1999)
        body = born.strftime("%d%m") + f"{born.year % 1000:03d}" + "50" + _digits(rng, 3)
        check = (11 - _dot([7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2], body) % 11) % 11
        return None if check == 10 else body + str(check)

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def cl_rut(rng: random.Random) -> Pair:
    body = str(rng.randrange(5_000_000, 25_000_000))
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(body)))
    check = {11: "0", 10: "K"}.get(11 - total % 11, str(11 - total % 11))
    wrong = rng.choice([c for c in "0123456789K" if c != check])
    grouped = f"{int(body):,}".replace(",", ".")
    return f"{grouped}-{check}", f"{grouped}-{wrong}"


def ar_cuit(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = rng.choice(["20", "23", "27", "30"]) + _digits(rng, 8)
        check = (11 - _dot([5, 4, 3, 2, 7, 6, 5, 4, 3, 2], body) % 11) % 11
        return None if check == 10 else f"{body[:2]}-{body[2:]}-{check}"

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def jp_my_number(rng: random.Random) -> Pair:
    body = _digits(rng, 11)
    total = sum(int(d) * (n + 1 if n <= 6 else n - 5) for n, d in enumerate(reversed(body), 1))
    check = 0 if total % 11 <= 1 else 11 - total % 11
    value = body + str(check)
    form = f"{value[:4]} {value[4:8]} {value[8:]}"
    return form, _swap_last(rng, form)


def nz_ird(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = str(rng.randrange(10_000_000, 149_999_999) // 10).zfill(8)
        remainder = _dot([3, 2, 7, 6, 5, 4, 3, 2], body) % 11
        check = 0 if remainder == 0 else 11 - remainder
        if check == 10:
            return None
        value = body.lstrip("0") + str(check)
        return f"{value[:-6]}-{value[-6:-3]}-{value[-3:]}"

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def au_abn(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = _digits(rng, 9)
        # The two leading digits d1 d2 make the weighted sum (d1 - 1 counted) a multiple of 89.
        rest = _dot([3, 5, 7, 9, 11, 13, 15, 17, 19], body)
        for lead in range(10, 100):
            if ((lead // 10 - 1) * 10 + lead % 10 + rest) % 89 == 0:
                value = f"{lead}{body}"
                return f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"
        return None

    value = _until(rng, make)
    return value, _swap_last(rng, value)


def ru_inn(rng: random.Random) -> Pair:
    body = str(rng.randrange(1, 10)) + _digits(rng, 8)
    value = body + str(_dot([2, 4, 10, 3, 5, 9, 4, 6, 8], body) % 11 % 10)
    return value, _swap_last(rng, value)


def is_kennitala(rng: random.Random) -> Pair:
    def make(rng: random.Random) -> str | None:
        body = _birth(rng, 1950, 1999).strftime("%d%m%y") + _digits(rng, 2)
        check = (11 - _dot([3, 2, 7, 6, 5, 4, 3, 2], body) % 11) % 11
        return None if check == 10 else f"{body[:6]}-{body[6:]}{check}9"

    value = _until(rng, make)
    wrong = value[:-2] + _other_digit(rng, value[-2]) + value[-1]
    return value, wrong


MAKERS_AND_CUES: dict[str, tuple[Callable[[random.Random], Pair], tuple[str, ...]]] = {
    "br_cpf": (br_cpf, ("CPF", "meu CPF é")),
    "br_cnpj": (br_cnpj, ("CNPJ", "CNPJ da empresa:")),
    "cn_resident_id": (cn_resident_id, ("身份证号码", "居民身份证")),
    "kr_rrn": (kr_rrn, ("주민등록번호", "주민번호:")),
    "tr_tckn": (tr_tckn, ("T.C. kimlik no", "TC kimlik no:")),
    "ch_ahv": (ch_ahv, ("AHV-Nr.", "AVS")),
    "no_fnr": (no_fnr, ("fødselsnummer", "Fødselsnummer:")),
    "de_tax_id": (de_tax_id, ("Steuer-ID", "steuerliche Identifikationsnummer")),
    "fr_nir": (fr_nir, ("numéro de sécurité sociale", "NIR")),
    "es_nie": (es_nie, ("NIE", "número de extranjero (NIE)")),
    "nl_bsn": (nl_bsn, ("BSN", "burgerservicenummer")),
    "be_national_number": (be_national_number, ("rijksregisternummer", "numéro national")),
    "se_personnummer": (se_personnummer, ("personnummer", "Personnummer:")),
    "fi_hetu": (fi_hetu, ("henkilötunnus", "hetu")),
    "pt_nif": (pt_nif, ("NIF", "número de contribuinte")),
    "ro_cnp": (ro_cnp, ("CNP", "cod numeric personal")),
    "bg_egn": (bg_egn, ("ЕГН", "EGN")),
    "cz_birth_number": (cz_birth_number, ("rodné číslo", "RČ")),
    "ie_pps": (ie_pps, ("PPS number", "PPSN")),
    "at_ssn": (at_ssn, ("Sozialversicherungsnummer", "SV-Nummer")),
    "hr_oib": (hr_oib, ("OIB", "osobni identifikacijski broj")),
    "ee_isikukood": (_baltic, ("isikukood", "Isikukood:")),
    "lt_asmens_kodas": (_baltic, ("asmens kodas", "Asmens kodas:")),
    "za_id": (za_id, ("South African ID number", "ID number")),
    "il_id": (il_id, ("תעודת זהות", "teudat zehut")),
    "pl_nip": (pl_nip, ("NIP", "numer NIP")),
    "lv_personas_kods": (lv_personas_kods, ("personas kods", "Personas kods:")),
    "si_emso": (si_emso, ("EMŠO", "enotna matična številka")),
    "cl_rut": (cl_rut, ("RUT", "mi RUT es")),
    "ar_cuit": (ar_cuit, ("CUIT", "CUIL")),
    "jp_my_number": (jp_my_number, ("マイナンバー", "個人番号")),
    "nz_ird": (nz_ird, ("IRD number", "Inland Revenue number")),
    "au_abn": (au_abn, ("ABN", "Australian Business Number")),
    "ru_inn": (ru_inn, ("ИНН", "INN")),
    "is_kennitala": (is_kennitala, ("kennitala", "kt.")),
}
ID_MAKERS = {kind: maker for kind, (maker, _) in MAKERS_AND_CUES.items()}
ID_CUES = {kind: cues for kind, (_, cues) in MAKERS_AND_CUES.items()}
