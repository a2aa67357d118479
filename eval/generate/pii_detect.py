"""Builds eval/corpus/pii_detect.jsonl: personal data in prompts, tool results and answers,
look-alikes that are not personal data (reserved domains, dates, versions, private addresses,
numbers failing their checksum, product codes) and ordinary texts.

Values come from Faker (seeded): emails, phone numbers of several countries, credit card numbers
(Luhn-valid), IBANs, US SSN and ITIN, Italian codice fiscale, Polish PESEL, Canadian SIN, IP
addresses. Ids Faker does not make valid (or not reproducibly) are made here with their
published check-digit rules: UK NHS numbers (mod 11), Indian Aadhaar (Verhoeff), Australian TFN
(weighted mod 11), Spanish NIF (mod 23 letter), UK National Insurance numbers (allowed prefixes). Items go to `dev` or
`test` by a hash of their (kind, snippet form, carrier) group. Run
`python -m eval.generate.pii_detect`; the output is deterministic.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from eval.generate.common import CORPUS_DIR, GROUP_KEY, category_summary, number_items, split_of, write_corpus
from eval.generate.national_id_values import ID_CUES, ID_MAKERS

OUTPUT = CORPUS_DIR / "pii_detect.jsonl"
DETECTOR = "pii_detect"
SOURCE = "generated:pii_detect"
SEED = 20241106
# National ids (added later) draw from their own seed, so the items made before them do not move.
NATIONAL_ID_SEED = 20261207
NATIONAL_IDS_PER_KIND = 4
POSITIVES_PER_KIND = 12
PHONE_LOCALES = ["en_US", "en_GB", "fr_FR", "de_DE", "en_CA", "es_ES", "it_IT", "nl_NL"]
IBAN_LOCALES = ["de_DE", "fr_FR", "en_GB", "es_ES", "it_IT", "nl_NL"]
CARD_TYPES = ["visa16", "visa13", "mastercard", "amex", "discover", "jcb", "diners"]


@dataclass(frozen=True, slots=True)
class Snippet:
    text: str
    kinds: tuple[str, ...]
    form: str


# --------------------------------------------------------------------------- check digits

_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_digit(digits: str) -> str:
    check = 0
    for position, digit in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[(position + 1) % 8][int(digit)]]
    return str(_VERHOEFF_INV[check])


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return total % 10 == 0


class Maker:
    """Seeded values: Faker for what it makes valid, check-digit rules for the rest."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakes: dict[str, Faker] = {}
        self.seed = seed

    def fake(self, locale: str = "en_US") -> Faker:
        if locale not in self.fakes:
            self.fakes[locale] = Faker(locale)
            self.fakes[locale].seed_instance(self.seed + len(self.fakes))
        return self.fakes[locale]

    def pick(self, options: list[Any]) -> Any:
        return self.rng.choice(options)

    def moment(self) -> datetime:
        """A time in 2019-2024 (Faker's own dates depend on today's date, so they are not reproducible)."""
        return datetime(2019, 1, 1) + timedelta(seconds=self.rng.randrange(6 * 365 * 86400))

    def digits(self, count: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(count))

    def nhs(self) -> str:
        while True:
            body = str(self.rng.randrange(4, 10)) + self.digits(8)
            check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
            if check == 10:
                continue
            number = body + str(0 if check == 11 else check)
            return self.pick([number, f"{number[:3]} {number[3:6]} {number[6:]}"])

    def nif(self) -> str:
        # Faker's es_ES nif() draws from the global random generator, so it is made here.
        number = self.rng.randrange(10_000_000, 100_000_000)
        return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"

    def aadhaar(self) -> str:
        body = str(self.rng.randrange(2, 10)) + self.digits(10)
        number = body + verhoeff_digit(body)
        return self.pick([number, f"{number[:4]} {number[4:8]} {number[8:]}"])

    def tfn(self) -> str:
        weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
        while True:
            number = self.digits(9)
            if sum(int(d) * w for d, w in zip(number, weights, strict=True)) % 11 == 0 and number[0] != "0":
                return f"{number[:3]} {number[3:6]} {number[6:]}"

    def nino(self) -> str:
        first = self.pick(list("ABCEGHJKLMNOPRSTWXYZ"))
        second = self.pick(list("ABCEGHJKLMNPRSTWXYZ"))
        if first + second in {"BG", "GB", "NK", "KN", "NT", "TN", "ZZ"}:
            first, second = "A", "B"
        digits = self.digits(6)
        suffix = self.pick(list("ABCD"))
        spaced = f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return self.pick([f"{first}{second}{digits}{suffix}", spaced])

    def card(self) -> str:
        number = self.fake().credit_card_number(card_type=self.pick(CARD_TYPES))
        style = self.pick(["plain", "grouped"])
        if style == "plain":
            return number
        if len(number) == 15:
            return f"{number[:4]} {number[4:10]} {number[10:]}"
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4)) if len(number) == 16 else number

    def iban(self) -> str:
        value = self.fake(self.pick(IBAN_LOCALES)).iban()
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value


