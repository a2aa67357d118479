"""Errors the proxy itself makes: provider-shaped, with `detail`, never a bare 500 or a trace."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.proxy_process import free_port, start_proxy

OPENAI_KEY = "sk-test-openai-0123456789"
CHAT = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
MESSAGES = b'{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
GEMINI = b'{"contents":[{"parts":[{"text":"hi"}]}]}'
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"


def _assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"]
    assert body["error"]["message"] == body["detail"]
    assert "type" in body["error"] and "code" in body["error"]
    assert response.headers["x-capsem-request-id"]
    return body


def _assert_anthropic_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"]
    assert body["detail"]
    return body


def _assert_gemini_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == status and body["error"]["status"] and body["error"]["message"]
    assert body["detail"]
    return body


@pytest.fixture(scope="module")
def small_proxy(fake_provider):
    process = start_proxy(fake_provider.base_url, {"server": {"max_body_bytes": 4096}})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def impatient_proxy(fake_provider):
    timeouts = {"read_timeout": 0.5, "connect_timeout": 2}
    process = start_proxy(
        fake_provider.base_url, {"providers": {"openai": timeouts, "gemini": timeouts, "anthropic": timeouts}}
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def orphan_proxy():
    """A proxy whose provider is a closed port."""
    process = start_proxy(f"http://127.0.0.1:{free_port()}")
    yield process
    process.stop()


def test_missing_key_is_401_for_each_provider(proxy):
    _assert_openai_error(httpx.post(f"{proxy.base_url}/v1/chat/completions", content=CHAT), 401)
    _assert_anthropic_error(
        httpx.post(f"{proxy.base_url}/v1/messages", content=MESSAGES, headers={"anthropic-version": "2023-06-01"}), 401
    )
    _assert_gemini_error(httpx.post(f"{proxy.base_url}{GEMINI_PATH}", content=GEMINI), 401)


@pytest.mark.parametrize("authorization", ["Basic abc", "Bearer", "Bearer two words", "Bearer key\twith-tab"])
def test_malformed_key_is_401(proxy, authorization):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", content=CHAT, headers={"authorization": authorization}
    )
    body = _assert_openai_error(response, 401)
    assert "malformed" in body["detail"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b'{"model": "x", "messages": [}'])
def test_malformed_json_is_400(proxy, fake_provider, body):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", content=body, headers={"authorization": f"Bearer {OPENAI_KEY}"}
    )
    _assert_openai_error(response, 400)
    assert fake_provider.requests() == []


def test_malformed_json_is_400_in_anthropic_and_gemini_shapes(proxy):
    _assert_anthropic_error(
        httpx.post(f"{proxy.base_url}/v1/messages", content=b"{oops", headers={"x-api-key": "sk-ant-1"}), 400
    )
    _assert_gemini_error(
        httpx.post(f"{proxy.base_url}{GEMINI_PATH}", content=b"{oops", headers={"x-goog-api-key": "AIza1"}), 400
    )


def test_body_over_the_limit_is_413(small_proxy, fake_provider):
    big = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 8000 + b'"}]}'
    response = httpx.post(
        f"{small_proxy.base_url}/v1/chat/completions", content=big, headers={"authorization": f"Bearer {OPENAI_KEY}"}
    )
    _assert_openai_error(response, 413)
    assert fake_provider.requests() == []


def test_chunked_body_over_the_limit_is_413(small_proxy):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    response = httpx.post(
        f"{small_proxy.base_url}/v1/messages", content=chunks(), headers={"x-api-key": "sk-ant-1"}
    )
    _assert_anthropic_error(response, 413)


def test_unknown_route_is_404_in_a_provider_shape(proxy):
    _assert_openai_error(httpx.post(f"{proxy.base_url}/v1/nothing-here", content=b"{}"), 404)
    _assert_gemini_error(httpx.post(f"{proxy.base_url}/v1beta/models/m:doMagic", content=b"{}"), 404)
    _assert_openai_error(httpx.get(f"{proxy.base_url}/v1/chat/completions"), 404)


def test_unreachable_provider_is_502(orphan_proxy):
    response = httpx.post(
        f"{orphan_proxy.base_url}/v1/chat/completions", content=CHAT, headers={"authorization": f"Bearer {OPENAI_KEY}"}
    )
    _assert_openai_error(response, 502)
    _assert_gemini_error(
        httpx.post(f"{orphan_proxy.base_url}{GEMINI_PATH}", content=GEMINI, headers={"x-goog-api-key": "AIza1"}), 502
    )


def test_provider_timeout_is_504(impatient_proxy):
    scenario = orjson.dumps({"slow_ms": 3000}).decode()
    response = httpx.post(
        f"{impatient_proxy.base_url}/v1/messages",
        content=MESSAGES,
        headers={"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01", "x-fake-scenario": scenario},
        timeout=10,
    )
    _assert_anthropic_error(response, 504)


_STREAMED_CHAT = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'


def _streamed_chat(proxy, scenario: dict) -> str:
    """The whole text of a streamed chat answer (status 200) through `proxy` in the fake's `scenario`."""
    headers = {"authorization": f"Bearer {OPENAI_KEY}", "x-fake-scenario": orjson.dumps(scenario).decode()}
    with httpx.stream(
        "POST", f"{proxy.base_url}/v1/chat/completions", content=_STREAMED_CHAT, timeout=10, headers=headers,
    ) as response:
        assert response.status_code == 200
        return response.read().decode()


