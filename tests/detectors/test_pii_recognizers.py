"""The pattern recognizers `pii` runs answer as Presidio's own, and `pii` does not load spaCy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capsem_proxy.detectors.pii_recognizers import RECOGNIZERS

_TEXTS = [
    "ip 2001:db8::1, ::1, ::ffff:8.8.8.8, fe80::1%eth0, 8.8.8.8/24, 300.1.1.1 and 10.0.0.256",
    "IBAN DE89 3704 0044 0532 0130 00, GB82WEST12345698765432, GB82 WEST 1234 5698 7654 32 1,"
    " FR7630006000011234567890189",
    "ssn 123-45-6789, 078-05-1120, 123.45.6789, 219-09-9999, 123-45 6789, 111-11-1111, 536-90-4399, 536904399",
    "itin 912-70-1234, 912 70 1234, 912701234, 912-93-1234",
    "nino AB 12 34 56 C, QQ123456C, GB123456A",
    "nhs 943 476 5919, 9434765919, 943-476-5918",
    "DNI 12345678Z, 12345678-Z, 1234567L, 12345678A",
    "codice fiscale RSSMRA85T10A562S, rssmra85t10a562s, RSSMRA85T10A562T",
    "aadhaar 2345 6789 0124, 234567890124, 1234 5678 9012, 2345:6789:0124",
    "tfn 123 456 782, 123456782, 876 543 210",
    "PESEL 44051401458, 44051401459, 02070803628",
    "sin 046-454-286, 046 454 286, 046454286, 123-456-789",
    "nric S1234567D, G1234567X, A1234567Z",
    "passport A12345678, 123456789; driver license D1234567, 12AB34567, 1234567A; bank account 12345678901",
    "visa 4111 1111 1111 1111, 4111-1111-1111-1112, 5500 0000 0000 0004, 378282246310005, 1234567890123",
    "mail john.doe@blogspot.com, x@foo.github.io, ü@münchen.de, a@b, first.last+tag@mail.co.uk, bad@local",
]


@pytest.mark.parametrize("kind", sorted(RECOGNIZERS))
def test_results_are_presidios(kind: str) -> None:
    recognizers = pytest.importorskip("presidio_analyzer.predefined_recognizers")
    names = {
        "email": "EmailRecognizer", "credit_card": "CreditCardRecognizer", "iban": "IbanRecognizer",
        "us_ssn": "UsSsnRecognizer", "us_itin": "UsItinRecognizer", "ip_address": "IpRecognizer",
        "uk_nino": "UkNinoRecognizer", "uk_nhs": "NhsRecognizer", "es_nif": "EsNifRecognizer",
        "it_fiscal_code": "ItFiscalCodeRecognizer", "in_aadhaar": "InAadhaarRecognizer", "au_tfn": "AuTfnRecognizer",
        "pl_pesel": "PlPeselRecognizer", "ca_sin": "CaSinRecognizer", "sg_nric_fin": "SgFinRecognizer",
        "us_passport": "UsPassportRecognizer", "us_driver_license": "UsLicenseRecognizer",
        "us_bank_number": "UsBankRecognizer",
    }
    theirs = getattr(recognizers, names[kind])()
    if kind == "email":  # Presidio's own validator downloads the suffix list: read the bundled one
        import tldextract

        extract = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())
        theirs.validate_result = lambda value: bool(extract(value).fqdn)
    ours = RECOGNIZERS[kind]
    assert [word for word in ours.context] == list(theirs.context)
    for text in _TEXTS:
        expected = sorted((r.start, r.end, r.score) for r in theirs.analyze(text, theirs.supported_entities))
        assert sorted(ours.analyze(text)) == expected, text


def test_pii_detection_does_not_load_spacy() -> None:
    code = (
        "import sys\n"
        "from capsem_proxy.detectors.pii import PIIDetector\n"
        "PIIDetector().scan('call +44 20 7946 0958 or mail jane@corp.de, IBAN DE89 3704 0044 0532 0130 00')\n"
        "print(sorted(name for name in ('spacy', 'presidio_analyzer') if name in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
