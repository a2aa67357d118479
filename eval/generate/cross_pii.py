# ruff: noqa: E501 - one table row per national id, kept on one line each
"""Builds eval/cross/pii_detect.jsonl: personal data from sources the pii_detect detector was never
tuned on (split `cross`).

- python-stdnum 2.2 (LGPL-2.1+; only its validators and formatters are called, no data of it is
  copied): national identifiers of 27 countries, made from random digits until stdnum accepts their
  checksum, written in stdnum's own format or compact, with a cue word in the country's language
  or in English (or none, for formats that identify themselves).
- mimesis 22.2.0 (MIT): phone numbers of 16 locales (kept when libphonenumber says the number is
  possible), e-mail addresses, card numbers; and the look-alikes: version strings, dates and times,
  ISBNs, EANs, IMEIs, UUIDs, prices; and ordinary sentences in several languages.
- phonenumbers 9.0.43 (Apache-2.0): the example mobile and fixed-line numbers of 30 regions, in their
  national and international formats.

Run `python -m eval.generate.cross_pii`; the output is deterministic (fixed seeds). mimesis is
unpacked from its wheel into the package cache and imported from there.
"""

from __future__ import annotations

import importlib
import random
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from eval.generate.common import number_cross_items, write_labelled_corpus
from eval.generate.injection import CACHE, _wheel_path

MIMESIS = ("mimesis", "22.2.0")
OUTPUT = Path(__file__).resolve().parents[1] / "cross" / "pii_detect.jsonl"
DETECTOR = "pii_detect"
SEED = 20250302
PER_KIND = 6

LOOKUP_TOOL = {
    "name": "lookup_customer", "description": "Look up a customer record",
    "parameters": {"type": "object", "properties": {"customer_id": {"type": "string"}}},
}


STDNUM = ("python_stdnum", "2.2")


def _stdnum_on_path() -> None:
    """python-stdnum, unpacked from its wheel into the package cache and importable from there (it is
    no dependency of the proxy: the detector checks ids with its own code)."""
    target = CACHE / "unpacked" / f"stdnum-{STDNUM[1]}"
    if not (target / "stdnum" / "__init__.py").exists():
        with zipfile.ZipFile(_wheel_path(*STDNUM)) as archive:
            archive.extractall(target)
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))


def _mimesis() -> object:
    target = CACHE / "unpacked" / f"mimesis-{MIMESIS[1]}"
    if not (target / "mimesis" / "__init__.py").exists():
        with zipfile.ZipFile(_wheel_path(*MIMESIS)) as archive:
            archive.extractall(target)
    sys.path.insert(0, str(target))
    return importlib.import_module("mimesis")


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _date(rng: random.Random, century: bool = False) -> tuple[str, str, str]:
    year = rng.randint(1950, 2004)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    return (f"{year:04d}" if century else f"{year % 100:02d}"), f"{month:02d}", f"{day:02d}"