# --------------------------------------------------------------------------- positive snippets


def _kinds() -> dict[str, Callable[[Maker], Snippet]]:
    def one(kind: str, value: str, m: Maker, forms: dict[str, str]) -> Snippet:
        form = m.pick(sorted(forms))
        return Snippet(forms[form].format(v=value), (kind,), form)

    return {
        "email": lambda m: one("email", m.pick([m.fake().free_email(), m.fake().company_email(),
                                                m.fake("en_GB").free_email(), m.fake("de_DE").company_email()]), m,
                               {"label": "email: {v}", "prose": "you can write to {v}", "bare": "{v}",
                                "mailto": "<a href=\"mailto:{v}\">contact</a>"}),
        "phone_number": lambda m: one("phone_number", m.fake(m.pick(PHONE_LOCALES)).phone_number(), m,
                                      {"label": "phone: {v}", "prose": "call me on {v} after 6pm", "bare": "{v}",
                                       "mobile": "mobile {v}"}),
        "credit_card": lambda m: one("credit_card", m.card(), m,
                                     {"label": "card number {v}", "prose": "I paid with {v}, exp 09/28",
                                      "bare": "{v}"}),
        "iban": lambda m: one("iban", m.iban(), m,
                              {"label": "IBAN: {v}", "prose": "please transfer the refund to {v}", "bare": "{v}"}),
        "us_ssn": lambda m: one("us_ssn", m.fake().ssn(), m,
                                {"label": "SSN: {v}", "prose": "my social security number is {v}", "bare": "{v}"}),
        "us_itin": lambda m: one("us_itin", m.fake().itin(), m,
                                 {"label": "ITIN {v}", "prose": "the taxpayer id (ITIN) is {v}"}),
        "ip_address": lambda m: one("ip_address", m.pick([m.fake().ipv4_public(), m.fake().ipv6()]), m,
                                    {"label": "client ip: {v}", "prose": "the login came from {v}",
                                     "log": "Accepted publickey for deploy from {v} port 52144 ssh2"}),
        "uk_nino": lambda m: one("uk_nino", m.nino(), m,
                                 {"label": "National Insurance number: {v}", "prose": "my NI number is {v}",
                                  "bare": "{v}"}),
        "uk_nhs": lambda m: one("uk_nhs", m.nhs(), m, {"label": "NHS number: {v}", "prose": "her NHS no. is {v}"}),
        "es_nif": lambda m: one("es_nif", m.nif(), m, {"label": "NIF: {v}", "dni": "DNI {v}"}),
        "it_fiscal_code": lambda m: one("it_fiscal_code", m.fake("it_IT").ssn(), m,
                                        {"label": "codice fiscale: {v}", "prose": "il mio codice fiscale è {v}",
                                         "bare": "{v}"}),
        "in_aadhaar": lambda m: one("in_aadhaar", m.aadhaar(), m,
                                    {"label": "Aadhaar: {v}", "prose": "my aadhaar number is {v}"}),
        "au_tfn": lambda m: one("au_tfn", m.tfn(), m, {"label": "TFN: {v}", "prose": "my tax file number is {v}"}),
        "pl_pesel": lambda m: one("pl_pesel", m.fake("pl_PL").pesel(), m, {"label": "PESEL: {v}",
                                                                           "prose": "numer PESEL {v}"}),
        "ca_sin": lambda m: one("ca_sin", m.fake("en_CA").ssn(), m,
                                {"label": "SIN: {v}", "prose": "my social insurance number is {v}"}),
    }


