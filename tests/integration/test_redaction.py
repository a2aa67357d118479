"""Redaction through the real proxy: the provider gets redacted prompts and tool results, the
client gets redacted answers (streamed too), every other byte unchanged; reversible mode
restores the caller's own data in the answer."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest

from tests.proxy_process import start_proxy

EMAIL = "alice.smith@example.com"
PATTERNS = {"EMAIL": r"[\w.+-]+@[\w-]+\.[\w.]+"}


def _forwarded(fake_provider) -> bytes:
    return base64.b64decode(fake_provider.last()["body_b64"])


@pytest.fixture(scope="module")
def redacting_proxy(fake_provider):
    config = {"policies": [{"class": "regex_redact", "options": {"patterns": PATTERNS}}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def reversible_proxy(fake_provider):
    config = {"policies": [{"class": "regex_redact",
                            "options": {"patterns": PATTERNS, "reversible": True, "answers": False}}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


def test_prompt_is_redacted_and_every_other_byte_is_kept(redacting_proxy, fake_provider):
    body = (b'{ "model":"gpt-4o",  "messages":[{"role":"user","content":"mail ' + EMAIL.encode()
            + b' please"}], "x_unknown": {"keep": [1.50, null]} }')
    response = httpx.post(f"{redacting_proxy.base_url}/v1/chat/completions", content=body,
                          headers={"authorization": "Bearer sk-r"})
    assert response.status_code == 200
    assert _forwarded(fake_provider) == body.replace(EMAIL.encode(), b"[REDACTED:EMAIL]")
    assert response.headers["x-capsem-decision-id"]


def test_ascii_escaped_prompt_is_redacted(redacting_proxy, fake_provider):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"café {EMAIL}"}]}).encode()
    httpx.post(f"{redacting_proxy.base_url}/v1/chat/completions", content=body, headers={"authorization": "Bearer k"})
    assert json.loads(_forwarded(fake_provider))["messages"][0]["content"] == "café [REDACTED:EMAIL]"


def test_tool_result_is_redacted_before_it_reaches_the_provider(redacting_proxy, fake_provider):
    body = {"model": "claude-x", "max_tokens": 10, "messages": [
        {"role": "user", "content": "who is it?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"owner: {EMAIL}"}]},
    ]}
    response = httpx.post(f"{redacting_proxy.base_url}/v1/messages", json=body,
                          headers={"x-api-key": "sk-ant-r", "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert EMAIL.encode() not in _forwarded(fake_provider)
    assert b"owner: [REDACTED:EMAIL]" in _forwarded(fake_provider)


def test_answer_is_redacted(redacting_proxy, fake_provider):
    fake_provider.script(reply=f"Write to {EMAIL} for details.")
    client = openai.OpenAI(base_url=f"{redacting_proxy.base_url}/v1", api_key="sk-r", max_retries=0)
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "contact?"}])
    assert completion.choices[0].message.content == "Write to [REDACTED:EMAIL] for details."


@pytest.mark.parametrize("chunk_size", [2, 5, 40])
def test_streamed_answer_is_redacted_across_chunks(redacting_proxy, fake_provider, chunk_size):
    fake_provider.script(reply=f"Write to {EMAIL} for details. " * 3, chunk_size=chunk_size)
    client = openai.OpenAI(base_url=f"{redacting_proxy.base_url}/v1", api_key="sk-r", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Write to [REDACTED:EMAIL] for details. " * 3


def test_gemini_streamed_answer_is_redacted(redacting_proxy, fake_provider):
    fake_provider.script(reply=f"Mail {EMAIL} now.", chunk_size=4)
    response = httpx.post(
        f"{redacting_proxy.base_url}/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": "AIza-r"},
    )
    elements = json.loads(response.content)
    text = "".join(part.get("text", "") for e in elements for c in e.get("candidates", [])
                   for part in c["content"]["parts"])
    assert text == "Mail [REDACTED:EMAIL] now."


@pytest.mark.parametrize("stream", [False, True])
def test_reversible_redaction_restores_the_callers_data_in_the_answer(reversible_proxy, fake_provider, stream):
    fake_provider.script(echo=True, chunk_size=3)
    client = openai.OpenAI(base_url=f"{reversible_proxy.base_url}/v1", api_key="sk-r", max_retries=0)
    prompt = f"My address is {EMAIL}, remember it"
    if stream:
        chunks = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}],
                                                stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
        text = completion.choices[0].message.content
    forwarded = _forwarded(fake_provider)
    assert EMAIL.encode() not in forwarded and b"[REDACTED:EMAIL_1]" in forwarded
    assert text == prompt


def test_prompt_spelled_with_unusual_escapes_is_still_redacted(redacting_proxy, fake_provider):
    # A client may escape "/" (PHP's default) or spell letters as \u00XX: the bytes no longer
    # contain the address, the decoded prompt does.
    spelled = EMAIL.replace("a", "\\u0061").encode()
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"mail ' + spelled + b' at https:\\/\\/x.io"}]}'
    response = httpx.post(f"{redacting_proxy.base_url}/v1/chat/completions", content=body,
                          headers={"authorization": "Bearer sk-r"})
    assert response.status_code == 200
    forwarded = json.loads(_forwarded(fake_provider))
    assert forwarded["messages"][0]["content"] == "mail [REDACTED:EMAIL] at https://x.io"
    assert EMAIL.encode() not in _forwarded(fake_provider)