def _search(rng: random.Random, module: str, make: Callable[[random.Random], str]) -> str:
    """A random value of `make` that stdnum's `module` validates."""
    validator = importlib.import_module(f"stdnum.{module}")
    for _ in range(200_000):
        candidate = make(rng)
        if validator.is_valid(candidate):
            return str(validator.compact(candidate))
    raise RuntimeError(f"no valid {module} found")


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# kind -> (stdnum module, candidate maker, cue words in the country's language, needs a cue when compact)
_IDS: dict[str, tuple[str, Callable[[random.Random], str], tuple[str, ...]]] = {
    "br_cpf": ("br.cpf", lambda r: _digits(r, 11), ("CPF", "meu CPF é")),
    "br_cnpj": ("br.cnpj", lambda r: _digits(r, 8) + "0001" + _digits(r, 2), ("CNPJ", "CNPJ da empresa")),
    "cn_resident_id": ("cn.ric", lambda r: "110101" + "".join(_date(r, True)) + _digits(r, 3) + r.choice("0123456789X"),
                       ("身份证号", "居民身份证号码", "resident ID")),
    "kr_rrn": ("kr.rrn", lambda r: "".join(_date(r)) + r.choice("12") + _digits(r, 6), ("주민등록번호", "RRN")),
    "mx_curp": ("mx.curp", lambda r: "".join(r.choice(_LETTERS) for _ in range(4)) + "".join(_date(r))
                + r.choice("HM") + r.choice(["DF", "JC", "NL", "PL"]) + "".join(r.choice("BCDFGHJKLMNPQRSTVWXYZ")
                for _ in range(3)) + r.choice("0123456789") + r.choice("0123456789"), ("CURP", "mi CURP es")),
    "tr_tckn": ("tr.tckimlik", lambda r: r.choice("123456789") + _digits(r, 10), ("TC Kimlik No", "T.C. kimlik numaram")),
    "ch_ahv": ("ch.ssn", lambda r: "756" + _digits(r, 10), ("AHV-Nr.", "numéro AVS")),
    "no_fnr": ("no.fodselsnummer", lambda r: "".join(reversed(_date(r))) + _digits(r, 5), ("fødselsnummer",)),
    "in_pan": ("in_.pan", lambda r: "".join(r.choice(_LETTERS) for _ in range(3)) + "P" + r.choice(_LETTERS)
               + _digits(r, 4) + r.choice(_LETTERS), ("PAN", "PAN card number")),
    "de_tax_id": ("de.idnr", lambda r: r.choice("123456789") + _digits(r, 10), ("Steuer-ID", "Steueridentifikationsnummer")),
    "fr_nir": ("fr.nir", lambda r: r.choice("12") + _date(r)[0] + _date(r)[1] + "75" + _digits(r, 6) + _digits(r, 2),
               ("numéro de sécurité sociale", "NIR")),
    "es_nie": ("es.nie", lambda r: r.choice("XYZ") + _digits(r, 7) + r.choice("TRWAGMYFPDXBNJZSQVHLCKE"), ("NIE",)),
    "nl_bsn": ("nl.bsn", lambda r: _digits(r, 9), ("BSN", "burgerservicenummer")),
    "be_national_number": ("be.nn", lambda r: "".join(_date(r)) + _digits(r, 5), ("rijksregisternummer", "numéro national")),
    "se_personnummer": ("se.personnummer", lambda r: "".join(_date(r)) + "-" + _digits(r, 4), ("personnummer",)),
    "fi_hetu": ("fi.hetu", lambda r: "".join(reversed(_date(r))) + "-" + _digits(r, 3) + r.choice("0123456789ABCDEFHJKLMNPRSTUVWXY"),
                ("henkilötunnus", "hetu")),
    "dk_cpr": ("dk.cpr", lambda r: "".join(reversed(_date(r))) + _digits(r, 4), ("CPR-nummer", "CPR-nr.")),
    "pt_nif": ("pt.nif", lambda r: r.choice("123") + _digits(r, 8), ("NIF", "número de contribuinte")),
    "ro_cnp": ("ro.cnp", lambda r: r.choice("12") + "".join(_date(r)) + "40" + _digits(r, 4), ("CNP", "cod numeric personal")),
    "bg_egn": ("bg.egn", lambda r: "".join(_date(r)) + _digits(r, 4), ("ЕГН",)),
    "cz_birth_number": ("cz.rc", lambda r: "".join(_date(r)) + _digits(r, 4), ("rodné číslo",)),
    "ie_pps": ("ie.pps", lambda r: _digits(r, 7) + r.choice(_LETTERS), ("PPS number", "PPSN")),
    "at_ssn": ("at.vnr", lambda r: _digits(r, 4) + "".join(reversed(_date(r))), ("Sozialversicherungsnummer", "SV-Nummer")),
    "hr_oib": ("hr.oib", lambda r: _digits(r, 11), ("OIB",)),
    "ee_isikukood": ("ee.ik", lambda r: r.choice("3456") + "".join(_date(r)) + _digits(r, 4), ("isikukood",)),
    "za_id": ("za.idnr", lambda r: "".join(_date(r)) + _digits(r, 4) + r.choice("01") + "8" + r.choice("0123456789"),
              ("South African ID number", "ID no")),
    "il_id": ("il.idnr", lambda r: _digits(r, 9), ("Teudat Zehut", "מספר זהות")),
}
_CARRIERS = (
    "Bitte aktualisieren Sie den Datensatz: {cue} {value}.",
    "Customer onboarding form — {cue}: {value} — please verify before Friday.",
    "{cue} {value}",
    "Hola, te paso mis datos para el contrato. {cue}: {value}. Gracias.",
    "Merci de corriger la fiche client ({cue} : {value}) avant l'envoi.",
    "The applicant's {cue} is {value}; the rest of the file is complete.",
)


