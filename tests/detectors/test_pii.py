"""The PII detector and the `pii_detect` policy: every kind found with its exact span, look-alikes
left alone, reversible placeholders numbered per request, NER only with an installed model."""

from __future__ import annotations

import json

import pytest

from capsem_proxy.decisions import Verdict
from capsem_proxy.detectors.base import Finding
from capsem_proxy.detectors.pii import DEFAULT_PII_KINDS, PII_KINDS, PIIDetector
from capsem_proxy.exchange import Answer, Exchange, Message, ToolDefinition, ToolUse
from capsem_proxy.hooks import ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse
from capsem_proxy.policies.pii_detect import PIIDetectPolicy
from capsem_proxy.redaction import redact_json_bytes


@pytest.fixture(scope="module")
def detector() -> PIIDetector:
    return PIIDetector([*DEFAULT_PII_KINDS, "sg_nric_fin"])


# (kind, text, the value inside it). Card, IBAN and id values are the issuers' published test
# numbers: their checksums are valid.
FOUND = [
    ("br_cpf", "cpf: 45074952883", "45074952883"),
    ("br_cnpj", "cnpj: 86751832000165", "86751832000165"),
    ("cn_resident_id", "身份证: 110101195601148917", "110101195601148917"),
    ("kr_rrn", "주민등록번호: 8105182896886", "8105182896886"),
    ("mx_curp", "curp: VDBZ700425MDFRQY34", "VDBZ700425MDFRQY34"),
    ("mx_rfc", "rfc: QCLN780623626", "QCLN780623626"),
    ("tr_tckn", "kimlik: 40631355490", "40631355490"),
    ("ch_ahv", "ahv: 7563112944202", "7563112944202"),
    ("no_fnr", "fødselsnummer: 17037313246", "17037313246"),
    ("in_pan", "pan: YAHPU3365H", "YAHPU3365H"),
    ("de_tax_id", "steuer-id: 97041569232", "97041569232"),
    ("fr_nir", "sécurité sociale: 175037508127631", "175037508127631"),
    ("es_nie", "nie: Y7247635G", "Y7247635G"),
    ("nl_bsn", "bsn: 282857564", "282857564"),
    ("be_national_number", "rijksregisternummer: 00112068256", "00112068256"),
    ("se_personnummer", "personnummer: 811204-1457", "811204-1457"),
    ("fi_hetu", "henkilötunnus: 260750-4649", "260750-4649"),
    ("dk_cpr", "cpr: 2004927924", "2004927924"),
    ("pt_nif", "nif: 125629435", "125629435"),
    ("ro_cnp", "cnp: 1521026407325", "1521026407325"),
    ("bg_egn", "егн: 6603210174", "6603210174"),
    ("cz_birth_number", "rodné číslo: 7307022558", "7307022558"),
    ("ie_pps", "pps: 0750072L", "0750072L"),
    ("at_ssn", "sozialversicherungsnummer: 5124190769", "5124190769"),
    ("hr_oib", "oib: 37647861694", "37647861694"),
    ("ee_isikukood", "isikukood: 36804011891", "36804011891"),
    ("za_id", "south african id: 9412109375186", "9412109375186"),
    ("il_id", "teudat zehut: 352007025", "352007025"),
    ("pl_nip", "NIP: 123-456-32-18", "123-456-32-18"),
    ("lt_asmens_kodas", "asmens kodas 33309240064", "33309240064"),
    ("lv_personas_kods", "personas kods 161175-19997", "161175-19997"),
    ("si_emso", "EMŠO: 0101006500006", "0101006500006"),
    ("cl_rut", "mi RUT es 12.345.678-5", "12.345.678-5"),
    ("co_nit", "NIT 890903938-8", "890903938-8"),
    ("ar_cuit", "CUIT 20-12345678-6", "20-12345678-6"),
    ("ec_cedula", "cédula 1710034065", "1710034065"),
    ("jp_my_number", "マイナンバーは123456789018です", "123456789018"),
    ("tw_national_id", "身分證字號 A123456789", "A123456789"),
    ("th_id", "เลขประจำตัวประชาชน 1554565275582", "1554565275582"),
    ("nz_ird", "IRD number 49-091-850", "49-091-850"),
    ("au_medicare", "Medicare card 2123 45670 1", "2123 45670 1"),
    ("au_abn", "ABN 51 824 753 556", "51 824 753 556"),
    ("is_kennitala", "kennitala 120160-3389", "120160-3389"),
    ("gr_amka", "AMKA 15038582357", "15038582357"),
    ("hu_taj", "TAJ szám: 037 687 210", "037 687 210"),
    ("ru_inn", "ИНН 7707083893", "7707083893"),
    ("email", "Write to maria.lopez@acme-corp.io today.", "maria.lopez@acme-corp.io"),
    ("email", "cc: j_doe+billing@mail.co.uk", "j_doe+billing@mail.co.uk"),
    ("phone_number", "Call me at +1 415-555-0132 after six.", "+1 415-555-0132"),
    ("phone_number", "Office: (020) 7946 0958.", "(020) 7946 0958"),
    ("phone_number", "phone 4155550132", "4155550132"),
    ("credit_card", "Charge 4111 1111 1111 1111 please.", "4111 1111 1111 1111"),
    ("credit_card", "card=5555555555554444;", "5555555555554444"),
    ("credit_card", "Amex 3782 822463 10005 on file", "3782 822463 10005"),
    ("credit_card", "new Mastercard 2221-0000-0000-0009", "2221-0000-0000-0009"),
    ("iban", "Pay to DE89 3704 0044 0532 0130 00 by Friday.", "DE89 3704 0044 0532 0130 00"),
    ("iban", "IBAN:GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("us_ssn", "SSN 536-22-8791 on the form", "536-22-8791"),
    ("us_ssn", "her ssn is 536228791", "536228791"),
    ("us_itin", "ITIN 912-70-1234 for the filing", "912-70-1234"),
    ("ip_address", "login from 8.8.4.4 at noon", "8.8.4.4"),
    ("ip_address", "client ip 2001:4860:4860::8888 seen", "2001:4860:4860::8888"),
    ("uk_nino", "national insurance AB123456C", "AB123456C"),
    ("uk_nhs", "NHS number 943 476 5919", "943 476 5919"),
    ("es_nif", "DNI 12345678Z", "12345678Z"),
    ("it_fiscal_code", "codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("in_aadhaar", "aadhaar 2345 6789 0124", "2345 6789 0124"),
    ("au_tfn", "TFN 123 456 782", "123 456 782"),
    ("pl_pesel", "PESEL 44051401359", "44051401359"),
    ("ca_sin", "SIN 130 692 544", "130 692 544"),
    ("sg_nric_fin", "NRIC S1234567D", "S1234567D"),
]


@pytest.mark.parametrize(("kind", "text", "value"), FOUND, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(FOUND)])
def test_each_kind_is_found_with_its_exact_span(detector, kind, text, value):
    findings = detector.scan(text)
    start = text.index(value)
    assert [(f.kind, f.start, f.end, f.text) for f in findings] == [(kind, start, start + len(value), value)]
    assert 0.4 <= findings[0].score <= 1.0


NOT_FOUND = [
    "See alice@example.com and bob@mail.example.org for the docs.",
    "ping root@localhost or admin@intranet",
    '@app.route("/users/<int:id>") and @pytest.fixture',
    "Released 2024-03-15 at 14:30, version 2.3.1, build 48213.",
    "Upgrade to v1.2.3.4 or version 10.1.0.2; 1.2.3.4.5 is a version too.",
    "Bind to 127.0.0.1, 10.0.0.8, 192.168.1.20, ::1 and fe80::1; docs use 203.0.113.7 and 2001:db8::1.",
    "bind to 172.23.52.161:8080 with netmask 255.255.255.0",
    "std::vector<int> and a::b::c are C++ names",
    "Order 4111111111111112 (not a card: the check digit is wrong).",
    "Reference 7992739871300000 has no card issuer prefix.",
    "Account DE89 3704 0044 0532 0130 01 has a wrong check digit.",
    "Ticket 9434765919 was closed (no health-service cue).",
    "created_at 1700000000, id 17000000001234567",
    "SSN 000-12-3456 and 666-12-3456 are never issued; 123-45-6789 is the textbook example.",
    "request 123e4567-e89b-12d3-a456-426614174000 hash 9f86d081884c7d659a2feaa0c55ad015",
    "pi is 3.14159265358979 and e is 2.71828182845904",
    "The meeting is in room 4B, floor 12, building 7.",
]


@pytest.mark.parametrize("text", NOT_FOUND)
def test_look_alikes_are_not_pii(detector, text):
    assert detector.scan(text) == []


def test_digit_only_ids_need_a_cue_word(detector):
    assert detector.scan("reference 9434765919") == []
    assert [f.kind for f in detector.scan("my NHS number is 9434765919")] == ["uk_nhs"]


def test_min_score_and_allow_list_filter_findings():
    text = "Call +1 415-555-0132 or mail ops@acme-corp.io"
    assert [f.kind for f in PIIDetector(min_score=0.9).scan(text)] == ["email"]
    assert [f.kind for f in PIIDetector(allow=["ops@acme-corp.io"]).scan(text)] == ["phone_number"]
    assert PIIDetector(["email"]).scan(text) == [Finding("email", 29, 45, "ops@acme-corp.io", 1.0)]


def test_unknown_kinds_and_ner_kinds_without_a_model_are_refused():
    with pytest.raises(ValueError, match="unknown PII kind"):
        PIIDetector(["emails"])
    with pytest.raises(ValueError, match="NER model"):
        PIIDetector(["email", "person"])


def test_ner_findings_come_from_the_model_given():
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "PERSON", "pattern": "Ada Lovelace"},
        {"label": "GPE", "pattern": "London"},
        {"label": "ORG", "pattern": "Acme"},
    ])
    detector = PIIDetector(["email", "person", "location"], ner=nlp)
    text = "Ada Lovelace of Acme lives in London, ada@acme-corp.io"
    assert [(f.kind, f.text) for f in detector.scan(text)] == [
        ("person", "Ada Lovelace"), ("location", "London"), ("email", "ada@acme-corp.io"),
    ]