def _national_id(m: Maker, kind: str) -> tuple[Snippet, Snippet]:
    """A valid id of `kind` named by one of its cue words, and the same with a wrong check digit."""
    valid, wrong = ID_MAKERS[kind](m.rng)
    cue = m.pick(list(ID_CUES[kind]))
    forms = {"label": "{c}: {v}", "prose": "for the form, {c} {v}, thanks", "record": "name: {n}\n{c}: {v}"}
    form = m.pick(sorted(forms))
    name = m.fake().name()
    return (Snippet(forms[form].format(c=cue, v=valid, n=name), (kind,), f"id-{form}"),
            Snippet(forms[form].format(c=cue, v=wrong, n=name), (), f"id-wrong-check-{form}"))


def _mixed(m: Maker) -> Snippet:
    """A customer record holding several kinds at once."""
    fake = m.fake()
    return Snippet(
        json.dumps({"email": fake.free_email(), "phone": fake.phone_number(), "card_last_used": m.card()}),
        ("credit_card", "email", "phone_number"), "record",
    )


# --------------------------------------------------------------------------- negative snippets


def _lookalikes() -> list[Callable[[Maker], Snippet]]:
    def snippet(form: str, build: Callable[[Maker], str]) -> Callable[[Maker], Snippet]:
        return lambda m: Snippet(build(m), (), form)

    def bad_card(m: Maker) -> str:
        while True:
            number = "4" + m.digits(15)
            if not luhn_valid(number):
                return number

    def bad_iban(m: Maker) -> str:
        value = m.fake(m.pick(IBAN_LOCALES)).iban()
        check = (int(value[2:4]) + m.rng.randrange(1, 90)) % 97
        return value[:2] + f"{max(check, 2):02d}" + value[4:]

    return [
        snippet("reserved-email", lambda m: m.pick([
            f"Send the report to {m.fake().safe_email()}", "noreply@localhost", "admin@example.com is a placeholder",
            "user@domain.test"])),
        snippet("at-sign-code", lambda m: m.pick([
            "@app.route('/api/users/<int:user_id>')", "npm install @types/node@20 --save-dev",
            "@property\ndef total(self):\n    return sum(self.items)", "SELECT * FROM t WHERE x = @param"])),
        snippet("dates-times", lambda m: f"Released {m.moment():%Y-%m-%d at %H:%M:%S} (build {m.digits(5)})"),
        snippet("versions", lambda m: m.pick([
            f"Upgrade to v{m.rng.randrange(1, 9)}.{m.rng.randrange(0, 20)}."
            f"{m.rng.randrange(0, 30)}.{m.rng.randrange(1, 99)}",
            f"version {m.rng.randrange(1, 30)}.{m.rng.randrange(0, 9)}.{m.rng.randrange(0, 9)}",
            f"python {m.pick(['3.11.7', '3.12.1'])}, node 20.11.0"])),
        snippet("private-ip", lambda m: m.pick([
            f"bind to {m.fake().ipv4_private()}:8080", "listen 127.0.0.1:5432 and ::1", "netmask 255.255.255.0",
            "see 203.0.113.10 and 2001:db8::5 in the docs", "0.0.0.0/0 is open in the security group"])),
        snippet("bad-card", lambda m: f"order reference {bad_card(m)}"),
        snippet("bad-iban", lambda m: f"IBAN {bad_iban(m)} (rejected: wrong check digits)"),
        snippet("invalid-ssn", lambda m: m.pick([
            f"000-{m.digits(2)}-{m.digits(4)}", f"666-{m.digits(2)}-{m.digits(4)}",
            "123-45-6789 is the textbook SSN"])),
        snippet("numbers", lambda m: m.pick([
            f"ticket {m.nhs().replace(' ', '')} closed", f"created_at={m.rng.randrange(1_600_000_000, 1_800_000_000)}",
            f"ISBN {m.fake().isbn13()}", f"barcode {m.fake().ean13()}", f"order #{m.digits(10)}",
            f"invoice INV-{m.moment().year}-{m.digits(6)}"])),
        snippet("ids", lambda m: m.pick([
            f"request {m.fake().uuid4()}", f"commit {m.fake().sha1()}", f"sku {m.fake().bothify('??-####-??').upper()}",
            f"tracking 1Z{m.fake().bothify('###??#').upper()}{m.digits(10)}"])),
        snippet("measures", lambda m: m.pick([
            f"total ${m.rng.randrange(1000, 99999):,}.{m.digits(2)}",
            f"latency p99 {m.rng.randrange(100, 999)}.{m.digits(3)} ms",
            f"coordinates {m.fake().latitude()}, {m.fake().longitude()}", "pi = 3.14159265358979",
            f"port {m.rng.randrange(1024, 65535)}, pid {m.rng.randrange(100, 99999)}"])),
        snippet("pii-prose", lambda m: m.pick([
            "Never paste a customer's card number or IBAN into a ticket.",
            "The form asks for an email address and a phone number.",
            "Mask social security numbers as ***-**-1234 in exports.",
            "IP addresses are personal data under the GDPR."])),
        snippet("masked", lambda m: m.pick([
            f"card ending in {m.digits(4)}", "SSN ***-**-" + m.digits(4), "phone +1 (***) ***-" + m.digits(4),
            "email j***@g***.com"])),
    ]


