"""Gateway keys over HTTP with the three official SDKs: the key works, the provider receives the held
key and never the gateway key, unknown/revoked/expired keys get 401 and a model outside the key's list
403, each in the provider's own error shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors, types

from tests.integration.gateway_helpers import (
    HELD_KEYS,
    admin,
    all_header_values,
    create_key,
    header,
    start_gateway,
)

UNKNOWN = "cpk-" + "x" * 43


@pytest.fixture(scope="module")
def gateway(fake_provider) -> Iterator:
    process = start_gateway(fake_provider)
    yield process
    process.stop()


def _openai(proxy, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=key, max_retries=0, timeout=10)


def _anthropic(proxy, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base_url, api_key=key, max_retries=0, timeout=10)


def _gemini(proxy, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=proxy.base_url))


def _assert_only_held_key(fake_provider, plain: str, provider: str) -> None:
    records = fake_provider.requests()
    assert len(records) == 1
    seen = all_header_values(records[0]) + records[0]["query_string"]
    assert plain not in seen and "cpk-" not in seen
    assert HELD_KEYS[provider] in seen


def test_openai_sdk_with_a_gateway_key(gateway, fake_provider):
    made = create_key(gateway, models=["gpt-4o*"])
    assert made["key"].startswith("cpk-") and len(made["key"]) >= 44
    answer = _openai(gateway, made["key"]).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    _assert_only_held_key(fake_provider, made["key"], "openai")
    assert header(fake_provider.requests()[0], "authorization") == [f"Bearer {HELD_KEYS['openai']}"]
    assert gateway.log_text().count(made["key"]) == 0 and HELD_KEYS["openai"] not in gateway.log_text()


def test_anthropic_sdk_with_a_gateway_key(gateway, fake_provider):
    made = create_key(gateway, providers=["anthropic"])
    message = _anthropic(gateway, made["key"]).messages.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text
    _assert_only_held_key(fake_provider, made["key"], "anthropic")
    assert header(fake_provider.requests()[0], "x-api-key") == [HELD_KEYS["anthropic"]]


def test_gemini_sdk_with_a_gateway_key(gateway, fake_provider):
    made = create_key(gateway, providers=["gemini"], models=["gemini-2.5-*"])
    client = _gemini(gateway, made["key"])
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert answer.text
    _assert_only_held_key(fake_provider, made["key"], "gemini")
    assert header(fake_provider.requests()[0], "x-goog-api-key") == [HELD_KEYS["gemini"]]


def test_key_in_the_query_is_replaced_too(gateway, fake_provider):
    import httpx

    made = create_key(gateway, providers=["gemini"])
    answer = httpx.post(
        f"{gateway.base_url}/v1beta/models/gemini-2.5-flash:generateContent?key={made['key']}&alt=json",
        json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=10,
    )
    assert answer.status_code == 200, answer.text
    record = fake_provider.requests()[0]
    assert "cpk-" not in record["query_string"] and record["query_string"] == "alt=json"
    assert header(record, "x-goog-api-key") == [HELD_KEYS["gemini"]]


def test_unknown_revoked_and_expired_keys_get_401(gateway, fake_provider):
    revoked = create_key(gateway)
    assert admin(gateway, "DELETE", f"/admin/keys/{revoked['id']}").json()["status"] == "revoked"
    expired = create_key(gateway, expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    for key, why in ((UNKNOWN, "not valid"), (revoked["key"], "revoked"), (expired["key"], "expired")):
        with pytest.raises(openai.AuthenticationError) as caught:
            _openai(gateway, key).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        body = caught.value.response.json()
        assert why in body["detail"] and body["error"]["type"]
        with pytest.raises(anthropic.AuthenticationError) as refused:
            _anthropic(gateway, key).messages.create(
                model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert refused.value.response.json()["type"] == "error"
        client = _gemini(gateway, key)
        with pytest.raises(errors.ClientError) as google_refused:
            client.models.generate_content(model="gemini-2.5-flash", contents="x")
        assert google_refused.value.code == 401
    assert fake_provider.requests() == []


def test_a_provider_key_is_refused_in_gateway_mode(gateway, fake_provider):
    with pytest.raises(openai.AuthenticationError):
        _openai(gateway, "sk-caller-own-key-0123456789").models.list()
    assert fake_provider.requests() == []


def test_model_or_provider_outside_the_key_gets_403(gateway, fake_provider):
    made = create_key(gateway, providers=["openai", "anthropic"], models=["gpt-4o-mini", "claude-haiku-*"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _openai(gateway, made["key"]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}]
        )
    assert "gpt-4o" in caught.value.response.json()["detail"]
    with pytest.raises(anthropic.PermissionDeniedError):
        _anthropic(gateway, made["key"]).messages.create(
            model="claude-opus-4-1", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    client = _gemini(gateway, made["key"])
    with pytest.raises(errors.ClientError) as google_refused:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert google_refused.value.code == 403
    assert fake_provider.requests() == []


def test_listings_never_show_a_key(gateway):
    made = create_key(gateway, tenant="team-list")
    listing = admin(gateway, "GET", "/admin/keys")
    assert listing.status_code == 200
    text = listing.text
    assert made["key"] not in text and HELD_KEYS["openai"] not in text and made["key"][4:] not in text
    mine = next(key for key in listing.json()["keys"] if key["id"] == made["id"])
    assert mine["tenant"] == "team-list" and mine["provider_keys"] == ["anthropic", "gemini", "openai"]
    assert mine["status"] == "active" and "key" not in mine


def test_requests_are_audited_under_the_tenant_name(gateway, fake_provider):
    made = create_key(gateway, tenant="team-audited")
    _openai(gateway, made["key"]).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    import time

    deadline = time.monotonic() + 5
    rows: list = []
    while time.monotonic() < deadline and not rows:
        rows = admin(gateway, "GET", "/admin/requests?tenant_id=team-audited").json().get("requests", [])
        time.sleep(0.1)
    assert rows and rows[0]["tenant_id"] == "team-audited"


def test_a_provider_refusing_the_held_key_never_shows_it(gateway, fake_provider):
    made = create_key(gateway)
    client = _openai(gateway, made["key"])
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}],
            extra_headers=fake_provider.scenario_header(status=401),
        )
    assert caught.value.status_code == 502
    text = caught.value.response.text
    assert "refused" in caught.value.response.json()["detail"]
    assert HELD_KEYS["openai"] not in text and HELD_KEYS["openai"][:10] not in text
