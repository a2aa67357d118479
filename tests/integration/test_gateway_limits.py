"""Limits and budgets over HTTP with the three official SDKs: 429 in each provider's own error shape
with detail, Retry-After and x-ratelimit-* headers; tokens charged after the answer; a spent budget
rejects or downgrades; open streams are bounded; spend and its metrics follow."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

from tests.integration.gateway_helpers import HELD_KEYS, admin, create_key, header, start_gateway


def _openai(proxy, key: str, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=key, max_retries=retries, timeout=10)


def _chat(client: openai.OpenAI, model: str = "gpt-4o"):
    return client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "hi"}])


@pytest.fixture(scope="module")
def gateway(fake_provider) -> Iterator:
    # "both": gateway keys, and callers' own provider keys (whose traffic is in the spend too).
    process = start_gateway(fake_provider, {"auth": {"mode": "both"}, "limits": {
        "tenants": {
            "team-rpm": {"requests_per_minute": 2},
            "team-tokens": {"tokens_per_minute": 1},
            "team-budget": {"budget_usd_per_day": 0.000001},
            "team-cheap": {"budget_usd_per_day": 0.000001, "on_budget": {"downgrade": "gpt-4o-mini"}},
            "team-streams": {"concurrent_streams": 1},
        },
    }, "metrics": {"enabled": True}})
    yield process
    process.stop()


def _spend_the_minute(client: openai.OpenAI) -> openai.RateLimitError:
    """Requests until the per-minute limit refuses one: a minute boundary crossed midway only adds a
    request or two, so this holds on a slow machine at any second of the minute."""
    for _ in range(8):
        try:
            _chat(client)
        except openai.RateLimitError as exc:
            return exc
    pytest.fail("the per-minute limit never refused a request")


def _refused_eventually(client: openai.OpenAI, never: str) -> openai.RateLimitError:
    """Requests until one is refused with 429; usage is charged after an answer, so a refusal that
    depends on it may come a few requests late. Fails with `never` when none is refused."""
    for _ in range(50):
        try:
            _chat(client)
        except openai.RateLimitError as exc:
            return exc
        time.sleep(0.05)
    pytest.fail(never)


def test_requests_per_minute_gives_openai_shaped_429(gateway, fake_provider):
    client = _openai(gateway, create_key(gateway, tenant="team-rpm")["key"])
    response = _spend_the_minute(client).response
    body = response.json()
    assert body["error"]["type"] and "rate limit" in body["detail"] and "2 requests per minute" in body["detail"]
    assert 1 <= int(response.headers["retry-after"]) <= 61
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert 2 <= len(fake_provider.requests()) <= 4


def test_key_limits_in_anthropic_and_gemini_shapes(gateway, fake_provider):
    made = create_key(gateway, tenant="team-key-limits", limits={"requests_per_minute": 1})
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key=made["key"], max_retries=0, timeout=10)
    google = genai.Client(api_key=made["key"], http_options=types.HttpOptions(base_url=gateway.base_url))
    for _ in range(4):
        try:
            client.messages.create(
                model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        except anthropic.RateLimitError as exc:
            body = exc.response.json()
            assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
            assert made["id"] in body["detail"] and exc.response.headers["retry-after"]
            break
    else:
        pytest.fail("the key's limit never refused a request")
    with pytest.raises(errors.ClientError) as refused:
        google.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert refused.value.code == 429 and refused.value.status == "RESOURCE_EXHAUSTED"


def test_tokens_are_charged_after_the_answer(gateway, fake_provider):
    client = _openai(gateway, create_key(gateway, tenant="team-tokens")["key"])
    first = _chat(client).parse()
    assert first.usage.total_tokens > 1
    # Charged when the answer is over, so a little after it.
    refused = _refused_eventually(client, "the tokens of the first answer were never charged")
    assert refused.response.headers["x-ratelimit-limit-tokens"] == "1"
    assert refused.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_spent_budget_rejects_without_retry(gateway, fake_provider):
    client = _openai(gateway, create_key(gateway, tenant="team-budget")["key"])
    _chat(client)
    refused = _refused_eventually(client, "the budget never ran out")
    assert "budget" in refused.response.json()["detail"]
    assert refused.response.headers["x-should-retry"] == "false"


def test_spent_budget_downgrades_to_the_cheaper_model(gateway, fake_provider):
    client = _openai(gateway, create_key(gateway, tenant="team-cheap")["key"])
    assert _chat(client).headers.get("x-capsem-downgraded-from") is None
    for _ in range(50):
        raw = _chat(client)
        if raw.headers.get("x-capsem-downgraded-from") == "gpt-4o":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the request was never downgraded")
    sent = json.loads(base64.b64decode(fake_provider.requests()[-1]["body_b64"]))
    assert sent["model"] == "gpt-4o-mini"


def test_concurrent_streams_are_bounded(gateway, fake_provider):
    made = create_key(gateway, tenant="team-streams")
    slow = fake_provider.scenario_header(delay_ms=200, events=25)
    client = _openai(gateway, made["key"])
    with client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True, extra_headers=slow
    ) as first:
        next(iter(first))
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True)
        assert "streams open" in caught.value.response.json()["detail"]
    # The client left mid-stream: the proxy ends the upstream call and closes the stream.
    for _ in range(50):
        try:
            for _ in client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            ):
                pass
            break
        except openai.RateLimitError:
            time.sleep(0.05)
    else:
        pytest.fail("the finished stream was never released")


def test_spend_by_tenant_and_metrics(gateway, fake_provider):
    client = _openai(gateway, create_key(gateway, tenant="team-spend", models=["gpt-4o*"])["key"])
    usage = _chat(client).parse().usage
    spend = admin(gateway, "GET", "/admin/spend?group_by=tenant&since=1h")
    assert spend.status_code == 200, spend.text
    row = next(row for row in spend.json()["rows"] if row["group"] == "team-spend")
    assert row["requests"] == 1 and row["input_tokens"] == usage.prompt_tokens
    assert row["output_tokens"] == usage.completion_tokens and row["cost_usd"] > 0
    by_model = admin(gateway, "GET", "/admin/spend?group_by=model").json()["rows"]
    assert any(row["group"] == "gpt-4o" for row in by_model)
    assert admin(gateway, "GET", "/admin/spend?group_by=nothing").status_code == 400
    metrics = httpx.get(gateway.base_url + "/metrics", timeout=5).text
    assert 'capsem_proxy_tenant_tokens_total{direction="input",tenant="team-spend"}' in metrics
    assert 'capsem_proxy_tenant_cost_usd_total{tenant="team-spend"}' in metrics
    assert 'capsem_proxy_rate_limited_total{limit="requests",tenant="team-rpm"}' in metrics


def test_traffic_on_a_callers_own_provider_key_is_in_the_spend_too(gateway, fake_provider):
    model = "gpt-4o-on-own-key"
    client = _openai(gateway, "sk-own-provider-key-for-spend-0123456789")
    usage = _chat(client, model).parse().usage
    rows = admin(gateway, "GET", "/admin/spend?group_by=model&since=1h").json()["rows"]
    row = next(row for row in rows if row["group"] == model)
    assert row["requests"] == 1
    assert row["input_tokens"] == usage.prompt_tokens and row["output_tokens"] == usage.completion_tokens
    by_tenant = admin(gateway, "GET", "/admin/spend?group_by=tenant&since=1h").text
    assert "sk-own-provider-key" not in by_tenant


def test_a_stream_is_charged_its_real_usage_when_it_ends(gateway, fake_provider):
    made = create_key(gateway, tenant="team-stream-tokens", limits={"tokens_per_minute": 1})
    client = _openai(gateway, made["key"])
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 1
    for _ in range(50):
        try:
            _chat(client)
        except openai.RateLimitError as exc:
            assert "tokens per minute" in exc.response.json()["detail"]
            break
        time.sleep(0.05)
    else:
        pytest.fail("the stream's usage was never charged")


def test_model_listing_with_a_gateway_key(gateway, fake_provider):
    models = _openai(gateway, create_key(gateway, tenant="team-list-models")["key"]).models.list()
    assert models.data
    assert header(fake_provider.requests()[0], "authorization") == [f"Bearer {HELD_KEYS['openai']}"]