def test_every_kind_is_known_and_the_defaults_are_tested():
    assert set(DEFAULT_PII_KINDS) <= {kind for kind, _, _ in FOUND} <= set(PII_KINDS)


# --- the policy -------------------------------------------------------------------------------


def _context() -> RequestContext:
    exchange = Exchange(provider="openai", operation="chat", model="m", messages=[Message("user", "x")])
    return RequestContext("req", "tenant", "openai", "chat", exchange)


async def test_policy_redacts_by_default_and_only_the_spans_change_in_the_body():
    policy = PIIDetectPolicy.from_config({})
    prompt = "Refund 4111 1111 1111 1111 for maria.lopez@acme-corp.io — merci, ça marche"
    decision = await policy.on_model_call(ModelCall(_context(), "m", "", prompt, []))
    assert decision.verdict is Verdict.REDACT and decision.policy == "pii" and decision.reason == "pii"
    assert sorted(decision.redactions) == [
        ("4111 1111 1111 1111", "[REDACTED:credit_card]"), ("maria.lopez@acme-corp.io", "[REDACTED:email]"),
    ]
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "temperature": 0.25}).encode()
    expected = body.replace(b"4111 1111 1111 1111", b"[REDACTED:credit_card]").replace(
        b"maria.lopez@acme-corp.io", b"[REDACTED:email]"
    )
    assert redact_json_bytes(body, decision.redactions) == expected


