"""Check digits and structure rules of national identifiers, written from the issuers' public
specifications (weights, moduli, check alphabets, dates of birth inside the number).

Each validator takes the number as written (separators allowed) and returns whether it is
well-formed and its check digit (or letter) is right. They are the whole of what `national_ids`
asks of a candidate besides its pattern and cue words, so they stay strict: a date of birth must
be a real date, a number of identical digits is no number.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

__all__ = ["iso7064_mod11_10", "luhn"]

_SEPARATORS = str.maketrans("", "", " .-/")


def _compact(value: str) -> str:
    return value.translate(_SEPARATORS).upper()


def _digits_only(value: str, length: int | Sequence[int]) -> str | None:
    compact = _compact(value)
    lengths = (length,) if isinstance(length, int) else tuple(length)
    if len(compact) not in lengths or not compact.isdigit() or len(set(compact)) == 1:
        return None
    return compact


def _weighted(digits: str, weights: Sequence[int]) -> int:
    return sum(int(digit) * weight for digit, weight in zip(digits, weights, strict=False))


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def luhn(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def iso7064_mod11_10(digits: str) -> bool:
    """ISO 7064 MOD 11,10 (hybrid system) over digits whose last one is the check digit."""
    product = 10
    for char in digits[:-1]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(digits[-1])


def _mod11_check(digits: str, weights: Sequence[int]) -> int | None:
    """`11 - weighted sum mod 11` as a digit (11 -> 0), None when it would be 10."""
    check = (11 - _weighted(digits, weights) % 11) % 11
    return None if check == 10 else check


# Brazil


def br_cpf(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    first = _weighted(digits[:9], range(10, 1, -1)) * 10 % 11 % 10
    second = _weighted(digits[:10], range(11, 1, -1)) * 10 % 11 % 10
    return digits[9:] == f"{first}{second}"


def br_cnpj(value: str) -> bool:
    digits = _digits_only(value, 14)
    if digits is None:
        return False
    weights = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
    for position in (12, 13):
        remainder = _weighted(digits[:position], weights[13 - position :]) % 11
        if int(digits[position]) != (0 if remainder < 2 else 11 - remainder):
            return False
    return True


# East Asia

_CN_WEIGHTS = tuple(2 ** (17 - index) % 11 for index in range(17))


def cn_resident_id(value: str) -> bool:
    compact = _compact(value)
    if len(compact) != 18 or not compact[:17].isdigit() or compact[17] not in "0123456789X":
        return False
    if not 11 <= int(compact[:2]) <= 91:
        return False
    year, month, day = int(compact[6:10]), int(compact[10:12]), int(compact[12:14])
    if not 1900 <= year <= 2100 or not _is_date(year, month, day):
        return False
    check = (12 - _weighted(compact[:17], _CN_WEIGHTS) % 11) % 11
    return compact[17] == ("X" if check == 10 else str(check))


def kr_rrn(value: str) -> bool:
    digits = _digits_only(value, 13)
    if digits is None:
        return False
    century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000, "8": 2000,
               "9": 1800, "0": 1800}[digits[6]]
    if not _is_date(century + int(digits[:2]), int(digits[2:4]), int(digits[4:6])):
        return False
    check = (11 - _weighted(digits[:12], (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)) % 11) % 10
    return check == int(digits[12])


def jp_my_number(value: str) -> bool:
    digits = _digits_only(value, 12)
    if digits is None:
        return False
    # Weights from the right of the first 11 digits: n + 1 for n = 1..6, n - 5 for n = 7..11.
    total = sum(int(digit) * (n + 1 if n <= 6 else n - 5) for n, digit in enumerate(reversed(digits[:11]), 1))
    remainder = total % 11
    return int(digits[11]) == (0 if remainder <= 1 else 11 - remainder)


_TW_LETTERS = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36), strict=True))


def tw_national_id(value: str) -> bool:
    compact = _compact(value)
    if len(compact) != 10 or compact[0] not in _TW_LETTERS or not compact[1:].isdigit() or compact[1] not in "1289":
        return False
    letter = _TW_LETTERS[compact[0]]
    total = letter // 10 + letter % 10 * 9 + _weighted(compact[1:9], range(8, 0, -1)) + int(compact[9])
    return total % 10 == 0


def th_id(value: str) -> bool:
    digits = _digits_only(value, 13)
    if digits is None or digits[0] in "09":
        return False
    return (11 - _weighted(digits[:12], range(13, 1, -1)) % 11) % 10 == int(digits[12])


# Latin America

_CURP_ALPHABET = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"


def mx_curp(value: str) -> bool:
    compact = _compact(value)
    if len(compact) != 18 or not compact[4:10].isdigit() or compact[10] not in "HMX":
        return False
    if not _is_date(2000 + int(compact[4:6]), int(compact[6:8]), int(compact[8:10])) and not _is_date(
        1900 + int(compact[4:6]), int(compact[6:8]), int(compact[8:10])
    ):
        return False
    try:
        total = sum(_CURP_ALPHABET.index(char) * (18 - index) for index, char in enumerate(compact[:17]))
    except ValueError:
        return False
    return compact[17] == str((10 - total % 10) % 10)


def mx_rfc(value: str) -> bool:
    # The tax administration has issued numbers whose last (check) character does not follow
    # the published algorithm, so only the structure and the date are checked; a cue is required.
    compact = _compact(value)
    if len(compact) not in (12, 13):
        return False
    letters = len(compact) - 9
    if not compact[letters : letters + 6].isdigit():
        return False
    year, month, day = int(compact[letters : letters + 2]), int(compact[letters + 2 : letters + 4]), int(
        compact[letters + 4 : letters + 6]
    )
    return _is_date(2000 + year, month, day) or _is_date(1900 + year, month, day)


def ar_cuit(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None or digits[:2] not in ("20", "23", "24", "25", "26", "27", "30", "33", "34"):
        return False
    check = _mod11_check(digits[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    return check is not None and check == int(digits[10])


def cl_rut(value: str) -> bool:
    compact = _compact(value)
    body, check = compact[:-1], compact[-1:]
    if not 7 <= len(body) <= 8 or not body.isdigit() or check not in "0123456789K":
        return False
    total = sum(int(digit) * (2 + index % 6) for index, digit in enumerate(reversed(body)))
    expected = 11 - total % 11
    return check == {11: "0", 10: "K"}.get(expected, str(expected))


def co_nit(value: str) -> bool:
    digits = _digits_only(value, (9, 10))
    if digits is None:
        return False
    weights = (3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71)
    total = sum(int(digit) * weight for digit, weight in zip(reversed(digits[:-1]), weights, strict=False))
    remainder = total % 11
    return int(digits[-1]) == (remainder if remainder < 2 else 11 - remainder)


def ec_cedula(value: str) -> bool:
    digits = _digits_only(value, 10)
    if digits is None or not (1 <= int(digits[:2]) <= 24 or digits[:2] == "30") or int(digits[2]) > 5:
        return False
    total = 0
    for index, char in enumerate(digits[:9]):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10 == int(digits[9])


# Turkey, Switzerland, Israel, South Africa


def tr_tckn(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None or digits[0] == "0":
        return False
    numbers = [int(digit) for digit in digits]
    tenth = (sum(numbers[0:9:2]) * 7 - sum(numbers[1:8:2])) % 10
    return numbers[9] == tenth and numbers[10] == sum(numbers[:10]) % 10


def _ean13(digits: str) -> bool:
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def ch_ahv(value: str) -> bool:
    digits = _digits_only(value, 13)
    return digits is not None and digits.startswith("756") and _ean13(digits)


def il_id(value: str) -> bool:
    compact = _compact(value)
    if not 5 <= len(compact) <= 9 or not compact.isdigit() or len(set(compact)) == 1:
        return False
    return luhn(compact.zfill(9))


def za_id(value: str) -> bool:
    digits = _digits_only(value, 13)
    if digits is None or digits[10] not in "012":
        return False
    month, day = int(digits[2:4]), int(digits[4:6])
    if not (_is_date(1900 + int(digits[:2]), month, day) or _is_date(2000 + int(digits[:2]), month, day)):
        return False
    return luhn(digits)


# Nordic countries


def no_fnr(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    day, month = int(digits[:2]), int(digits[2:4])
    day -= 40 if day > 40 else 0  # D-numbers
    month -= 40 if month > 40 else 0  # H-numbers
    month -= 80 if month > 80 else 0  # synthetic test numbers
    if not (_is_date(1900 + int(digits[4:6]), month, day) or _is_date(2000 + int(digits[4:6]), month, day)):
        return False
    first = _mod11_check(digits[:9], (3, 7, 6, 1, 8, 9, 4, 5, 2))
    second = _mod11_check(digits[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    return first == int(digits[9]) and second == int(digits[10])


def se_personnummer(value: str) -> bool:
    compact = _compact(value.replace("+", "-"))
    if len(compact) == 12:
        century, compact = int(compact[:2]) * 100, compact[2:]
    else:
        century = 0
    if len(compact) != 10 or not compact.isdigit() or len(set(compact)) == 1:
        return False
    month, day = int(compact[2:4]), int(compact[4:6])
    day -= 60 if day > 60 else 0  # coordination numbers
    years = [century + int(compact[:2])] if century else [1900 + int(compact[:2]), 2000 + int(compact[:2])]
    if not any(_is_date(year, month, day) for year in years):
        return False
    return luhn(compact)


_HETU_CHECKS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_HETU_CENTURIES = {"+": 1800, "-": 1900, "U": 1900, "V": 1900, "W": 1900, "X": 1900, "Y": 1900,
                   "A": 2000, "B": 2000, "C": 2000, "D": 2000, "E": 2000, "F": 2000}


def fi_hetu(value: str) -> bool:
    value = value.strip().upper()
    if len(value) != 11 or not value[:6].isdigit() or not value[7:10].isdigit():
        return False
    century = _HETU_CENTURIES.get(value[6])
    if century is None or not _is_date(century + int(value[4:6]), int(value[2:4]), int(value[:2])):
        return False
    if int(value[7:10]) < 2:
        return False
    return value[10] == _HETU_CHECKS[int(value[:6] + value[7:10]) % 31]


def dk_cpr(value: str) -> bool:
    # Since 2007 new CPR numbers need not pass the old modulus-11 test: the date is what is checked.
    digits = _digits_only(value, 10)
    if digits is None:
        return False
    day, month, year = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    return _is_date(1900 + year, month, day) or _is_date(2000 + year, month, day)


def is_kennitala(value: str) -> bool:
    digits = _digits_only(value, 10)
    if digits is None or digits[9] not in "089":
        return False
    day = int(digits[:2]) - (40 if int(digits[:2]) > 40 else 0)  # companies add 40 to the day
    if not _is_date((1800 if digits[9] == "8" else 1900 if digits[9] == "9" else 2000) + int(digits[4:6]),
                    int(digits[2:4]), day):
        return False
    check = _mod11_check(digits[:8], (3, 2, 7, 6, 5, 4, 3, 2))
    return check == int(digits[8])


# Western and southern Europe


def de_tax_id(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(digit) for digit in set(digits[:10])), reverse=True)
    # One digit twice or three times (three only next to each other is not allowed), the rest once.
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] != 1):
        return False
    return iso7064_mod11_10(digits)


def fr_nir(value: str) -> bool:
    compact = _compact(value)
    if len(compact) != 15 or compact[0] not in "12378":
        return False
    number = compact[:13].replace("2A", "19").replace("2B", "18")
    if not number.isdigit() or not compact[13:].isdigit():
        return False
    month = int(compact[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(number) % 97 == int(compact[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_nie(value: str) -> bool:
    compact = _compact(value)
    if len(compact) != 9 or compact[0] not in "XYZ" or not compact[1:8].isdigit():
        return False
    return compact[8] == _DNI_LETTERS[int(str("XYZ".index(compact[0])) + compact[1:8]) % 23]


def nl_bsn(value: str) -> bool:
    digits = _digits_only(value, (8, 9))
    if digits is None:
        return False
    digits = digits.zfill(9)
    return (_weighted(digits[:8], range(9, 1, -1)) - int(digits[8])) % 11 == 0 and int(digits) > 0


def be_national_number(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    check = int(digits[9:])
    return 97 - int(digits[:9]) % 97 == check or 97 - int("2" + digits[:9]) % 97 == check


def pt_nif(value: str) -> bool:
    digits = _digits_only(value, 9)
    if digits is None:
        return False
    check = 11 - _weighted(digits[:8], range(9, 1, -1)) % 11
    return int(digits[8]) == (0 if check >= 10 else check)


def ie_pps(value: str) -> bool:
    compact = _compact(value)
    if len(compact) not in (8, 9) or not compact[:7].isdigit():
        return False
    total = _weighted(compact[:7], range(8, 1, -1))
    if len(compact) == 9:
        if compact[8] not in "ABHWTXZ":
            return False
        total += (0 if compact[8] == "W" else ord(compact[8]) - ord("A") + 1) * 9
    return compact[7] == "WABCDEFGHIJKLMNOPQRSTUV"[total % 23]


def at_ssn(value: str) -> bool:
    digits = _digits_only(value, 10)
    if digits is None or digits[0] == "0":
        return False
    check = _weighted(digits, (3, 7, 9, 0, 5, 8, 4, 2, 1, 6)) % 11
    return check != 10 and check == int(digits[3])


def gr_amka(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    day, month, year = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    return (_is_date(1900 + year, month, day) or _is_date(2000 + year, month, day)) and luhn(digits)


# Central and eastern Europe


def pl_nip(value: str) -> bool:
    digits = _digits_only(value, 10)
    if digits is None:
        return False
    check = _weighted(digits[:9], (6, 5, 7, 2, 3, 4, 5, 6, 7)) % 11
    return check != 10 and check == int(digits[9])


def cz_birth_number(value: str) -> bool:
    digits = _digits_only(value, (9, 10))
    if digits is None:
        return False
    year, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    month -= 50 if month > 50 else 0
    month -= 20 if month > 20 else 0
    if len(digits) == 9:
        return year < 54 and _is_date(1900 + year, month, day)
    year += 1900 if year >= 54 else 2000
    if not _is_date(year, month, day):
        return False
    return int(digits) % 11 == 0 or (int(digits[:9]) % 11 == 10 and digits[9] == "0")


def ro_cnp(value: str) -> bool:
    digits = _digits_only(value, 13)
    if digits is None or digits[0] == "0":
        return False
    century = {"1": 1900, "2": 1900, "3": 1800, "4": 1800, "5": 2000, "6": 2000}.get(digits[0])
    month, day = int(digits[3:5]), int(digits[5:7])
    if century is None:  # residents (7, 8) and foreigners (9): no century in the number
        if not (_is_date(1900 + int(digits[1:3]), month, day) or _is_date(2000 + int(digits[1:3]), month, day)):
            return False
    elif not _is_date(century + int(digits[1:3]), month, day):
        return False
    county = int(digits[7:9])
    if not (1 <= county <= 52 or county == 70 or 80 <= county <= 83):
        return False
    check = _weighted(digits[:12], (2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9)) % 11
    return int(digits[12]) == (1 if check == 10 else check)


def bg_egn(value: str) -> bool:
    digits = _digits_only(value, 10)
    if digits is None:
        return False
    year, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    if month > 40:
        year, month = year + 2000, month - 40
    elif month > 20:
        year, month = year + 1800, month - 20
    else:
        year += 1900
    if not _is_date(year, month, day):
        return False
    check = _weighted(digits[:9], (2, 4, 8, 5, 10, 9, 7, 3, 6)) % 11 % 10
    return check == int(digits[9])


def hr_oib(value: str) -> bool:
    digits = _digits_only(value, 11)
    return digits is not None and iso7064_mod11_10(digits)


def _baltic_personal_code(digits: str) -> bool:
    """Estonian isikukood and Lithuanian asmens kodas: GYYMMDDSSSC, two rounds of weights."""
    century = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}.get(digits[0])
    if century is None or not _is_date(century + int(digits[1:3]), int(digits[3:5]), int(digits[5:7])):
        return False
    check = _weighted(digits[:10], (1, 2, 3, 4, 5, 6, 7, 8, 9, 1)) % 11
    if check == 10:
        check = _weighted(digits[:10], (3, 4, 5, 6, 7, 8, 9, 1, 2, 3)) % 11 % 10
    return check == int(digits[10])


def ee_isikukood(value: str) -> bool:
    digits = _digits_only(value, 11)
    return digits is not None and _baltic_personal_code(digits)


def lt_asmens_kodas(value: str) -> bool:
    digits = _digits_only(value, 11)
    return digits is not None and _baltic_personal_code(digits)


def lv_personas_kods(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    if digits.startswith("32"):  # codes issued since 2017 carry no date, only the check digit
        pass
    elif digits[6] not in "012" or not _is_date(
        1800 + 100 * int(digits[6]) + int(digits[4:6]), int(digits[2:4]), int(digits[:2])
    ):
        return False
    check = (1101 - _weighted(digits[:10], (1, 6, 3, 7, 9, 10, 5, 8, 4, 2))) % 11
    return check != 10 and check == int(digits[10])


def si_emso(value: str) -> bool:
    """Slovenia's EMŠO, the same number as the JMBG of the other former Yugoslav republics."""
    digits = _digits_only(value, 13)
    if digits is None:
        return False
    year = int(digits[4:7])
    if not _is_date(year + (1000 if year >= 800 else 2000), int(digits[2:4]), int(digits[:2])):
        return False
    check = _mod11_check(digits[:12], (7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    return check is not None and check == int(digits[12])


def hu_taj(value: str) -> bool:
    digits = _digits_only(value, 9)
    if digits is None:
        return False
    return _weighted(digits[:8], (3, 7, 3, 7, 3, 7, 3, 7)) % 10 == int(digits[8])


def ru_inn(value: str) -> bool:
    digits = _digits_only(value, (10, 12))
    if digits is None:
        return False
    weights = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
    if len(digits) == 10:
        return _weighted(digits[:9], weights[2:]) % 11 % 10 == int(digits[9])
    return (
        _weighted(digits[:10], weights[1:]) % 11 % 10 == int(digits[10])
        and _weighted(digits[:11], weights) % 11 % 10 == int(digits[11])
    )


# Asia-Pacific and the Americas (other)


def in_pan(value: str) -> bool:
    # No check character: the structure (five letters, four digits, a letter; the fourth letter
    # the holder's type) is the pattern's; a run of zeros is no number.
    return value[5:9] != "0000"


def nz_ird(value: str) -> bool:
    digits = _digits_only(value, (8, 9))
    if digits is None or not 10_000_000 < int(digits) < 150_000_000:
        return False
    body, check = digits[:-1].zfill(8), int(digits[-1])
    for weights in ((3, 2, 7, 6, 5, 4, 3, 2), (7, 4, 3, 2, 5, 2, 7, 6)):
        remainder = _weighted(body, weights) % 11
        expected = 0 if remainder == 0 else 11 - remainder
        if expected != 10:
            return expected == check
    return False


def au_medicare(value: str) -> bool:
    digits = _digits_only(value, (10, 11))
    if digits is None or digits[0] not in "23456":
        return False
    return _weighted(digits[:8], (1, 3, 7, 9, 1, 3, 7, 9)) % 10 == int(digits[8])


def au_abn(value: str) -> bool:
    digits = _digits_only(value, 11)
    if digits is None:
        return False
    adjusted = str(int(digits[0]) - 1) + digits[1:]
    return _weighted(adjusted, (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)) % 89 == 0

