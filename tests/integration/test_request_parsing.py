"""One parse, the same as the provider's: what the proxy screens is what the provider reads.

Repeated keys are refused on every route (top level and nested), keys spelled with escapes mean
the plain keys, two different credentials are refused, and Gemini's answer format is read from
the parsed `alt` parameter, never from a substring of the query.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.proxy_process import start_proxy

GITHUB_TOKEN = "ghp_" + "Zq8Lm2Rt5Vx9Kb3Nw7Hc1Jd4Fg6Sp0Ty2Ue8"
OPENAI = {"authorization": "Bearer sk-test-parse"}
ANTHROPIC = {"x-api-key": "sk-ant-test-parse", "anthropic-version": "2023-06-01"}
GOOGLE = {"x-goog-api-key": "AIza-test-parse"}
GEMINI = "/v1beta/models/gemini-2.0-flash"


@pytest.fixture(scope="module")
def guarded(fake_provider) -> Iterator[str]:
    config = {"policies": [{"class": "secrets", "options": {"action": "block"}}]}
    process = start_proxy(fake_provider.base_url, config, log_level="warning")
    yield process.base_url
    process.stop()


# Each route's body with a repeated key, as raw JSON text: the first value holds a secret the
# proxy would never have screened (it keeps the last), the second is harmless.
_REPEATS = [
    ("openai chat, top level", "/v1/chat/completions", OPENAI,
     '{"model": "gpt-4o", "messages": [{"role": "user", "content": "%s"}], '
     '"messages": [{"role": "user", "content": "hello"}]}'),
    ("openai chat, nested", "/v1/chat/completions", OPENAI,
     '{"model": "gpt-4o", "messages": [{"role": "user", "content": "%s", "content": "hello"}]}'),
    ("openai chat, escaped twin", "/v1/chat/completions", OPENAI,
     '{"model": "gpt-4o", "messages": [{"role": "user", "content": "%s", "\\u0063ontent": "hello"}]}'),
    ("openai responses, nested", "/v1/responses", OPENAI,
     '{"model": "gpt-4.1", "input": [{"role": "user", "content": [{"type": "input_text", "text": "%s", '
     '"text": "hello"}]}]}'),
    ("openai embeddings, top level", "/v1/embeddings", OPENAI,
     '{"model": "text-embedding-3-small", "input": "%s", "input": "hello"}'),
    ("anthropic messages, nested", "/v1/messages", ANTHROPIC,
     '{"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", '
     '"text": "%s", "text": "hello"}]}]}'),
    ("anthropic messages, top level", "/v1/messages", ANTHROPIC,
     '{"model": "claude-x", "max_tokens": 5, "system": "%s", "system": "be brief", '
     '"messages": [{"role": "user", "content": "hello"}]}'),
    ("anthropic count_tokens, nested", "/v1/messages/count_tokens", ANTHROPIC,
     '{"model": "claude-x", "messages": [{"role": "user", "content": "%s", "role": "user"}], '
     '"messages": [{"role": "user", "content": "hello"}]}'),
    ("gemini generateContent, nested", f"{GEMINI}:generateContent", GOOGLE,
     '{"contents": [{"role": "user", "parts": [{"text": "%s", "text": "hello"}]}]}'),
    ("gemini streamGenerateContent, top level", f"{GEMINI}:streamGenerateContent?alt=sse", GOOGLE,
     '{"contents": [{"parts": [{"text": "%s"}]}], "contents": [{"parts": [{"text": "hello"}]}]}'),
    ("gemini countTokens, nested", f"{GEMINI}:countTokens", GOOGLE,
     '{"generateContentRequest": {"model": "models/gemini-2.0-flash", "contents": [{"parts": '
     '[{"text": "%s", "text": "hello"}]}]}}'),
    ("gemini /v1 prefix, top level", "/v1/models/gemini-2.0-flash:generateContent", GOOGLE,
     '{"systemInstruction": {"parts": [{"text": "%s"}]}, "systemInstruction": {"parts": [{"text": "hi"}]}, '
     '"contents": [{"parts": [{"text": "hello"}]}]}'),
]


def _native_error(path: str, payload: dict) -> None:
    """The error is shaped for the caller's SDK, with the proxy's `detail`."""
    assert "detail" in payload
    if "/v1beta/" in path or ":" in path:
        assert payload["error"]["status"] == "INVALID_ARGUMENT"
    elif path.startswith("/v1/messages"):
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    else:
        assert payload["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("name", "path", "headers", "template"), _REPEATS, ids=[case[0] for case in _REPEATS])
def test_a_repeated_key_is_refused_with_400_and_nothing_is_forwarded(guarded, fake_provider, name, path, headers,
                                                                      template):
    response = httpx.post(guarded + path, content=(template % GITHUB_TOKEN).encode(), headers=headers)
    assert response.status_code == 400, response.text
    _native_error(path, response.json())
    assert "repeats a key" in response.json()["detail"]
    assert fake_provider.requests() == []


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        ("/v1/chat/completions", OPENAI,
         '{"model": "gpt-4o", "mess\\u0061ges": [{"role": "user", "c\\u006fntent": "%s"}]}'),
        ("/v1/chat/completions", OPENAI,
         '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", '
         '"tool\\u005fcalls": [{"id": "c", "type": "function", "function": {"name": "f", '
         '"\\u0061rguments": "{\\"token\\": \\"%s\\"}"}}]}]}'),
        ("/v1/messages", ANTHROPIC,
         '{"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": '
         '"\\u0064ocument", "source": {"type": "text", "media_type": "text/plain", "d\\u0061ta": "%s"}}]}]}'),
        (f"{GEMINI}:generateContent", GOOGLE,
         '{"contents": [{"parts": [{"function\\u0043all": {"name": "f", "args": {"q": "%s"}}}]}]}'),
    ],
)
def test_keys_spelled_with_escapes_mean_the_plain_keys(guarded, fake_provider, path, headers, body):
    response = httpx.post(guarded + path, content=(body % GITHUB_TOKEN).encode(), headers=headers)
    assert response.status_code == 403, response.text
    assert fake_provider.requests() == []


def test_a_body_nested_too_deeply_to_check_is_refused_with_400_not_500(proxy, fake_provider):
    nested = "[" * 1000 + "]" * 1000
    body = '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + nested + "}"
    response = httpx.post(proxy.base_url + "/v1/chat/completions", content=body.encode(), headers=OPENAI)
    assert response.status_code == 400
    assert fake_provider.requests() == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/messages", {"x-api-key": "sk-ant-one", "authorization": "Bearer sk-ant-two",
                          "anthropic-version": "2023-06-01"}),
        (f"{GEMINI}:generateContent?key=AIza-two", {"x-goog-api-key": "AIza-one"}),
        (f"{GEMINI}:generateContent?%6Bey=AIza-two", {"x-goog-api-key": "AIza-one"}),
        (f"{GEMINI}:generateContent?key=AIza-one&key=AIza-two", {}),
        (f"{GEMINI}:generateContent", {"x-goog-api-key": "AIza-one", "authorization": "Bearer ya29.token"}),
    ],
    ids=["x-api-key and Authorization", "header and query", "header and escaped query", "query twice",
         "api key and OAuth bearer"],
)
def test_two_different_credentials_are_refused_with_400(proxy, fake_provider, path, headers):
    body = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "contents": [{"parts": [{"text": "hi"}]}]}
    response = httpx.post(proxy.base_url + path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "two different API keys" in response.json()["detail"]
    assert "one" not in response.text and "two" not in response.text.replace("two different", "")
    assert fake_provider.requests() == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/messages", {"x-api-key": "sk-ant-same", "authorization": "Bearer sk-ant-same",
                          "anthropic-version": "2023-06-01"}),
        (f"{GEMINI}:generateContent?key=AIza-same", {"x-goog-api-key": "AIza-same"}),
    ],
)
def test_the_same_credential_twice_is_accepted(proxy, fake_provider, path, headers):
    body = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "contents": [{"parts": [{"text": "hi"}]}]}
    assert httpx.post(proxy.base_url + path, json=body, headers=headers).status_code == 200


@pytest.fixture(scope="module")
def answer_guard(fake_provider) -> Iterator[str]:
    config = {"policies": [{"class": "secrets"}]}
    process = start_proxy(fake_provider.base_url, config, log_level="warning")
    yield process.base_url
    process.stop()


@pytest.mark.parametrize(
    ("query", "sse"),
    [("?alt=sse", True), ("?%61lt=sse", True), ("?alt=json", False), ("", False), ("?xalt=sse", False),
     ("?salt=sse&alt=json", False)],
)
def test_gemini_stream_format_is_read_from_the_parsed_alt_parameter(answer_guard, fake_provider, query, sse):
    fake_provider.script(reply=f"Your token is {GITHUB_TOKEN}, keep it safe.", chunk_size=12)
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    response = httpx.post(f"{answer_guard}{GEMINI}:streamGenerateContent{query}", json=body, headers=GOOGLE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream" if sse else "application/json")
    # The answer is decoded in the format the provider actually used, so its secret is caught.
    assert GITHUB_TOKEN not in response.text
    assert base64.b64encode(GITHUB_TOKEN.encode()).decode() not in response.text
    assert "[REDACTED:github_token]" in response.text


@pytest.mark.parametrize("query", ["?alt=sse&alt=json", "?alt=proto", "?alt=SSE"])
def test_an_alt_the_proxy_cannot_read_is_refused_with_400(proxy, fake_provider, query):
    body = orjson.dumps({"contents": [{"parts": [{"text": "hi"}]}]})
    response = httpx.post(f"{proxy.base_url}{GEMINI}:streamGenerateContent{query}", content=body, headers=GOOGLE)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake_provider.requests() == []