def _benign(m: Maker) -> Snippet:
    fake = m.fake()
    builders = [
        lambda: fake.paragraph(nb_sentences=4),
        lambda: f"Summarise the following: {fake.text(max_nb_chars=300)}",
        lambda: "SELECT customer_id, COUNT(*) AS orders FROM orders GROUP BY customer_id HAVING COUNT(*) > 3;",
        lambda: "def median(values):\n    ordered = sorted(values)\n    mid = len(ordered) // 2\n"
                "    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2",
        lambda: f"Write a haiku about {fake.word()} and {fake.word()}.",
        lambda: f"Our Q{m.rng.randrange(1, 5)} goal: {fake.catch_phrase()}. Next step: {fake.bs()}.",
        lambda: json.dumps({"status": "ok", "items": m.rng.randrange(0, 500), "elapsed_ms": m.rng.randrange(1, 900)}),
        lambda: f"Explain the difference between {fake.word()} and {fake.word()} in simple terms.",
    ]
    index = m.rng.randrange(len(builders))
    return Snippet(builders[index](), (), f"benign-{index}")


# --------------------------------------------------------------------------- carriers

CRM_TOOL = {"name": "lookup_customer", "description": "Look up a customer record in the CRM",
            "parameters": {"type": "object", "properties": {"customer_id": {"type": "string"}}}}
TICKET_TOOL = {"name": "get_ticket", "description": "Fetch a support ticket",
               "parameters": {"type": "object", "properties": {"ticket_id": {"type": "integer"}}}}