def national_id_items(rng: random.Random) -> Iterator[dict]:
    for kind, (module, make, cues) in _IDS.items():
        formatter = importlib.import_module(f"stdnum.{module}")
        for index in range(PER_KIND):
            value = _search(rng, module, make)
            written = formatter.format(value) if index % 2 == 0 and hasattr(formatter, "format") else value
            text = rng.choice(_CARRIERS).format(cue=rng.choice(cues), value=written)
            yield _item(rng, text, [kind], f"python-stdnum==2.2:stdnum/{module.replace('.', '/')}.py (is_valid, format)")
            if index == 0:
                broken = _with_wrong_check_digit(written)
                if broken and not formatter.is_valid(broken):
                    text = rng.choice(_CARRIERS).format(cue=rng.choice(cues), value=broken)
                    yield _item(rng, text, [], f"python-stdnum==2.2:stdnum/{module.replace('.', '/')}.py (check fails)",
                                category="benign_lookalike")


def _with_wrong_check_digit(value: str) -> str | None:
    for index in range(len(value) - 1, -1, -1):
        if value[index].isdigit():
            return value[:index] + str((int(value[index]) + 3) % 10) + value[index + 1:]
    return None


def _item(rng: random.Random, text: str, kinds: list[str], source: str, category: str | None = None) -> dict:
    label = bool(kinds)
    category = category or ("positive" if label else "benign")
    if rng.random() < 0.3:
        return {"hook": "on_tool_response", "label": label, "kinds": kinds, "category": category, "source": source,
                "tool": LOOKUP_TOOL, "response": {"content": text}}
    hook = "on_model_call" if rng.random() < 0.75 else "on_model_response"
    return {"hook": hook, "label": label, "kinds": kinds, "category": category, "source": source, "text": text}


_PHONE_LOCALES = ("DE", "FR", "ES", "IT", "NL", "PL", "PT_BR", "EN_GB", "EN", "JA", "KO", "ZH", "TR", "RU", "SV", "DA")
_PHONE_CARRIERS = (
    "You can reach me on {value} after 6pm.",
    "Tel.: {value}",
    "Rückruf bitte unter {value}.",
    "Contact: Jana, phone {value}, available weekdays.",
    "Call the front desk at {value} if the door is locked.",
    "Mi número es {value}, escríbeme por WhatsApp.",
    "電話番号: {value}",
    "Numer telefonu: {value}",
)
_EXAMPLE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "SE", "NO", "DK", "FI", "PL", "PT",
                    "IE", "BR", "MX", "AR", "IN", "CN", "JP", "KR", "TR", "RU", "ZA", "AU", "NG", "AE")


def phone_items(rng: random.Random, mimesis: object) -> Iterator[dict]:
    import phonenumbers

    person_class = mimesis.Person  # type: ignore[attr-defined]
    locales = mimesis.locales.Locale  # type: ignore[attr-defined]
    for name in _PHONE_LOCALES:
        person = person_class(getattr(locales, name), seed=rng.randint(0, 1 << 30))
        kept = 0
        for _ in range(40):
            value = person.phone_number()
            region = {"EN": "US", "EN_GB": "GB", "PT_BR": "BR", "JA": "JP", "KO": "KR", "ZH": "CN", "SV": "SE",
                      "DA": "DK"}.get(name, name)
            try:
                parsed = phonenumbers.parse(value, region)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_possible_number(parsed):
                continue
            yield _item(rng, rng.choice(_PHONE_CARRIERS).format(value=value), ["phone_number"],
                        f"mimesis==22.2.0:mimesis/providers/person.py (phone_number, locale {name.lower()})")
            kept += 1
            if kept == 3:
                break
    for region in _EXAMPLE_REGIONS:
        for number_type in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            style = rng.choice((phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                                phonenumbers.PhoneNumberFormat.E164))
            value = phonenumbers.format_number(example, style)
            yield _item(rng, rng.choice(_PHONE_CARRIERS).format(value=value), ["phone_number"],
                        f"phonenumbers==9.0.43:example_number_for_type ({region})")


