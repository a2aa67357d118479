"""National ids (their own check digits), phone region inference and what is not a phone number."""

from __future__ import annotations

import pytest

from capsem_proxy.detectors.pii import PIIDetector


@pytest.fixture(scope="module")
def detector() -> PIIDetector:
    return PIIDetector()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Meu CPF é 111.444.777-35, pode conferir.", "br_cpf"),
        ("CNPJ da empresa: 11.222.333/0001-81", "br_cnpj"),
        ("居民身份证号码 11010519491231002X", "cn_resident_id"),
        ("AHV-Nr. 756.9217.0769.85", "ch_ahv"),
        ("T.C. kimlik numaram 10000000146", "tr_tckn"),
        ("BSN: 111222333", "nl_bsn"),
        ("Steuer-ID 86095742719", "de_tax_id"),
        ("henkilötunnus 131052-308T", "fi_hetu"),
        ("mi CURP es BOXW310820HNERXN09", "mx_curp"),
    ],
)
def test_a_valid_national_id_is_found_with_its_kind(detector, text, kind):
    assert kind in [finding.kind for finding in detector.scan(text)]


def test_a_wrong_check_digit_is_not_an_id(detector):
    assert not [f for f in detector.scan("Meu CPF é 111.444.777-36") if f.kind == "br_cpf"]


def test_a_bare_digit_run_needs_its_name_nearby(detector):
    # 111222333 passes the Dutch eleven-test, but without "BSN" it is just a number.
    assert detector.scan("Order 111222333 shipped today") == []


@pytest.mark.parametrize(
    "text",
    [
        "Upgrade to version 10.0.19045.3803 before Monday.",
        "build 22621.2715 fixes the crash",
        "Meeting moved to 2024-05-14 10:30",
        "Trace id 3f2504e0-4f89-11d3-9a0c-0305e82c3301 in the logs",
        "Order #55512345678 shipped on 14.05.2024.",
    ],
)
def test_versions_dates_and_ids_are_not_phone_numbers(detector, text):
    assert [f for f in detector.scan(text) if f.kind == "phone_number"] == []


def test_a_phone_with_a_cue_word_is_found_in_any_common_region(detector):
    # A Polish number written nationally: Poland is in no default region list, the cue word decides.
    assert [f.kind for f in detector.scan("Numer telefonu: 512 345 678")] == ["phone_number"]


def test_a_phone_region_is_inferred_from_the_text(detector):
    # A Japanese domestic number in a Japanese sentence.
    assert "phone_number" in [f.kind for f in detector.scan("電話番号: 03-1234-5678")]
