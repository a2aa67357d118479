"""An answer whose tool call nests its arguments 200 levels deep, with a finding at the bottom, is
blocked in each provider's shape (a call the model emitted is refused, not rewritten), never a 500
or a RecursionError (the request side: tests/integration/test_bounded_work.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.proxy_process import ProxyProcess, start_proxy
from tests.request_fields import DETECTORS

SECRET, EMAIL = DETECTORS["secrets"], DETECTORS["pii_detect"]
ROUTES = {
    "openai": ("/v1/chat/completions", {"authorization": "Bearer sk-deep"},
               {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    "anthropic": ("/v1/messages", {"x-api-key": "sk-ant-deep", "anthropic-version": "2023-06-01"},
                  {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", {"x-goog-api-key": "g-deep"},
               {"contents": [{"parts": [{"text": "hi"}]}]}),
}


@pytest.fixture(scope="module")
def deep_proxy(fake_provider) -> Iterator[ProxyProcess]:
    policies = [{"class": "secrets"},
                {"class": "pii_detect", "options": {"entities": ["email"], "emitted_tool_calls": True}}]
    process = start_proxy(fake_provider.base_url, {"policies": policies}, log_level="warning")
    yield process
    process.stop()


def _nested(leaf: str, depth: int = 200) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": f"use {leaf} now"}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("provider", list(ROUTES))
@pytest.mark.parametrize("leak", [EMAIL, SECRET])
def test_deeply_nested_arguments_with_a_finding_are_blocked_in_the_providers_shape(deep_proxy, fake_provider,
                                                                                   provider, leak):
    path, headers, body = ROUTES[provider]
    scenario = fake_provider.scenario_header(tool_call=True, tool_name="lookup", tool_args={"q": _nested(leak)})
    response = httpx.post(deep_proxy.base_url + path, json=body, headers={**headers, **scenario}, timeout=60)
    assert response.status_code == 403, response.text[:300]
    assert leak not in response.text and "Traceback" not in response.text
    document = response.json()
    assert document["detail"].startswith("Tool blocked by security policy: ")
    if provider == "anthropic":
        assert document["type"] == "error"
    else:
        assert document["error"]["message"] == document["detail"]
