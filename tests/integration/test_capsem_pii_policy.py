"""CAPSEM's own PIIPolicy (Presidio), loaded by the real proxy from a CAPSEM `pii.toml` and from
the YAML config, runs unchanged: it blocks or logs what its `entity_decisions` say.

Presidio's default NLP engine is spaCy's `en_core_web_lg`, which it downloads when missing. The
policy's `nlp_engine_config` can instead name a spaCy pipeline directory; a blank English
pipeline (tokenizer only, written by `spacy.blank("en").to_disk(...)`) needs no download and
is enough for Presidio's pattern recognizers (e-mail, credit card, IBAN, IP address ...).
"""

from __future__ import annotations

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.proxy_process import start_proxy

pytest.importorskip("presidio_analyzer", reason="CAPSEM's PIIPolicy needs presidio-analyzer")
spacy = pytest.importorskip("spacy", reason="presidio-analyzer's NLP engine needs spaCy")

EMAIL_PROMPT = "Please write to jane.doe@example.com about the invoice."
CARD_PROMPT = "Charge my card 4111 1111 1111 1111 for the order."
IP_PROMPT = "The build server answers on 10.20.30.40 today."
CLEAN_PROMPT = "Summarise the meeting notes in three bullet points."


@pytest.fixture(scope="module")
def blank_pipeline(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("spacy") / "blank-en"
    spacy.blank("en").to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def toml_proxy(fake_provider, tmp_path_factory, blank_pipeline):
    policy_dir = tmp_path_factory.mktemp("capsem-config")
    (policy_dir / "pii.toml").write_text(
        "enabled = true\n"
        "timeout_ms = 5000\n"
        "[entity_decisions]\n"
        'EMAIL_ADDRESS = "BLOCK"\n'
        'CREDIT_CARD = "BLOCK"\n'
        'IP_ADDRESS = "LOG"\n'
        "[nlp_engine_config]\n"
        'nlp_engine_name = "spacy"\n'
        f'models = [{{lang_code = "en", model_name = "{blank_pipeline}"}}]\n',
        encoding="utf-8",
    )
    process = start_proxy(fake_provider.base_url, {"policy_dir": str(policy_dir)})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def yaml_proxy(fake_provider, blank_pipeline):
    options = {
        "entity_decisions": {"EMAIL_ADDRESS": "LOG"},
        "check_responses": False,
        "nlp_engine_config": {
            "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": blank_pipeline}]
        },
    }
    config = {"policies": [{"class": "pii", "options": options, "timeout_ms": 5000}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


def _openai(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="sk-test-pii", max_retries=0)


def _chat(proxy, prompt: str) -> httpx.Response:
    return httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": prompt}]},
        headers={"authorization": "Bearer sk-test-pii"},
        timeout=30,
    )


def test_an_email_in_a_prompt_is_blocked(toml_proxy, fake_provider):
    with pytest.raises(openai.PermissionDeniedError) as error:
        _openai(toml_proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": EMAIL_PROMPT}])
    assert (
        "Request blocked by security policy: PII detected in prompt: EMAIL_ADDRESS(count=1, score=1.00, action=BLOCK)"
        in str(error.value)
    )
    assert fake_provider.requests() == []


def test_a_card_number_in_a_prompt_is_blocked_for_gemini_too(toml_proxy):
    client = genai.Client(api_key="AIza-pii", http_options={"base_url": toml_proxy.base_url})
    with pytest.raises(genai_errors.ClientError) as error:
        client.models.generate_content(model="gemini-2.0-flash", contents=CARD_PROMPT)
    assert error.value.code == 403
    assert "PII detected in prompt: CREDIT_CARD" in str(error.value)


def test_an_ip_address_is_logged_and_passes(toml_proxy, fake_provider):
    response = _chat(toml_proxy, IP_PROMPT)
    assert response.status_code == 200
    assert response.headers.get("x-capsem-decision-id")
    assert b"10.20.30.40" in fake_provider.body_of(fake_provider.last())


def test_a_clean_prompt_passes_without_a_decision(toml_proxy):
    response = _chat(toml_proxy, CLEAN_PROMPT)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake provider."
    assert "x-capsem-decision-id" not in response.headers


def test_a_card_number_in_the_answer_is_blocked(toml_proxy, fake_provider):
    fake_provider.script(reply="Sure, the card on file is 4111 1111 1111 1111.")
    response = _chat(toml_proxy, CLEAN_PROMPT)
    assert response.status_code == 403
    assert response.json()["detail"].startswith(
        "Response blocked by security policy: PII detected in model response: CREDIT_CARD"
    )
    assert "4111" not in response.text


def test_the_yaml_config_loads_it_by_its_short_name_with_its_own_verdicts(yaml_proxy, fake_provider):
    response = _chat(yaml_proxy, EMAIL_PROMPT)
    assert response.status_code == 200
    assert response.headers.get("x-capsem-decision-id")
    card = _chat(yaml_proxy, CARD_PROMPT)
    assert card.status_code == 200
    assert "x-capsem-decision-id" not in card.headers
