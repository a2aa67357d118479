"""Raw HTTP through the real proxy: bodies, queries and headers arrive upstream byte for byte,
answers and provider errors come back unchanged."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest

OPENAI_KEY = "sk-test-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-test-0123456789"
GEMINI_KEY = "AIzaTestGeminiKey0123456789"

# Odd spacing, key order and unknown fields: nothing may be re-serialised on the way.
CHAT_BODY = (
    b'{ "model":"gpt-4o-mini",  "messages":[{"role":"user","content":"hi \\u00e9"}],'
    b' "x_unknown_field": {"nested": [1, 2.50, null]}, "temperature": 0.70 }'
)


def _recorded_body(record: dict) -> bytes:
    return base64.b64decode(record["body_b64"])


def _without_request_ids(body: bytes) -> bytes:
    parsed = orjson.loads(body)
    if isinstance(parsed, dict):
        parsed.pop("request_id", None)
    return orjson.dumps(parsed)


def _header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def test_openai_body_forwarded_byte_for_byte(proxy, fake_provider):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        content=CHAT_BODY,
        headers={"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    record = fake_provider.last()
    assert _recorded_body(record) == CHAT_BODY
    assert record["path"] == "/v1/chat/completions"
    assert response.json()["choices"][0]["message"]["content"]
    assert response.headers["x-capsem-request-id"]


def test_gemini_query_string_survives_whole(proxy, fake_provider):
    body = b'{"contents":[{"role":"user","parts":[{"text":"hello"}]}],"futureField":true}'
    query = f"alt=sse&key={GEMINI_KEY}&x-extra=a%20b"
    with httpx.stream(
        "POST", f"{proxy.base_url}/v1beta/models/gemini-2.0-flash:streamGenerateContent?{query}", content=body,
        headers={"content-type": "application/json"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert "data: " in text
    record = fake_provider.last()
    assert record["query_string"] == query
    assert _recorded_body(record) == body
    assert record["path"] == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def test_provider_headers_are_forwarded_and_proxy_headers_are_not(proxy, fake_provider):
    response = httpx.post(
        f"{proxy.base_url}/v1/messages",
        content=b'{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}',
        headers={
            "x-api-key": ANTHROPIC_KEY,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "tools-2024-04-04",
            "user-agent": "my-agent/1.0",
            "content-type": "application/json",
            "x-capsem-session-id": "session-1",
            "x-capsem-agent-id": "agent-1",
            "cookie": "proxy-session=1",
        },
    )
    assert response.status_code == 200, response.text
    record = fake_provider.last()
    assert _header(record, "x-api-key") == [ANTHROPIC_KEY]
    assert _header(record, "anthropic-version") == ["2023-06-01"]
    assert _header(record, "anthropic-beta") == ["tools-2024-04-04"]
    assert _header(record, "user-agent") == ["my-agent/1.0"]
    assert not [key for key, _ in record["headers"] if key.lower().startswith("x-capsem-")]
    assert not _header(record, "cookie")
    assert response.headers["request-id"]


def test_openai_org_and_project_headers_are_forwarded(proxy, fake_provider):
    httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        content=CHAT_BODY,
        headers={"authorization": f"Bearer {OPENAI_KEY}", "openai-organization": "org-1", "openai-project": "p-1"},
    )
    record = fake_provider.last()
    assert _header(record, "openai-organization") == ["org-1"]
    assert _header(record, "openai-project") == ["p-1"]


def test_rate_limit_headers_come_back(proxy, fake_provider):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", content=CHAT_BODY,
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    direct = httpx.post(
        f"{fake_provider.base_url}/v1/chat/completions", content=CHAT_BODY,
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    for name in direct.headers:
        if name.startswith("x-ratelimit-") or name in ("x-request-id", "content-type"):
            assert name in response.headers, name


@pytest.mark.parametrize(
    ("path", "headers", "scenario"),
    [
        ("/v1/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}, {"status": 400}),
        ("/v1/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}, {"status": 404}),
        ("/v1/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}, {"rate_limit": True}),
        ("/v1/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}, {"server_error": True}),
        ("/v1/chat/completions", {"authorization": "Bearer bad-key"}, {}),
        ("/v1/messages", {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}, {"overloaded": True}),
        ("/v1/messages", {"x-api-key": "bad-key", "anthropic-version": "2023-06-01"}, {}),
        ("/v1beta/models/gemini-2.0-flash:generateContent", {"x-goog-api-key": GEMINI_KEY}, {"status": 400}),
        ("/v1beta/models/gemini-2.0-flash:generateContent", {"x-goog-api-key": GEMINI_KEY}, {"rate_limit": True}),
    ],
)
def test_provider_errors_come_back_exactly(proxy, fake_provider, path, headers, scenario):
    body = (
        b'{"contents":[{"parts":[{"text":"hi"}]}]}' if "gemini" in path
        else b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    )
    request_headers = {**headers, "x-fake-scenario": orjson.dumps(scenario).decode()}
    direct = httpx.post(f"{fake_provider.base_url}{path}", content=body, headers=request_headers)
    via_proxy = httpx.post(f"{proxy.base_url}{path}", content=body, headers=request_headers)
    assert direct.status_code >= 400
    assert via_proxy.status_code == direct.status_code
    # Answers differ only in the per-answer request id the fake provider makes up.
    assert _without_request_ids(via_proxy.content) == _without_request_ids(direct.content)
    if "retry-after" in direct.headers:
        assert via_proxy.headers["retry-after"] == direct.headers["retry-after"]


def test_gzip_answer_is_decoded_once_with_consistent_headers(proxy, fake_provider):
    fake_provider.script(gzip=True)
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", content=CHAT_BODY,
        headers={"authorization": f"Bearer {OPENAI_KEY}", "accept-encoding": "identity"},
    )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["object"] == "chat.completion"


def test_model_lists_for_each_provider(proxy):
    openai_models = httpx.get(f"{proxy.base_url}/v1/models", headers={"authorization": f"Bearer {OPENAI_KEY}"})
    gemini_models = httpx.get(f"{proxy.base_url}/v1beta/models", headers={"x-goog-api-key": GEMINI_KEY})
    gemini_v1_models = httpx.get(f"{proxy.base_url}/v1/models?key={GEMINI_KEY}")
    assert openai_models.status_code == 200 and openai_models.json()["object"] == "list"
    assert gemini_models.status_code == 200 and "models" in gemini_models.json()
    assert gemini_v1_models.status_code == 200 and "models" in gemini_v1_models.json()


def test_health_endpoints(proxy):
    health = httpx.get(f"{proxy.base_url}/health")
    assert health.json()["status"] == "healthy"
    assert health.json()["providers"] == ["openai", "gemini", "anthropic"]
    assert health.json()["version"]
    assert httpx.get(f"{proxy.base_url}/healthz").status_code == 200
    assert httpx.get(f"{proxy.base_url}/readyz").status_code == 200
    assert health.headers["x-capsem-request-id"]


def test_cors_is_closed_by_default(proxy):
    preflight = httpx.options(
        f"{proxy.base_url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
