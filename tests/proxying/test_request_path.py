"""The request path in-process (the ASGI app through httpx.ASGITransport, the fake provider over
HTTP): key -> tenant -> decode -> policies -> confirm -> redact -> forward, and each way out."""

from __future__ import annotations

import orjson

from tests.proxying.inprocess import asgi_proxy

KEY = {"authorization": "Bearer sk-request-path-tenant"}
POLICY = {
    "class": "tests.proxying.policies.Keywords",
    "options": {"block": "forbidden", "confirm": "transfer", "redact": "hunter2", "block_answer": "classified"},
}
CONFIG = {"policies": [POLICY]}


def _chat(prompt: str, *, reply: str = "fine", stream: bool = False) -> dict:
    return {
        "json": {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": prompt}]},
        "headers": {**KEY, "x-fake-scenario": orjson.dumps({"reply": reply}).decode()},
    }


async def test_a_request_without_key_is_refused_in_the_provider_shape(fake_provider):
    async with asgi_proxy(fake_provider.base_url) as client:
        openai = await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
        anthropic = await client.post("/v1/messages", json={"model": "m", "messages": []},
                                      headers={"anthropic-version": "2023-06-01"})
    assert openai.status_code == 401
    assert openai.json()["error"]["code"] == "invalid_api_key"
    assert openai.headers["x-capsem-request-id"]
    assert anthropic.status_code == 401
    assert anthropic.json()["type"] == "error"
    assert fake_provider.requests() == []


async def test_two_key_headers_are_refused(fake_provider):
    async with asgi_proxy(fake_provider.base_url) as client:
        response = await client.post(
            "/v1/messages", json={"model": "m", "messages": []},
            headers=[("x-api-key", "sk-one"), ("x-api-key", "sk-two"), ("anthropic-version", "2023-06-01")],
        )
    assert response.status_code == 400
    assert "more than one API key" in response.json()["detail"]


async def test_an_unserved_route_is_a_404_and_the_local_routes_answer(fake_provider):
    async with asgi_proxy(fake_provider.base_url) as client:
        missing = await client.get("/v1/nothing-here", headers=KEY)
        health = await client.get("/healthz")
    assert missing.status_code == 404
    assert "does not serve" in missing.json()["detail"]
    assert health.json() == {"status": "ok"}


async def test_an_allowed_request_reaches_the_provider_and_its_answer_the_client(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("hello", reply="hi there"))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hi there"
    assert "x-capsem-decision-id" not in response.headers
    forwarded = fake_provider.last()
    assert forwarded is not None
    assert orjson.loads(fake_provider.body_of(forwarded))["messages"][0]["content"] == "hello"


async def test_a_blocked_prompt_never_reaches_the_provider(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("a forbidden word"))
    assert response.status_code == 403
    assert response.json()["detail"] == "Request blocked by security policy: blocked keyword"
    assert response.headers["x-capsem-decision-id"]
    assert fake_provider.requests() == []


async def test_a_confirm_verdict_holds_the_request_under_its_decision_id(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("transfer everything"))
        retry = await client.post(
            "/v1/chat/completions",
            **{**_chat("transfer everything"), "headers": {**KEY, "x-capsem-approval": "not-approved"}},
        )
    decision_id = response.headers["x-capsem-decision-id"]
    assert response.status_code == 403
    assert f"confirm required (risky keyword); decision id {decision_id}" in response.json()["detail"]
    assert retry.status_code == 403  # an approval id nobody approved lets nothing through
    assert fake_provider.requests() == []


async def test_a_redacted_prompt_reaches_the_provider_redacted(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("my password is hunter2"))
    assert response.status_code == 200
    assert response.headers["x-capsem-decision-id"]
    forwarded = fake_provider.last()
    assert forwarded is not None
    assert orjson.loads(fake_provider.body_of(forwarded))["messages"][0]["content"] == "my password is [gone]"


async def test_a_blocked_whole_answer_is_refused(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("tell me", reply="it is classified"))
    assert response.status_code == 403
    assert response.json()["detail"] == "Response blocked by security policy: blocked answer"
    assert response.headers["x-capsem-decision-id"]


async def test_a_blocked_streamed_answer_ends_with_the_providers_error_event(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("tell me", reply="it is classified", stream=True))
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert "classified" not in response.text
    assert orjson.loads(events[-1])["error"]["message"] == "Response blocked by security policy: blocked answer"


async def test_a_gemini_request_keyed_in_the_query_is_proxied(fake_provider):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post(
            "/v1beta/models/gemini-2.0-flash:generateContent?key=gemini-tenant-key",
            json={"contents": [{"role": "user", "parts": [{"text": "hello"}]}]},
        )
        blocked = await client.post(
            "/v1beta/models/gemini-2.0-flash:generateContent?key=gemini-tenant-key",
            json={"contents": [{"role": "user", "parts": [{"text": "forbidden"}]}]},
        )
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert blocked.status_code == 403
    assert blocked.json()["error"]["status"] == "PERMISSION_DENIED"