async def test_reversible_placeholders_are_numbered_across_the_whole_request():
    policy = PIIDetectPolicy.from_config({"reversible": True})
    context = _context()
    prompt = await policy.on_model_call(ModelCall(context, "m", "", "mail ana@acme-corp.io or bo@acme-corp.io", []))
    tool = ToolDefinition("lookup")
    result = await policy.on_tool_response(
        ToolResponse(context, tool, {"owner": "cy@acme-corp.io", "cc": "ana@acme-corp.io"})
    )
    assert prompt.redactions == [("ana@acme-corp.io", "[REDACTED:email_1]"), ("bo@acme-corp.io", "[REDACTED:email_2]")]
    assert result.redactions == [("cy@acme-corp.io", "[REDACTED:email_3]"), ("ana@acme-corp.io", "[REDACTED:email_1]")]
    assert prompt.extra["reversible"] is True


async def test_policy_reads_answers_but_not_emitted_tool_calls_by_default():
    policy = PIIDetectPolicy.from_config({})
    # Emitted calls go to the caller's own code; calls in a request's history go to the provider.
    emitted = ToolCall(_context(), ToolDefinition("mail"), {"to": "ana@acme-corp.io"}, emitted=True)
    assert await policy.on_tool_call(emitted) is None
    assert await PIIDetectPolicy.from_config({"emitted_tool_calls": True}).on_tool_call(emitted) is not None
    assert await PIIDetectPolicy.from_config({"scan": ["tool_calls"]}).on_tool_call(emitted) is not None
    history = Exchange("openai", "chat", messages=[
        Message("assistant", tool_calls=[ToolUse("mail", {"to": "ana@acme-corp.io"})])
    ])
    context = RequestContext("req", "tenant", "openai", "chat", history)
    decision = await policy.on_model_call(ModelCall(context, "gpt-4o", "", "", []))
    assert decision.redactions == [("ana@acme-corp.io", "[REDACTED:email]")]
    answer_event = ModelResponse(_context(), Answer(text="Her IBAN is GB82WEST12345698765432"))
    answer = await policy.on_model_response(answer_event)
    assert answer.redactions == [("GB82WEST12345698765432", "[REDACTED:iban]")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"entities": ["emails"]}, "unknown PII kind"),
        ({"entities": ["person"]}, "need a NER model: set ner: true"),
        ({"min_score": 1.5}, "less than or equal to 1"),
        ({"phone_regions": ["XX"]}, "unknown region code"),
        ({"language": "english"}, "language"),
        ({"actions": {"mail": "block"}}, "unknown PII kind"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ValueError, match=message):
        PIIDetectPolicy.from_config(options)