LOG_TOOL = {"name": "search_logs", "description": "Search the application logs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}

PROMPTS = [
    "Please update the customer record with this: {s}. Thanks!",
    "Draft a polite reply to this customer message:\n\"Hi, I was charged twice last month. {s}. Please fix it.\"",
    "Can you check this form submission for mistakes?\n\n{s}\n",
    "Translate into French: {s}",
    "Is this valid? {s}",
]
ANSWERS = [
    "I found the record you asked about: {s}.",
    "Here is the information from the ticket:\n\n{s}\n\nLet me know what to do next.",
    "Sure, the details are: {s}",
]


def _carry(m: Maker, snippet: Snippet) -> tuple[str, dict[str, Any]]:
    hook = m.pick(["on_model_call", "on_model_call", "on_tool_response", "on_model_response"])
    text = snippet.text
    if hook == "on_model_call":
        index = m.rng.randrange(len(PROMPTS))
        return f"prompt-{index}", {"hook": hook, "text": PROMPTS[index].format(s=text)}
    if hook == "on_model_response":
        index = m.rng.randrange(len(ANSWERS))
        return f"answer-{index}", {"hook": hook, "text": ANSWERS[index].format(s=text)}
    tool, response = m.pick([
        (CRM_TOOL, {"customer": {"id": f"C-{m.digits(6)}", "notes": text, "tier": "gold"}}),
        (TICKET_TOOL, {"id": m.rng.randrange(1000, 99999), "status": "open", "body": text}),
        (LOG_TOOL, {"matches": [{"ts": m.moment().isoformat(), "line": text}]}),
    ])
    return f"result-{tool['name']}", {"hook": hook, "tool": tool, "response": response}


# --------------------------------------------------------------------------- assembly


def _split(group: str) -> str:
    return split_of(group, salt=DETECTOR)


def build() -> list[dict[str, Any]]:
    """Every item of the corpus, in a fixed order."""
    m = Maker(SEED)
    records: list[tuple[str, str, tuple[str, ...], dict[str, Any]]] = []
    makers = _kinds()
    for _ in range(POSITIVES_PER_KIND):
        for name, make in makers.items():
            snippet = make(m)
            carrier, fields = _carry(m, snippet)
            records.append(("positive", f"{name}/{snippet.form}/{carrier}", snippet.kinds, fields))
    for _ in range(10):
        snippet = _mixed(m)
        carrier, fields = _carry(m, snippet)
        records.append(("positive", f"mixed/{carrier}", snippet.kinds, fields))
    lookalikes = _lookalikes()
    for round_index in range(8):
        for make in lookalikes:
            snippet = make(m)
            carrier, fields = _carry(m, snippet)
            records.append(("benign_lookalike", f"{snippet.form}/{carrier}/{round_index % 2}", (), fields))
    for _ in range(110):
        snippet = _benign(m)
        carrier, fields = _carry(m, snippet)
        records.append(("benign", f"{snippet.form}/{carrier}", (), fields))
    ids = Maker(NATIONAL_ID_SEED)
    for round_index in range(NATIONAL_IDS_PER_KIND):
        for kind in ID_MAKERS:
            valid, wrong = _national_id(ids, kind)
            carrier, fields = _carry(ids, valid)
            records.append(("positive", f"{kind}/{valid.form}/{carrier}", valid.kinds, fields))
            if round_index < 2:
                carrier, fields = _carry(ids, wrong)
                records.append(("benign_lookalike", f"{kind}/{wrong.form}/{carrier}", (), fields))
    return number_items(DETECTOR, (
        {GROUP_KEY: group, "hook": fields["hook"], "label": category == "positive", "kinds": sorted(kinds),
         "category": category, "source": SOURCE, **{key: value for key, value in fields.items() if key != "hook"}}
        for category, group, kinds, fields in records
    ), split=_split)


def main() -> None:
    items = build()
    write_corpus(OUTPUT, items)
    print(category_summary(OUTPUT, items))


if __name__ == "__main__":
    main()
