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


def test_an_imei_is_not_a_card_number(detector):
    # 15 digits passing Luhn and starting 35 (a JCB range): JCB cards have 16 to 19 digits.
    assert detector.scan("IMEI: 353982597919077") == []


def test_a_number_with_its_country_code_is_a_phone_even_outside_the_known_ranges(detector):
    # +7 9xx is Russia's mobile range; a number the metadata does not list yet is still possible.
    findings = detector.scan("Reach me on +7 (999) 000-00-00 tomorrow")
    assert [(f.kind, f.text) for f in findings] == [("phone_number", "+7 (999) 000-00-00")]


def test_an_israeli_id_may_carry_its_check_digit_after_a_dash(detector):
    assert [f.kind for f in detector.scan('ת"ז 12345678-2')] == ["il_id"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("NIP 123-456-32-18", "pl_nip"),
        ("mi RUT es 12.345.678-5", "cl_rut"),
        ("マイナンバーは123456789018です", "jp_my_number"),
        ("kennitala 120160-3389", "is_kennitala"),
    ],
)
def test_more_countries_ids_are_found(detector, text, kind):
    assert kind in [finding.kind for finding in detector.scan(text)]


@pytest.mark.parametrize(
    "text",
    ["NIP 123-456-32-19", "mi RUT es 12.345.678-6", "マイナンバーは123456789017です", "kennitala 120160-3379"],
)
def test_a_wrong_check_digit_is_no_id_of_those_countries_either(detector, text):
    assert detector.scan(text) == []


def test_an_international_number_with_an_extension_is_a_phone_without_a_cue_word(detector):
    # +1 692 (the Marshall Islands) with an extension: possible, not in the valid ranges.
    text = "notes: +1-692-489-3403x64308"
    assert [(f.kind, f.text) for f in detector.scan(text)] == [("phone_number", "+1-692-489-3403x64308")]


def test_a_number_with_only_a_one_in_ten_check_needs_its_own_name(detector):
    # 1234563218 passes Poland's NIP check, as one number in eleven does: "id number" is not enough.
    assert "pl_nip" not in [f.kind for f in detector.scan("Customer id number 1234563218")]
    assert "pl_nip" in [f.kind for f in detector.scan("NIP 1234563218")]