def test_ner_without_an_installed_model_fails_at_start_up():
    with pytest.raises(ValueError, match="spaCy model 'xx_no_such_model' is not installed as a Python package"):
        PIIDetectPolicy.from_config({"ner": True, "ner_model": "xx_no_such_model"})


def test_prefilters_said_to_need_a_digit_never_match_a_text_without_one() -> None:
    """A text without a digit skips these prefilters: none of them may match such a text."""
    import random
    import re

    from capsem_proxy.detectors import pii

    used = {pattern for entity in pii._ENTITIES.values() for _, pattern in entity.prefilters}
    assert used >= pii._PREFILTERS_WITH_A_DIGIT
    rng = random.Random(11)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .-()+:/@x\t\n"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(3000)]
    texts += ["AB CD EFGH", "(+) (...) ext x", "AA BB CC D", "Lorem ipsum dolor sit amet, x-ray ext. 1.2"]
    for pattern in pii._PREFILTERS_WITH_A_DIGIT:
        compiled = re.compile(pattern)
        assert not any(compiled.search(text) for text in texts), pattern
        # With its digits taken out, a text it matches matches no more.
        for sample in ("+1 (555) 010-0199", "4111 1111", "DE89 3704", "123-45-6789", "912-70", "10.0.0.1",
                       "12 34 56 C", "1234567-Z", "S1234567D"):
            if compiled.search(sample):
                assert not compiled.search(re.sub(r"\d", "x", sample)), pattern


def test_kinds_that_need_a_cue_word_are_found_through_the_shared_cue_pass() -> None:
    detector = PIIDetector()
    assert detector.scan("Write one sentence about the sea, for a benchmark. Mail bob@example.org") == []
    found = detector.scan("Contact alice.smith@corp-mail.de, NHS number 943 476 5919, tax file number 123 456 782")
    assert [finding.kind for finding in found] == ["email", "uk_nhs", "au_tfn"]
    found = detector.scan("Aadhaar: 2345 6789 0124; PESEL 44051401359")
    assert [finding.kind for finding in found] == ["in_aadhaar", "pl_pesel"]


def test_national_ids_are_not_looked_for_in_a_text_without_a_digit() -> None:
    """The PII scan skips national ids for a text without a digit: their gate needs one."""
    import random

    from capsem_proxy.detectors import national_ids

    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZXYZ .-/+abc"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(3000)]
    assert not any(national_ids._GATE.search(text) for text in texts)