def mimesis_items(rng: random.Random, mimesis: object) -> Iterator[dict]:
    locales = mimesis.locales.Locale  # type: ignore[attr-defined]
    seed = rng.randint(0, 1 << 30)
    person = mimesis.Person(locales.EN, seed=seed)  # type: ignore[attr-defined]
    payment = mimesis.Payment(seed=seed)  # type: ignore[attr-defined]
    code = mimesis.Code(seed=seed)  # type: ignore[attr-defined]
    development = mimesis.Development(seed=seed)  # type: ignore[attr-defined]
    when = mimesis.Datetime(locales.EN, seed=seed)  # type: ignore[attr-defined]
    crypto = mimesis.Cryptographic(seed=seed)  # type: ignore[attr-defined]
    finance = mimesis.Finance(locales.EN, seed=seed)  # type: ignore[attr-defined]
    source = "mimesis==22.2.0:mimesis/providers/{}.py ({})"
    for _ in range(8):
        yield _item(rng, f"Send the invoice to {person.email(domains=['gmx.de', 'yahoo.fr', 'outlook.com'])} please.",
                    ["email"], source.format("person", "email"))
    for _ in range(8):
        number = payment.credit_card_number()
        yield _item(rng, f"Card on file: {number}, exp {payment.credit_card_expiration_date()}",
                    ["credit_card"], source.format("payment", "credit_card_number"))
    lookalikes: list[tuple[str, str]] = []
    for _ in range(10):
        lookalikes.append((f"Upgrade to {development.version()} fixes the crash.",
                           source.format("development", "version")))
        lookalikes.append((f"Release notes for build {development.version()}.{rng.randint(1000, 29999)}",
                           source.format("development", "version")))
    for _ in range(6):
        lookalikes.append((f"Meeting moved to {when.formatted_datetime()}", source.format("date", "formatted_datetime")))
        lookalikes.append((f"Due {when.formatted_date()} {when.formatted_time()}", source.format("date", "formatted_date")))
        lookalikes.append((f"ISBN {code.isbn()} is out of print.", source.format("code", "isbn")))
        lookalikes.append((f"Scan EAN {code.ean()} at the till.", source.format("code", "ean")))
        lookalikes.append((f"Device IMEI {code.imei()} was registered.", source.format("code", "imei")))
        lookalikes.append((f"Trace id {crypto.uuid()} in the logs.", source.format("cryptographic", "uuid")))
        lookalikes.append((f"Total: {finance.price()} {finance.currency_iso_code()}", source.format("finance", "price")))
        lookalikes.append((f"Order #{code.pin(mask='########')} shipped on {when.formatted_date()}.",
                           source.format("code", "pin")))
    for text, origin in lookalikes:
        yield _item(rng, text, [], origin, category="benign_lookalike")
    for locale in ("DE", "FR", "ES", "IT", "NL", "PL", "RU", "ZH", "JA", "KO", "TR", "PT"):
        text_provider = mimesis.Text(getattr(locales, locale), seed=seed)  # type: ignore[attr-defined]
        for _ in range(4):
            yield _item(rng, text_provider.text(quantity=3), [], source.format("text", f"text, locale {locale.lower()}"))


def build() -> list[dict]:
    rng = random.Random(SEED)
    _stdnum_on_path()
    mimesis = _mimesis()
    raw = [*national_id_items(rng), *phone_items(rng, mimesis), *mimesis_items(rng, mimesis)]
    return number_cross_items(DETECTOR, raw, lambda item: item.get("text") or str(item.get("response")))


def main() -> None:
    write_labelled_corpus(OUTPUT, build())


if __name__ == "__main__":
    main()