def test_stream_idle_timeout_ends_the_stream_with_an_error_event(impatient_proxy):
    text = _streamed_chat(impatient_proxy, {"delay_ms": 2000, "events": 3})
    last_event = [line for line in text.splitlines() if line.startswith("data: ")][-1]
    assert orjson.loads(last_event[6:])["error"]["message"]


def test_a_stream_whose_headers_never_come_is_504(impatient_proxy):
    scenario = orjson.dumps({"slow_ms": 3000}).decode()
    response = httpx.post(
        f"{impatient_proxy.base_url}/v1/chat/completions", content=_STREAMED_CHAT, timeout=10,
        headers={"authorization": f"Bearer {OPENAI_KEY}", "x-fake-scenario": scenario},
    )
    _assert_openai_error(response, 504)


def test_a_stream_longer_than_the_idle_limit_but_never_silent_that_long_completes(impatient_proxy):
    # Events 0.2 s apart for about 2 s: four times the 0.5 s limit in all, never half of it in one silence.
    text = _streamed_chat(impatient_proxy, {"delay_ms": 200, "events": 10})
    assert '"error"' not in text and text.rstrip().endswith("data: [DONE]")


def test_no_answer_from_the_proxy_contains_a_traceback(proxy):
    for path in ("/v1/chat/completions", "/v1/messages", GEMINI_PATH, "/nope"):
        response = httpx.post(f"{proxy.base_url}{path}", content=b"\xff\xfe", headers={"authorization": "Bearer k"})
        assert "Traceback" not in response.text
        assert response.status_code < 500


def test_two_values_of_a_key_header_are_refused(proxy, fake_provider):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", content=CHAT,
        headers=[("authorization", "Bearer sk-first"), ("authorization", "Bearer sk-second")],
    )
    body = _assert_openai_error(response, 400)
    assert "more than one API key" in body["detail"]
    assert "sk-first" not in response.text and "sk-second" not in response.text
    assert fake_provider.requests() == []


def test_percent_encoded_paths_are_not_served(proxy, fake_provider):
    path = "/v1beta/models/gemini-pro:streamGenerateContent%3Falt=sse%23:countTokens"
    response = httpx.post(f"{proxy.base_url}{path}", content=GEMINI, headers={"x-goog-api-key": "AIza1"})
    _assert_gemini_error(response, 404)
    assert fake_provider.requests() == []
