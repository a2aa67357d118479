"""The idle limit of a streamed answer holds through the real proxy for every kind of upstream, the
translated ones too: a provider that goes silent mid-stream ends the stream with an error event,
while one that never stays silent that long streams on past the limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import ProxyProcess, start_proxy

pytestmark = pytest.mark.integration  # a real proxy and a real fake upstream over HTTP

MODELS = ["native", "via-claude", "via-gemini"]


@pytest.fixture(scope="module")
def impatient(primary: FakeProviderProcess) -> Iterator[ProxyProcess]:
    base = primary.base_url
    limit = {"stream_idle_timeout": 0.5}
    config = {
        "upstreams": [
            {"name": "openai", "type": "openai", "base_url": base + "/v1", **limit},
            {"name": "claude", "type": "anthropic", "base_url": base, **limit},
            {"name": "gem", "type": "gemini", "base_url": base, **limit},
        ],
        "models": {"native": ["openai:gpt-4o"], "via-claude": ["claude:claude-sonnet-4-5"],
                   "via-gemini": ["gem:gemini-2.5-flash"]},
        "retries": {"attempts": 1},
    }
    process = start_proxy(base, config)
    yield process
    process.stop()


def _stream(proxy: ProxyProcess, model: str, scenario: dict) -> list[dict]:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer sk-test-idle-0123456789", "x-fake-scenario": orjson.dumps(scenario).decode()}
    with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", json=body, headers=headers,
                      timeout=10) as response:
        assert response.status_code == 200
        text = response.read()
    return [orjson.loads(line[6:]) for line in text.splitlines()
            if line.startswith(b"data: ") and line[6:] != b"[DONE]"]


@pytest.mark.parametrize("model", MODELS)
def test_a_provider_silent_mid_stream_ends_it_with_an_error_event(impatient, model):
    events = _stream(impatient, model, {"delay_ms": 3000, "events": 3})
    assert "error" in events[-1]


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_never_silent_for_the_limit_streams_past_it(impatient, model):
    events = _stream(impatient, model, {"delay_ms": 150, "events": 8})  # about 1 s in all
    assert not any("error" in event for event in events)
    assert "".join(choice["delta"].get("content") or "" for event in events for choice in event["choices"])
